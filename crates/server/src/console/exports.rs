//! The export page: pick a dataset, a format and a period. Within the configured limits the
//! browser downloads the file at once, through the API's own export code
//! ([`crate::api::exports::stream_dataset`]); past them the form comes back saying what to do,
//! and a job ([`crate::api::export_jobs::queue`]) exports any size in the background, shown in a
//! download list with its progress.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;
use steward_domain::{Permission, Timestamp};
use steward_export::{DatasetName, Format};
use steward_store::{AuditQuery, JobRecord, JobStatus, StoreExt};
use uuid::Uuid;

use super::records::day_range;
use super::views::{self, when};
use super::{ConsoleError, Signed, acting, check_csrf, chrome, member, page, refuse, security};
use crate::api::exports::{self as api_exports, Exceeded, ExportRequest};
use crate::jobs::{EXPORT, ExportJob};
use crate::state::AppState;

/// Export jobs listed: those queued in the last week (their files expire before that).
const LIST_DAYS: i64 = 7;
const LIST_MAX: usize = 20;
/// Formats offered on the page (NDJSON stays an API format).
const FORMATS: [Format; 3] = [Format::Csv, Format::Xlsx, Format::Json];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/exports", get(show_exports).post(start_export))
        .route("/console/exports/{id}/file", get(download_job_file))
}

/// The permission a dataset's export needs: reports are not personal, everything else is.
fn needed(dataset: DatasetName) -> &'static [Permission] {
    match dataset {
        DatasetName::Reports => &[Permission::ExportReports],
        DatasetName::AuditLog => &[Permission::ExportPersonalData, Permission::ReadAudit],
        _ => &[Permission::ExportPersonalData],
    }
}

fn missing(signed: &Signed, dataset: DatasetName) -> Option<Permission> {
    needed(dataset).iter().copied().find(|permission| !signed.user.role.can(*permission))
}

fn label(dataset: DatasetName) -> &'static str {
    match dataset {
        DatasetName::Leads => "Leads",
        DatasetName::VisitorProfiles => "Visitor profiles",
        DatasetName::Journeys => "Journeys (visits and events)",
        DatasetName::Organizations => "Organizations",
        DatasetName::Reports => "Reports (per day, not personal)",
        DatasetName::AuditLog => "Audit log",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportForm {
    csrf: String,
    dataset: String,
    format: String,
    from: String,
    to: String,
    /// "1" when the user asks for a background job.
    job: String,
    /// "1" from the "start an export job instead" button shown with a refusal.
    as_job: String,
}

struct PageState<'a> {
    form: &'a ExportForm,
    message: Option<String>,
    notice: Option<String>,
    /// The period or size was past the limit: offer the same export as a job.
    offer_job: bool,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    view: PageState<'_>,
) -> Result<Response, ConsoleError> {
    let jobs = recent_jobs(state, signed).await?;
    let running = jobs.iter().any(|(job, _)| matches!(job.status, JobStatus::Queued | JobStatus::Running));
    let csrf = security::csrf_token(&signed.token);
    let mut frame = chrome(signed, &csrf, "/console/exports");
    frame.refresh = running.then_some(3);
    let limits = &state.settings.exports;
    let form = view.form;
    let datasets: Vec<DatasetName> =
        DatasetName::ALL.into_iter().filter(|dataset| missing(signed, *dataset).is_none()).collect();
    let body = html! {
        p id="limits" {
            "A direct download covers at most " strong { (limits.console_max_days) " days" } " and "
            strong { (limits.console_max_bytes >> 20) " MiB" } ". Larger exports run as export jobs: "
            "tick “Run as an export job” and download the file from the list below when it is ready."
        }
        (views::notice(view.notice.as_deref(), view.message.as_deref()))
        form method="post" action="/console/exports" id="export-form" {
            input type="hidden" name="csrf" value=(csrf);
            p { label { "Dataset" select name="dataset" id="dataset" required {
                @for dataset in &datasets {
                    option value=(dataset.as_str()) selected[form.dataset == dataset.as_str()] { (label(*dataset)) }
                }
            } } }
            p { label { "Format" select name="format" id="format" {
                @for format in FORMATS {
                    option value=(format.as_str()) selected[form.format == format.as_str()] { (format.as_str().to_uppercase()) }
                }
            } } }
            p {
                label { "From (created on or after)" input type="date" name="from" id="from" value=(form.from); }
                " "
                label { "To (created on or before)" input type="date" name="to" id="to" value=(form.to); }
            }
            p.muted { "Dates are UTC days. Leave both empty for everything (then only the size limit applies)." }
            p { label.inline { input type="checkbox" name="job" id="job" value="1" checked[form.job == "1"]; "Run as an export job (no limit on period or size)" } }
            button type="submit" id="export-submit" { "Export" }
            @if view.offer_job {
                " "
                button.quiet type="submit" name="as_job" value="1" id="export-as-job" { "Start an export job for this instead" }
            }
        }
        h2 { "Export jobs of the last " (LIST_DAYS) " days" }
        @if jobs.is_empty() { p id="no-jobs" { "No export jobs." } }
        @else {
            div.scroll { table id="jobs" {
                thead { tr { th scope="col" { "Queued" } th scope="col" { "Dataset" } th scope="col" { "Format" } th scope="col" { "Period" } th scope="col" { "Progress" } th scope="col" { "File" } } }
                tbody {
                    @for (job, export) in &jobs {
                        tr data-job=(job.id.to_string()) data-status=(job.status.as_str()) {
                            td { (when(job.created_at)) }
                            td { (export.dataset.as_str()) }
                            td { (export.format.as_str()) }
                            td { (period_text(export.from, export.to)) }
                            td {
                                @match job.status {
                                    JobStatus::Succeeded => { "done, " (export.rows_written) " rows" }
                                    JobStatus::Failed => { "failed: " (export.error.as_deref().unwrap_or("unknown error")) }
                                    _ => {
                                        @let total = export.rows_total.unwrap_or(0).max(1);
                                        progress max=(total) value=(export.rows_written.min(total)) aria-label="Rows written" {
                                            (export.rows_written) " of " (total)
                                        }
                                        " " (job.status.as_str())
                                    }
                                }
                            }
                            td {
                                @if job.status == JobStatus::Succeeded {
                                    @if export.expires_at.is_some_and(|at| at <= state.clock.now()) { "expired" }
                                    @else { a href=(format!("/console/exports/{}/file", job.id)) download { "Download" } }
                                } @else { "–" }
                            }
                        }
                    }
                }
            } }
            @if running { p.muted { "This page reloads every few seconds while a job runs." } }
        }
    };
    Ok(page(status, views::shell(&frame, "Exports", body)))
}

fn period_text(from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    let last = to.and_then(|to| to.checked_sub(time::Duration::microseconds(1)));
    match (from, last) {
        (None, None) => "everything".into(),
        (from, last) => format!(
            "{} to {}",
            from.map_or_else(|| "the start".into(), views::day),
            last.map_or_else(|| "now".into(), views::day)
        ),
    }
}

/// The tenant's export jobs queued in the last week, newest first, as the audit log names them.
async fn recent_jobs(state: &AppState, signed: &Signed) -> Result<Vec<(JobRecord, ExportJob)>, ConsoleError> {
    let since = state.clock.now().checked_sub(time::Duration::days(LIST_DAYS));
    let mut query =
        AuditQuery { limit: 1_000, from: since, action: Some("export.queued".into()), ..AuditQuery::default() };
    let mut ids: Vec<Uuid> = Vec::new();
    loop {
        let entries = state.store.audit_entries(&signed.ctx, &query).await?;
        let full = entries.len() == 1_000;
        query.after_seq = entries.last().map(|entry| entry.seq);
        ids.extend(entries.iter().flat_map(|entry| entry.target.ids.iter().copied()));
        if !full {
            break;
        }
    }
    let mut jobs = Vec::new();
    for id in ids.iter().rev().take(LIST_MAX) {
        if let Some(job) = state.store.get_job(&signed.ctx, *id).await?.filter(|job| job.kind == EXPORT) {
            let export: ExportJob = serde_json::from_value(job.data.clone()).map_err(anyhow::Error::new)?;
            jobs.push((job, export));
        }
    }
    Ok(jobs)
}

async fn show_exports(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = super::permitted(&state, &headers, Permission::ExportReports, "exports").await?;
    let form = ExportForm { dataset: "leads".into(), format: "csv".into(), ..ExportForm::default() };
    render(&state, &signed, StatusCode::OK, PageState { form: &form, message: None, notice: None, offer_job: false })
        .await
}

/// What to tell a user whose download is past a limit.
pub fn exceeded_message(exceeded: &Exceeded) -> String {
    match exceeded {
        Exceeded::Period { days, max_days, .. } => format!(
            "This period covers {days} days, but a direct download covers at most {max_days} days. \
             Pick a shorter period (at most {max_days} days), or tick “Run as an export job” to export the whole period in the background."
        ),
        Exceeded::Size { rows, mib, max_mib } => format!(
            "These {rows} rows would make a file of about {mib} MiB, but a direct download is at most {max_mib} MiB. \
             Pick a shorter period, or tick “Run as an export job” to export it in the background."
        ),
    }
}

async fn start_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ExportForm>,
) -> Result<Response, ConsoleError> {
    let signed = member(&state, &headers).await?;
    check_csrf(&signed, &form.csrf)?;
    let Some(dataset) = DatasetName::parse(form.dataset.trim()) else {
        if !signed.user.role.can(Permission::ExportReports) {
            return refuse(&state, &signed, Permission::ExportReports, "exports").await;
        }
        let message = Some("Pick one of the datasets in the list.".to_string());
        return render(
            &state,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            PageState { form: &form, message, notice: None, offer_job: false },
        )
        .await;
    };
    let acting = acting(&signed);
    if let Some(permission) = missing(&signed, dataset) {
        // What was asked for, as far as it can be read, for the audit entry.
        let (from, to) = day_range(&form.from, &form.to).unwrap_or_default();
        let asked = ExportRequest { format: Format::parse(&form.format).unwrap_or(Format::Csv), from, to };
        let reason = format!("the role {} may not {}", signed.user.role.as_str(), views::permission_text(permission));
        api_exports::audit_refusal(&state, &signed.ctx, &acting, dataset, &asked, &reason).await?;
        return refuse(&state, &signed, permission, "exports").await;
    }
    let invalid = |message: String| PageState { form: &form, message: Some(message), notice: None, offer_job: false };
    let Some(format) = Format::parse(&form.format).filter(|f| FORMATS.contains(f)) else {
        let view = invalid("Pick CSV, XLSX or JSON.".into());
        return render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, view).await;
    };
    let (from, to) = match day_range(&form.from, &form.to) {
        Ok(period) => period,
        Err(message) => return render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, invalid(message)).await,
    };
    let request = ExportRequest { format, from, to };
    if form.job == "1" || form.as_job == "1" {
        let (job, _) = crate::api::export_jobs::queue(&state, &signed.ctx, &acting, dataset, format, from, to).await?;
        tracing::info!(job.id = %job.id, "console export job queued");
        return Ok(Redirect::to("/console/exports").into_response());
    }
    if dataset == DatasetName::Reports
        && let Err(error) = crate::api::reports::period(from, to, state.clock.now(), state.settings.reports.max_days)
    {
        let message = format!("{error}. Pick a shorter period for reports.");
        return render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, invalid(message)).await;
    }
    if let Some(exceeded) = api_exports::exceeded_by_name(&state, &signed.ctx, dataset, &request).await? {
        let message = exceeded_message(&exceeded);
        api_exports::audit_refusal(&state, &signed.ctx, &acting, dataset, &request, &message).await?;
        let view = PageState { offer_job: true, ..invalid(message) };
        return render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, view).await;
    }
    match api_exports::stream_dataset(&state, signed.ctx, &acting, dataset, &request).await {
        Ok(response) => Ok(response),
        // The data grew past the limit between the check and the export.
        Err(crate::error::ApiError::ExportTooLarge(detail)) => {
            render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, invalid(detail)).await
        }
        Err(error) => Err(error.into()),
    }
}

async fn download_job_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = super::permitted(&state, &headers, Permission::ExportReports, "export file").await?;
    let not_found = || ConsoleError::NotFound("There is no such export job.".into());
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let job = state.store.get_job(&signed.ctx, id).await?.filter(|job| job.kind == EXPORT).ok_or_else(not_found)?;
    let export: ExportJob = serde_json::from_value(job.data.clone()).map_err(anyhow::Error::new)?;
    if let Some(permission) = missing(&signed, export.dataset) {
        return refuse(&state, &signed, permission, "export file").await;
    }
    Ok(crate::api::export_jobs::serve_job_file(&state, &headers, &job, &export).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_do_instead() {
        let at = Timestamp::now();
        let period = exceeded_message(&Exceeded::Period { days: 400, first: at, last: at, max_days: 366 });
        assert!(period.contains("400 days") && period.contains("at most 366 days"), "{period}");
        assert!(period.contains("Pick a shorter period") && period.contains("Run as an export job"), "{period}");
        let size = exceeded_message(&Exceeded::Size { rows: 9, mib: 600, max_mib: 512 });
        assert!(size.contains("600 MiB") && size.contains("512 MiB") && size.contains("export job"), "{size}");
    }

    #[test]
    fn personal_datasets_need_the_personal_export_permission() {
        assert_eq!(needed(DatasetName::Reports), &[Permission::ExportReports]);
        assert_eq!(needed(DatasetName::Leads), &[Permission::ExportPersonalData]);
        assert!(needed(DatasetName::AuditLog).contains(&Permission::ReadAudit));
    }

    #[test]
    fn periods_read_as_people_say_them() {
        let day = |text: &str| Timestamp::parse(text).ok();
        assert_eq!(period_text(None, None), "everything");
        assert_eq!(
            period_text(day("2026-01-05T00:00:00Z"), day("2026-01-11T00:00:00Z")),
            "2026-01-05 to 2026-01-10",
            "the exclusive end is the day before"
        );
        assert_eq!(period_text(None, day("2026-01-11T00:00:00Z")), "the start to 2026-01-10");
    }
}
