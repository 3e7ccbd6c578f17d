use serde_json::Value;

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn a_token_from_client_secret_basic_lists_leads() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "leads:read");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let leads = app.get("/api/v1/leads", token).await;
    assert_eq!(leads.status(), 200);
    let page: Value = leads.json().await.unwrap();
    assert_eq!(page["data"], serde_json::json!([]));
    assert_eq!(page["next_cursor"], Value::Null);
}

#[tokio::test]
async fn client_secret_post_works_and_a_narrower_scope_can_be_asked_for() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read leads:write").await;
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "leads:read"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "leads:read");
    let token = body["access_token"].as_str().unwrap();
    let refused = app.post("/api/v1/leads", token, &serde_json::json!({"email": "a@example.fi"})).await;
    let refused = problem(refused, 403).await;
    assert!(refused["detail"].as_str().unwrap().contains("leads:write"));
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_client_is_401_invalid_client() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, _) = app.client(&ctx, "leads:read").await;
    for (user, password) in
        [(id.as_str(), "stw_cs_wrong"), ("0190b8c2-0000-7000-8000-000000000000", "x"), ("not-an-id", "x")]
    {
        let response = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(user, Some(password))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"steward\"");
        let body = problem(response, 401).await;
        assert_eq!(body["error"], "invalid_client");
    }
}

#[tokio::test]
async fn bad_grants_and_scopes_are_400_with_oauth_error_codes() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;
    let cases = [
        (vec![("grant_type", "password")], "unsupported_grant_type"),
        (vec![], "invalid_request"),
        (vec![("grant_type", "client_credentials"), ("scope", "leads:write")], "invalid_scope"),
        (vec![("grant_type", "client_credentials"), ("scope", "root")], "invalid_scope"),
    ];
    for (form, code) in cases {
        let response =
            app.http.post(app.url("/oauth/token")).basic_auth(&id, Some(&secret)).form(&form).send().await.unwrap();
        let body = problem(response, 400).await;
        assert_eq!(body["error"], code, "{form:?}");
    }
}

#[tokio::test]
async fn missing_wrong_and_expired_tokens_are_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;

    let missing = app.http.get(app.url("/api/v1/leads")).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"steward\"");
    problem(missing, 401).await;

    let wrong = app.get("/api/v1/leads", "stw_at_forged").await;
    let challenge = wrong.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    problem(wrong, 401).await;

    assert_eq!(app.get("/api/v1/leads", &token).await.status(), 200);
    app.state.clock.advance(time::Duration::seconds(3601));
    let expired = app.get("/api/v1/leads", &token).await;
    assert!(expired.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let body = problem(expired, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn a_token_without_the_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let token = app.token(&ctx, "organizations:read").await;
    let response = app.get("/api/v1/leads", &token).await;
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"leads:read\""));
    problem(response, 403).await;
    assert_eq!(app.get("/api/v1/organizations", &token).await.status(), 200);
}
