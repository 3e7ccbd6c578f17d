//! The tenant's audit log: append-only, each entry chained to the one before by a keyed hash.
//!
//! An entry is stored as plain columns that filters need (sequence number, time, action, actor)
//! and a sealed body (target, detail, network), which may name records or hold before-values of
//! a rectification and so is personal data. The hash covers the stored bytes of every column,
//! sealed body included, so the chain is verified without opening any body: a changed byte in
//! any column, a removed entry in the middle or a reordering is found and named by its number.
//!
//! `hash(n) = HMAC-SHA256(audit key, "steward-audit-v2" ‖ tenant ‖ seq ‖ id ‖ at ‖ action ‖
//! actor kind ‖ actor id ‖ body ‖ hash(n − 1))`, variable-length parts prefixed with their
//! length; the first entry chains to 32 zero bytes. The audit key derives from the tenant's data
//! key, which lives in the key folder outside the database: someone who can rewrite the database
//! but not read the key folder cannot recompute the hashes after a change. Entries written
//! before the chain was keyed carry the unkeyed `SHA-256("steward-audit-v1" ‖ …)` and verify as
//! such, counted apart, only before the first keyed entry. What no chain shows on its own: the
//! removal of the newest entries (keep the reported head hash elsewhere), and a rewrite by
//! someone holding the key folder and the master key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward_domain::{IpNetwork, Timestamp};
use uuid::Uuid;

use crate::vault::TenantKeys;
use crate::{StoreError, StoreResult, TenantCtx};

/// What the first entry chains to.
pub const GENESIS: [u8; 32] = [0; 32];

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A console user.
    User,
    /// An API client.
    Client,
    /// Steward itself (jobs, sweeps).
    System,
    /// The service provider's operator, through the command line.
    Operator,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::System => "system",
            Self::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::User, Self::Client, Self::System, Self::Operator].into_iter().find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// The user's or client's id; none for the system.
    pub id: Option<String>,
}

/// What an entry is about: a kind of record, how many, and which when few.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    /// A dataset (`leads`), or `client`, `user`, `export_job`…
    pub kind: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<Uuid>,
}

/// An entry to append: everything but its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub at: Timestamp,
    pub actor: Actor,
    /// Dotted, past tense: `export.streamed`, `export.refused`, `lead.deleted`…
    pub action: String,
    pub target: Target,
    /// Filters, counts, before/after values: what a reader needs to understand the entry.
    pub detail: serde_json::Value,
    pub ip_network: Option<IpNetwork>,
}

/// The sealed part of an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Body {
    target: Target,
    detail: serde_json::Value,
    ip_network: Option<IpNetwork>,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub id: Uuid,
    pub at: Timestamp,
    pub action: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub body: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// An entry as read: its body opened. An entry whose body cannot be opened (damaged bytes, a
/// lost key) is still listed, with `damaged` saying why and an empty target and detail, so one
/// bad entry never hides the rest of the log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub id: Uuid,
    pub at: Timestamp,
    pub actor: Actor,
    pub action: String,
    pub target: Target,
    pub detail: serde_json::Value,
    #[schema(value_type = Option<String>)]
    pub ip_network: Option<IpNetwork>,
    /// Hex SHA-256 of the entry before (zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this entry.
    pub hash: String,
    /// Why the entry's body could not be read; absent for a readable entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// Which entries a list returns: after a sequence number, in a window of time, of one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub after_seq: Option<i64>,
    pub limit: u32,
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
    /// An action, or a prefix ending in `.` (`export.`).
    pub action: Option<String>,
    pub actor_kind: Option<ActorKind>,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// True when every entry is intact and chained to the one before.
    pub valid: bool,
    /// Entries checked.
    pub entries: u64,
    /// Entries at the start of the log chained with the unkeyed hash of earlier versions
    /// (before the chain was keyed). A log started on this version has none: any here means
    /// the whole log was rewritten by someone without the key.
    pub unkeyed_entries: u64,
    /// The last entry's sequence number and hash: keep them elsewhere to detect a later
    /// removal of the newest entries, which no chain can show on its own.
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// The first entry found broken, and why.
    pub broken_seq: Option<i64>,
    pub reason: Option<String>,
}

fn context(ctx: &TenantCtx, id: &Uuid) -> Vec<u8> {
    let mut context = b"audit_log\0".to_vec();
    context.extend_from_slice(ctx.tenant_id().as_uuid().as_bytes());
    context.extend_from_slice(id.as_bytes());
    context
}

/// Feeds the chained parts of a row to a hash or MAC.
fn chained_parts(digest: &mut impl Mac2, label: &[u8], ctx: &TenantCtx, row: &AuditRow, prev: &[u8]) {
    fn part(digest: &mut impl Mac2, bytes: &[u8]) {
        digest.feed(&(bytes.len() as u64).to_be_bytes());
        digest.feed(bytes);
    }
    digest.feed(label);
    digest.feed(ctx.tenant_id().as_uuid().as_bytes());
    digest.feed(&row.seq.to_be_bytes());
    digest.feed(row.id.as_bytes());
    digest.feed(&row.at.unix_micros().to_be_bytes());
    part(digest, row.action.as_bytes());
    part(digest, row.actor_kind.as_bytes());
    part(digest, row.actor_id.as_deref().unwrap_or_default().as_bytes());
    digest.feed(&[u8::from(row.actor_id.is_some())]);
    part(digest, &row.body);
    part(digest, prev);
}

/// SHA-256 and HMAC-SHA256 behind one `feed`.
trait Mac2 {
    fn feed(&mut self, bytes: &[u8]);
}

impl Mac2 for Sha256 {
    fn feed(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

impl Mac2 for hmac::Hmac<Sha256> {
    fn feed(&mut self, bytes: &[u8]) {
        hmac::Mac::update(self, bytes);
    }
}

/// The hash of a row's stored bytes chained to `prev`: HMAC-SHA256 under the tenant's audit key
/// (derived from its data key, which lives outside the database), so someone who can write the
/// database but not read the key folder cannot recompute the chain after changing an entry.
pub fn chain_hash(ctx: &TenantCtx, keys: &TenantKeys, row: &AuditRow, prev: &[u8]) -> [u8; 32] {
    let mut mac = keys.audit_mac();
    chained_parts(&mut mac, b"steward-audit-v2", ctx, row, prev);
    hmac::Mac::finalize(mac).into_bytes().into()
}

/// The unkeyed SHA-256 of entries written before the chain was keyed (`steward-audit-v1`):
/// anyone can compute it, which is why verification accepts it only before the first keyed
/// entry (public for the tests that play such an attacker).
pub fn unkeyed_hash(ctx: &TenantCtx, row: &AuditRow, prev: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    chained_parts(&mut hasher, b"steward-audit-v1", ctx, row, prev);
    hasher.finalize().into()
}

/// The row that follows `last` (or starts the chain) for `draft`.
pub fn next_row(ctx: &TenantCtx, keys: &TenantKeys, last: Option<&AuditRow>, draft: &AuditDraft) -> AuditRow {
    let id = Uuid::now_v7();
    let body = Body { target: draft.target.clone(), detail: draft.detail.clone(), ip_network: draft.ip_network };
    // A Body of plain values always serialises.
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut row = AuditRow {
        seq: last.map_or(1, |row| row.seq + 1),
        id,
        at: draft.at,
        action: draft.action.clone(),
        actor_kind: draft.actor.kind.as_str().to_string(),
        actor_id: draft.actor.id.clone(),
        body: keys.seal(&context(ctx, &id), &json),
        prev_hash: last.map_or(GENESIS.to_vec(), |row| row.hash.clone()),
        hash: Vec::new(),
    };
    row.hash = chain_hash(ctx, keys, &row, &row.prev_hash).to_vec();
    row
}

/// The rows of `drafts`, each chained on the one before, the first on `last`.
pub fn chain(ctx: &TenantCtx, keys: &TenantKeys, last: Option<&AuditRow>, drafts: &[AuditDraft]) -> Vec<AuditRow> {
    let mut rows: Vec<AuditRow> = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let row = next_row(ctx, keys, rows.last().or(last), draft);
        rows.push(row);
    }
    rows
}

/// Opens a stored row.
pub fn open_row(ctx: &TenantCtx, keys: &TenantKeys, row: &AuditRow) -> StoreResult<AuditEntry> {
    let json = keys.open(&context(ctx, &row.id), &row.body)?;
    let body: Body = serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kind = ActorKind::parse(&row.actor_kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown actor kind {:?}", row.actor_kind)))?;
    Ok(AuditEntry {
        seq: row.seq,
        id: row.id,
        at: row.at,
        actor: Actor { kind, id: row.actor_id.clone() },
        action: row.action.clone(),
        target: body.target,
        detail: body.detail,
        ip_network: body.ip_network,
        prev_hash: hex(&row.prev_hash),
        hash: hex(&row.hash),
        damaged: None,
    })
}

/// [`open_row`], or the entry marked damaged when its body or actor cannot be read.
pub fn open_row_lenient(ctx: &TenantCtx, keys: &TenantKeys, row: &AuditRow) -> AuditEntry {
    open_row(ctx, keys, row).unwrap_or_else(|error| AuditEntry {
        seq: row.seq,
        id: row.id,
        at: row.at,
        actor: Actor { kind: ActorKind::parse(&row.actor_kind).unwrap_or(ActorKind::System), id: row.actor_id.clone() },
        action: row.action.clone(),
        target: Target::default(),
        detail: serde_json::Value::Null,
        ip_network: None,
        prev_hash: hex(&row.prev_hash),
        hash: hex(&row.hash),
        damaged: Some(format!(
            "the entry cannot be read ({error}); run the chain verification to see whether it was changed"
        )),
    })
}

/// The key a detail object is sealed under when it holds values about one person: see
/// [`seal_for_subject`].
const SEALED_FOR: &str = "sealed_for";
const SEALED: &str = "sealed";

/// Seals `value` (before/after values of a rectification, say) under the key of one person's
/// request (`anchor`), as a JSON object `{"sealed_for": anchor, "sealed": base64}` to put in an
/// entry's detail. The entry's hash covers these sealed bytes, so destroying the key at the
/// person's erasure ([`crate::Vault::destroy_subject_keys`]) leaves the chain verifiable while
/// the values become unreadable for good. Readers see the values while the key lives
/// ([`reveal`]).
pub fn seal_for_subject(
    vault: &crate::Vault,
    ctx: &TenantCtx,
    anchor: Uuid,
    value: &serde_json::Value,
) -> StoreResult<serde_json::Value> {
    use base64::Engine;
    let plain = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let sealed = vault.seal_for_subject(ctx.tenant_id(), anchor, &plain)?;
    Ok(serde_json::json!({ SEALED_FOR: anchor, SEALED: base64::engine::general_purpose::STANDARD.encode(sealed) }))
}

/// Replaces every sealed object in `detail` with its value while its key lives, or with
/// `{"erased": true, "sealed_for": anchor}` once the person was erased.
pub fn reveal(vault: &crate::Vault, ctx: &TenantCtx, detail: &mut serde_json::Value) {
    use base64::Engine;
    match detail {
        serde_json::Value::Object(map) => {
            let sealed = map.get(SEALED).and_then(|v| v.as_str());
            let anchor = map.get(SEALED_FOR).and_then(|v| v.as_str()).and_then(|v| Uuid::parse_str(v).ok());
            if let (Some(sealed), Some(anchor), 2) = (sealed, anchor, map.len()) {
                let opened = base64::engine::general_purpose::STANDARD
                    .decode(sealed)
                    .ok()
                    .and_then(|bytes| vault.open_for_subject(ctx.tenant_id(), anchor, &bytes).ok());
                *detail = match opened {
                    Some(Some(plain)) => serde_json::from_slice(&plain).unwrap_or(serde_json::Value::Null),
                    Some(None) => serde_json::json!({ "erased": true, SEALED_FOR: anchor }),
                    None => serde_json::json!({ "damaged": true, SEALED_FOR: anchor }),
                };
                return;
            }
            for value in map.values_mut() {
                reveal(vault, ctx, value);
            }
        }
        serde_json::Value::Array(values) => {
            for value in values {
                reveal(vault, ctx, value);
            }
        }
        _ => {}
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks rows in sequence order, continuing from `state` (the previous page's last row).
#[derive(Debug)]
pub struct Verifier {
    pub last: Option<(i64, Vec<u8>)>,
    pub entries: u64,
    /// Entries chained with the unkeyed v1 hash: only those written before the first keyed one.
    pub unkeyed: u64,
    keyed_seen: bool,
}

impl Verifier {
    pub fn new() -> Self {
        Self { last: None, entries: 0, unkeyed: 0, keyed_seen: false }
    }

    /// The first problem of this row, if any: the number of the entry at fault and why.
    pub fn check(&mut self, ctx: &TenantCtx, keys: &TenantKeys, row: &AuditRow) -> Option<(i64, String)> {
        let (expected_seq, expected_prev) = match &self.last {
            Some((seq, hash)) => (seq + 1, hash.clone()),
            None => (1, GENESIS.to_vec()),
        };
        self.entries += 1;
        let changed =
            || format!("entry {} was changed after it was written: its hash does not match its content", row.seq);
        let problem = if row.seq != expected_seq {
            let reason =
                format!("entry {expected_seq} is missing: the entry after {} is {}", expected_seq - 1, row.seq);
            Some((expected_seq, reason))
        } else if row.prev_hash != expected_prev {
            Some((row.seq, format!("entry {} does not chain to the entry before it", row.seq)))
        } else if chain_hash(ctx, keys, row, &row.prev_hash).as_slice() == row.hash.as_slice() {
            self.keyed_seen = true;
            None
        } else if unkeyed_hash(ctx, row, &row.prev_hash).as_slice() == row.hash.as_slice() {
            if self.keyed_seen {
                // Only someone without the key writes an unkeyed hash after keyed ones.
                let reason = format!(
                    "entry {} carries an unkeyed hash after keyed entries: it was rewritten without the tenant's key",
                    row.seq
                );
                Some((row.seq, reason))
            } else {
                self.unkeyed += 1;
                None
            }
        } else {
            Some((row.seq, changed()))
        };
        self.last = Some((row.seq, row.hash.clone()));
        problem
    }
}

impl Verifier {
    /// The result after the last check.
    pub fn verdict(&self, broken: Option<(i64, String)>) -> Verification {
        let (broken_seq, reason) = broken.map_or((None, None), |(seq, reason)| (Some(seq), Some(reason)));
        Verification {
            valid: broken_seq.is_none(),
            entries: self.entries,
            unkeyed_entries: self.unkeyed,
            head_seq: self.last.as_ref().map(|(seq, _)| *seq),
            head_hash: self.last.as_ref().map(|(_, hash)| hex(hash)),
            broken_seq,
            reason,
        }
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}
