//! Streamed exports through HTTP, read back by third-party readers (Python's csv, pandas,
//! openpyxl, json, jsonschema: `scripts/check_export.py`) and compared to the stored records.

use std::process::Command;

use serde::Serialize;
use serde_json::{Value, json};
use steward_demo::{DemoConfig, generate};
use steward_domain::{Journey, Lead, Organization, ReportName, ReportRow, Timestamp, VisitorProfile};
use steward_export::{Dataset, json_schema};
use steward_server::Settings;
use steward_store::{ListQuery, Store, StoreExt, TenantCtx};

use crate::helpers::{TestApp, problem, python, spawn_app, spawn_app_with};

/// Leads whose text fields hold everything that breaks naive CSV and spreadsheet handling.
fn hostile_leads() -> Vec<Value> {
    let line = [
        "Comma, Oy",
        "Quote \"Q\" Ltd",
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "emoji 🦀👩‍💻",
        "עברית ומספרים 123",
        "'already quoted",
    ];
    let multi = ["line\r\nbreak", "tab\tinside", "lf\nonly", "=1\r\n+2", "trailing,comma,"];
    line.iter()
        .enumerate()
        .map(|(n, text)| {
            let mut lead = json!({
                "first_name": text,
                "company_name": line[(n + 1) % line.len()],
                "job_title": line[(n + 2) % line.len()],
                "email": format!("hostile.{n}@example.fi"),
                "phone": "+358401234567",
                "tags": [text, "b2b"],
                "custom_fields": {"note": multi[n % multi.len()], "empty": ""},
                "answers": [{"question": text, "answer": multi[(n + 1) % multi.len()], "answered_at": "2026-11-19T10:00:00Z"}],
                "score": n * 11,
                "first_touch": {"landing_url": "https://example.fi/?a=1,2", "utm": {"source": text, "campaign": "-sale"}, "occurred_at": "2026-11-19T09:00:00Z"},
                "location": {"country_code": "FI", "city": text},
            });
            if n % 3 == 0 {
                // Missing rather than empty: no consent, no job title, no last name.
                lead.as_object_mut().unwrap().remove("job_title");
            } else {
                lead["consent"] = json!({"marketing": n % 2 == 0, "captured_at": "2026-11-19T10:00:00Z", "source": text});
            }
            lead
        })
        .collect()
}

async fn export(app: &TestApp, token: &str, dataset: &str, format: &str) -> Vec<u8> {
    export_period(app, token, dataset, "", format).await
}

/// An export of the records of `period` (`&from=…&to=…`, or empty for all).
pub async fn export_period(app: &TestApp, token: &str, dataset: &str, period: &str, format: &str) -> Vec<u8> {
    let response = app.get(&format!("/api/v1/exports/{dataset}?format={format}{period}"), token).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap().to_vec();
    assert_eq!(status, 200, "{dataset} as {format}: {}", String::from_utf8_lossy(&body));
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with(&format!("attachment; filename=\"{dataset}-")), "{disposition}");
    assert!(disposition.ends_with(&format!(".{format}\"")), "{disposition}");
    if format == "csv" {
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8; header=present");
    }
    body
}

/// Exports `dataset` in every format and has the Python readers compare them with `expected`.
async fn round_trip<R: Dataset + Serialize + utoipa::ToSchema>(app: &TestApp, token: &str, expected: &[R]) -> String {
    round_trip_period::<R>(app, token, "", expected).await
}

/// As [`round_trip`], over `period` (`&from=…&to=…`), with `expected` in any serialisable form
/// (such as the JSON a list endpoint answered).
pub async fn round_trip_period<R: Dataset + utoipa::ToSchema>(
    app: &TestApp,
    token: &str,
    period: &str,
    expected: &[impl Serialize],
) -> String {
    let dataset = R::NAME.as_str();
    let folder = tempfile::tempdir().unwrap();
    for format in ["csv", "json", "ndjson", "xlsx"] {
        let bytes = export_period(app, token, dataset, period, format).await;
        std::fs::write(folder.path().join(format!("export.{format}")), bytes).unwrap();
    }
    let expected_file = folder.path().join("expected.json");
    std::fs::write(&expected_file, serde_json::to_vec(expected).unwrap()).unwrap();
    let schema_file = folder.path().join("schema.json");
    std::fs::write(&schema_file, serde_json::to_vec(&json_schema::<R>()).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/check_export.py");
    let output = Command::new(python())
        .arg(script)
        .arg(&expected_file)
        .arg(&schema_file)
        .arg(folder.path())
        .output()
        .expect("run check_export.py");
    let report = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{dataset}: the third-party readers disagree:\n{report}");
    assert!(report.starts_with(&format!("OK {} records", expected.len())), "{report}");
    report
}

async fn all<R: steward_store::Record>(store: &dyn Store, ctx: &TenantCtx) -> Vec<R> {
    let mut records = Vec::new();
    let mut query = ListQuery { limit: 1000, ..ListQuery::default() };
    loop {
        let page: Vec<R> = store.list(ctx, &query).await.unwrap();
        let done = page.len() < 1000;
        query.after = page.last().map(|r| r.key());
        records.extend(page);
        if done {
            return records;
        }
    }
}

#[tokio::test]
async fn hostile_leads_survive_csv_pandas_xlsx_json_and_ndjson_field_by_field() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    for lead in hostile_leads() {
        let response = app.post("/api/v1/leads", &token, &lead).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let stored: Vec<Lead> = all(app.store.as_ref(), &ctx).await;
    assert_eq!(stored.len(), hostile_leads().len());
    round_trip(&app, &token, &stored).await;
}

#[tokio::test]
async fn organizations_profiles_and_journeys_round_trip_too() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let config = DemoConfig::demo(Timestamp::now()).scaled(0.004);
    let data = generate(&config);
    app.store.insert(&ctx, &data.organizations).await.unwrap();
    app.store.insert(&ctx, &data.visitors).await.unwrap();
    app.store.insert(&ctx, &data.sessions).await.unwrap();
    app.store.insert(&ctx, &data.events).await.unwrap();
    let hostile = json!({"name": "=cmd|' /C calc'!A0, \"Oy\"", "domain": "hostile.fi", "tags": ["@x", "-y"],
        "address": {"street": "Katu 1, A 2", "city": "Åbo", "country_code": "FI"}});
    assert_eq!(app.post("/api/v1/organizations", &token, &hostile).await.status(), 201);

    let organizations: Vec<Organization> = all(app.store.as_ref(), &ctx).await;
    assert_eq!(organizations.len(), data.organizations.len() + 1);
    round_trip(&app, &token, &organizations).await;

    let profiles: Vec<VisitorProfile> = all(app.store.as_ref(), &ctx).await;
    round_trip(&app, &token, &profiles).await;

    let mut journeys: Vec<Journey> = data
        .sessions
        .iter()
        .map(|session| {
            let mut events: Vec<_> = data.events.iter().filter(|e| e.session_id == session.id).cloned().collect();
            events.sort_by_key(|e| e.position);
            Journey { session: session.clone(), events }
        })
        .collect();
    journeys.sort_by_key(|j| j.session.id.into_uuid());
    assert!(journeys.iter().any(|j| j.events.len() > 1), "journeys with several events");
    round_trip(&app, &token, &journeys).await;
}

#[tokio::test]
async fn reports_export_every_report_by_day_as_the_api_answers_them() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let data = generate(&DemoConfig::demo(app.state.clock.now()).scaled(0.05));
    app.store.insert(&ctx, &data.organizations).await.unwrap();
    app.store.insert(&ctx, &data.visitors).await.unwrap();
    app.store.insert(&ctx, &data.sessions).await.unwrap();
    app.store.insert(&ctx, &data.events).await.unwrap();
    app.store.insert(&ctx, &data.leads).await.unwrap();
    // The export's default period is the reports' default: the last 30 days, by day.
    let mut expected: Vec<ReportRow> = Vec::new();
    let mut suppressed = 0;
    for name in ReportName::ALL {
        let body: Value = app.get(&format!("/api/v1/reports/{name}"), &token).await.json().await.unwrap();
        suppressed += body["suppressed_groups"].as_u64().unwrap();
        expected.extend(serde_json::from_value::<Vec<ReportRow>>(body["data"].clone()).unwrap());
    }
    let reports: std::collections::BTreeSet<_> = expected.iter().map(|row| row.report).collect();
    assert!(reports.len() >= 4, "most reports have rows: {reports:?}");
    assert!(expected.iter().any(|row| row.conversion_rate.is_some_and(|r| r > 0.0 && r < 1.0)));
    round_trip(&app, &token, &expected).await;
    let response = app.get("/api/v1/exports/reports?format=json", &token).await;
    assert_eq!(response.headers()["steward-suppressed-groups"], suppressed.to_string().as_str());

    // An export job of reports holds the same rows.
    let response = app.post("/api/v1/exports", &token, &json!({"dataset": "reports", "format": "ndjson"})).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let mut job = Value::Null;
    for _ in 0..600 {
        job = app.get(&location, &token).await.json().await.unwrap();
        if job["status"] == "succeeded" || job["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rows_written"], expected.len());
    let file = app.get(job["file_url"].as_str().unwrap(), &token).await.text().await.unwrap();
    let rows: Vec<ReportRow> = file.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(rows, expected);

    // Reports need reports:read besides export; their period is bounded.
    let export_only = app.token(&ctx, "export").await;
    problem(app.get("/api/v1/exports/reports", &export_only).await, 403).await;
    let refused = app.post("/api/v1/exports", &export_only, &json!({"dataset": "reports"})).await;
    problem(refused, 403).await;
    let path = "/api/v1/exports/reports?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z";
    let body = problem(app.get(path, &token).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "to");
}

#[tokio::test]
async fn a_large_export_holds_every_lead_once_in_id_order() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let config = DemoConfig::demo(Timestamp::now());
    let leads: Vec<Lead> = steward_demo::lead_stream(&config, 4_321).collect();
    for chunk in leads.chunks(1000) {
        app.store.insert(&ctx, chunk).await.unwrap();
    }
    let mut ids: Vec<String> = leads.iter().map(|l| l.id.to_string()).collect();
    ids.sort();
    let csv = export(&app, &token, "leads", "csv").await;
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_slice());
    let exported: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(exported, ids, "every lead exactly once, in id order, across page boundaries");
    let ndjson = export(&app, &token, "leads", "ndjson").await;
    assert_eq!(ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 4_321);
}

#[tokio::test]
async fn the_period_filters_and_an_empty_export_still_has_a_header() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    assert_eq!(app.post("/api/v1/leads", &token, &json!({"first_name": "Aino"})).await.status(), 201);
    let csv = export(&app, &token, "leads", "csv").await;
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 2);
    let path = "/api/v1/exports/leads?format=json&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z";
    let response = app.get(path, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!([]));
    let response = app.get("/api/v1/exports/leads?from=2020-01-01T00:00:00Z&to=2020-01-05T00:00:00Z", &token).await;
    let text = response.text().await.unwrap();
    assert!(text.starts_with("id,contact_id,") && text.lines().count() == 1, "{text}");
}

#[tokio::test]
async fn exports_past_the_period_or_size_limit_say_what_to_do() {
    let mut settings = Settings::default();
    settings.exports.console_max_days = 30;
    settings.exports.console_max_bytes = 4_000;
    let app = spawn_app_with(settings).await;
    let (_, token) = app.tenant_token("Acme").await;
    let path = "/api/v1/exports/leads?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z";
    let body = problem(app.get(path, &token).await, 422).await;
    assert_eq!(body["type"], "/problems/export-too-large");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("59 days") && detail.contains("30 days") && detail.contains("POST /api/v1/exports"),
        "{detail}"
    );

    for lead in hostile_leads() {
        assert_eq!(app.post("/api/v1/leads", &token, &lead).await.status(), 201);
    }
    let body = problem(app.get("/api/v1/exports/leads?format=json", &token).await, 422).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("9 rows") && detail.contains("from and to") && detail.contains("POST /api/v1/exports"),
        "{detail}"
    );
}

#[tokio::test]
async fn exports_need_the_export_scope_and_the_datasets_read_scope() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let no_export = app.token(&ctx, "leads:read").await;
    let body = problem(app.get("/api/v1/exports/leads", &no_export).await, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("export"));
    let export_only = app.token(&ctx, "export organizations:read").await;
    problem(app.get("/api/v1/exports/leads", &export_only).await, 403).await;
    assert_eq!(app.get("/api/v1/exports/organizations", &export_only).await.status(), 200);
    problem(app.get("/api/v1/exports/leads", "wrong").await, 401).await;
}

#[tokio::test]
async fn unknown_datasets_formats_and_parameters_are_named() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let body = problem(app.get("/api/v1/exports/people", &token).await, 404).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("leads, visitor-profiles, journeys, organizations, reports or audit-log")
    );
    let body = problem(app.get("/api/v1/exports/leads?format=pdf", &token).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "format");
    let body = problem(app.get("/api/v1/exports/leads?since=2026-01-01T00:00:00Z", &token).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "since");
    let body = problem(app.get("/api/v1/exports/leads?from=yesterday", &token).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "from");
    let path = "/api/v1/exports/leads?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z";
    problem(app.get(path, &token).await, 422).await;
}
