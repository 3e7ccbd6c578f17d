//! Data Act switching, server side (see [`steward_domain::switching`] for the rules): the state
//! machine that carries out what falls due for every tenant's request, and the signed erasure
//! attestation that outlives the tenant.
//!
//! [`advance`] is one pass, run by `serve` every `switching.advance_interval_minutes` and by
//! `steward switching advance`; each step is saved before the next, so a pass cut short is
//! finished by the next one. Archives are built inside the pass, not in a leased job: a pass
//! handles one step of one request at a time and the steps are idempotent (a rebuilt archive
//! replaces the earlier file under the same key).
//!
//! Erasure removes the tenant's files first, then every row in one transaction, then destroys
//! the tenant's key, and then writes the attestation, noting each step in a journal in the key
//! folder: a pass that stops half-way is finished by the next one, even once the rows (and the
//! request with them) are gone. The tenant's own audit log is erased with it, so the attestation
//! (outside the tenant, nothing personal in it) is the record of the erasure.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngExt;
use serde::Serialize;
use steward_domain::switching::{
    SwitchingAction, SwitchingDue, SwitchingError, SwitchingId, SwitchingRequest, SwitchingStatus,
};
use steward_domain::{TenantId, Timestamp};
use steward_store::{Actor, ActorKind, AuditDraft, DocKind, ListQuery, StoreExt, Target, TenantCtx, Value};

use crate::state::AppState;

/// The signing key's file in the key folder (base64 of the 32-byte Ed25519 seed, mode 0600).
const SIGNING_KEY_FILE: &str = "attestation-ed25519.key";

/// Where a tenant's archive for a request is kept.
pub fn archive_key(tenant: TenantId, request: SwitchingId) -> String {
    format!("archives/{tenant}/{request}.zip")
}

/// Where a tenant's erasure attestation is kept: outside the tenant's folders, so it stays.
pub fn attestation_key(tenant: TenantId) -> String {
    format!("attestations/{tenant}.json")
}

/// Where anyone fetches a tenant's attestation, without signing in.
pub fn attestation_path(tenant: TenantId) -> String {
    format!("/switching-attestations/{tenant}")
}

/// One step a pass carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdvanceStep {
    pub tenant_id: TenantId,
    pub request_id: SwitchingId,
    /// `transitional_started`, `transitional_ended`, `archive_removed` or `erased`.
    pub step: String,
    pub at: Timestamp,
}

/// A tenant whose requests could not be advanced; the next pass tries again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdvanceFailure {
    pub tenant_id: TenantId,
    pub error: String,
}

/// What one pass did (`steward switching advance --json` prints it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdvanceReport {
    /// Tenants looked at.
    pub tenants: usize,
    pub steps: Vec<AdvanceStep>,
    pub failures: Vec<AdvanceFailure>,
}

/// One pass of the state machine over every tenant: each request is moved through every step
/// due at `state.clock`'s now.
pub async fn advance(state: &AppState) -> anyhow::Result<AdvanceReport> {
    let mut report = AdvanceReport::default();
    for erasure in unfinished_erasures(state)? {
        let (tenant_id, request_id) = (erasure.tenant_id, erasure.request_id);
        tracing::warn!(tenant.id = %tenant_id, "finishing an interrupted erasure");
        match finish_erasure(state, erasure).await {
            Ok(_) => {
                report.steps.push(AdvanceStep { tenant_id, request_id, step: "erased".into(), at: state.clock.now() })
            }
            Err(error) => report.failures.push(AdvanceFailure { tenant_id, error: format!("{error:#}") }),
        }
    }
    let tenants = state.store.list_tenants().await?;
    report.tenants = tenants.len();
    for tenant in tenants {
        let ctx = TenantCtx::new(tenant.id);
        if let Err(error) = advance_tenant(state, &ctx, &mut report).await {
            tracing::error!(tenant.id = %tenant.id, error = format!("{error:#}"), "switching step failed");
            report.failures.push(AdvanceFailure { tenant_id: tenant.id, error: format!("{error:#}") });
        }
    }
    Ok(report)
}

/// The tenant's requests that still have steps ahead.
async fn open_requests(state: &AppState, ctx: &TenantCtx) -> anyhow::Result<Vec<SwitchingRequest>> {
    // Most tenants never switch: a count needs no key, so none is made for them here.
    if state.store.count_docs(ctx, DocKind::SwitchingRequest).await? == 0 {
        return Ok(Vec::new());
    }
    let open = [SwitchingStatus::Notice, SwitchingStatus::Transitional, SwitchingStatus::Retrieval];
    let query = ListQuery {
        any_of: Some(("status", open.iter().map(|status| Value::Text(status.as_str().into())).collect())),
        limit: steward_store::doc::MAX_PAGE,
        ..ListQuery::default()
    };
    Ok(state.store.list(ctx, &query).await?)
}

async fn advance_tenant(state: &AppState, ctx: &TenantCtx, report: &mut AdvanceReport) -> anyhow::Result<()> {
    for mut request in open_requests(state, ctx).await? {
        while let Some(due) = request.due(state.clock.now()) {
            let now = state.clock.now();
            let step = match due {
                SwitchingDue::StartTransitional => {
                    request.start_transitional(now);
                    request.step(now, "transitional_started", system(), None);
                    let mut drafts =
                        vec![draft(state, &request, "switching.transitional_started", serde_json::json!({}))];
                    if request.action != SwitchingAction::Erase {
                        drafts.push(build_archive(state, ctx, &mut request, false).await?);
                    }
                    save(state, ctx, &request, &drafts).await?;
                    "transitional_started"
                }
                SwitchingDue::EndTransitional => {
                    // The service ran unchanged until now: this archive holds everything.
                    let built = build_archive(state, ctx, &mut request, true).await?;
                    request.end_transitional(now);
                    request.step(now, "transitional_ended", system(), None);
                    let detail = serde_json::json!({ "retrieval_ends_at": request.retrieval_ends_at });
                    let ended = draft(state, &request, "switching.transitional_ended", detail);
                    save(state, ctx, &request, &[built, ended]).await?;
                    "transitional_ended"
                }
                SwitchingDue::EndRetrieval => {
                    state.files.remove(&archive_key(ctx.tenant_id(), request.id))?;
                    request.archive_removed(now);
                    request.step(now, "archive_removed", system(), None);
                    let detail = serde_json::json!({ "erasure_due_at": request.erasure_due_at });
                    save(state, ctx, &request, &[draft(state, &request, "switching.archive_removed", detail)]).await?;
                    "archive_removed"
                }
                SwitchingDue::Erase => {
                    erase(state, ctx, &request).await?;
                    report.steps.push(AdvanceStep {
                        tenant_id: ctx.tenant_id(),
                        request_id: request.id,
                        step: "erased".into(),
                        at: state.clock.now(),
                    });
                    // The tenant, this request included, is gone.
                    return Ok(());
                }
            };
            report.steps.push(AdvanceStep {
                tenant_id: ctx.tenant_id(),
                request_id: request.id,
                step: step.into(),
                at: now,
            });
        }
    }
    Ok(())
}

fn system() -> (&'static str, Option<String>) {
    ("system", None)
}

/// An audit entry by Steward itself about a step of the request.
fn draft(state: &AppState, request: &SwitchingRequest, action: &str, detail: serde_json::Value) -> AuditDraft {
    crate::api::audit::by_system(state, action, target(request), with_request(request, detail))
}

/// Saves a step of the request with the audit entries recording it, in one transaction.
async fn save(
    state: &AppState,
    ctx: &TenantCtx,
    request: &SwitchingRequest,
    drafts: &[AuditDraft],
) -> anyhow::Result<()> {
    if state.store.update_audited(ctx, request, drafts).await? {
        Ok(())
    } else {
        anyhow::bail!("switching request {} is no longer stored", request.id)
    }
}

/// The audit target of a request.
pub fn target(request: &SwitchingRequest) -> Target {
    Target { kind: "switching_request".into(), count: 1, ids: vec![request.id.into_uuid()] }
}

/// An audit detail naming the request and its action.
pub fn with_request(request: &SwitchingRequest, detail: serde_json::Value) -> serde_json::Value {
    let mut detail = match detail {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    detail.insert("request".into(), serde_json::json!(request.id));
    detail.insert("action".into(), serde_json::json!(request.action.as_str()));
    serde_json::Value::Object(detail)
}

async fn build_archive(
    state: &AppState,
    ctx: &TenantCtx,
    request: &mut SwitchingRequest,
    complete: bool,
) -> anyhow::Result<AuditDraft> {
    let key = archive_key(ctx.tenant_id(), request.id);
    let summary = crate::tenant_archive::build(state, ctx, &key).await?;
    let now = state.clock.now();
    request.archive_built(summary.bytes, summary.sha256.clone(), complete, now);
    let note = if complete { "complete: the transitional period is over" } else { "first: the service still runs" };
    request.step(now, "archive_built", system(), Some(note.into()));
    let detail = serde_json::json!({
        "bytes": summary.bytes, "sha256": summary.sha256, "complete": complete, "files": summary.files.len(),
    });
    Ok(draft(state, request, "switching.archive_built", detail))
}

/// One store in the attestation and when it was erased.
#[derive(Debug, Clone, Serialize)]
struct ErasedStore {
    store: &'static str,
    /// The table, for the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<u64>,
    /// Set when the rows went in an interrupted pass that could not count them: every table
    /// was found without a row of the tenant at `erased_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_empty: Option<bool>,
    erased_at: Timestamp,
}

impl ErasedStore {
    fn new(store: &'static str, erased_at: Timestamp) -> Self {
        Self { store, table: None, rows: None, files: None, bytes: None, keys: None, verified_empty: None, erased_at }
    }
}

/// The signed statement: what was erased, per store, and when.
#[derive(Debug, Clone, Serialize)]
struct AttestationPayload {
    statement: &'static str,
    tenant_id: TenantId,
    request_id: SwitchingId,
    action: &'static str,
    stores: Vec<ErasedStore>,
    started_at: Timestamp,
    finished_at: Timestamp,
}

/// The attestation file: the payload as a string and an Ed25519 signature over its UTF-8 bytes.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Attestation {
    /// `Ed25519`.
    pub algorithm: String,
    /// Standard base64 of the 32-byte public key; `/data-register` publishes the same.
    pub public_key: String,
    /// The attested JSON, as signed.
    pub payload: String,
    /// Standard base64 of the 64-byte signature over `payload`'s UTF-8 bytes.
    pub signature: String,
}

/// An erasure under way, journaled in the key folder (`erasing-<tenant>.json`, outside the
/// tenant and the database) after each step: a pass that stops half-way (a crash, a failed
/// write) is finished by the next pass, which finds the journal even though the tenant's rows,
/// and with them its request, may already be gone.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct Erasure {
    tenant_id: TenantId,
    request_id: SwitchingId,
    action: SwitchingAction,
    started_at: Timestamp,
    /// Files removed, and when.
    files: Option<(u64, u64, Timestamp)>,
    /// Rows removed per table, and when; an empty map when the rows went but their count was lost.
    rows: Option<(std::collections::BTreeMap<String, u64>, Timestamp)>,
    key_destroyed_at: Option<Timestamp>,
}

const JOURNAL_PREFIX: &str = "erasing-";

fn journal_path(state: &AppState, tenant: TenantId) -> PathBuf {
    state.store.vault().folder().join(format!("{JOURNAL_PREFIX}{tenant}.json"))
}

/// Writes the journal whole or not at all (a temporary file, synced, then renamed).
fn save_journal(state: &AppState, erasure: &Erasure) -> anyhow::Result<()> {
    let path = journal_path(state, erasure.tenant_id);
    let partial = path.with_extension("partial");
    let mut file = fs::File::create(&partial)?;
    file.write_all(&serde_json::to_vec(erasure)?)?;
    file.sync_all()?;
    fs::rename(&partial, &path)?;
    Ok(())
}

/// Erasures a pass left unfinished.
fn unfinished_erasures(state: &AppState) -> anyhow::Result<Vec<Erasure>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(state.store.vault().folder())? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if name.starts_with(JOURNAL_PREFIX) && name.ends_with(".json") {
            let path = state.store.vault().folder().join(&name);
            found.push(serde_json::from_slice(&fs::read(&path)?)?);
        }
    }
    Ok(found)
}

async fn erase(state: &AppState, ctx: &TenantCtx, request: &SwitchingRequest) -> anyhow::Result<Attestation> {
    tracing::info!(tenant.id = %ctx.tenant_id(), request.id = %request.id, "erasing the tenant after switching");
    // An earlier attempt that failed half-way goes on from where it stopped.
    if let Ok(journal) = fs::read(journal_path(state, ctx.tenant_id())) {
        return finish_erasure(state, serde_json::from_slice(&journal)?).await;
    }
    let erasure = Erasure {
        tenant_id: ctx.tenant_id(),
        request_id: request.id,
        action: request.action,
        started_at: state.clock.now(),
        files: None,
        rows: None,
        key_destroyed_at: None,
    };
    save_journal(state, &erasure)?;
    finish_erasure(state, erasure).await
}

/// Runs the steps of `erasure` not yet done: files, rows, key, then the attestation.
async fn finish_erasure(state: &AppState, mut erasure: Erasure) -> anyhow::Result<Attestation> {
    let tenant = erasure.tenant_id;
    let ctx = TenantCtx::new(tenant);
    let signing = signing_key(state)?;
    if erasure.files.is_none() {
        let removed = state.files.remove_tenant(&tenant.to_string())?;
        erasure.files = Some((removed.files, removed.bytes, state.clock.now()));
        save_journal(state, &erasure)?;
    }
    if erasure.rows.is_none() {
        let mut counts = state.store.erase_tenant(&ctx).await?;
        if counts.get("tenants").copied().unwrap_or(0) == 0 {
            if read_attestation(state, tenant)?.is_some() {
                // Another pass (another node) erased the tenant and attested it.
                let _ = fs::remove_file(journal_path(state, tenant));
                anyhow::bail!("tenant {tenant} was erased and attested by another pass already");
            }
            // The rows went in a pass that stopped before it could note how many: say so rather
            // than attest zero rows.
            counts.clear();
        }
        erasure.rows = Some((counts, state.clock.now()));
        save_journal(state, &erasure)?;
    }
    if erasure.key_destroyed_at.is_none() {
        crate::erasure_ledger::remove(state.store.as_ref(), tenant)?;
        state.store.vault().destroy(tenant)?;
        erasure.key_destroyed_at = Some(state.clock.now());
        save_journal(state, &erasure)?;
    }
    let attestation = sign(&signing, &serde_json::to_string(&payload(&erasure, state.clock.now()))?);
    let key = attestation_key(tenant);
    let mut file = state.files.create(&key)?;
    file.write_all(&serde_json::to_vec_pretty(&attestation)?)?;
    file.sync_all()?;
    state.files.commit(&key)?;
    fs::remove_file(journal_path(state, tenant))?;
    tracing::info!(tenant.id = %tenant, "tenant erased; attestation written");
    Ok(attestation)
}

fn payload(erasure: &Erasure, finished_at: Timestamp) -> AttestationPayload {
    let mut stores = Vec::new();
    if let Some((counts, at)) = &erasure.rows {
        if counts.is_empty() {
            stores.push(ErasedStore { verified_empty: Some(true), ..ErasedStore::new("database", *at) });
        }
        stores.extend(counts.iter().map(|(table, rows)| ErasedStore {
            table: Some(table.clone()),
            rows: Some(*rows),
            ..ErasedStore::new("database", *at)
        }));
    }
    if let Some((files, bytes, at)) = erasure.files {
        stores.push(ErasedStore { files: Some(files), bytes: Some(bytes), ..ErasedStore::new("files", at) });
    }
    if let Some(at) = erasure.key_destroyed_at {
        stores.push(ErasedStore { keys: Some(1), ..ErasedStore::new("key_vault", at) });
    }
    AttestationPayload {
        statement: "every record, file and the data key of this tenant were erased after Data Act switching \
            (Regulation (EU) 2023/2854, Art. 25(2)(e))",
        tenant_id: erasure.tenant_id,
        request_id: erasure.request_id,
        action: erasure.action.as_str(),
        stores,
        started_at: erasure.started_at,
        finished_at,
    }
}

fn sign(key: &SigningKey, payload: &str) -> Attestation {
    let signature = key.sign(payload.as_bytes());
    Attestation {
        algorithm: "Ed25519".into(),
        public_key: STANDARD.encode(key.verifying_key().to_bytes()),
        payload: payload.to_string(),
        signature: STANDARD.encode(signature.to_bytes()),
    }
}

fn signing_key_path(state: &AppState) -> PathBuf {
    state.store.vault().folder().join(SIGNING_KEY_FILE)
}

/// The operator's attestation key: read from the key folder, created there (mode 0600) on first
/// use. Never in the database.
fn signing_key(state: &AppState) -> anyhow::Result<SigningKey> {
    let path = signing_key_path(state);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::rng().random();
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(mut file) => {
                    file.write_all(STANDARD.encode(seed).as_bytes())?;
                    file.sync_all()?;
                    STANDARD.encode(seed)
                }
                // Another process made it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => fs::read_to_string(&path)?,
                Err(error) => return Err(error.into()),
            }
        }
        Err(error) => return Err(error.into()),
    };
    let seed: [u8; 32] = STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("{} is not base64 of a 32-byte Ed25519 key", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key that verifies erasure attestations: standard base64 of its 32 bytes, as
/// `/data-register` publishes it.
pub fn attestation_public_key(state: &AppState) -> anyhow::Result<String> {
    Ok(STANDARD.encode(signing_key(state)?.verifying_key().to_bytes()))
}

/// A tenant's attestation, if its data was erased here.
pub fn read_attestation(state: &AppState, tenant: TenantId) -> anyhow::Result<Option<Vec<u8>>> {
    match state.files.open(&attestation_key(tenant))? {
        Some((mut file, _)) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)?;
            Ok(Some(bytes))
        }
        None => Ok(None),
    }
}

/// Why the operator's declaration was refused.
#[derive(Debug, thiserror::Error)]
pub enum InfeasibleError {
    #[error("tenant {0} has no switching request {1}")]
    NotFound(TenantId, String),
    #[error(transparent)]
    Refused(#[from] SwitchingError),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl InfeasibleError {
    /// A short code for `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(..) => "not_found",
            Self::Refused(SwitchingError::InfeasibilityTooLate(_)) => "too_late",
            Self::Refused(SwitchingError::AlternativeTooLong(_)) => "alternative_too_long",
            Self::Refused(_) => "refused",
            Self::Failed(_) => "failed",
        }
    }
}

/// The operator declares the transitional period technically infeasible (Art. 25(4)), with the
/// end of the alternative period and the reason told to the customer.
pub async fn declare_infeasible(
    state: &AppState,
    ctx: &TenantCtx,
    request_id: &str,
    until: Timestamp,
    reason: String,
) -> Result<SwitchingRequest, InfeasibleError> {
    let not_found = || InfeasibleError::NotFound(ctx.tenant_id(), request_id.to_string());
    let id = steward_domain::id::parse_v7(request_id).map_err(|_| not_found())?;
    let mut request =
        state.store.get::<SwitchingRequest>(ctx, id).await.map_err(anyhow::Error::from)?.ok_or_else(not_found)?;
    let now = state.clock.now();
    request.declare_infeasible(until, reason.clone(), now)?;
    request.step(now, "infeasible", ("operator", None), Some(reason));
    let detail = serde_json::json!({
        "alternative_ends_at": until, "retrieval_ends_at": request.retrieval_ends_at,
    });
    let draft = AuditDraft {
        at: now,
        actor: Actor { kind: ActorKind::Operator, id: None },
        action: "switching.infeasible".into(),
        target: target(&request),
        detail: with_request(&request, detail),
        ip_network: None,
    };
    save(state, ctx, &request, std::slice::from_ref(&draft)).await?;
    Ok(request)
}

/// Runs [`advance`] every `switching.advance_interval_minutes` until the process stops; `None`
/// when the interval is 0.
pub fn spawn_advancer(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let minutes = state.settings.switching.advance_interval_minutes;
    if minutes == 0 {
        return None;
    }
    let period = Duration::from_secs(u64::from(minutes) * 60);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match advance(&state).await {
                Ok(report) if !report.steps.is_empty() || !report.failures.is_empty() => {
                    tracing::info!(steps = report.steps.len(), failed = report.failures.len(), "switching pass done");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(error = format!("{error:#}"), "switching pass failed"),
            }
        }
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ed25519_dalek::{Signature, Verifier};

    use super::*;

    #[test]
    fn an_attestation_verifies_with_its_key_and_not_after_a_change() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let attestation = sign(&key, r#"{"tenant_id":"x","rows":3}"#);
        assert_eq!(attestation.algorithm, "Ed25519");
        let public: [u8; 32] = STANDARD.decode(&attestation.public_key).unwrap().try_into().unwrap();
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let signature: [u8; 64] = STANDARD.decode(&attestation.signature).unwrap().try_into().unwrap();
        let signature = Signature::from_bytes(&signature);
        assert!(verifying.verify(attestation.payload.as_bytes(), &signature).is_ok());
        let changed = attestation.payload.replace('3', "4");
        assert!(verifying.verify(changed.as_bytes(), &signature).is_err());
    }
}
