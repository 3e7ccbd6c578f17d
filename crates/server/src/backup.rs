//! `steward backup` and `steward restore` for the embedded SQLite database, and the erasure
//! ledger's re-application after any restore ([`crate::erasure_ledger`]).
//!
//! A backup is one consistent SQLite file (`VACUUM INTO`) taken while Steward runs. It holds no
//! key: the master key and the tenants' wrapped keys stay in their own files, so a stolen backup
//! is unreadable and a tenant whose key was destroyed stays unreadable in every old backup.
//! Restoring replaces the database file (Steward must be stopped), then re-applies every
//! erasure made since the backup. PostgreSQL is backed up with `pg_dump` and restored with
//! `pg_restore`; `steward erasure reapply` then does the second half.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Settings;
use crate::erasure_ledger::{Reapplied, reapply_all};
use crate::state::{AppState, open_store, open_vault};

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub restored_from: PathBuf,
    pub database: PathBuf,
    /// Erasures made after the backup, applied again per tenant.
    pub reapplied: Vec<Reapplied>,
}

fn sqlite_file(settings: &Settings) -> anyhow::Result<PathBuf> {
    let url = settings.database_url();
    let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        anyhow::bail!(
            "steward backup and restore handle the embedded SQLite database; back PostgreSQL up with pg_dump, restore it with pg_restore, then run steward erasure reapply"
        );
    };
    let path = path.split('?').next().unwrap_or(path);
    Ok(PathBuf::from(path))
}

/// Writes a consistent copy of the database to `out`.
pub async fn backup(settings: &Settings, out: &Path) -> anyhow::Result<BackupReport> {
    let _ = sqlite_file(settings)?;
    if out.exists() {
        anyhow::bail!("{} exists already; name a new file for the backup", out.display());
    }
    let store = steward_store_sqlite::SqliteStore::open(&settings.database_url(), open_vault(settings)?).await?;
    store.backup_into(out).await?;
    let bytes = std::fs::metadata(out)?.len();
    Ok(BackupReport { path: out.to_path_buf(), bytes })
}

/// Replaces the database with the backup at `from`, then re-applies the erasure ledger.
pub async fn restore(settings: &Settings, from: &Path) -> anyhow::Result<RestoreReport> {
    let database = sqlite_file(settings)?;
    let mut header = [0u8; 16];
    {
        use std::io::Read;
        let mut file = std::fs::File::open(from).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", from.display()))?;
        file.read_exact(&mut header).map_err(|_| anyhow::anyhow!("{} is not a SQLite database", from.display()))?;
    }
    if &header != b"SQLite format 3\0" {
        anyhow::bail!("{} is not a SQLite database (made by steward backup)", from.display());
    }
    let staged = database.with_extension("db.restoring");
    std::fs::copy(from, &staged)?;
    std::fs::File::open(&staged)?.sync_all()?;
    for suffix in ["-wal", "-shm"] {
        let mut side = database.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
    }
    std::fs::rename(&staged, &database)?;
    let store = open_store(settings).await?;
    let state = AppState::new(store, settings.clone());
    let reapplied = reapply_all(&state).await?;
    Ok(RestoreReport { restored_from: from.to_path_buf(), database, reapplied })
}

/// Re-applies the erasure ledger to the configured database (after a PostgreSQL restore).
pub async fn reapply(settings: &Settings) -> anyhow::Result<Vec<Reapplied>> {
    let store = open_store(settings).await?;
    reapply_all(&AppState::new(store, settings.clone())).await
}
