//! The shared contract suite on PostgreSQL, when `STEWARD_TEST_POSTGRES_URL` names a server;
//! each check runs in a schema of its own, dropped afterwards.

use std::sync::Arc;

use steward_store::{MasterKey, Vault};
use steward_store_postgres::PgStore;

struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Dropping needs async; a short-lived runtime on another thread does it without
        // blocking the test's own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                            .execute(&pool)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

async fn fresh() -> Option<(PgStore, (Schema, tempfile::TempDir))> {
    let url = std::env::var("STEWARD_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
    let name = format!("contract_{}", uuid::Uuid::now_v7().simple());
    let keys = tempfile::tempdir().expect("key folder");
    let vault = Arc::new(Vault::open(keys.path(), MasterKey::generate()).expect("vault"));
    let store = PgStore::open_in_schema(&url, &name, vault).await.expect("connect to PostgreSQL");
    Some((store, (Schema { url, name }, keys)))
}

steward_store::contract_suite!(fresh());
