//! Export jobs: exports of any size and period, written in the background to the file store.
//!
//! A job is a leased row ([`steward_store::JobRecord`]). [`run_once`] claims one, writes the
//! file under a temporary name while renewing the lease and recording progress, then commits it
//! with its row count, size, SHA-256 and expiry. A worker that dies leaves its lease to run out;
//! the next [`run_once`] anywhere claims the job again and starts the file over, so a half file
//! is never served as complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_domain::{Granularity, Journey, Lead, Organization, Timestamp, VisitorProfile};
use steward_export::{DatasetName, Format};
use steward_store::{AuditEntry, JobRecord, JobStatus, ListQuery, StoreExt, Target, TenantCtx};

use crate::api::exports::{Exportable, run};
use crate::api::reports;
use crate::state::AppState;

pub const EXPORT: &str = "export";
/// How long a claim holds without renewal; a worker renews it every [`HEARTBEAT`].
pub const LEASE_SECONDS: i64 = 60;
const HEARTBEAT: Duration = Duration::from_secs(2);

/// An export job's state, kept as the job row's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportJob {
    pub dataset: DatasetName,
    pub format: Format,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Rows in the period when the export started.
    pub rows_total: Option<u64>,
    pub rows_written: u64,
    /// Size of the finished file in bytes.
    pub bytes: Option<u64>,
    /// SHA-256 of the finished file, lowercase hex.
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub file: Option<String>,
    pub finished_at: Option<Timestamp>,
    /// After this the file is gone.
    pub expires_at: Option<Timestamp>,
    pub error: Option<String>,
}

impl ExportJob {
    pub fn new(dataset: DatasetName, format: Format, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        Self {
            dataset,
            format,
            from,
            to,
            rows_total: None,
            rows_written: 0,
            bytes: None,
            sha256: None,
            file: None,
            finished_at: None,
            expires_at: None,
            error: None,
        }
    }

    pub fn window(&self) -> ListQuery {
        ListQuery { created_from: self.from, created_to: self.to, ..ListQuery::default() }
    }
}

/// A name for this process's claims: host, process id and a random part.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "steward".into());
    format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Runs export jobs and tenant archives until the process stops: one at a time, polling when there is none.
pub fn spawn_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    let owner = worker_name();
    tokio::spawn(async move {
        loop {
            let ran = match run_once(&state, &owner).await {
                Ok(false) => Box::pin(crate::tenant_archive::run_once(&state, &owner)).await,
                other => other,
            };
            match ran {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(Duration::from_millis(500)).await,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "export worker");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}

fn lease_from(now: Timestamp) -> Timestamp {
    now.checked_add(time::Duration::seconds(LEASE_SECONDS)).unwrap_or(now)
}

/// Claims and runs one export job; false when none was waiting.
pub async fn run_once(state: &AppState, owner: &str) -> anyhow::Result<bool> {
    let now = state.clock.now();
    let Some(mut job) = state.store.claim_job(EXPORT, owner, now, lease_from(now)).await? else {
        return Ok(false);
    };
    let mut export: ExportJob = serde_json::from_value(job.data.clone())?;
    let ctx = TenantCtx::new(job.tenant_id);
    tracing::info!(job.id = %job.id, tenant.id = %job.tenant_id, attempt = job.attempts, dataset = %export.dataset, "export job started");
    let result = match export.dataset {
        DatasetName::Leads => execute::<Lead>(state, &ctx, &mut job, &mut export, owner).await,
        DatasetName::Organizations => execute::<Organization>(state, &ctx, &mut job, &mut export, owner).await,
        DatasetName::VisitorProfiles => execute::<VisitorProfile>(state, &ctx, &mut job, &mut export, owner).await,
        DatasetName::Journeys => execute::<Journey>(state, &ctx, &mut job, &mut export, owner).await,
        DatasetName::Reports => execute_reports(state, &ctx, &mut job, &mut export, owner).await,
        DatasetName::AuditLog => execute::<AuditEntry>(state, &ctx, &mut job, &mut export, owner).await,
    };
    let now = state.clock.now();
    export.finished_at = Some(now);
    match result {
        Ok(()) => {
            job.status = JobStatus::Succeeded;
            tracing::info!(job.id = %job.id, rows = export.rows_written, "export job succeeded");
        }
        Err(error) => {
            tracing::error!(job.id = %job.id, error = format!("{error:#}"), "export job failed");
            job.status = JobStatus::Failed;
            export.error = Some("the export failed; start a new one, and quote the job id if it fails again".into());
        }
    }
    job.data = serde_json::to_value(&export)?;
    // On record before the job shows its outcome: whoever sees it finished finds the entry.
    let (action, count) = match job.status {
        JobStatus::Succeeded => ("export.completed", export.rows_written),
        _ => ("export.failed", 0),
    };
    let detail = serde_json::json!({
        "job": job.id, "dataset": export.dataset.to_string(), "format": export.format.as_str(),
        "from": export.from, "to": export.to, "rows": export.rows_written, "bytes": export.bytes,
        "sha256": export.sha256, "attempt": job.attempts,
    });
    let target = Target { kind: export.dataset.to_string(), count, ids: vec![job.id] };
    crate::api::audit::record(state, &ctx, crate::api::audit::by_system(state, action, target, detail)).await?;
    if !state.store.save_job(&job, owner, now).await? {
        tracing::warn!(job.id = %job.id, "export job was taken over by another worker; result dropped");
    }
    Ok(true)
}

async fn execute<R: Exportable>(
    state: &AppState,
    ctx: &TenantCtx,
    job: &mut JobRecord,
    export: &mut ExportJob,
    owner: &str,
) -> anyhow::Result<()> {
    let window = export.window();
    let (rows_total, _) = R::measure(state.store.as_ref(), ctx, &window).await?;
    *export = ExportJob {
        rows_total: Some(rows_total),
        ..ExportJob::new(export.dataset, export.format, export.from, export.to)
    };
    save(state, job, export, owner).await?;

    let key = format!("exports/{}/{}.{}", ctx.tenant_id(), job.id, export.format);
    let files = state.files.clone();
    let sink = files.create_sealed(&*state.store.keys(ctx)?, &key)?;
    let rows = Arc::new(AtomicU64::new(0));
    let writing = run::<R, _>(state.store.clone(), *ctx, window, export.format, sink, rows.clone());
    tokio::pin!(writing);
    let sink = loop {
        tokio::select! {
            result = &mut writing => break result?,
            () = tokio::time::sleep(HEARTBEAT) => {
                export.rows_written = rows.load(Ordering::Relaxed);
                save(state, job, export, owner).await?;
            }
        }
    };
    let (_, written) = sink.finish()?;
    files.commit(&key)?;
    let (bytes, sha256) = (written.bytes, written.sha256);
    let now = state.clock.now();
    export.rows_written = rows.load(Ordering::Relaxed);
    export.bytes = Some(bytes);
    export.sha256 = Some(sha256);
    export.file = Some(key);
    export.expires_at = now.checked_add(time::Duration::days(i64::from(state.settings.exports.file_days)));
    Ok(())
}

/// Every report by day over the job's period (fixed when it was queued), computed whole and then
/// written: report rows are few.
async fn execute_reports(
    state: &AppState,
    ctx: &TenantCtx,
    job: &mut JobRecord,
    export: &mut ExportJob,
    owner: &str,
) -> anyhow::Result<()> {
    let (Some(from), Some(to)) = (export.from, export.to) else {
        anyhow::bail!("a reports export job needs its period");
    };
    let min_group_size = u64::from(state.settings.reports.min_group_size);
    let (rows, _) =
        reports::all_reports(state.store.as_ref(), ctx, Granularity::Day, (from, to), min_group_size).await?;
    *export = ExportJob {
        rows_total: Some(rows.len() as u64),
        ..ExportJob::new(export.dataset, export.format, export.from, export.to)
    };
    save(state, job, export, owner).await?;

    let key = format!("exports/{}/{}.{}", ctx.tenant_id(), job.id, export.format);
    let sink = state.files.create_sealed(&*state.store.keys(ctx)?, &key)?;
    let format = export.format;
    let count = rows.len() as u64;
    let sink = tokio::task::spawn_blocking(move || reports::write_rows(format, sink, &rows)).await??;
    let (_, written) = sink.finish()?;
    state.files.commit(&key)?;
    let (bytes, sha256) = (written.bytes, written.sha256);
    export.rows_written = count;
    export.bytes = Some(bytes);
    export.sha256 = Some(sha256);
    export.file = Some(key);
    export.expires_at =
        state.clock.now().checked_add(time::Duration::days(i64::from(state.settings.exports.file_days)));
    Ok(())
}

/// Records progress and renews the lease; fails when another worker has taken the job.
async fn save(state: &AppState, job: &mut JobRecord, export: &ExportJob, owner: &str) -> anyhow::Result<()> {
    job.data = serde_json::to_value(export)?;
    let lease = lease_from(state.clock.now());
    if state.store.save_job(job, owner, lease).await? {
        Ok(())
    } else {
        anyhow::bail!("the lease on export job {} was lost", job.id)
    }
}
