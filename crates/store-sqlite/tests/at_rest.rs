//! Encryption at rest, seen from the raw database file: no personal value in clear, and a
//! destroyed tenant key shreds that tenant in every copy of the file.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use steward_domain::Lead;
use steward_store::contract::{lead, tenant};
use steward_store::{ListQuery, Lookup, MasterKey, Store, StoreError, StoreExt, Vault, VaultError};
use steward_store_sqlite::SqliteStore;

/// The database file and its write-ahead log, as a backup tool or an attacker would read them.
fn raw_bytes(dir: &Path, name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with(name) {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

async fn open(dir: &Path, file: &str, vault: Arc<Vault>) -> SqliteStore {
    SqliteStore::open_file(&dir.join(file), vault).await.unwrap()
}

#[tokio::test]
async fn the_database_file_holds_no_email_phone_or_name_in_clear_and_lookups_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(Vault::open(dir.path().join("keys"), MasterKey::generate()).unwrap());
    let store = open(dir.path(), "steward.db", vault).await;
    let ctx = tenant(&store, "Acme").await;
    let leads: Vec<Lead> = (0..50).map(lead).collect();
    store.insert(&ctx, &leads).await.unwrap();

    let raw = raw_bytes(dir.path(), "steward.db");
    assert!(contains(&raw, "Acme"), "the raw read sees stored text (tenant names are not personal)");
    for lead in &leads {
        for value in [
            lead.email.as_ref().unwrap().as_str(),
            lead.phone.as_ref().unwrap().as_str(),
            lead.last_name.as_deref().unwrap(),
            lead.contact_id.as_deref().unwrap(),
        ] {
            assert!(!contains(&raw, value), "{value} is in the database file in clear");
        }
    }

    let wanted = &leads[7];
    let filter = store.lookup(&ctx, Lookup::Email, &wanted.email.as_ref().unwrap().lookup_key()).unwrap();
    let found: Vec<Lead> = store.list(&ctx, &ListQuery { equals: vec![filter], ..ListQuery::default() }).await.unwrap();
    assert_eq!(found, vec![wanted.clone()]);
}

#[tokio::test]
async fn a_destroyed_key_shreds_the_tenant_in_a_backup_copy_while_others_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let vault = Arc::new(Vault::open(dir.path().join("keys"), master.clone()).unwrap());
    let store = open(dir.path(), "steward.db", vault.clone()).await;
    let leaving = tenant(&store, "Leaving").await;
    let staying = tenant(&store, "Staying").await;
    let (gone, kept) = (lead(1), lead(2));
    store.insert(&leaving, std::slice::from_ref(&gone)).await.unwrap();
    store.insert(&staying, std::slice::from_ref(&kept)).await.unwrap();

    let backup = dir.path().join("backup.db");
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", backup.display())))
        .execute(store.pool())
        .await
        .unwrap();
    store.vault().destroy(leaving.tenant_id()).unwrap();

    // The backup, opened later by a fresh process with the same master key and key folder.
    let restored_vault = Arc::new(Vault::open(dir.path().join("keys"), master).unwrap());
    let restored = open(dir.path(), "backup.db", restored_vault).await;
    let error = restored.get::<Lead>(&leaving, gone.id.into_uuid()).await.unwrap_err();
    assert!(matches!(error, StoreError::Key(VaultError::Destroyed(_))), "{error:?}");
    assert_eq!(restored.get::<Lead>(&staying, kept.id.into_uuid()).await.unwrap(), Some(kept));
    // Even recreating the key material is impossible: the tombstone blocks a new key.
    assert!(restored.vault().keys(leaving.tenant_id()).is_err());
}
