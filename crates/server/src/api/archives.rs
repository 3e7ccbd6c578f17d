//! Tenant archives over HTTP: `POST /api/v1/archives` queues one (202 + `Location`),
//! `GET /api/v1/archives/{id}` shows it with its manifest once built, `GET …/{id}/file`
//! downloads the ZIP with `ETag` and `Range`; and the public data register's routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_domain::{Scope, Timestamp};
use steward_store::{JobRecord, JobStatus, Target};
use uuid::Uuid;

use super::audit;
use super::files::{StoredFile, serve_file};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::tenant_archive::{ARCHIVE_JOB, ArchiveJob, queue};

/// A tenant archive job as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArchiveView {
    pub id: Uuid,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub created_at: Timestamp,
    pub attempts: u32,
    #[serde(flatten)]
    pub archive: ArchiveJob,
    /// Where to download the ZIP once it succeeded.
    pub file_url: Option<String>,
}

fn view(job: &JobRecord, archive: ArchiveJob) -> ArchiveView {
    let file_url = (job.status == JobStatus::Succeeded).then(|| format!("/api/v1/archives/{}/file", job.id));
    ArchiveView {
        id: job.id,
        status: job.status.as_str().into(),
        created_at: job.created_at,
        attempts: job.attempts,
        archive: ArchiveJob { file: None, ..archive },
        file_url,
    }
}

/// Queues an archive of everything the tenant keeps (Data Act): every dataset in NDJSON and
/// CSV, the schemas, settings, sites, retention policies, legal holds and API client metadata,
/// with a manifest of row counts and SHA-256 sums. Answers 202 with `Location`.
#[utoipa::path(
    post, path = "/api/v1/archives", tag = "switching",
    responses(
        (status = 202, description = "Queued; poll `Location`", body = ArchiveView),
        (status = 403, description = "The client lacks the `admin` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn create_tenant_archive(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let job = queue(&state, &caller.ctx).map_err(ApiError::Internal)?;
    state.store.create_job(&caller.ctx, &job).await?;
    let target = Target { kind: "tenant_archive".into(), count: 1, ids: vec![job.id] };
    let detail = serde_json::json!({ "job": job.id });
    audit::record(&state, &caller.ctx, audit::by_client(&state, &caller, "archive.queued", target, detail)).await?;
    let location = format!("/api/v1/archives/{}", job.id);
    let mut response = (StatusCode::ACCEPTED, Json(view(&job, ArchiveJob::default()))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<(JobRecord, ArchiveJob), ApiError> {
    caller.require(Scope::Admin)?;
    let not_found = || ApiError::not_found("tenant archive");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let job =
        state.store.get_job(&caller.ctx, id).await?.filter(|job| job.kind == ARCHIVE_JOB).ok_or_else(not_found)?;
    let archive: ArchiveJob = serde_json::from_value(job.data.clone()).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((job, archive))
}

/// A tenant archive: status, and once built its size, SHA-256 and the manifest's files.
#[utoipa::path(
    get, path = "/api/v1/archives/{id}", tag = "switching",
    params(("id" = uuid::Uuid, Path, description = "Archive job id")),
    responses(
        (status = 200, description = "The archive job", body = ArchiveView),
        (status = 404, description = "No such archive for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn get_tenant_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ArchiveView>, ApiError> {
    let (job, archive) = find(&state, &caller, &id).await?;
    Ok(Json(view(&job, archive)))
}

/// Downloads a built tenant archive (ZIP). `ETag` is its SHA-256; `Range` resumes.
#[utoipa::path(
    get, path = "/api/v1/archives/{id}/file", tag = "switching",
    params(("id" = uuid::Uuid, Path, description = "Archive job id")),
    responses(
        (status = 200, description = "The ZIP", content_type = "application/zip"),
        (status = 206, description = "The asked byte range"),
        (status = 304, description = "Unchanged (`If-None-Match`)"),
        (status = 404, description = "No such archive for your tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not built yet (`Retry-After`) or failed", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The file has expired", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the file", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn download_tenant_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (job, archive) = find(&state, &caller, &id).await?;
    match job.status {
        JobStatus::Succeeded => {}
        JobStatus::Failed => {
            return Err(ApiError::Conflict(
                format!("archive {} failed; ask for a new one with POST /api/v1/archives", job.id),
                Vec::new(),
            ));
        }
        JobStatus::Queued | JobStatus::Running => {
            return Err(ApiError::NotReady(format!(
                "archive {} is {}; poll GET /api/v1/archives/{} until it succeeds",
                job.id,
                job.status.as_str(),
                job.id
            )));
        }
    }
    if archive.expires_at.is_some_and(|at| at <= state.clock.now()) {
        return Err(ApiError::Gone(format!(
            "archive {} expired; ask for a new one with POST /api/v1/archives",
            job.id
        )));
    }
    let (Some(key), Some(summary)) = (archive.file.as_deref(), archive.summary.as_ref()) else {
        return Err(ApiError::Internal(anyhow::anyhow!("succeeded archive job without file")));
    };
    let target = Target { kind: "tenant_archive".into(), count: 1, ids: vec![job.id] };
    let range = headers.get(header::RANGE).and_then(|r| r.to_str().ok());
    let detail = serde_json::json!({ "job": job.id, "bytes": summary.bytes, "sha256": summary.sha256, "range": range });
    audit::record(&state, &caller.ctx, audit::by_client(&state, &caller, "archive.downloaded", target, detail)).await?;
    let file = StoredFile {
        ctx: caller.ctx,
        key,
        sha256: &summary.sha256,
        media_type: "application/zip",
        filename: format!("steward-archive-{}-{}.zip", caller.ctx.tenant_id(), job.id),
        gone: format!("the file of archive {} is no longer stored; ask for a new one", job.id),
    };
    serve_file(&state, &headers, file).await
}

/// The public data register (Data Act Art. 26(b)): datasets, columns, formats, standards,
/// limits, switching procedures and exclusions. JSON, or HTML when the client prefers it.
#[utoipa::path(
    get, path = "/data-register", tag = "switching",
    responses((status = 200, description = "The register (JSON; HTML for `Accept: text/html`)", content_type = "application/json")),
    security(())
)]
pub async fn data_register(state: State<AppState>, headers: HeaderMap) -> Response {
    crate::register::show(state, headers).await
}

/// The JSON Schema 2020-12 of one dataset's records, e.g. `leads.schema.json`.
#[utoipa::path(
    get, path = "/data-register/schemas/{file}", tag = "switching",
    params(("file" = String, Path, description = "`<dataset>.schema.json`")),
    responses(
        (status = 200, description = "The schema", content_type = "application/schema+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn dataset_schema(path: Path<String>) -> Result<Response, ApiError> {
    crate::register::schema(path).await
}

/// Loads a Steward tenant archive (the ZIP from `/api/v1/archives/{id}/file` of any Steward)
/// into this tenant, which must hold no records yet. The whole archive is checked against its
/// manifest before anything is written; ids and values are kept.
#[utoipa::path(
    post, path = "/api/v1/imports/archive", tag = "switching",
    request_body(content = Vec<u8>, content_type = "application/zip", description = "A Steward tenant archive"),
    responses(
        (status = 200, description = "Imported: records per dataset, assets, and what was not loaded and why", body = crate::import::archive::ImportReport),
        (status = 409, description = "The tenant already holds records", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than `imports.max_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/zip`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a Steward archive, another version, or damaged (named file and reason)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["admin"]))
)]
pub async fn import_archive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<crate::import::archive::ImportReport>, ApiError> {
    use crate::import::archive::{ImportError, import};
    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    caller.require(Scope::Admin)?;
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !media.trim().eq_ignore_ascii_case("application/zip") {
        return Err(ApiError::UnsupportedMediaType(
            "send the archive as the body with Content-Type: application/zip".into(),
        ));
    }
    let limit = state.settings.imports.max_bytes;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "an archive may have at most {limit} bytes (imports.max_bytes); ask the operator, or use steward import on the server"
        ))
    };
    let temporary = tempfile::NamedTempFile::new().map_err(|e| ApiError::Internal(e.into()))?;
    let mut file = tokio::fs::File::from_std(temporary.reopen().map_err(|e| ApiError::Internal(e.into()))?);
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest { detail: format!("the upload broke off: {e}"), errors: Vec::new() })?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(too_large());
        }
        file.write_all(&chunk).await.map_err(|e| ApiError::Internal(e.into()))?;
    }
    file.flush().await.map_err(|e| ApiError::Internal(e.into()))?;
    drop(file);
    match import(&state, &caller.ctx, temporary.path()).await {
        Ok(report) => Ok(Json(report)),
        Err(ImportError::Invalid(detail)) => {
            let mut errors = steward_domain::ValidationErrors::default();
            errors.add("archive", detail);
            Err(ApiError::Validation(errors))
        }
        Err(ImportError::NotEmpty(detail)) => Err(ApiError::Conflict(detail, Vec::new())),
        Err(ImportError::Internal(error)) => Err(ApiError::Internal(error)),
    }
}
