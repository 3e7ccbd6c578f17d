//! API errors and their one mapping to HTTP: RFC 9457 `application/problem+json`.
//!
//! Handlers return [`ApiError`]; it becomes a response carrying a [`Problem`] extension, and the
//! [`finish_problems`] middleware writes the body with the request's path and id. The middleware
//! also turns any other 4xx/5xx (unknown route, wrong method, a caught panic) into a problem, so
//! no client ever sees an error in another shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_domain::{FieldError, ValidationErrors};
use steward_store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem; `instance` and `request_id` are filled in by [`finish_problems`].
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: Option<String>,
    /// Every bad field or parameter; left out when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
    /// Quote this when asking the operator about a failure.
    pub request_id: Option<String>,
    /// OAuth 2.0 error code (RFC 6749 §5.2), on token endpoint errors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("{detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    /// A well-formed request whose content cannot be used as a whole (an upload that is not the
    /// format it should be): 422 with a detail of its own rather than a list of fields.
    #[error("{detail}")]
    Unprocessable { detail: String, errors: Vec<FieldError> },
    /// Query parameters that are well-formed but cannot be served (too many ids, an unknown
    /// granularity, a period past the limit): 422 naming each.
    #[error("{0}")]
    InvalidQuery(ValidationErrors),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String, Vec<FieldError>),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Missing or bad credentials; `challenge` goes into `WWW-Authenticate`.
    #[error("{detail}")]
    Unauthorized { detail: String, challenge: String, oauth_error: Option<&'static str> },
    #[error("{detail}")]
    Forbidden { detail: String, challenge: Option<String> },
    /// An OAuth token-endpoint error (RFC 6749 §5.2) that is not about client authentication.
    #[error("{description}")]
    OAuth { code: &'static str, description: String },
    #[error("{0}")]
    Gone(String),
    /// The thing exists but is not ready (a running job); the client should retry later.
    #[error("{0}")]
    NotReady(String),
    /// A `Range` outside the file; `length` goes into `Content-Range: bytes */length`.
    #[error("{detail}")]
    RangeNotSatisfiable { detail: String, length: u64 },
    /// A streamed export past the configured period or size; says what to do instead.
    #[error("{0}")]
    ExportTooLarge(String),
    /// Past the client's request budget; `retry_after` in whole seconds.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A request body past its limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A storage quota is full (`collect.max_events_per_tenant`): 507 naming it.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A server-side failure whose cause is already logged and whose detail helps the client
    /// (what failed, what to do) without internals or personal data: 500 with that detail.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("no {what} with this id exists for your tenant"))
    }

    /// A query parameter that cannot be read: 422 naming it, like every other bad field.
    pub fn bad_query(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidQuery(ValidationErrors::single(field, message))
    }

    pub fn invalid_query(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidQuery(ValidationErrors::single(field, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidQuery(_) | Self::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::BadRequest { .. } | Self::OAuth { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Gone(_) => StatusCode::GONE,
            Self::ExportTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotReady(_) => StatusCode::CONFLICT,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QuotaExceeded(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) | Self::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { field } => Self::Conflict(
                format!("{field} is already in use"),
                vec![FieldError { field: field.into(), message: "is already in use".into() }],
            ),
            StoreError::Key(steward_store::VaultError::Destroyed(_)) => {
                Self::Gone("this tenant's data key has been destroyed; its records can no longer be read".into())
            }
            StoreError::MissingReference { field } => {
                Self::Validation(ValidationErrors::single(field, "does not exist"))
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = match &self {
            Self::ExportTooLarge(_) => "export-too-large",
            Self::NotReady(_) => "not-ready",
            Self::QuotaExceeded(_) => "quota-exceeded",
            _ => slug_for(status),
        };
        let mut headers = HeaderMap::new();
        let (detail, errors, oauth) = match self {
            Self::Validation(errors) => {
                let count = errors.errors().len();
                let detail = format!(
                    "{count} field{} failed validation: {errors}; nothing was stored",
                    if count == 1 { "" } else { "s" }
                );
                (detail, errors.into_errors(), None)
            }
            Self::InvalidQuery(errors) => {
                let count = errors.errors().len();
                let detail = if count == 1 {
                    format!("query parameter {errors}")
                } else {
                    format!("{count} query parameters failed validation: {errors}")
                };
                (detail, errors.into_errors(), None)
            }
            Self::BadRequest { detail, errors }
            | Self::Unprocessable { detail, errors }
            | Self::Conflict(detail, errors) => (detail, errors, None),
            Self::Unauthorized { detail, challenge, oauth_error } => {
                insert(&mut headers, header::WWW_AUTHENTICATE, &challenge);
                let oauth = oauth_error.map(|code| (code, detail.clone()));
                (detail, Vec::new(), oauth)
            }
            Self::Forbidden { detail, challenge } => {
                if let Some(challenge) = challenge {
                    insert(&mut headers, header::WWW_AUTHENTICATE, &challenge);
                }
                (detail, Vec::new(), None)
            }
            Self::OAuth { code, description } => (description.clone(), Vec::new(), Some((code, description))),
            Self::Internal(error) => {
                // The cause chain goes to the log (no personal data is ever in it); the client
                // gets the request id to quote.
                tracing::error!(error = format!("{error:#}"), "request failed");
                ("an internal error occurred; quote the request_id when reporting it".into(), Vec::new(), None)
            }
            Self::NotReady(detail) => {
                insert(&mut headers, header::RETRY_AFTER, "5");
                (detail, Vec::new(), None)
            }
            Self::RangeNotSatisfiable { detail, length } => {
                insert(&mut headers, header::CONTENT_RANGE, &format!("bytes */{length}"));
                (detail, Vec::new(), None)
            }
            Self::RateLimited { detail, retry_after } => {
                insert(&mut headers, header::RETRY_AFTER, &retry_after.to_string());
                (detail, Vec::new(), None)
            }
            Self::NotFound(detail)
            | Self::ExportTooLarge(detail)
            | Self::UnsupportedMediaType(detail)
            | Self::Gone(detail)
            | Self::Unavailable(detail)
            | Self::Failed(detail)
            | Self::PayloadTooLarge(detail)
            | Self::QuotaExceeded(detail) => (detail, Vec::new(), None),
        };
        let problem = Problem {
            kind: format!("/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            instance: None,
            errors,
            request_id: None,
            error: oauth.as_ref().map(|(code, _)| code.to_string()),
            error_description: oauth.map(|(_, description)| description),
        };
        let mut response = (status, headers).into_response();
        response.extensions_mut().insert(problem);
        response
    }
}

/// The problem type by status, so untyped errors get the same types as ours.
fn slug_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => "validation",
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::GONE => "gone",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::TOO_MANY_REQUESTS => "rate-limited",
        StatusCode::RANGE_NOT_SATISFIABLE => "range-not-satisfiable",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => "timeout",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Writes every error response as problem+json with `instance` and `request_id`.
pub async fn finish_problems(request: Request, next: Next) -> Response {
    let instance = request.uri().path().to_string();
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Console pages carry their own error page (see `console`).
    let html = parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if html {
        return Response::from_parts(parts, body);
    }
    let mut problem = match parts.extensions.remove::<Problem>() {
        Some(problem) => problem,
        None => {
            let is_problem =
                parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
            if is_problem {
                return Response::from_parts(parts, body);
            }
            untyped_problem(status, body).await
        }
    };
    problem.instance = Some(instance);
    problem.request_id = request_id;
    let json = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}

/// A problem for an error response some layer produced in another shape (routing, limits,
/// panics); a short plain-text body becomes the detail.
async fn untyped_problem(status: StatusCode, body: Body) -> Problem {
    let text = axum::body::to_bytes(body, 4_096).await.map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let detail = match (status, text) {
        (StatusCode::NOT_FOUND, _) => "no resource at this path; see /openapi.json for the API".to_string(),
        (StatusCode::METHOD_NOT_ALLOWED, _) => "this path does not accept this method; see /openapi.json".to_string(),
        (StatusCode::PAYLOAD_TOO_LARGE, _) => "the request body is larger than this endpoint accepts".to_string(),
        (_, _) if status.is_server_error() => {
            "an internal error occurred; quote the request_id when reporting it".to_string()
        }
        (_, Ok(text)) if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    Problem {
        kind: format!("/problems/{}", slug_for(status)),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        instance: None,
        errors: Vec::new(),
        request_id: None,
        error: None,
        error_description: None,
    }
}
