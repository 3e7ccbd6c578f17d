//! Documents as backends see them: a body, timestamps, and projected columns per kind.

use steward_domain::Timestamp;
use uuid::Uuid;

use crate::TenantCtx;

/// A projected column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A NULL for a column of a known type. PostgreSQL fixes a prepared statement's parameter
    /// types at its first use, so a NULL sent as text would make a later bytea value fail.
    NullOf(ColumnType),
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Uuid(Uuid),
    Time(Timestamp),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

impl From<Uuid> for Value {
    fn from(value: Uuid) -> Self {
        Value::Uuid(value)
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_string())
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Value::Bytes(value)
    }
}

impl From<Timestamp> for Value {
    fn from(value: Timestamp) -> Self {
        Value::Time(value)
    }
}

/// The type of a projected column, so backends can declare and read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Text,
    Bytes,
    Uuid,
    Time,
}

/// The stored entity kinds, each one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Lead,
    Organization,
    VisitorProfile,
    Session,
    Event,
    /// Data-subject requests: who asked for what, when it is due, what was done.
    SubjectRequest,
    /// Records (or a whole tenant) that retention must keep for now.
    LegalHold,
    /// Keyed hashes of erased people's identifiers: what arrives for them later is dropped.
    ErasureEntry,
    /// Data Act switching requests: periods, timeline, archive.
    SwitchingRequest,
}

impl DocKind {
    pub const ALL: [DocKind; 9] = [
        Self::Lead,
        Self::Organization,
        Self::VisitorProfile,
        Self::Session,
        Self::Event,
        Self::SubjectRequest,
        Self::LegalHold,
        Self::ErasureEntry,
        Self::SwitchingRequest,
    ];

    pub fn table(&self) -> &'static str {
        match self {
            Self::Lead => "leads",
            Self::Organization => "organizations",
            Self::VisitorProfile => "visitor_profiles",
            Self::Session => "sessions",
            Self::Event => "events",
            Self::SubjectRequest => "subject_requests",
            Self::LegalHold => "legal_holds",
            Self::ErasureEntry => "erasure_ledger",
            Self::SwitchingRequest => "switching_requests",
        }
    }

    /// Projected columns, in the order [`DocRow::columns`] holds their values. Migrations of
    /// every backend declare exactly these (a contract test checks).
    pub fn columns(&self) -> &'static [(&'static str, ColumnType)] {
        use ColumnType::*;
        match self {
            Self::Lead => &[
                ("visitor_profile_id", Uuid),
                ("organization_id", Uuid),
                ("status", Text),
                ("email_key", Bytes),
                ("phone_key", Bytes),
                ("contact_key", Bytes),
                ("restricted", Int),
                ("referrer_type", Text),
            ],
            Self::Organization => &[("domain", Text), ("contact_keys", Text)],
            Self::VisitorProfile => &[("organization_id", Uuid), ("contact_key", Bytes), ("restricted", Int)],
            Self::Session => &[("visitor_profile_id", Uuid), ("converted", Int)],
            Self::Event => &[("session_id", Uuid), ("visitor_profile_id", Uuid), ("position", Int)],
            Self::SubjectRequest => &[
                ("status", Text),
                ("email_key", Bytes),
                ("phone_key", Bytes),
                ("contact_key", Bytes),
                ("visitor_key", Bytes),
            ],
            Self::LegalHold => &[("record_id", Uuid)],
            Self::ErasureEntry => &[("subject_key", Bytes)],
            Self::SwitchingRequest => &[("status", Text)],
        }
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.columns().iter().any(|(column, _)| *column == name)
    }
}

/// One stored entity as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRow {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Values of [`DocKind::columns`], in that order.
    pub columns: Vec<Value>,
    /// The encoded record (see [`crate::codec`]).
    pub body: Vec<u8>,
}

/// One stored entity as read back: the projected columns stay in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub body: Vec<u8>,
}

/// One change of a [`crate::Store::write_docs`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocWrite {
    pub ctx: TenantCtx,
    pub kind: DocKind,
    pub op: WriteOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Insert(DocRow),
    /// Replaces the row with this id, its times included; the row must exist.
    Update(DocRow),
    /// The row must exist.
    Delete(Uuid),
}

pub const MAX_PAGE: u32 = 1_000;
/// How many rows one [`crate::Store::delete_matching`] removes at most.
pub const MAX_DELETE: u32 = 50_000;

/// Which rows a list returns: a window of time, equality on projected columns, after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub after: Option<Uuid>,
    pub limit: u32,
    pub created_from: Option<Timestamp>,
    /// Exclusive.
    pub created_to: Option<Timestamp>,
    pub updated_since: Option<Timestamp>,
    /// Exclusive.
    pub updated_before: Option<Timestamp>,
    pub equals: Vec<(&'static str, Value)>,
    /// A column (a projected one, or `id`) that must hold one of these values.
    pub any_of: Option<(&'static str, Vec<Value>)>,
    /// A column that must hold none of these values (a NULL passes).
    pub none_of: Option<(&'static str, Vec<Value>)>,
    /// A text column of space-separated words that must hold at least one of these words: the
    /// keyed hashes of every person an organization names ([`crate::records::contact_keys`]).
    pub any_word: Option<(&'static str, Vec<String>)>,
    /// A projected column that must be NULL: rows stored before the column was added (or by a
    /// node that did not know it yet), whose value is still to be projected from the body.
    pub missing: Option<&'static str>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            after: None,
            limit: 100,
            created_from: None,
            created_to: None,
            updated_since: None,
            updated_before: None,
            equals: Vec::new(),
            any_of: None,
            none_of: None,
            any_word: None,
            missing: None,
        }
    }
}

impl ListQuery {
    /// The limit within 1 to [`MAX_PAGE`].
    pub fn bounded_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// Rows of one kind counted by the database, without opening a body: those matching `window`'s
/// filters (not its cursor or limit), per UTC day of `created_at`, per value of the text column
/// `group`, and per person: the value of `person`, or the row's id where that is NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyQuery {
    pub window: ListQuery,
    pub group: Option<&'static str>,
    /// A projected uuid column naming who the row is about (a visitor profile).
    pub person: &'static str,
    /// A projected integer column summed per group (e.g. `converted`).
    pub sum: Option<&'static str>,
}

/// One group of a [`TallyQuery`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TallyRow {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub group: Option<String>,
    pub person: Uuid,
    pub rows: u64,
    pub sum: u64,
}

/// Projected columns worked out from a body as it was read: saved only while the row still
/// holds that body, so a write in between is never overwritten with older values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    pub id: Uuid,
    pub body: Vec<u8>,
    /// Values of [`DocKind::columns`], in that order.
    pub columns: Vec<Value>,
}
