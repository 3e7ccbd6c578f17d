//! `steward backup` and `steward restore` for the embedded SQLite database, and the erasure
//! ledger's re-application after any restore ([`crate::erasure_ledger`]).
//!
//! A backup is one consistent SQLite file (`VACUUM INTO`) taken while Steward runs. It holds no
//! key: the master key and the tenants' wrapped keys stay in their own files, so a stolen backup
//! is unreadable and a tenant whose key was destroyed stays unreadable in every old backup.
//! Restoring replaces the database file, then re-applies every erasure made since the backup.
//! Steward must be stopped: `steward serve` holds a shared lock on `<database>.lock` for as long
//! as it runs ([`hold_database`]), and a restore takes it exclusively or refuses with
//! [`DatabaseInUse`] (a server kept serving its open copy of the old file, and what it wrote
//! afterwards was lost at its next start). PostgreSQL is backed up with `pg_dump` and restored with
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

/// The database is held by a running server (or another restore).
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {database} is in use by a running Steward server (it holds {lock}); stop every `steward serve` \
     on it first (e.g. systemctl stop steward, or Ctrl-C), then run steward restore again"
)]
pub struct DatabaseInUse {
    pub database: PathBuf,
    pub lock: PathBuf,
}

/// The lock file beside an SQLite database.
fn lock_file(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock(database: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    let path = lock_file(database);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
    Ok((file, path))
}

/// What a server holds while it serves the embedded database: a shared lock on
/// `<database>.lock` (released when dropped, or by the OS when the process ends), which
/// `steward restore` needs exclusively. `None` for PostgreSQL, which restores otherwise.
pub fn hold_database(settings: &Settings) -> anyhow::Result<Option<std::fs::File>> {
    let Ok(database) = sqlite_file(settings) else { return Ok(None) };
    let (file, path) = open_lock(&database)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "a restore of {} is running (it holds {}); start the server when it has finished",
            database.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => Err(anyhow::anyhow!("cannot lock {}: {error}", path.display())),
    }
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
    // Held until the restore is done: no server starts on a half-restored database.
    let (lock, lock_path) = open_lock(&database)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(DatabaseInUse { database: database.clone(), lock: lock_path }.into());
        }
        Err(std::fs::TryLockError::Error(error)) => {
            anyhow::bail!("cannot lock {}: {error}", lock_path.display())
        }
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
    drop(lock);
    Ok(RestoreReport { restored_from: from.to_path_buf(), database, reapplied })
}

/// Re-applies the erasure ledger to the configured database (after a PostgreSQL restore).
pub async fn reapply(settings: &Settings) -> anyhow::Result<Vec<Reapplied>> {
    let store = open_store(settings).await?;
    reapply_all(&AppState::new(store, settings.clone())).await
}
