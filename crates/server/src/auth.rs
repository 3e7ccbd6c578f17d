//! OAuth 2.0 client credentials (RFC 6749 §4.4): the token, revocation (RFC 7009) and
//! introspection (RFC 7662) endpoints, secret and token generation, and the bearer-token
//! extractor every `/api/v1` handler takes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward_domain::{AccessToken, ApiClient, ClientId, Scope, Scopes, SecretHash, Timestamp};
use steward_store::{Actor, ActorKind, AuditDraft, Target, TenantCtx};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::ratelimit::{self, BudgetSlot};
use crate::state::AppState;

const SECRET_PREFIX: &str = "stw_cs_";
const TOKEN_PREFIX: &str = "stw_at_";

/// A new random secret with its hash; the secret is shown once and never stored.
pub fn new_secret(prefix: &str) -> (String, SecretHash) {
    let bytes: [u8; 32] = rand::rng().random();
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&secret);
    (secret, hash)
}

pub fn new_client_secret() -> (String, SecretHash) {
    new_secret(SECRET_PREFIX)
}

pub fn hash_secret(secret: &str) -> SecretHash {
    #[cfg(test)]
    tests::HASHES.with(|count| count.set(count.get() + 1));
    SecretHash(Sha256::digest(secret.as_bytes()).into())
}

fn hashes_match(a: &SecretHash, b: &SecretHash) -> bool {
    #[cfg(test)]
    tests::COMPARISONS.with(|count| count.set(count.get() + 1));
    a.0.ct_eq(&b.0).into()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    pub grant_type: Option<String>,
    /// Space-separated scopes; all of the client's when absent.
    pub scope: Option<String>,
    /// With `client_secret_post`; otherwise use HTTP Basic (`client_secret_basic`).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u32,
    pub scope: String,
}

/// Issues an access token for a client's credentials.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        (status = 400, description = "Bad grant or scope (RFC 6749 §5.2)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Client authentication failed", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts for this client id or network (api.token_requests_per_minute…); see Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn issue_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<Extension<BudgetSlot>>,
    headers: HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Result<Response, ApiError> {
    let client = authenticate_client(
        &state,
        (peer, slot.as_deref()),
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(ApiError::OAuth {
                code: "unsupported_grant_type",
                description: format!("grant_type {other:?} is not supported; use client_credentials"),
            });
        }
        None => {
            return Err(ApiError::OAuth { code: "invalid_request", description: "grant_type is required".into() });
        }
    }
    let scopes = match request.scope.as_deref().map(Scopes::parse) {
        None => client.scopes.clone(),
        Some(Ok(asked)) if asked.is_empty() => client.scopes.clone(),
        Some(Ok(asked)) if asked.is_subset(&client.scopes) => asked,
        Some(Ok(_)) => {
            return Err(ApiError::OAuth {
                code: "invalid_scope",
                description: format!("the client may only ask for: {}", client.scopes),
            });
        }
        Some(Err(error)) => return Err(ApiError::OAuth { code: "invalid_scope", description: error.to_string() }),
    };
    let (token, token_hash) = new_secret(TOKEN_PREFIX);
    let ttl = state.settings.api.token_ttl_seconds;
    let issued_at = state.clock.now();
    let expires_at = issued_at
        .checked_add(time::Duration::seconds(i64::from(ttl)))
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("token expiry out of range")))?;
    let record = AccessToken {
        token_hash,
        client_id: client.id,
        tenant_id: client.tenant_id,
        scopes: scopes.clone(),
        issued_at,
        expires_at,
    };
    state.store.store_token(&record).await?;
    tracing::info!(client.id = %client.id, tenant.id = %client.tenant_id, "token issued");
    let body = TokenResponse { access_token: token, token_type: "Bearer", expires_in: ttl, scope: scopes.to_string() };
    Ok(no_store(Json(body).into_response()))
}

/// The client that the request authenticates as, by `client_secret_basic` or
/// `client_secret_post`: one code path for the token, revocation and introspection endpoints.
///
/// Attempts are limited per client network and per presented client id, known or not
/// (`api.token_requests_per_minute…`), before any secret is looked at: past either, 429.
async fn authenticate_client(
    state: &AppState,
    (peer, slot): (SocketAddr, Option<&BudgetSlot>),
    headers: &HeaderMap,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<ApiClient, ApiError> {
    let privacy = &state.settings.privacy;
    let policy = steward_domain::MaskPolicy::new(privacy.ipv4_prefix, privacy.ipv6_prefix).unwrap_or_default();
    let network = state.edge.client_address(peer, headers).masked(policy);
    ratelimit::spend(slot, &mut std::iter::once_with(|| state.limits.token_network.check(&network)))
        .inspect_err(|_| tracing::info!("token endpoint rate limited per network"))?;
    let (client_id, secret) = client_credentials(headers, body_id, body_secret)?;
    // Keyed by what was presented, so that made-up ids are limited too; bounded in length.
    let key: String = client_id.chars().take(64).collect();
    ratelimit::spend(slot, &mut std::iter::once_with(|| state.limits.token_client.check(&key)))
        .inspect_err(|_| tracing::info!("token endpoint rate limited per client id"))?;
    // A malformed id is looked up too (as an id nobody has), so that it costs the same query.
    let parsed = ClientId::parse(&client_id).ok();
    let client = state.store.find_client(parsed.unwrap_or_else(nobody)).await?.filter(|_| parsed.is_some());
    match check_secret(client, &secret) {
        Some(client) => Ok(client),
        None => Err(ApiError::Unauthorized {
            detail: "client authentication failed: unknown client or wrong secret".into(),
            challenge: "Basic realm=\"steward\"".into(),
            oauth_error: Some("invalid_client"),
        }),
    }
}

/// A client id no client has (ids are random UUIDv7s): what a malformed id is looked up as.
fn nobody() -> ClientId {
    static NOBODY: std::sync::OnceLock<ClientId> = std::sync::OnceLock::new();
    *NOBODY.get_or_init(ClientId::new)
}

/// The hash an unknown client's secret is compared with: of a random secret nobody knows.
fn dummy_secret_hash() -> &'static SecretHash {
    static DUMMY: std::sync::OnceLock<SecretHash> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| new_client_secret().1)
}

/// The client whose secret `secret` is. The same work whether the client is known or not:
/// one hash of the presented secret and one constant-time comparison, with a dummy hash
/// standing in for an unknown client's, so the answer's timing does not tell which ids exist.
fn check_secret(client: Option<ApiClient>, secret: &str) -> Option<ApiClient> {
    let presented = hash_secret(secret);
    let expected = match &client {
        Some(client) => &client.secret_hash,
        None => dummy_secret_hash(),
    };
    let matches = hashes_match(expected, &presented);
    client.filter(|_| matches)
}

/// The client id and secret from HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or the body;
/// using both is refused.
fn client_credentials(
    headers: &HeaderMap,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<(String, String), ApiError> {
    let unauthorized = |detail: &str| ApiError::Unauthorized {
        detail: detail.to_string(),
        challenge: "Basic realm=\"steward\"".into(),
        oauth_error: Some("invalid_client"),
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    match (basic, body_id, body_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::OAuth {
            code: "invalid_request",
            description: "use one client authentication method, not both Basic and body credentials".into(),
        }),
        (Some(encoded), None, None) => {
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| unauthorized("malformed Basic credentials"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| unauthorized("malformed Basic credentials"))?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            let id = form_decode(id).ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            let secret = form_decode(secret).ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            Ok((id, secret))
        }
        (None, Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
        _ => Err(unauthorized("client authentication is required (HTTP Basic or client_id and client_secret)")),
    }
}

fn form_decode(text: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("v={text}").as_bytes()).next().map(|(_, v)| v.into_owned())
}

/// A token revocation (RFC 7009) or introspection (RFC 7662) request.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenQuery {
    /// The access token.
    pub token: Option<String>,
    /// `access_token` or `refresh_token`; accepted and ignored, as Steward issues only access
    /// tokens and looks the token up the same way whatever the hint.
    pub token_type_hint: Option<String>,
    /// With `client_secret_post`; otherwise use HTTP Basic (`client_secret_basic`).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The token and the secret never reach a log, even by accident.
impl std::fmt::Debug for TokenQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenQuery")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("token_type_hint", &self.token_type_hint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl TokenQuery {
    fn token(&self) -> Result<&str, ApiError> {
        self.token
            .as_deref()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::OAuth { code: "invalid_request", description: "token is required".into() })
    }
}

/// Revokes an access token of the calling client (RFC 7009). The answer is 200 with an empty
/// body whether or not the token existed, so it tells nothing about other clients' tokens,
/// which are never revoked here.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or was never a token of this client (empty body)"),
        (status = 400, description = "No token given (RFC 6749 §5.2 `invalid_request`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<Extension<BudgetSlot>>,
    headers: HeaderMap,
    Form(request): Form<TokenQuery>,
) -> Result<Response, ApiError> {
    let client = authenticate_client(
        &state,
        (peer, slot.as_deref()),
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    let token = request.token()?;
    let revoked = state.store.delete_token(&hash_secret(token), client.id).await?;
    if revoked {
        let ctx = TenantCtx::new(client.tenant_id);
        let draft = AuditDraft {
            at: state.clock.now(),
            actor: Actor { kind: ActorKind::Client, id: Some(client.id.to_string()) },
            action: "token.revoked".into(),
            target: Target { kind: "access_token".into(), count: 1, ids: Vec::new() },
            detail: serde_json::json!({}),
            ip_network: None,
        };
        crate::api::audit::record(&state, &ctx, draft).await?;
        tracing::info!(client.id = %client.id, tenant.id = %client.tenant_id, "token revoked");
    }
    Ok(no_store(StatusCode::OK.into_response()))
}

/// What RFC 7662 says about a token: `{"active": false}` alone unless it is active.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// Space-separated scopes of the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Always `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The subject: for client credentials, the client itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl Introspection {
    fn inactive() -> Self {
        Self { active: false, scope: None, client_id: None, token_type: None, exp: None, iat: None, sub: None }
    }

    fn of(token: &AccessToken) -> Self {
        Self {
            active: true,
            scope: Some(token.scopes.to_string()),
            client_id: Some(token.client_id.to_string()),
            token_type: Some("Bearer"),
            exp: Some(unix_seconds(token.expires_at)),
            iat: Some(unix_seconds(token.issued_at)),
            sub: Some(token.client_id.to_string()),
        }
    }
}

fn unix_seconds(at: Timestamp) -> i64 {
    at.unix_micros().div_euclid(1_000_000)
}

/// Tells a client of a tenant whether a token is active and what it may do (RFC 7662). Any
/// client of the tenant may ask about the tenant's tokens; unknown, expired, revoked and other
/// tenants' tokens are all just `{"active": false}`.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's state", body = Introspection),
        (status = 400, description = "No token given (RFC 6749 §5.2 `invalid_request`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn introspect_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<Extension<BudgetSlot>>,
    headers: HeaderMap,
    Form(request): Form<TokenQuery>,
) -> Result<Response, ApiError> {
    let client = authenticate_client(
        &state,
        (peer, slot.as_deref()),
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    let token = request.token()?;
    let record = state.store.find_token(&hash_secret(token)).await?;
    let answer = match record {
        Some(record) if record.tenant_id == client.tenant_id && record.expires_at > state.clock.now() => {
            Introspection::of(&record)
        }
        _ => Introspection::inactive(),
    };
    Ok(no_store(Json(answer).into_response()))
}

/// Token endpoint answers must not be cached (RFC 6749 §5.1).
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An authenticated API caller: the tenant it acts for and what it may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ctx: TenantCtx,
    pub client_id: ClientId,
    pub scopes: Scopes,
    /// The peer's network, masked like every stored address (for the audit log). Behind a
    /// proxy this is the proxy's network until trusted proxies are configured.
    pub ip_network: Option<steward_domain::IpNetwork>,
}

impl Caller {
    /// Refuses with 403 and an `insufficient_scope` challenge unless the token holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                detail: format!("this token lacks the scope {scope}; ask for a token with it"),
                challenge: Some(format!("Bearer realm=\"steward\", error=\"insufficient_scope\", scope=\"{scope}\"")),
            })
        }
    }
}

fn invalid_token(detail: &str) -> ApiError {
    ApiError::Unauthorized {
        detail: detail.to_string(),
        challenge: format!("Bearer realm=\"steward\", error=\"invalid_token\", error_description=\"{detail}\""),
        oauth_error: None,
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized {
                detail: "a bearer token is required; get one from /oauth/token".into(),
                challenge: "Bearer realm=\"steward\"".into(),
                oauth_error: None,
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_token("the Authorization header is not a bearer token"))?;
        let hash = hash_secret(token);
        let record = state.store.find_token(&hash).await?.ok_or_else(|| invalid_token("the token is not valid"))?;
        if record.expires_at <= state.clock.now() {
            return Err(invalid_token("the token has expired"));
        }
        let privacy = &state.settings.privacy;
        let policy = steward_domain::MaskPolicy::new(privacy.ipv4_prefix, privacy.ipv6_prefix).unwrap_or_default();
        let ip_network = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| steward_domain::IpNetwork::mask_with(info.0.ip(), policy));
        let caller = Caller {
            ctx: TenantCtx::new(record.tenant_id),
            client_id: record.client_id,
            scopes: record.scopes,
            ip_network,
        };
        let budget = state.limiter.check(&caller.client_id);
        if let Some(slot) = parts.extensions.get::<BudgetSlot>() {
            slot.set(budget.unwrap_or_else(|refusal| refusal));
        }
        if let Err(refusal) = budget {
            tracing::info!(client.id = %caller.client_id, "rate limited");
            return Err(ratelimit::refused(refusal));
        }
        tracing::Span::current().record("tenant.id", tracing::field::display(record.tenant_id));
        tracing::Span::current().record("client.id", tracing::field::display(record.client_id));
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::cell::Cell;

    use steward_domain::TenantId;

    use super::*;

    thread_local! {
        /// Secret hashes computed on this thread.
        pub(super) static HASHES: Cell<u32> = const { Cell::new(0) };
        /// Constant-time hash comparisons made on this thread.
        pub(super) static COMPARISONS: Cell<u32> = const { Cell::new(0) };
    }

    /// What `check_secret` did: its answer, and how many hashes and comparisons it made.
    fn work(client: Option<ApiClient>, secret: &str) -> (bool, u32, u32) {
        let _ = dummy_secret_hash();
        HASHES.with(|count| count.set(0));
        COMPARISONS.with(|count| count.set(0));
        let found = check_secret(client, secret).is_some();
        (found, HASHES.with(Cell::get), COMPARISONS.with(Cell::get))
    }

    #[test]
    fn an_unknown_client_costs_the_same_hash_and_comparison_as_a_known_one_with_a_wrong_secret() {
        let (secret, secret_hash) = new_client_secret();
        let client = ApiClient {
            id: ClientId::new(),
            tenant_id: TenantId::new(),
            name: "crm".into(),
            secret_hash,
            scopes: Scopes::all(),
            created_at: Timestamp::now(),
        };
        assert_eq!(work(Some(client.clone()), &secret), (true, 1, 1));
        assert_eq!(work(Some(client), "stw_cs_wrong"), (false, 1, 1));
        assert_eq!(work(None, "stw_cs_wrong"), (false, 1, 1), "unknown: one hash, one comparison too");
        assert_eq!(work(None, &secret), (false, 1, 1), "a real secret without its client is nothing");
    }

    #[test]
    fn a_malformed_client_id_is_looked_up_as_an_id_nobody_has() {
        assert_eq!(nobody(), nobody(), "the same stand-in every time");
        assert_ne!(nobody(), ClientId::new());
    }
}
