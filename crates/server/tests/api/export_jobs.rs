//! Export jobs through HTTP: queued with 202, run in the background, downloaded with ETag and
//! Range; a job interrupted by a restart is run again and never served half-written.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steward_demo::DemoConfig;
use steward_domain::{Lead, Timestamp};
use steward_server::Settings;
use steward_store::StoreExt;

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn seed(app: &TestApp, ctx: &steward_store::TenantCtx, count: usize) {
    let leads: Vec<Lead> = steward_demo::lead_stream(&DemoConfig::demo(Timestamp::now()), count).collect();
    for chunk in leads.chunks(1000) {
        app.store.insert(ctx, chunk).await.unwrap();
    }
}

async fn wait_until_done(app: &TestApp, token: &str, location: &str) -> Value {
    for _ in 0..600 {
        let job: Value = app.get(location, token).await.json().await.unwrap();
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the export job did not finish");
}

async fn download(app: &TestApp, token: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.get(app.url(path)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_job_runs_in_the_background_and_its_file_downloads_whole_or_in_ranges() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    seed(&app, &ctx, 2_500).await;
    let response = app.post("/api/v1/exports", &token, &json!({"dataset": "leads", "format": "csv"})).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["status"], "queued");
    assert_eq!(location, format!("/api/v1/exports/{}", queued["id"].as_str().unwrap()));

    let job = wait_until_done(&app, &token, &location).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rows_total"], 2_500);
    assert_eq!(job["rows_written"], 2_500);
    assert!(job["expires_at"].is_string() && job["error"].is_null(), "{job}");
    let file_url = job["file_url"].as_str().unwrap().to_string();

    let whole = download(&app, &token, &file_url, &[]).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "text/csv; charset=utf-8; header=present");
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let bytes = whole.bytes().await.unwrap();
    let sha = hex(&Sha256::digest(&bytes));
    assert_eq!(job["sha256"], sha.as_str());
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(job["bytes"], bytes.len());
    assert_eq!(bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 2_501, "header and every lead");

    // A download broken after 1000 bytes resumes with Range and If-Range.
    let cut = 1000;
    let rest = download(&app, &token, &file_url, &[("range", &format!("bytes={cut}-")), ("if-range", &etag)]).await;
    assert_eq!(rest.status(), 206);
    assert_eq!(rest.headers()["content-range"], format!("bytes {cut}-{}/{}", bytes.len() - 1, bytes.len()).as_str());
    let mut resumed = bytes[..cut].to_vec();
    resumed.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(hex(&Sha256::digest(&resumed)), sha, "the resumed file has the same SHA-256");

    let stale = download(&app, &token, &file_url, &[("range", "bytes=0-9"), ("if-range", "\"other\"")]).await;
    assert_eq!(stale.status(), 200, "If-Range with another validator sends the whole file");
    let cached = download(&app, &token, &file_url, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status(), 304);
    let outside = download(&app, &token, &file_url, &[("range", &format!("bytes={}-", bytes.len()))]).await;
    assert_eq!(outside.headers()["content-range"], format!("bytes */{}", bytes.len()).as_str());
    problem(outside, 416).await;

    app.state.clock.advance(time::Duration::days(8));
    let token = app.token(&ctx, &steward_domain::Scopes::all().to_string()).await;
    let gone = problem(download(&app, &token, &file_url, &[]).await, 410).await;
    assert!(gone["detail"].as_str().unwrap().contains("expired"), "{gone}");
}

#[tokio::test]
async fn a_job_interrupted_by_a_restart_runs_again_and_is_never_served_half_written() {
    let mut settings = Settings::default();
    settings.exports.worker = false;
    let app = spawn_app_with(settings).await;
    let (ctx, token) = app.tenant_token("Acme").await;
    seed(&app, &ctx, 1_200).await;
    let response = app.post("/api/v1/exports", &token, &json!({"dataset": "leads", "format": "ndjson"})).await;
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();

    // A node claims the job, writes half a file and dies (its lease is never renewed).
    let now = app.state.clock.now();
    let lease = now.checked_add(time::Duration::seconds(60)).unwrap();
    let claimed = app.store.claim_job("export", "node-that-dies", now, lease).await.unwrap().unwrap();
    assert_eq!(claimed.id.to_string(), id);
    let mut half = app.state.files.create(&format!("exports/{}/{id}.ndjson", ctx.tenant_id())).unwrap();
    std::io::Write::write_all(&mut half, b"{\"half\":").unwrap();
    drop(half);

    let body = problem(download(&app, &token, &format!("{location}/file"), &[]).await, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("running"), "{body}");
    assert!(!steward_server::jobs::run_once(&app.state, "new-node").await.unwrap(), "the lease still holds");

    app.state.clock.advance(time::Duration::seconds(61));
    assert!(steward_server::jobs::run_once(&app.state, "new-node").await.unwrap(), "the expired lease is taken over");
    let job: Value = app.get(&location, &token).await.json().await.unwrap();
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["attempts"], 2);
    let file = download(&app, &token, &format!("{location}/file"), &[]).await;
    assert_eq!(file.status(), 200);
    let bytes = file.bytes().await.unwrap();
    assert_eq!(job["sha256"], hex(&Sha256::digest(&bytes)).as_str());
    let lines: Vec<Value> =
        String::from_utf8(bytes.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1_200, "the whole export, none of the half file");
}

#[tokio::test]
async fn bad_job_requests_are_named_and_other_tenants_jobs_do_not_exist() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let body = problem(
        app.post("/api/v1/exports", &token, &json!({"dataset": "people", "format": "pdf", "from": "soon"})).await,
        422,
    )
    .await;
    let fields = crate::helpers::problem_fields(&body);
    assert!(["dataset", "format", "from"].iter().all(|f| fields.contains(&f.to_string())), "{fields:?}");
    problem(app.post("/api/v1/exports", &token, &json!({"format": "csv"})).await, 422).await;
    problem(app.post("/api/v1/exports", &token, &json!({"dataset": "leads", "color": "red"})).await, 422).await;

    let ctx = app.tenant("Narrow").await;
    let narrow = app.token(&ctx, "export organizations:read").await;
    problem(app.post("/api/v1/exports", &narrow, &json!({"dataset": "leads"})).await, 403).await;

    let response = app.post("/api/v1/exports", &token, &json!({"dataset": "organizations", "format": "xlsx"})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let (_, stranger) = app.tenant_token("Other").await;
    problem(app.get(&location, &stranger).await, 404).await;
    problem(download(&app, &stranger, &format!("{location}/file"), &[]).await, 404).await;
    problem(app.get("/api/v1/exports/01a2082f-cec1-7631-8e48-ea30c23d07b4", &token).await, 404).await;
}
