//! `POST /api/v1/imports/{dataset}`: a CSV of leads or organizations from another tool, with a
//! column mapping (see [`crate::import::csv`]).
//!
//! The uploaded file is spooled to a temporary file while its size is counted (413 past
//! `imports.max_bytes`), so the mapping part may come before or after it and memory stays flat.

use std::io::SeekFrom;

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use steward_domain::{Scope, ValidationErrors};
use steward_export::DatasetName;
use steward_store::{Actor, ActorKind};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::import::csv::{ImportSummary, Mapping, MappingFile, import};
use crate::state::AppState;
use crate::subjects::Acting;

/// Largest mapping part, in bytes.
const MAX_MAPPING: usize = 1024 * 1024;

/// The multipart body of an import (documentation only).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportForm {
    /// The CSV file: UTF-8, RFC 4180 quoting; a quoted cell may span lines.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The mapping as JSON; without it the columns must be named like Steward's own export.
    mapping: Option<MappingFile>,
}

/// Imports a CSV of `leads` or `organizations`. Every row is created as `POST` would create it
/// (validation, organization linking, the erasure ledger); a bad row is reported with its line
/// number (the header is line 1) and the field and source column at fault, and the other rows
/// are kept. The answer is 200 whenever the mapping fits the file, `rejected` saying how many
/// rows were refused. One `import.completed` audit entry records the counts. An import runs to
/// its end even if the client goes away; import organizations before leads, since a lead is
/// linked to the organization of its work email's domain, which is created when none exists.
///
/// The body is `multipart/form-data` with a part `file` (the CSV) and an optional part `mapping`
/// (JSON), for example:
///
/// ```json
/// {"delimiter": ";", "header": true, "date_format": "%d.%m.%Y %H:%M", "unmapped": "custom_fields",
///  "columns": {"Email Address": "email", "Name": "full_name", "Create Date": "first_touch.occurred_at",
///              "Original Source": "first_touch.utm.source", "Internal Notes": null},
///  "constants": {"status": "new"}}
/// ```
///
/// Fields are named as the CSV export names its columns (`location.country_code`,
/// `custom_fields.<key>`, and `full_name`, split into first and last name); columns named like a
/// field need no entry, so a Steward export imports with no mapping. Ids and timestamps Steward
/// sets (`id`, `created_at`, …) and ids of other records (`organization_id`,
/// `visitor_profile_id`, `contacts`) are skipped unless mapped by name. Lists are JSON text or
/// items separated by `,` or `;`; booleans `true`/`false`, `yes`/`no` or `1`/`0`.
#[utoipa::path(
    post, path = "/api/v1/imports/{dataset}", tag = "imports",
    params(("dataset" = String, Path, description = "`leads` or `organizations`")),
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Imported; `rejected` rows are listed in `rejections` with line and reason", body = ImportSummary),
        (status = 400, description = "A missing or unknown part, or a file that is not CSV", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks leads:write or organizations:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset to import", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than `imports.max_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The mapping is bad or does not fit the file, each problem in `errors`; nothing was imported", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["leads:write"]), ("oauth2" = ["organizations:write"]))
)]
pub async fn import_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataset): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<ImportSummary>, ApiError> {
    let (dataset, scope) = match DatasetName::parse(&dataset) {
        Some(DatasetName::Leads) => (DatasetName::Leads, Scope::LeadsWrite),
        Some(DatasetName::Organizations) => (DatasetName::Organizations, Scope::OrganizationsWrite),
        _ => {
            return Err(ApiError::NotFound(format!(
                "{dataset:?} cannot be imported; CSV imports take leads or organizations"
            )));
        }
    };
    caller.require(scope)?;
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::UnsupportedMediaType(format!(
            "send multipart/form-data with a part `file` (the CSV) and optionally a part `mapping` (JSON): {rejection}"
        ))
    })?;
    let limit = state.settings.imports.max_bytes;
    let mut file = None;
    let mut mapping = None;
    while let Some(mut part) = multipart.next_field().await.map_err(part_error)? {
        match part.name() {
            Some("file") if file.is_none() => {
                let spooled = tempfile::tempfile().map_err(|e| ApiError::Internal(e.into()))?;
                let mut spooled = tokio::fs::File::from_std(spooled);
                let mut size: u64 = 0;
                while let Some(chunk) = part.chunk().await.map_err(part_error)? {
                    size = size.saturating_add(chunk.len() as u64);
                    if size > limit {
                        return Err(ApiError::PayloadTooLarge(format!(
                            "the file is larger than the {limit} bytes an import accepts (imports.max_bytes); \
                             split it, or use `steward import` on the server"
                        )));
                    }
                    spooled.write_all(&chunk).await.map_err(|e| ApiError::Internal(e.into()))?;
                }
                spooled.flush().await.map_err(|e| ApiError::Internal(e.into()))?;
                spooled.seek(SeekFrom::Start(0)).await.map_err(|e| ApiError::Internal(e.into()))?;
                file = Some(spooled.into_std().await);
            }
            Some("mapping") if mapping.is_none() => {
                let bytes = part.bytes().await.map_err(part_error)?;
                if bytes.len() > MAX_MAPPING {
                    return Err(ApiError::PayloadTooLarge(format!("the mapping is larger than {MAX_MAPPING} bytes")));
                }
                let json = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::Validation(ValidationErrors::single("mapping", format!("is not JSON: {e}")))
                })?;
                // Checked at once: a bad mapping is refused before the file is read.
                mapping = Some(Mapping::parse(dataset, Some(json)).map_err(ApiError::Validation)?);
            }
            Some(name @ ("file" | "mapping")) => {
                return Err(ApiError::BadRequest {
                    detail: format!("the part `{name}` is sent twice; send it once"),
                    errors: Vec::new(),
                });
            }
            other => {
                let name = other.unwrap_or_default();
                return Err(ApiError::BadRequest {
                    detail: format!("the part {name:?} is not known here; send `file` (the CSV) and `mapping` (JSON)"),
                    errors: Vec::new(),
                });
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::BadRequest {
        detail: "the part `file` (the CSV) is missing".into(),
        errors: vec![steward_domain::FieldError { field: "file".into(), message: "is required".into() }],
    })?;
    let mapping = match mapping {
        Some(mapping) => mapping,
        None => Mapping::parse(dataset, None).map_err(ApiError::Validation)?,
    };
    let acting = Acting {
        actor: Actor { kind: ActorKind::Client, id: Some(caller.client_id.to_string()) },
        ip_network: caller.ip_network,
    };
    // On a task of its own: an import that outlives its request (the client went away, or the
    // request timed out) still runs to its end and records its counts in the audit log.
    let ctx = caller.ctx;
    let task = tokio::spawn(async move { import(&state, &ctx, &acting, mapping, file).await });
    let summary = task.await.map_err(|error| ApiError::Internal(anyhow::anyhow!("the import stopped: {error}")))??;
    Ok(Json(summary))
}

fn part_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than an import accepts (imports.max_bytes)".into())
    } else {
        ApiError::BadRequest {
            detail: format!("the multipart body could not be read: {}", error.body_text()),
            errors: Vec::new(),
        }
    }
}
