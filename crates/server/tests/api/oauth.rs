use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, python, spawn_app};

/// A token for a client's credentials, with client_secret_basic.
async fn token_of(app: &TestApp, id: &str, secret: &str) -> String {
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// POSTs `form` to an OAuth endpoint as client `id` (client_secret_basic).
async fn oauth_post(app: &TestApp, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.http.post(app.url(path)).basic_auth(id, Some(secret)).form(form).send().await.unwrap()
}

async fn introspect(app: &TestApp, id: &str, secret: &str, token: &str) -> Value {
    let response = oauth_post(app, "/oauth/introspect", id, secret, &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

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

#[tokio::test]
async fn a_revoked_token_is_refused_by_the_api_at_once() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;
    let token = token_of(&app, &id, &secret).await;
    assert_eq!(app.get("/api/v1/leads", &token).await.status(), 200);

    let response =
        oauth_post(&app, "/oauth/revoke", &id, &secret, &[("token", &token), ("token_type_hint", "access_token")])
            .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "", "RFC 7009 answers with an empty body");
    let refused = app.get("/api/v1/leads", &token).await;
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    problem(refused, 401).await;

    // Revoking again, or revoking a token that never existed, is still 200.
    for again in [token.as_str(), "stw_at_never_issued"] {
        let response = oauth_post(&app, "/oauth/revoke", &id, &secret, &[("token", again)]).await;
        assert_eq!(response.status(), 200);
    }
    // The revocation is in the tenant's audit log, by the client, without the token.
    let admin = app.token(&ctx, "audit:read").await;
    let log: Value = app.get("/api/v1/audit-log?action=token.revoked", &admin).await.json().await.unwrap();
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["actor"]["kind"], "client");
    assert_eq!(entries[0]["actor"]["id"], id.as_str());
    assert!(!log.to_string().contains(&token));
}

#[tokio::test]
async fn revoking_another_clients_token_answers_200_and_leaves_it_working() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let (owner, owner_secret) = app.client(&acme, "leads:read").await;
    let token = token_of(&app, &owner, &owner_secret).await;
    let (colleague, colleague_secret) = app.client(&acme, "leads:read").await;
    let other = app.tenant("Other").await;
    let (stranger, stranger_secret) = app.client(&other, "leads:read").await;

    for (id, secret) in [(&colleague, &colleague_secret), (&stranger, &stranger_secret)] {
        let response = oauth_post(&app, "/oauth/revoke", id, secret, &[("token", &token)]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "");
        assert_eq!(app.get("/api/v1/leads", &token).await.status(), 200, "only the owner revokes its token");
    }
}

#[tokio::test]
async fn revoke_and_introspect_need_client_authentication_and_a_token() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;
    let token = token_of(&app, &id, &secret).await;
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let anonymous = app.http.post(app.url(path)).form(&[("token", &token)]).send().await.unwrap();
        assert_eq!(anonymous.headers()["www-authenticate"], "Basic realm=\"steward\"", "{path}");
        assert_eq!(problem(anonymous, 401).await["error"], "invalid_client", "{path}");

        let wrong = oauth_post(&app, path, &id, "stw_cs_wrong", &[("token", &token)]).await;
        assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"steward\"", "{path}");
        assert_eq!(problem(wrong, 401).await["error"], "invalid_client", "{path}");

        // The bearer token itself is no client authentication.
        let bearer = app.http.post(app.url(path)).bearer_auth(&token).form(&[("token", &token)]).send().await.unwrap();
        assert_eq!(problem(bearer, 401).await["error"], "invalid_client", "{path}");

        let missing = oauth_post(&app, path, &id, &secret, &[]).await;
        assert_eq!(problem(missing, 400).await["error"], "invalid_request", "{path}");
    }
    assert_eq!(app.get("/api/v1/leads", &token).await.status(), 200, "failed revocations revoke nothing");
}

#[tokio::test]
async fn introspection_of_an_active_token_names_its_client_scope_and_times() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read export").await;
    let token = token_of(&app, &id, &secret).await;
    let issued = app.state.clock.now().unix_micros().div_euclid(1_000_000);
    // Another client of the same tenant asks, with client_secret_post.
    let (colleague, colleague_secret) = app.client(&ctx, "leads:read").await;
    let response = app
        .http
        .post(app.url("/oauth/introspect"))
        .form(&[("token", token.as_str()), ("client_id", &colleague), ("client_secret", &colleague_secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let expected = json!({
        "active": true,
        "scope": "leads:read export",
        "client_id": id,
        "token_type": "Bearer",
        "exp": issued + 3600,
        "iat": issued,
        "sub": id,
    });
    assert_eq!(body, expected);
    assert_eq!(introspect(&app, &id, &secret, &token).await, expected, "the owner sees the same");
}

#[tokio::test]
async fn introspection_says_only_inactive_for_expired_revoked_unknown_and_other_tenants_tokens() {
    let inactive = json!({"active": false});
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;

    assert_eq!(introspect(&app, &id, &secret, "stw_at_never_issued").await, inactive, "unknown");

    let revoked = token_of(&app, &id, &secret).await;
    assert_eq!(oauth_post(&app, "/oauth/revoke", &id, &secret, &[("token", &revoked)]).await.status(), 200);
    assert_eq!(introspect(&app, &id, &secret, &revoked).await, inactive, "revoked");

    let other = app.tenant("Other").await;
    let (stranger, stranger_secret) = app.client(&other, "leads:read").await;
    let foreign = token_of(&app, &stranger, &stranger_secret).await;
    assert_eq!(introspect(&app, &id, &secret, &foreign).await, inactive, "another tenant's");
    assert_eq!(introspect(&app, &stranger, &stranger_secret, &foreign).await["active"], true);

    let expiring = token_of(&app, &id, &secret).await;
    assert_eq!(introspect(&app, &id, &secret, &expiring).await["active"], true);
    app.state.clock.advance(time::Duration::seconds(3600));
    assert_eq!(introspect(&app, &id, &secret, &expiring).await, inactive, "expired at exp");
}

/// A third-party client library (authlib's OAuth2Session with client_secret_basic) gets a
/// token, uses it, revokes it and finds it inactive afterwards.
#[tokio::test]
async fn authlib_fetches_uses_revokes_and_introspects_a_token() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (id, secret) = app.client(&ctx, "leads:read").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/check_oauth.py");
    // The script blocks; the server it talks to runs on this test's runtime, so the script
    // runs on a thread of its own.
    let (address, client) = (app.address.clone(), id.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python()).arg(script).arg(address).arg(client).arg(secret).output()
    })
    .await
    .unwrap()
    .expect("run check_oauth.py");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "authlib disagrees:\n{}\n{stderr}", String::from_utf8_lossy(&output.stdout));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["token_type"], "Bearer");
    assert_eq!(report["scope"], "leads:read");
    assert_eq!(report["leads_status"], 200);
    assert_eq!(report["leads"], json!([]));
    assert_eq!(report["introspection_before"]["active"], true);
    assert_eq!(report["introspection_before"]["client_id"], id.as_str());
    assert_eq!(report["revoke_status"], 200);
    assert_eq!(report["revoke_body"], "");
    assert_eq!(report["leads_status_after_revoke"], 401);
    assert_eq!(report["introspection_after"], json!({"active": false}));
}

/// Median time of `/oauth/token` for a known id with a wrong secret, an unknown id and a
/// malformed one: a figure, not a gate (timings on a shared machine are noisy). Run with
/// `--run-ignored only` and `--nocapture`.
#[tokio::test]
#[ignore = "a measurement; prints figures"]
async fn token_endpoint_timing_of_known_unknown_and_malformed_client_ids() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (known, _) = app.client(&ctx, "leads:read").await;
    let unknown = steward_domain::ClientId::new().to_string();
    let mut medians = Vec::new();
    for (name, id) in [("known id, wrong secret", known.as_str()), ("unknown id", &unknown), ("malformed id", "x")] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let started = std::time::Instant::now();
            let response = app
                .http
                .post(app.url("/oauth/token"))
                .basic_auth(id, Some("stw_cs_wrong"))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401);
            times.push(started.elapsed());
        }
        times.sort();
        medians.push((name, times[100]));
    }
    for (name, median) in &medians {
        println!("{name}: median {median:?}");
    }
}
