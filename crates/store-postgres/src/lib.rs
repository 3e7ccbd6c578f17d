//! The PostgreSQL backend, for deployments that outgrow one machine: typed columns (uuid,
//! timestamptz), the same tables and migration versions as SQLite.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use steward_domain::{
    AccessToken, ApiClient, ClientId, Scopes, SecretHash, Site, SiteKey, Tenant, TenantId, Timestamp,
    tenant::{CollectionSettings, Domain},
};
use steward_store::sql::{self, Dialect, Statement};
use steward_store::{
    AuditDraft, AuditEntry, AuditQuery, AuditRow, ColumnType, Doc, DocKind, DocRow, DocWrite, JobRecord, JobStatus,
    ListQuery, Projection, Store, StoreError, StoreResult, SweepOverview, SweepRecord, TallyQuery, TallyRow, TenantCtx,
    Value, Vault,
};
use time::OffsetDateTime;
use uuid::Uuid;

mod users;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    vault: Arc<Vault>,
}

impl PgStore {
    /// Connects to a `postgres://` URL and migrates the database.
    pub async fn open(url: &str, vault: Arc<Vault>) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::backend)?;
        Self::open_with(options, None, vault).await
    }

    /// Connects with every table inside `schema` (created if missing): tests get an isolated,
    /// fresh database this way without the cost of `CREATE DATABASE`.
    pub async fn open_in_schema(url: &str, schema: &str, vault: Arc<Vault>) -> StoreResult<Self> {
        if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Corrupt(format!("bad schema name {schema:?}")));
        }
        let options: PgConnectOptions = url.parse().map_err(StoreError::backend)?;
        Self::open_with(options, Some(schema), vault).await
    }

    async fn open_with(options: PgConnectOptions, schema: Option<&str>, vault: Arc<Vault>) -> StoreResult<Self> {
        let options = match schema {
            Some(schema) => {
                let setup = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await;
                let setup = setup.map_err(StoreError::backend)?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
                    .execute(&setup)
                    .await
                    .map_err(StoreError::backend)?;
                setup.close().await;
                options.options([("search_path", schema)])
            }
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::backend)?;
        Ok(Self { pool, vault })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn execute(&self, statement: Statement) -> StoreResult<u64> {
        let result = bind(&statement).execute(&self.pool).await.map_err(map_error("id"))?;
        Ok(result.rows_affected())
    }

    async fn fetch_docs(&self, statement: Statement) -> StoreResult<Vec<Doc>> {
        let rows = bind(&statement).fetch_all(&self.pool).await.map_err(StoreError::backend)?;
        rows.iter().map(read_doc).collect()
    }
}

fn bind(statement: &Statement) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    statement.params.iter().fold(sqlx::query(sqlx::AssertSqlSafe(statement.sql.as_str())), |query, value| match value {
        Value::Null | Value::NullOf(ColumnType::Text) => query.bind(None::<String>),
        Value::NullOf(ColumnType::Int) => query.bind(None::<i64>),
        Value::NullOf(ColumnType::Bytes) => query.bind(None::<Vec<u8>>),
        Value::NullOf(ColumnType::Uuid) => query.bind(None::<Uuid>),
        Value::NullOf(ColumnType::Time) => query.bind(None::<OffsetDateTime>),
        Value::Int(n) => query.bind(*n),
        Value::Text(text) => query.bind(text.as_str()),
        Value::Bytes(bytes) => query.bind(bytes.as_slice()),
        Value::Uuid(uuid) => query.bind(*uuid),
        Value::Time(at) => query.bind(at.as_datetime()),
    })
}

fn uuid(row: &PgRow, column: &str) -> StoreResult<Uuid> {
    row.try_get(column).map_err(StoreError::backend)
}

fn time(row: &PgRow, column: &str) -> StoreResult<Timestamp> {
    let at: OffsetDateTime = row.try_get(column).map_err(StoreError::backend)?;
    Ok(Timestamp::from_datetime(at))
}

fn text(row: &PgRow, column: &str) -> StoreResult<String> {
    row.try_get(column).map_err(StoreError::backend)
}

fn read_doc(row: &PgRow) -> StoreResult<Doc> {
    Ok(Doc {
        id: uuid(row, "id")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        body: row.try_get("body").map_err(StoreError::backend)?,
    })
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn read_tenant(row: &PgRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId::from_uuid(uuid(row, "id")?),
        name: text(row, "name")?,
        slug: text(row, "slug")?.try_into().map_err(corrupt)?,
        created_at: time(row, "created_at")?,
        settings: serde_json::from_str(&text(row, "settings")?).map_err(corrupt)?,
    })
}

fn read_site(row: &PgRow) -> StoreResult<Site> {
    Ok(Site {
        id: steward_domain::SiteId::from_uuid(uuid(row, "id")?),
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        domain: Domain::parse(&text(row, "domain")?).map_err(corrupt)?,
        site_key: SiteKey::parse(&text(row, "site_key")?).ok_or_else(|| corrupt("bad site key"))?,
        created_at: time(row, "created_at")?,
        collection: CollectionSettings {
            cookieless: row.try_get("cookieless").map_err(StoreError::backend)?,
            honour_gpc: row.try_get("honour_gpc").map_err(StoreError::backend)?,
        },
    })
}

fn hash(row: &PgRow, column: &str) -> StoreResult<SecretHash> {
    let bytes: &[u8] = row.try_get(column).map_err(StoreError::backend)?;
    bytes.try_into().map(SecretHash).map_err(corrupt)
}

fn read_client(row: &PgRow) -> StoreResult<ApiClient> {
    Ok(ApiClient {
        id: ClientId::from_uuid(uuid(row, "id")?),
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        name: text(row, "name")?,
        secret_hash: hash(row, "secret_hash")?,
        scopes: Scopes::parse(&text(row, "scopes")?).map_err(corrupt)?,
        created_at: time(row, "created_at")?,
    })
}

fn read_job(row: &PgRow) -> StoreResult<JobRecord> {
    let attempts: i32 = row.try_get("attempts").map_err(StoreError::backend)?;
    Ok(JobRecord {
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        id: uuid(row, "id")?,
        kind: text(row, "kind")?,
        status: JobStatus::parse(&text(row, "status")?).ok_or_else(|| corrupt("unknown job status"))?,
        created_at: time(row, "created_at")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        data: serde_json::from_str(&text(row, "data_text")?).map_err(corrupt)?,
    })
}

fn read_sweep(row: &PgRow) -> StoreResult<SweepRecord> {
    Ok(SweepRecord {
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        finished_at: time(row, "finished_at")?,
        failed: row.try_get("failed").map_err(StoreError::backend)?,
        report: serde_json::from_str(&text(row, "report_text")?).map_err(corrupt)?,
    })
}

fn read_token(row: &PgRow) -> StoreResult<AccessToken> {
    Ok(AccessToken {
        token_hash: hash(row, "token_hash")?,
        client_id: ClientId::from_uuid(uuid(row, "client_id")?),
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        scopes: Scopes::parse(&text(row, "scopes")?).map_err(corrupt)?,
        issued_at: time(row, "issued_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

/// Unique violations become a conflict on `field`; the rest are backend errors.
fn map_error(field: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { field },
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::MissingReference { field: "tenant_id" }
        }
        _ => StoreError::backend(error),
    }
}

impl PgStore {
    /// `writes` in one transaction, in order, and then, when `audit` is given, its entries chained
    /// to the newest one read inside the same transaction.
    async fn transact(
        &self,
        writes: &[DocWrite],
        audit: Option<(&TenantCtx, &[AuditDraft])>,
    ) -> StoreResult<Vec<AuditEntry>> {
        let keys = audit.map(|(ctx, _)| self.vault().keys(ctx.tenant_id())).transpose()?;
        // Two appends at once both build entry n; the second fails on the taken number and is
        // tried again, its writes with it, on top of the first.
        'attempt: for _ in 0..32 {
            let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
            let mut outcome = Ok(Vec::new());
            for (statement, must_change) in sql::write_docs(Dialect::Postgres, writes) {
                match bind(&statement).execute(&mut *tx).await {
                    Ok(result) if must_change && result.rows_affected() == 0 => {
                        outcome = Err(StoreError::MissingReference { field: "id" });
                    }
                    Ok(_) => continue,
                    Err(error) => outcome = Err(map_error("id")(error)),
                }
                break;
            }
            if let (Ok(entries), Some((ctx, drafts)), Some(keys)) = (&mut outcome, audit, &keys) {
                // After the writes: on SQLite they hold the write lock by now, so the newest
                // entry read here is the newest there is.
                let newest = sql::list_audit(Dialect::Postgres, ctx, &AuditQuery::default(), true);
                let last = match bind(&newest).fetch_optional(&mut *tx).await {
                    Ok(row) => row.as_ref().map(read_audit).transpose(),
                    Err(error) => Err(StoreError::backend(error)),
                };
                let mut appended = last.map(|last| steward_store::audit::chain(ctx, keys, last.as_ref(), drafts));
                if let Ok(rows) = &appended {
                    for row in rows {
                        let insert = sql::insert_audit(Dialect::Postgres, ctx, row);
                        match bind(&insert).execute(&mut *tx).await.map_err(map_error("seq")) {
                            Ok(_) => {}
                            Err(StoreError::Conflict { .. }) => {
                                let _ = tx.rollback().await;
                                continue 'attempt;
                            }
                            Err(error) => {
                                appended = Err(error);
                                break;
                            }
                        }
                    }
                }
                match appended.and_then(|rows| {
                    rows.iter()
                        .map(|row| steward_store::audit::open_row(ctx, keys, row))
                        .collect::<StoreResult<Vec<_>>>()
                }) {
                    Ok(opened) => *entries = opened,
                    Err(error) => outcome = Err(error),
                }
            }
            return match outcome {
                Ok(entries) => {
                    tx.commit().await.map_err(StoreError::backend)?;
                    Ok(entries)
                }
                Err(failure) => {
                    // Rolled back now, not when the pool next lends this connection: until then
                    // its locks would stall a retry of the same rows on another connection.
                    let _ = tx.rollback().await;
                    Err(failure)
                }
            };
        }
        Err(StoreError::Corrupt("the audit log stayed busy for 32 attempts; nothing was written".into()))
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn vault(&self) -> &Vault {
        &self.vault
    }

    fn users(&self) -> &dyn steward_store::UserStore {
        self
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let settings = serde_json::to_string(&tenant.settings).map_err(corrupt)?;
        sqlx::query("INSERT INTO tenants (id, name, slug, created_at, settings) VALUES ($1, $2, $3, $4, $5)")
            .bind(*tenant.id.as_uuid())
            .bind(&tenant.name)
            .bind(tenant.slug.as_str())
            .bind(tenant.created_at.as_datetime())
            .bind(settings)
            .execute(&self.pool)
            .await
            .map_err(map_error("id"))?;
        Ok(())
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(*id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_tenant).transpose()
    }

    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<bool> {
        let settings = serde_json::to_string(&tenant.settings).map_err(corrupt)?;
        let result = sqlx::query("UPDATE tenants SET name = $1, settings = $2 WHERE id = $3")
            .bind(&tenant.name)
            .bind(settings)
            .bind(*tenant.id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(read_tenant).collect()
    }

    async fn erase_tenant(&self, ctx: &TenantCtx) -> StoreResult<std::collections::BTreeMap<String, u64>> {
        let tenant = *ctx.tenant_id().as_uuid();
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.table_name::text FROM information_schema.columns c \
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.column_name = 'tenant_id' AND c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             ORDER BY 1",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        let mut counts = std::collections::BTreeMap::new();
        for table in &tables {
            // Names come from the schema itself, quoted as identifiers.
            let sql = format!("SELECT COUNT(*) FROM \"{}\" WHERE tenant_id = $1", table.replace('"', "\"\""));
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
            counts.insert(table.clone(), u64::try_from(count).unwrap_or(0));
        }
        for table in &tables {
            let sql = format!("DELETE FROM \"{}\" WHERE tenant_id = $1", table.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).execute(&mut *tx).await.map_err(StoreError::backend)?;
        }
        let deleted = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        counts.insert("tenants".to_string(), deleted.rows_affected());
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(counts)
    }

    async fn add_site(&self, ctx: &TenantCtx, site: &Site) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sites (tenant_id, id, domain, site_key, created_at, cookieless, honour_gpc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
            .bind(*ctx.tenant_id().as_uuid())
            .bind(*site.id.as_uuid())
            .bind(site.domain.as_str())
            .bind(site.site_key.as_str())
            .bind(site.created_at.as_datetime())
            .bind(site.collection.cookieless)
            .bind(site.collection.honour_gpc)
            .execute(&self.pool)
            .await
            .map_err(map_error("domain"))?;
        Ok(())
    }

    async fn list_sites(&self, ctx: &TenantCtx) -> StoreResult<Vec<Site>> {
        let rows = sqlx::query("SELECT * FROM sites WHERE tenant_id = $1 ORDER BY id")
            .bind(*ctx.tenant_id().as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(read_site).collect()
    }

    async fn find_site_by_key(&self, key: &SiteKey) -> StoreResult<Option<Site>> {
        let row = sqlx::query("SELECT * FROM sites WHERE site_key = $1")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_site).transpose()
    }

    async fn create_client(&self, ctx: &TenantCtx, client: &ApiClient) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_clients (id, tenant_id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(*client.id.as_uuid())
        .bind(*ctx.tenant_id().as_uuid())
        .bind(&client.name)
        .bind(client.secret_hash.0.as_slice())
        .bind(client.scopes.to_string())
        .bind(client.created_at.as_datetime())
        .execute(&self.pool)
        .await
        .map_err(map_error("id"))?;
        Ok(())
    }

    async fn find_client(&self, id: ClientId) -> StoreResult<Option<ApiClient>> {
        let row = sqlx::query("SELECT * FROM api_clients WHERE id = $1")
            .bind(*id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_client).transpose()
    }

    async fn list_clients(&self, ctx: &TenantCtx) -> StoreResult<Vec<ApiClient>> {
        let rows = sqlx::query("SELECT * FROM api_clients WHERE tenant_id = $1 ORDER BY id")
            .bind(*ctx.tenant_id().as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(read_client).collect()
    }

    async fn rotate_client_secret(
        &self,
        ctx: &TenantCtx,
        id: ClientId,
        secret_hash: &SecretHash,
        revoke_tokens: bool,
    ) -> StoreResult<Option<u64>> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let updated = sqlx::query("UPDATE api_clients SET secret_hash = $1 WHERE id = $2 AND tenant_id = $3")
            .bind(secret_hash.0.as_slice())
            .bind(*id.as_uuid())
            .bind(*ctx.tenant_id().as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let mut revoked = 0;
        if revoke_tokens {
            revoked = sqlx::query("DELETE FROM access_tokens WHERE client_id = $1 AND tenant_id = $2")
                .bind(*id.as_uuid())
                .bind(*ctx.tenant_id().as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?
                .rows_affected();
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(Some(revoked))
    }

    async fn delete_client(&self, ctx: &TenantCtx, id: ClientId) -> StoreResult<Option<u64>> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        // Tokens would go by the foreign key's cascade too; deleting them first counts them.
        let revoked = sqlx::query("DELETE FROM access_tokens WHERE client_id = $1 AND tenant_id = $2")
            .bind(*id.as_uuid())
            .bind(*ctx.tenant_id().as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        let deleted = sqlx::query("DELETE FROM api_clients WHERE id = $1 AND tenant_id = $2")
            .bind(*id.as_uuid())
            .bind(*ctx.tenant_id().as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        if deleted.rows_affected() == 0 {
            // Rolled back now: a dropped transaction rolls back only when the pool next lends its
            // connection, and until then holds its locks (a schema drop waited on it for ever).
            tx.rollback().await.map_err(StoreError::backend)?;
            return Ok(None);
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(Some(revoked))
    }

    async fn store_token(&self, token: &AccessToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, client_id, tenant_id, scopes, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.token_hash.0.as_slice())
        .bind(*token.client_id.as_uuid())
        .bind(*token.tenant_id.as_uuid())
        .bind(token.scopes.to_string())
        .bind(token.issued_at.as_datetime())
        .bind(token.expires_at.as_datetime())
        .execute(&self.pool)
        .await
        .map_err(map_error("token"))?;
        Ok(())
    }

    async fn find_token(&self, hash: &SecretHash) -> StoreResult<Option<AccessToken>> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_hash = $1")
            .bind(hash.0.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_token).transpose()
    }

    async fn delete_token(&self, hash: &SecretHash, client: ClientId) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1 AND client_id = $2")
            .bind(hash.0.as_slice())
            .bind(*client.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn insert_docs(&self, ctx: &TenantCtx, kind: DocKind, rows: &[DocRow]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        for chunk in rows.chunks(sql::rows_per_insert(kind)) {
            let statement = sql::insert_docs(Dialect::Postgres, ctx, kind, chunk);
            bind(&statement).execute(&mut *tx).await.map_err(map_error("id"))?;
        }
        tx.commit().await.map_err(StoreError::backend)
    }

    async fn write_docs(&self, writes: &[DocWrite]) -> StoreResult<()> {
        self.transact(writes, None).await.map(|_| ())
    }

    async fn write_docs_audited(
        &self,
        writes: &[DocWrite],
        ctx: &TenantCtx,
        drafts: &[AuditDraft],
    ) -> StoreResult<Vec<AuditEntry>> {
        if writes.is_empty() && drafts.len() == 1 {
            // Nothing to write with it: a plain append (on SQLite, a transaction that began by
            // reading could not take the write lock once another connection has written).
            return Ok(vec![steward_store::StoreExt::audit(self, ctx, &drafts[0]).await?]);
        }
        self.transact(writes, Some((ctx, drafts))).await
    }

    async fn get_doc(&self, ctx: &TenantCtx, kind: DocKind, id: Uuid) -> StoreResult<Option<Doc>> {
        Ok(self.fetch_docs(sql::get_doc(Dialect::Postgres, ctx, kind, id)).await?.pop())
    }

    async fn update_doc(&self, ctx: &TenantCtx, kind: DocKind, row: &DocRow) -> StoreResult<bool> {
        Ok(self.execute(sql::update_doc(Dialect::Postgres, ctx, kind, row)).await? > 0)
    }

    async fn delete_doc(&self, ctx: &TenantCtx, kind: DocKind, id: Uuid) -> StoreResult<bool> {
        Ok(self.execute(sql::delete_doc(Dialect::Postgres, ctx, kind, id)).await? > 0)
    }

    async fn list_docs(&self, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> StoreResult<Vec<Doc>> {
        self.fetch_docs(sql::list_docs(Dialect::Postgres, ctx, kind, query)?).await
    }

    async fn tally_docs(&self, ctx: &TenantCtx, kind: DocKind, query: &TallyQuery) -> StoreResult<Vec<TallyRow>> {
        let statement = sql::tally_docs(Dialect::Postgres, ctx, kind, query)?;
        let rows = bind(&statement).fetch_all(&self.pool).await.map_err(StoreError::backend)?;
        rows.iter()
            .map(|row| {
                let (n, total): (i64, i64) = (
                    row.try_get("n").map_err(StoreError::backend)?,
                    row.try_get("total").map_err(StoreError::backend)?,
                );
                Ok(TallyRow {
                    day: row.try_get("day").map_err(StoreError::backend)?,
                    group: row.try_get("grp").map_err(StoreError::backend)?,
                    person: uuid(row, "person")?,
                    rows: u64::try_from(n).unwrap_or(0),
                    sum: u64::try_from(total).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn project_docs(&self, ctx: &TenantCtx, kind: DocKind, projections: &[Projection]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let mut set = 0;
        for projection in projections {
            let statement = sql::project_doc(Dialect::Postgres, ctx, kind, projection);
            set += bind(&statement).execute(&mut *tx).await.map_err(StoreError::backend)?.rows_affected();
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(set)
    }

    async fn measure_docs(&self, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> StoreResult<(u64, u64)> {
        let statement = sql::measure_docs(Dialect::Postgres, ctx, kind, query)?;
        let row = bind(&statement).fetch_one(&self.pool).await.map_err(StoreError::backend)?;
        let (rows, bytes): (i64, i64) = (row.get(0), row.get(1));
        Ok((u64::try_from(rows).unwrap_or(0), u64::try_from(bytes).unwrap_or(0)))
    }

    async fn insert_audit(&self, ctx: &TenantCtx, row: &AuditRow) -> StoreResult<()> {
        let statement = sql::insert_audit(Dialect::Postgres, ctx, row);
        bind(&statement).execute(&self.pool).await.map_err(map_error("seq"))?;
        Ok(())
    }

    async fn list_audit(&self, ctx: &TenantCtx, query: &AuditQuery, newest: bool) -> StoreResult<Vec<AuditRow>> {
        let statement = sql::list_audit(Dialect::Postgres, ctx, query, newest);
        let rows = bind(&statement).fetch_all(&self.pool).await.map_err(StoreError::backend)?;
        rows.iter().map(read_audit).collect()
    }

    async fn daily_salt(&self, day: i64, candidate: [u8; 32]) -> StoreResult<[u8; 32]> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        sqlx::query("DELETE FROM collect_salts WHERE day < $1")
            .bind(i32::try_from(day - 1).unwrap_or(i32::MIN))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        sqlx::query("INSERT INTO collect_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
            .bind(i32::try_from(day).map_err(corrupt)?)
            .bind(candidate.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let salt: Vec<u8> = sqlx::query_scalar("SELECT salt FROM collect_salts WHERE day = $1")
            .bind(i32::try_from(day).map_err(corrupt)?)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        salt.try_into().map_err(|_| corrupt("a stored salt is not 32 bytes"))
    }

    async fn create_job(&self, ctx: &TenantCtx, job: &JobRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO jobs (tenant_id, id, kind, status, created_at, attempts, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        )
        .bind(*ctx.tenant_id().as_uuid())
        .bind(job.id)
        .bind(&job.kind)
        .bind(job.status.as_str())
        .bind(job.created_at.as_datetime())
        .bind(i32::try_from(job.attempts).unwrap_or(i32::MAX))
        .bind(job.data.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_error("id"))?;
        Ok(())
    }

    async fn get_job(&self, ctx: &TenantCtx, id: Uuid) -> StoreResult<Option<JobRecord>> {
        let row = sqlx::query("SELECT *, data::text AS data_text FROM jobs WHERE tenant_id = $1 AND id = $2")
            .bind(*ctx.tenant_id().as_uuid())
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_job).transpose()
    }

    async fn claim_job(
        &self,
        kind: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<JobRecord>> {
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE (tenant_id, id) = (SELECT tenant_id, id FROM jobs WHERE kind = $3 \
                 AND (status = 'queued' OR (status = 'running' AND lease_until < $4)) \
                 ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING *, data::text AS data_text",
        )
        .bind(owner)
        .bind(lease_until.as_datetime())
        .bind(kind)
        .bind(now.as_datetime())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        row.as_ref().map(read_job).transpose()
    }

    async fn save_job(&self, job: &JobRecord, owner: &str, lease_until: Timestamp) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE jobs SET status = $1, data = $2::jsonb, lease_until = $3 \
             WHERE tenant_id = $4 AND id = $5 AND lease_owner = $6",
        )
        .bind(job.status.as_str())
        .bind(job.data.to_string())
        .bind(lease_until.as_datetime())
        .bind(*job.tenant_id.as_uuid())
        .bind(job.id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn save_sweep(&self, record: &SweepRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO retention_sweeps (tenant_id, finished_at, failed, report) VALUES ($1, $2, $3, $4::jsonb) \
             ON CONFLICT (tenant_id) DO UPDATE SET finished_at = excluded.finished_at, failed = excluded.failed, \
             report = excluded.report WHERE excluded.finished_at >= retention_sweeps.finished_at",
        )
        .bind(*record.tenant_id.as_uuid())
        .bind(record.finished_at.as_datetime())
        .bind(record.failed)
        .bind(record.report.to_string())
        .execute(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn last_sweep(&self, ctx: &TenantCtx) -> StoreResult<Option<SweepRecord>> {
        let row = sqlx::query("SELECT *, report::text AS report_text FROM retention_sweeps WHERE tenant_id = $1")
            .bind(*ctx.tenant_id().as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_sweep).transpose()
    }

    async fn sweep_overview(&self) -> StoreResult<SweepOverview> {
        let last: Option<OffsetDateTime> = sqlx::query_scalar("SELECT MAX(finished_at) FROM retention_sweeps")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        let rows = sqlx::query(
            "SELECT *, report::text AS report_text FROM retention_sweeps WHERE failed ORDER BY finished_at LIMIT $1",
        )
        .bind(i64::from(steward_store::sweeps::MAX_FAILED))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(SweepOverview {
            last_finished_at: last.map(Timestamp::from_datetime),
            failed: rows.iter().map(read_sweep).collect::<StoreResult<_>>()?,
        })
    }

    async fn delete_matching(&self, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> StoreResult<u64> {
        self.execute(sql::delete_matching(Dialect::Postgres, ctx, kind, query)?).await
    }

    async fn count_docs(&self, ctx: &TenantCtx, kind: DocKind) -> StoreResult<u64> {
        let statement = sql::count_docs(Dialect::Postgres, ctx, kind);
        let count: i64 = bind(&statement).fetch_one(&self.pool).await.map_err(StoreError::backend)?.get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

fn read_audit(row: &PgRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        seq: row.try_get("seq").map_err(StoreError::backend)?,
        id: uuid(row, "id")?,
        at: time(row, "at")?,
        action: text(row, "action")?,
        actor_kind: text(row, "actor_kind")?,
        actor_id: row.try_get("actor_id").map_err(StoreError::backend)?,
        body: row.try_get("body").map_err(StoreError::backend)?,
        prev_hash: row.try_get("prev_hash").map_err(StoreError::backend)?,
        hash: row.try_get("hash").map_err(StoreError::backend)?,
    })
}
