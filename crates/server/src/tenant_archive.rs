//! The tenant archive (EU Data Act, Regulation 2023/2854, Art. 23–26): one ZIP with every dataset
//! of a tenant in NDJSON and CSV, the JSON Schemas the register publishes, the tenant's digital
//! assets (settings, sites, retention policies, legal holds, API client metadata without
//! secrets), a `manifest.json` with row counts and SHA-256 per file, and a README explaining the
//! layout. `steward import` loads one into another Steward.
//!
//! [`build`] writes it member by member: each dataset is scanned a page at a time into a deflated
//! ZIP member, so memory does not grow with the tenant. A tenant can ask for one at any time
//! (`POST /api/v1/archives`, a leased job run by [`run_once`]); switching requests build theirs
//! with the same function.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_domain::subject::LegalHold;
use steward_domain::{Granularity, Journey, Lead, Organization, Timestamp, VisitorProfile};
use steward_export::archive::Archive;
use steward_export::{DatasetName, Format, Writer};
use steward_store::sealed_file::SealedWriter;
use steward_store::{AuditEntry, JobRecord, JobStatus, ListQuery, StoreExt, Target, TenantCtx};
use tokio::sync::mpsc;

use crate::api::exports::{Audience, Exportable};
use crate::api::reports;
use crate::state::AppState;

/// The job kind of a tenant archive asked for through the API.
pub const ARCHIVE_JOB: &str = "archive";
/// The archive layout's version; `steward import` refuses versions it does not know.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field of `manifest.json`.
pub const FORMAT_NAME: &str = "steward-tenant-archive";
/// The formats every dataset is written in.
pub const DATASET_FORMATS: [Format; 2] = [Format::Ndjson, Format::Csv];
const LEASE_SECONDS: i64 = 120;
const HEARTBEAT: Duration = Duration::from_secs(5);

/// One file in the archive as `manifest.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveMember {
    /// Path inside the ZIP, e.g. `datasets/leads.ndjson`.
    pub path: String,
    /// The dataset a data file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Records in a data file (not counting the CSV header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub bytes: u64,
    /// SHA-256 of the file's uncompressed content, lowercase hex.
    pub sha256: String,
}

/// What [`build`] wrote: the ZIP's own size and SHA-256, and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveSummary {
    pub bytes: u64,
    pub sha256: String,
    pub files: Vec<ArchiveMember>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The program and version that wrote the archive.
    pub generator: String,
    pub tenant: ManifestTenant,
    pub created_at: Timestamp,
    /// Where the datasets, columns and schemas are described.
    pub register: String,
    /// Every file of the archive except `manifest.json` and `MANIFEST.sha256`.
    pub files: Vec<ArchiveMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTenant {
    pub id: steward_domain::TenantId,
    pub name: String,
    pub slug: String,
}

/// An API client as the archive describes it: no secret, not even its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientAsset {
    pub id: steward_domain::ClientId,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
}

/// A console user as the archive describes it: who and which role, never a password hash,
/// authenticator secret or recovery code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAsset {
    pub id: steward_domain::UserId,
    pub email: String,
    pub role: String,
    pub created_at: Timestamp,
}

/// A site as the archive describes it: its domain and collection settings. The public site key
/// is kept so the new provider can accept the same tracker snippet, if it wishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteAsset {
    pub id: steward_domain::SiteId,
    pub domain: String,
    pub site_key: String,
    pub created_at: Timestamp,
    pub collection: steward_domain::tenant::CollectionSettings,
}

/// The path of a dataset's file in one format.
pub fn dataset_path(dataset: DatasetName, format: Format) -> String {
    format!("datasets/{dataset}.{format}")
}

type Zip = Archive<SealedWriter<std::fs::File>>;

/// Writes the whole archive of the tenant under `key` in the file store and commits it.
pub async fn build(state: &AppState, ctx: &TenantCtx, key: &str) -> anyhow::Result<ArchiveSummary> {
    // The ZIP writer travels through the future's state: boxed, so callers' futures stay small.
    Box::pin(build_archive(state, ctx, key)).await
}

async fn build_archive(state: &AppState, ctx: &TenantCtx, key: &str) -> anyhow::Result<ArchiveSummary> {
    let tenant = state
        .store
        .get_tenant(ctx.tenant_id())
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {} does not exist", ctx.tenant_id()))?;
    let mut zip: Zip = Archive::new(state.files.create_sealed(&*state.store.keys(ctx)?, key)?);
    let mut files = Vec::new();

    for format in DATASET_FORMATS {
        zip = dataset::<Lead>(state, ctx, zip, format, &mut files).await?;
        zip = dataset::<VisitorProfile>(state, ctx, zip, format, &mut files).await?;
        zip = dataset::<Journey>(state, ctx, zip, format, &mut files).await?;
        zip = dataset::<Organization>(state, ctx, zip, format, &mut files).await?;
        zip = dataset::<AuditEntry>(state, ctx, zip, format, &mut files).await?;
    }
    zip = Box::pin(report_files(state, ctx, zip, &mut files)).await?;

    let mut small: Vec<(String, Vec<u8>)> = Vec::new();
    for dataset in DatasetName::ALL {
        small.push((format!("schemas/{dataset}.schema.json"), pretty(&crate::register::schema_of(dataset))?));
    }
    let settings = serde_json::json!({
        "id": tenant.id, "name": tenant.name, "slug": tenant.slug.as_str(), "created_at": tenant.created_at,
        "settings": tenant.settings,
    });
    small.push(("assets/tenant.json".into(), pretty(&settings)?));
    small.push(("assets/retention-policies.json".into(), pretty(&tenant.settings.retention)?));
    let sites: Vec<SiteAsset> = state
        .store
        .list_sites(ctx)
        .await?
        .into_iter()
        .map(|site| SiteAsset {
            id: site.id,
            domain: site.domain.as_str().to_string(),
            site_key: site.site_key.as_str().to_string(),
            created_at: site.created_at,
            collection: site.collection,
        })
        .collect();
    small.push(("assets/sites.json".into(), pretty(&sites)?));
    let clients: Vec<ClientAsset> = state
        .store
        .list_clients(ctx)
        .await?
        .into_iter()
        .map(|client| ClientAsset {
            id: client.id,
            name: client.name,
            scopes: client.scopes.iter().map(|scope| scope.as_str().to_string()).collect(),
            created_at: client.created_at,
        })
        .collect();
    small.push(("assets/api-clients.json".into(), pretty(&clients)?));
    let keys = state.store.keys(ctx)?;
    let mut users = Vec::new();
    for record in state.store.users().list_users(ctx).await? {
        let user = steward_store::users::open_user(ctx, &keys, &record)?;
        users.push(UserAsset {
            id: user.id,
            email: user.email.as_str().to_string(),
            role: user.role.as_str().to_string(),
            created_at: user.created_at,
        });
    }
    small.push(("assets/users.json".into(), pretty(&users)?));
    let holds: Vec<LegalHold> = state.store.list_all(ctx, ListQuery::default()).await?;
    small.push(("assets/legal-holds.json".into(), pretty(&holds)?));
    small.push(("README.md".into(), readme(&tenant.name).into_bytes()));

    let created_at = state.clock.now();
    let manifest_tenant =
        ManifestTenant { id: tenant.id, name: tenant.name.clone(), slug: tenant.slug.as_str().to_string() };
    let summary = tokio::task::spawn_blocking(move || -> anyhow::Result<ArchiveSummary> {
        for (path, content) in &small {
            zip.add(path, content)?;
            files.push(member_of(&zip, path, None, None, None));
        }
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            generator: format!("steward {}", env!("CARGO_PKG_VERSION")),
            tenant: manifest_tenant,
            created_at,
            register: "/data-register".into(),
            files: files.clone(),
        };
        zip.add("manifest.json", &serde_json::to_vec_pretty(&manifest)?)?;
        let (_, written) = zip.finish()?.finish()?;
        Ok(ArchiveSummary { bytes: written.bytes, sha256: written.sha256, files })
    })
    .await??;
    state.files.commit(key)?;
    Ok(summary)
}

fn pretty<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn member_of(
    zip: &Zip,
    path: &str,
    dataset: Option<DatasetName>,
    format: Option<Format>,
    rows: Option<u64>,
) -> ArchiveMember {
    let (bytes, sha256) = zip
        .members()
        .iter()
        .rev()
        .find(|(name, _, _)| name == path)
        .map(|(_, bytes, sha)| (*bytes, sha.clone()))
        .unwrap_or_default();
    ArchiveMember { path: path.to_string(), dataset, format, rows, bytes, sha256 }
}

/// One dataset in one format: the store is scanned (restricted records included: the archive is
/// the controller's own) while a blocking thread writes the member.
async fn dataset<R: Exportable>(
    state: &AppState,
    ctx: &TenantCtx,
    zip: Zip,
    format: Format,
    files: &mut Vec<ArchiveMember>,
) -> anyhow::Result<Zip> {
    let path = dataset_path(R::NAME, format);
    let (pages, mut received) = mpsc::channel::<Vec<R>>(1);
    let member = path.clone();
    let writing = tokio::task::spawn_blocking(move || -> anyhow::Result<(Zip, u64)> {
        let mut zip = zip;
        let rows = zip.member(&member, |out| {
            let mut writer = Writer::<_, R>::new(format, out)?;
            while let Some(page) = received.blocking_recv() {
                for record in &page {
                    writer.write(record)?;
                }
            }
            let rows = writer.rows();
            writer.finish()?;
            Ok(rows)
        })?;
        Ok((zip, rows))
    });
    let scanned = R::scan(state.store.clone(), *ctx, ListQuery::default(), Audience::Archive, pages).await;
    let (zip, rows) = writing.await.map_err(|e| anyhow::anyhow!("archive writer failed: {e}"))??;
    scanned?;
    files.push(member_of(&zip, &path, Some(R::NAME), Some(format), Some(rows)));
    Ok(zip)
}

/// Every report by day from the first day with a lead or a visit to the day after the archive
/// was made: derived from the records, so the same records give the same file.
async fn report_files(
    state: &AppState,
    ctx: &TenantCtx,
    mut zip: Zip,
    files: &mut Vec<ArchiveMember>,
) -> anyhow::Result<Zip> {
    let everything = ListQuery::default();
    let firsts = [
        Lead::first_created(state.store.as_ref(), ctx, &everything).await?,
        Journey::first_created(state.store.as_ref(), ctx, &everything).await?,
    ];
    let rows = match firsts.into_iter().flatten().min() {
        Some(first) => {
            let from = start_of_day(first);
            let to = start_of_day(state.clock.now()).checked_add(time::Duration::days(1)).unwrap_or(from);
            let min_group_size = u64::from(state.settings.reports.min_group_size);
            reports::all_reports(state.store.as_ref(), ctx, Granularity::Day, (from, to), min_group_size).await?.0
        }
        None => Vec::new(),
    };
    let rows = Arc::new(rows);
    for format in DATASET_FORMATS {
        let path = dataset_path(DatasetName::Reports, format);
        let (member, shared) = (path.clone(), rows.clone());
        let (back, count) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Zip, u64)> {
            zip.member(&member, |out| {
                reports::write_rows(format, out, &shared)?;
                Ok(())
            })?;
            Ok((zip, shared.len() as u64))
        })
        .await??;
        zip = back;
        files.push(member_of(&zip, &path, Some(DatasetName::Reports), Some(format), Some(count)));
    }
    Ok(zip)
}

fn start_of_day(at: Timestamp) -> Timestamp {
    Timestamp::from_datetime(at.as_datetime().replace_time(time::Time::MIDNIGHT))
}

fn readme(tenant: &str) -> String {
    let mut text = format!(
        "# Steward tenant archive: {tenant}\n\n\
         This archive holds every record this tenant keeps in Steward, in open formats, so that it\n\
         can be moved to another provider or kept on premises (EU Data Act, Regulation 2023/2854).\n\
         The public data register (`/data-register` on the Steward that wrote it) describes every\n\
         dataset, column and format; the same JSON Schemas are in `schemas/`.\n\n\
         ## Layout\n\n\
         - `datasets/<dataset>.ndjson`: one JSON object per line, exactly as the API returns it;\n\
           each validates against `schemas/<dataset>.schema.json` (JSON Schema 2020-12).\n\
         - `datasets/<dataset>.csv`: the same records as CSV (RFC 4180, UTF-8, CRLF, header row);\n\
           nested fields are dotted columns, lists and maps are JSON text in one cell, and a cell\n\
           that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'` so\n\
           spreadsheets do not run it as a formula. NDJSON is the lossless form; import reads it.\n\
         - `schemas/`: one JSON Schema per dataset.\n\
         - `assets/`: the tenant's settings (`tenant.json`), retention policies, sites (domains,\n\
           public site keys, collection settings), legal holds, console users (address and role;\n\
           never credentials) and API clients (names, scopes; never secrets).\n\
         - `manifest.json`: every file with its row count, size and SHA-256.\n\
         - `MANIFEST.sha256`: the same sums in `sha256sum -c` format.\n\n\
         ## Datasets\n\n"
    );
    for dataset in DatasetName::ALL {
        text.push_str(&format!("- `{dataset}`: {}\n", crate::register::description(dataset)));
    }
    text.push_str(
        "\nTimes are RFC 3339 in UTC; ids are UUIDs (RFC 9562); countries ISO 3166-1 alpha-2;\n\
         phones E.164; IP addresses only ever as their /24 (IPv4) or /48 (IPv6) network.\n\
         `steward import ARCHIVE --tenant ID` loads this archive into another Steward.\n",
    );
    text
}

/// A tenant archive asked for through the API, kept as the job row's JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveJob {
    /// Files written so far (of about 20).
    pub files_written: u64,
    pub summary: Option<ArchiveSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub file: Option<String>,
    pub finished_at: Option<Timestamp>,
    /// After this the file is gone.
    pub expires_at: Option<Timestamp>,
    pub error: Option<String>,
}

/// Claims and builds one queued tenant archive; false when none was waiting. A worker that
/// dies leaves its lease to run out and the next claim builds the archive again from the start.
pub async fn run_once(state: &AppState, owner: &str) -> anyhow::Result<bool> {
    let now = state.clock.now();
    let lease = |at: Timestamp| at.checked_add(time::Duration::seconds(LEASE_SECONDS)).unwrap_or(at);
    let Some(mut job) = state.store.claim_job(ARCHIVE_JOB, owner, now, lease(now)).await? else {
        return Ok(false);
    };
    let ctx = TenantCtx::new(job.tenant_id);
    let mut archive: ArchiveJob = serde_json::from_value(job.data.clone())?;
    tracing::info!(job.id = %job.id, tenant.id = %job.tenant_id, attempt = job.attempts, "tenant archive started");
    let key = format!("archives/{}/{}.zip", job.tenant_id, job.id);
    let building = build(state, &ctx, &key);
    tokio::pin!(building);
    let result = loop {
        tokio::select! {
            result = &mut building => break result,
            () = tokio::time::sleep(HEARTBEAT) => {
                if !state.store.save_job(&job, owner, lease(state.clock.now())).await? {
                    anyhow::bail!("the lease on archive job {} was lost", job.id);
                }
            }
        }
    };
    let now = state.clock.now();
    archive.finished_at = Some(now);
    let (action, detail) = match result {
        Ok(summary) => {
            job.status = JobStatus::Succeeded;
            archive.files_written = summary.files.len() as u64;
            archive.file = Some(key.clone());
            archive.expires_at = now.checked_add(time::Duration::days(i64::from(state.settings.exports.file_days)));
            let rows: BTreeMap<String, u64> = summary
                .files
                .iter()
                .filter(|file| file.format == Some(Format::Ndjson))
                .filter_map(|file| Some((file.dataset?.to_string(), file.rows?)))
                .collect();
            let detail =
                serde_json::json!({"job": job.id, "bytes": summary.bytes, "sha256": summary.sha256, "rows": rows});
            archive.summary = Some(summary);
            ("archive.completed", detail)
        }
        Err(error) => {
            tracing::error!(job.id = %job.id, error = format!("{error:#}"), "tenant archive failed");
            job.status = JobStatus::Failed;
            archive.error =
                Some("the archive failed; ask for a new one, and quote the job id if it fails again".into());
            ("archive.failed", serde_json::json!({"job": job.id, "attempt": job.attempts}))
        }
    };
    job.data = serde_json::to_value(&archive)?;
    let target = Target { kind: "tenant_archive".into(), count: 1, ids: vec![job.id] };
    crate::api::audit::record(state, &ctx, crate::api::audit::by_system(state, action, target, detail)).await?;
    if !state.store.save_job(&job, owner, now).await? {
        tracing::warn!(job.id = %job.id, "archive job was taken over by another worker; result dropped");
    }
    Ok(true)
}

/// A new queued archive job of the tenant.
pub fn queue(state: &AppState, ctx: &TenantCtx) -> anyhow::Result<JobRecord> {
    Ok(JobRecord {
        tenant_id: ctx.tenant_id(),
        id: steward_domain::id::new_v7(),
        kind: ARCHIVE_JOB.into(),
        status: JobStatus::Queued,
        created_at: state.clock.now(),
        attempts: 0,
        data: serde_json::to_value(ArchiveJob::default())?,
    })
}

/// The dataset definitions the archive writes, for the register's test of both sides.
pub fn dataset_files() -> Vec<(DatasetName, Format, String)> {
    DatasetName::ALL
        .into_iter()
        .flat_map(|dataset| {
            DATASET_FORMATS.into_iter().map(move |format| (dataset, format, dataset_path(dataset, format)))
        })
        .collect()
}
