//! Reports through HTTP: every count recomputed here from the seeded records, small groups
//! suppressed and counted, nothing personal in the output.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use steward_demo::{DemoConfig, DemoData, generate};
use steward_domain::visitor::{Event, EventType, Session};
use steward_domain::{EventId, SessionId, Timestamp, VisitorId, WebUrl};
use steward_store::{StoreExt, TenantCtx};
use uuid::Uuid;

use crate::helpers::{TestApp, problem, problem_fields, spawn_app};

const MIN_GROUP_SIZE: usize = 5;

async fn seed(app: &TestApp, ctx: &TenantCtx, data: &DemoData) {
    app.store.insert(ctx, &data.organizations).await.unwrap();
    app.store.insert(ctx, &data.visitors).await.unwrap();
    app.store.insert(ctx, &data.sessions).await.unwrap();
    app.store.insert(ctx, &data.events).await.unwrap();
    app.store.insert(ctx, &data.leads).await.unwrap();
}

fn day(at: Timestamp) -> time::Date {
    at.as_datetime().date()
}

/// The label of the period holding `at`, computed here without the server's code.
fn period(at: Timestamp, granularity: &str) -> String {
    let date = day(at);
    let start = match granularity {
        "day" => date,
        "week" => date - time::Duration::days(i64::from(date.weekday().number_days_from_monday())),
        _ => date.replace_day(1).unwrap(),
    };
    format!("{:04}-{:02}-{:02}", start.year(), start.month() as u8, start.day())
}

/// What one group counts; `people` decides suppression.
#[derive(Default)]
struct Group {
    people: HashSet<Uuid>,
    visitors: HashSet<Uuid>,
    sessions: u64,
    pageviews: u64,
    conversions: u64,
    leads: u64,
}

type Key = (String, Option<String>, Option<String>);
type Groups = BTreeMap<Key, Group>;

fn group<'a>(groups: &'a mut Groups, period: String, dimension: Option<&str>, value: Option<String>) -> &'a mut Group {
    groups.entry((period, dimension.map(str::to_string), value)).or_default()
}

/// The rows a report must hold (by key, with their metrics) and how many groups it must suppress.
fn expected(report: &str, groups: Groups) -> (BTreeMap<Key, Value>, u64) {
    let mut rows = BTreeMap::new();
    let mut suppressed = 0;
    for (key, g) in groups {
        if g.people.len() < MIN_GROUP_SIZE {
            suppressed += 1;
            continue;
        }
        let metrics = match report {
            "traffic" => json!({"visitors": g.visitors.len(), "sessions": g.sessions, "pageviews": g.pageviews}),
            "conversions" => json!({
                "visitors": g.visitors.len(), "sessions": g.sessions, "conversions": g.conversions, "leads": g.leads,
                "conversion_rate": (g.sessions > 0).then(|| (g.conversions as f64 / g.sessions as f64 * 1e4).round() / 1e4),
            }),
            "lead_sources" => json!({"leads": g.leads}),
            "top_pages" => json!({"visitors": g.visitors.len(), "pageviews": g.pageviews}),
            _ => json!({"visitors": g.visitors.len(), "sessions": g.sessions, "leads": g.leads}),
        };
        let metrics: serde_json::Map<String, Value> = metrics
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rows.insert(key, Value::Object(metrics));
    }
    (rows, suppressed)
}

/// The report's rows by key, with the metrics the report measures (the others must be null).
fn actual(body: &Value) -> BTreeMap<Key, Value> {
    let all = ["visitors", "sessions", "pageviews", "conversions", "leads", "conversion_rate"];
    let rows = body["data"].as_array().unwrap();
    let mut by_key = BTreeMap::new();
    for row in rows {
        let text = |field: &str| row[field].as_str().map(str::to_string);
        let key = (text("period_start").unwrap(), text("dimension"), text("group"));
        let metrics: serde_json::Map<String, Value> =
            all.iter().filter(|m| !row[**m].is_null()).map(|m| (m.to_string(), row[*m].clone())).collect();
        assert!(by_key.insert(key, Value::Object(metrics)).is_none(), "one row per period and group: {row}");
    }
    by_key
}

async fn report(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path, token).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn every_report_equals_counts_computed_from_the_seeded_records() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let now = app.state.clock.now();
    let data = generate(&DemoConfig::demo(now).scaled(0.05));
    seed(&app, &ctx, &data).await;
    let (from_day, to_day) = (day(now) - time::Duration::days(95), day(now) + time::Duration::days(1));
    let from = Timestamp::from_datetime(from_day.midnight().assume_utc());
    let to = Timestamp::from_datetime(to_day.midnight().assume_utc());
    let within = |at: Timestamp| at >= from && at < to;
    let sessions: Vec<&Session> = data.sessions.iter().filter(|s| within(s.started_at)).collect();
    let events: Vec<&Event> = data.events.iter().filter(|e| within(e.occurred_at)).collect();
    let leads: Vec<_> = data.leads.iter().filter(|l| within(l.created_at)).collect();
    let organization_of: HashMap<VisitorId, _> =
        data.visitors.iter().filter_map(|v| v.organization_id.map(|o| (v.id, o))).collect();
    let person = |lead: &steward_domain::Lead| lead.visitor_profile_id.map_or(lead.id.into_uuid(), |v| v.into_uuid());
    // A converted visitor's lead came from their first visit.
    let first_visit: HashMap<VisitorId, &Session> =
        data.sessions.iter().filter(|s| s.visit_index == 1).map(|s| (s.visitor_profile_id, s)).collect();

    let mut all: Vec<(&str, &str, Groups)> = Vec::new();
    let mut traffic = Groups::new();
    for s in &sessions {
        let g = group(&mut traffic, period(s.started_at, "week"), None, None);
        g.people.insert(s.visitor_profile_id.into_uuid());
        g.visitors.insert(s.visitor_profile_id.into_uuid());
        g.sessions += 1;
        g.pageviews += s.pageview_count;
    }
    all.push(("traffic", "week", traffic));

    let mut conversions = Groups::new();
    for s in &sessions {
        let g = group(&mut conversions, period(s.started_at, "day"), None, None);
        g.people.insert(s.visitor_profile_id.into_uuid());
        g.visitors.insert(s.visitor_profile_id.into_uuid());
        g.sessions += 1;
        g.conversions += u64::from(s.converted);
    }
    for l in &leads {
        let g = group(&mut conversions, period(l.created_at, "day"), None, None);
        g.people.insert(person(l));
        g.leads += 1;
    }
    all.push(("conversions", "day", conversions));

    let mut sources = Groups::new();
    for l in &leads {
        let first = l.visitor_profile_id.and_then(|v| first_visit.get(&v));
        let by = [
            ("source", l.bot.as_ref().map_or("unknown".to_string(), |b| b.kind.as_str().to_string())),
            ("referrer_type", first.map_or("unknown".to_string(), |s| s.referrer_type.as_str().to_string())),
            ("utm_source", first.and_then(|s| s.utm.source.clone()).unwrap_or_else(|| "(none)".into())),
        ];
        for (dimension, value) in by {
            let g = group(&mut sources, period(l.created_at, "month"), Some(dimension), Some(value));
            g.people.insert(person(l));
            g.leads += 1;
        }
    }
    all.push(("lead_sources", "month", sources));

    let mut pages = Groups::new();
    for e in events.iter().filter(|e| e.kind == EventType::PageView) {
        let url = e.url.as_ref().unwrap().as_str().split(['?', '#']).next().unwrap().to_string();
        let g = group(&mut pages, period(e.occurred_at, "month"), Some("page"), Some(url));
        g.people.insert(e.visitor_profile_id.into_uuid());
        g.visitors.insert(e.visitor_profile_id.into_uuid());
        g.pageviews += 1;
    }
    all.push(("top_pages", "month", pages));

    let mut organizations = Groups::new();
    for s in &sessions {
        let Some(o) = organization_of.get(&s.visitor_profile_id) else { continue };
        let g = group(&mut organizations, period(s.started_at, "month"), Some("organization"), Some(o.to_string()));
        g.people.insert(s.visitor_profile_id.into_uuid());
        g.visitors.insert(s.visitor_profile_id.into_uuid());
        g.sessions += 1;
    }
    for l in &leads {
        let Some(o) = l.organization_id else { continue };
        let g = group(&mut organizations, period(l.created_at, "month"), Some("organization"), Some(o.to_string()));
        g.people.insert(person(l));
        g.leads += 1;
    }
    all.push(("organizations", "month", organizations));

    let names: HashMap<String, String> =
        data.organizations.iter().map(|o| (o.id.to_string(), o.name.clone())).collect();
    for (name, granularity, groups) in all {
        let path = format!("/api/v1/reports/{name}?from={from_day}&to={to}&granularity={granularity}");
        let body = report(&app, &token, &path).await;
        let (rows, suppressed) = expected(name, groups);
        assert!(!rows.is_empty(), "{name}: the demo data should leave some rows");
        assert_eq!(actual(&body), rows, "{name} by {granularity}");
        assert_eq!(body["suppressed_groups"], suppressed, "{name}: suppressed groups");
        assert_eq!(body["report"], name);
        assert_eq!(body["granularity"], granularity);
        assert_eq!(body["from"], from.to_string());
        assert_eq!(body["to"], to.to_string());
        assert_eq!(body["min_group_size"], MIN_GROUP_SIZE);
        for row in body["data"].as_array().unwrap() {
            assert_eq!(row["report"], name);
            assert_eq!(row["granularity"], granularity);
            let label =
                if name == "organizations" { json!(names[row["group"].as_str().unwrap()]) } else { Value::Null };
            assert_eq!(row["label"], label);
        }
    }
    // lead_sources and organizations leave out small groups in this data: suppression is exercised.
    let sources = report(&app, &token, &format!("/api/v1/reports/lead_sources?from={from_day}&to={to}")).await;
    assert!(sources["suppressed_groups"].as_u64().unwrap() > 0);
}

/// A visitor with one visit viewing `url` at `at`, built from demo templates.
fn visit(template: &DemoData, at: Timestamp, url: &str) -> (steward_domain::VisitorProfile, Session, Event) {
    let mut profile = template.visitors[0].clone();
    profile.id = VisitorId::new();
    profile.organization_id = None;
    profile.first_seen_at = at;
    profile.last_seen_at = at;
    let mut session = template.sessions[0].clone();
    session.id = SessionId::new();
    session.visitor_profile_id = profile.id;
    session.visit_index = 1;
    session.started_at = at;
    session.ended_at = at;
    session.pageview_count = 1;
    session.converted = false;
    let mut event = template.events.iter().find(|e| e.kind == EventType::PageView).unwrap().clone();
    event.id = EventId::new();
    event.session_id = session.id;
    event.visitor_profile_id = profile.id;
    event.position = 1;
    event.occurred_at = at;
    event.url = Some(WebUrl::parse(url).unwrap());
    (profile, session, event)
}

#[tokio::test]
async fn a_page_seen_by_fewer_than_five_people_is_suppressed_and_queries_never_appear() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let (other, _) = app.tenant_token("Other").await;
    let template = generate(&DemoConfig::demo(Timestamp::now()).scaled(0.001));
    let yesterday = day(app.state.clock.now()) - time::Duration::days(1);
    let at = Timestamp::from_datetime(yesterday.with_hms(10, 0, 0).unwrap().assume_utc());
    let mut visits = Vec::new();
    for n in 0..5 {
        visits.push(visit(&template, at, &format!("https://example.fi/pricing?email=person{n}%40example.com#top")));
    }
    for n in 0..4 {
        visits.push(visit(&template, at, &format!("https://example.fi/private?token=secret{n}")));
    }
    let (profiles, rest): (Vec<_>, Vec<_>) = visits.into_iter().map(|(p, s, e)| (p, (s, e))).unzip();
    let (sessions, events): (Vec<_>, Vec<_>) = rest.into_iter().unzip();
    app.store.insert(&ctx, &profiles).await.unwrap();
    app.store.insert(&ctx, &sessions).await.unwrap();
    app.store.insert(&ctx, &events).await.unwrap();
    // Another tenant's visitors on the same page are not counted.
    let (p, s, e) = visit(&template, at, "https://example.fi/private");
    app.store.insert(&other, &[p]).await.unwrap();
    app.store.insert(&other, &[s]).await.unwrap();
    app.store.insert(&other, &[e]).await.unwrap();

    let response = app.get("/api/v1/reports/top_pages", &token).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for personal in ["email", "person", "token", "secret", "private", "#top"] {
        assert!(!text.contains(personal), "{personal} leaked: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["suppressed_groups"], 1, "{body}");
    assert_eq!(
        body["data"],
        json!([{
            "report": "top_pages", "granularity": "day", "period_start": yesterday.to_string(),
            "dimension": "page", "group": "https://example.fi/pricing", "label": null,
            "visitors": 5, "sessions": null, "pageviews": 5, "conversions": null, "leads": null, "conversion_rate": null,
        }])
    );
    // Nine visitors in the day: traffic is shown whole.
    let traffic = report(&app, &token, "/api/v1/reports/traffic").await;
    assert_eq!(traffic["suppressed_groups"], 0);
    assert_eq!(traffic["data"][0]["visitors"], 9);
    assert_eq!(traffic["data"][0]["sessions"], 9);

    // Weeks start on Monday.
    let weekly = report(&app, &token, "/api/v1/reports/traffic?granularity=week").await;
    let monday = yesterday - time::Duration::days(i64::from(yesterday.weekday().number_days_from_monday()));
    assert_eq!(weekly["data"][0]["period_start"], monday.to_string());
    assert_eq!(monday.weekday(), time::Weekday::Monday);
}

#[tokio::test]
async fn the_threshold_is_a_setting() {
    let mut settings = steward_server::Settings::default();
    settings.reports.min_group_size = 10;
    let app = crate::helpers::spawn_app_with(settings).await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let template = generate(&DemoConfig::demo(Timestamp::now()).scaled(0.001));
    let at = app.state.clock.now();
    let visits: Vec<_> = (0..9).map(|_| visit(&template, at, "https://example.fi/")).collect();
    app.store.insert(&ctx, &visits.iter().map(|v| v.0.clone()).collect::<Vec<_>>()).await.unwrap();
    app.store.insert(&ctx, &visits.iter().map(|v| v.1.clone()).collect::<Vec<_>>()).await.unwrap();
    let body = report(&app, &token, "/api/v1/reports/traffic").await;
    assert_eq!(body["min_group_size"], 10);
    assert_eq!(body["suppressed_groups"], 1);
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn the_default_period_is_the_last_30_days_up_to_the_end_of_today() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let body = report(&app, &token, "/api/v1/reports/conversions").await;
    let tomorrow = day(app.state.clock.now()) + time::Duration::days(1);
    assert_eq!(body["to"], format!("{tomorrow}T00:00:00Z"));
    assert_eq!(body["from"], format!("{}T00:00:00Z", tomorrow - time::Duration::days(30)));
    assert_eq!(body["granularity"], "day");
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["suppressed_groups"], 0);
}

#[tokio::test]
async fn unknown_reports_bad_parameters_and_long_periods_are_named() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let body = problem(app.get("/api/v1/reports/revenue", &token).await, 404).await;
    let detail = body["detail"].as_str().unwrap();
    for name in ["traffic", "conversions", "lead_sources", "top_pages", "organizations"] {
        assert!(detail.contains(name), "{detail}");
    }
    for (query, field) in [
        ("granularity=year", "granularity"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2020-01-01", "from"),
    ] {
        let body = problem(app.get(&format!("/api/v1/reports/traffic?{query}"), &token).await, 422).await;
        assert_eq!(problem_fields(&body), vec![field], "{query}: {body}");
    }
    let body = problem(app.get("/api/v1/reports/traffic?from=2025-01-01&to=2026-02-01", &token).await, 422).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("396 days") && detail.contains("366"), "{detail}");
    // 366 days is allowed.
    let ok = app.get("/api/v1/reports/traffic?from=2025-01-01&to=2026-01-02", &token).await;
    assert_eq!(ok.status(), 200);
    let body = problem(app.get("/api/v1/reports/traffic?period=week", &token).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["period"]);

    let visitors_only = app.token(&ctx, "visitors:read").await;
    let body = problem(app.get("/api/v1/reports/traffic", &visitors_only).await, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("reports:read"), "{body}");
}
