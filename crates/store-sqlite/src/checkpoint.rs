//! WAL checkpoints off the request path.
//!
//! SQLite checkpoints inside the commit that crosses `wal_autocheckpoint`, so one request in a
//! few hundred waited for a copy and an fsync of megabytes (collection's p99 was that wait, see
//! BENCHMARKS.md). Here a thread of its own runs a passive checkpoint every second: it copies
//! what no reader still needs and never blocks a writer.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

const EVERY: Duration = Duration::from_secs(1);

/// Checkpoints `file` every second until `alive` can no longer be upgraded (the store is gone).
pub fn spawn(file: PathBuf, alive: Weak<()>) {
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        let Ok(connection) = Connection::open_with_flags(
            &file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        ) else {
            tracing::warn!("the checkpoint thread cannot open the database; SQLite checkpoints in commits instead");
            return;
        };
        let _ = connection.busy_timeout(Duration::from_millis(100));
        while alive.upgrade().is_some() {
            std::thread::sleep(EVERY);
            if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::debug!(error = %error, "passive checkpoint skipped");
            }
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(error = %error, "no checkpoint thread; SQLite checkpoints in commits instead");
    }
}
