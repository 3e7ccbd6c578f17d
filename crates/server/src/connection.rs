//! Connections: how long one may take to send a request head, how long it may sit idle between
//! requests, how many may be open at once, and problem+json for the few answers hyper gives on
//! its own.
//!
//! [`Guard`] wraps the acceptor of `axum-server` (plain TCP, or rustls around TCP): it takes a
//! permit of `server.max_connections` (past the cap the connection is closed at once), wraps the
//! stream in a [`Guarded`] stream that knows whether a request is in flight, and the service in
//! [`Counted`], which says when one starts and when its answer has been written out.
//!
//! While no request is in flight, a read that waits past its deadline fails and hyper closes
//! the connection: `server.header_read_timeout_seconds` from the connection's start or from the
//! first byte of the next request head (a client that trickles half a header is cut off), else
//! `server.idle_timeout_seconds` after the last answer (an idle keep-alive connection). While
//! a request is in flight the handler's own timeout applies instead.
//!
//! hyper answers a request line or head it cannot read by itself, with an empty body: 414 for a
//! URI past 64 KiB (the `http` crate's limit, which no setting raises), 431 for headers past its
//! buffer, 400 for garbage. Such an answer never carries the headers every answer of the
//! application has, so [`Guarded`] recognises it and writes a problem+json answer with the
//! security headers in its place.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::ServerSettings;
use crate::error::Problem;

/// The limits every connection of one server shares.
#[derive(Debug)]
pub struct Limits {
    header_read: Duration,
    idle: Duration,
    max_connections: usize,
    permits: Arc<Semaphore>,
    tls: bool,
}

impl Limits {
    pub fn new(settings: &ServerSettings, tls: bool) -> Arc<Self> {
        let max_connections = usize::try_from(settings.max_connections).unwrap_or(usize::MAX).max(1);
        Arc::new(Self {
            header_read: Duration::from_secs(u64::from(settings.header_read_timeout_seconds.max(1))),
            idle: Duration::from_secs(u64::from(settings.idle_timeout_seconds.max(1))),
            max_connections,
            permits: Arc::new(Semaphore::new(max_connections)),
            tls,
        })
    }
}

/// An acceptor that applies [`Limits`] around `inner` (see the module documentation).
#[derive(Debug, Clone)]
pub struct Guard<A> {
    inner: A,
    limits: Arc<Limits>,
}

impl<A> Guard<A> {
    pub fn new(inner: A, limits: Arc<Limits>) -> Self {
        Self { inner, limits }
    }
}

impl<A, I, S> axum_server::accept::Accept<I, S> for Guard<A>
where
    A: axum_server::accept::Accept<I, S> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = Counted<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let limits = self.limits.clone();
        let Ok(permit) = limits.permits.clone().try_acquire_owned() else {
            // Dropping the stream closes the connection: the client may try again later.
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection refused: server.max_connections reached"
            );
            return Box::pin(std::future::ready(Err(io::Error::other("server.max_connections reached"))));
        };
        let accepted_at = Instant::now();
        let inner = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = inner.await?;
            let state =
                Arc::new(Mutex::new(State { in_flight: 0, head_from: Some(accepted_at), idle_from: accepted_at }));
            let sleep = Box::pin(tokio::time::sleep_until(accepted_at + limits.header_read));
            let stream =
                Guarded { inner: stream, state: state.clone(), limits, sleep, replacement: None, _permit: permit };
            Ok((stream, Counted { inner: service, state }))
        })
    }
}

/// Where a connection stands between requests.
#[derive(Debug)]
struct State {
    /// Requests whose answer is not yet written out.
    in_flight: usize,
    /// When the head of the next request began to arrive (or the connection was opened).
    head_from: Option<Instant>,
    /// When the last answer was written out (or the connection was opened).
    idle_from: Instant,
}

impl State {
    /// When a read waiting now must give up; `None` while a request is in flight.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight > 0 {
            return None;
        }
        Some(match self.head_from {
            Some(from) => from + limits.header_read,
            None => self.idle_from + limits.idle,
        })
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's stream under [`Limits`]; holds its permit of `server.max_connections`.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    state: Arc<Mutex<State>>,
    limits: Arc<Limits>,
    sleep: Pin<Box<Sleep>>,
    /// A problem+json answer written in place of hyper's own, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    /// Writes out what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let mut state = lock(&this.state);
                    if state.in_flight == 0 && state.head_from.is_none() {
                        state.head_from = Some(Instant::now());
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                loop {
                    let deadline = lock(&this.state).deadline(&this.limits);
                    // While a request is in flight the timer only wakes the read now and then
                    // to look again (an HTTP/2 stream may end on another task).
                    let wake = deadline.unwrap_or_else(|| Instant::now() + this.limits.idle);
                    if this.sleep.deadline() != wake {
                        this.sleep.as_mut().reset(wake);
                    }
                    if this.sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if deadline.is_some() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no complete request within server.header_read_timeout_seconds or idle_timeout_seconds",
                        )));
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if lock(&this.state).in_flight == 0
            && let Some(replacement) = replacement(buf, this.limits.tls)
        {
            this.replacement = Some((replacement, 0));
            // What is not out yet goes with the next write, flush or shutdown.
            let _ = this.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands over each head in one piece, which `replacement` reads.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// A problem+json answer in place of hyper's own error answer in `written`, if it is one: an
/// HTTP/1 error head without the `x-content-type-options` header every answer of the
/// application carries.
fn replacement(written: &[u8], tls: bool) -> Option<Vec<u8>> {
    if !written.starts_with(b"HTTP/1.") {
        return None;
    }
    let code: u16 = std::str::from_utf8(written.get(9..12)?).ok()?.parse().ok()?;
    let status = StatusCode::from_u16(code).ok().filter(|s| s.is_client_error() || s.is_server_error())?;
    let start = &written[..written.len().min(16 * 1024)];
    let head_end = start.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&written[..head_end]).ok()?;
    if head.to_ascii_lowercase().contains("\r\nx-content-type-options:") {
        return None;
    }
    let detail = match status {
        StatusCode::URI_TOO_LONG => {
            "the request's path and query are longer than this server reads (64 KiB); send fewer or shorter \
             query parameters (lists take at most 100 ids)"
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request's headers are larger than this server reads; send fewer or shorter headers"
        }
        StatusCode::REQUEST_TIMEOUT => "the request did not arrive in time",
        _ if status.is_server_error() => "the request could not be served; try again",
        _ => "the request is not valid HTTP/1.1 (request line or headers could not be read)",
    };
    let slug = match status {
        StatusCode::URI_TOO_LONG => "uri-too-long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "header-fields-too-large",
        StatusCode::BAD_REQUEST => "bad-request",
        _ => "error",
    };
    let problem = Problem {
        kind: format!("/problems/{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: code,
        detail: detail.to_string(),
        instance: None,
        errors: Vec::new(),
        request_id: Some(uuid::Uuid::now_v7().to_string()),
        error: None,
        error_description: None,
    };
    let body = serde_json::to_vec(&problem).ok()?;
    let date = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("date").then(|| value.trim().to_string())
    });
    let mut answer = format!("HTTP/1.1 {} {}\r\n", code, status.canonical_reason().unwrap_or("Error"));
    answer.push_str("content-type: application/problem+json\r\n");
    answer.push_str(&format!("content-length: {}\r\n", body.len()));
    answer.push_str("connection: close\r\n");
    answer.push_str("x-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\nx-frame-options: DENY\r\n");
    answer.push_str("content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n");
    if tls {
        answer.push_str("strict-transport-security: max-age=31536000; includeSubDomains\r\n");
    }
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    let mut bytes = answer.into_bytes();
    bytes.extend_from_slice(&body);
    Some(bytes)
}

/// The connection's service: counts a request in flight from its call until its answer's body
/// is written out (or dropped).
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    state: Arc<Mutex<State>>,
}

impl<S, B> tower::Service<Request<B>> for Counted<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let flight = InFlight::start(self.state.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Body::new(CountedBody { inner: body, _flight: flight })))
        })
    }
}

/// One request in flight, until dropped.
#[derive(Debug)]
struct InFlight(Arc<Mutex<State>>);

impl InFlight {
    fn start(state: Arc<Mutex<State>>) -> Self {
        {
            let mut state = lock(&state);
            state.in_flight += 1;
            state.head_from = None;
        }
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_from = Instant::now();
            state.head_from = None;
        }
    }
}

/// An answer's body that ends its request's flight when it is done with.
#[derive(Debug)]
struct CountedBody {
    inner: Body,
    _flight: InFlight,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_error_answers_become_problems_and_the_applications_stay() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 17:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper, false).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(head.contains("date: Thu, 03 Dec 2026 17:00:00 GMT"));
        assert!(!head.contains("strict-transport-security"));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 414);
        assert!(replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n", true).is_some());
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\nx-content-type-options: nosniff\r\n\r\n{}";
        assert!(replacement(ours, false).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false).is_none());
        assert!(replacement(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00", false).is_none(), "HTTP/2 frames pass");
    }
}
