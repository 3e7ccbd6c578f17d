//! `GET /api/v1/audit-log` and `GET /api/v1/audit-log/verify`: the tenant's tamper-evident
//! audit log (see [`steward_store::audit`]), and what the server writes to it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use steward_domain::{Scope, Timestamp};
use steward_store::{Actor, ActorKind, AuditDraft, AuditEntry, AuditQuery, StoreExt, Target, TenantCtx, Verification};

use super::common::{Page, page_response, parse_limit};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const PARAMETERS: [&str; 6] = ["limit", "cursor", "from", "to", "action", "actor_kind"];

/// Appends an entry; a failure to audit is logged and returned, never ignored.
pub async fn record(state: &AppState, ctx: &TenantCtx, draft: AuditDraft) -> Result<AuditEntry, ApiError> {
    state.store.audit(ctx, &draft).await.map_err(|error| {
        tracing::error!(error = %error, action = %draft.action, "audit entry could not be written");
        ApiError::from(error)
    })
}

/// An entry by an API client, now.
pub fn by_client(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: Target,
    detail: serde_json::Value,
) -> AuditDraft {
    AuditDraft {
        at: state.clock.now(),
        actor: Actor { kind: ActorKind::Client, id: Some(caller.client_id.to_string()) },
        action: action.to_string(),
        target,
        detail,
        ip_network: caller.ip_network,
    }
}

/// An entry by Steward itself (a job), now.
pub fn by_system(state: &AppState, action: &str, target: Target, detail: serde_json::Value) -> AuditDraft {
    AuditDraft {
        at: state.clock.now(),
        actor: Actor { kind: ActorKind::System, id: None },
        action: action.to_string(),
        target,
        detail,
        ip_network: None,
    }
}

fn cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn parse_cursor(text: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("seq:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::bad_query("cursor", "is not a cursor this API issued; use next_cursor as given"))
}

fn query_from(pairs: &BTreeMap<String, String>) -> Result<AuditQuery, ApiError> {
    if let Some(unknown) = pairs.keys().find(|key| !PARAMETERS.contains(&key.as_str())) {
        return Err(ApiError::bad_query(unknown, format!("is not known here; use {}", PARAMETERS.join(", "))));
    }
    let time = |field: &str| -> Result<Option<Timestamp>, ApiError> {
        pairs
            .get(field)
            .map(|text| Timestamp::parse(text).map_err(|e| ApiError::bad_query(field, e.to_string())))
            .transpose()
    };
    let limit = parse_limit(pairs.get("limit").map(String::as_str))?;
    let actor_kind = pairs
        .get("actor_kind")
        .map(|text| {
            ActorKind::parse(text)
                .ok_or_else(|| ApiError::bad_query("actor_kind", "must be one of user, client, system, operator"))
        })
        .transpose()?;
    let query = AuditQuery {
        after_seq: pairs.get("cursor").map(|text| parse_cursor(text)).transpose()?,
        limit,
        from: time("from")?,
        to: time("to")?,
        action: pairs.get("action").cloned(),
        actor_kind,
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(ApiError::bad_query("to", "must be later than from"));
    }
    Ok(query)
}

/// The tenant's audit log, oldest first, cursor-paginated. `action` takes an exact action
/// (`export.streamed`) or a prefix ending in a dot (`export.`).
#[utoipa::path(
    get, path = "/api/v1/audit-log", tag = "audit",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page, as given (opaque)"),
        ("from" = Option<String>, Query, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "RFC 3339 (years 1970 to 9999); entries at or after"),
        ("to" = Option<String>, Query, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "RFC 3339 (years 1970 to 9999); entries before"),
        ("action" = Option<String>, Query, description = "an action, or a prefix ending in '.'"),
        ("actor_kind" = Option<ActorKind>, Query, description = "user, client, system or operator"),
    ),
    responses(
        (status = 200, description = "A page of entries", body = Page<AuditEntry>),
        (status = 422, description = "Bad or unknown query parameters, each named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks audit:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["audit:read"]))
)]
pub async fn list_audit_log(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require(Scope::AuditRead)?;
    let pairs: BTreeMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let mut query = query_from(&pairs)?;
    let limit = query.limit;
    query.limit += 1;
    let data = state.store.audit_entries(&caller.ctx, &query).await?;
    Ok(page_response(data, limit, |last| cursor(last.seq), pairs, &uri))
}

/// Walks the whole chain: `valid` is false and `broken_seq` names the first entry changed,
/// removed or out of place. Keep `head_seq` and `head_hash` elsewhere to detect a later
/// removal of the newest entries.
#[utoipa::path(
    get, path = "/api/v1/audit-log/verify", tag = "audit",
    responses(
        (status = 200, description = "The verdict, valid or not", body = Verification),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks audit:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["audit:read"]))
)]
pub async fn verify_audit_log(State(state): State<AppState>, caller: Caller) -> Result<Json<Verification>, ApiError> {
    caller.require(Scope::AuditRead)?;
    Ok(Json(state.store.verify_audit(&caller.ctx).await?))
}
