//! The shared contract suite on SQLite, each check on a fresh file in a temporary folder.

use std::sync::Arc;

use steward_store::{MasterKey, Vault};
use steward_store_sqlite::SqliteStore;

async fn fresh() -> Option<(SqliteStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(dir.path().join("keys"), MasterKey::generate()).expect("vault");
    let store = SqliteStore::open_file(&dir.path().join("contract.db"), Arc::new(vault)).await.expect("open");
    Some((store, dir))
}

steward_store::contract_suite!(fresh());
