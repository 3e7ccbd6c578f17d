//! Collection through its public doors: `/tracker.js`, `/collect` and lead capture by the API.

use serde_json::{Value, json};
use steward_domain::tenant::CollectionSettings;
use steward_domain::{Site, Timestamp};
use steward_server::{Settings, admin};
use steward_store::TenantCtx;

use crate::helpers::{TestApp, problem, problem_fields, spawn_app, spawn_app_with};

async fn site(app: &TestApp, ctx: &TenantCtx, domain: &str, collection: CollectionSettings) -> Site {
    admin::add_site(app.store.as_ref(), ctx, domain, collection, Timestamp::now()).await.expect("site")
}

fn at(app: &TestApp, offset_seconds: i64) -> String {
    let now = app.state.clock.now();
    now.checked_add(time::Duration::seconds(offset_seconds)).expect("time").to_rfc3339()
}

async fn send(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.post(app.url("/collect")).header("content-type", "text/plain").body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST /collect")
}

async fn journeys(app: &TestApp, token: &str, visitor: &str) -> Value {
    let response = app.get(&format!("/api/v1/journey-insights?profile_ids={visitor}"), token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"][0]["sessions"].clone()
}

fn page_view(url: &str, occurred_at: &str) -> Value {
    json!({"type": "page_view", "url": url, "title": "A page", "occurred_at": occurred_at})
}

#[tokio::test]
async fn a_batch_stores_its_valid_events_and_names_the_invalid_ones_by_index() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let batch = json!({
        "site_key": site.site_key, "visitor_id": visitor, "language": "fi-FI",
        "events": [
            page_view("https://shop.example/?utm_source=news&email=aino@acme.fi#top", &at(&app, -300)),
            {"type": "page_view", "occurred_at": at(&app, -290)},
            {"type": "click", "occurred_at": "last tuesday"},
            page_view("https://shop.example/pricing", &at(&app, -240)),
            {"type": "form_submit", "url": "https://shop.example/contact", "occurred_at": at(&app, -200),
             "lead": {"first_name": "Aino", "email": "aino@acme.fi", "consent": {"marketing": true, "source": "contact form"}}},
        ]
    });
    let response = send(&app, &batch, &[("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")]).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["rejected"][0]["index"], 1);
    assert_eq!(report["rejected"][0]["errors"][0]["field"], "url");
    assert_eq!(report["rejected"][1]["index"], 2);
    assert_eq!(report["rejected"][1]["errors"][0]["field"], "occurred_at");

    let sessions = journeys(&app, &token, &visitor).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions:#}");
    let session = &sessions[0];
    let events = session["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["page_view", "page_view", "form_submit"]);
    let positions: Vec<u64> = events.iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, [1, 2, 3]);
    assert_eq!(events[0]["url"], "https://shop.example/?utm_source=news", "only campaign parameters are kept");
    assert_eq!(events[0]["time_on_page_s"], 60);
    assert_eq!(session["utm"]["source"], "news");
    assert_eq!(session["referrer_type"], "campaign");
    assert_eq!(session["ip_network"], "127.0.0.0/24");
    assert_eq!(session["device"]["type"], "desktop");
    assert_eq!(session["device"]["browser"], "Chrome");
    assert_eq!(session["device"]["language"], "fi-FI");
    assert_eq!(session["converted"], true);

    let profile: Value = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.json().await.unwrap();
    assert_eq!(profile["identified"], true);
    assert_eq!(profile["event_count"], 3);
    assert_eq!(profile["pageview_count"], 2);
    let lead_id = profile["lead_ids"][0].as_str().expect("the lead is on the profile").to_string();
    let lead: Value = app.get(&format!("/api/v1/leads/{lead_id}"), &token).await.json().await.unwrap();
    assert_eq!(lead["visitor_profile_id"], visitor.as_str());
    assert_eq!(lead["email"], "aino@acme.fi");
    assert_eq!(lead["ip_network"], "127.0.0.0/24");
    assert_eq!(lead["first_touch"]["utm"]["source"], "news");
    assert_eq!(events[2]["properties"]["lead_id"], lead_id.as_str());
    let organization_id = lead["organization_id"].as_str().expect("linked to the email's organization");
    assert_eq!(profile["organization_id"], organization_id);
    let organization: Value =
        app.get(&format!("/api/v1/organizations/{organization_id}"), &token).await.json().await.unwrap();
    assert_eq!(organization["domain"], "acme.fi");
    assert_eq!(organization["contacts"][0]["lead_id"], lead_id.as_str());
    assert_eq!(organization["visitor_count"], 1);
}

#[tokio::test]
async fn a_batch_with_no_valid_event_stores_nothing_and_says_why_for_each() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let batch = json!({"site_key": site.site_key, "visitor_id": visitor,
        "events": [{"type": "warp"}, {"type": "page_view", "url": "javascript:alert(1)"}]});
    let body = problem(send(&app, &batch, &[]).await, 422).await;
    assert_eq!(problem_fields(&body), ["events[0].type", "events[1].url"]);
    let response = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await;
    assert_eq!(response.status(), 404, "nothing was stored");

    let no_visitor = json!({"site_key": site.site_key, "events": [page_view("https://shop.example/", &at(&app, 0))]});
    let body = problem(send(&app, &no_visitor, &[]).await, 422).await;
    assert_eq!(problem_fields(&body), ["visitor_id"]);
    let body = problem(app.http.post(app.url("/collect")).body("{not json").send().await.unwrap(), 400).await;
    assert!(body["detail"].as_str().unwrap().contains("not a collection batch"), "{body}");
}

#[tokio::test]
async fn unknown_keys_big_bodies_and_foreign_origins_are_refused() {
    let app = spawn_app().await;
    let (ctx, _) = app.tenant_token("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let event = page_view("https://shop.example/", &at(&app, 0));

    let unknown = json!({"site_key": "site_aaaaaaaaaaaaaaaaaaaaaaaaaa", "visitor_id": visitor, "events": [event]});
    let body = problem(send(&app, &unknown, &[]).await, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("site_key"), "{body}");

    let padding = "x".repeat(70_000);
    let big = json!({"site_key": site.site_key, "visitor_id": visitor,
        "events": [{"type": "custom", "properties": {"padding": padding}}]});
    let body = problem(send(&app, &big, &[]).await, 413).await;
    assert!(body["detail"].as_str().unwrap().contains("collect.max_body_bytes"), "{body}");

    let good = json!({"site_key": site.site_key, "visitor_id": visitor, "events": [event]});
    let foreign = send(&app, &good, &[("origin", "https://shop.example.evil.test")]).await;
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
    problem(foreign, 403).await;
    let own = send(&app, &good, &[("origin", "https://www.shop.example")]).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["access-control-allow-origin"], "https://www.shop.example");

    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url(&format!("/collect?site_key={}", site.site_key.as_str())))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let granted = preflight("https://shop.example").await.unwrap();
    assert_eq!(granted.headers()["access-control-allow-origin"], "https://shop.example");
    let refused = preflight("https://evil.test").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_late_event_lands_in_its_place_in_the_right_session() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let batch = |events: Value| json!({"site_key": site.site_key, "visitor_id": visitor, "events": events});
    // Visit 1 at -2h and -2h+3min; visit 2 an hour later.
    let first = batch(json!([
        page_view("https://shop.example/a", &at(&app, -7200)),
        page_view("https://shop.example/c", &at(&app, -7020)),
        page_view("https://shop.example/z", &at(&app, -3600)),
    ]));
    assert_eq!(send(&app, &first, &[]).await.status(), 200);
    // Two minutes later the browser's delayed beacon brings the page viewed in between.
    app.state.clock.advance(time::Duration::minutes(2));
    let late = batch(json!([page_view("https://shop.example/b", &at(&app, -7200 - 120 + 60))]));
    assert_eq!(send(&app, &late, &[]).await.status(), 200);

    let sessions = journeys(&app, &token, &visitor).await;
    assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions:#}");
    let urls: Vec<&str> =
        sessions[0]["events"].as_array().unwrap().iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert_eq!(urls, ["https://shop.example/a", "https://shop.example/b", "https://shop.example/c"]);
    let positions: Vec<u64> =
        sessions[0]["events"].as_array().unwrap().iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, [1, 2, 3]);
    assert_eq!(sessions[0]["events"][0]["time_on_page_s"], 60, "the page before the late one was read 60 s");
    assert_eq!(sessions[0]["pageview_count"], 3);
    assert_eq!(sessions[1]["visit_index"], 2);
    assert_eq!(sessions[1]["events"].as_array().unwrap().len(), 1);
    let profile: Value = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.json().await.unwrap();
    assert_eq!(profile["visit_count"], 2);
    assert_eq!(profile["pageview_count"], 4);
}

#[tokio::test]
async fn an_api_lead_with_a_visitor_id_identifies_the_visitor_and_free_mail_names_no_organization() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let visit = json!({"site_key": site.site_key, "visitor_id": visitor,
        "events": [page_view("https://shop.example/?utm_campaign=spring&utm_source=ads", &at(&app, -60))]});
    assert_eq!(send(&app, &visit, &[]).await.status(), 200);

    let response = app.post("/api/v1/leads", &token, &json!({"email": "matti@gmail.com", "visitor_id": visitor})).await;
    assert_eq!(response.status(), 201);
    let lead: Value = response.json().await.unwrap();
    assert_eq!(lead["visitor_profile_id"], visitor.as_str());
    assert_eq!(lead["organization_id"], Value::Null, "gmail.com is nobody's organization");
    assert_eq!(lead["last_touch"]["utm"]["campaign"], "spring");
    let profile: Value = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.json().await.unwrap();
    assert_eq!(profile["identified"], true);
    assert_eq!(profile["lead_ids"][0], lead["id"]);

    let first = app.post("/api/v1/leads", &token, &json!({"email": "a@firma.fi"})).await.json::<Value>().await.unwrap();
    let second =
        app.post("/api/v1/leads", &token, &json!({"email": "b@FIRMA.fi"})).await.json::<Value>().await.unwrap();
    assert_eq!(first["organization_id"], second["organization_id"], "one organization per domain");
    let organization: Value = app
        .get(&format!("/api/v1/organizations/{}", first["organization_id"].as_str().unwrap()), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(organization["contacts"].as_array().unwrap().len(), 2);

    let missing = json!({"email": "c@firma.fi", "visitor_id": uuid::Uuid::now_v7().to_string()});
    let body = problem(app.post("/api/v1/leads", &token, &missing).await, 422).await;
    assert_eq!(problem_fields(&body), ["visitor_profile_id"]);
}

#[tokio::test]
async fn privacy_choices_of_the_site_are_kept() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let honouring =
        site(&app, &ctx, "private.example", CollectionSettings { cookieless: false, honour_gpc: true }).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let event = page_view("https://private.example/", &at(&app, 0));
    let batch = json!({"site_key": honouring.site_key, "visitor_id": visitor, "events": [event]});
    let report: Value = send(&app, &batch, &[("sec-gpc", "1")]).await.json().await.unwrap();
    assert_eq!(report, json!({"accepted": 0, "rejected": [], "ignored": 1}));
    assert_eq!(app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.status(), 404);

    let cookieless =
        site(&app, &ctx, "nocookie.example", CollectionSettings { cookieless: true, honour_gpc: false }).await;
    let script =
        app.http.get(app.url(&format!("/tracker.js?site_key={}", cookieless.site_key.as_str()))).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    let script = script.text().await.unwrap();
    assert!(script.starts_with("var __steward_config = {"), "{}", &script[..80]);
    assert!(script.contains("\"cookieless\":true"));
    let anonymous =
        json!({"site_key": cookieless.site_key, "events": [page_view("https://nocookie.example/", &at(&app, -10))]});
    let agent = [("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")];
    assert_eq!(send(&app, &anonymous, &agent).await.status(), 200);
    assert_eq!(send(&app, &anonymous, &agent).await.status(), 200);
    let profiles: Value = app.get("/api/v1/visitor-profiles", &token).await.json().await.unwrap();
    let profiles = profiles["data"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "the same browser is one visitor for the day: {profiles:#?}");
    assert_eq!(profiles[0]["event_count"], 2);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_masked_and_its_country_kept() {
    let mut settings = Settings::default();
    settings.collect.trusted_proxies = vec!["127.0.0.0/8".into()];
    settings.collect.country_header = "CF-IPCountry".into();
    let app = spawn_app_with(settings).await;
    let (ctx, token) = app.tenant_token("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let visitor = uuid::Uuid::now_v7().to_string();
    let batch = json!({"site_key": site.site_key, "visitor_id": visitor,
        "events": [page_view("https://shop.example/", &at(&app, 0))]});
    let forwarded = [("x-forwarded-for", "198.51.100.1, 203.0.113.77"), ("cf-ipcountry", "FI")];
    assert_eq!(send(&app, &batch, &forwarded).await.status(), 200);
    let sessions = journeys(&app, &token, &visitor).await;
    assert_eq!(sessions[0]["ip_network"], "203.0.113.0/24");
    assert_eq!(sessions[0]["location"]["country_code"], "FI");
    let profile: Value = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.json().await.unwrap();
    assert_eq!(profile["ip_network"], "203.0.113.0/24");
    assert_eq!(profile["last_location"]["country_code"], "FI");
}

/// `/tracker.js` as fetched with `headers`: its status, its `Vary` and its endpoint.
async fn tracker_endpoint(app: &TestApp, site: &Site, headers: &[(&str, &str)]) -> (String, Option<String>) {
    let mut request = app.http.get(app.url(&format!("/tracker.js?site_key={}", site.site_key.as_str())));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let vary = response.headers().get("vary").map(|v| v.to_str().unwrap().to_string());
    let script = response.text().await.unwrap();
    let config = script.strip_prefix("var __steward_config = ").and_then(|rest| rest.split_once(";\n")).unwrap().0;
    let config: Value = serde_json::from_str(config).unwrap();
    (config["endpoint"].as_str().unwrap().to_string(), vary)
}

const HOSTILE: [(&str, &str); 3] =
    [("host", "evil.example"), ("x-forwarded-proto", "http"), ("x-forwarded-host", "evil.example")];

#[tokio::test]
async fn the_tracker_names_the_configured_public_url_whatever_host_the_request_claims() {
    let mut settings = Settings::default();
    settings.server.public_url = "https://steward.example/analytics/".into();
    let app = spawn_app_with(settings).await;
    let ctx = app.tenant("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let (endpoint, vary) = tracker_endpoint(&app, &site, &HOSTILE).await;
    assert_eq!(endpoint, "https://steward.example/analytics/collect");
    assert_eq!(vary, None);
}

#[tokio::test]
async fn without_a_public_url_an_untrusted_host_is_ignored_and_a_trusted_proxy_is_believed() {
    let app = spawn_app().await;
    let ctx = app.tenant("Shop Oy").await;
    let site = site(&app, &ctx, "shop.example", CollectionSettings::default()).await;
    let (endpoint, vary) = tracker_endpoint(&app, &site, &HOSTILE).await;
    assert_eq!(endpoint, format!("{}/collect", app.address), "the listening address, not the Host header");
    assert_eq!(vary, None);

    let mut settings = Settings::default();
    settings.collect.trusted_proxies = vec!["127.0.0.1".into()];
    let proxied = spawn_app_with(settings).await;
    let ctx = proxied.tenant("Shop Oy").await;
    let site = self::site(&proxied, &ctx, "shop.example", CollectionSettings::default()).await;
    let forwarded =
        [("host", "10.0.0.5:8080"), ("x-forwarded-host", "stats.shop.example"), ("x-forwarded-proto", "https")];
    let (endpoint, vary) = tracker_endpoint(&proxied, &site, &forwarded).await;
    assert_eq!(endpoint, "https://stats.shop.example/collect");
    assert_eq!(vary.as_deref(), Some("host, x-forwarded-host, x-forwarded-proto"));
    // Even a trusted proxy cannot put a script into the script.
    let injected = [("x-forwarded-host", "a.example\";alert(1);//")];
    let (endpoint, _) = tracker_endpoint(&proxied, &site, &injected).await;
    assert_eq!(endpoint, format!("{}/collect", proxied.address));
}
