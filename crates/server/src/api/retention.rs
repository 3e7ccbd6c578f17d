//! Retention over HTTP: the tenant's policy per dataset (`GET/PUT /api/v1/retention-policies`),
//! legal holds that keep records from it (`/api/v1/legal-holds`), and a sweep on demand
//! (`POST /api/v1/retention-policies/sweep`). The sweeping itself is [`crate::retention`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_domain::subject::{
    HoldScope, LegalHold, LegalHoldInput, MAX_RETENTION_DAYS, RetentionDataset, RetentionSettings,
};
use steward_domain::{Scope, ValidationErrors};
use steward_store::{Actor, ActorKind, DocKind, StoreExt, Target, TenantCtx};
use uuid::Uuid;

use super::audit;
use super::common::{JsonBody, Page, from_json, list_records};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::retention::{SweepReport, sweep_tenant};
use crate::state::AppState;
use crate::subjects::Acting;

/// How long one dataset is kept.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionPolicy {
    /// `leads`, `visitor-profiles`, `journeys` or `organizations`.
    pub dataset: &'static str,
    /// Days a record is kept after the time in `age_from`; `null` keeps records until deleted.
    pub days: Option<u32>,
    /// True while the tenant has not chosen: `days` is `default_days`.
    pub default: bool,
    pub default_days: Option<u32>,
    /// Which time a record's age counts from.
    pub age_from: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionPolicies {
    pub data: Vec<RetentionPolicy>,
    /// Legal holds in force; they keep their records whatever the policy says.
    pub legal_holds: u64,
    /// The tenant's last sweep seen by this server since it started; `null` if none.
    pub last_sweep: Option<SweepReport>,
}

fn policies(settings: &RetentionSettings) -> Vec<RetentionPolicy> {
    RetentionDataset::ALL
        .iter()
        .map(|dataset| RetentionPolicy {
            dataset: dataset.as_str(),
            days: settings.days_for(*dataset),
            default: settings.is_default(*dataset),
            default_days: dataset.default_days(),
            age_from: dataset.age_from(),
        })
        .collect()
}

/// The days each dataset is kept under `settings`, by name: what audit entries record.
fn effective(settings: &RetentionSettings) -> BTreeMap<&'static str, Option<u32>> {
    RetentionDataset::ALL.iter().map(|dataset| (dataset.as_str(), settings.days_for(*dataset))).collect()
}

async fn answer(
    state: &AppState,
    ctx: &TenantCtx,
    settings: &RetentionSettings,
) -> Result<RetentionPolicies, ApiError> {
    Ok(RetentionPolicies {
        data: policies(settings),
        legal_holds: state.store.count::<LegalHold>(ctx).await?,
        last_sweep: crate::retention::last_sweep(state, ctx).await?,
    })
}

async fn tenant_of(state: &AppState, ctx: &TenantCtx) -> Result<steward_domain::Tenant, ApiError> {
    state
        .store
        .get_tenant(ctx.tenant_id())
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the caller's tenant does not exist")))
}

/// What a PUT body asks for one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Keep records this many days; `None` keeps them until they are deleted.
    Days(Option<u32>),
    /// Back to the dataset's default.
    Default,
}

/// The changes a PUT body asks for, per dataset; every bad field is reported.
fn parse_changes(body: serde_json::Value) -> Result<Vec<(RetentionDataset, Change)>, ValidationErrors> {
    let serde_json::Value::Object(fields) = body else {
        return Err(ValidationErrors::single(
            "body",
            "must be a JSON object of datasets, e.g. {\"leads\": 365, \"journeys\": null}",
        ));
    };
    let mut errors = ValidationErrors::default();
    let mut changes = Vec::new();
    for (name, value) in fields {
        let dataset = match RetentionDataset::parse(&name) {
            Ok(dataset) => dataset,
            Err(names) => {
                errors.add(name, format!("is not a dataset with a retention policy; it {names}"));
                continue;
            }
        };
        let change = match &value {
            serde_json::Value::Null => Some(Change::Days(None)),
            serde_json::Value::String(text) if text == "default" => Some(Change::Default),
            // JSON Schema's integer: 365 or 365.0.
            serde_json::Value::Number(number) => number
                .as_u64()
                .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= 3650.0).map(|f| f as u64))
                .filter(|days| (1..=u64::from(MAX_RETENTION_DAYS)).contains(days))
                .and_then(|days| u32::try_from(days).ok())
                .map(|days| Change::Days(Some(days))),
            _ => None,
        };
        match change {
            Some(change) => changes.push((dataset, change)),
            None => errors.add(
                name,
                format!(
                    "must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, null (kept until deleted) or \"default\""
                ),
            ),
        }
    }
    errors.finish(|| changes)
}

fn require_admin_or_data_subjects(caller: &Caller) -> Result<(), ApiError> {
    if caller.scopes.contains(Scope::DataSubjects) { Ok(()) } else { caller.require(Scope::Admin) }
}

/// The tenant's retention policy per dataset, how many legal holds are in force and the last
/// sweep. Records past their dataset's `days` are deleted by the next sweep unless a legal hold
/// keeps them.
#[utoipa::path(
    get, path = "/api/v1/retention-policies", tag = "retention",
    responses(
        (status = 200, description = "The policy of every dataset", body = RetentionPolicies),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin and data-subjects", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]), ("oauth2" = ["data-subjects"]))
)]
pub async fn get_retention_policies(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RetentionPolicies>, ApiError> {
    require_admin_or_data_subjects(&caller)?;
    let tenant = tenant_of(&state, &caller.ctx).await?;
    Ok(Json(answer(&state, &caller.ctx, &tenant.settings.retention).await?))
}

/// Changes the policy of the datasets named in the body and leaves the others: a number of days
/// (1 to 3650), `null` to keep records until they are deleted, or `"default"` to go back to the
/// default. Answers like GET.
#[utoipa::path(
    put, path = "/api/v1/retention-policies", tag = "retention",
    request_body(
        content = Object,
        description = "Datasets and their days, e.g. `{\"leads\": 365, \"journeys\": null, \"visitor-profiles\": \"default\"}`"
    ),
    responses(
        (status = 200, description = "The policy of every dataset, as changed", body = RetentionPolicies),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown dataset or a bad value, each named; nothing was changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn put_retention_policies(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Json<RetentionPolicies>, ApiError> {
    caller.require(Scope::Admin)?;
    let after = change_policies(&state, &caller.ctx, &client_acting(&caller), body).await?;
    Ok(Json(answer(&state, &caller.ctx, &after).await?))
}

/// Applies a policy change (`{"leads": 365, "journeys": null, "events": "default"}`) for
/// whoever is acting, audited as `retention.changed` when anything changed; answers the
/// settings now in force. Shared by the API and the console.
pub(crate) async fn change_policies(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    body: serde_json::Value,
) -> Result<RetentionSettings, ApiError> {
    let changes = parse_changes(body)?;
    let mut tenant = tenant_of(state, ctx).await?;
    let before = tenant.settings.retention.clone();
    for (dataset, change) in changes {
        match change {
            Change::Days(days) => tenant.settings.retention.days.insert(dataset.as_str().into(), days),
            Change::Default => tenant.settings.retention.days.remove(dataset.as_str()),
        };
    }
    let after = &tenant.settings.retention;
    if &before != after {
        state.store.update_tenant(&tenant).await?;
        let changed: Vec<&str> = RetentionDataset::ALL
            .iter()
            .filter(|d| before.days_for(**d) != after.days_for(**d) || before.is_default(**d) != after.is_default(**d))
            .map(|d| d.as_str())
            .collect();
        let detail = serde_json::json!({
            "before": effective(&before), "after": effective(after), "changed": changed,
            "defaults": RetentionDataset::ALL.iter().filter(|d| after.is_default(**d)).map(|d| d.as_str()).collect::<Vec<_>>(),
        });
        let target = Target { kind: "retention".into(), count: changed.len() as u64, ids: Vec::new() };
        audit::record(state, ctx, acting.draft(state.clock.now(), "retention.changed", target, detail)).await?;
    }
    Ok(tenant.settings.retention)
}

/// Sweeps this tenant now, as the background sweeper does, and answers what was deleted. A
/// failure answers 500 naming the dataset; it is audited and shown by `/readyz` like a
/// background failure, and each batch deleted before it stays deleted.
#[utoipa::path(
    post, path = "/api/v1/retention-policies/sweep", tag = "retention",
    responses(
        (status = 200, description = "The sweep's report", body = SweepReport),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The sweep failed; the detail names the dataset", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn sweep_now(State(state): State<AppState>, caller: Caller) -> Result<Json<SweepReport>, ApiError> {
    caller.require(Scope::Admin)?;
    match sweep_tenant(&state, &caller.ctx).await {
        Ok(report) => Ok(Json(report)),
        Err(error) => Err(ApiError::Failed(format!(
            "{error}; {} rows were deleted before it stopped; the sweep is retried on schedule",
            error.report.total
        ))),
    }
}

/// The tenant's legal holds, oldest first, cursor-paginated.
#[utoipa::path(
    get, path = "/api/v1/legal-holds", tag = "retention",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$", description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of legal holds", body = Page<LegalHold>),
        (status = 422, description = "Bad or unknown query parameters, each named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn list_legal_holds(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    list_records::<LegalHold>(state, caller, uri, Scope::Admin, &[]).await
}

fn hold_kind(scope: HoldScope) -> Option<DocKind> {
    match scope {
        HoldScope::Tenant => None,
        HoldScope::Lead => Some(DocKind::Lead),
        HoldScope::VisitorProfile => Some(DocKind::VisitorProfile),
        HoldScope::Organization => Some(DocKind::Organization),
    }
}

fn hold_detail(hold: &LegalHold) -> serde_json::Value {
    serde_json::json!({"hold": hold.id, "scope": hold.scope.as_str(), "record_id": hold.record_id, "reason": hold.reason})
}

/// Places a legal hold: the whole tenant (`scope: tenant`) or one lead, visitor profile or
/// organization (`record_id`), kept from retention sweeps until the hold is released. A held
/// visitor profile keeps its journeys and leads; a held lead its profile and journeys too.
#[utoipa::path(
    post, path = "/api/v1/legal-holds", tag = "retention",
    request_body = LegalHoldInput,
    responses(
        (status = 201, description = "Placed; `Location` names it", body = LegalHold),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad fields, or `record_id` names no record of this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn create_legal_hold(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let input: LegalHoldInput = from_json(body)?;
    let hold = place_hold(&state, &caller.ctx, &client_acting(&caller), input, caller.client_id.to_string()).await?;
    let mut response = (StatusCode::CREATED, Json(&hold)).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v1/legal-holds/{}", hold.id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

fn client_acting(caller: &Caller) -> Acting {
    Acting {
        actor: Actor { kind: ActorKind::Client, id: Some(caller.client_id.to_string()) },
        ip_network: caller.ip_network,
    }
}

/// Places a legal hold for whoever is acting (API client or console user), after checking that
/// the held record exists; audited as `legal_hold.placed`.
pub(crate) async fn place_hold(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    input: LegalHoldInput,
    created_by: String,
) -> Result<LegalHold, ApiError> {
    let hold = input.validate(created_by, state.clock.now())?;
    if let (Some(kind), Some(record)) = (hold_kind(hold.scope), hold.record_id)
        && state.store.get_doc(ctx, kind, record).await?.is_none()
    {
        let message = format!("no {} with this id exists in your tenant", hold.scope.as_str().replace('_', " "));
        return Err(ApiError::Validation(ValidationErrors::single("record_id", message)));
    }
    let target = Target { kind: "legal_hold".into(), count: 1, ids: vec![hold.id.into_uuid()] };
    let entry = acting.draft(state.clock.now(), "legal_hold.placed", target, hold_detail(&hold));
    state.store.insert_audited(ctx, std::slice::from_ref(&hold), &entry).await?;
    Ok(hold)
}

/// Releases a legal hold; audited as `legal_hold.released`.
pub(crate) async fn release_hold(state: &AppState, ctx: &TenantCtx, acting: &Acting, id: &str) -> Result<(), ApiError> {
    let not_found = || ApiError::not_found("legal hold");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let hold = state.store.get::<LegalHold>(ctx, id).await?.ok_or_else(not_found)?;
    let target = Target { kind: "legal_hold".into(), count: 1, ids: vec![id] };
    let entry = acting.draft(state.clock.now(), "legal_hold.released", target, hold_detail(&hold));
    let mut batch = steward_store::Batch::default();
    batch.delete(ctx, DocKind::LegalHold, id);
    match state.store.write_docs_audited(batch.writes(), ctx, &[entry]).await {
        Ok(_) => Ok(()),
        Err(steward_store::StoreError::MissingReference { .. }) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

/// Releases a legal hold: its records are subject to retention again from the next sweep.
#[utoipa::path(
    delete, path = "/api/v1/legal-holds/{id}", tag = "retention",
    params(("id" = uuid::Uuid, Path, description = "Legal hold id")),
    responses(
        (status = 204, description = "Released"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such legal hold for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn delete_legal_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    release_hold(&state, &caller.ctx, &client_acting(&caller), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
