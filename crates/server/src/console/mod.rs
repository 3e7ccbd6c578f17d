//! The web console's server side: sign-in with a password and a TOTP code or a recovery code,
//! TOTP enrolment, sessions in `HttpOnly; SameSite=Strict` cookies (`Secure` under TLS), and a
//! CSRF token on every form. Errors are pages, never problem+json.
//!
//! A user created with a password alone (`steward user create`) signs in with it once and
//! gets a session that can do nothing but enrol an authenticator app; every later sign-in needs
//! the password and a code.

mod admin;
mod charts;
mod exports;
mod records;
pub mod security;
mod subjects;
mod switching;
pub mod users;
mod views;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;
use serde_json::json;
use steward_domain::{Email, Permission, TenantId, Timestamp, User, UserId};
use steward_store::users::{self as stored, ConsoleSession, UserRecord};
use steward_store::{Actor, ActorKind, AuditDraft, Reservation, StoreError, StoreExt, Target, TenantCtx};

use crate::auth::hash_secret;
use crate::error::ApiError;
use crate::state::AppState;

const SESSION_COOKIE: &str = "steward_session";
/// Before sign-in, forms are bound to this random cookie instead of a session.
const CSRF_COOKIE: &str = "steward_csrf";
const SESSION_SECONDS: i64 = 8 * 3_600;
/// A password-only session exists to enrol TOTP and lasts only as long as that takes.
const ENROLMENT_SECONDS: i64 = 15 * 60;

const WRONG_CREDENTIALS: &str = "The organisation, email address or password is wrong.";
const WRONG_CODE: &str = "The code is wrong or has expired. Check that your device's clock is right and use the newest code, or one of your recovery codes.";
const CODE_REQUIRED: &str = "Enter the six-digit code from your authenticator app, or one of your recovery codes.";
const REPLAYED_CODE: &str =
    "This code has already been used. Wait for the next code from your authenticator app and try again.";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(records::show_overview))
        .route("/console/account", get(show_home))
        .route("/console/sign-in", get(show_sign_in).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/mfa/enrol", get(show_enrolment).post(confirm_enrolment))
        .route("/console/mfa/enrol/new", post(replace_enrolment))
        .merge(records::router())
        .merge(exports::router())
        .merge(subjects::router())
        .merge(admin::router())
        .merge(switching::router())
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    /// Not signed in, or the session expired.
    #[error("not signed in")]
    SignIn,
    /// Signed in with a password only: TOTP must be set up first.
    #[error("two-step sign-in is not set up")]
    Enrol,
    /// The user's role does not allow this; the text says what is needed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Too many sign-ins are being checked at once: 503 with `Retry-After`.
    #[error("too many sign-ins at once")]
    Busy,
    /// A refusal by the code the console shares with the API (a job not finished, a file
    /// expired…), shown as a page with the same status and explanation.
    #[error("{detail}")]
    Refused { status: StatusCode, detail: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        Self::Internal(anyhow::Error::new(error))
    }
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        let status = error.status();
        if status.is_server_error() {
            Self::Internal(anyhow::Error::new(error))
        } else {
            Self::Refused { status, detail: error.to_string() }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            Self::Csrf => page(
                StatusCode::FORBIDDEN,
                views::problem(
                    "Request refused",
                    "This form was not sent from a page of this console, or the page is too old. Reload it and try again.",
                ),
            ),
            Self::SignIn => to_sign_in(),
            Self::Enrol => Redirect::to("/console/mfa/enrol").into_response(),
            Self::Forbidden(detail) => page(StatusCode::FORBIDDEN, views::refusal("Not allowed", &detail)),
            Self::NotFound(detail) => page(StatusCode::NOT_FOUND, views::refusal("Not found", &detail)),
            Self::Busy => {
                let retry = security::BUSY_RETRY_SECONDS;
                let text = format!("Too many sign-ins are being checked right now. Try again in {retry} seconds.");
                let mut response = page(StatusCode::SERVICE_UNAVAILABLE, views::problem("Busy", &text));
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
                response
            }
            Self::Refused { status, detail } => page(status, views::refusal("Cannot do that", &detail)),
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "console request failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    views::problem(
                        "Something went wrong",
                        "An internal error occurred. Try again; if it persists, tell your operator.",
                    ),
                )
            }
        }
    }
}

/// An HTML page that is never cached, framed or allowed to run scripts.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, maud::Render::render(&markup).into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

fn unix_seconds(at: Timestamp) -> u64 {
    u64::try_from(at.unix_micros() / 1_000_000).unwrap_or(0)
}

/// A signed-in request: the session, its cookie value and the user.
struct Signed {
    token: String,
    session: ConsoleSession,
    ctx: TenantCtx,
    record: UserRecord,
    user: User,
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<Signed>, ConsoleError> {
    let Some(token) = security::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let users = state.store.users();
    let Some(session) = users.find_console_session(&hash_secret(token)).await? else {
        return Ok(None);
    };
    if session.expires_at <= state.clock.now() {
        users.delete_console_session(&session.token_hash).await?;
        return Ok(None);
    }
    let ctx = TenantCtx::new(session.tenant_id);
    let Some(record) = users.get_user(&ctx, session.user_id).await? else {
        return Ok(None);
    };
    let user = stored::open_user(&ctx, &*state.store.keys(&ctx)?, &record)?;
    tracing::Span::current().record("tenant.id", tracing::field::display(ctx.tenant_id()));
    Ok(Some(Signed { token: token.to_string(), session, ctx, record, user }))
}

async fn audit(
    state: &AppState,
    ctx: &TenantCtx,
    user: Option<UserId>,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), ConsoleError> {
    let draft = AuditDraft {
        at: state.clock.now(),
        actor: Actor { kind: ActorKind::User, id: user.map(|id| id.to_string()) },
        action: action.to_string(),
        target: Target {
            kind: "user".into(),
            count: u64::from(user.is_some()),
            ids: user.map(|id| vec![id.into_uuid()]).unwrap_or_default(),
        },
        detail,
        ip_network: peer_network(),
    };
    state.store.audit(ctx, &draft).await?;
    Ok(())
}

/// Opens a session and returns its `Set-Cookie` value.
async fn open_session(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &TenantCtx,
    user: UserId,
    mfa_passed: bool,
) -> Result<String, ConsoleError> {
    let token = security::new_token();
    let now = state.clock.now();
    let seconds = if mfa_passed { SESSION_SECONDS } else { ENROLMENT_SECONDS };
    let expires_at = now
        .checked_add(time::Duration::seconds(seconds))
        .ok_or_else(|| anyhow::anyhow!("session expiry out of range"))?;
    let session = ConsoleSession {
        token_hash: hash_secret(&token),
        tenant_id: ctx.tenant_id(),
        user_id: user,
        mfa_passed,
        created_at: now,
        expires_at,
    };
    state.store.users().create_console_session(&session).await?;
    Ok(security::set_cookie(SESSION_COOKIE, &token, "/", seconds, security::over_tls(headers)))
}

// ---- access ----------------------------------------------------------------------------

/// A user signed in with both factors, as every console page but sign-in and enrolment needs.
async fn member(state: &AppState, headers: &HeaderMap) -> Result<Signed, ConsoleError> {
    let signed = signed_in(state, headers).await?.ok_or(ConsoleError::SignIn)?;
    if !signed.session.mfa_passed {
        return Err(ConsoleError::Enrol);
    }
    Ok(signed)
}

/// A member whose role grants `permission`; otherwise a 403 page saying what is needed, and an
/// audit entry `console.refused` naming the page and the permission (as the API audits its
/// refusals). The navigation only hides what a role cannot do; this is the check.
async fn permitted(
    state: &AppState,
    headers: &HeaderMap,
    permission: Permission,
    page: &str,
) -> Result<Signed, ConsoleError> {
    let signed = member(state, headers).await?;
    if signed.user.role.can(permission) {
        return Ok(signed);
    }
    refuse(state, &signed, permission, page).await
}

async fn refuse<T>(state: &AppState, signed: &Signed, permission: Permission, page: &str) -> Result<T, ConsoleError> {
    let wanted = serde_json::to_value(permission).unwrap_or_default();
    audit(
        state,
        &signed.ctx,
        Some(signed.user.id),
        "console.refused",
        json!({"page": page, "permission": wanted, "role": signed.user.role.as_str()}),
    )
    .await?;
    Err(ConsoleError::Forbidden(format!(
        "Your role ({}) may not {}. Ask an admin or owner of your organisation if you need it.",
        signed.user.role.as_str(),
        views::permission_text(permission)
    )))
}

tokio::task_local! {
    /// The masked network of the browser a console request comes from, for its audit entries.
    static PEER: Option<steward_domain::IpNetwork>;
}

/// Remembers, for the rest of a console request, the network (masked as the privacy settings
/// say, never the address) it came from: the console's audit entries carry it like the API's.
pub async fn remember_peer(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let privacy = &state.settings.privacy;
    let policy = steward_domain::MaskPolicy::new(privacy.ipv4_prefix, privacy.ipv6_prefix).unwrap_or_default();
    let network = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| steward_domain::IpNetwork::mask_with(info.0.ip(), policy));
    PEER.scope(network, next.run(request)).await
}

/// The masked network of the current console request; none outside one (the command line).
pub(crate) fn peer_network() -> Option<steward_domain::IpNetwork> {
    PEER.try_with(|network| *network).ok().flatten()
}

/// A form field or query parameter, trimmed; empty when absent.
fn param<'a>(params: &'a std::collections::HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", |value| value.trim())
}

/// What every page's frame shows of the signed-in user.
fn chrome<'a>(signed: &'a Signed, csrf: &'a str, current: &'a str) -> views::Chrome<'a> {
    views::Chrome { email: signed.user.email.as_str(), role: signed.user.role, csrf, current, refresh: None }
}

/// The CSRF check of a form posted by a signed-in user.
fn check_csrf(signed: &Signed, presented: &str) -> Result<(), ConsoleError> {
    if security::csrf_matches(Some(&signed.token), Some(presented)) { Ok(()) } else { Err(ConsoleError::Csrf) }
}

/// The actor of the console's audit entries: the signed-in user.
fn acting(signed: &Signed) -> crate::subjects::Acting {
    crate::subjects::Acting {
        actor: Actor { kind: ActorKind::User, id: Some(signed.user.id.to_string()) },
        ip_network: peer_network(),
    }
}

// ---- home -------------------------------------------------------------------------------

async fn show_home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let Some(signed) = signed_in(&state, &headers).await? else {
        return Ok(to_sign_in());
    };
    if !signed.session.mfa_passed {
        return Ok(Redirect::to("/console/mfa/enrol").into_response());
    }
    let tenant = state.store.get_tenant(signed.ctx.tenant_id()).await?.map(|t| t.name).unwrap_or_default();
    let left = state.store.users().count_recovery_codes(&signed.ctx, signed.user.id).await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/account");
    Ok(page(StatusCode::OK, views::home(&frame, &signed.user, &tenant, left)))
}

// ---- sign-in ----------------------------------------------------------------------------

async fn show_sign_in(headers: HeaderMap) -> Response {
    let seed = security::cookie(&headers, CSRF_COOKIE)
        .filter(|seed| seed.len() >= 32)
        .map_or_else(security::new_token, str::to_string);
    let csrf = security::csrf_token(&seed);
    let form = views::SignIn { csrf: &csrf, tenant: "", email: "", message: None };
    let cookie = security::set_cookie(CSRF_COOKIE, &seed, "/console", 86_400, security::over_tls(&headers));
    with_cookie(page(StatusCode::OK, views::sign_in(&form)), &cookie)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    csrf: String,
    tenant: String,
    email: String,
    password: String,
    code: String,
}

/// The tenant the form names (by slug or id) and the user with that address in it.
async fn find_user(
    state: &AppState,
    tenant: &str,
    email: &str,
) -> Result<(Option<TenantCtx>, Option<UserRecord>), ConsoleError> {
    let tenant = tenant.trim();
    let tenants = match TenantId::parse(tenant) {
        Ok(id) => state.store.get_tenant(id).await?.into_iter().collect(),
        Err(_) => state.store.users().tenants_by_slug(&tenant.to_lowercase()).await?,
    };
    let first = tenants.first().map(|t| TenantCtx::new(t.id));
    let Ok(email) = Email::parse(email) else {
        return Ok((first, None));
    };
    // Slugs come from names and may repeat: the address decides between such tenants.
    for tenant in &tenants {
        let ctx = TenantCtx::new(tenant.id);
        let key = stored::email_key(&*state.store.keys(&ctx)?, &email);
        if let Some(record) = state.store.users().find_user_by_email_key(&ctx, &key).await? {
            return Ok((Some(ctx), Some(record)));
        }
    }
    Ok((first, None))
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let seed = security::cookie(&headers, CSRF_COOKIE);
    if !security::csrf_matches(seed, Some(&form.csrf)) {
        return Err(ConsoleError::Csrf);
    }
    let csrf = security::csrf_token(seed.unwrap_or_default());
    let refuse = |status: StatusCode, message: &str| {
        let view = views::SignIn { csrf: &csrf, tenant: &form.tenant, email: &form.email, message: Some(message) };
        page(status, views::sign_in(&view))
    };
    let now = state.clock.now();
    let (ctx, record) = find_user(&state, &form.tenant, &form.email).await?;
    let (ctx, record) = match (ctx, record) {
        (Some(ctx), Some(record)) => (ctx, record),
        (ctx, _) => {
            // As long as a wrong password takes, so the answer's timing tells nothing; in the
            // same line as real checks, so unknown names cannot flood the node either.
            state.passwords.verify(form.password.clone(), None).await.map_err(|_| ConsoleError::Busy)?;
            if let Some(ctx) = ctx {
                audit(&state, &ctx, None, "user.sign_in_failed", json!({"reason": "unknown_user"})).await?;
            }
            return Ok(refuse(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS));
        }
    };
    // The attempt is counted before anything is checked, in one statement with the lock: of
    // any number sent at once, on any number of nodes, at most the free ones are checked.
    let reserved = state.store.users().reserve_sign_in(&ctx, record.id, now, security::LOCK_SCHEDULE).await?;
    let (attempt, locked_until) = match reserved {
        Reservation::Granted { attempt, locked_until } => (attempt, locked_until),
        Reservation::Locked { until } => {
            let seconds = seconds_until(now, until);
            audit(&state, &ctx, Some(record.id), "user.sign_in_failed", json!({"reason": "locked"})).await?;
            return Ok(locked(refuse(StatusCode::TOO_MANY_REQUESTS, &locked_message(seconds)), seconds));
        }
        Reservation::Unknown => return Ok(refuse(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS)),
    };
    let failure = Failure { state: &state, ctx: &ctx, record: &record, now, attempt, locked_until };
    let checked = state.passwords.verify(form.password.clone(), Some(record.password_hash.clone())).await;
    if !checked.map_err(|_| ConsoleError::Busy)? {
        return failure.count("wrong_password", WRONG_CREDENTIALS, refuse).await;
    }
    let method = if record.totp_enrolled_at.is_some() {
        let code = form.code.trim();
        let users = state.store.users();
        let keys = state.store.keys(&ctx)?;
        if code.is_empty() {
            return failure.count("code_required", CODE_REQUIRED, refuse).await;
        } else if security::looks_like_totp(code) {
            let sealed = record.totp_secret.as_deref().unwrap_or_default();
            let secret = stored::open_totp_secret(&ctx, &keys, record.id, sealed)?;
            let totp = security::totp(&secret, "console user")?;
            match security::totp_step(&totp, code, unix_seconds(now)) {
                None => return failure.count("wrong_code", WRONG_CODE, refuse).await,
                Some(step) if !users.use_totp_step(&ctx, record.id, step).await? => {
                    return failure.count("replayed_code", REPLAYED_CODE, refuse).await;
                }
                Some(_) => "totp",
            }
        } else {
            let used = match security::normalise_recovery_code(code) {
                Some(code) => {
                    let hash = stored::recovery_code_hash(&keys, record.id, &code);
                    users.use_recovery_code(&ctx, record.id, &hash).await?
                }
                None => false,
            };
            if !used {
                return failure.count("wrong_recovery_code", WRONG_CODE, refuse).await;
            }
            "recovery_code"
        }
    } else {
        "password_before_enrolment"
    };
    // Clears the count unless attempts were reserved after this one: a burst this success
    // was part of keeps the lock it earned.
    state.store.users().clear_sign_in(&ctx, record.id, attempt).await?;
    let enrolled = record.totp_enrolled_at.is_some();
    let cookie = open_session(&state, &headers, &ctx, record.id, enrolled).await?;
    let mut detail = json!({"method": method, "attempt": attempt});
    if method == "recovery_code" {
        detail["recovery_codes_left"] = state.store.users().count_recovery_codes(&ctx, record.id).await?.into();
    }
    audit(&state, &ctx, Some(record.id), "user.signed_in", detail).await?;
    let next = if enrolled { "/console" } else { "/console/mfa/enrol" };
    Ok(with_cookie(Redirect::to(next).into_response(), &cookie))
}

fn locked_message(seconds: i64) -> String {
    format!("Too many failed sign-ins: this account is locked. Try again in {seconds} seconds.")
}

fn locked(mut response: Response, seconds: i64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// How long until `until`, in whole seconds (at least 1), for `Retry-After`.
fn seconds_until(now: Timestamp, until: Timestamp) -> i64 {
    ((until.unix_micros() - now.unix_micros()) / 1_000_000).max(1)
}

/// A failed attempt of a known user, counted when it was reserved: locked if it was the last
/// free one (or later), audited with its reason (never the password or code).
struct Failure<'a> {
    state: &'a AppState,
    ctx: &'a TenantCtx,
    record: &'a UserRecord,
    now: Timestamp,
    attempt: u32,
    locked_until: Option<Timestamp>,
}

impl Failure<'_> {
    async fn count(
        &self,
        reason: &str,
        message: &str,
        refuse: impl Fn(StatusCode, &str) -> Response,
    ) -> Result<Response, ConsoleError> {
        let lock = self.locked_until.map(|until| seconds_until(self.now, until));
        let detail = json!({"reason": reason, "failed_attempts": self.attempt, "locked_for_seconds": lock});
        audit(self.state, self.ctx, Some(self.record.id), "user.sign_in_failed", detail).await?;
        Ok(match lock {
            Some(seconds) => locked(refuse(StatusCode::TOO_MANY_REQUESTS, &locked_message(seconds)), seconds),
            None => refuse(StatusCode::UNAUTHORIZED, message),
        })
    }
}

// ---- sign-out ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf: String,
    code: String,
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    let cleared = security::set_cookie(SESSION_COOKIE, "", "/", 0, security::over_tls(&headers));
    let Some(signed) = signed_in(&state, &headers).await? else {
        return Ok(with_cookie(to_sign_in(), &cleared));
    };
    if !security::csrf_matches(Some(&signed.token), Some(&form.csrf)) {
        return Err(ConsoleError::Csrf);
    }
    state.store.users().delete_console_session(&signed.session.token_hash).await?;
    audit(&state, &signed.ctx, Some(signed.user.id), "user.signed_out", json!({})).await?;
    Ok(with_cookie(to_sign_in(), &cleared))
}

// ---- TOTP enrolment ---------------------------------------------------------------------

fn enrolment_page(
    signed: &Signed,
    secret: &[u8],
    message: Option<&str>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let totp = security::totp(secret, signed.user.email.as_str())?;
    let uri = totp.to_url().map_err(|e| anyhow::anyhow!("otpauth URI: {e}"))?;
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| anyhow::anyhow!("QR code: {e}"))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    // The SVG goes inline into HTML: without its XML declaration.
    let svg = svg.find("<svg").map_or(svg.as_str(), |start| &svg[start..]);
    let base32 = totp_rs::Secret::new(secret.to_vec().into_boxed_slice()).to_base32();
    let csrf = security::csrf_token(&signed.token);
    let view = views::Enrol { csrf: &csrf, uri: &uri, secret: &base32, qr_svg: svg, message };
    Ok(page(status, views::enrol(&view)))
}

async fn show_enrolment(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let Some(signed) = signed_in(&state, &headers).await? else {
        return Ok(to_sign_in());
    };
    if signed.user.mfa_enrolled {
        return Ok(Redirect::to("/console").into_response());
    }
    // One proposal at a time, kept in the database until confirmed or replaced on request: a
    // reload, a second tab or another node shows the secret already scanned.
    let keys = state.store.keys(&signed.ctx)?;
    let sealed = match signed.record.totp_secret.clone() {
        Some(sealed) => sealed,
        None => {
            let secret = security::new_totp_secret();
            let sealed = stored::seal_totp_secret(&signed.ctx, &keys, signed.user.id, &secret);
            let users = state.store.users();
            users.start_totp_enrolment(&signed.ctx, signed.user.id, &sealed, false).await?;
            // Whichever of two parallel first visits wrote first is the proposal.
            match users.get_user(&signed.ctx, signed.user.id).await? {
                Some(record) if record.totp_enrolled_at.is_none() => record.totp_secret.unwrap_or(sealed),
                _ => return Ok(Redirect::to("/console").into_response()),
            }
        }
    };
    let secret = stored::open_totp_secret(&signed.ctx, &keys, signed.user.id, &sealed)?;
    enrolment_page(&signed, &secret, None, StatusCode::OK)
}

/// "Show a new code instead": replaces the pending proposal on purpose.
async fn replace_enrolment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    let Some(signed) = signed_in(&state, &headers).await? else {
        return Ok(to_sign_in());
    };
    if !security::csrf_matches(Some(&signed.token), Some(&form.csrf)) {
        return Err(ConsoleError::Csrf);
    }
    if signed.user.mfa_enrolled {
        return Ok(Redirect::to("/console").into_response());
    }
    let secret = security::new_totp_secret();
    let sealed = stored::seal_totp_secret(&signed.ctx, &*state.store.keys(&signed.ctx)?, signed.user.id, &secret);
    state.store.users().start_totp_enrolment(&signed.ctx, signed.user.id, &sealed, true).await?;
    Ok(Redirect::to("/console/mfa/enrol").into_response())
}

async fn confirm_enrolment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    let Some(signed) = signed_in(&state, &headers).await? else {
        return Ok(to_sign_in());
    };
    if !security::csrf_matches(Some(&signed.token), Some(&form.csrf)) {
        return Err(ConsoleError::Csrf);
    }
    if signed.user.mfa_enrolled {
        return Ok(Redirect::to("/console").into_response());
    }
    let Some(sealed) = signed.record.totp_secret.as_deref() else {
        return Ok(Redirect::to("/console/mfa/enrol").into_response());
    };
    let keys = state.store.keys(&signed.ctx)?;
    let secret = stored::open_totp_secret(&signed.ctx, &keys, signed.user.id, sealed)?;
    let now = state.clock.now();
    let Some(step) =
        security::totp_step(&security::totp(&secret, "console user")?, form.code.trim(), unix_seconds(now))
    else {
        return enrolment_page(&signed, &secret, Some(WRONG_CODE), StatusCode::UNPROCESSABLE_ENTITY);
    };
    let codes = security::new_recovery_codes();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .filter_map(|code| security::normalise_recovery_code(code))
        .map(|code| stored::recovery_code_hash(&keys, signed.user.id, &code))
        .collect();
    let users = state.store.users();
    if !users.finish_totp_enrolment(&signed.ctx, signed.user.id, sealed, now, step, &hashes).await? {
        // Enrolled meanwhile, or the proposal was replaced in another tab after this page was
        // loaded: the code proved a secret that is no longer the one pending.
        return Ok(Redirect::to("/console/mfa/enrol").into_response());
    }
    audit(
        &state,
        &signed.ctx,
        Some(signed.user.id),
        "user.mfa_enrolled",
        json!({"method": "totp", "recovery_codes": codes.len()}),
    )
    .await?;
    // A new session for the new privilege: the password-only one ends here.
    users.delete_console_session(&signed.session.token_hash).await?;
    let cookie = open_session(&state, &headers, &signed.ctx, signed.user.id, true).await?;
    Ok(with_cookie(page(StatusCode::OK, views::recovery_codes(&codes)), &cookie))
}
