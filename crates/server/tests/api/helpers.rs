//! `spawn_app()`: the real application on a free port over a fresh database, SQLite by default
//! or PostgreSQL when `STEWARD_TEST_BACKEND=postgres` (with `STEWARD_TEST_POSTGRES_URL`).

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use steward_domain::{Scopes, Timestamp};
use steward_server::{AppState, Settings, admin};
use steward_store::{MasterKey, Store, TenantCtx, Vault};

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    _guard: Guard,
    _files: tempfile::TempDir,
}

#[allow(dead_code)]
enum Guard {
    Dir(tempfile::TempDir),
    Schema(String, String, tempfile::TempDir),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Schema(url, schema, _) = self {
            let (url, schema) = (url.clone(), schema.clone());
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn backend() -> &'static str {
    match std::env::var("STEWARD_TEST_BACKEND").as_deref() {
        Ok("postgres") => "postgres",
        _ => "sqlite",
    }
}

async fn fresh_store() -> (Arc<dyn Store>, Guard) {
    let keys = tempfile::tempdir().expect("key folder");
    let vault = Arc::new(Vault::open(keys.path(), MasterKey::generate()).expect("vault"));
    if backend() == "postgres" {
        let url = std::env::var("STEWARD_TEST_POSTGRES_URL")
            .expect("STEWARD_TEST_BACKEND=postgres needs STEWARD_TEST_POSTGRES_URL");
        let schema = format!("http_{}", uuid::Uuid::now_v7().simple());
        let store =
            steward_store_postgres::PgStore::open_in_schema(&url, &schema, vault).await.expect("PostgreSQL store");
        (Arc::new(store), Guard::Schema(url, schema, keys))
    } else {
        let path = keys.path().join("steward.db");
        let store = steward_store_sqlite::SqliteStore::open_file(&path, vault).await.expect("SQLite");
        (Arc::new(store), Guard::Dir(keys))
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(mut settings: Settings) -> TestApp {
    // Server logs go to the test's captured output, so a failing test shows the cause of a 500.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn,steward=info").try_init();
    let (store, guard) = fresh_store().await;
    // Export files of this test stay in a folder of its own, removed with it.
    let files = tempfile::tempdir().expect("files folder");
    if settings.exports.files_dir.is_empty() {
        settings.exports.files_dir = files.path().display().to_string();
    }
    // A clock the tests move by hand: expiry, time filters and rate limits without sleeping.
    let state = AppState::with_clock(store.clone(), settings, steward_server::Clock::fixed(Timestamp::now()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let served = state.clone();
    tokio::spawn(async move {
        steward_server::serve(listener, served, std::future::pending()).await.expect("serve");
    });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    TestApp { address, http, store, state, _guard: guard, _files: files }
}

#[allow(dead_code)]
impl TestApp {
    /// Runs SQL on the database directly, as someone with access to the file or server would:
    /// for tests that tamper with what is stored.
    pub async fn raw_sql(&self, sql: &str) -> Result<(), sqlx::Error> {
        match &self._guard {
            Guard::Dir(dir) => {
                let url = format!("sqlite://{}", dir.path().join("steward.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await?;
                let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await;
                pool.close().await;
                result.map(drop)
            }
            Guard::Schema(url, schema, _) => {
                let pool = sqlx::PgPool::connect(url).await?;
                let mut connection = pool.acquire().await?;
                let path = format!("SET search_path TO {schema}");
                sqlx::query(sqlx::AssertSqlSafe(path)).execute(&mut *connection).await?;
                sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *connection).await.map(drop)
            }
        }
    }

    /// Every column of an id type (BLOB on SQLite, uuid on PostgreSQL) in every table of the
    /// schema, as (table, column, rows holding `id` there): proof that an erasure left nothing,
    /// read from the database itself rather than through the store.
    pub async fn rows_holding(&self, id: uuid::Uuid) -> Vec<(String, String, i64)> {
        let mut found = Vec::new();
        match &self._guard {
            Guard::Dir(dir) => {
                let url = format!("sqlite://{}", dir.path().join("steward.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for table in tables {
                    let columns: Vec<(String, String)> = sqlx::query_as("SELECT name, type FROM pragma_table_info(?)")
                        .bind(&table)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                    for (column, _) in columns.into_iter().filter(|(_, kind)| kind.eq_ignore_ascii_case("BLOB")) {
                        let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" = ?");
                        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                            .bind(id.as_bytes().as_slice())
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                        found.push((table.clone(), column, count));
                    }
                }
                pool.close().await;
            }
            Guard::Schema(url, schema, _) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let columns: Vec<(String, String)> = sqlx::query_as(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns \
                     WHERE table_schema = $1 AND data_type = 'uuid'",
                )
                .bind(schema)
                .fetch_all(&pool)
                .await
                .unwrap();
                for (table, column) in columns {
                    let sql = format!("SELECT COUNT(*) FROM \"{schema}\".\"{table}\" WHERE \"{column}\" = $1");
                    let count: i64 =
                        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&pool).await.unwrap();
                    found.push((table, column, count));
                }
                pool.close().await;
            }
        }
        found
    }

    /// The SQLite database's own files (the database and its write-ahead log) as bytes, for
    /// tests that prove nothing lingers in them; `None` on PostgreSQL.
    pub fn database_bytes(&self) -> Option<Vec<(String, Vec<u8>)>> {
        match &self._guard {
            Guard::Dir(dir) => Some(
                ["steward.db", "steward.db-wal", "steward.db-journal"]
                    .iter()
                    .filter_map(|name| std::fs::read(dir.path().join(name)).ok().map(|bytes| (name.to_string(), bytes)))
                    .collect(),
            ),
            Guard::Schema(..) => None,
        }
    }

    /// Bytes as an SQL literal of this backend.
    pub fn bytes_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match &self._guard {
            Guard::Dir(_) => format!("X'{hex}'"),
            Guard::Schema(..) => format!("'\\x{hex}'::bytea"),
        }
    }

    /// A tenant id as an SQL literal of this backend.
    pub fn tenant_literal(&self, ctx: &TenantCtx) -> String {
        let id = ctx.tenant_id().into_uuid();
        match &self._guard {
            Guard::Dir(_) => format!("X'{}'", id.simple()),
            Guard::Schema(..) => format!("'{id}'::uuid"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn tenant(&self, name: &str) -> TenantCtx {
        let tenant = admin::create_tenant(self.store.as_ref(), name, Timestamp::now()).await.expect("tenant");
        TenantCtx::new(tenant.id)
    }

    /// A client of `ctx` holding `scopes` (space-separated), as (client_id, secret).
    pub async fn client(&self, ctx: &TenantCtx, scopes: &str) -> (String, String) {
        let scopes = Scopes::parse(scopes).expect("scopes");
        let (client, secret) =
            admin::create_client(self.store.as_ref(), ctx, "test", scopes, Timestamp::now()).await.expect("client");
        (client.id.to_string(), secret)
    }

    /// A bearer token obtained through `/oauth/token` with client_secret_basic.
    pub async fn token(&self, ctx: &TenantCtx, scopes: &str) -> String {
        let (id, secret) = self.client(ctx, scopes).await;
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "token endpoint refused");
        let body: Value = response.json().await.expect("token json");
        body["access_token"].as_str().expect("access_token").to_string()
    }

    /// A token with every scope for a new tenant.
    pub async fn tenant_token(&self, name: &str) -> (TenantCtx, String) {
        let ctx = self.tenant(name).await;
        let token = self.token(&ctx, &Scopes::all().to_string()).await;
        (ctx, token)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.get(self.url(path)).header(AUTHORIZATION, format!("Bearer {token}")).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("POST")
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("DELETE")
    }
}

/// Reads a problem+json response, asserting its media type and status.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let media = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(media, "application/problem+json");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "a problem needs a detail: {body}");
    assert!(body["type"].as_str().is_some(), "a problem needs a type: {body}");
    body
}

/// The field names a validation problem lists.
pub fn problem_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// The Python of the test environment that `scripts/test` prepares.
pub fn python() -> String {
    if let Ok(python) = std::env::var("STEWARD_TEST_PYTHON") {
        return python;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "the Python checkers are missing: run scripts/test (it creates .venv) or set STEWARD_TEST_PYTHON"
    );
    venv.to_string()
}
