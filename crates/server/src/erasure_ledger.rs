//! The erasure ledger's mirror outside the database, and its re-application after a restore.
//!
//! Every ledger entry (a keyed hash of an erased or objecting person's identifier, never the
//! identifier) is appended to `<keys folder>/ledger/<tenant>.jsonl` before it is stored in the
//! database. The keys folder is kept out of database backups (see `master_key_file`), so after
//! a database is restored from a backup taken before an erasure, [`reapply`] puts the missing
//! ledger entries back and erases again what the backup brought back: leads whose email, phone
//! or contact id hash is in the ledger (with their copies in organizations and profiles), and
//! visitor profiles whose id hashes to a ledger entry, with their sessions and events.
//! `steward restore` runs it for every tenant; `steward erasure reapply` runs it alone (after a
//! PostgreSQL restore with `pg_restore`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use serde::Serialize;
use steward_domain::subject::{LedgerEntry, LedgerReason};
use steward_domain::{Event, Lead, LeadId, Session, TenantId, VisitorProfile};
use steward_store::records::{from_hex, to_hex};
use steward_store::{Batch, DocKind, ListQuery, Lookup, Store, StoreExt, StoreResult, Target, TenantCtx, Value};

use crate::state::AppState;

fn mirror_path(store: &dyn Store, tenant: TenantId) -> PathBuf {
    store.vault().folder().join("ledger").join(format!("{tenant}.jsonl"))
}

/// Appends entries to the tenant's mirror and syncs it, before they go to the database.
pub fn append(store: &dyn Store, tenant: TenantId, entries: &[LedgerEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let path = mirror_path(store, tenant);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut text = Vec::new();
    for entry in entries {
        serde_json::to_writer(&mut text, entry)?;
        text.push(b'\n');
    }
    file.write_all(&text)?;
    file.sync_data()
}

/// The tenant's mirrored entries (none when it has no mirror). A torn last line (a crash
/// mid-append) is skipped: its entry was never stored in the database either.
pub fn read(store: &dyn Store, tenant: TenantId) -> std::io::Result<Vec<LedgerEntry>> {
    let file = match fs::File::open(mirror_path(store, tenant)) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut entries = Vec::new();
    for line in BufReader::new(file).lines() {
        if let Ok(entry) = serde_json::from_str::<LedgerEntry>(&line?) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Removes the tenant's mirror (when the tenant itself is erased).
pub fn remove(store: &dyn Store, tenant: TenantId) -> std::io::Result<()> {
    match fs::remove_file(mirror_path(store, tenant)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// What one re-application did in one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reapplied {
    pub tenant_id: Option<TenantId>,
    /// Ledger entries that were missing from the database and were put back.
    pub ledger_entries_restored: u64,
    /// Records erased again, per store.
    pub erased: BTreeMap<String, u64>,
}

/// Whether an organization still holds an erased email or phone (a contact entry restored
/// with its organization from a backup taken before the erasure).
async fn has_copies(
    store: &dyn Store,
    ctx: &TenantCtx,
    keys: &steward_store::TenantKeys,
    erased: &BTreeSet<Vec<u8>>,
) -> StoreResult<bool> {
    let copies = crate::subjects::Copies::of_keys(erased.iter().map(|key| to_hex(key)));
    Ok(!copies.organizations(store, ctx, keys).await?.is_empty())
}

/// Re-applies the tenant's mirrored ledger to its database.
pub async fn reapply(state: &AppState, ctx: &TenantCtx) -> anyhow::Result<Reapplied> {
    let store = state.store.as_ref();
    let mirrored = read(store, ctx.tenant_id())?;
    let mut report = Reapplied { tenant_id: Some(ctx.tenant_id()), ..Reapplied::default() };
    if mirrored.is_empty() {
        return Ok(report);
    }
    let stored: HashSet<uuid::Uuid> =
        store.list_all::<LedgerEntry>(ctx, ListQuery::default()).await?.iter().map(|e| e.id.into_uuid()).collect();
    let missing: Vec<LedgerEntry> =
        mirrored.iter().filter(|entry| !stored.contains(&entry.id.into_uuid())).cloned().collect();
    for chunk in missing.chunks(500) {
        store.insert(ctx, chunk).await?;
    }
    report.ledger_entries_restored = missing.len() as u64;

    let erased: BTreeSet<Vec<u8>> = mirrored
        .iter()
        .filter(|entry| entry.reason == LedgerReason::Erasure)
        .filter_map(|entry| from_hex(&entry.key))
        .collect();
    let keys = store.keys(ctx)?;
    // Leads by any of their hashed identifiers.
    let values: Vec<Value> = erased.iter().map(|key| Value::Bytes(key.clone())).collect();
    let mut leads: BTreeMap<LeadId, Lead> = BTreeMap::new();
    for lookup in [Lookup::Email, Lookup::Phone, Lookup::ContactId] {
        for chunk in values.chunks(500) {
            let query = ListQuery { any_of: Some((lookup.column(), chunk.to_vec())), ..ListQuery::default() };
            for lead in store.list_all::<Lead>(ctx, query).await? {
                leads.insert(lead.id, lead);
            }
        }
    }
    // Profiles whose id hashes to an entry; a profile linked to an erased lead goes too.
    let linked: HashSet<uuid::Uuid> =
        leads.values().filter_map(|lead| lead.visitor_profile_id.map(|id| id.into_uuid())).collect();
    let profiles: Vec<VisitorProfile> = store
        .list_all::<VisitorProfile>(ctx, ListQuery::default())
        .await?
        .into_iter()
        .filter(|profile| {
            linked.contains(&profile.id.into_uuid())
                || erased.contains(&Lookup::VisitorId.key(&keys, &profile.id.to_string()))
        })
        .collect();
    if leads.is_empty() && profiles.is_empty() && !has_copies(store, ctx, &keys, &erased).await? {
        return Ok(report);
    }
    let profile_ids: BTreeSet<uuid::Uuid> = profiles.iter().map(|p| p.id.into_uuid()).collect();
    let mut batch = Batch::default();
    // Copies in organizations: by the erased identifiers themselves and by the leads found.
    let mut copies = crate::subjects::Copies::of_keys(erased.iter().map(|key| to_hex(key)));
    copies.extend(crate::subjects::Copies::of_leads(&keys, leads.values()));
    let contacts = copies.remove(store, ctx, &keys, state.clock.now(), &mut batch).await?;
    let sessions: Vec<Session> = crate::subjects::any_of(store, ctx, "visitor_profile_id", &profile_ids).await?;
    let events: Vec<Event> = crate::subjects::any_of(store, ctx, "visitor_profile_id", &profile_ids).await?;
    for event in &events {
        batch.delete(ctx, DocKind::Event, event.id.into_uuid());
    }
    for session in &sessions {
        batch.delete(ctx, DocKind::Session, session.id.into_uuid());
    }
    for profile in &profiles {
        batch.delete(ctx, DocKind::VisitorProfile, profile.id.into_uuid());
    }
    for lead in leads.values() {
        batch.delete(ctx, DocKind::Lead, lead.id.into_uuid());
    }
    report.erased = BTreeMap::from([
        ("leads".to_string(), leads.len() as u64),
        ("visitor_profiles".to_string(), profiles.len() as u64),
        ("sessions".to_string(), sessions.len() as u64),
        ("events".to_string(), events.len() as u64),
        ("organization_contacts".to_string(), contacts),
    ]);
    let total = report.erased.values().sum();
    let detail =
        serde_json::json!({"erased": report.erased, "ledger_entries_restored": report.ledger_entries_restored});
    let target = Target { kind: "erasure_ledger".into(), count: total, ids: Vec::new() };
    // The erasures and their entry in one transaction.
    let draft = crate::api::audit::by_system(state, "erasure.reapplied", target, detail);
    store.write_docs_audited(batch.writes(), ctx, &[draft]).await?;
    store.purge_deleted().await?;
    Ok(report)
}

/// Re-applies every tenant's mirror.
pub async fn reapply_all(state: &AppState) -> anyhow::Result<Vec<Reapplied>> {
    let mut reports = Vec::new();
    for tenant in state.store.list_tenants().await? {
        reports.push(reapply(state, &TenantCtx::new(tenant.id)).await?);
    }
    Ok(reports)
}
