use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{problem, problem_fields, spawn_app};

fn full_lead() -> Value {
    json!({
        "contact_id": "crm-42",
        "first_name": "Aino",
        "last_name": "Järvinen",
        "email": "aino.jarvinen@example.fi",
        "phone": "+358 40 123 4567",
        "company_name": "Esimerkki Oy",
        "bot": {"id": "b-1", "name": "Hinnasto", "type": "chat"},
        "answers": [{"question": "Budjetti?", "answer": "10k", "answered_at": "2026-11-01T10:00:00Z"}],
        "score": 80,
        "tags": ["b2b"],
        "custom_fields": {"size": "50-99"},
        "first_touch": {"landing_url": "https://example.fi/", "utm": {"source": "google", "medium": "cpc"}, "occurred_at": "2026-11-01T09:00:00+02:00"},
        "location": {"country_code": "FI", "city": "Tampere"},
        "ip_address": "198.51.100.77",
        "consent": {"marketing": true, "captured_at": "2026-11-01T10:00:00Z", "source": "form"}
    })
}

#[tokio::test]
async fn a_created_lead_is_read_back_exactly_with_a_location() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let created = app.post("/api/v1/leads", &token, &full_lead()).await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let lead: Value = created.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()));
    assert_eq!(lead["phone"], "+358401234567");
    assert_eq!(lead["ip_network"], "198.51.100.0/24");
    assert_eq!(lead["first_touch"]["occurred_at"], "2026-11-01T07:00:00Z");
    assert_eq!(lead["status"], "new");
    let fetched: Value = app.get(&location, &token).await.json().await.unwrap();
    assert_eq!(fetched, lead);
}

#[tokio::test]
async fn a_lead_with_bad_email_country_phone_and_timestamp_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let mut lead = full_lead();
    lead["email"] = json!("aino@@example");
    lead["phone"] = json!("040 123");
    lead["location"]["country_code"] = json!("XY");
    lead["first_touch"]["occurred_at"] = json!("2026-13-45 25:00");
    let body = problem(app.post("/api/v1/leads", &token, &lead).await, 422).await;
    let fields = problem_fields(&body);
    for field in ["email", "phone", "location.country_code", "first_touch.occurred_at"] {
        assert!(fields.contains(&field.to_string()), "{field} not named in {fields:?}");
    }
    assert_eq!(fields.len(), 4, "only the bad fields are named: {fields:?}");
    assert!(body["detail"].as_str().unwrap().contains("nothing was stored"));
    let page: Value = app.get("/api/v1/leads", &token).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
}

#[tokio::test]
async fn valid_edge_cases_are_accepted() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let cases = [
        json!({"email": "aino+newsletter@example.fi"}),
        json!({"email": "matti@exämple.fi"}),
        json!({"email": "o'brien@example.ie", "phone": "+358501234567"}),
        json!({"phone": "+358 9 1234 567"}),
        json!({"first_name": "Åsa", "location": {"country_code": "ax"}}),
    ];
    for case in cases {
        let response = app.post("/api/v1/leads", &token, &case).await;
        assert_eq!(response.status(), 201, "{case} was refused: {}", response.text().await.unwrap());
    }
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_named() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let typed =
        problem(app.post("/api/v1/leads", &token, &json!({"email": "a@example.fi", "score": "high"})).await, 422).await;
    assert_eq!(problem_fields(&typed), vec!["score"]);
    let unknown = problem(app.post("/api/v1/leads", &token, &json!({"emial": "a@example.fi"})).await, 422).await;
    assert!(unknown["detail"].as_str().unwrap().contains("emial"));
    let read_only =
        problem(app.post("/api/v1/leads", &token, &json!({"id": "x", "email": "a@example.fi"})).await, 422).await;
    assert_eq!(problem_fields(&read_only), vec!["id"]);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415_or_400() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let text = app.http.post(app.url("/api/v1/leads")).bearer_auth(&token).body("email=a@b.fi").send().await.unwrap();
    problem(text, 415).await;
    let broken = app
        .http
        .post(app.url("/api/v1/leads"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    problem(broken, 400).await;
}

#[tokio::test]
async fn merge_patch_changes_clears_and_keeps_server_fields() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let created: Value = app.post("/api/v1/leads", &token, &full_lead()).await.json().await.unwrap();
    let path = format!("/api/v1/leads/{}", created["id"].as_str().unwrap());
    app.state.clock.advance(time::Duration::minutes(5));
    let response = app.patch(&path, &token, &json!({"first_name": "Eino", "phone": null, "status": "qualified"})).await;
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["first_name"], "Eino");
    assert_eq!(patched["phone"], Value::Null);
    assert_eq!(patched["status"], "qualified");
    assert_eq!(patched["email"], created["email"]);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert_ne!(patched["updated_at"], created["updated_at"]);

    let bad =
        problem(app.patch(&path, &token, &json!({"email": "nope", "created_at": "2020-01-01T00:00:00Z"})).await, 422)
            .await;
    assert_eq!(problem_fields(&bad), vec!["created_at", "email"], "every bad field at once");
    let bad = problem(app.patch(&path, &token, &json!({"email": "nope"})).await, 422).await;
    assert_eq!(problem_fields(&bad), vec!["email"]);
    let unchanged: Value = app.get(&path, &token).await.json().await.unwrap();
    assert_eq!(unchanged, patched, "a refused patch changes nothing");
}

#[tokio::test]
async fn delete_removes_and_then_404() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let created: Value = app.post("/api/v1/leads", &token, &full_lead()).await.json().await.unwrap();
    let path = format!("/api/v1/leads/{}", created["id"].as_str().unwrap());
    assert_eq!(app.delete(&path, &token).await.status(), 204);
    problem(app.get(&path, &token).await, 404).await;
    problem(app.delete(&path, &token).await, 404).await;
}

async fn seed(app: &crate::helpers::TestApp, token: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let response = app.post("/api/v1/leads", token, &json!({"email": format!("lead{n}@example.fi")})).await;
        assert_eq!(response.status(), 201);
        let lead: Value = response.json().await.unwrap();
        ids.push(lead["id"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test]
async fn following_next_cursor_returns_every_lead_once_in_order_even_while_leads_are_added() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let original = seed(&app, &token, 230).await;

    let mut seen: Vec<String> = Vec::new();
    let mut path = "/api/v1/leads?limit=50".to_string();
    let mut pages = 0;
    loop {
        let response = app.get(&path, &token).await;
        assert_eq!(response.status(), 200);
        let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        let page: Value = response.json().await.unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()));
        pages += 1;
        // New leads arrive while the client pages through.
        if pages <= 3 {
            seed(&app, &token, 7).await;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let link = link.expect("a Link header accompanies next_cursor");
                assert!(link.contains(&format!("cursor={cursor}")) && link.ends_with("rel=\"next\""), "{link}");
                path = format!("/api/v1/leads?limit=50&cursor={cursor}");
            }
            None => {
                assert!(link.is_none(), "no Link on the last page");
                break;
            }
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no lead twice");
    assert_eq!(&seen[..original.len()], &original[..], "original leads first, in creation order");
    assert_eq!(seen.len(), original.len() + 21, "leads added meanwhile come at the end");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "stable ascending id order");
}

#[tokio::test]
async fn lists_filter_by_created_and_updated_time() {
    let mut settings = steward_server::Settings::default();
    settings.api.token_ttl_seconds = 7 * 24 * 3600;
    let app = crate::helpers::spawn_app_with(settings).await;
    let (_, token) = app.tenant_token("Acme").await;
    let start = app.state.clock.now();
    let first = seed(&app, &token, 2).await;
    app.state.clock.advance(time::Duration::days(1));
    let middle = app.state.clock.now();
    let second = seed(&app, &token, 3).await;
    app.state.clock.advance(time::Duration::days(1));
    let end = app.state.clock.now();
    app.patch(&format!("/api/v1/leads/{}", first[0]), &token, &json!({"status": "won"})).await;

    let ids = |body: Value| -> Vec<String> {
        body["data"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect()
    };
    let q = |params: String| format!("/api/v1/leads?{params}");
    let enc = |t: steward_domain::Timestamp| t.to_string().replace('+', "%2B");
    let window = app.get(&q(format!("created_from={}&created_to={}", enc(middle), enc(end))), &token).await;
    assert_eq!(ids(window.json().await.unwrap()), second);
    let before = app.get(&q(format!("created_from={}&created_to={}", enc(start), enc(middle))), &token).await;
    assert_eq!(ids(before.json().await.unwrap()), first);
    let changed = app.get(&q(format!("updated_since={}", enc(end))), &token).await;
    assert_eq!(ids(changed.json().await.unwrap()), vec![first[0].clone()]);
}

#[tokio::test]
async fn bad_list_parameters_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%%%", "cursor"),
        ("created_from=yesterday", "created_from"),
        ("created_from=2026-02-01T00:00:00Z&created_to=2026-01-01T00:00:00Z", "created_to"),
        ("create_from=2026-01-01T00:00:00Z", "create_from"),
    ] {
        let body = problem(app.get(&format!("/api/v1/leads?{query}"), &token).await, 422).await;
        assert_eq!(problem_fields(&body), vec![field.to_string()], "{query}");
    }
}

#[tokio::test]
async fn leads_are_found_by_exact_email_phone_or_contact_id() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let target: Value = app.post("/api/v1/leads", &token, &full_lead()).await.json().await.unwrap();
    seed(&app, &token, 5).await;
    for query in [
        "email=AINO.JARVINEN%40Example.FI",
        "phone=%2B358%2040%20123%204567",
        "contact_id=crm-42",
        "email=aino.jarvinen%40example.fi&phone=%2B358401234567",
    ] {
        let page: Value = app.get(&format!("/api/v1/leads?{query}"), &token).await.json().await.unwrap();
        let ids: Vec<&Value> = page["data"].as_array().unwrap().iter().map(|l| &l["id"]).collect();
        assert_eq!(ids, vec![&target["id"]], "{query}");
    }
    let none: Value = app.get("/api/v1/leads?email=nobody%40example.fi", &token).await.json().await.unwrap();
    assert_eq!(none["data"], json!([]));
    let bad = problem(app.get("/api/v1/leads?email=not-an-email", &token).await, 422).await;
    assert_eq!(problem_fields(&bad), vec!["email"]);
}
