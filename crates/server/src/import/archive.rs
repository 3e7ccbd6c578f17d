//! Loads a Steward tenant archive ([`crate::tenant_archive`]) into a tenant of this instance:
//! records keep their ids and values, so an archive of the destination holds the same records.
//!
//! Nothing is written until the whole archive has been checked: its format and version, every
//! file against the manifest's size, SHA-256 and row count. The destination tenant must hold no
//! records yet (ids are kept; merging two tenants' records is not what an archive is for).
//! Reports are derived from the records and the audit log belongs to the provider that kept it,
//! so neither is loaded; console users and API client secrets never travel.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use steward_domain::subject::LegalHold;
use steward_domain::tenant::TenantSettings;
use steward_domain::{Journey, Lead, Organization, Site, SiteKey, VisitorProfile};
use steward_export::{DatasetName, Format};
use steward_store::{Record, StoreExt, Target, TenantCtx};
use tokio::sync::mpsc;

use crate::state::AppState;
use crate::tenant_archive::{FORMAT_NAME, FORMAT_VERSION, Manifest, SiteAsset, dataset_path};

/// Records inserted per statement batch.
const BATCH: usize = 500;

/// What an archive import did.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// The tenant the archive came from, as its manifest names it.
    pub source_tenant: String,
    pub archive_created_at: steward_domain::Timestamp,
    /// Records loaded per dataset.
    pub imported: BTreeMap<String, u64>,
    /// Settings, retention policies, sites and legal holds loaded.
    pub assets: BTreeMap<String, u64>,
    /// What was deliberately not loaded, and why.
    pub not_imported: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not a Steward archive this version reads, or it is damaged.
    #[error("{0}")]
    Invalid(String),
    /// The destination tenant already holds records.
    #[error("{0}")]
    NotEmpty(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<steward_store::StoreError> for ImportError {
    fn from(error: steward_store::StoreError) -> Self {
        Self::Internal(error.into())
    }
}

fn invalid(message: impl Into<String>) -> ImportError {
    ImportError::Invalid(message.into())
}

type Zip = zip::ZipArchive<BufReader<File>>;

fn open(path: &Path) -> Result<Zip, ImportError> {
    let file = File::open(path).map_err(|e| invalid(format!("cannot open {}: {e}", path.display())))?;
    zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| invalid(format!("{} is not a ZIP archive: {e}", path.display())))
}

/// Reads and checks `manifest.json` and every file it lists.
pub fn verify(path: &Path) -> Result<Manifest, ImportError> {
    let mut zip = open(path)?;
    let manifest: Manifest = {
        let entry = zip
            .by_name("manifest.json")
            .map_err(|_| invalid("the archive has no manifest.json; is it a Steward tenant archive?"))?;
        bounded_json(entry, "manifest.json")?
    };
    if manifest.format != FORMAT_NAME {
        return Err(invalid(format!("manifest.json says format {:?}; expected {FORMAT_NAME:?}", manifest.format)));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(invalid(format!(
            "the archive's format version is {}; this Steward reads version {FORMAT_VERSION}",
            manifest.format_version
        )));
    }
    for listed in &manifest.files {
        let entry = zip
            .by_name(&listed.path)
            .map_err(|_| invalid(format!("{} is in the manifest but not in the archive", listed.path)))?;
        let inflates_past = || {
            invalid(format!(
                "{} inflates past the {} bytes the manifest gives it; the archive is damaged or forged, and was not \
                 read further",
                listed.path, listed.bytes
            ))
        };
        if entry.size() > listed.bytes {
            return Err(inflates_past());
        }
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut lines = 0u64;
        // Never inflated past the size the manifest gives (and one byte to tell it is past):
        // a small upload can hold gigabytes of zeros, and the ZIP's own sizes can lie.
        let mut reader = BufReader::new(entry.take(listed.bytes.saturating_add(1)));
        loop {
            let chunk = reader.fill_buf().map_err(|e| invalid(format!("{} cannot be read: {e}", listed.path)))?;
            if chunk.is_empty() {
                break;
            }
            hasher.update(chunk);
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            let length = chunk.len();
            bytes += length as u64;
            reader.consume(length);
        }
        if bytes > listed.bytes {
            return Err(inflates_past());
        }
        let sha256 = steward_store::records::to_hex(&hasher.finalize());
        if bytes != listed.bytes || sha256 != listed.sha256 {
            return Err(invalid(format!(
                "{} does not match the manifest ({bytes} bytes, SHA-256 {sha256}; the manifest says {} bytes, {})",
                listed.path, listed.bytes, listed.sha256
            )));
        }
        if listed.format == Some(Format::Ndjson)
            && let Some(rows) = listed.rows
            && rows != lines
        {
            return Err(invalid(format!("{} holds {lines} records; the manifest says {rows}", listed.path)));
        }
    }
    for dataset in [DatasetName::Leads, DatasetName::VisitorProfiles, DatasetName::Journeys, DatasetName::Organizations]
    {
        let path = dataset_path(dataset, Format::Ndjson);
        if !manifest.files.iter().any(|file| file.path == path) {
            return Err(invalid(format!("the archive has no {path}")));
        }
    }
    Ok(manifest)
}

/// Checks the archive, then loads it into the tenant.
pub async fn import(state: &AppState, ctx: &TenantCtx, path: &Path) -> Result<ImportReport, ImportError> {
    let checked = path.to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || verify(&checked))
        .await
        .map_err(|e| ImportError::Internal(anyhow::anyhow!("checking the archive failed: {e}")))??;
    let mut held = Vec::new();
    for (name, count) in [
        ("leads", state.store.count::<Lead>(ctx).await?),
        ("organizations", state.store.count::<Organization>(ctx).await?),
        ("visitor-profiles", state.store.count::<VisitorProfile>(ctx).await?),
        ("journeys", state.store.count::<steward_domain::Session>(ctx).await?),
    ] {
        if count > 0 {
            held.push(format!("{count} {name}"));
        }
    }
    if !held.is_empty() {
        return Err(ImportError::NotEmpty(format!(
            "tenant {} already holds {}; import an archive into a new, empty tenant (steward tenant create)",
            ctx.tenant_id(),
            held.join(", ")
        )));
    }

    let mut imported = BTreeMap::new();
    // Organizations first: leads and profiles point at them.
    imported
        .insert("organizations".into(), records::<Organization>(state, ctx, path, DatasetName::Organizations).await?);
    imported.insert(
        "visitor-profiles".into(),
        records::<VisitorProfile>(state, ctx, path, DatasetName::VisitorProfiles).await?,
    );
    imported.insert("journeys".into(), journeys(state, ctx, path).await?);
    imported.insert("leads".into(), records::<Lead>(state, ctx, path, DatasetName::Leads).await?);

    let mut assets = BTreeMap::new();
    let archive = path.to_path_buf();
    let (settings, sites, holds) = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
        let mut zip = open(&archive)?;
        let tenant: serde_json::Value = member_json(&mut zip, "assets/tenant.json")?;
        let settings: TenantSettings = serde_json::from_value(tenant.get("settings").cloned().unwrap_or_default())
            .map_err(|e| invalid(format!("assets/tenant.json: settings are not valid: {e}")))?;
        let sites: Vec<SiteAsset> = member_json(&mut zip, "assets/sites.json")?;
        let holds: Vec<LegalHold> = member_json(&mut zip, "assets/legal-holds.json")?;
        Ok((settings, sites, holds))
    })
    .await
    .map_err(|e| ImportError::Internal(anyhow::anyhow!("reading the assets failed: {e}")))??;

    let mut tenant = state
        .store
        .get_tenant(ctx.tenant_id())
        .await?
        .ok_or_else(|| ImportError::Internal(anyhow::anyhow!("tenant {} does not exist", ctx.tenant_id())))?;
    tenant.settings = settings;
    state.store.update_tenant(&tenant).await?;
    assets.insert("settings".into(), 1);
    assets.insert("retention-policies".into(), tenant.settings.retention.days.len() as u64);

    let mut sites_added = 0;
    let mut not_imported = Vec::new();
    for asset in sites {
        let domain = steward_domain::tenant::Domain::parse(&asset.domain)
            .map_err(|e| invalid(format!("assets/sites.json: {}: {e}", asset.domain)))?;
        let key_taken = match SiteKey::parse(&asset.site_key) {
            Some(key) => state.store.find_site_by_key(&key).await?.map(|_| ()).ok_or(key),
            None => Ok(()),
        };
        let site_key = match key_taken {
            Err(free) => free,
            Ok(()) => {
                not_imported.push(format!("site {}: its site key is in use here; a new key was made", asset.domain));
                SiteKey::from_random(rand::random())
            }
        };
        let site = Site {
            id: asset.id,
            tenant_id: ctx.tenant_id(),
            domain,
            site_key,
            created_at: asset.created_at,
            collection: asset.collection,
        };
        state.store.add_site(ctx, &site).await?;
        sites_added += 1;
    }
    assets.insert("sites".into(), sites_added);
    let holds_count = holds.len() as u64;
    for chunk in holds.chunks(BATCH) {
        state.store.insert(ctx, chunk).await?;
    }
    assets.insert("legal-holds".into(), holds_count);
    not_imported.extend([
        "reports: derived from the records; this Steward computes them again".to_string(),
        "audit-log: the previous provider's record; this tenant's log starts here".to_string(),
        "api-clients: secrets never travel; create clients with steward client create".to_string(),
        "users: credentials never travel; add them with steward user create or in the console".to_string(),
    ]);

    let report = ImportReport {
        source_tenant: manifest.tenant.id.to_string(),
        archive_created_at: manifest.created_at,
        imported,
        assets,
        not_imported,
    };
    let total: u64 = report.imported.values().sum();
    let detail = serde_json::json!({
        "source_tenant": report.source_tenant, "archive_created_at": report.archive_created_at,
        "imported": report.imported, "assets": report.assets,
    });
    let target = Target { kind: "tenant_archive".into(), count: total, ids: Vec::new() };
    crate::api::audit::record(state, ctx, crate::api::audit::by_system(state, "archive.imported", target, detail))
        .await
        .map_err(|e| ImportError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(report)
}

fn member_json<T: DeserializeOwned>(zip: &mut Zip, name: &str) -> Result<T, ImportError> {
    let entry = zip.by_name(name).map_err(|_| invalid(format!("the archive has no {name}")))?;
    bounded_json(entry, name)
}

/// Largest JSON member read whole (the manifest and the assets): far above any real one.
const MAX_JSON_MEMBER: u64 = 64 * 1024 * 1024;

/// A JSON member, refused once it inflates past [`MAX_JSON_MEMBER`] rather than read on.
fn bounded_json<T: DeserializeOwned>(entry: impl Read, name: &str) -> Result<T, ImportError> {
    let mut text = Vec::new();
    entry
        .take(MAX_JSON_MEMBER + 1)
        .read_to_end(&mut text)
        .map_err(|e| invalid(format!("{name} cannot be read: {e}")))?;
    if text.len() as u64 > MAX_JSON_MEMBER {
        return Err(invalid(format!("{name} inflates past {MAX_JSON_MEMBER} bytes; the archive is damaged or forged")));
    }
    serde_json::from_slice(&text).map_err(|e| invalid(format!("{name} is not valid: {e}")))
}

/// Reads `datasets/<dataset>.ndjson` a batch at a time on a blocking thread.
fn read_batches<T: DeserializeOwned + Send + 'static>(
    path: &Path,
    dataset: DatasetName,
) -> (mpsc::Receiver<Vec<T>>, tokio::task::JoinHandle<Result<(), ImportError>>) {
    let (batches, received) = mpsc::channel::<Vec<T>>(2);
    let path = path.to_path_buf();
    let reading = tokio::task::spawn_blocking(move || -> Result<(), ImportError> {
        let mut zip = open(&path)?;
        let name = dataset_path(dataset, Format::Ndjson);
        let entry = zip.by_name(&name).map_err(|_| invalid(format!("the archive has no {name}")))?;
        let mut batch = Vec::with_capacity(BATCH);
        for (index, line) in BufReader::new(entry).lines().enumerate() {
            let line = line.map_err(|e| invalid(format!("{name} cannot be read: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: T = serde_json::from_str(&line)
                .map_err(|e| invalid(format!("{name} line {}: not a valid record: {e}", index + 1)))?;
            batch.push(record);
            if batch.len() == BATCH && batches.blocking_send(std::mem::take(&mut batch)).is_err() {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = batches.blocking_send(batch);
        }
        Ok(())
    });
    (received, reading)
}

async fn records<R: Record + DeserializeOwned + Send + Sync + 'static>(
    state: &AppState,
    ctx: &TenantCtx,
    path: &Path,
    dataset: DatasetName,
) -> Result<u64, ImportError> {
    let (mut batches, reading) = read_batches::<R>(path, dataset);
    let mut count = 0;
    while let Some(batch) = batches.recv().await {
        state.store.insert(ctx, &batch).await?;
        count += batch.len() as u64;
    }
    reading.await.map_err(|e| ImportError::Internal(anyhow::anyhow!("reading {dataset} failed: {e}")))??;
    Ok(count)
}

/// Sessions with their events.
async fn journeys(state: &AppState, ctx: &TenantCtx, path: &Path) -> Result<u64, ImportError> {
    let (mut batches, reading) = read_batches::<Journey>(path, DatasetName::Journeys);
    let mut count = 0;
    while let Some(batch) = batches.recv().await {
        let mut sessions = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        for journey in batch {
            events.extend(journey.events);
            sessions.push(journey.session);
        }
        state.store.insert(ctx, &sessions).await?;
        for chunk in events.chunks(BATCH * 4) {
            state.store.insert(ctx, chunk).await?;
        }
        count += sessions.len() as u64;
    }
    reading.await.map_err(|e| ImportError::Internal(anyhow::anyhow!("reading journeys failed: {e}")))??;
    Ok(count)
}
