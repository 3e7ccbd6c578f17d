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
