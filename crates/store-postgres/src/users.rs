//! Console users and sessions on PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use steward_domain::{Role, SecretHash, Tenant, TenantId, Timestamp, UserId};
use steward_store::{
    ConsoleSession, LockSchedule, Reservation, StoreError, StoreResult, TenantCtx, UserRecord, UserStore,
};

use time::OffsetDateTime;

use crate::{PgStore, corrupt, hash, map_error, read_tenant, time, uuid};

fn optional_time(row: &PgRow, column: &str) -> StoreResult<Option<Timestamp>> {
    let at: Option<OffsetDateTime> = row.try_get(column).map_err(StoreError::backend)?;
    Ok(at.map(Timestamp::from_datetime))
}

fn read_user(row: &PgRow) -> StoreResult<UserRecord> {
    let role: String = row.try_get("role").map_err(StoreError::backend)?;
    let failed: i32 = row.try_get("failed_attempts").map_err(StoreError::backend)?;
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

fn read_session(row: &PgRow) -> StoreResult<ConsoleSession> {
    let mfa_passed: bool = row.try_get("mfa_passed").map_err(StoreError::backend)?;
    Ok(ConsoleSession {
        token_hash: hash(row, "token_hash")?,
        tenant_id: TenantId::from_uuid(uuid(row, "tenant_id")?),
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        mfa_passed,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

fn tenant(ctx: &TenantCtx) -> uuid::Uuid {
    ctx.tenant_id().into_uuid()
}

#[async_trait]
impl UserStore for PgStore {
    async fn tenants_by_slug(&self, slug: &str) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants WHERE slug = $1 ORDER BY id")
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(tenant(ctx))
        .bind(user.id.into_uuid())
        .bind(user.email_key.as_slice())
        .bind(user.email_sealed.as_slice())
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(user.totp_secret.as_deref())
        .bind(user.totp_enrolled_at.map(|at| at.as_datetime()))
        .bind(user.totp_last_step)
        .bind(i32::try_from(user.failed_attempts).unwrap_or(i32::MAX))
        .bind(user.locked_until.map(|at| at.as_datetime()))
        .bind(user.created_at.as_datetime())
        .execute(self.pool())
        .await
        .map_err(map_error("email"))?;
        Ok(())
    }

    async fn get_user(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant(ctx))
            .bind(id.into_uuid())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_user).transpose()
    }

    async fn list_users(&self, ctx: &TenantCtx) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant(ctx))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(read_user).collect()
    }

    async fn find_user_by_email_key(&self, ctx: &TenantCtx, key: &[u8]) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND email_key = $2")
            .bind(tenant(ctx))
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_user).transpose()
    }

    async fn set_user_role(&self, ctx: &TenantCtx, id: UserId, role: Role) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(StoreError::backend)?;
        lock_owners(&mut tx, ctx).await?;
        let result = sqlx::query(
            "UPDATE users SET role = $1 WHERE tenant_id = $2 AND id = $3 AND ($1 = 'owner' OR role <> 'owner' \
             OR (SELECT COUNT(*) FROM users WHERE tenant_id = $2 AND role = 'owner') > 1)",
        )
        .bind(role.as_str())
        .bind(tenant(ctx))
        .bind(id.into_uuid())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_user(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(StoreError::backend)?;
        lock_owners(&mut tx, ctx).await?;
        let removed = sqlx::query(
            "DELETE FROM users WHERE tenant_id = $1 AND id = $2 AND (role <> 'owner' \
             OR (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = 'owner') > 1)",
        )
        .bind(tenant(ctx))
        .bind(id.into_uuid())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        if removed.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        // The foreign keys cascade too; said here so that nothing rests on them.
        for table in ["console_sessions", "user_recovery_codes"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2")))
                .bind(tenant(ctx))
                .bind(id.into_uuid())
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
        // One statement: the row lock it takes orders parallel attempts, so the check, the
        // count and the lock cannot be split by another attempt. The lock is
        // `first * 2^(attempt - free)` seconds, at most `max` (`LockSchedule::lock_seconds`; the
        // shift stops at 20, long past the cap).
        let row = sqlx::query(
            "UPDATE users SET failed_attempts = failed_attempts + 1, \
             locked_until = CASE WHEN failed_attempts + 1 >= $1 \
                 THEN $2 + make_interval(secs => LEAST($3 * (1::bigint << LEAST(failed_attempts + 1 - $1, 20)), $4)::double precision) \
                 ELSE NULL END \
             WHERE tenant_id = $5 AND id = $6 AND (locked_until IS NULL OR locked_until <= $2) \
             RETURNING failed_attempts, locked_until",
        )
        .bind(i32::try_from(schedule.free).unwrap_or(i32::MAX))
        .bind(now.as_datetime())
        .bind(schedule.first_seconds)
        .bind(schedule.max_seconds)
        .bind(tenant(ctx))
        .bind(id.into_uuid())
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::backend)?;
        if let Some(row) = row {
            let attempt: i32 = row.get(0);
            let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
            return Ok(Reservation::Granted { attempt, locked_until: optional_time(&row, "locked_until")? });
        }
        let row = sqlx::query("SELECT locked_until FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant(ctx))
            .bind(id.into_uuid())
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
             WHERE tenant_id = $1 AND id = $2 AND failed_attempts = $3",
        )
        .bind(tenant(ctx))
        .bind(id.into_uuid())
        .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
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
        sqlx::query("UPDATE users SET failed_attempts = $1, locked_until = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(i32::try_from(failed_attempts).unwrap_or(i32::MAX))
            .bind(locked_until.map(|at| at.as_datetime()))
            .bind(tenant(ctx))
            .bind(id.into_uuid())
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
            "UPDATE users SET totp_secret = $1 \
             WHERE tenant_id = $2 AND id = $3 AND totp_enrolled_at IS NULL AND (totp_secret IS NULL OR $4)",
        )
        .bind(sealed_secret)
        .bind(tenant(ctx))
        .bind(id.into_uuid())
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
            "UPDATE users SET totp_enrolled_at = $1, totp_last_step = $2 \
             WHERE tenant_id = $3 AND id = $4 AND totp_enrolled_at IS NULL AND totp_secret = $5",
        )
        .bind(at.as_datetime())
        .bind(step)
        .bind(tenant(ctx))
        .bind(id.into_uuid())
        .bind(sealed_secret)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant(ctx))
            .bind(id.into_uuid())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        for code_hash in recovery_hashes {
            sqlx::query("INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash) VALUES ($1, $2, $3)")
                .bind(tenant(ctx))
                .bind(id.into_uuid())
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
            "UPDATE users SET totp_last_step = $1 WHERE tenant_id = $2 AND id = $3 \
             AND totp_enrolled_at IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $4)",
        )
        .bind(step)
        .bind(tenant(ctx))
        .bind(id.into_uuid())
        .bind(step)
        .execute(self.pool())
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn use_recovery_code(&self, ctx: &TenantCtx, id: UserId, hash: &[u8]) -> StoreResult<bool> {
        let result =
            sqlx::query("DELETE FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3")
                .bind(tenant(ctx))
                .bind(id.into_uuid())
                .bind(hash)
                .execute(self.pool())
                .await
                .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn count_recovery_codes(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<u32> {
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant(ctx))
            .bind(id.into_uuid())
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::backend)?
            .get(0);
        Ok(u32::try_from(count).unwrap_or(0))
    }

    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, tenant_id, user_id, mfa_passed, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.token_hash.0.as_slice())
        .bind(session.tenant_id.into_uuid())
        .bind(session.user_id.into_uuid())
        .bind(session.mfa_passed)
        .bind(session.created_at.as_datetime())
        .bind(session.expires_at.as_datetime())
        .execute(self.pool())
        .await
        .map_err(map_error("token"))?;
        Ok(())
    }

    async fn find_console_session(&self, hash: &SecretHash) -> StoreResult<Option<ConsoleSession>> {
        let row = sqlx::query("SELECT * FROM console_sessions WHERE token_hash = $1")
            .bind(hash.0.as_slice())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_session).transpose()
    }

    async fn delete_console_session(&self, hash: &SecretHash) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(hash.0.as_slice())
            .execute(self.pool())
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }
}

/// Locks the tenant's owner rows until the transaction ends: a concurrent demotion or removal
/// of an owner waits, then counts the owners as they are after this one.
async fn lock_owners(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, ctx: &TenantCtx) -> StoreResult<()> {
    sqlx::query("SELECT id FROM users WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE")
        .bind(tenant(ctx))
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::backend)?;
    Ok(())
}
