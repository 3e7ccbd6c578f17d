//! `/api/v1/visitor-profiles` and `/api/v1/journey-insights`: pseudonymous visitors and their
//! visits, read-only (they are written by collection, not through the API).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_domain::{Journey, Scope, Session, VisitorId, VisitorProfile};
use steward_store::{ListQuery, Lookup, Store, StoreExt, StoreResult, TenantCtx, Value};
use uuid::Uuid;

use super::common::{self, ListParams, Page};
use super::exports::journeys;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Most ids one `ids=` or `profile_ids=` takes.
pub const MAX_IDS: usize = 100;
/// Most visits one journey-insights answer carries; past it, ask for fewer profiles.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions whose events are read in one query (well under every backend's parameter limit).
const SESSIONS_PER_READ: usize = 500;

/// Several profiles by id: those found, in the order asked, and the ids that are not profiles of
/// your tenant (never existed, deleted, or another tenant's: indistinguishable).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileBatch {
    pub data: Vec<VisitorProfile>,
    /// Asked-for ids with no profile of your tenant, lowercase, in the order asked.
    pub missing: Vec<String>,
}

/// A page of the list, or the profiles asked for with `ids`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ProfilesAnswer {
    Page(Page<VisitorProfile>),
    Batch(ProfileBatch),
}

/// One profile's visits, each with its events by position.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileJourneys {
    pub visitor_profile_id: VisitorId,
    /// Visits by `visit_index` (then `started_at`), each with `events` by `position`.
    pub sessions: Vec<Journey>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JourneyInsights {
    /// One entry per profile found, in the order asked.
    pub data: Vec<ProfileJourneys>,
    /// Asked-for ids with no profile of your tenant, lowercase, in the order asked.
    pub missing: Vec<String>,
}

/// Distinct UUIDv7 ids from a comma-separated list, in the order given; 422 naming `field` when
/// one is malformed, none is given, or more than [`MAX_IDS`] are.
pub fn parse_ids(field: &str, text: &str) -> Result<Vec<Uuid>, ApiError> {
    let mut ids: Vec<Uuid> = Vec::new();
    let mut errors = steward_domain::ValidationErrors::default();
    let items: Vec<&str> = text.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
    if items.is_empty() {
        return Err(ApiError::invalid_query(field, "must list at least one id, separated by commas"));
    }
    if items.len() > MAX_IDS {
        return Err(ApiError::invalid_query(
            field,
            format!("lists {} ids; ask for at most {MAX_IDS} at once", items.len()),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        match steward_domain::id::parse_v7(item) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(error) => errors.add(field, format!("item {} {error}", index + 1)),
        }
    }
    if errors.is_empty() { Ok(ids) } else { Err(ApiError::InvalidQuery(errors)) }
}

/// The query string as pairs; refuses any parameter but `allowed`.
fn query_pairs(uri: &Uri, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let pairs: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    if let Some(unknown) = pairs.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(ApiError::bad_query(unknown, format!("is not known here; use {}", allowed.join(", "))));
    }
    Ok(pairs)
}

async fn profiles_by_id(
    store: &dyn Store,
    ctx: &TenantCtx,
    ids: &[Uuid],
) -> StoreResult<HashMap<Uuid, VisitorProfile>> {
    let values = ids.iter().map(|id| Value::Uuid(*id)).collect();
    let limit = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    let query = ListQuery { limit, any_of: Some(("id", values)), ..ListQuery::default() };
    let profiles: Vec<VisitorProfile> = store.list(ctx, &query).await?;
    Ok(profiles.into_iter().map(|profile| (profile.id.into_uuid(), profile)).collect())
}

/// Without `ids`: every profile a page at a time in id order (oldest first), filtered by
/// `created_from`/`created_to` (first seen) and `updated_since` (last seen), or found by an exact
/// `contact_id`. With `ids=a,b,c` (at most 100): those profiles in the order asked, and the ids
/// not found for your tenant under `missing`; `ids` takes no other parameter.
#[utoipa::path(
    get, path = "/api/v1/visitor-profiles", tag = "visitors",
    params(
        ("ids" = Option<String>, Query, description = "Up to 100 profile ids (UUIDv7), comma-separated"),
        ListParams,
        ("contact_id" = Option<String>, Query, description = "Exact contact id"),
    ),
    responses(
        (status = 200, description = "A page of profiles (`Link: <…>; rel=\"next\"` when more follow), or with `ids` the profiles found and the ids missing", body = ProfilesAnswer),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks visitors:read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`ids` has a malformed id, none, or more than 100", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["visitors:read"]))
)]
pub async fn list_visitor_profiles(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(Scope::VisitorsRead)?;
    let ids = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "ids")
        .map(|(_, value)| value.into_owned());
    let Some(ids) = ids else {
        return common::list_records::<VisitorProfile>(
            state,
            caller,
            uri,
            Scope::VisitorsRead,
            &[("contact_id", Lookup::ContactId)],
        )
        .await;
    };
    query_pairs(&uri, &["ids"])?;
    let ids = parse_ids("ids", &ids)?;
    let mut found = profiles_by_id(state.store.as_ref(), &caller.ctx, &ids).await?;
    let mut batch = ProfileBatch { data: Vec::with_capacity(found.len()), missing: Vec::new() };
    for id in ids {
        match found.remove(&id) {
            Some(profile) => batch.data.push(profile),
            None => batch.missing.push(id.to_string()),
        }
    }
    Ok(Json(ProfilesAnswer::Batch(batch)).into_response())
}

/// Reads one visitor profile.
#[utoipa::path(
    get, path = "/api/v1/visitor-profiles/{id}", tag = "visitors",
    params(("id" = uuid::Uuid, Path, description = "Visitor profile id (UUIDv7)")),
    responses(
        (status = 200, description = "The profile", body = VisitorProfile),
        (status = 404, description = "No such profile for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["visitors:read"]))
)]
pub async fn get_visitor_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VisitorProfile>, ApiError> {
    caller.require(Scope::VisitorsRead)?;
    let not_found = || ApiError::not_found("visitor profile");
    let id = steward_domain::id::parse_v7(&id).map_err(|_| not_found())?;
    state.store.get::<VisitorProfile>(&caller.ctx, id).await?.map(Json).ok_or_else(not_found)
}

/// Every visit of up to 100 profiles, each with its events in order: per profile, visits by
/// `visit_index`, and in each visit `events` by `position`. Ids that are not profiles of your
/// tenant are listed under `missing`. At most 10,000 visits per answer: ask for fewer profiles,
/// or export `journeys`, past that.
#[utoipa::path(
    get, path = "/api/v1/journey-insights", tag = "visitors",
    params(("profile_ids" = String, Query, description = "Up to 100 visitor profile ids (UUIDv7), comma-separated")),
    responses(
        (status = 200, description = "The profiles' visits and events, and the ids missing", body = JourneyInsights),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks visitors:read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`profile_ids` is missing, has a malformed id or more than 100, or the profiles have more than 10,000 visits", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["visitors:read"]))
)]
pub async fn journey_insights(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<JourneyInsights>, ApiError> {
    caller.require(Scope::VisitorsRead)?;
    let pairs = query_pairs(&uri, &["profile_ids"])?;
    let text = pairs.get("profile_ids").ok_or_else(|| {
        ApiError::invalid_query("profile_ids", "is required: up to 100 visitor profile ids, separated by commas")
    })?;
    let ids = parse_ids("profile_ids", text)?;
    let store = state.store.as_ref();
    let ctx = &caller.ctx;
    let found = profiles_by_id(store, ctx, &ids).await?;
    let (present, missing): (Vec<Uuid>, Vec<Uuid>) = ids.iter().partition(|id| found.contains_key(id));

    let mut sessions: Vec<Session> = Vec::new();
    let values: Vec<Value> = present.iter().map(|id| Value::Uuid(*id)).collect();
    let mut query = ListQuery { limit: 1_000, any_of: Some(("visitor_profile_id", values)), ..ListQuery::default() };
    if !present.is_empty() {
        loop {
            let page: Vec<Session> = store.list(ctx, &query).await?;
            let full = page.len() == 1_000;
            query.after = page.last().map(|s| s.id.into_uuid());
            sessions.extend(page);
            if sessions.len() > MAX_SESSIONS {
                return Err(ApiError::invalid_query(
                    "profile_ids",
                    format!(
                        "these profiles have more than {MAX_SESSIONS} visits; ask for fewer profiles at once, or export journeys"
                    ),
                ));
            }
            if !full {
                break;
            }
        }
    }
    let mut by_profile: HashMap<Uuid, Vec<Journey>> = HashMap::with_capacity(present.len());
    while !sessions.is_empty() {
        let rest = sessions.split_off(sessions.len().min(SESSIONS_PER_READ));
        for journey in journeys(store, ctx, std::mem::replace(&mut sessions, rest)).await? {
            by_profile.entry(journey.session.visitor_profile_id.into_uuid()).or_default().push(journey);
        }
    }
    let data = present
        .into_iter()
        .map(|id| {
            let mut sessions = by_profile.remove(&id).unwrap_or_default();
            sessions.sort_by_key(|j| (j.session.visit_index, j.session.started_at, j.session.id));
            ProfileJourneys { visitor_profile_id: VisitorId::from_uuid(id), sessions }
        })
        .collect();
    Ok(Json(JourneyInsights { data, missing: missing.iter().map(Uuid::to_string).collect() }))
}
