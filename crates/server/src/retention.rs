//! Retention sweeps (GDPR Art. 5(1)(e), storage limitation): deletes what a tenant's policy no
//! longer keeps, spares what a legal hold keeps, writes the outcome to the audit log and keeps the
//! last result of each tenant in the database, where `/readyz` and the API of every process
//! show it.
//!
//! Deletes go in bounded batches ([`steward_store::Store::delete_matching`]) so that a sweep of
//! millions of rows never holds one huge transaction, lock or journal; each batch commits on its
//! own, so a sweep that fails half-way has still removed what it reached, and the next sweep goes
//! on from there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_domain::subject::{HoldScope, LegalHold, RetentionDataset};
use steward_domain::{Lead, LeadId, TenantId, Timestamp, VisitorProfile};
use steward_store::{
    Batch, DocKind, ListQuery, StoreError, StoreExt, StoreResult, SweepRecord, Target, TenantCtx, Value,
};

use crate::api::audit;
use crate::state::AppState;

/// Longest error text kept in a failure: enough to act on, short enough for a health check.
const MAX_ERROR_CHARS: usize = 300;
/// The first background sweep runs this long after start (or after one interval, if shorter).
const FIRST_SWEEP: Duration = Duration::from_secs(300);

/// What one sweep of one tenant did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SweepReport {
    pub tenant_id: TenantId,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// A tenant-wide legal hold kept every record: nothing was deleted.
    pub held: bool,
    /// Rows deleted per store: `events`, `sessions` (together the `journeys` dataset),
    /// `visitor-profiles`, `leads`, `organizations`.
    pub deleted: BTreeMap<String, u64>,
    pub total: u64,
    /// Days kept per dataset when the sweep ran; `null` keeps records until they are deleted.
    pub days: BTreeMap<String, Option<u32>>,
    /// Per dataset with a limit: records whose age counts from before this went.
    pub cutoffs: BTreeMap<String, Timestamp>,
    /// Delete statements run.
    pub batches: u64,
    /// Empty when the sweep succeeded.
    pub failures: Vec<SweepFailure>,
}

/// A part of a sweep that failed. Never personal: a dataset name and the store's error text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SweepFailure {
    /// None when the sweep failed before reaching any tenant (listing the tenants).
    pub tenant_id: Option<TenantId>,
    /// A dataset, or the step that failed: `tenants`, `settings`, `legal-holds`, `audit-log`.
    pub dataset: String,
    pub error: String,
    pub at: Timestamp,
}

/// A sweep of one tenant that failed somewhere; its report says what was deleted anyway.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", describe(&self.report.failures))]
pub struct SweepError {
    pub report: SweepReport,
}

fn describe(failures: &[SweepFailure]) -> String {
    let parts: Vec<String> =
        failures.iter().map(|failure| format!("{} could not be swept: {}", failure.dataset, failure.error)).collect();
    format!("the retention sweep failed: {}", parts.join("; "))
}

/// One tenant's line in a [`SweepSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantOutcome {
    pub tenant_id: TenantId,
    pub deleted: BTreeMap<String, u64>,
    pub held: bool,
    /// None when the tenant's sweep succeeded.
    pub error: Option<String>,
}

impl TenantOutcome {
    pub fn of(result: &Result<SweepReport, SweepError>) -> Self {
        let report = match result {
            Ok(report) => report,
            Err(error) => &error.report,
        };
        Self {
            tenant_id: report.tenant_id,
            deleted: report.deleted.clone(),
            held: report.held,
            error: result.as_ref().err().map(ToString::to_string),
        }
    }
}

/// What a sweep of every tenant did (`steward retention sweep --json` prints it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSummary {
    pub tenants: Vec<TenantOutcome>,
    /// Rows deleted across every tenant.
    pub deleted: u64,
    /// Set when the tenants themselves could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SweepSummary {
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.tenants.iter().any(|tenant| tenant.error.is_some())
    }
}

/// What the database could not be told: a sweep that could not list the tenants, and sweeps
/// whose outcome could not be saved. Everything else about sweeps lives in the database
/// ([`steward_store::Store::save_sweep`]), so `/readyz` and the API on every node, and after a
/// restart, show what any process's sweep did. An entry here stays until the same step succeeds
/// in this process.
#[derive(Debug, Default)]
pub struct SweepStatus {
    unsaved: Mutex<BTreeMap<Option<TenantId>, Vec<SweepFailure>>>,
}

/// The retention part of `/readyz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionHealth {
    /// `ok`, `failing` (the last sweep of some tenant failed, or its outcome could not be read
    /// or saved) or `not_run` (no sweep has run yet, by any process).
    pub status: &'static str,
    /// When the latest sweep of any tenant ended, by any process.
    pub last_run_at: Option<Timestamp>,
    pub failures: Vec<SweepFailure>,
}

impl SweepStatus {
    fn unsaved(&self) -> std::sync::MutexGuard<'_, BTreeMap<Option<TenantId>, Vec<SweepFailure>>> {
        // A panic elsewhere while holding the lock leaves plain data behind, still usable.
        self.unsaved.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `report` in the database as the tenant's last sweep; when that fails, here.
    async fn record(&self, state: &AppState, report: &SweepReport) {
        let record = SweepRecord {
            tenant_id: report.tenant_id,
            finished_at: report.finished_at,
            failed: !report.failures.is_empty(),
            report: serde_json::to_value(report).unwrap_or_default(),
        };
        match state.store.save_sweep(&record).await {
            Ok(()) => {
                self.unsaved().remove(&Some(report.tenant_id));
            }
            Err(error) => {
                let text = error_text(&error);
                tracing::error!(tenant.id = %report.tenant_id, error = %text, "a retention sweep's outcome could not be saved");
                let mut failures = report.failures.clone();
                failures.push(SweepFailure {
                    tenant_id: Some(report.tenant_id),
                    dataset: "retention-sweeps".into(),
                    error: text,
                    at: state.clock.now(),
                });
                self.unsaved().insert(Some(report.tenant_id), failures);
            }
        }
    }

    /// Listing the tenants failed (`Some`) or worked (`None`); a tenant that is gone takes its
    /// unsaved failure with it.
    fn listed(&self, tenants: Result<&BTreeSet<TenantId>, SweepFailure>) {
        let mut unsaved = self.unsaved();
        match tenants {
            Ok(tenants) => unsaved.retain(|tenant, _| tenant.is_some_and(|id| tenants.contains(&id))),
            Err(failure) => {
                unsaved.insert(None, vec![failure]);
            }
        }
    }

    /// Every tenant's last sweep, from the database, with what this process could not save.
    pub async fn health(&self, state: &AppState) -> RetentionHealth {
        let mut failures: Vec<SweepFailure> = self.unsaved().values().flatten().cloned().collect();
        let mut last_run_at = failures.iter().map(|failure| failure.at).max();
        match state.store.sweep_overview().await {
            Ok(overview) => {
                last_run_at = last_run_at.max(overview.last_finished_at);
                for record in &overview.failed {
                    failures.extend(report_of(record).map(|report| report.failures).unwrap_or_else(|| {
                        vec![SweepFailure {
                            tenant_id: Some(record.tenant_id),
                            dataset: "retention-sweeps".into(),
                            error: "the saved sweep report could not be read".into(),
                            at: record.finished_at,
                        }]
                    }));
                }
            }
            Err(error) => failures.push(SweepFailure {
                tenant_id: None,
                dataset: "retention-sweeps".into(),
                error: error_text(&error),
                at: state.clock.now(),
            }),
        }
        let status = match (last_run_at, failures.is_empty()) {
            (_, false) => "failing",
            (None, true) => "not_run",
            (Some(_), true) => "ok",
        };
        RetentionHealth { status, last_run_at, failures }
    }
}

/// The tenant's last sweep, by whichever process ran it.
pub async fn last_sweep(state: &AppState, ctx: &TenantCtx) -> StoreResult<Option<SweepReport>> {
    Ok(state.store.last_sweep(ctx).await?.as_ref().and_then(report_of))
}

fn report_of(record: &SweepRecord) -> Option<SweepReport> {
    serde_json::from_value(record.report.clone())
        .inspect_err(|error| tracing::warn!(tenant.id = %record.tenant_id, error = %error, "a saved sweep report could not be read"))
        .ok()
}

/// Ids that legal holds keep, as the values `none_of` filters take.
#[derive(Debug, Default)]
struct Held {
    tenant: bool,
    leads: BTreeSet<uuid::Uuid>,
    profiles: BTreeSet<uuid::Uuid>,
    organizations: BTreeSet<uuid::Uuid>,
}

impl Held {
    fn values(ids: &BTreeSet<uuid::Uuid>) -> Vec<Value> {
        ids.iter().copied().map(Value::Uuid).collect()
    }
}

/// What the tenant's holds keep: a held profile keeps its leads and journeys, a held lead its
/// profile and that profile's journeys.
async fn held(state: &AppState, ctx: &TenantCtx) -> StoreResult<Held> {
    let holds: Vec<LegalHold> = state.store.list_all(ctx, ListQuery::default()).await?;
    let mut held = Held::default();
    for hold in &holds {
        match (hold.scope, hold.record_id) {
            (HoldScope::Tenant, _) => held.tenant = true,
            (HoldScope::Lead, Some(id)) => {
                held.leads.insert(id);
            }
            (HoldScope::VisitorProfile, Some(id)) => {
                held.profiles.insert(id);
            }
            (HoldScope::Organization, Some(id)) => {
                held.organizations.insert(id);
            }
            (_, None) => {}
        }
    }
    if held.tenant {
        return Ok(held);
    }
    let mut profiles_of_leads = Vec::new();
    for id in &held.leads {
        if let Some(lead) = state.store.get::<Lead>(ctx, *id).await? {
            profiles_of_leads.extend(lead.visitor_profile_id.map(|id| id.into_uuid()));
        }
    }
    if !held.profiles.is_empty() {
        let of_profiles =
            ListQuery { any_of: Some(("visitor_profile_id", Held::values(&held.profiles))), ..ListQuery::default() };
        let leads: Vec<Lead> = state.store.list_all(ctx, of_profiles).await?;
        held.leads.extend(leads.iter().map(|lead| lead.id.into_uuid()));
    }
    held.profiles.extend(profiles_of_leads);
    Ok(held)
}

/// Runs `query` batch after batch until a batch comes back short: how many went, and the error
/// that stopped it, if one did. Leads go through [`delete_lead_batch`], which takes their copies
/// with them.
async fn delete_expired(
    state: &AppState,
    ctx: &TenantCtx,
    kind: DocKind,
    query: &ListQuery,
    batches: &mut u64,
) -> (u64, Option<StoreError>) {
    let mut deleted = 0;
    loop {
        let batch = match kind {
            DocKind::Lead => delete_lead_batch(state, ctx, query).await,
            _ => state.store.delete_matching(ctx, kind, query).await,
        };
        match batch {
            Ok(count) => {
                *batches += 1;
                deleted += count;
                if count < u64::from(query.limit) {
                    return (deleted, None);
                }
            }
            Err(error) => return (deleted, Some(error)),
        }
        // Other requests get at the database between batches.
        tokio::task::yield_now().await;
    }
}

/// One batch of expired leads, in one transaction with what points at them: the contact entries
/// (name and email copies) in their organizations and the `lead_ids` of their visitor profiles,
/// so nothing of an expired lead outlives it.
async fn delete_lead_batch(state: &AppState, ctx: &TenantCtx, query: &ListQuery) -> StoreResult<u64> {
    let leads: Vec<Lead> = state.store.list(ctx, query).await?;
    if leads.is_empty() {
        return Ok(0);
    }
    let ids: BTreeSet<LeadId> = leads.iter().map(|lead| lead.id).collect();
    let profile_ids: BTreeSet<uuid::Uuid> =
        leads.iter().filter_map(|lead| lead.visitor_profile_id.map(|id| id.into_uuid())).collect();
    let keys = state.store.keys(ctx)?;
    let mut batch = Batch::default();
    let store = state.store.as_ref();
    let now = state.clock.now();
    crate::subjects::Copies::of_lead_ids(&keys, &ids).remove(store, ctx, &keys, now, &mut batch).await?;
    for mut profile in crate::subjects::any_of::<VisitorProfile>(store, ctx, "id", &profile_ids).await? {
        let before = profile.lead_ids.len();
        profile.lead_ids.retain(|id| !ids.contains(id));
        if profile.lead_ids.len() != before {
            batch.update(ctx, &keys, &profile)?;
        }
    }
    for id in &ids {
        batch.delete(ctx, DocKind::Lead, id.into_uuid());
    }
    state.store.write_docs(batch.writes()).await?;
    Ok(leads.len() as u64)
}

fn error_text(error: &StoreError) -> String {
    let text = error.to_string();
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

impl SweepReport {
    fn new(tenant_id: TenantId, now: Timestamp) -> Self {
        Self {
            tenant_id,
            started_at: now,
            finished_at: now,
            held: false,
            deleted: BTreeMap::new(),
            total: 0,
            days: BTreeMap::new(),
            cutoffs: BTreeMap::new(),
            batches: 0,
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, dataset: &str, error: String, at: Timestamp) {
        tracing::error!(tenant.id = %self.tenant_id, dataset, error = %error, "retention sweep failed");
        self.failures.push(SweepFailure { tenant_id: Some(self.tenant_id), dataset: dataset.into(), error, at });
    }
}

/// The deletes of one dataset: (store name, kind, which rows).
fn deletes(
    dataset: RetentionDataset,
    cutoff: Timestamp,
    held: &Held,
    limit: u32,
) -> Vec<(&'static str, DocKind, ListQuery)> {
    let base = ListQuery { limit, ..ListQuery::default() };
    let by_update = |column: &'static str, ids: &BTreeSet<uuid::Uuid>| ListQuery {
        updated_before: Some(cutoff),
        none_of: Some((column, Held::values(ids))),
        ..base.clone()
    };
    match dataset {
        RetentionDataset::Journeys => {
            let journeys = ListQuery {
                created_to: Some(cutoff),
                none_of: Some(("visitor_profile_id", Held::values(&held.profiles))),
                ..base.clone()
            };
            // Events before their sessions: a failure between the two leaves no event without
            // its session.
            vec![("events", DocKind::Event, journeys.clone()), ("sessions", DocKind::Session, journeys)]
        }
        RetentionDataset::VisitorProfiles => {
            vec![("visitor-profiles", DocKind::VisitorProfile, by_update("id", &held.profiles))]
        }
        RetentionDataset::Leads => vec![("leads", DocKind::Lead, by_update("id", &held.leads))],
        RetentionDataset::Organizations => {
            vec![("organizations", DocKind::Organization, by_update("id", &held.organizations))]
        }
    }
}

/// Sweeps one tenant now: deletes what its policy no longer keeps, in batches of
/// `retention.batch_size`, spares what legal holds keep, audits the outcome and remembers it for
/// `/readyz`. A dataset that fails does not stop the others.
pub async fn sweep_tenant(state: &AppState, ctx: &TenantCtx) -> Result<SweepReport, SweepError> {
    let now = state.clock.now();
    let mut report = SweepReport::new(ctx.tenant_id(), now);
    sweep_into(state, ctx, &mut report).await;
    report.finished_at = state.clock.now();
    report.total = report.deleted.values().sum();
    if report.total > 0 {
        let detail = serde_json::json!({
            "deleted": report.deleted, "days": report.days, "cutoffs": report.cutoffs, "batches": report.batches,
        });
        let target = Target { kind: "retention".into(), count: report.total, ids: Vec::new() };
        let draft = audit::by_system(state, "retention.swept", target, detail);
        if let Err(error) = state.store.audit(ctx, &draft).await {
            // The rows are gone but the record of it is not written: that needs the operator.
            report.fail("audit-log", error_text(&error), state.clock.now());
        }
        // Expired rows leave no bytes behind in the database files either.
        if let Err(error) = state.store.purge_deleted().await {
            tracing::warn!(error = %error, "expired rows may linger in the database files until the next purge");
        }
    }
    if !report.failures.is_empty() {
        let failures: Vec<_> =
            report.failures.iter().map(|f| serde_json::json!({"dataset": f.dataset, "error": f.error})).collect();
        let detail = serde_json::json!({"failures": failures, "deleted": report.deleted, "batches": report.batches});
        let target = Target { kind: "retention".into(), count: report.total, ids: Vec::new() };
        let draft = audit::by_system(state, "retention.sweep_failed", target, detail);
        if let Err(error) = state.store.audit(ctx, &draft).await {
            tracing::error!(tenant.id = %report.tenant_id, error = %error, "retention failure could not be audited");
        }
    }
    state.sweeps.record(state, &report).await;
    if report.failures.is_empty() {
        if report.total > 0 {
            tracing::info!(tenant.id = %report.tenant_id, deleted = report.total, batches = report.batches, "retention sweep");
        }
        Ok(report)
    } else {
        Err(SweepError { report })
    }
}

async fn sweep_into(state: &AppState, ctx: &TenantCtx, report: &mut SweepReport) {
    let tenant = match state.store.get_tenant(ctx.tenant_id()).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => return report.fail("settings", "the tenant does not exist".into(), state.clock.now()),
        Err(error) => return report.fail("settings", error_text(&error), state.clock.now()),
    };
    let held = match held(state, ctx).await {
        Ok(held) => held,
        Err(error) => return report.fail("legal-holds", error_text(&error), state.clock.now()),
    };
    let policy = &tenant.settings.retention;
    for dataset in RetentionDataset::ALL {
        report.days.insert(dataset.as_str().into(), policy.days_for(*dataset));
    }
    if held.tenant {
        report.held = true;
        return;
    }
    let limit = state.settings.retention.batch_size.clamp(1, steward_store::doc::MAX_DELETE);
    // Children before parents: journeys, then the profiles they belong to, then leads.
    let order = [
        RetentionDataset::Journeys,
        RetentionDataset::VisitorProfiles,
        RetentionDataset::Leads,
        RetentionDataset::Organizations,
    ];
    for dataset in order {
        let Some(days) = policy.days_for(dataset) else { continue };
        let cutoff = report.started_at.checked_sub(time::Duration::days(i64::from(days))).unwrap_or(report.started_at);
        report.cutoffs.insert(dataset.as_str().into(), cutoff);
        for (name, kind, query) in deletes(dataset, cutoff, &held, limit) {
            let (deleted, error) = delete_expired(state, ctx, kind, &query, &mut report.batches).await;
            *report.deleted.entry(name.into()).or_default() += deleted;
            if let Some(error) = error {
                report.fail(name, error_text(&error), state.clock.now());
                break;
            }
        }
    }
}

/// Sweeps every tenant, one after another; one tenant's failure does not stop the others.
pub async fn sweep_all(state: &AppState) -> SweepSummary {
    let tenants = match state.store.list_tenants().await {
        Ok(tenants) => tenants,
        Err(error) => {
            let text = error_text(&error);
            tracing::error!(error = %text, "retention sweep could not list the tenants");
            let at = state.clock.now();
            let failure = SweepFailure { tenant_id: None, dataset: "tenants".into(), error: text.clone(), at };
            state.sweeps.listed(Err(failure));
            return SweepSummary { tenants: Vec::new(), deleted: 0, error: Some(text) };
        }
    };
    let mut outcomes = Vec::with_capacity(tenants.len());
    for tenant in &tenants {
        let result = sweep_tenant(state, &TenantCtx::new(tenant.id)).await;
        outcomes.push(TenantOutcome::of(&result));
    }
    let ids: BTreeSet<TenantId> = tenants.iter().map(|tenant| tenant.id).collect();
    state.sweeps.listed(Ok(&ids));
    let deleted = outcomes.iter().flat_map(|outcome| outcome.deleted.values()).sum();
    SweepSummary { tenants: outcomes, deleted, error: None }
}

/// Runs [`sweep_all`] every `retention.sweep_interval_minutes` until aborted; `None` when the
/// setting is 0.
pub fn spawn_sweeper(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let minutes = state.settings.retention.sweep_interval_minutes;
    if minutes == 0 {
        return None;
    }
    let period = Duration::from_secs(u64::from(minutes) * 60);
    Some(tokio::spawn(async move {
        let first = tokio::time::Instant::now() + FIRST_SWEEP.min(period);
        let mut ticks = tokio::time::interval_at(first, period);
        // A sweep longer than the interval is followed by the next one, not by a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let summary = sweep_all(&state).await;
            let failed = summary.tenants.iter().filter(|tenant| tenant.error.is_some()).count();
            tracing::info!(tenants = summary.tenants.len(), deleted = summary.deleted, failed, "retention sweeps done");
        }
    }))
}
