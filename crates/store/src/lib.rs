//! The storage contract: one small trait every backend implements, the tenant context every call
//! carries, and the contract suite that proves a backend keeps the promises.
//!
//! Entities are stored as documents (the record's encoded body) next to a few projected columns
//! that queries need (time, links, blind-index keys). Backends therefore move rows of plain
//! values and never learn the shape of a lead; the typed API lives in [`records`].

pub mod audit;
pub mod codec;
pub mod contract;
pub mod doc;
pub mod jobs;
pub mod records;
pub mod sealed_file;
pub mod sql;
pub mod sweeps;
pub mod users;
pub mod vault;

use std::fmt;

use async_trait::async_trait;
use steward_domain::{AccessToken, ApiClient, ClientId, SecretHash, Site, SiteKey, Tenant, TenantId, Timestamp};

pub use audit::{Actor, ActorKind, AuditDraft, AuditEntry, AuditQuery, AuditRow, Target, Verification};
pub use doc::{
    ColumnType, Doc, DocKind, DocRow, DocWrite, ListQuery, Projection, TallyQuery, TallyRow, Value, WriteOp,
};
pub use jobs::{JobRecord, JobStatus};
pub use records::{Batch, Lookup, Record, StoreExt};
pub use sweeps::{SweepOverview, SweepRecord};
pub use users::{ConsoleSession, LockSchedule, Reservation, UserRecord, UserStore};
pub use vault::{MasterKey, TenantKeys, Vault, VaultError};

/// The tenant a store call acts for. Every query on tenant data is bounded by it; a row of
/// another tenant is indistinguishable from a row that does not exist.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TenantCtx {
    tenant_id: TenantId,
}

impl TenantCtx {
    /// Handed out by the auth layer (a token's tenant) and by operator commands (`--tenant`).
    pub fn new(tenant_id: TenantId) -> Self {
        Self { tenant_id }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}

impl fmt::Debug for TenantCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantCtx({})", self.tenant_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (e.g. a site's domain); names the field.
    #[error("{field} is already in use")]
    Conflict { field: &'static str },
    /// A row refers to something that does not exist for this tenant.
    #[error("{field} does not refer to an existing record")]
    MissingReference { field: &'static str },
    /// A stored body could not be decoded: data corruption or a bug, never user input.
    #[error("stored record could not be read: {0}")]
    Corrupt(String),
    /// The tenant's data key is destroyed (crypto-shredded) or cannot be unwrapped.
    #[error("{0}")]
    Key(#[from] VaultError),
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// [`Store::scan_docs`] by paging through [`Store::list_docs`] in id order.
pub async fn scan_by_pages<S: Store + ?Sized>(
    store: &S,
    ctx: &TenantCtx,
    kind: DocKind,
    query: ListQuery,
    pages: tokio::sync::mpsc::Sender<Vec<Doc>>,
) -> StoreResult<()> {
    let mut query = ListQuery { after: None, limit: doc::MAX_PAGE, ..query };
    loop {
        let page = store.list_docs(ctx, kind, &query).await?;
        let full = page.len() == doc::MAX_PAGE as usize;
        query.after = page.last().map(|doc| doc.id);
        // A closed channel means the reader stopped: that is its business, not an error here.
        if page.is_empty() || pages.send(page).await.is_err() || !full {
            return Ok(());
        }
    }
}

/// What every backend provides. Document methods take a [`DocKind`] and rows of plain values;
/// use the typed methods of [`StoreExt`] instead of calling them directly.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The tenant data keys that seal this store's records.
    fn vault(&self) -> &Vault;

    /// Console users and their sessions (see [`users`]).
    fn users(&self) -> &dyn UserStore;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> StoreResult<()>;

    /// Makes the bytes of rows deleted so far unreadable in the database's own files, where the
    /// engine allows it without blocking others; called after an erasure and a retention sweep.
    /// SQLite deletes with `secure_delete` (freed cells and pages are zeroed) and this truncates
    /// the write-ahead log, whose older frames still hold the pages as they were. PostgreSQL
    /// keeps dead row versions until (auto)vacuum reuses their space; see the README.
    async fn purge_deleted(&self) -> StoreResult<()> {
        Ok(())
    }

    // Operator-level: tenants are the one thing not inside a tenant.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Saves a tenant's name and settings; false when there is no such tenant.
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<bool>;

    /// Erases the tenant: every row of every table with a `tenant_id` column (read from the
    /// schema, so a table added later is included without a change here) and then its `tenants`
    /// row, in one transaction. Answers the rows removed per table (`tenants` included), counted
    /// before any delete so that rows going by a foreign key's cascade are counted in their own
    /// table. The tenant's key in the vault is not touched: see [`Vault::destroy`].
    async fn erase_tenant(&self, ctx: &TenantCtx) -> StoreResult<std::collections::BTreeMap<String, u64>>;

    async fn add_site(&self, ctx: &TenantCtx, site: &Site) -> StoreResult<()>;
    async fn list_sites(&self, ctx: &TenantCtx) -> StoreResult<Vec<Site>>;
    /// The public collection endpoint knows only the key; the answer names the tenant.
    async fn find_site_by_key(&self, key: &SiteKey) -> StoreResult<Option<Site>>;

    async fn create_client(&self, ctx: &TenantCtx, client: &ApiClient) -> StoreResult<()>;
    /// Token requests name the client, which names its tenant.
    async fn find_client(&self, id: ClientId) -> StoreResult<Option<ApiClient>>;
    async fn list_clients(&self, ctx: &TenantCtx) -> StoreResult<Vec<ApiClient>>;
    /// Replaces the secret hash of a client of this tenant and, with `revoke_tokens`, deletes
    /// every token it holds in the same transaction. `None` when the tenant has no such client,
    /// otherwise how many tokens were revoked.
    async fn rotate_client_secret(
        &self,
        ctx: &TenantCtx,
        id: ClientId,
        secret_hash: &SecretHash,
        revoke_tokens: bool,
    ) -> StoreResult<Option<u64>>;
    /// Deletes a client of this tenant with every token it holds: `None` when the tenant has no
    /// such client, otherwise how many tokens went with it.
    async fn delete_client(&self, ctx: &TenantCtx, id: ClientId) -> StoreResult<Option<u64>>;

    async fn store_token(&self, token: &AccessToken) -> StoreResult<()>;
    async fn find_token(&self, hash: &SecretHash) -> StoreResult<Option<AccessToken>>;
    /// Revokes a token of `client`; false when it holds no such token.
    async fn delete_token(&self, hash: &SecretHash, client: ClientId) -> StoreResult<bool>;

    async fn insert_docs(&self, ctx: &TenantCtx, kind: DocKind, rows: &[DocRow]) -> StoreResult<()>;
    async fn get_doc(&self, ctx: &TenantCtx, kind: DocKind, id: uuid::Uuid) -> StoreResult<Option<Doc>>;
    /// Replaces a stored document; false when no such row exists for this tenant.
    async fn update_doc(&self, ctx: &TenantCtx, kind: DocKind, row: &DocRow) -> StoreResult<bool>;
    async fn delete_doc(&self, ctx: &TenantCtx, kind: DocKind, id: uuid::Uuid) -> StoreResult<bool>;
    /// Rows in ascending id order (ids are time-ordered), after the query's cursor.
    async fn list_docs(&self, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> StoreResult<Vec<Doc>>;
    async fn count_docs(&self, ctx: &TenantCtx, kind: DocKind) -> StoreResult<u64>;
    /// Deletes up to `query.limit` (at most [`doc::MAX_DELETE`]) rows matching the query's
    /// filters and cursor, and says how many: retention sweeps call it until it returns less
    /// than the limit, so no statement holds more than one batch of rows.
    async fn delete_matching(&self, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> StoreResult<u64>;
    /// Applies every write in one transaction, in order: all of them or none. An update or
    /// delete of a row that does not exist (for its tenant) fails the whole batch with
    /// `MissingReference { field: "id" }`. Consecutive inserts of one tenant and kind travel
    /// in multi-row statements.
    async fn write_docs(&self, writes: &[DocWrite]) -> StoreResult<()>;
    /// [`Store::write_docs`] and the audit entries that record them in one transaction: all
    /// or nothing. The entries are chained, in order, to the newest one read inside the
    /// transaction; when another entry took that number first, the whole transaction is tried
    /// again.
    async fn write_docs_audited(
        &self,
        writes: &[DocWrite],
        ctx: &TenantCtx,
        drafts: &[AuditDraft],
    ) -> StoreResult<Vec<AuditEntry>>;
    /// Every row matching the query's filters (its cursor and limit aside) in id order, sent in
    /// pages of up to [`MAX_PAGE`] until the end or until `pages` closes: the bulk read of
    /// exports. The default pages through [`Store::list_docs`]; a backend with a faster way
    /// (one consistent read without per-page queries) overrides it.
    async fn scan_docs(
        &self,
        ctx: &TenantCtx,
        kind: DocKind,
        query: ListQuery,
        pages: tokio::sync::mpsc::Sender<Vec<Doc>>,
    ) -> StoreResult<()> {
        scan_by_pages(self, ctx, kind, query, pages).await
    }
    /// Rows matching the query's filters (its cursor and limit aside) and about how many bytes
    /// they store (see [`sql::measure_docs`]): what an export of them would roughly weigh.
    async fn measure_docs(&self, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> StoreResult<(u64, u64)>;

    /// Counts rows per day, group and person in the database (see [`TallyQuery`]): what reports
    /// need from projected columns, without reading a body. Rows in no particular order.
    async fn tally_docs(&self, ctx: &TenantCtx, kind: DocKind, query: &TallyQuery) -> StoreResult<Vec<TallyRow>>;
    /// Saves projected columns worked out from bodies as read ([`Projection`]), in one
    /// transaction; a row whose body changed since (or that is gone) is left as it is. Answers
    /// how many rows were set.
    async fn project_docs(&self, ctx: &TenantCtx, kind: DocKind, projections: &[Projection]) -> StoreResult<u64>;

    /// Appends an entry to the tenant's audit log; `Conflict` when its `seq` is taken (another
    /// entry was appended first: build the next one again). Entries are never changed.
    async fn insert_audit(&self, ctx: &TenantCtx, row: &AuditRow) -> StoreResult<()>;
    /// Entries in ascending `seq` order after `query.after_seq`, filtered by time, action and
    /// actor kind; `newest` asks for the last matching entry alone.
    async fn list_audit(&self, ctx: &TenantCtx, query: &AuditQuery, newest: bool) -> StoreResult<Vec<AuditRow>>;

    /// The salt of cookieless visitor ids for `day` (days since 1970-01-01, UTC): the stored one,
    /// or `candidate`, stored now when the day has none yet, so every node uses the same one.
    /// Salts of days before `day - 1` are deleted: after that no id can be linked to an address.
    async fn daily_salt(&self, day: i64, candidate: [u8; 32]) -> StoreResult<[u8; 32]>;

    /// Queues a job of this tenant (its `status` is stored as given, normally queued).
    async fn create_job(&self, ctx: &TenantCtx, job: &JobRecord) -> StoreResult<()>;
    async fn get_job(&self, ctx: &TenantCtx, id: uuid::Uuid) -> StoreResult<Option<JobRecord>>;
    /// Workers serve every tenant: claims the oldest queued job of `kind`, or a running one
    /// whose lease ended before `now`, for `owner` until `lease_until`. Two workers never get
    /// the same job.
    async fn claim_job(
        &self,
        kind: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<JobRecord>>;
    /// Saves status and data while `owner` still holds the lease, renewing it; false when the
    /// lease was lost (another worker took the job over).
    async fn save_job(&self, job: &JobRecord, owner: &str, lease_until: Timestamp) -> StoreResult<bool>;

    /// Keeps `record` as its tenant's last sweep, unless a sweep that finished later is already
    /// kept (two processes sweeping at once: the later end wins).
    async fn save_sweep(&self, record: &SweepRecord) -> StoreResult<()>;
    /// The tenant's last sweep, by whichever process ran it.
    async fn last_sweep(&self, ctx: &TenantCtx) -> StoreResult<Option<SweepRecord>>;
    /// Every tenant's last sweep at a glance: when the latest ended, and which failed.
    async fn sweep_overview(&self) -> StoreResult<SweepOverview>;
}
