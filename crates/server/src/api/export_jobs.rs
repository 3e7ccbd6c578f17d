//! Export jobs over HTTP: `POST /api/v1/exports` queues one (202 + `Location`),
//! `GET /api/v1/exports/{id}` shows status and progress, `GET /api/v1/exports/{id}/file`
//! downloads the finished file with `ETag` (its SHA-256) and `Range`, so a broken download
//! resumes where it stopped.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use steward_domain::{Scope, Timestamp, ValidationErrors};
use steward_export::{DatasetName, Format};
use steward_store::{Actor, ActorKind, JobRecord, JobStatus, Target, TenantCtx};
use uuid::Uuid;

use super::audit;
use super::common::{JsonBody, from_json};
use super::exports;
use super::files::{StoredFile, serve_file};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::jobs::{EXPORT, ExportJob};
use crate::state::AppState;
use crate::subjects::Acting;

/// What to export, as a client sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportJobInput {
    /// `leads`, `visitor-profiles`, `journeys`, `organizations`, `reports` (every report by
    /// day; by default the last 30 days, at most `reports.max_days`) or `audit-log`.
    #[schema(value_type = DatasetName, required)]
    pub dataset: Option<String>,
    /// `csv` (default), `json`, `ndjson` or `xlsx`.
    #[schema(value_type = Option<Format>)]
    pub format: Option<String>,
    /// RFC 3339 (years 1970 to 9999); records created at or after. No limit on the period.
    #[schema(value_type = Option<String>, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    pub from: Option<String>,
    /// RFC 3339 (years 1970 to 9999); records created before (later than `from`).
    #[schema(value_type = Option<String>, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportJobView {
    pub id: Uuid,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub created_at: Timestamp,
    /// How many times a worker started it (more than one after a restart).
    pub attempts: u32,
    #[serde(flatten)]
    pub export: ExportJob,
    /// Where to download the file once the job succeeded.
    pub file_url: Option<String>,
}

fn view(job: &JobRecord, export: ExportJob) -> ExportJobView {
    let file_url = (job.status == JobStatus::Succeeded).then(|| format!("/api/v1/exports/{}/file", job.id));
    ExportJobView {
        id: job.id,
        status: job.status.as_str().into(),
        created_at: job.created_at,
        attempts: job.attempts,
        export: ExportJob { file: None, ..export },
        file_url,
    }
}

/// Queues an export of any size and period. Answers 202 with `Location`; poll it until
/// `status` is `succeeded`, then download `file_url`.
#[utoipa::path(
    post, path = "/api/v1/exports", tag = "exports",
    request_body = ExportJobInput,
    responses(
        (status = 202, description = "Queued; `Location` names the job", body = ExportJobView),
        (status = 403, description = "Token lacks `export` or the dataset's read scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad dataset, format or period, each named", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["export"]))
)]
pub async fn create_export_job(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if let Err(refused) = caller.require(Scope::Export) {
        let detail = serde_json::json!({"job": true, "dataset": body.get("dataset"), "reason": refused.to_string()});
        let target = Target { kind: "export_job".into(), count: 0, ids: Vec::new() };
        audit::record(&state, &caller.ctx, audit::by_client(&state, &caller, "export.refused", target, detail)).await?;
        return Err(refused);
    }
    let input: ExportJobInput = from_json(body)?;
    let mut errors = ValidationErrors::default();
    let dataset = match input.dataset.as_deref() {
        None => {
            errors
                .add("dataset", "is required: leads, visitor-profiles, journeys, organizations, reports or audit-log");
            None
        }
        Some(text) => {
            let dataset = DatasetName::parse(text);
            if dataset.is_none() {
                errors.add("dataset", "must be leads, visitor-profiles, journeys, organizations, reports or audit-log");
            }
            dataset
        }
    };
    let format = match input.format.as_deref() {
        None => Some(Format::Csv),
        Some(text) => {
            let format = Format::parse(text);
            if format.is_none() {
                errors.add("format", "must be csv, json, ndjson or xlsx");
            }
            format
        }
    };
    let mut time = |field: &str, value: Option<&str>| {
        value.and_then(|text| match Timestamp::parse(text) {
            Ok(at) => Some(at),
            Err(error) => {
                errors.add(field, error.to_string());
                None
            }
        })
    };
    let from = time("from", input.from.as_deref());
    let to = time("to", input.to.as_deref());
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        errors.add("to", "must be later than from");
    }
    let (Some(dataset), Some(format)) = (dataset, format) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if let Err(refused) = caller.require(exports::read_scope(dataset)) {
        let detail = serde_json::json!({"job": true, "dataset": dataset.to_string(), "reason": refused.to_string()});
        let target = Target { kind: dataset.to_string(), count: 0, ids: Vec::new() };
        audit::record(&state, &caller.ctx, audit::by_client(&state, &caller, "export.refused", target, detail)).await?;
        return Err(refused);
    }
    let acting = Acting {
        actor: Actor { kind: ActorKind::Client, id: Some(caller.client_id.to_string()) },
        ip_network: caller.ip_network,
    };
    let (job, export) = queue(&state, &caller.ctx, &acting, dataset, format, from, to).await?;
    let location = format!("/api/v1/exports/{}", job.id);
    let mut response = (StatusCode::ACCEPTED, Json(view(&job, export))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Queues an export job for whoever is acting (an API client or a console user, whose right to
/// the dataset was checked) and audits it as `export.queued` naming the job.
pub(crate) async fn queue(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    dataset: DatasetName,
    format: Format,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<(JobRecord, ExportJob), ApiError> {
    // Reports cover a bounded period, fixed now so that the job's file does not depend on when
    // a worker runs it.
    let (from, to) = if dataset == DatasetName::Reports {
        let (from, to) = super::reports::period(from, to, state.clock.now(), state.settings.reports.max_days)?;
        (Some(from), Some(to))
    } else {
        (from, to)
    };
    let export = ExportJob::new(dataset, format, from, to);
    let job = JobRecord {
        tenant_id: ctx.tenant_id(),
        id: steward_domain::id::new_v7(),
        kind: EXPORT.into(),
        status: JobStatus::Queued,
        created_at: state.clock.now(),
        attempts: 0,
        data: serde_json::to_value(&export).map_err(|e| ApiError::Internal(e.into()))?,
    };
    state.store.create_job(ctx, &job).await?;
    let detail = serde_json::json!({"job": job.id, "dataset": dataset.to_string(), "format": format.as_str(), "from": from, "to": to});
    let target = Target { kind: dataset.to_string(), count: 0, ids: vec![job.id] };
    audit::record(state, ctx, acting.draft(state.clock.now(), "export.queued", target, detail)).await?;
    tracing::info!(job.id = %job.id, dataset = %dataset, format = %format, "export job queued");
    Ok((job, export))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<(JobRecord, ExportJob), ApiError> {
    caller.require(Scope::Export)?;
    let not_found = || ApiError::not_found("export job");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let job = state.store.get_job(&caller.ctx, id).await?.filter(|job| job.kind == EXPORT).ok_or_else(not_found)?;
    let export: ExportJob = serde_json::from_value(job.data.clone()).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((job, export))
}

/// One segment after `/api/v1/exports/`: a job id shows the job, a dataset name streams it.
pub async fn get_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    if Uuid::parse_str(&name).is_ok() {
        let (job, export) = find(&state, &caller, &name).await?;
        return Ok(Json(view(&job, export)).into_response());
    }
    exports::stream_export(State(state), caller, Path(name), uri).await
}

/// Status and progress of an export job (documentation of the job branch of [`get_export`]).
#[utoipa::path(
    get, path = "/api/v1/exports/{id}", tag = "exports",
    params(("id" = uuid::Uuid, Path, description = "Export job id")),
    responses(
        (status = 200, description = "The job: status, progress, and `file_url` once it succeeded", body = ExportJobView),
        (status = 404, description = "No such job for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["export"]))
)]
#[allow(dead_code)]
async fn get_export_job() {}

/// Downloads a finished export. `ETag` is the file's SHA-256; `Range: bytes=N-` (with
/// `If-Range`) resumes a broken download.
#[utoipa::path(
    get, path = "/api/v1/exports/{id}/file", tag = "exports",
    params(("id" = uuid::Uuid, Path, description = "Export job id")),
    responses(
        (status = 200, description = "The file"),
        (status = 206, description = "The asked byte range"),
        (status = 304, description = "Unchanged (`If-None-Match`)"),
        (status = 404, description = "No such job for your tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished yet (`Retry-After`) or failed", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The file has expired", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the file", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["export"]))
)]
pub async fn download_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (job, export) = find(&state, &caller, &id).await?;
    serve_job_file(&state, &headers, &job, &export).await
}

/// The file of a finished job through [`serve_file`]; 409 while it runs or after it failed, 410
/// once expired. Shared by the API and the console's download list.
pub(crate) async fn serve_job_file(
    state: &AppState,
    headers: &HeaderMap,
    job: &JobRecord,
    export: &ExportJob,
) -> Result<Response, ApiError> {
    match job.status {
        JobStatus::Succeeded => {}
        JobStatus::Failed => {
            return Err(ApiError::Conflict(
                format!("export job {} failed; start a new export with POST /api/v1/exports", job.id),
                Vec::new(),
            ));
        }
        JobStatus::Queued | JobStatus::Running => {
            let progress = match export.rows_total {
                Some(total) => format!("{} of {total} rows written", export.rows_written),
                None => "not started".into(),
            };
            return Err(ApiError::NotReady(format!(
                "export job {} is {} ({progress}); poll GET /api/v1/exports/{} until it succeeds",
                job.id,
                job.status.as_str(),
                job.id
            )));
        }
    }
    if export.expires_at.is_some_and(|at| at <= state.clock.now()) {
        return Err(ApiError::Gone(format!(
            "the file of export job {} expired; start a new export with POST /api/v1/exports",
            job.id
        )));
    }
    let key = export.file.clone().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("succeeded job without file")))?;
    let sha = export.sha256.clone().unwrap_or_default();
    let file = StoredFile {
        ctx: TenantCtx::new(job.tenant_id),
        key: &key,
        sha256: &sha,
        media_type: export.format.media_type(),
        filename: format!("{}-{}.{}", export.dataset, job.id, export.format),
        gone: format!("the file of export job {} is no longer stored", job.id),
    };
    serve_file(state, headers, file).await
}
