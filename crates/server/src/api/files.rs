//! Serving a finished file from the file store: `ETag` (its SHA-256), `If-None-Match`, and one
//! `Range` (RFC 9110 §14) so a broken download resumes where it stopped. Export files, access
//! archives, tenant archives and the console's downloads all go through [`serve_file`].

use std::io::SeekFrom;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::ApiError;
use crate::state::AppState;

/// A committed file in the file store and how to present it.
#[derive(Debug)]
pub struct StoredFile<'a> {
    pub key: &'a str,
    /// Lowercase hex SHA-256 of the whole file; the strong `ETag`.
    pub sha256: &'a str,
    pub media_type: &'static str,
    /// The name offered in `Content-Disposition` (ASCII, no quotes).
    pub filename: String,
    /// The `detail` of the 410 when the file is no longer stored.
    pub gone: String,
}

/// Answers with the file: 200 whole, 206 for one satisfiable range, 304 when `If-None-Match`
/// names it, 416 (problem+json) for a range past its end, 410 when it is gone.
pub async fn serve_file(state: &AppState, headers: &HeaderMap, stored: StoredFile<'_>) -> Result<Response, ApiError> {
    let etag = format!("\"{}\"", stored.sha256);
    let (file, length) = state
        .files
        .open(stored.key)
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| ApiError::Gone(stored.gone.clone()))?;

    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    if header_text(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok(with_file_headers(StatusCode::NOT_MODIFIED.into_response(), &etag, &stored));
    }
    // If-Range with another validator means the file changed: send it whole.
    let range_applies = header_text(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag);
    let range = match header_text(header::RANGE) {
        Some(range) if range_applies => {
            Some(parse_range(&range, length).ok_or_else(|| ApiError::RangeNotSatisfiable {
                detail: format!(
                    "the range {range:?} is outside the file of {length} bytes; ask for bytes=N- with N < {length}"
                ),
                length,
            })?)
        }
        _ => None,
    };
    let (start, end) = range.unwrap_or((0, length.saturating_sub(1)));
    let count = if length == 0 { 0 } else { end - start + 1 };
    let mut file = tokio::fs::File::from_std(file);
    file.seek(SeekFrom::Start(start)).await.map_err(|e| ApiError::Internal(e.into()))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file.take(count), 64 * 1024));
    let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut response = with_file_headers((status, body).into_response(), &etag, &stored);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if range.is_some()
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{length}"))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

fn with_file_headers(mut response: Response, etag: &str, stored: &StoredFile<'_>) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(stored.media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    let name = format!("attachment; filename=\"{}\"", stored.filename.replace(['"', '\\'], "_"));
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// One `bytes=` range (RFC 9110 §14.1.2) as inclusive offsets within `length`; several ranges
/// or a malformed header mean "send it whole" (`Some` of the full range).
fn parse_range(text: &str, length: u64) -> Option<(u64, u64)> {
    let whole = Some((0, length.saturating_sub(1)));
    let Some(spec) = text.trim().strip_prefix("bytes=") else { return whole };
    if spec.contains(',') {
        return whole;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || length == 0 {
            return None;
        }
        (length.saturating_sub(suffix), length - 1)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            length.checked_sub(1)?
        } else {
            last.parse::<u64>().ok()?.min(length.checked_sub(1)?)
        };
        (start, end)
    };
    (range.0 <= range.1 && range.0 < length).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=90-500", 100), Some((90, 99)), "the end is clipped");
        assert_eq!(parse_range("bytes=100-", 100), None, "unsatisfiable");
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Some((0, 99)), "several ranges: the whole file");
        assert_eq!(parse_range("items=0-1", 100), Some((0, 99)));
    }
}
