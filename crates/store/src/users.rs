//! Console users and their sessions as stored: the email sealed with the tenant key and found
//! by a keyed blind index, the password as an argon2id PHC string, the TOTP secret sealed, the
//! last accepted TOTP step (a code is good once), recovery codes as keyed hashes (each good
//! once), the failed-attempt count and lock, and session tokens by their SHA-256 only.
//!
//! The operations that must not race (using a TOTP step, a recovery code, counting a failure)
//! are single conditional statements, so two requests with the same code cannot both pass.

use std::fmt;

use async_trait::async_trait;
use steward_domain::{Email, Role, SecretHash, Tenant, TenantId, Timestamp, User, UserId};

use crate::vault::TenantKeys;
use crate::{StoreError, StoreResult, TenantCtx};

/// A user row. Its secrets stay sealed or hashed; [`open_user`] turns it into a [`User`].
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    /// [`email_key`] of the address: the only way to find a user by email.
    pub email_key: Vec<u8>,
    /// The address sealed with the tenant key, bound to this row.
    pub email_sealed: Vec<u8>,
    pub role: Role,
    /// argon2id, PHC string format.
    pub password_hash: String,
    /// The TOTP secret sealed with the tenant key; set when enrolment starts.
    pub totp_secret: Option<Vec<u8>>,
    /// When enrolment was confirmed with a code; until then the secret is only a proposal.
    pub totp_enrolled_at: Option<Timestamp>,
    /// The newest TOTP time step accepted; only later steps are accepted after it.
    pub totp_last_step: Option<i64>,
    pub failed_attempts: u32,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("enrolled", &self.totp_enrolled_at.is_some())
            .field("failed_attempts", &self.failed_attempts)
            .finish_non_exhaustive()
    }
}

/// A console session, found by the SHA-256 of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub token_hash: SecretHash,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// False for a session opened with the password alone by a user without TOTP: it can only
    /// enrol (or sign out).
    pub mfa_passed: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The lockout schedule [`UserStore::reserve_sign_in`] applies: `free` attempts since the
/// last success, then a lock of `first_seconds` that doubles with each further attempt, up to
/// `max_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSchedule {
    pub free: u32,
    pub first_seconds: i64,
    pub max_seconds: i64,
}

impl LockSchedule {
    /// How long the `attempt`th attempt since the last success locks the account, if at all.
    pub fn lock_seconds(&self, attempt: u32) -> Option<i64> {
        let past = attempt.checked_sub(self.free)?;
        let factor = 1i64.checked_shl(past.min(32)).unwrap_or(i64::MAX);
        Some(self.first_seconds.saturating_mul(factor).min(self.max_seconds))
    }
}

/// The answer of [`UserStore::reserve_sign_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may be checked; it is the `attempt`th since the last success. `locked_until`
    /// is set when it was the last free one: the account is locked from now on.
    Granted { attempt: u32, locked_until: Option<Timestamp> },
    /// Locked until then: the attempt is neither checked nor counted.
    Locked { until: Timestamp },
    /// No such user in the tenant.
    Unknown,
}

/// Users and console sessions; every backend implements it beside [`crate::Store`].
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Tenants with this slug (slugs are derived from names and need not be unique).
    async fn tenants_by_slug(&self, slug: &str) -> StoreResult<Vec<Tenant>>;

    /// `Conflict { field: "email" }` when the tenant has a user with this address.
    async fn create_user(&self, ctx: &TenantCtx, user: &UserRecord) -> StoreResult<()>;
    async fn get_user(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// The tenant's users in id (creation) order.
    async fn list_users(&self, ctx: &TenantCtx) -> StoreResult<Vec<UserRecord>>;
    async fn find_user_by_email_key(&self, ctx: &TenantCtx, key: &[u8]) -> StoreResult<Option<UserRecord>>;

    /// Gives a user another role. False when the tenant has no such user, or when the user is
    /// its last owner and `role` is not owner: the check and the change are one step, so two
    /// owners demoting each other at once cannot leave the tenant without one.
    async fn set_user_role(&self, ctx: &TenantCtx, id: UserId, role: Role) -> StoreResult<bool>;
    /// Removes a user with their console sessions (signed out at once), TOTP secret and
    /// recovery codes, in one transaction. False when the tenant has no such user, or when the
    /// user is its last owner.
    async fn delete_user(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<bool>;

    /// Reserves one sign-in attempt before its password is checked, in one statement: refused
    /// while the account is locked; otherwise counted, and when the count reaches the
    /// schedule's free attempts the lock is set at once, whatever this attempt's outcome. So at
    /// most `schedule.free` attempts are ever evaluated at a time, however many arrive together
    /// and on however many nodes.
    async fn reserve_sign_in(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        now: Timestamp,
        schedule: LockSchedule,
    ) -> StoreResult<Reservation>;
    /// After a successful attempt: clears the count and lock, but only when no attempt was
    /// reserved after this one (`attempt`, as reserved), so that a success in the middle of a
    /// burst of guesses cannot lift the lock the burst earned. True when cleared.
    async fn clear_sign_in(&self, ctx: &TenantCtx, id: UserId, attempt: u32) -> StoreResult<bool>;
    /// Sets the failure count and lock (an operator's unlock: 0 and none).
    async fn set_sign_in_lock(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        failed_attempts: u32,
        locked_until: Option<Timestamp>,
    ) -> StoreResult<()>;

    /// Proposes a sealed TOTP secret: only when none is pending unless `replace` (the user
    /// asked for a new one), so reloads, second tabs and other nodes keep showing the secret
    /// already scanned. False when nothing was written: already enrolled (or unknown), or a
    /// proposal is pending and `replace` is false.
    async fn start_totp_enrolment(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        sealed_secret: &[u8],
        replace: bool,
    ) -> StoreResult<bool>;
    /// Confirms the proposed secret — exactly `sealed_secret`, the one the code was checked
    /// against, not one proposed since — with the step of the code that proved it (used up),
    /// and replaces the recovery codes; false when already enrolled or that secret is not the
    /// one pending.
    async fn finish_totp_enrolment(
        &self,
        ctx: &TenantCtx,
        id: UserId,
        sealed_secret: &[u8],
        at: Timestamp,
        step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool>;
    /// Accepts a TOTP step once: true only when it is later than every step accepted before.
    async fn use_totp_step(&self, ctx: &TenantCtx, id: UserId, step: i64) -> StoreResult<bool>;
    /// Uses up a recovery code by its hash; true only the first time.
    async fn use_recovery_code(&self, ctx: &TenantCtx, id: UserId, hash: &[u8]) -> StoreResult<bool>;
    async fn count_recovery_codes(&self, ctx: &TenantCtx, id: UserId) -> StoreResult<u32>;

    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()>;
    async fn find_console_session(&self, hash: &SecretHash) -> StoreResult<Option<ConsoleSession>>;
    async fn delete_console_session(&self, hash: &SecretHash) -> StoreResult<bool>;
}

fn context(ctx: &TenantCtx, id: UserId, part: &str) -> Vec<u8> {
    let mut context = format!("users/{part}\0").into_bytes();
    context.extend_from_slice(ctx.tenant_id().as_uuid().as_bytes());
    context.extend_from_slice(id.as_uuid().as_bytes());
    context
}

/// The blind-index key of a user's address: keyed per tenant and apart from leads' email keys,
/// so the two cannot be joined.
pub fn email_key(keys: &TenantKeys, email: &Email) -> Vec<u8> {
    keys.lookup_key("user_email", &email.lookup_key())
}

/// A new user row: the address sealed and indexed, no TOTP yet.
pub fn new_record(ctx: &TenantCtx, keys: &TenantKeys, user: &User, password_hash: String) -> UserRecord {
    UserRecord {
        id: user.id,
        email_key: email_key(keys, &user.email),
        email_sealed: keys.seal(&context(ctx, user.id, "email"), user.email.as_str().as_bytes()),
        role: user.role,
        password_hash,
        totp_secret: None,
        totp_enrolled_at: None,
        totp_last_step: None,
        failed_attempts: 0,
        locked_until: None,
        created_at: user.created_at,
    }
}

pub fn open_user(ctx: &TenantCtx, keys: &TenantKeys, record: &UserRecord) -> StoreResult<User> {
    let email = keys.open(&context(ctx, record.id, "email"), &record.email_sealed)?;
    let email = String::from_utf8(email).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(User {
        id: record.id,
        tenant_id: ctx.tenant_id(),
        email: Email::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        role: record.role,
        mfa_enrolled: record.totp_enrolled_at.is_some(),
        created_at: record.created_at,
    })
}

pub fn seal_totp_secret(ctx: &TenantCtx, keys: &TenantKeys, id: UserId, secret: &[u8]) -> Vec<u8> {
    keys.seal(&context(ctx, id, "totp"), secret)
}

pub fn open_totp_secret(ctx: &TenantCtx, keys: &TenantKeys, id: UserId, sealed: &[u8]) -> StoreResult<Vec<u8>> {
    Ok(keys.open(&context(ctx, id, "totp"), sealed)?)
}

/// The keyed hash a recovery code is stored as (the code normalised by the caller).
pub fn recovery_code_hash(keys: &TenantKeys, id: UserId, normalised: &str) -> Vec<u8> {
    keys.lookup_key("recovery_code", &format!("{id}\0{normalised}"))
}
