//! The whole application: API routes wrapped in request ids, problem details, tracing without
//! personal data, panic capture, timeouts, body limits and security headers.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::{SetRequestHeaderLayer, SetResponseHeaderLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::{ApiError, finish_problems};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn build(state: AppState) -> Router {
    let limits = BodyLimits {
        api: u64::try_from(state.settings.api.max_body_bytes).unwrap_or(u64::MAX),
        imports: state.settings.imports.max_bytes.saturating_add(IMPORT_OVERHEAD),
    };
    let tls = state.settings.tls.enabled();
    let router = crate::api::router(state).layer(
        // Outermost first: the security headers go on every answer, whichever layer gives it
        // (a body-limit refusal, a timeout, a caught panic).
        ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(axum::middleware::from_fn(finish_problems))
            .layer(axum::middleware::from_fn(crate::ratelimit::headers))
            .layer(axum::middleware::from_fn(content_security_policy))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(300),
            ))
            .layer(axum::middleware::from_fn_with_state(limits, limit_body)),
    );
    if tls {
        // Served over TLS by Steward itself: browsers should never try plain HTTP again, and
        // the console knows its cookies travel over TLS.
        router
            .layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            ))
            .layer(SetRequestHeaderLayer::overriding(
                HeaderName::from_static("x-forwarded-proto"),
                HeaderValue::from_static("https"),
            ))
    } else {
        router
    }
}

/// A handler's panic as a bare 500 (made a problem by `finish_problems`). Its message is not
/// logged: a panic on user input (a bad slice, say) quotes that input.
fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; its message is withheld as it may quote personal data");
    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Room for the multipart framing and the mapping part around an import's CSV file, whose own
/// size the import handler checks against `imports.max_bytes`.
const IMPORT_OVERHEAD: u64 = 1024 * 1024;

/// Largest request bodies: imports take files, every other route JSON or forms.
#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    api: u64,
    imports: u64,
}

/// Refuses a body past its route's limit with 413: at once when `Content-Length` says so, else
/// when reading passes the limit (the extractors answer 413 for that).
async fn limit_body(State(limits): State<BodyLimits>, request: Request, next: axum::middleware::Next) -> Response {
    let imports = request.uri().path().starts_with("/api/v1/imports/");
    let limit = if imports { limits.imports } else { limits.api };
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        let what = if imports { "an import (imports.max_bytes)" } else { "this endpoint (api.max_body_bytes)" };
        return ApiError::PayloadTooLarge(format!("the request body is larger than the {limit} bytes {what} accepts"))
            .into_response();
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    next.run(request.map(|body| Body::new(http_body_util::Limited::new(body, limit)))).await
}

/// A span with method, path and request id only: no query string (it may hold an email), no
/// headers, no address. Handlers add the tenant and client ids.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        tenant.id = tracing::field::Empty,
        client.id = tracing::field::Empty,
    )
}

/// API answers are data, never pages: nothing may load from them or frame them. The API
/// documentation page loads its own scripts and styles; console pages set their own policy.
async fn content_security_policy(request: Request, next: axum::middleware::Next) -> Response {
    let docs = request.uri().path().starts_with("/docs");
    let mut response = next.run(request).await;
    let policy = if docs {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    if !response.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    }
    response
}
