//! `/api/v1/switching-requests`: the customer's Data Act switching requests (Regulation (EU)
//! 2023/2854, Chapter VI), their archive, and `/switching-attestations/{tenant_id}`, the signed
//! record of an erasure that anyone may fetch once the tenant (and its credentials) are gone.
//! The rules are in [`steward_domain::switching`], the steps in [`crate::switching`].
//!
//! Switching costs nothing: no request, archive or download here is ever charged (Art. 29).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use steward_domain::switching::{
    DestinationInput, MAX_EXTENSION_DAYS, SwitchingAction, SwitchingError, SwitchingRequest, SwitchingStatus,
    check_start,
};
use steward_domain::{Scope, TenantId, Timestamp, ValidationErrors};
use steward_store::{AuditDraft, StoreExt, TenantCtx, Value};

use super::common::{JsonBody, ListParams, Page, encode_cursor, from_json, page_response};
use super::files::{StoredFile, serve_file};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::subjects::Acting;
use crate::switching::{archive_key, attestation_path, read_attestation, target, with_request};

/// A request as the API shows it: the request with every date, its status and timeline, the
/// archive's state, and where the archive and the attestation are found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SwitchingView {
    #[serde(flatten)]
    pub request: SwitchingRequest,
    /// `none` (erase has no archive), `pending` (built when the transitional period starts),
    /// `available` or `removed` (the retrieval period is over).
    pub archive_state: String,
    /// Where the archive is downloaded; none for `erase`.
    pub archive_url: Option<String>,
    /// Where the signed erasure attestation is published after erasure, without sign-in (the
    /// tenant's credentials are erased too). Verify it with the key `/data-register` publishes.
    pub attestation_url: String,
    /// Switching and data egress are free of charge (Data Act Art. 29): always 0.
    pub charges: u32,
}

impl SwitchingView {
    pub fn of(request: SwitchingRequest, tenant: TenantId, now: Timestamp) -> Self {
        let archive_state = match (&request.archive, request.action) {
            (_, SwitchingAction::Erase) => "none",
            (None, _) => "pending",
            (Some(archive), _) if archive.removed_at.is_some() || !request.archive_available(now) => "removed",
            (Some(_), _) => "available",
        };
        Self {
            archive_url: (request.action != SwitchingAction::Erase)
                .then(|| format!("/api/v1/switching-requests/{}/archive", request.id)),
            attestation_url: attestation_path(tenant),
            archive_state: archive_state.into(),
            charges: 0,
            request,
        }
    }
}

fn draft(
    acting: &Acting,
    now: Timestamp,
    action: &str,
    request: &SwitchingRequest,
    detail: serde_json::Value,
) -> AuditDraft {
    acting.draft(now, action, target(request), with_request(request, detail))
}

/// A switching request as the customer makes it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchingInput {
    /// `switch_provider`, `on_premises` or `erase` (Art. 25(3)).
    #[schema(value_type = SwitchingAction, required)]
    pub action: Option<String>,
    /// The destination provider: required for `switch_provider`, refused otherwise.
    pub destination: Option<DestinationInput>,
    /// When the transitional period starts (RFC 3339): from now to two calendar months ahead (the
    /// notice period); now when absent.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub transitional_starts_at: Option<String>,
}

impl SwitchingInput {
    fn validate(self, state: &AppState, now: Timestamp) -> Result<SwitchingRequest, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let action = match self.action {
            Some(action) => errors.check("action", Some(action), |t| SwitchingAction::parse(&t)),
            None => {
                errors.add("action", "is required: switch_provider, on_premises or erase");
                None
            }
        };
        let destination = match (action, self.destination) {
            (Some(SwitchingAction::SwitchProvider), None) => {
                errors.add(
                    "destination",
                    "is required for switch_provider: provider_name, contact_email and, if known, endpoint_url",
                );
                None
            }
            (Some(SwitchingAction::SwitchProvider), Some(destination)) => {
                errors.nested("destination", Some(destination.validate()))
            }
            (Some(action), Some(_)) => {
                errors.add("destination", format!("only switch_provider names a destination, not {}", action.as_str()));
                None
            }
            (_, _) => None,
        };
        let starts_at = errors.check("transitional_starts_at", self.transitional_starts_at, |t| Timestamp::parse(&t));
        if let Some(starts_at) = starts_at
            && let Err(message) = check_start(now, starts_at)
        {
            errors.add("transitional_starts_at", message);
        }
        match action {
            Some(action) if errors.is_empty() => {
                Ok(SwitchingRequest::new(action, destination, now, starts_at, state.settings.switching.periods(), now))
            }
            _ => Err(errors),
        }
    }
}

/// Starts switching: the customer asks to move its data to another provider, to its own
/// infrastructure, or to have it erased. The answer states every date: the transitional period
/// (the service runs unchanged), the retrieval period (the archive can be downloaded) and when
/// everything is erased. One request may be open at a time.
#[utoipa::path(
    post, path = "/api/v1/switching-requests", tag = "switching",
    request_body = SwitchingInput,
    responses(
        (status = 201, description = "Recorded; `Location` names it", body = SwitchingView),
        (status = 409, description = "Another request is open", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn create_switching_request(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let input: SwitchingInput = from_json(body)?;
    let view = start(&state, &caller.ctx, &super::subjects::acting(&caller), input).await?;
    let location = format!("/api/v1/switching-requests/{}", view.request.id);
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Records a new switching request (one may be open at a time), audited as by `acting`.
pub async fn start(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    input: SwitchingInput,
) -> Result<SwitchingView, ApiError> {
    let now = state.clock.now();
    let mut request = input.validate(state, now).map_err(ApiError::Validation)?;
    let open = [SwitchingStatus::Notice, SwitchingStatus::Transitional, SwitchingStatus::Retrieval];
    let query = steward_store::ListQuery {
        any_of: Some(("status", open.iter().map(|status| Value::Text(status.as_str().into())).collect())),
        limit: 1,
        ..steward_store::ListQuery::default()
    };
    let existing: Vec<SwitchingRequest> = state.store.list(ctx, &query).await?;
    if let Some(existing) = existing.first() {
        return Err(ApiError::Conflict(
            format!(
                "switching request {} is open ({}); extend it, or cancel it while it is in its notice period, instead of starting another",
                existing.id,
                existing.status.as_str()
            ),
            Vec::new(),
        ));
    }
    request.step(now, "requested", acting.step_actor(), None);
    let detail = serde_json::json!({
        "transitional_starts_at": request.transitional_starts_at,
        "transitional_ends_at": request.transitional_ends_at,
        "retrieval_ends_at": request.retrieval_ends_at,
        "erasure_due_at": request.erasure_due_at,
        "destination": request.destination.as_ref().map(|d| d.provider_name.clone()),
    });
    let entry = draft(acting, now, "switching.requested", &request, detail);
    state.store.insert_audited(ctx, std::slice::from_ref(&request), &entry).await?;
    Ok(SwitchingView::of(request, ctx.tenant_id(), now))
}

/// The tenant's switching requests, oldest first, optionally by `status`.
#[utoipa::path(
    get, path = "/api/v1/switching-requests", tag = "switching",
    params(
        ("status" = Option<SwitchingStatus>, Query, description = "notice, transitional, retrieval, erased or cancelled"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of requests", body = Page<SwitchingView>),
        (status = 422, description = "Bad or unknown query parameters, each named", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn list_switching_requests(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let (params, pairs) = ListParams::from_uri(&uri, &["status"])?;
    let mut query = params.to_query()?;
    if let Some(status) = pairs.get("status") {
        let status = SwitchingStatus::parse(status).map_err(|e| ApiError::bad_query("status", e))?;
        query.equals.push(("status", Value::Text(status.as_str().into())));
    }
    let limit = query.limit;
    query.limit = limit + 1;
    let now = state.clock.now();
    let data: Vec<SwitchingRequest> = state.store.list(&caller.ctx, &query).await?;
    let tenant = caller.ctx.tenant_id();
    let data: Vec<SwitchingView> = data.into_iter().map(|request| SwitchingView::of(request, tenant, now)).collect();
    Ok(page_response(data, limit, |last| encode_cursor(last.request.id.into_uuid()), pairs, &uri))
}

pub async fn load(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<SwitchingRequest, ApiError> {
    let id = steward_domain::id::parse_v7(id).map_err(|_| ApiError::not_found("switching request"))?;
    state.store.get::<SwitchingRequest>(ctx, id).await?.ok_or_else(|| ApiError::not_found("switching request"))
}

/// Saves the request with the audit entry recording the change, in one transaction.
async fn save(
    state: &AppState,
    ctx: &TenantCtx,
    request: &SwitchingRequest,
    entry: &AuditDraft,
) -> Result<(), ApiError> {
    if state.store.update_audited(ctx, request, std::slice::from_ref(entry)).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("switching request"))
    }
}

/// One request: every date, its status, timeline and archive.
#[utoipa::path(
    get, path = "/api/v1/switching-requests/{id}", tag = "switching",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = SwitchingView),
        (status = 404, description = "No such request for this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn get_switching_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SwitchingView>, ApiError> {
    caller.require(Scope::Admin)?;
    let request = load(&state, &caller.ctx, &id).await?;
    Ok(Json(SwitchingView::of(request, caller.ctx.tenant_id(), state.clock.now())))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SwitchingExtendInput)]
pub struct ExtendInput {
    /// Days added to the transitional period, 1 to 366. No reason is needed (Art. 25(5)).
    #[schema(value_type = u32, required, minimum = 1, maximum = 366)]
    #[serde(default, deserialize_with = "super::common::whole_number")]
    pub days: Option<u32>,
}

fn refused(error: SwitchingError) -> ApiError {
    ApiError::Conflict(error.to_string(), Vec::new())
}

/// Extends the transitional period once, by as many days as the customer finds appropriate,
/// without a reason, before it ends; retrieval and erasure move with it. A second extension is
/// refused (409).
#[utoipa::path(
    post, path = "/api/v1/switching-requests/{id}/extend", tag = "switching",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = ExtendInput,
    responses(
        (status = 200, description = "The new dates", body = SwitchingView),
        (status = 409, description = "Extended already, or the transitional period is over", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad days", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn extend_switching_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<SwitchingView>, ApiError> {
    caller.require(Scope::Admin)?;
    let input: ExtendInput = from_json(body)?;
    let days = match input.days {
        Some(days) if (1..=MAX_EXTENSION_DAYS).contains(&days) => days,
        _ => {
            return Err(ApiError::Validation(ValidationErrors::single(
                "days",
                format!("is required: the days to add, 1 to {MAX_EXTENSION_DAYS}"),
            )));
        }
    };
    Ok(Json(extend(&state, &caller.ctx, &super::subjects::acting(&caller), &id, days).await?))
}

/// Extends the transitional period by `days` (once), audited as by `acting`.
pub async fn extend(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    id: &str,
    days: u32,
) -> Result<SwitchingView, ApiError> {
    let mut request = load(state, ctx, id).await?;
    let now = state.clock.now();
    let previous_end = request.transitional_ends_at;
    request.extend(days, now).map_err(refused)?;
    request.step(now, "extended", acting.step_actor(), Some(format!("{days} days")));
    let detail = serde_json::json!({
        "days": days, "previous_end": previous_end, "transitional_ends_at": request.transitional_ends_at,
        "retrieval_ends_at": request.retrieval_ends_at, "erasure_due_at": request.erasure_due_at,
    });
    save(state, ctx, &request, &draft(acting, now, "switching.extended", &request, detail)).await?;
    Ok(SwitchingView::of(request, ctx.tenant_id(), now))
}

/// Withdraws a request while it is in its notice period; nothing has been built or erased yet.
#[utoipa::path(
    post, path = "/api/v1/switching-requests/{id}/cancel", tag = "switching",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "Cancelled", body = SwitchingView),
        (status = 409, description = "Past its notice period", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn cancel_switching_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SwitchingView>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(cancel(&state, &caller.ctx, &super::subjects::acting(&caller), &id).await?))
}

/// Withdraws a request in its notice period, audited as by `acting`.
pub async fn cancel(state: &AppState, ctx: &TenantCtx, acting: &Acting, id: &str) -> Result<SwitchingView, ApiError> {
    let mut request = load(state, ctx, id).await?;
    let now = state.clock.now();
    request.cancel(now).map_err(refused)?;
    request.step(now, "cancelled", acting.step_actor(), None);
    save(state, ctx, &request, &draft(acting, now, "switching.cancelled", &request, serde_json::json!({}))).await?;
    Ok(SwitchingView::of(request, ctx.tenant_id(), now))
}

/// The tenant's archive (ZIP): available from when the transitional period starts (rebuilt,
/// complete, when it ends) through the last moment of the retrieval period; 410 after that, when
/// the file is removed. `ETag` is its SHA-256; `Range` resumes a broken download.
#[utoipa::path(
    get, path = "/api/v1/switching-requests/{id}/archive", tag = "switching",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The ZIP archive", content_type = "application/zip"),
        (status = 206, description = "The requested range", content_type = "application/zip"),
        (status = 404, description = "No such request, or an erase request (no archive)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not built yet", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The retrieval period is over; the archive was removed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn download_switching_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    archive_response(&state, &caller.ctx, &super::subjects::acting(&caller), &id, &headers).await
}

/// The archive of a request as a download (Range, ETag), audited as by `acting`.
pub async fn archive_response(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let request = load(state, ctx, id).await?;
    if request.action == SwitchingAction::Erase {
        return Err(ApiError::NotFound(format!(
            "switching request {} is an erase request: there is no archive; its data is erased at {}",
            request.id, request.erasure_due_at
        )));
    }
    let Some(archive) = request.archive.clone() else {
        return Err(ApiError::NotReady(format!(
            "the archive is built when the transitional period starts, at {}; ask again then",
            request.transitional_starts_at
        )));
    };
    let now = state.clock.now();
    let key = archive_key(ctx.tenant_id(), request.id);
    if !request.archive_available(now) {
        // Gone at the end of the retrieval period even if no pass has removed it yet.
        if let Err(error) = state.files.remove(&key) {
            tracing::error!(error = %error, request.id = %request.id, "an expired switching archive could not be removed");
        }
        let ended = request.retrieval_ends_at.map_or_else(|| "already".to_string(), |end| format!("at {end}"));
        return Err(ApiError::Gone(format!(
            "the retrieval period ended {ended} and the archive was removed; the tenant's data is erased at {}",
            request.erasure_due_at
        )));
    }
    let detail = serde_json::json!({ "bytes": archive.bytes, "sha256": archive.sha256, "complete": archive.complete });
    crate::api::audit::record(state, ctx, draft(acting, now, "switching.archive_downloaded", &request, detail)).await?;
    let stored = StoredFile {
        ctx: *ctx,
        key: &key,
        sha256: &archive.sha256,
        media_type: "application/zip",
        filename: format!("switching-{}.zip", request.id),
        gone: format!("the archive of switching request {} is no longer stored", request.id),
    };
    serve_file(state, headers, stored).await
}

/// The signed erasure attestation of a tenant whose data was erased after switching: JSON with
/// `algorithm` (Ed25519), `public_key`, `payload` (the attested JSON as a string: every store with
/// its counts and erasure time) and `signature` over the payload's UTF-8 bytes. Public: the
/// tenant's credentials are erased with it. Verify with the key `/data-register` publishes.
#[utoipa::path(
    get, path = "/switching-attestations/{tenant_id}", tag = "switching",
    params(("tenant_id" = uuid::Uuid, Path, description = "The erased tenant's id")),
    responses(
        (status = 200, description = "The attestation", body = crate::switching::Attestation),
        (status = 404, description = "No erasure attested for this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn get_switching_attestation(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> Result<Response, ApiError> {
    let missing = || {
        ApiError::NotFound(format!(
            "no erasure attestation exists for tenant {tenant_id}; it is published here when the tenant's data has been erased"
        ))
    };
    let tenant = TenantId::parse(&tenant_id).map_err(|_| missing())?;
    let bytes = read_attestation(&state, tenant)?.ok_or_else(missing)?;
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
