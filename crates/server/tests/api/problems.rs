//! Every error, from whichever layer, is RFC 9457 problem+json with a request id.

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems_too() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = problem(response, 404).await;
    assert_eq!(body["instance"], "/api/v1/nothing-here");
    assert_eq!(body["request_id"], request_id);
    let body = problem(app.http.put(app.url("/api/v1/leads")).send().await.unwrap(), 405).await;
    assert_eq!(body["type"], "/problems/method-not-allowed");
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let mut settings = steward_server::Settings::default();
    settings.api.max_body_bytes = 1_000;
    let app = spawn_app_with(settings).await;
    let (_, token) = app.tenant_token("Acme").await;
    let big = serde_json::json!({"email": "a@example.fi", "custom_fields": {"x": "y".repeat(5_000)}});
    problem(app.post("/api/v1/leads", &token, &big).await, 413).await;
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health: serde_json::Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready: serde_json::Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], crate::helpers::backend());
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let answers = [
        app.get("/api/v1/leads", &token).await,
        app.http.get(app.url("/api/v1/nothing-here")).send().await.unwrap(),
        app.http.get(app.url("/openapi.json")).send().await.unwrap(),
    ];
    for response in answers {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
        assert!(headers.get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    }
    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    let policy = docs.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.starts_with("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
}
