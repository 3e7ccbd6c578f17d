//! Console users: creating them (shared by `steward user create` and the console, so both
//! validate, hash and audit the same way), changing a role and removing a user, with the rules
//! that keep a tenant administrable: it always has an owner, only owners give or take the owner
//! role, and nobody changes their own role or removes themselves.

use serde_json::json;
use steward_domain::{Email, Password, Role, Timestamp, User, UserId};
use steward_store::{Actor, AuditDraft, Store, StoreError, StoreExt, Target, TenantCtx, UserRecord, users};

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

/// Why a role change or a removal was refused, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("there is no such user")]
    NoUser,
    #[error("{0} is the only owner; make another user owner first, so that someone can still manage the tenant")]
    LastOwner(String),
    #[error("you cannot change your own role; another owner or admin can")]
    OwnRole,
    #[error("you cannot remove yourself; another owner or admin can")]
    Yourself,
    #[error("only owners may give or take the owner role")]
    OwnersOnly,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user `id` of this tenant with the address opened, and whether they are its only owner.
async fn target(store: &dyn Store, ctx: &TenantCtx, id: UserId) -> Result<(UserRecord, User, bool), ChangeError> {
    let all = store.users().list_users(ctx).await?;
    let record = all.iter().find(|user| user.id == id).cloned().ok_or(ChangeError::NoUser)?;
    let user = users::open_user(ctx, &*store.keys(ctx)?, &record)?;
    let owners = all.iter().filter(|user| user.role == Role::Owner).count();
    let only_owner = record.role == Role::Owner && owners == 1;
    Ok((record, user, only_owner))
}

fn draft(actor: Actor, now: Timestamp, action: &str, id: UserId, detail: serde_json::Value) -> AuditDraft {
    AuditDraft {
        at: now,
        actor,
        action: action.into(),
        target: Target { kind: "user".into(), count: 1, ids: vec![id.into_uuid()] },
        detail,
        ip_network: super::peer_network(),
    }
}

/// Gives user `id` the role `role` on behalf of `by`, audited as `user.role_changed` with the
/// roles `from` and `to`. Answers the user and their previous role (the same role when nothing
/// changed, which is not audited).
pub async fn change_role(
    store: &dyn Store,
    ctx: &TenantCtx,
    by: &User,
    id: UserId,
    role: Role,
    actor: Actor,
    now: Timestamp,
) -> Result<(User, Role), ChangeError> {
    let (record, user, only_owner) = target(store, ctx, id).await?;
    if (record.role == Role::Owner || role == Role::Owner) && by.role != Role::Owner {
        return Err(ChangeError::OwnersOnly);
    }
    // Before the rule on one's own role: the last owner learns what would let them step down.
    if only_owner && role != Role::Owner {
        return Err(ChangeError::LastOwner(user.email.as_str().to_string()));
    }
    if by.id == id {
        return Err(ChangeError::OwnRole);
    }
    if record.role == role {
        return Ok((user, role));
    }
    if !store.users().set_user_role(ctx, id, role).await? {
        // Changed or removed since it was read: say which.
        return Err(match store.users().get_user(ctx, id).await? {
            Some(_) => ChangeError::LastOwner(user.email.as_str().to_string()),
            None => ChangeError::NoUser,
        });
    }
    let detail = json!({"from": record.role.as_str(), "to": role.as_str()});
    store.audit(ctx, &draft(actor, now, "user.role_changed", id, detail)).await?;
    Ok((User { role, ..user }, record.role))
}

/// Removes user `id` on behalf of `by`, with their sessions (they are signed out at once), TOTP
/// secret and recovery codes; audited as `user.removed` with the role they had.
pub async fn remove_user(
    store: &dyn Store,
    ctx: &TenantCtx,
    by: &User,
    id: UserId,
    actor: Actor,
    now: Timestamp,
) -> Result<User, ChangeError> {
    let (record, user, only_owner) = target(store, ctx, id).await?;
    if record.role == Role::Owner && by.role != Role::Owner {
        return Err(ChangeError::OwnersOnly);
    }
    if only_owner {
        return Err(ChangeError::LastOwner(user.email.as_str().to_string()));
    }
    if by.id == id {
        return Err(ChangeError::Yourself);
    }
    if !store.users().delete_user(ctx, id).await? {
        return Err(match store.users().get_user(ctx, id).await? {
            Some(_) => ChangeError::LastOwner(user.email.as_str().to_string()),
            None => ChangeError::NoUser,
        });
    }
    store.audit(ctx, &draft(actor, now, "user.removed", id, json!({"role": record.role.as_str()}))).await?;
    Ok(user)
}
