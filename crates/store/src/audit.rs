//! The tenant's audit log: append-only, each entry chained to the one before by SHA-256.
//!
//! An entry is stored as plain columns that filters need (sequence number, time, action, actor)
//! and a sealed body (target, detail, network), which may name records or hold before-values of
//! a rectification and so is personal data. The hash covers the stored bytes of every column,
//! sealed body included, so the chain is verified without opening any body: a changed byte in
//! any column, a removed entry in the middle or a reordering is found and named by its number.
//!
//! `hash(n) = SHA-256("steward-audit-v1" ‖ tenant ‖ seq ‖ id ‖ at ‖ action ‖ actor kind ‖
//! actor id ‖ body ‖ hash(n − 1))`, variable-length parts prefixed with their length; the first
//! entry chains to 32 zero bytes.

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

/// An entry as read: its body opened.
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

/// The hash of a row's stored bytes chained to `prev`.
pub fn chain_hash(ctx: &TenantCtx, row: &AuditRow, prev: &[u8]) -> [u8; 32] {
    fn part(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    hasher.update(b"steward-audit-v1");
    hasher.update(ctx.tenant_id().as_uuid().as_bytes());
    hasher.update(row.seq.to_be_bytes());
    hasher.update(row.id.as_bytes());
    hasher.update(row.at.unix_micros().to_be_bytes());
    part(&mut hasher, row.action.as_bytes());
    part(&mut hasher, row.actor_kind.as_bytes());
    part(&mut hasher, row.actor_id.as_deref().unwrap_or_default().as_bytes());
    hasher.update([u8::from(row.actor_id.is_some())]);
    part(&mut hasher, &row.body);
    part(&mut hasher, prev);
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
    row.hash = chain_hash(ctx, &row, &row.prev_hash).to_vec();
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
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks rows in sequence order, continuing from `state` (the previous page's last row).
#[derive(Debug)]
pub struct Verifier {
    pub last: Option<(i64, Vec<u8>)>,
    pub entries: u64,
}

impl Verifier {
    pub fn new() -> Self {
        Self { last: None, entries: 0 }
    }

    /// The first problem of this row, if any: the number of the entry at fault and why.
    pub fn check(&mut self, ctx: &TenantCtx, row: &AuditRow) -> Option<(i64, String)> {
        let (expected_seq, expected_prev) = match &self.last {
            Some((seq, hash)) => (seq + 1, hash.clone()),
            None => (1, GENESIS.to_vec()),
        };
        self.entries += 1;
        let problem = if row.seq != expected_seq {
            let reason =
                format!("entry {expected_seq} is missing: the entry after {} is {}", expected_seq - 1, row.seq);
            Some((expected_seq, reason))
        } else if row.prev_hash != expected_prev {
            Some((row.seq, format!("entry {} does not chain to the entry before it", row.seq)))
        } else if chain_hash(ctx, row, &row.prev_hash).as_slice() != row.hash.as_slice() {
            let reason =
                format!("entry {} was changed after it was written: its hash does not match its content", row.seq);
            Some((row.seq, reason))
        } else {
            None
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
