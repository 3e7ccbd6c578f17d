//! Bulk reads for exports on a rusqlite connection of their own.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every row over to the async
//! side through a channel; for an export of a million rows that hand-over costs more than
//! reading the rows. Here one blocking thread reads the whole window in one read transaction
//! (a consistent snapshot, never a row twice or a row of a later write) and hands over pages.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags};
use steward_domain::Timestamp;
use steward_store::doc::MAX_PAGE;
use steward_store::sql::Statement;
use steward_store::{Doc, StoreError, StoreResult, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

/// A read-only connection of its own, with SQLite's default page cache (2 MiB), closed with it.
fn reader(file: &Path) -> StoreResult<Connection> {
    let connection = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(StoreError::backend)?;
    connection.busy_timeout(Duration::from_secs(10)).map_err(StoreError::backend)?;
    Ok(connection)
}

/// The two integers of a one-row `statement` (a count and a size), read on a connection of its
/// own: counting a large table through a pool connection would leave its 32 MiB page cache full
/// of index pages for as long as the pool keeps it (the export benchmark's memory bound).
pub fn measure(file: &Path, statement: &Statement) -> StoreResult<(i64, i64)> {
    let connection = reader(file)?;
    let params = rusqlite::params_from_iter(statement.params.iter().map(param));
    connection
        .query_row(&statement.sql, params, |row| Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?)))
        .map(|(rows, bytes)| (rows.unwrap_or(0), bytes.unwrap_or(0)))
        .map_err(StoreError::backend)
}

/// Sends every row of `statement` (id, created_at, updated_at, body) in pages of [`MAX_PAGE`];
/// stops early, without error, when the receiver is gone.
pub fn scan(file: &Path, statement: &Statement, pages: &mpsc::Sender<Vec<Doc>>) -> StoreResult<()> {
    let connection = reader(file)?;
    // No memory map: mapped pages of a large file would count as the server's resident memory,
    // and read calls cost little next to opening and writing the rows.
    let snapshot = connection.unchecked_transaction().map_err(StoreError::backend)?;
    let mut query = snapshot.prepare(&statement.sql).map_err(StoreError::backend)?;
    let params = rusqlite::params_from_iter(statement.params.iter().map(param));
    let mut rows = query.query(params).map_err(StoreError::backend)?;
    let mut page = Vec::with_capacity(MAX_PAGE as usize);
    while let Some(row) = rows.next().map_err(StoreError::backend)? {
        let id = row.get_ref(0).and_then(|v| Ok(v.as_blob()?)).map_err(StoreError::backend)?;
        let created_at: i64 = row.get(1).map_err(StoreError::backend)?;
        let updated_at: i64 = row.get(2).map_err(StoreError::backend)?;
        let body = row.get_ref(3).and_then(|v| Ok(v.as_blob()?)).map_err(StoreError::backend)?;
        page.push(Doc {
            id: Uuid::from_slice(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: time(created_at)?,
            updated_at: time(updated_at)?,
            body: body.to_vec(),
        });
        if page.len() == MAX_PAGE as usize {
            let full = std::mem::replace(&mut page, Vec::with_capacity(MAX_PAGE as usize));
            if pages.blocking_send(full).is_err() {
                return Ok(());
            }
        }
    }
    if !page.is_empty() {
        let _ = pages.blocking_send(page);
    }
    Ok(())
}

fn time(micros: i64) -> StoreResult<Timestamp> {
    Timestamp::from_unix_micros(micros).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The same encoding as the sqlx binding of the backend (`bind` in lib.rs).
fn param(value: &Value) -> ToSqlOutput<'_> {
    use rusqlite::types::{Value as Sql, ValueRef};
    match value {
        Value::Null | Value::NullOf(_) => ToSqlOutput::Owned(Sql::Null),
        Value::Int(n) => ToSqlOutput::Owned(Sql::Integer(*n)),
        Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        Value::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        Value::Uuid(uuid) => ToSqlOutput::Borrowed(ValueRef::Blob(uuid.as_bytes())),
        Value::Time(at) => ToSqlOutput::Owned(Sql::Integer(at.unix_micros())),
    }
}
