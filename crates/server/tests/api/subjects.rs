//! Data-subject rights through the API: finding a person, erasure with its ledger, rectification,
//! restriction, objection, access archives, and the life of a request (deadlines, extension,
//! rejection).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Value, json};
use steward_domain::tenant::CollectionSettings;
use steward_domain::{Event, Lead, Organization, Session, Timestamp, VisitorProfile};
use steward_server::{Settings, admin};
use steward_store::{AuditQuery, ListQuery, Record, StoreExt, TenantCtx};

use crate::helpers::{TestApp, problem, problem_fields, spawn_app, spawn_app_with};

const EMAIL: &str = "maija.virtanen@acme-erasure.example";

fn at(app: &TestApp, offset_seconds: i64) -> String {
    let now = app.state.clock.now();
    now.checked_add(time::Duration::seconds(offset_seconds)).expect("time").to_rfc3339()
}

async fn collect(app: &TestApp, site_key: &str, visitor: &str, pages: usize) -> Value {
    let events: Vec<Value> = (0..pages)
        .map(|n| {
            json!({"type": "page_view", "url": format!("https://shop.example/page-{n}"),
                   "occurred_at": at(app, -10 * (pages - n) as i64)})
        })
        .collect();
    let body = json!({"site_key": site_key, "visitor_id": visitor, "events": events});
    let response = app
        .http
        .post(app.url("/collect"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /collect");
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A person with 5 visits of 8 page views (40 events) from one browser, and 2 leads from it:
/// one from a form with email, one from a chat with a phone.
async fn person(app: &TestApp, ctx: &TenantCtx) -> (String, Vec<Value>, String) {
    let site =
        admin::add_site(app.store.as_ref(), ctx, "shop.example", CollectionSettings::default(), Timestamp::now())
            .await
            .expect("site");
    let visitor = uuid::Uuid::now_v7().to_string();
    for _ in 0..5 {
        let report = collect(app, site.site_key.as_str(), &visitor, 8).await;
        assert_eq!(report["accepted"], 8, "{report}");
        app.state.clock.advance(time::Duration::hours(1));
    }
    // Hours later: a token of now.
    let token = &app.token(ctx, &steward_domain::Scopes::all().to_string()).await;
    let mut leads = Vec::new();
    for body in [
        json!({"first_name": "Maija", "last_name": "Virtanen", "email": EMAIL, "job_title": "CFO",
               "visitor_id": visitor, "consent": {"marketing": true}}),
        json!({"first_name": "Maija", "phone": "+358401112233", "visitor_id": visitor, "contact_id": "CRM-77", "score": 40}),
    ] {
        let response = app.post("/api/v1/leads", token, &body).await;
        assert_eq!(response.status(), 201);
        leads.push(response.json::<Value>().await.unwrap());
    }
    (visitor, leads, token.clone())
}

/// Someone else's records: a small generated tenant.
async fn others(app: &TestApp, ctx: &TenantCtx) {
    let end = app.state.clock.now();
    let data = steward_demo::generate(&steward_demo::DemoConfig::demo(end).scaled(0.01));
    let store = app.store.as_ref();
    store.insert(ctx, &data.organizations).await.unwrap();
    store.insert(ctx, &data.visitors).await.unwrap();
    store.insert(ctx, &data.sessions).await.unwrap();
    store.insert(ctx, &data.events).await.unwrap();
    store.insert(ctx, &data.leads).await.unwrap();
}

/// Every record of a kind, as JSON by id.
async fn all<R: Record>(app: &TestApp, ctx: &TenantCtx) -> BTreeMap<uuid::Uuid, Value> {
    let mut query = ListQuery { limit: 1000, ..ListQuery::default() };
    let mut found = BTreeMap::new();
    loop {
        let page: Vec<R> = app.store.list(ctx, &query).await.unwrap();
        query.after = page.last().map(Record::key);
        let full = page.len() == 1000;
        for record in page {
            found.insert(record.key(), serde_json::to_value(&record).unwrap());
        }
        if !full {
            return found;
        }
    }
}

/// The tenant's records, every kind.
async fn snapshot(app: &TestApp, ctx: &TenantCtx) -> BTreeMap<&'static str, BTreeMap<uuid::Uuid, Value>> {
    BTreeMap::from([
        ("leads", all::<Lead>(app, ctx).await),
        ("visitor_profiles", all::<VisitorProfile>(app, ctx).await),
        ("sessions", all::<Session>(app, ctx).await),
        ("events", all::<Event>(app, ctx).await),
        ("organizations", all::<Organization>(app, ctx).await),
    ])
}

async fn lookup(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/data-subjects?{query}"), token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn erasure_removes_every_record_of_one_person_reports_counts_and_drops_what_comes_later() {
    let app = spawn_app().await;
    let ctx = app.tenant("Shop Oy").await;
    others(&app, &ctx).await;
    let before = snapshot(&app, &ctx).await;
    let (visitor, leads, token) = person(&app, &ctx).await;

    let found = lookup(&app, &token, &format!("email={}", EMAIL.to_uppercase().replace("MAIJA", "Maija"))).await;
    let counts = &found["counts"];
    assert_eq!(counts["leads"], 2, "the phone lead is found through the browser they share: {counts}");
    assert_eq!(counts["visitor_profiles"], 1);
    assert_eq!(counts["sessions"], 5);
    assert_eq!(counts["events"], 40);
    assert_eq!(counts["organization_contacts"], 2, "{:#}", found["organization_contacts"]);
    assert_eq!(found["visitor_profiles"][0]["id"], visitor.as_str());
    assert_eq!(found["journeys"][4]["events"].as_array().unwrap().len(), 8);
    let organization = found["organization_contacts"][0]["organization_id"].as_str().unwrap().to_string();
    let by_phone = lookup(&app, &token, "phone=%2B358%2040%20111%202233").await;
    assert_eq!(by_phone["counts"]["events"], 40, "any identifier finds the same person");

    let response = app
        .post(
            "/api/v1/data-subject-requests",
            &token,
            &json!({"kind": "erasure", "subject": {"email": EMAIL}, "note": "ticket 4411"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["status"], "completed");
    assert_eq!(request["subject"], Value::Null, "an answered request keeps no identifiers");
    assert_eq!(request["subject_hint"], "m***@acme-erasure.example");
    let report = &request["report"]["counts"];
    for (store, count) in
        [("leads", 2), ("visitor_profiles", 1), ("sessions", 5), ("events", 40), ("organization_contacts", 2)]
    {
        assert_eq!(report[store], count, "{store}: {report}");
    }
    assert!(report["erasure_ledger"].as_u64().unwrap() >= 4, "email, phone, contact id and visitor id: {report}");

    let after = lookup(&app, &token, &format!("email={EMAIL}")).await;
    for store in ["leads", "visitor_profiles", "sessions", "events", "organization_contacts"] {
        assert_eq!(after["counts"][store], 0, "{store}");
    }
    assert_eq!(after["counts"]["subject_requests"], 1, "the erasure request itself stays as proof");
    for lead in &leads {
        let response = app.get(&format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()), &token).await;
        assert_eq!(response.status(), 404);
    }

    // What arrives later for the same browser or email is dropped.
    let sites = app.store.list_sites(&ctx).await.unwrap();
    let report = collect(&app, sites[0].site_key.as_str(), &visitor, 3).await;
    assert_eq!(report["accepted"], 3, "the tracker is not told");
    let profile = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await;
    assert_eq!(profile.status(), 404);
    let again = app.post("/api/v1/leads", &token, &json!({"email": EMAIL, "first_name": "Maija"})).await;
    let body = problem(again, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("erased"), "{body}");
    assert_eq!(lookup(&app, &token, &format!("visitor_id={visitor}")).await["counts"]["events"], 0);

    // Nobody else's records changed; the organization only lost the person's contact entries.
    let mut now = snapshot(&app, &ctx).await;
    let mut expected = before;
    let created = &mut now.get_mut("organizations").unwrap();
    let org_id: uuid::Uuid = organization.parse().unwrap();
    let organization = created.remove(&org_id).expect("the organization stays");
    assert_eq!(organization["contacts"], json!([]));
    expected.get_mut("organizations").unwrap().remove(&org_id);
    assert_eq!(now, expected);

    let audit: Value = app.get("/api/v1/audit-log?action=subject_request.erased", &token).await.json().await.unwrap();
    let entry = &audit["data"][0];
    assert_eq!(entry["detail"]["counts"]["events"], 40);
    assert!(!entry.to_string().contains("maija"), "the audit entry names no one: {entry}");
}

#[tokio::test]
async fn rectification_changes_every_copy_and_leaves_the_old_value_only_in_the_sealed_audit_entry() {
    let app = spawn_app().await;
    let ctx = app.tenant("Shop Oy").await;
    let (_, leads, token) = person(&app, &ctx).await;
    let new_email = "maija.korhonen@acme-erasure.example";
    let response = app
        .post(
            "/api/v1/data-subject-requests",
            &token,
            &json!({"kind": "rectification", "subject": {"email": EMAIL}, "changes": {"email": new_email, "last_name": "Korhonen"}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["report"]["counts"]["leads"], 1, "{request:#}");
    assert!(request["report"]["counts"]["organization_contacts"].as_u64().unwrap() >= 1);

    let lead: Value =
        app.get(&format!("/api/v1/leads/{}", leads[0]["id"].as_str().unwrap()), &token).await.json().await.unwrap();
    assert_eq!(lead["email"], new_email);
    assert_eq!(lead["last_name"], "Korhonen");
    // The blind index follows: the new value finds the lead, the old one nothing.
    let by_new: Value = app.get(&format!("/api/v1/leads?email={new_email}"), &token).await.json().await.unwrap();
    assert_eq!(by_new["data"].as_array().unwrap().len(), 1);
    let by_old: Value = app.get(&format!("/api/v1/leads?email={EMAIL}"), &token).await.json().await.unwrap();
    assert_eq!(by_old["data"], json!([]));
    let old = lookup(&app, &token, &format!("email={EMAIL}")).await;
    assert!(old["counts"].as_object().unwrap().values().all(|n| n == 0), "{:#}", old["counts"]);
    let new = lookup(&app, &token, &format!("email={new_email}")).await;
    let contact = &new["organization_contacts"][0]["contact"];
    assert_eq!(contact["email"], new_email);
    assert_eq!(contact["name"], "Maija Korhonen");
    assert_eq!(new["counts"]["subject_requests"], 1, "the request follows the person to the new value");

    // The old value is nowhere an export, a list or a lookup can reach ...
    for dataset in ["leads", "organizations", "visitor-profiles", "journeys"] {
        let text = app.get(&format!("/api/v1/exports/{dataset}?format=json"), &token).await.text().await.unwrap();
        assert!(!text.contains(EMAIL), "{dataset} still holds the old email");
    }
    let requests = app.get("/api/v1/data-subject-requests", &token).await.text().await.unwrap();
    assert!(!requests.contains(EMAIL) && !requests.contains("maija.virtanen"));
    // ... but in the audit entry's before-value, which is sealed at rest.
    let audit: Value =
        app.get("/api/v1/audit-log?action=subject_request.rectified", &token).await.json().await.unwrap();
    let changes = &audit["data"][0]["detail"]["changes"];
    let email_change =
        changes.as_array().unwrap().iter().find(|c| c["field"] == "email" && c["record"] == "lead").unwrap();
    assert_eq!(email_change["before"], EMAIL);
    assert_eq!(email_change["after"], new_email);
    let rows = app.store.list_audit(&ctx, &AuditQuery { limit: 1000, ..AuditQuery::default() }, false).await.unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert!(!row.body.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes()), "entry {} holds it in clear", row.seq);
    }
}

#[tokio::test]
async fn a_restricted_person_is_left_out_of_exports_reports_and_scoring_but_not_their_own_access_archive() {
    let mut settings = Settings::default();
    settings.reports.min_group_size = 1;
    let app = spawn_app_with(settings).await;
    let ctx = app.tenant("Shop Oy").await;
    let (_, leads, token) = person(&app, &ctx).await;
    let other = app.post("/api/v1/leads", &token, &json!({"email": "other@example.org", "first_name": "Olli"})).await;
    assert_eq!(other.status(), 201);
    let day = |offset: i64| {
        app.state.clock.now().checked_add(time::Duration::days(offset)).unwrap().to_rfc3339()[..10].to_string()
    };
    let period = format!("from={}&to={}", day(-1), day(1));
    let leads_reported =
        |body: &Value| body["data"].as_array().unwrap().iter().map(|r| r["leads"].as_u64().unwrap_or(0)).sum::<u64>();
    let before: Value = app.get(&format!("/api/v1/reports/conversions?{period}"), &token).await.json().await.unwrap();
    assert_eq!(leads_reported(&before), 3);
    let traffic_before: Value =
        app.get(&format!("/api/v1/reports/traffic?{period}"), &token).await.json().await.unwrap();
    let sessions = |body: &Value| {
        body["data"].as_array().unwrap().iter().map(|r| r["sessions"].as_u64().unwrap_or(0)).sum::<u64>()
    };
    assert_eq!(sessions(&traffic_before), 5, "{traffic_before:#}");

    let response = app
        .post("/api/v1/data-subject-requests", &token, &json!({"kind": "restriction", "subject": {"email": EMAIL}}))
        .await;
    assert_eq!(response.status(), 201);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["report"]["counts"]["leads"], 2);
    assert_eq!(request["report"]["counts"]["visitor_profiles"], 1);

    let csv = app.get("/api/v1/exports/leads?format=csv", &token).await.text().await.unwrap();
    assert!(!csv.contains(EMAIL) && !csv.contains("+358401112233"), "{csv}");
    assert!(csv.contains("other@example.org"));
    let journeys = app.get("/api/v1/exports/journeys?format=ndjson", &token).await.text().await.unwrap();
    assert_eq!(journeys.trim(), "", "the restricted person's visits are not exported");
    let after: Value = app.get(&format!("/api/v1/reports/conversions?{period}"), &token).await.json().await.unwrap();
    assert_eq!(leads_reported(&after), 1);
    let traffic: Value = app.get(&format!("/api/v1/reports/traffic?{period}"), &token).await.json().await.unwrap();
    assert_eq!(sessions(&traffic), 0, "{traffic:#}");
    let lead_id = leads[1]["id"].as_str().unwrap();
    let scored = app.patch(&format!("/api/v1/leads/{lead_id}"), &token, &json!({"score": 90})).await;
    assert_eq!(problem_fields(&problem(scored, 422).await), ["score"]);
    let tagged = app.patch(&format!("/api/v1/leads/{lead_id}"), &token, &json!({"tags": ["vip"]})).await;
    assert_eq!(tagged.status(), 200);
    let tagged: Value = tagged.json().await.unwrap();
    assert!(tagged["restricted_at"].is_string(), "other changes keep the restriction");

    // Their own access request holds everything.
    let response = app
        .post("/api/v1/data-subject-requests", &token, &json!({"kind": "access", "subject": {"email": EMAIL}}))
        .await;
    assert_eq!(response.status(), 201);
    let access: Value = response.json().await.unwrap();
    assert_eq!(access["report"]["counts"]["events"], 40);
    let archive = &access["report"]["archive"];
    let path = format!("/api/v1/data-subject-requests/{}/archive", access["id"].as_str().unwrap());
    let response = app.get(&path, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, archive["bytes"].as_u64().unwrap());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name).unwrap_or_else(|_| panic!("{name} in the archive")).read_to_string(&mut text).unwrap();
        text
    };
    let leads_json: Value = serde_json::from_str(&read("leads.json")).unwrap();
    assert_eq!(leads_json.as_array().unwrap().len(), 2);
    assert!(read("leads.csv").contains(EMAIL));
    let journeys: Value = serde_json::from_str(&read("journeys.json")).unwrap();
    assert_eq!(journeys.as_array().unwrap().len(), 5);
    let schema: Value = serde_json::from_str(&read("schemas/leads.schema.json")).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let summary = read("README.txt");
    assert!(summary.contains("2 contact record(s)") && summary.contains("5 visit(s) with 40 event(s)"), "{summary}");
    let manifest = read("MANIFEST.sha256");
    assert!(manifest.contains("  leads.json\n") && manifest.contains("  README.txt\n"), "{manifest}");

    let erasure =
        app.get(&format!("/api/v1/data-subject-requests/{}/archive", request["id"].as_str().unwrap()), &token).await;
    problem(erasure, 404).await;
}

#[tokio::test]
async fn an_objection_withdraws_consent_clears_scores_and_stops_tracking() {
    let app = spawn_app().await;
    let ctx = app.tenant("Shop Oy").await;
    let (visitor, leads, token) = person(&app, &ctx).await;
    let response = app
        .post(
            "/api/v1/data-subject-requests",
            &token,
            &json!({"kind": "objection", "subject": {"visitor_id": visitor}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["report"]["counts"]["leads"], 2);
    for lead in &leads {
        let lead: Value =
            app.get(&format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()), &token).await.json().await.unwrap();
        assert_eq!(lead["consent"]["marketing"], false);
        assert_eq!(lead["score"], Value::Null);
        assert!(lead["objected_at"].is_string());
    }
    let profile: Value = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.json().await.unwrap();
    let events = profile["event_count"].clone();
    let sites = app.store.list_sites(&ctx).await.unwrap();
    collect(&app, sites[0].site_key.as_str(), &visitor, 2).await;
    let profile: Value = app.get(&format!("/api/v1/visitor-profiles/{visitor}"), &token).await.json().await.unwrap();
    assert_eq!(profile["event_count"], events, "no more tracking of this browser");
    let lead = app.post("/api/v1/leads", &token, &json!({"email": EMAIL, "first_name": "Maija"})).await;
    assert_eq!(lead.status(), 201, "an objection does not refuse a new enquiry");
}

#[tokio::test]
async fn requests_are_due_in_a_month_extended_once_with_a_reason_and_rejected_with_one() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Shop Oy").await;
    let received = "2026-01-31T09:00:00Z";
    let now = app.state.clock.now();
    let body =
        json!({"kind": "access", "subject": {"email": EMAIL}, "execute": false, "received_at": now.to_rfc3339()});
    let response = app.post("/api/v1/data-subject-requests", &token, &body).await;
    assert_eq!(response.status(), 201);
    let pending: Value = response.json().await.unwrap();
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["subject"]["email"], EMAIL, "an open request keeps what it needs to be answered");
    let id = pending["id"].as_str().unwrap();
    let listed: Value =
        app.get("/api/v1/data-subject-requests?status=pending&kind=access", &token).await.json().await.unwrap();
    assert_eq!(listed["data"][0]["id"], id);
    assert!(listed["data"][0].get("subject_keys").is_none());

    let bad = app.post(&format!("/api/v1/data-subject-requests/{id}/extend"), &token, &json!({"months": 3})).await;
    assert_eq!(problem_fields(&problem(bad, 422).await), ["months", "reason"]);
    let extended = app
        .post(
            &format!("/api/v1/data-subject-requests/{id}/extend"),
            &token,
            &json!({"months": 2, "reason": "records in several systems"}),
        )
        .await;
    assert_eq!(extended.status(), 200);
    let extended: Value = extended.json().await.unwrap();
    let due = Timestamp::parse(extended["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due, steward_domain::subject::add_months(now, 3));
    let twice = app
        .post(&format!("/api/v1/data-subject-requests/{id}/extend"), &token, &json!({"months": 1, "reason": "again"}))
        .await;
    assert!(problem(twice, 409).await["detail"].as_str().unwrap().contains("once"));

    let rejected = app
        .post(
            &format!("/api/v1/data-subject-requests/{id}/reject"),
            &token,
            &json!({"reason": "identity not confirmed"}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let rejected: Value = rejected.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["subject"], Value::Null);
    let actions: Vec<&str> =
        rejected["history"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["received", "extended", "rejected"]);
    let execute = app.post(&format!("/api/v1/data-subject-requests/{id}/execute"), &token, &json!({})).await;
    problem(execute, 409).await;

    // A request received long ago may not be extended any more.
    let old = json!({"kind": "erasure", "subject": {"email": EMAIL}, "execute": false, "received_at": received});
    let old: Value = app.post("/api/v1/data-subject-requests", &token, &old).await.json().await.unwrap();
    let late = app
        .post(
            &format!("/api/v1/data-subject-requests/{}/extend", old["id"].as_str().unwrap()),
            &token,
            &json!({"months": 1, "reason": "busy"}),
        )
        .await;
    assert!(problem(late, 409).await["detail"].as_str().unwrap().contains("within one month"));
    let bad = app
        .post(
            "/api/v1/data-subject-requests",
            &token,
            &json!({"kind": "deletion", "subject": {"email": "nope"}, "changes": {"email": "x@example.org"}}),
        )
        .await;
    assert_eq!(problem_fields(&problem(bad, 422).await), ["kind", "subject.email"]);
    let other_tenant = app.tenant_token("Other Oy").await.1;
    problem(app.get(&format!("/api/v1/data-subject-requests/{id}"), &other_tenant).await, 404).await;
}
