//! Console users and sessions on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use steward_domain::{Role, SecretHash, Tenant, TenantId, Timestamp, UserId};
use steward_store::{
    ConsoleSession, LockSchedule, Reservation, StoreError, StoreResult, TenantCtx, UserRecord, UserStore,
};

use crate::{SqliteStore, corrupt, hash, id_bytes, map_error, read_tenant, time, uuid};

fn optional_time(row: &SqliteRow, column: &str) -> StoreResult<Option<Timestamp>> {
    let micros: Option<i64> = row.try_get(column).map_err(StoreError::backend)?;
    micros.map(|m| Timestamp::from_unix_micros(m).map_err(corrupt)).transpose()
}

fn read_user(row: &SqliteRow) -> StoreResult<UserRecord> {
    let role: String = row.try_get("role").map_err(StoreError::backend)?;
    let failed: i64 = row.try_get("failed_attempts").map_err(StoreError::backend)?;
    Ok(UserRecord {
        id: UserId::from_uuid(uuid(row, "id")?),
        email_key: row.try_get("email_key").map_err(StoreError::backend)?,
        email_sealed: row.try_get("email").map_err(StoreError::backend)?,
        role: role.parse::<Role>().map_err(corrupt)?,
        password_hash: row.try_get("password_hash").map_err(StoreError::backend)?,
        totp_secret: row.try_get("totp_secret").map_err(StoreError::backend)?,
        totp_enrolled_at: optional_time(row, "totp_enrolled_at")?,
        totp_last_step: row.try_get("totp_last_step").map_err(StoreError::backend)?,
        failed_attempts: u32::try_from(failed).unwrap_or(u32::MAX),
        locked_until: optional_time(row, "locked_until")?,
        created_at: time(row, "created_at")?,
    })
}

fn read_session(row: &SqliteRow) -> StoreResult<ConsoleSession> {
    let mfa_passed: i64 = row.try_get("mfa_passed").map_err(StoreError::backend)?;
    Ok(ConsoleSession {
        token_hash: hash(row, "token_hash")?,
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        mfa_passed: mfa_passed != 0,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

fn tenant(ctx: &TenantCtx) -> Vec<u8> {
    ctx.tenant_id().as_uuid().as_bytes().to_vec()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn tenants_by_slug(&self, slug: &str) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants WHERE slug = ? ORDER BY id")
            .bind(slug)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(read_tenant).collect()
    }

    async fn create_user(&self, ctx: &TenantCtx, user: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (tenant_id, id, email_key, email, role, password_hash, totp_secret, \
             totp_enrolled_at, totp_last_step, failed_attempts, locked_until, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant(ctx))
        .bind(id_bytes(user.id.as_uuid()))
        .bind(user.email_key.as_slice())
        .bind(user.email_sealed.as_slice())
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(user.totp_secret.as_deref())
        .bind(user.totp_enrolled_at.map(|at| at.unix_micros()))
        .bind(user.totp_last_step)
        .bind(i64::from(user.failed_attempts))
        .bind(user.locked_until.map(|at| at.unix_micros()))
        .bind(user.created_at.unix_micros())
        .execute(self.pool())
        .await
        .map_err(map_error("email"))?;
        Ok(())
    }

    async fn get_user(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = ? AND id = ?")
            .bind(tenant(ctx))
            .bind(id_bytes(id.as_uuid()))
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_user).transpose()
    }

    async fn list_users(&self, ctx: &TenantCtx) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query("SELECT * FROM users WHERE tenant_id = ? ORDER BY id")
            .bind(tenant(ctx))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(read_user).collect()
    }

    async fn find_user_by_email_key(&self, ctx: &TenantCtx, key: &[u8]) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = ? AND email_key = ?")
            .bind(tenant(ctx))
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_user).transpose()
    }

    async fn set_user_role(&self, ctx: &TenantCtx, id: UserId, role: Role) -> StoreResult<bool> {
        // SQLite runs one writer at a time: the owner count cannot change under this statement.
        let result = sqlx::query(
            "UPDATE users SET role = ? WHERE tenant_id = ? AND id = ? AND (? = 'owner' OR role <> 'owner' \
             OR (SELECT COUNT(*) FROM users WHERE tenant_id = ? AND role = 'owner') > 1)",
        )
        .bind(role.as_str())
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(role.as_str())
        .bind(tenant(ctx))
        .execute(self.pool())
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_user(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(StoreError::backend)?;
        let removed = sqlx::query(
            "DELETE FROM users WHERE tenant_id = ? AND id = ? AND (role <> 'owner' \
             OR (SELECT COUNT(*) FROM users WHERE tenant_id = ? AND role = 'owner') > 1)",
        )
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(tenant(ctx))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        if removed.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        // The foreign keys cascade too; said here so that nothing rests on the pragma.
        for table in ["console_sessions", "user_recovery_codes"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE tenant_id = ? AND user_id = ?")))
                .bind(tenant(ctx))
                .bind(id_bytes(id.as_uuid()))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(true)
    }

    async fn reserve_sign_in(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        now: Timestamp,
        schedule: LockSchedule,
    ) -> StoreResult<Reservation> {
        // One statement: the check, the count and the lock cannot be split by another
        // attempt. The lock is `first * 2^(attempt - free)` seconds, at most `max`
        // (`LockSchedule::lock_seconds`; the shift stops at 20, long past the cap).
        let row = sqlx::query(
            "UPDATE users SET failed_attempts = failed_attempts + 1, \
             locked_until = CASE WHEN failed_attempts + 1 >= ? \
                 THEN ? + MIN(? * (1 << MIN(failed_attempts + 1 - ?, 20)), ?) * 1000000 ELSE NULL END \
             WHERE tenant_id = ? AND id = ? AND (locked_until IS NULL OR locked_until <= ?) \
             RETURNING failed_attempts, locked_until",
        )
        .bind(i64::from(schedule.free))
        .bind(now.unix_micros())
        .bind(schedule.first_seconds)
        .bind(i64::from(schedule.free))
        .bind(schedule.max_seconds)
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(now.unix_micros())
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::backend)?;
        if let Some(row) = row {
            let attempt: i64 = row.get(0);
            let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
            return Ok(Reservation::Granted { attempt, locked_until: optional_time(&row, "locked_until")? });
        }
        let row = sqlx::query("SELECT locked_until FROM users WHERE tenant_id = ? AND id = ?")
            .bind(tenant(ctx))
            .bind(id_bytes(id.as_uuid()))
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        Ok(match row {
            // Locked then; if the lock has just run out, the next attempt is granted.
            Some(row) => Reservation::Locked { until: optional_time(&row, "locked_until")?.unwrap_or(now) },
            None => Reservation::Unknown,
        })
    }

    async fn clear_sign_in(&self, ctx: &TenantCtx, id: UserId, attempt: u32) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE users SET failed_attempts = 0, locked_until = NULL \
             WHERE tenant_id = ? AND id = ? AND failed_attempts = ?",
        )
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(i64::from(attempt))
        .execute(self.pool())
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn set_sign_in_lock(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        failed_attempts: u32,
        locked_until: Option<Timestamp>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE users SET failed_attempts = ?, locked_until = ? WHERE tenant_id = ? AND id = ?")
            .bind(i64::from(failed_attempts))
            .bind(locked_until.map(|at| at.unix_micros()))
            .bind(tenant(ctx))
            .bind(id_bytes(id.as_uuid()))
            .execute(self.pool())
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn start_totp_enrolment(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        sealed_secret: &[u8],
        replace: bool,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE users SET totp_secret = ? \
             WHERE tenant_id = ? AND id = ? AND totp_enrolled_at IS NULL AND (totp_secret IS NULL OR ?)",
        )
        .bind(sealed_secret)
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(replace)
        .execute(self.pool())
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn finish_totp_enrolment(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        sealed_secret: &[u8],
        at: Timestamp,
        step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(StoreError::backend)?;
        let result = sqlx::query(
            "UPDATE users SET totp_enrolled_at = ?, totp_last_step = ? \
             WHERE tenant_id = ? AND id = ? AND totp_enrolled_at IS NULL AND totp_secret = ?",
        )
        .bind(at.unix_micros())
        .bind(step)
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(sealed_secret)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM user_recovery_codes WHERE tenant_id = ? AND user_id = ?")
            .bind(tenant(ctx))
            .bind(id_bytes(id.as_uuid()))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        for code_hash in recovery_hashes {
            sqlx::query("INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash) VALUES (?, ?, ?)")
                .bind(tenant(ctx))
                .bind(id_bytes(id.as_uuid()))
                .bind(code_hash.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(map_error("recovery_code"))?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(true)
    }

    async fn use_totp_step(&self, ctx: &TenantCtx, id: UserId, step: i64) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE users SET totp_last_step = ? WHERE tenant_id = ? AND id = ? \
             AND totp_enrolled_at IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < ?)",
        )
        .bind(step)
        .bind(tenant(ctx))
        .bind(id_bytes(id.as_uuid()))
        .bind(step)
        .execute(self.pool())
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn use_recovery_code(&self, ctx: &TenantCtx, id: UserId, hash: &[u8]) -> StoreResult<bool> {
        let result =
            sqlx::query("DELETE FROM user_recovery_codes WHERE tenant_id = ? AND user_id = ? AND code_hash = ?")
                .bind(tenant(ctx))
                .bind(id_bytes(id.as_uuid()))
                .bind(hash)
                .execute(self.pool())
                .await
                .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn count_recovery_codes(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<u32> {
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM user_recovery_codes WHERE tenant_id = ? AND user_id = ?")
            .bind(tenant(ctx))
            .bind(id_bytes(id.as_uuid()))
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::backend)?
            .get(0);
        Ok(u32::try_from(count).unwrap_or(0))
    }

    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, tenant_id, user_id, mfa_passed, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(session.token_hash.0.as_slice())
        .bind(id_bytes(session.tenant_id.as_uuid()))
        .bind(id_bytes(session.user_id.as_uuid()))
        .bind(i64::from(session.mfa_passed))
        .bind(session.created_at.unix_micros())
        .bind(session.expires_at.unix_micros())
        .execute(self.pool())
        .await
        .map_err(map_error("token"))?;
        Ok(())
    }

    async fn find_console_session(&self, hash: &SecretHash) -> StoreResult<Option<ConsoleSession>> {
        let row = sqlx::query("SELECT * FROM console_sessions WHERE token_hash = ?")
            .bind(hash.0.as_slice())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_session).transpose()
    }

    async fn delete_console_session(&self, hash: &SecretHash) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM console_sessions WHERE token_hash = ?")
            .bind(hash.0.as_slice())
            .execute(self.pool())
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }
}
