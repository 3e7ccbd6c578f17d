//! Serving a finished file from the file store: `ETag` (its SHA-256), `If-None-Match`, and one
//! `Range` (RFC 9110 §14) so a broken download resumes where it stopped. Export files, access
//! archives, tenant archives and the console's downloads all go through [`serve_file`].
//!
//! Files are encrypted at rest ([`crate::files`]); what is served, counted, hashed and sliced
//! into ranges is always the plaintext, decrypted a chunk at a time as the body is sent.

use std::io::{Read, Seek, SeekFrom};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use steward_store::{StoreExt, TenantCtx};

use crate::error::ApiError;
use crate::state::AppState;

/// A committed file in the file store and how to present it.
#[derive(Debug)]
pub struct StoredFile<'a> {
    /// The tenant whose key opens the file.
    pub ctx: TenantCtx,
    pub key: &'a str,
    /// Lowercase hex SHA-256 of the whole (plaintext) file; the strong `ETag`.
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
    let file = open_sealed(state, &stored.ctx, stored.key).await?.ok_or_else(|| ApiError::Gone(stored.gone.clone()))?;
    let length = file.len();

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
    let body = plaintext_body(file, start, count);
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

/// Opens a tenant's encrypted file off the async threads (it reads and checks the last chunk).
pub(crate) async fn open_sealed(
    state: &AppState,
    ctx: &TenantCtx,
    key: &str,
) -> Result<Option<steward_store::sealed_file::SealedReader<std::fs::File>>, ApiError> {
    let keys = state.store.keys(ctx).map_err(|e| ApiError::Internal(e.into()))?;
    let (files, key) = (state.files.clone(), key.to_string());
    tokio::task::spawn_blocking(move || files.open_sealed(&keys, &key))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("opening a stored file")))
}

/// `count` bytes of `reader` from `start` as a response body: each 64 KiB piece is read (and
/// decrypted) on the blocking threads, and the next one only once the client took the last, so
/// memory stays constant and a slow client holds no thread. A failure mid-way ends the body
/// with an error, which cuts the connection: a client never takes a short body for the file.
pub(crate) fn plaintext_body<R: Read + Seek + Send + 'static>(mut reader: R, start: u64, count: u64) -> Body {
    const PIECE: u64 = 64 * 1024;
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::spawn(async move {
        let mut left = count;
        let mut position = Some(start);
        while left > 0 {
            let size = left.min(PIECE);
            let seek = position.take();
            let read = tokio::task::spawn_blocking(move || {
                let piece = (|| {
                    if let Some(start) = seek {
                        reader.seek(SeekFrom::Start(start))?;
                    }
                    let mut piece = vec![0; usize::try_from(size).unwrap_or(usize::MAX)];
                    reader.read_exact(&mut piece)?;
                    Ok(Bytes::from(piece))
                })();
                (reader, piece)
            })
            .await;
            let (back, piece) = match read {
                Ok(read) => read,
                Err(error) => {
                    let _ = sender.send(Err(std::io::Error::other(error))).await;
                    return;
                }
            };
            reader = back;
            let failed = piece.is_err();
            if let Err(error) = &piece {
                tracing::error!(error = %error, "a stored file could not be read while it was being sent");
            }
            if sender.send(piece).await.is_err() || failed {
                return;
            }
            left -= size;
        }
    });
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
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
