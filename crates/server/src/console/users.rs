//! Creating console users: shared by `steward user create` and (later) the console's own user
//! management, so both validate, hash and audit the same way.

use serde_json::json;
use steward_domain::{Email, Password, Role, Timestamp, User, UserId};
use steward_store::{Actor, AuditDraft, Store, StoreError, StoreExt, Target, TenantCtx, users};

use super::security;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("email {0}")]
    Email(steward_domain::email::EmailError),
    #[error("{0}")]
    Role(steward_domain::user::RoleError),
    #[error("{0}")]
    Password(steward_domain::user::PasswordError),
    #[error("this tenant already has a user with that email address")]
    Taken,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for UserError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { field: "email" } => Self::Taken,
            other => Self::Store(other),
        }
    }
}

/// Creates a user with a password and no second factor yet: the first sign-in opens a session
/// that can only enrol TOTP (see [`super`]). Audited as `user.created` by `actor`.
pub async fn create_user(
    store: &dyn Store,
    ctx: &TenantCtx,
    email: &str,
    role: &str,
    password: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<User, UserError> {
    let email = Email::parse(email).map_err(UserError::Email)?;
    let role: Role = role.trim().parse().map_err(UserError::Role)?;
    let password = Password::parse(password).map_err(UserError::Password)?;
    let user =
        User { id: UserId::new(), tenant_id: ctx.tenant_id(), email, role, mfa_enrolled: false, created_at: now };
    let hash = security::hash_password(password).await?;
    let record = users::new_record(ctx, &*store.keys(ctx)?, &user, hash);
    store.users().create_user(ctx, &record).await?;
    let draft = AuditDraft {
        at: now,
        actor,
        action: "user.created".into(),
        target: Target { kind: "user".into(), count: 1, ids: vec![user.id.into_uuid()] },
        detail: json!({"role": role.as_str()}),
        ip_network: super::peer_network(),
    };
    store.audit(ctx, &draft).await?;
    Ok(user)
}
