//! 500 requests a minute per API client: headers on every answer, 429 past the budget, other
//! clients unaffected, the budget back after a minute.

use steward_server::Settings;

use crate::helpers::{problem, spawn_app, spawn_app_with};

/// `RateLimit: "per-client";r=R;t=T` as (R, T).
fn budget(response: &reqwest::Response) -> (u32, u64) {
    let value = response.headers()["ratelimit"].to_str().unwrap().to_string();
    let field = |key: &str| -> String {
        value
            .split(';')
            .find_map(|part| part.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {value}"))
            .into()
    };
    (field("r=").parse().unwrap(), field("t=").parse().unwrap())
}

#[tokio::test]
async fn the_501st_request_in_a_minute_is_429_and_another_client_is_unaffected() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let first = app.token(&ctx, "leads:read").await;
    let second = app.token(&ctx, "leads:read").await;
    for n in 1..=500u32 {
        let response = app.get("/api/v1/leads?limit=1", &first).await;
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(response.headers()["ratelimit-policy"], "\"per-client\";q=500;w=60");
        let (remaining, reset) = budget(&response);
        assert_eq!(remaining, 500 - n, "request {n}");
        assert!(reset <= 60, "{reset}");
    }
    let refused = app.get("/api/v1/leads?limit=1", &first).await;
    let (remaining, reset) = budget(&refused);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body = problem(refused, 429).await;
    assert_eq!(body["type"], "/problems/rate-limited");
    assert!(body["detail"].as_str().unwrap().contains("500 requests a minute"));
    assert_eq!(remaining, 0);
    assert!(retry_after >= reset && retry_after >= 1, "Retry-After {retry_after} < reset {reset}");

    let other = app.get("/api/v1/leads?limit=1", &second).await;
    assert_eq!(other.status(), 200, "another client has its own budget");
    assert_eq!(budget(&other).0, 499);

    app.state.clock.advance(time::Duration::seconds(61));
    let again = app.get("/api/v1/leads?limit=1", &first).await;
    assert_eq!(again.status(), 200, "the budget refills");
}

#[tokio::test]
async fn the_budget_is_configurable_and_reported_on_errors_too() {
    let mut settings = Settings::default();
    settings.api.rate_limit_per_minute = 3;
    let app = spawn_app_with(settings).await;
    let (_, token) = app.tenant_token("Acme").await;
    let missing = app.get("/api/v1/leads/01a2082f-cec1-7631-8e48-ea30c23d07b4", &token).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["ratelimit-policy"], "\"per-client\";q=3;w=60");
    assert_eq!(budget(&missing).0, 2);
    assert_eq!(app.get("/api/v1/leads", &token).await.status(), 200);
    assert_eq!(app.get("/api/v1/leads", &token).await.status(), 200);
    let refused = app.get("/api/v1/leads", &token).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "one request comes back every 20 s: {retry_after}");
    problem(refused, 429).await;
}

/// A client-credentials request with `id` and `secret` in the body.
async fn token_attempt(app: &crate::helpers::TestApp, id: &str, secret: &str) -> reqwest::Response {
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap()
}

/// Asserts a 429 problem with Retry-After and the named RateLimit policy; returns its detail.
async fn refused(response: reqwest::Response, policy: &str, limit: u32) -> String {
    assert_eq!(response.headers()["ratelimit-policy"], format!("\"{policy}\";q={limit};w=60").as_str());
    assert!(response.headers()["ratelimit"].to_str().unwrap().contains("r=0"));
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/rate-limited");
    body["detail"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_token_endpoint_refuses_the_n_plus_first_attempt_per_client_id_known_or_not() {
    let mut settings = Settings::default();
    settings.api.token_requests_per_minute = 3;
    let app = spawn_app_with(settings).await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;
    for _ in 0..3 {
        assert_eq!(token_attempt(&app, &id, "stw_cs_wrong").await.status(), 401);
    }
    let detail = refused(token_attempt(&app, &id, &secret).await, "per-client-id", 3).await;
    assert!(detail.contains("api.token_requests_per_minute"), "{detail}");
    // A made-up id is limited the same way, and its own budget is apart from the real one's.
    for _ in 0..3 {
        assert_eq!(token_attempt(&app, "cl_made_up", "guess").await.status(), 401);
    }
    refused(token_attempt(&app, "cl_made_up", "guess").await, "per-client-id", 3).await;
    let (other, other_secret) = app.client(&ctx, "leads:read").await;
    assert_eq!(token_attempt(&app, &other, &other_secret).await.status(), 200);
    // A minute later the right secret works again.
    app.state.clock.advance(time::Duration::seconds(61));
    assert_eq!(token_attempt(&app, &id, &secret).await.status(), 200);
}

#[tokio::test]
async fn the_token_endpoint_refuses_the_n_plus_first_attempt_from_one_network_across_ids() {
    let mut settings = Settings::default();
    settings.api.token_requests_per_minute_per_network = 5;
    let app = spawn_app_with(settings).await;
    for n in 0..5 {
        assert_eq!(token_attempt(&app, &format!("cl_guess_{n}"), "guess").await.status(), 401);
    }
    let detail = refused(token_attempt(&app, "cl_guess_5", "guess").await, "per-network", 5).await;
    assert!(detail.contains("network"), "{detail}");
}

fn event_batch(site_key: &str, app: &crate::helpers::TestApp, events: usize) -> serde_json::Value {
    let at = app.state.clock.now().to_rfc3339();
    let events: Vec<_> = (0..events)
        .map(
            |n| serde_json::json!({"type": "page_view", "url": format!("https://shop.example/{n}"), "occurred_at": at}),
        )
        .collect();
    serde_json::json!({"site_key": site_key, "visitor_id": uuid::Uuid::now_v7().to_string(), "events": events})
}

async fn collect(app: &crate::helpers::TestApp, batch: &serde_json::Value) -> reqwest::Response {
    app.http
        .post(app.url("/collect"))
        .header("content-type", "text/plain")
        .body(batch.to_string())
        .send()
        .await
        .unwrap()
}

async fn shop_site(app: &crate::helpers::TestApp, ctx: &steward_store::TenantCtx, domain: &str) -> String {
    let collection = steward_domain::tenant::CollectionSettings::default();
    let site =
        steward_server::admin::add_site(app.store.as_ref(), ctx, domain, collection, steward_domain::Timestamp::now())
            .await
            .unwrap();
    site.site_key.as_str().to_string()
}

#[tokio::test]
async fn collection_refuses_the_n_plus_first_request_per_site_and_per_network() {
    let mut settings = Settings::default();
    settings.collect.requests_per_minute_per_site = 3;
    let app = spawn_app_with(settings).await;
    let ctx = app.tenant("Shop Oy").await;
    let (busy, quiet) = (shop_site(&app, &ctx, "shop.example").await, shop_site(&app, &ctx, "other.example").await);
    for _ in 0..3 {
        assert_eq!(collect(&app, &event_batch(&busy, &app, 1)).await.status(), 200);
    }
    let detail = refused(collect(&app, &event_batch(&busy, &app, 1)).await, "per-site", 3).await;
    assert!(detail.contains("collect.requests_per_minute_per_site"), "{detail}");
    assert_eq!(collect(&app, &event_batch(&quiet, &app, 1)).await.status(), 200, "another site has its own budget");

    let mut settings = Settings::default();
    settings.collect.requests_per_minute_per_network = 3;
    let app = spawn_app_with(settings).await;
    let ctx = app.tenant("Shop Oy").await;
    let (one, two) = (shop_site(&app, &ctx, "shop.example").await, shop_site(&app, &ctx, "other.example").await);
    for key in [&one, &two, &one] {
        assert_eq!(collect(&app, &event_batch(key, &app, 1)).await.status(), 200);
    }
    refused(collect(&app, &event_batch(&two, &app, 1)).await, "per-network", 3).await;
}

#[tokio::test]
async fn collection_past_the_tenants_event_quota_is_refused_with_507_naming_the_quota() {
    let mut settings = Settings::default();
    settings.collect.max_events_per_tenant = 3;
    let app = spawn_app_with(settings).await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let key = shop_site(&app, &ctx, "shop.example").await;
    assert_eq!(collect(&app, &event_batch(&key, &app, 2)).await.status(), 200);
    let full = collect(&app, &event_batch(&key, &app, 2)).await;
    assert_eq!(full.headers()["x-content-type-options"], "nosniff");
    let body = problem(full, 507).await;
    assert_eq!(body["type"], "/problems/quota-exceeded");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("collect.max_events_per_tenant") && detail.contains("is 3"), "{detail}");
    assert_eq!(collect(&app, &event_batch(&key, &app, 1)).await.status(), 200, "what still fits is stored");
    let profiles: serde_json::Value = app.get("/api/v1/visitor-profiles", &token).await.json().await.unwrap();
    let events: u64 = profiles["data"].as_array().unwrap().iter().map(|p| p["event_count"].as_u64().unwrap()).sum();
    assert_eq!(events, 3);
    // Another tenant has its own quota.
    let other = app.tenant("Other Oy").await;
    let other_key = shop_site(&app, &other, "other.example").await;
    assert_eq!(collect(&app, &event_batch(&other_key, &app, 2)).await.status(), 200);
}
