//! Operator and tenant-admin actions shared by the command line and (later) the console and
//! API: tenants, sites and API clients.

use rand::RngExt;
use steward_domain::tenant::{CollectionSettings, Domain};
use steward_domain::{ApiClient, ClientId, Scopes, Site, SiteId, SiteKey, Tenant, Timestamp};
use steward_store::{Store, StoreError, TenantCtx};

use crate::auth;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("no tenant with id {0}")]
    NoTenant(String),
    #[error("the tenant has no client with id {0}")]
    NoClient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create_tenant(store: &dyn Store, name: &str, now: Timestamp) -> Result<Tenant, AdminError> {
    let tenant = Tenant::new(name, now).map_err(|e| AdminError::Invalid(e.to_string()))?;
    store.create_tenant(&tenant).await?;
    Ok(tenant)
}

/// The tenant context for an id given on the command line, once the tenant is known to exist.
pub async fn tenant_ctx(store: &dyn Store, id: &str) -> Result<TenantCtx, AdminError> {
    let tenant_id = steward_domain::TenantId::parse(id).map_err(|_| AdminError::NoTenant(id.to_string()))?;
    match store.get_tenant(tenant_id).await? {
        Some(tenant) => Ok(TenantCtx::new(tenant.id)),
        None => Err(AdminError::NoTenant(id.to_string())),
    }
}

pub async fn add_site(
    store: &dyn Store,
    ctx: &TenantCtx,
    domain: &str,
    collection: CollectionSettings,
    now: Timestamp,
) -> Result<Site, AdminError> {
    let domain = Domain::parse(domain).map_err(|e| AdminError::Invalid(format!("domain {domain:?} {e}")))?;
    let site = Site {
        id: SiteId::new(),
        tenant_id: ctx.tenant_id(),
        domain,
        site_key: SiteKey::from_random(rand::rng().random()),
        created_at: now,
        collection,
    };
    store.add_site(ctx, &site).await?;
    Ok(site)
}

/// Creates a client and returns it with its secret, which is not kept and cannot be shown again.
pub async fn create_client(
    store: &dyn Store,
    ctx: &TenantCtx,
    name: &str,
    scopes: Scopes,
    now: Timestamp,
) -> Result<(ApiClient, String), AdminError> {
    let name =
        steward_domain::text::line(name.to_string(), 200).map_err(|e| AdminError::Invalid(format!("name {e}")))?;
    if scopes.is_empty() {
        return Err(AdminError::Invalid("a client needs at least one scope".into()));
    }
    let (secret, secret_hash) = auth::new_client_secret();
    let client =
        ApiClient { id: ClientId::new(), tenant_id: ctx.tenant_id(), name, secret_hash, scopes, created_at: now };
    store.create_client(ctx, &client).await?;
    Ok((client, secret))
}

fn client_id(id: &str) -> Result<ClientId, AdminError> {
    ClientId::parse(id).map_err(|_| AdminError::NoClient(id.to_string()))
}

/// Gives a client a new secret, returned once; the old one stops working at once for new
/// tokens. Tokens already issued stay valid until they expire (at most `api.token_ttl_seconds`)
/// so that a planned rotation needs no downtime, unless `revoke_tokens` (a leaked secret) ends
/// them too. Returns the client id, the new secret and how many tokens were revoked.
pub async fn rotate_client_secret(
    store: &dyn Store,
    ctx: &TenantCtx,
    id: &str,
    revoke_tokens: bool,
) -> Result<(ClientId, String, u64), AdminError> {
    let id = client_id(id)?;
    let (secret, secret_hash) = auth::new_client_secret();
    match store.rotate_client_secret(ctx, id, &secret_hash, revoke_tokens).await? {
        Some(revoked) => Ok((id, secret, revoked)),
        None => Err(AdminError::NoClient(id.to_string())),
    }
}

/// Deletes a client and every token it holds; returns it with how many tokens went with it.
pub async fn delete_client(store: &dyn Store, ctx: &TenantCtx, id: &str) -> Result<(ApiClient, u64), AdminError> {
    let id = client_id(id)?;
    let client = store
        .find_client(id)
        .await?
        .filter(|client| client.tenant_id == ctx.tenant_id())
        .ok_or_else(|| AdminError::NoClient(id.to_string()))?;
    match store.delete_client(ctx, id).await? {
        Some(revoked) => Ok((client, revoked)),
        None => Err(AdminError::NoClient(id.to_string())),
    }
}

/// Records a data-subject request that reached the operator (the processor) and forwards it to
/// the tenant (the controller): pending in its API and console, audited, never answered here
/// (GDPR Art. 28(3)(e): the processor assists, the controller answers). `input` is the JSON of
/// `POST /api/v1/data-subject-requests` without `execute`.
pub async fn forward_request(
    store: &dyn Store,
    ctx: &TenantCtx,
    input: serde_json::Value,
    now: Timestamp,
) -> Result<steward_domain::subject::SubjectRequest, AdminError> {
    let input: crate::api::subjects::RequestInput =
        serde_json::from_value(input).map_err(|e| AdminError::Invalid(format!("the request file: {e}")))?;
    if input.execute.is_some() {
        return Err(AdminError::Invalid(
            "a forwarded request is never carried out by the operator; leave `execute` out".into(),
        ));
    }
    let (mut request, _) = input
        .validate(steward_domain::subject::RequestOrigin::Processor, now)
        .map_err(|errors| AdminError::Invalid(errors.to_string()))?;
    request.step(now, "forwarded", ("operator", None), Some("received by the service provider and forwarded".into()));
    let operator = crate::subjects::Acting {
        actor: steward_store::Actor { kind: steward_store::ActorKind::Operator, id: None },
        ip_network: None,
    };
    crate::subjects::record_pending(store, ctx, &mut request, &operator, "subject_request.forwarded", now).await?;
    Ok(request)
}
