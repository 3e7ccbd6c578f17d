//! SQL for the document tables, written once for every backend: each statement comes with its
//! parameters in order, and the dialect only decides how a placeholder is spelled.

use crate::doc::{
    ColumnType, DocKind, DocRow, DocWrite, ListQuery, MAX_DELETE, MAX_PAGE, Projection, TallyQuery, Value, WriteOp,
};
use crate::{StoreError, TenantCtx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?` placeholders.
    Sqlite,
    /// `$1`, `$2`, … placeholders.
    Postgres,
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

struct Builder {
    dialect: Dialect,
    sql: String,
    params: Vec<Value>,
}

impl Builder {
    fn new(dialect: Dialect) -> Self {
        Self { dialect, sql: String::with_capacity(256), params: Vec::new() }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    fn param(&mut self, value: Value) -> &mut Self {
        self.params.push(value);
        match self.dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.params.len().to_string());
            }
        }
        self
    }

    /// A parameter for a projected column. PostgreSQL gets an explicit cast, so that a NULL
    /// sent without a type still lands in a uuid or bytea column.
    fn column_param(&mut self, value: Value, column_type: ColumnType) -> &mut Self {
        self.param(if value == Value::Null { Value::NullOf(column_type) } else { value });
        if self.dialect == Dialect::Postgres {
            self.sql.push_str(match column_type {
                ColumnType::Int => "::bigint",
                ColumnType::Text => "::text",
                ColumnType::Bytes => "::bytea",
                ColumnType::Uuid => "::uuid",
                ColumnType::Time => "::timestamptz",
            });
        }
        self
    }

    fn tenant(&mut self, ctx: &TenantCtx) -> &mut Self {
        self.push("tenant_id = ").param(Value::Uuid(ctx.tenant_id().into_uuid()))
    }

    fn finish(self) -> Statement {
        Statement { sql: self.sql, params: self.params }
    }
}

/// The columns every read returns, in this order.
pub const READ_COLUMNS: &str = "id, created_at, updated_at, body";

/// How many rows one multi-row INSERT carries: well under SQLite's 32,766 and PostgreSQL's
/// 65,535 parameters for the widest table.
pub fn rows_per_insert(kind: DocKind) -> usize {
    30_000 / (kind.columns().len() + 5)
}

pub fn insert_docs<'a>(
    dialect: Dialect,
    ctx: &TenantCtx,
    kind: DocKind,
    rows: impl IntoIterator<Item = &'a DocRow>,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("INSERT INTO ").push(kind.table()).push(" (tenant_id, id, created_at, updated_at");
    for (column, _) in kind.columns() {
        b.push(", ").push(column);
    }
    b.push(", body) VALUES ");
    for (index, row) in rows.into_iter().enumerate() {
        b.push(if index == 0 { "(" } else { ", (" });
        b.param(Value::Uuid(ctx.tenant_id().into_uuid()));
        b.push(", ").param(Value::Uuid(row.id));
        b.push(", ").param(Value::Time(row.created_at));
        b.push(", ").param(Value::Time(row.updated_at));
        for (value, (_, column_type)) in row.columns.iter().zip(kind.columns()) {
            b.push(", ").column_param(value.clone(), *column_type);
        }
        b.push(", ").param(Value::Bytes(row.body.clone())).push(")");
    }
    b.finish()
}

/// The statements of a [`crate::Store::write_docs`] batch, each with whether it must change a
/// row: runs of inserts of one tenant and kind become multi-row inserts.
pub fn write_docs(dialect: Dialect, writes: &[DocWrite]) -> Vec<(Statement, bool)> {
    let mut statements = Vec::new();
    let mut index = 0;
    while index < writes.len() {
        let write = &writes[index];
        match &write.op {
            WriteOp::Insert(_) => {
                let limit = rows_per_insert(write.kind);
                let rows: Vec<&DocRow> = writes[index..]
                    .iter()
                    .take(limit)
                    .map_while(|next| match &next.op {
                        WriteOp::Insert(row) if next.ctx == write.ctx && next.kind == write.kind => Some(row),
                        _ => None,
                    })
                    .collect();
                index += rows.len();
                statements.push((insert_docs(dialect, &write.ctx, write.kind, rows.iter().copied()), false));
            }
            WriteOp::Update(row) => {
                statements.push((update_doc(dialect, &write.ctx, write.kind, row), true));
                index += 1;
            }
            WriteOp::Delete(id) => {
                statements.push((delete_doc(dialect, &write.ctx, write.kind, *id), true));
                index += 1;
            }
        }
    }
    statements
}

pub fn get_doc(dialect: Dialect, ctx: &TenantCtx, kind: DocKind, id: uuid::Uuid) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("SELECT ").push(READ_COLUMNS).push(" FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx).push(" AND id = ").param(Value::Uuid(id));
    b.finish()
}

pub fn update_doc(dialect: Dialect, ctx: &TenantCtx, kind: DocKind, row: &DocRow) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("UPDATE ").push(kind.table()).push(" SET created_at = ").param(Value::Time(row.created_at));
    b.push(", updated_at = ").param(Value::Time(row.updated_at));
    for ((column, column_type), value) in kind.columns().iter().zip(&row.columns) {
        b.push(", ").push(column).push(" = ").column_param(value.clone(), *column_type);
    }
    b.push(", body = ").param(Value::Bytes(row.body.clone())).push(" WHERE ");
    b.tenant(ctx).push(" AND id = ").param(Value::Uuid(row.id));
    b.finish()
}

pub fn delete_doc(dialect: Dialect, ctx: &TenantCtx, kind: DocKind, id: uuid::Uuid) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("DELETE FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx).push(" AND id = ").param(Value::Uuid(id));
    b.finish()
}

pub fn count_docs(dialect: Dialect, ctx: &TenantCtx, kind: DocKind) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("SELECT COUNT(*) FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    b.finish()
}

pub fn list_docs(dialect: Dialect, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> Result<Statement, StoreError> {
    let mut b = Builder::new(dialect);
    b.push("SELECT ").push(READ_COLUMNS).push(" FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    if let Some(after) = query.after {
        b.push(" AND id > ").param(Value::Uuid(after));
    }
    filters(&mut b, kind, query)?;
    // Without statistics SQLite walks the (tenant, id) index to avoid sorting, reading every row
    // of the tenant to find a visitor's few events; `+id` makes it use the column's index and
    // sort what matches (PostgreSQL plans this by itself).
    let narrowed = query.equals.iter().any(|(column, _)| *column != "id")
        || query.any_of.as_ref().is_some_and(|(column, _)| *column != "id");
    let order = if dialect == Dialect::Sqlite && narrowed { " ORDER BY +id LIMIT " } else { " ORDER BY id LIMIT " };
    b.push(order).push(&query.bounded_limit().to_string());
    Ok(b.finish())
}

/// Deletes up to the query's limit (at most [`MAX_DELETE`]) of the rows matching its filters and
/// cursor, in whatever order the best index gives: retention sweeps and erasure.
pub fn delete_matching(
    dialect: Dialect,
    ctx: &TenantCtx,
    kind: DocKind,
    query: &ListQuery,
) -> Result<Statement, StoreError> {
    let mut b = Builder::new(dialect);
    b.push("DELETE FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx).push(" AND id IN (SELECT id FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    if let Some(after) = query.after {
        b.push(" AND id > ").param(Value::Uuid(after));
    }
    filters(&mut b, kind, query)?;
    b.push(" LIMIT ").push(&query.limit.clamp(1, MAX_DELETE).to_string()).push(")");
    Ok(b.finish())
}

/// Every row matching the query's filters (not its cursor or limit) in id order: a bulk read.
pub fn scan_docs(dialect: Dialect, ctx: &TenantCtx, kind: DocKind, query: &ListQuery) -> Result<Statement, StoreError> {
    let mut b = Builder::new(dialect);
    b.push("SELECT ").push(READ_COLUMNS).push(" FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    filters(&mut b, kind, query)?;
    b.push(" ORDER BY id");
    Ok(b.finish())
}

/// How many rows match the query's filters (not its cursor or limit), and about how many bytes
/// they store: the count times the mean body length of up to [`MEASURE_SAMPLE`] of them (exact
/// up to that many rows). Summing every body's length would read the whole table through its
/// index, a second full read before an export even starts.
pub const MEASURE_SAMPLE: u32 = 1_000;

pub fn measure_docs(
    dialect: Dialect,
    ctx: &TenantCtx,
    kind: DocKind,
    query: &ListQuery,
) -> Result<Statement, StoreError> {
    let mut b = Builder::new(dialect);
    let length = match dialect {
        Dialect::Sqlite => "length(body)",
        Dialect::Postgres => "octet_length(body)",
    };
    b.push("SELECT COUNT(*), CAST(ROUND(COUNT(*) * COALESCE((SELECT AVG(n) FROM (SELECT ").push(length);
    b.push(" AS n FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    filters(&mut b, kind, query)?;
    b.push(" LIMIT ").push(&MEASURE_SAMPLE.to_string()).push(") AS sample), 0)) AS BIGINT) FROM ");
    b.push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    filters(&mut b, kind, query)?;
    Ok(b.finish())
}

fn filters(b: &mut Builder, kind: DocKind, query: &ListQuery) -> Result<(), StoreError> {
    if let Some(from) = query.created_from {
        b.push(" AND created_at >= ").param(Value::Time(from));
    }
    if let Some(to) = query.created_to {
        b.push(" AND created_at < ").param(Value::Time(to));
    }
    if let Some(since) = query.updated_since {
        b.push(" AND updated_at >= ").param(Value::Time(since));
    }
    if let Some(before) = query.updated_before {
        b.push(" AND updated_at < ").param(Value::Time(before));
    }
    let known = |column: &str| {
        if column == "id" || kind.has_column(column) {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("{} has no column {column}", kind.table())))
        }
    };
    for (column, value) in &query.equals {
        known(column)?;
        b.push(" AND ").push(column).push(" = ").param(value.clone());
    }
    if let Some((column, values)) = &query.any_of {
        known(column)?;
        if values.is_empty() {
            b.push(" AND 1 = 0");
        } else {
            b.push(" AND ").push(column).push(" IN (");
            for (index, value) in values.iter().enumerate() {
                if index > 0 {
                    b.push(", ");
                }
                b.param(value.clone());
            }
            b.push(")");
        }
    }
    if let Some((column, words)) = &query.any_word {
        known(column)?;
        // Words are hex hashes: nothing in them is a LIKE wildcard.
        if words.is_empty() || words.iter().any(|word| !word.bytes().all(|b| b.is_ascii_alphanumeric())) {
            b.push(" AND 1 = 0");
        } else {
            b.push(" AND (");
            for (index, word) in words.iter().enumerate() {
                if index > 0 {
                    b.push(" OR ");
                }
                b.push("(' ' || ").push(column).push(" || ' ') LIKE ").param(Value::Text(format!("% {word} %")));
            }
            b.push(")");
        }
    }
    if let Some(column) = query.missing {
        known(column)?;
        b.push(" AND ").push(column).push(" IS NULL");
    }
    if let Some((column, values)) = &query.none_of {
        known(column)?;
        if !values.is_empty() {
            b.push(" AND (").push(column).push(" IS NULL OR ").push(column).push(" NOT IN (");
            for (index, value) in values.iter().enumerate() {
                if index > 0 {
                    b.push(", ");
                }
                b.param(value.clone());
            }
            b.push("))");
        }
    }
    Ok(())
}

/// The columns a [`tally_docs`] statement answers, in this order: `day` (days since 1970-01-01,
/// UTC), `grp` (text or NULL), `person` (a uuid), `n` and `total` (integers).
pub fn tally_docs(
    dialect: Dialect,
    ctx: &TenantCtx,
    kind: DocKind,
    query: &TallyQuery,
) -> Result<Statement, StoreError> {
    let typed = |column: &str, wanted: ColumnType| {
        if kind.columns().iter().any(|(name, column_type)| *name == column && *column_type == wanted) {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("{} has no {wanted:?} column {column}", kind.table())))
        }
    };
    typed(query.person, ColumnType::Uuid)?;
    let mut b = Builder::new(dialect);
    b.push("SELECT ").push(match dialect {
        Dialect::Sqlite => "created_at / 86400000000",
        Dialect::Postgres => "CAST((created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01' AS BIGINT)",
    });
    b.push(" AS day, ");
    match query.group {
        Some(group) => {
            typed(group, ColumnType::Text)?;
            b.push(group);
        }
        None => {
            b.push("CAST(NULL AS TEXT)");
        }
    }
    b.push(" AS grp, COALESCE(").push(query.person).push(", id) AS person, COUNT(*) AS n, ");
    match query.sum {
        Some(sum) => {
            typed(sum, ColumnType::Int)?;
            b.push("CAST(COALESCE(SUM(").push(sum).push("), 0) AS BIGINT)");
        }
        None => {
            b.push("CAST(0 AS BIGINT)");
        }
    }
    b.push(" AS total FROM ").push(kind.table()).push(" WHERE ");
    b.tenant(ctx);
    filters(&mut b, kind, &query.window)?;
    b.push(if query.group.is_some() { " GROUP BY 1, 2, 3" } else { " GROUP BY 1, 3" });
    Ok(b.finish())
}

/// Sets a row's projected columns while it still holds the body they were worked out from.
pub fn project_doc(dialect: Dialect, ctx: &TenantCtx, kind: DocKind, projection: &Projection) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("UPDATE ").push(kind.table()).push(" SET ");
    for (index, ((column, column_type), value)) in kind.columns().iter().zip(&projection.columns).enumerate() {
        if index > 0 {
            b.push(", ");
        }
        b.push(column).push(" = ").column_param(value.clone(), *column_type);
    }
    b.push(" WHERE ");
    b.tenant(ctx).push(" AND id = ").param(Value::Uuid(projection.id));
    b.push(" AND body = ").param(Value::Bytes(projection.body.clone()));
    b.finish()
}

/// The columns of `audit_log` in the order [`insert_audit`] writes them.
pub const AUDIT_COLUMNS: &str = "seq, id, at, action, actor_kind, actor_id, body, prev_hash, hash";

pub fn insert_audit(dialect: Dialect, ctx: &TenantCtx, row: &crate::audit::AuditRow) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("INSERT INTO audit_log (tenant_id, ").push(AUDIT_COLUMNS).push(") VALUES (");
    b.param(Value::Uuid(ctx.tenant_id().into_uuid()));
    let actor_id = row.actor_id.clone().map_or(Value::NullOf(ColumnType::Text), Value::Text);
    for value in [
        Value::Int(row.seq),
        Value::Uuid(row.id),
        Value::Time(row.at),
        Value::Text(row.action.clone()),
        Value::Text(row.actor_kind.clone()),
        actor_id,
        Value::Bytes(row.body.clone()),
        Value::Bytes(row.prev_hash.clone()),
        Value::Bytes(row.hash.clone()),
    ] {
        b.push(", ").param(value);
    }
    b.push(")");
    b.finish()
}

/// Entries in ascending sequence order after the query's `after_seq`; `newest` asks for the
/// last entry alone.
pub fn list_audit(dialect: Dialect, ctx: &TenantCtx, query: &crate::audit::AuditQuery, newest: bool) -> Statement {
    let mut b = Builder::new(dialect);
    b.push("SELECT ").push(AUDIT_COLUMNS).push(" FROM audit_log WHERE ");
    b.tenant(ctx);
    if let Some(after) = query.after_seq {
        b.push(" AND seq > ").param(Value::Int(after));
    }
    if let Some(from) = query.from {
        b.push(" AND at >= ").param(Value::Time(from));
    }
    if let Some(to) = query.to {
        b.push(" AND at < ").param(Value::Time(to));
    }
    if let Some(kind) = query.actor_kind {
        b.push(" AND actor_kind = ").param(Value::Text(kind.as_str().to_string()));
    }
    match query.action.as_deref() {
        Some(prefix) if prefix.ends_with('.') => {
            // A prefix: compared as a range, so no LIKE wildcard in it can widen the match.
            b.push(" AND action >= ").param(Value::Text(prefix.to_string()));
            b.push(" AND action < ").param(Value::Text(format!("{}/", &prefix[..prefix.len() - 1])));
        }
        Some(action) => {
            b.push(" AND action = ").param(Value::Text(action.to_string()));
        }
        None => {}
    }
    if newest {
        b.push(" ORDER BY seq DESC LIMIT 1");
    } else {
        b.push(" ORDER BY seq LIMIT ").push(&query.limit.clamp(1, MAX_PAGE).to_string());
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_domain::TenantId;

    #[test]
    fn placeholders_follow_the_dialect_and_params_their_order() {
        let ctx = TenantCtx::new(TenantId::new());
        let query =
            ListQuery { limit: 5000, equals: vec![("status", Value::Text("new".into()))], ..ListQuery::default() };
        let sqlite = list_docs(Dialect::Sqlite, &ctx, DocKind::Lead, &query).unwrap();
        assert_eq!(
            sqlite.sql,
            "SELECT id, created_at, updated_at, body FROM leads WHERE tenant_id = ? AND status = ? ORDER BY +id LIMIT 1000"
        );
        let postgres = list_docs(Dialect::Postgres, &ctx, DocKind::Lead, &query).unwrap();
        assert!(postgres.sql.contains("tenant_id = $1 AND status = $2"));
        assert_eq!(postgres.params[1], Value::Text("new".into()));
    }

    #[test]
    fn unknown_filter_columns_are_refused_not_interpolated() {
        let ctx = TenantCtx::new(TenantId::new());
        let query = ListQuery { equals: vec![("1=1 OR status", Value::Null)], ..ListQuery::default() };
        assert!(list_docs(Dialect::Sqlite, &ctx, DocKind::Lead, &query).is_err());
    }
}
