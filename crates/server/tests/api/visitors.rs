//! Visitor profiles and journey insights through HTTP, compared with the stored records.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use steward_demo::{DemoConfig, DemoData, generate};
use steward_domain::{EventId, Journey, SessionId, Timestamp, VisitorProfile};
use steward_store::{StoreExt, TenantCtx};

use crate::helpers::{TestApp, problem, problem_fields, spawn_app};

const NEVER: &str = "0190b8c2-0000-7000-8000-000000000000";

async fn seed(app: &TestApp, ctx: &TenantCtx, data: &DemoData) {
    app.store.insert(ctx, &data.organizations).await.unwrap();
    app.store.insert(ctx, &data.visitors).await.unwrap();
    app.store.insert(ctx, &data.sessions).await.unwrap();
    app.store.insert(ctx, &data.events).await.unwrap();
}

fn demo(scale: f64) -> DemoData {
    generate(&DemoConfig::demo(Timestamp::now()).scaled(scale))
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

#[tokio::test]
async fn profiles_are_read_alone_or_several_by_id_and_missing_ids_are_named() {
    let app = spawn_app().await;
    let (owner, token) = app.tenant_token("Owner").await;
    let (other, other_token) = app.tenant_token("Other").await;
    let data = demo(0.002);
    seed(&app, &owner, &data).await;
    let foreign = demo(0.001);
    app.store.insert(&other, &foreign.visitors).await.unwrap();
    let profiles = &data.visitors;
    assert!(profiles.len() >= 3);

    let one: Value =
        app.get(&format!("/api/v1/visitor-profiles/{}", profiles[1].id), &token).await.json().await.unwrap();
    assert_eq!(one, json_of(&profiles[1]));

    // The order asked for is kept, repeats are answered once, and the ids that are not this
    // tenant's profiles (unknown, or another tenant's) are listed as missing, in order.
    let foreign_id = foreign.visitors[0].id;
    let ids = format!("{},{NEVER},{},{foreign_id},{}", profiles[2].id, profiles[0].id, profiles[2].id);
    let response = app.get(&format!("/api/v1/visitor-profiles?ids={ids}"), &token).await;
    assert_eq!(response.status(), 200);
    let batch: Value = response.json().await.unwrap();
    assert_eq!(batch["data"], json!([json_of(&profiles[2]), json_of(&profiles[0])]));
    assert_eq!(batch["missing"], json!([NEVER, foreign_id.to_string()]));

    // Another tenant sees none of them, exactly as if they did not exist.
    let foreign_read =
        problem(app.get(&format!("/api/v1/visitor-profiles/{}", profiles[0].id), &other_token).await, 404).await;
    let never = problem(app.get(&format!("/api/v1/visitor-profiles/{NEVER}"), &other_token).await, 404).await;
    assert_eq!(foreign_read["detail"], never["detail"]);
    let batch: Value =
        app.get(&format!("/api/v1/visitor-profiles?ids={}", profiles[0].id), &other_token).await.json().await.unwrap();
    assert_eq!(batch, json!({"data": [], "missing": [profiles[0].id.to_string()]}));
    problem(app.get("/api/v1/visitor-profiles/not-an-id", &token).await, 404).await;
}

#[tokio::test]
async fn the_profile_list_pages_by_cursor_and_filters_by_first_seen() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let data = demo(0.002);
    seed(&app, &ctx, &data).await;
    let mut expected: Vec<&VisitorProfile> = data.visitors.iter().collect();
    expected.sort_by_key(|p| p.id);

    let mut seen: Vec<Value> = Vec::new();
    let mut path = "/api/v1/visitor-profiles?limit=7".to_string();
    loop {
        let response = app.get(&path, &token).await;
        assert_eq!(response.status(), 200);
        let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        let page: Value = response.json().await.unwrap();
        let rows = page["data"].as_array().unwrap();
        assert!(rows.len() <= 7);
        seen.extend(rows.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let link = link.expect("a Link header with the next page");
                assert!(link.contains(cursor) && link.ends_with("rel=\"next\""), "{link}");
                path = format!("/api/v1/visitor-profiles?limit=7&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen, expected.iter().map(|p| json_of(*p)).collect::<Vec<_>>(), "every profile once, in id order");

    // created_from / created_to filter on first_seen_at (to exclusive).
    let mut firsts: Vec<Timestamp> = data.visitors.iter().map(|p| p.first_seen_at).collect();
    firsts.sort();
    let (from, to) = (firsts[firsts.len() / 4], firsts[firsts.len() * 3 / 4]);
    let path = format!("/api/v1/visitor-profiles?limit=1000&created_from={from}&created_to={to}");
    let page: Value = app.get(&path, &token).await.json().await.unwrap();
    let got: BTreeSet<String> =
        page["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    let want: BTreeSet<String> = data
        .visitors
        .iter()
        .filter(|p| p.first_seen_at >= from && p.first_seen_at < to)
        .map(|p| p.id.to_string())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[tokio::test]
async fn bad_id_lists_are_refused_with_422_naming_the_field() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    for (path, field) in [
        ("/api/v1/visitor-profiles?ids=nope", "ids"),
        ("/api/v1/visitor-profiles?ids=", "ids"),
        // A version 4 UUID is not an id Steward issues.
        ("/api/v1/visitor-profiles?ids=1b4e28ba-2fa1-41d2-883f-0016d3cca427", "ids"),
        ("/api/v1/journey-insights", "profile_ids"),
        ("/api/v1/journey-insights?profile_ids=0190b8c2-0000-7000-8000-000000000000,x", "profile_ids"),
    ] {
        let body = problem(app.get(path, &token).await, 422).await;
        assert_eq!(problem_fields(&body), vec![field], "{path}: {body}");
    }
    let many: Vec<String> = (0..101).map(|_| steward_domain::id::new_v7().to_string()).collect();
    for path in [
        format!("/api/v1/visitor-profiles?ids={}", many.join(",")),
        format!("/api/v1/journey-insights?profile_ids={}", many.join(",")),
    ] {
        let body = problem(app.get(&path, &token).await, 422).await;
        assert!(body["detail"].as_str().unwrap().contains("at most 100"), "{body}");
    }
    let hundred = many[..100].join(",");
    let batch: Value = app.get(&format!("/api/v1/visitor-profiles?ids={hundred}"), &token).await.json().await.unwrap();
    assert_eq!(batch["missing"].as_array().unwrap().len(), 100);

    // ids takes no list parameters; unknown parameters are named.
    let body = problem(app.get(&format!("/api/v1/visitor-profiles?ids={NEVER}&limit=5"), &token).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["limit"]);
    let body = problem(app.get("/api/v1/journey-insights?ids=x", &token).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["ids"]);

    let leads_only = app.token(&ctx, "leads:read").await;
    problem(app.get("/api/v1/visitor-profiles", &leads_only).await, 403).await;
    problem(app.get(&format!("/api/v1/journey-insights?profile_ids={NEVER}"), &leads_only).await, 403).await;
}

#[tokio::test]
async fn journey_insights_list_each_profiles_visits_in_order_with_events_by_position() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let (other, _) = app.tenant_token("Other").await;
    let mut data = demo(0.004);
    // Give one visitor's visits and events ids in the reverse of their order, so that only
    // visit_index and position (not id or insertion order) can put them right.
    let visitor = data
        .visitors
        .iter()
        .find(|v| data.sessions.iter().filter(|s| s.visitor_profile_id == v.id).count() >= 3)
        .expect("a visitor with three visits")
        .id;
    let mut session_ids: Vec<SessionId> =
        data.sessions.iter().filter(|s| s.visitor_profile_id == visitor).map(|s| s.id).collect();
    session_ids.sort();
    let renamed: Vec<(SessionId, SessionId)> =
        session_ids.iter().copied().zip(session_ids.iter().rev().copied()).collect();
    for session in data.sessions.iter_mut().filter(|s| s.visitor_profile_id == visitor) {
        session.id = renamed.iter().find(|(old, _)| *old == session.id).unwrap().1;
    }
    let mut event_ids: Vec<EventId> = Vec::new();
    for event in data.events.iter_mut().filter(|e| e.visitor_profile_id == visitor) {
        event.session_id = renamed.iter().find(|(old, _)| *old == event.session_id).unwrap().1;
        event_ids.push(event.id);
    }
    event_ids.sort();
    event_ids.reverse();
    for (event, id) in data.events.iter_mut().filter(|e| e.visitor_profile_id == visitor).zip(event_ids) {
        event.id = id;
    }
    seed(&app, &ctx, &data).await;
    let foreign = demo(0.001);
    app.store.insert(&other, &foreign.visitors).await.unwrap();

    let asked = [visitor, data.visitors[0].id, data.visitors[1].id];
    let ids = format!("{},{NEVER},{},{},{}", asked[0], asked[1], foreign.visitors[0].id, asked[2]);
    let response = app.get(&format!("/api/v1/journey-insights?profile_ids={ids}"), &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["missing"], json!([NEVER, foreign.visitors[0].id.to_string()]));
    let entries = body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for (entry, id) in entries.iter().zip(asked) {
        assert_eq!(entry["visitor_profile_id"], id.to_string());
        // Built independently from the seeded records.
        let mut sessions: Vec<_> = data.sessions.iter().filter(|s| s.visitor_profile_id == id).cloned().collect();
        sessions.sort_by_key(|s| s.visit_index);
        let expected: Vec<Journey> = sessions
            .into_iter()
            .map(|session| {
                let mut events: Vec<_> = data.events.iter().filter(|e| e.session_id == session.id).cloned().collect();
                events.sort_by_key(|e| e.position);
                Journey { session, events }
            })
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(entry["sessions"], json_of(&expected), "journeys of {id}");
        for journey in entry["sessions"].as_array().unwrap() {
            let positions: Vec<u64> =
                journey["events"].as_array().unwrap().iter().map(|e| e["position"].as_u64().unwrap()).collect();
            assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
        }
    }
    let reordered = &entries[0]["sessions"];
    let indexes: Vec<u64> = reordered.as_array().unwrap().iter().map(|s| s["visit_index"].as_u64().unwrap()).collect();
    assert!(indexes.len() >= 3 && indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
}
