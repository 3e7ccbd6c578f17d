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

/// The headers every answer carries, whichever layer gave it.
fn assert_security_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
}

#[tokio::test]
async fn a_body_refused_by_its_declared_length_carries_the_security_headers() {
    let mut settings = steward_server::Settings::default();
    settings.api.max_body_bytes = 1_000;
    let app = spawn_app_with(settings).await;
    let (_, token) = app.tenant_token("Acme").await;
    let big = serde_json::json!({"email": "a@example.fi", "custom_fields": {"x": "y".repeat(5_000)}});
    let response = app.post("/api/v1/leads", &token, &big).await;
    assert_security_headers(response.headers());
    let body = problem(response, 413).await;
    assert!(body["detail"].as_str().unwrap().contains("api.max_body_bytes"), "{body}");
}

/// Sends `request` over a plain TCP connection and reads the answer until the server closes:
/// (status line, headers in lower case, body).
async fn raw_exchange(address: &str, request: &[u8]) -> (String, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

#[tokio::test]
async fn a_query_string_past_what_hyper_reads_is_a_problem_json_414_with_the_security_headers() {
    let app = spawn_app().await;
    let request = format!("GET /api/v1/leads?email={} HTTP/1.1\r\nhost: steward.test\r\n\r\n", "a".repeat(70_000));
    let (status, headers, body) = raw_exchange(&app.address, request.as_bytes()).await;
    assert_eq!(status, "HTTP/1.1 414 URI Too Long");
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(header("content-type"), Some("application/problem+json"));
    assert_eq!(header("x-content-type-options"), Some("nosniff"));
    assert_eq!(header("referrer-policy"), Some("no-referrer"));
    assert_eq!(header("x-frame-options"), Some("DENY"));
    assert_eq!(header("content-security-policy"), Some("default-src 'none'; frame-ancestors 'none'"));
    assert_eq!(header("content-length"), Some(body.len().to_string().as_str()));
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 414);
    assert_eq!(problem["type"], "/problems/uri-too-long");
    assert!(problem["detail"].as_str().unwrap().contains("64 KiB"), "{problem}");

    // The server goes on serving.
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_with_read_only_fields_and_bad_values_names_every_bad_field_in_one_422() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let body = serde_json::json!({
        "id": "0190d1e2-0000-7000-8000-000000000000", "created_at": "2026-01-01T00:00:00Z",
        "email": "not an email", "score": "high", "tags": "vip", "first_name": "Aino", "favourite_colour": "red",
        "phone": "12", "first_touch": {"utm": {"source": 7}}
    });
    let response = app.post("/api/v1/leads", &token, &body).await;
    assert_security_headers(response.headers());
    let found = problem(response, 422).await;
    let mut fields = crate::helpers::problem_fields(&found);
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "email", "favourite_colour", "first_touch.utm.source", "id", "phone", "score", "tags"],
        "{found:#}"
    );

    let created: serde_json::Value =
        app.post("/api/v1/leads", &token, &serde_json::json!({"email": "aino@example.fi"})).await.json().await.unwrap();
    let path = format!("/api/v1/leads/{}", created["id"].as_str().unwrap());
    let patch = serde_json::json!({"updated_at": "2026-01-01T00:00:00Z", "email": "nope", "score": [1]});
    let problem = problem(app.patch(&path, &token, &patch).await, 422).await;
    let mut fields = crate::helpers::problem_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["email", "score", "updated_at"], "{problem:#}");
    let unchanged: serde_json::Value = app.get(&path, &token).await.json().await.unwrap();
    assert_eq!(unchanged["email"], "aino@example.fi");
}

#[tokio::test]
async fn a_list_query_with_several_bad_parameters_names_every_one_in_one_422() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let query = "limit=0&cursor=%25%25&created_from=yesterday&updated_since=soon&colour=red&email=nope";
    let response = app.get(&format!("/api/v1/leads?{query}"), &token).await;
    assert_security_headers(response.headers());
    let problem = problem(response, 422).await;
    let mut fields = crate::helpers::problem_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["colour", "created_from", "cursor", "email", "limit", "updated_since"], "{problem:#}");
}
