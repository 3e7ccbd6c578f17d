//! `steward demo`: a seeded demo tenant, an API client for it, and the server, with the URL
//! and credentials printed for a person to copy.

use std::sync::Arc;

use anyhow::Context;
use steward_domain::tenant::CollectionSettings;
use steward_domain::{Lead, Scopes, Tenant, Timestamp};
use steward_server::{AppState, Settings, admin};
use steward_store::{Store, StoreExt, TenantCtx};

const DEMO_TENANT: &str = "Demo Oy";
const BATCH: usize = 5_000;

pub async fn run(store: Arc<dyn Store>, settings: Settings, size: f64) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let tenant = match store.list_tenants().await?.into_iter().find(|t| t.name == DEMO_TENANT) {
        Some(tenant) => tenant,
        None => seed(store.as_ref(), size, now).await?,
    };
    let ctx = TenantCtx::new(tenant.id);
    let (client, secret) = admin::create_client(store.as_ref(), &ctx, "Demo client", Scopes::all(), now).await?;
    let leads = store.count::<Lead>(&ctx).await?;
    // A console owner per start, with a fresh password shown once: nothing guessable is left
    // behind in a demo that someone forgets to stop.
    let (password, _) = steward_server::auth::new_secret("");
    let suffix: String = client.id.to_string().chars().rev().take(6).collect();
    let email = format!("owner-{suffix}@demo.example");
    let operator = steward_store::Actor { kind: steward_store::ActorKind::Operator, id: None };
    steward_server::console::users::create_user(store.as_ref(), &ctx, &email, "owner", &password, operator, now)
        .await
        .map_err(|e| anyhow::anyhow!("the demo console user could not be created: {e}"))?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("Steward demo is running at {base}");
    println!("  API documentation: {base}/docs");
    println!("  Tenant:            {} ({}), {leads} leads", tenant.name, tenant.id);
    println!("Sign in to the console at {base}/console/sign-in (organisation {}):", tenant.slug);
    println!("  email:             {email}");
    println!("  password:          {password}");
    println!("  The first sign-in asks you to enrol an authenticator app (TOTP) with a QR code.");
    println!("API client (OAuth 2.0 client credentials):");
    println!("  client_id:         {}", client.id);
    println!("  client_secret:     {secret}");
    println!("Get a token and list leads:");
    println!(
        "  TOKEN=$(curl -s -u '{}:{secret}' -d grant_type=client_credentials {base}/oauth/token \
         | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/') && \
         curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/api/v1/leads?limit=5'",
        client.id
    );
    println!("Press Ctrl+C to stop.");
    steward_server::serve(listener, AppState::new(store, settings), crate::shutdown_signal()).await?;
    Ok(())
}

async fn seed(store: &dyn Store, size: f64, now: Timestamp) -> anyhow::Result<Tenant> {
    let tenant = admin::create_tenant(store, DEMO_TENANT, now).await?;
    let ctx = TenantCtx::new(tenant.id);
    admin::add_site(store, &ctx, "www.demo-oy.example", CollectionSettings::default(), now).await?;
    let config = steward_demo::DemoConfig::demo(now).scaled(size);
    let data = steward_demo::generate(&config);
    for chunk in data.organizations.chunks(BATCH) {
        store.insert(&ctx, chunk).await?;
    }
    for chunk in data.visitors.chunks(BATCH) {
        store.insert(&ctx, chunk).await?;
    }
    for chunk in data.sessions.chunks(BATCH) {
        store.insert(&ctx, chunk).await?;
    }
    for chunk in data.events.chunks(BATCH) {
        store.insert(&ctx, chunk).await?;
    }
    for chunk in data.leads.chunks(BATCH) {
        store.insert(&ctx, chunk).await?;
    }
    tracing::info!(
        organizations = data.organizations.len(),
        visitors = data.visitors.len(),
        sessions = data.sessions.len(),
        events = data.events.len(),
        leads = data.leads.len(),
        "demo tenant seeded"
    );
    Ok(tenant)
}
