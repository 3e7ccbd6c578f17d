//! Public collection: tracker script, /collect, and the pipeline that turns hits into journeys.
//!
//! The edge resolves who sent a request (trusted proxies), where from (country header or GeoIP
//! on the full address, in memory) and with what (user agent reduced to device, OS, browser);
//! the address is masked before anything is queued, written or logged. Events are checked one
//! by one, and the valid ones of a batch are stored by the [`pipeline`] even when others fail.

pub mod edge;
pub mod payload;
pub mod pipeline;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward_domain::journey::HitContext;
use steward_domain::{FieldError, MaskPolicy, Site, SiteKey, TenantId, Timestamp, ValidationErrors, VisitorId};
use steward_store::{DocKind, Store, StoreError, TenantCtx};

use crate::error::ApiError;
use crate::ratelimit::{self, BudgetSlot};
use crate::state::AppState;
use payload::{Accepted, Checks, Envelope, Rejected};
use pipeline::{CollectError, Visit};

/// The tracker as shipped; `GET /tracker.js` puts the site's settings in front of it.
const TRACKER: &str = include_str!("tracker.js");
/// How long a site looked up by key is believed (settings changes take this long to apply).
const SITE_TTL: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new().route("/collect", axum::routing::options(preflight))
}

#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    site_key: Option<String>,
}

/// The answer to a batch: how many events were stored and which were not, by index.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CollectReport {
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    /// Events not collected because the browser asked not to be tracked (Global Privacy Control
    /// or Do-Not-Track) and the site honours that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<usize>,
}

/// Sites by key, briefly remembered: every collection request names one.
#[derive(Debug, Default)]
pub struct SiteCache {
    sites: Mutex<HashMap<String, (Option<Site>, Instant)>>,
    salt: Mutex<Option<(i64, [u8; 32])>>,
}

impl SiteCache {
    async fn find(&self, store: &dyn Store, key: &SiteKey) -> Result<Option<Site>, StoreError> {
        if let Some((site, at)) = self.sites.lock().ok().and_then(|sites| sites.get(key.as_str()).cloned())
            && at.elapsed() < SITE_TTL
        {
            return Ok(site);
        }
        let site = store.find_site_by_key(key).await?;
        if let Ok(mut sites) = self.sites.lock() {
            if sites.len() > 10_000 {
                sites.clear();
            }
            sites.insert(key.as_str().to_string(), (site.clone(), Instant::now()));
        }
        Ok(site)
    }

    /// The salt of today's cookieless ids, shared by every node through the store.
    async fn salt(&self, store: &dyn Store, day: i64) -> Result<[u8; 32], StoreError> {
        if let Some((known, salt)) = self.salt.lock().ok().and_then(|salt| *salt)
            && known == day
        {
            return Ok(salt);
        }
        let salt = store.daily_salt(day, rand::random()).await?;
        if let Ok(mut kept) = self.salt.lock() {
            *kept = Some((day, salt));
        }
        Ok(salt)
    }
}

/// How long a tenant's count of stored events is believed before it is counted again.
const QUOTA_TTL: Duration = Duration::from_secs(30);

/// Stored events per tenant, counted by the store now and then and by this node in between,
/// held against `collect.max_events_per_tenant`.
#[derive(Debug, Default)]
pub struct TenantQuotas {
    counts: Mutex<HashMap<TenantId, (u64, Instant)>>,
}

impl TenantQuotas {
    /// Refuses `adding` more events of the site's tenant when they would pass the quota.
    async fn admit(&self, state: &AppState, site: &Site, adding: usize) -> Result<(), ApiError> {
        let max = state.settings.collect.max_events_per_tenant;
        if max == 0 {
            return Ok(());
        }
        let tenant = site.tenant_id;
        let cached = self.counts.lock().ok().and_then(|counts| counts.get(&tenant).copied());
        let (stored, counted_now) = match cached {
            Some((stored, at)) if at.elapsed() < QUOTA_TTL => (stored, false),
            _ => {
                let stored = state.store.count_docs(&TenantCtx::new(tenant), DocKind::Event).await?;
                if let Ok(mut counts) = self.counts.lock() {
                    counts.insert(tenant, (stored, Instant::now()));
                }
                (stored, true)
            }
        };
        let adding = u64::try_from(adding).unwrap_or(u64::MAX);
        if stored.saturating_add(adding) <= max {
            return Ok(());
        }
        if counted_now {
            // Once per count, not per request: a full quota must not flood the log.
            tracing::warn!(tenant.id = %tenant, stored, quota = max, "collection refused: the tenant's event quota (collect.max_events_per_tenant) is full");
        }
        Err(ApiError::QuotaExceeded(format!(
            "this tenant stores {stored} collected events and its quota (collect.max_events_per_tenant) is {max}: \
             nothing of this request was stored; ask the operator to raise the quota, or shorten the tenant's \
             retention of events"
        )))
    }

    fn add(&self, tenant: TenantId, events: usize) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some((stored, _)) = counts.get_mut(&tenant)
        {
            *stored = stored.saturating_add(u64::try_from(events).unwrap_or(u64::MAX));
        }
    }
}

/// Serves the tracker with the site's settings in front, so the script knows before it stores
/// anything whether it may (cookieless) and whether it must stay silent (GPC, Do-Not-Track).
#[utoipa::path(
    get, path = "/tracker.js", tag = "collection",
    params(("site_key" = Option<String>, Query, description = "The site's key: its settings come with the script")),
    responses((status = 200, description = "The tracker script", content_type = "text/javascript", body = String))
)]
pub async fn tracker_script(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let origin = public_origin(&state, peer, &headers);
    let site = match query.site_key.as_deref().and_then(SiteKey::parse) {
        Some(key) => state.sites.find(state.store.as_ref(), &key).await?,
        None => None,
    };
    let config = match site {
        Some(site) => serde_json::json!({
            "siteKey": site.site_key,
            "endpoint": format!("{}/collect", origin.url),
            "cookieless": site.collection.cookieless,
            "honourGpc": site.collection.honour_gpc,
        })
        .to_string(),
        None => "null".to_string(),
    };
    let body = format!("var __steward_config = {config};\n{TRACKER}");
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    if origin.from_request {
        // Taken from a trusted proxy's headers: a shared cache must keep one copy per host.
        headers.insert(header::VARY, HeaderValue::from_static("host, x-forwarded-host, x-forwarded-proto"));
    }
    Ok(response)
}

/// Where browsers reach this server, and whether the request's headers said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    pub url: String,
    pub from_request: bool,
}

/// Where browsers reach this server: `server.public_url` when set; else, for a request from one
/// of `collect.trusted_proxies`, its `X-Forwarded-Host` (or `Host`) and `X-Forwarded-Proto`;
/// else the address Steward listens on. Anyone else's `Host` and `X-Forwarded-Proto` are never
/// reflected: the script is cached publicly, and a cache that ignores `Host` would hand a
/// hostile origin to every visitor.
pub fn public_origin(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> PublicOrigin {
    let tls = state.settings.tls.enabled();
    if let Some(url) = state.settings.server.public_url() {
        return PublicOrigin { url: url.to_string(), from_request: false };
    }
    if state.edge.is_trusted_peer(peer) {
        let first = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let host = first("x-forwarded-host").or_else(|| first("host")).filter(|host| plausible_host(host));
        if let Some(host) = host {
            let scheme = match first("x-forwarded-proto") {
                Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
                Some(proto) if proto.eq_ignore_ascii_case("http") => "http",
                _ if tls => "https",
                _ => "http",
            };
            return PublicOrigin { url: format!("{scheme}://{host}"), from_request: true };
        }
    }
    let scheme = if tls { "https" } else { "http" };
    let address = state.listening.get().copied().unwrap_or(state.settings.listen);
    let host = match address.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    PublicOrigin { url: format!("{scheme}://{host}:{}", address.port()), from_request: false }
}

/// A host and optional port as a URL authority: no path, no credentials, no quotes or spaces
/// (a proxy's header still ends up inside a script).
fn plausible_host(host: &str) -> bool {
    host.len() <= 255
        && url::Url::parse(&format!("http://{host}/")).is_ok_and(|url| {
            url.username().is_empty()
                && url.password().is_none()
                && url.path() == "/"
                && url.host_str().is_some()
                && url.query().is_none()
                && url.fragment().is_none()
        })
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// A CORS preflight: granted only to an origin on the named site's domain.
pub async fn preflight(
    State(state): State<AppState>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let site = match query.site_key.as_deref().and_then(SiteKey::parse) {
        Some(key) => state.sites.find(state.store.as_ref(), &key).await?,
        None => None,
    };
    if let (Some(site), Some(origin)) = (site, headers.get(header::ORIGIN))
        && origin_allowed(&site, origin)
    {
        let grant = response.headers_mut();
        grant.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        grant.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
        grant.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        grant.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    }
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("origin"));
    Ok(response)
}

fn origin_allowed(site: &Site, origin: &HeaderValue) -> bool {
    let Some(url) = origin.to_str().ok().and_then(|text| url::Url::parse(text).ok()) else { return false };
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|host| site.domain.covers(host))
}

/// Stores a batch of events of one visitor, authorised by the site key.
#[utoipa::path(
    post, path = "/collect", tag = "collection",
    params(("site_key" = Option<String>, Query, description = "The site key, when not in the body")),
    request_body(content = String, content_type = "text/plain", description = "JSON: {site_key, visitor_id, sent_at, language, events: [{type, occurred_at, url, title, referrer, properties, lead}]}"),
    responses(
        (status = 200, description = "Stored the valid events; `rejected` names the others by index", body = CollectReport),
        (status = 400, description = "Not a JSON batch", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown site key", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The Origin is not on the site's domain", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than collect.max_body_bytes", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "No event was valid; `errors` names each by index", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this site or network (collect.requests_per_minute_…); see Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 507, description = "The tenant's event quota (collect.max_events_per_tenant) is full; nothing was stored", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn collect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<axum::Extension<BudgetSlot>>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let slot = slot.as_deref();
    let network = {
        let policy =
            MaskPolicy::new(state.settings.privacy.ipv4_prefix, state.settings.privacy.ipv6_prefix).unwrap_or_default();
        state.edge.client_address(peer, &headers).masked(policy)
    };
    ratelimit::spend(slot, &mut std::iter::once_with(|| state.limits.collect_network.check(&network)))?;
    let limit = state.settings.collect.max_body_bytes;
    let bytes = read_limited(body, limit).await?;
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|error| ApiError::BadRequest {
        detail: format!("the body is not a collection batch (JSON with site_key, visitor_id and events): {error}"),
        errors: Vec::new(),
    })?;
    let key = envelope.site_key.as_deref().or(query.site_key.as_deref()).unwrap_or_default();
    let site = match SiteKey::parse(key) {
        Some(key) => state.sites.find(state.store.as_ref(), &key).await?,
        None => None,
    };
    let Some(site) = site else {
        return Err(ApiError::Unauthorized {
            detail: "site_key names no site: copy the tracker snippet of the site from Steward again".into(),
            challenge: "SiteKey".into(),
            oauth_error: None,
        });
    };
    ratelimit::spend(slot, &mut std::iter::once_with(|| state.limits.collect_site.check(&site.id)))?;
    let origin = headers.get(header::ORIGIN).cloned();
    if let Some(origin) = &origin
        && !origin_allowed(&site, origin)
    {
        return Err(ApiError::Forbidden {
            detail: format!(
                "requests from origin {} are not accepted for this site (domain {})",
                origin.to_str().unwrap_or("?"),
                site.domain.as_str()
            ),
            challenge: None,
        });
    }
    let report = collect_batch(&state, &site, peer, &headers, envelope).await?;
    let mut response = Json(report).into_response();
    if let Some(origin) = origin {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("origin"));
    }
    Ok(response)
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge(format!(
        "a collection request may carry at most {limit} bytes (collect.max_body_bytes); send fewer events per request"
    )))
}

async fn collect_batch(
    state: &AppState,
    site: &Site,
    peer: SocketAddr,
    headers: &HeaderMap,
    envelope: Envelope,
) -> Result<CollectReport, ApiError> {
    let count = envelope.events.len();
    if site.collection.honour_gpc && opted_out(headers) {
        return Ok(CollectReport { accepted: 0, rejected: Vec::new(), ignored: Some(count) });
    }
    let max = state.settings.collect.max_events;
    if count > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "a collection request may carry at most {max} events (collect.max_events); this one has {count}"
        )));
    }
    if count == 0 {
        return Err(ApiError::Validation(ValidationErrors::single("events", "must hold at least one event")));
    }
    let ctx = TenantCtx::new(site.tenant_id);
    let now = state.clock.now();
    // The full address lives in `client` until the end of this block: it is masked for the
    // records, looked up for a country, and hashed for a cookieless id, and then dropped.
    let (visitor, context) = {
        let client = state.edge.client_address(peer, headers);
        let policy =
            MaskPolicy::new(state.settings.privacy.ipv4_prefix, state.settings.privacy.ipv6_prefix).unwrap_or_default();
        let context = HitContext {
            device: state.edge.device(headers, envelope.language.as_deref()),
            location: state.edge.location(peer, headers, &client),
            ip_network: Some(client.masked(policy)),
        };
        let visitor = if site.collection.cookieless {
            let day = now.unix_micros().div_euclid(86_400_000_000);
            let salt = state.sites.salt(state.store.as_ref(), day).await?;
            Ok(cookieless_visitor(&salt, site, &client.ip().to_string(), headers, day))
        } else {
            match envelope.visitor_id.as_deref().map(VisitorId::parse) {
                Some(Ok(id)) if plausible_visitor(id, now) => Ok(id),
                Some(Ok(_)) => Err("is a UUIDv7 from the future"),
                Some(Err(_)) => Err("must be the tracker's visitor id (a UUIDv7)"),
                None => Err("is required unless the site collects cookieless"),
            }
        };
        (visitor, context)
    };
    let visitor = visitor.map_err(|message| ApiError::Validation(ValidationErrors::single("visitor_id", message)))?;
    let checks = Checks::new(now, envelope.sent_at.as_deref(), state.settings.collect.max_event_age_hours, context);
    let mut hits = Vec::with_capacity(count);
    let mut leads = Vec::new();
    let mut rejected = Vec::new();
    for (index, raw) in envelope.events.into_iter().enumerate() {
        match payload::check_event(raw, &checks) {
            Ok(Accepted { mut hit, lead }) => {
                if let Some(mut lead) = lead {
                    lead.conversion_url = lead.conversion_url.or_else(|| hit.url.clone());
                    hit.properties.insert("lead_id".into(), serde_json::Value::String(lead.id.to_string()));
                    leads.push(lead);
                }
                hits.push(hit);
            }
            Err(errors) => rejected.push(Rejected { index, errors }),
        }
    }
    if hits.is_empty() {
        let mut all = ValidationErrors::default();
        for error in rejected.iter().flat_map(|r| r.errors.iter().map(move |e| (r.index, e))) {
            let (index, FieldError { field, message }) = error;
            all.add(format!("events[{index}].{field}"), message.clone());
        }
        return Err(ApiError::Validation(all));
    }
    let accepted = hits.len();
    state.quotas.admit(state, site, accepted).await?;
    state.collector.record(Visit { ctx, visitor, hits, leads }).await.map_err(collect_error)?;
    state.quotas.add(site.tenant_id, accepted);
    Ok(CollectReport { accepted, rejected, ignored: None })
}

/// `Sec-GPC: 1` (Global Privacy Control) or `DNT: 1`.
fn opted_out(headers: &HeaderMap) -> bool {
    ["sec-gpc", "dnt"].iter().any(|name| headers.get(*name).is_some_and(|value| value.as_bytes().trim_ascii() == b"1"))
}

/// A tracker's id carries the time it was made: one from well in the future is forged.
fn plausible_visitor(id: VisitorId, now: Timestamp) -> bool {
    let made = id.as_uuid().get_timestamp().map(|ts| ts.to_unix().0).unwrap_or(0);
    let now_seconds = u64::try_from(now.unix_micros() / 1_000_000).unwrap_or(0);
    made <= now_seconds + 86_400
}

/// The day's id of a visitor who keeps nothing in the browser: a hash of the day's salt, the
/// site, the address and the user agent, shaped as a UUIDv7 of the day's first millisecond.
/// Once the salt is deleted (after two days) no one can compute it again from an address.
fn cookieless_visitor(salt: &[u8; 32], site: &Site, address: &str, headers: &HeaderMap, day: i64) -> VisitorId {
    let agent = headers.get(header::USER_AGENT).map(|v| v.as_bytes()).unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(site.id.as_uuid().as_bytes());
    hash.update(address.as_bytes());
    hash.update([0]);
    hash.update(agent);
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(day).unwrap_or(0).saturating_mul(86_400_000);
    VisitorId::from_uuid(steward_domain::id::v7_from_parts(millis, random))
}

pub fn collect_error(error: CollectError) -> ApiError {
    match error {
        CollectError::Store(error) => ApiError::Internal(anyhow::anyhow!("storing collected events failed: {error}")),
        CollectError::NoVisitor(_) => {
            ApiError::Validation(ValidationErrors::single("visitor_profile_id", "does not exist"))
        }
        CollectError::Stopped => ApiError::Unavailable("the collection pipeline is not running; try again".into()),
        CollectError::Erased => ApiError::Conflict(
            "this person was erased at their request (GDPR Art. 17) and the erasure ledger names one of these \
             identifiers; the lead was not stored"
                .into(),
            Vec::new(),
        ),
    }
}
