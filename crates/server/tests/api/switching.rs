//! Data Act switching through HTTP with the test clock: the archive through the last day of the
//! retrieval period and gone the day after, the tenant erased from every table, file and key,
//! and an attestation that an independent Ed25519 implementation verifies.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steward_demo::DemoConfig;
use steward_domain::{Lead, Timestamp};
use steward_store::{StoreExt, TenantCtx};

use crate::helpers::{TestApp, problem, problem_fields, python, spawn_app};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn at(value: &Value) -> Timestamp {
    Timestamp::parse(value.as_str().unwrap_or_else(|| panic!("not a time: {value}"))).unwrap()
}

/// Moves the test clock to `target` (never back).
fn move_clock_to(app: &TestApp, target: Timestamp) {
    let now = app.state.clock.now();
    assert!(target >= now, "the clock only moves forward");
    app.state.clock.advance(time::Duration::microseconds(target.unix_micros() - now.unix_micros()));
}

async fn seed(app: &TestApp, ctx: &TenantCtx, count: usize) {
    let leads: Vec<Lead> = steward_demo::lead_stream(&DemoConfig::demo(Timestamp::now()), count).collect();
    app.store.insert(ctx, &leads).await.unwrap();
}

/// A file the tenant made earlier (an export, an access archive).
fn earlier_file(app: &TestApp, key: &str) {
    use std::io::Write;
    app.state.files.create(key).unwrap().write_all(b"earlier file").unwrap();
    app.state.files.commit(key).unwrap();
}

async fn advance(app: &TestApp) -> Vec<String> {
    let report = steward_server::switching::advance(&app.state).await.unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    report.steps.iter().map(|step| step.step.clone()).collect()
}

async fn download(app: &TestApp, token: &str, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(path)).bearer_auth(token);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.unwrap()
}

/// Every file under the file store's folder whose path names the tenant.
fn files_naming(app: &TestApp, tenant: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(&app.state.settings.files_dir(), &mut found);
    found.retain(|path| path.contains(tenant));
    found
}

/// Verifies an attestation with Python's `cryptography` (an independent Ed25519); with `tamper`
/// one byte of the payload is changed first.
fn verify_in_python(attestation: &Value, public_key: &str, tamper: bool) -> bool {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), attestation.to_string()).unwrap();
    let script = r#"
import base64, json, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
attestation = json.load(open(sys.argv[1]))
assert attestation["algorithm"] == "Ed25519"
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[2]))
payload = bytearray(attestation["payload"].encode("utf-8"))
if sys.argv[3] == "tamper":
    payload[len(payload) // 2] ^= 0x01
try:
    key.verify(base64.b64decode(attestation["signature"]), bytes(payload))
    print("VALID")
except InvalidSignature:
    print("INVALID")
"#;
    let output = Command::new(python())
        .args(["-c", script])
        .arg(file.path())
        .arg(public_key)
        .arg(if tamper { "tamper" } else { "as-is" })
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    stdout == "VALID"
}

#[tokio::test]
async fn the_archive_downloads_through_the_last_day_of_retrieval_then_the_tenant_is_erased_and_attested() {
    let app = spawn_app().await;
    let (leaving, token) = app.tenant_token("Leaving Oy").await;
    let staying = app.tenant("Staying Oy").await;
    seed(&app, &leaving, 40).await;
    seed(&app, &staying, 7).await;
    let (a, b) = (leaving.tenant_id().to_string(), staying.tenant_id().to_string());
    earlier_file(&app, &format!("exports/{a}/old.csv"));
    earlier_file(&app, &format!("subject-requests/{a}/access.zip"));
    earlier_file(&app, &format!("exports/{b}/kept.csv"));

    let created = app.post("/api/v1/switching-requests", &token, &json!({"action": "on_premises"})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let request: Value = created.json().await.unwrap();
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/switching-requests/{id}"));
    assert_eq!(request["status"], "notice");
    assert_eq!(request["archive_state"], "pending");
    assert_eq!(request["charges"], 0);
    assert_eq!(request["attestation_url"], format!("/switching-attestations/{a}"));
    let received = at(&request["received_at"]);
    assert_eq!(at(&request["transitional_starts_at"]), received, "no notice period asked for");
    assert_eq!(at(&request["transitional_ends_at"]), received.checked_add(time::Duration::days(30)).unwrap());

    // The transitional period starts: the first archive is built.
    assert_eq!(advance(&app).await, ["transitional_started"]);
    let view: Value = app.get(&location, &token).await.json().await.unwrap();
    assert_eq!(view["status"], "transitional");
    assert_eq!(view["archive_state"], "available");
    assert_eq!(view["archive"]["complete"], false);

    // The customer's one extension moves every later date.
    let extended = app.post(&format!("{location}/extend"), &token, &json!({"days": 5})).await;
    assert_eq!(extended.status(), 200);
    let extended: Value = extended.json().await.unwrap();
    let transitional_end = at(&extended["transitional_ends_at"]);
    assert_eq!(transitional_end, received.checked_add(time::Duration::days(35)).unwrap());

    // The transitional period ends: the complete archive replaces the first.
    move_clock_to(&app, transitional_end);
    assert_eq!(advance(&app).await, ["transitional_ended"]);
    let token = app.token(&leaving, "admin audit:read").await;
    let view: Value = app.get(&location, &token).await.json().await.unwrap();
    assert_eq!(view["status"], "retrieval");
    assert_eq!(view["archive"]["complete"], true);
    let retrieval_end = at(&view["retrieval_ends_at"]);
    assert_eq!(retrieval_end, transitional_end.checked_add(time::Duration::days(30)).unwrap());
    let erasure_due = at(&view["erasure_due_at"]);
    assert_eq!(erasure_due, retrieval_end.checked_add(time::Duration::days(1)).unwrap());

    // The last day of the retrieval period: whole and in ranges, matching the view's SHA-256.
    move_clock_to(&app, retrieval_end.checked_sub(time::Duration::hours(1)).unwrap());
    assert!(advance(&app).await.is_empty(), "nothing falls due on the last day");
    let token = app.token(&leaving, "admin audit:read").await;
    let archive_path = format!("{location}/archive");
    let whole = download(&app, &token, &archive_path, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "application/zip");
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let bytes = whole.bytes().await.unwrap();
    let sha256 = hex(&Sha256::digest(&bytes));
    assert_eq!(view["archive"]["sha256"], sha256.as_str());
    assert_eq!(view["archive"]["bytes"], bytes.len());
    assert_eq!(etag, format!("\"{sha256}\""));
    let first = download(&app, &token, &archive_path, Some("bytes=0-9")).await;
    assert_eq!(first.status(), 206);
    let rest = download(&app, &token, &archive_path, Some("bytes=10-")).await;
    assert_eq!(rest.status(), 206);
    let mut joined = first.bytes().await.unwrap().to_vec();
    joined.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(hex(&Sha256::digest(&joined)), sha256, "the ranges make the whole file");

    // The day after: 410, and the file is gone.
    move_clock_to(&app, retrieval_end.checked_add(time::Duration::hours(23)).unwrap());
    let token = app.token(&leaving, "admin audit:read").await;
    let gone = problem(download(&app, &token, &archive_path, None).await, 410).await;
    assert!(gone["detail"].as_str().unwrap().contains("retrieval period ended"), "{gone}");
    let archive_key = format!("archives/{a}/{id}.zip");
    assert!(app.state.files.open(&archive_key).unwrap().is_none(), "the archive file is removed");
    assert_eq!(advance(&app).await, ["archive_removed"]);
    let audit: Value = app.get("/api/v1/audit-log?action=switching.", &token).await.json().await.unwrap();
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "switching.requested",
        "switching.transitional_started",
        "switching.archive_built",
        "switching.extended",
        "switching.transitional_ended",
        "switching.archive_downloaded",
        "switching.archive_removed",
    ] {
        assert!(actions.contains(&action), "{action} is audited: {actions:?}");
    }

    // Erasure, the day after the retrieval period.
    move_clock_to(&app, erasure_due);
    assert_eq!(advance(&app).await, ["erased"]);

    let walked = app.rows_holding(leaving.tenant_id().into_uuid()).await;
    let tables: std::collections::BTreeSet<&str> = walked.iter().map(|(table, _, _)| table.as_str()).collect();
    for table in ["tenants", "leads", "audit_log", "api_clients", "access_tokens", "switching_requests", "jobs"] {
        assert!(tables.contains(table), "{table} was walked: {tables:?}");
    }
    let left: Vec<_> = walked.iter().filter(|(_, _, count)| *count > 0).collect();
    assert!(left.is_empty(), "rows of the erased tenant remain: {left:?}");
    let theirs = app.rows_holding(staying.tenant_id().into_uuid()).await;
    assert!(theirs.iter().any(|(table, _, count)| table == "leads" && *count == 7), "the other tenant keeps its leads");
    assert!(theirs.iter().any(|(table, _, count)| table == "tenants" && *count == 1));
    assert_eq!(
        files_naming(&app, &a),
        vec![app.state.settings.files_dir().join(format!("attestations/{a}.json")).display().to_string()]
    );
    assert_eq!(files_naming(&app, &b).len(), 1, "the other tenant's files stay");
    assert!(!app.store.vault().has_key(leaving.tenant_id()), "the tenant key is destroyed");
    assert!(app.store.vault().has_key(staying.tenant_id()));
    let staying_token = app.token(&staying, "leads:read").await;
    let staying_leads: Value = app.get("/api/v1/leads?limit=100", &staying_token).await.json().await.unwrap();
    assert_eq!(staying_leads["data"].as_array().unwrap().len(), 7, "the other tenant reads its data as before");
    let refused = app.get(&location, &token).await;
    assert_eq!(refused.status(), 401, "the erased tenant's credentials are gone");

    // The attestation: public, complete, and verifiable with the published key.
    let response = app.http.get(app.url(&format!("/switching-attestations/{a}"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let attestation: Value = response.json().await.unwrap();
    // The key the public register publishes.
    let register: Value = app.http.get(app.url("/data-register")).send().await.unwrap().json().await.unwrap();
    let public_key = register["switching"]["attestation"]["public_key_base64"].as_str().unwrap().to_string();
    assert_eq!(public_key, steward_server::switching::attestation_public_key(&app.state).unwrap());
    assert_eq!(attestation["public_key"], public_key.as_str());
    let payload: Value = serde_json::from_str(attestation["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["tenant_id"], a.as_str());
    assert_eq!(payload["request_id"], id.as_str());
    assert_eq!(payload["action"], "on_premises");
    let stores = payload["stores"].as_array().unwrap();
    let table = |name: &str| stores.iter().find(|s| s["store"] == "database" && s["table"] == name).cloned();
    assert_eq!(table("leads").unwrap()["rows"], 40);
    assert_eq!(table("tenants").unwrap()["rows"], 1);
    assert!(table("audit_log").unwrap()["rows"].as_u64().unwrap() >= 7);
    let files = stores.iter().find(|s| s["store"] == "files").unwrap();
    assert_eq!(files["files"], 2, "the two earlier files (the archive went at the end of retrieval): {files}");
    assert!(stores.iter().any(|s| s["store"] == "key_vault" && s["keys"] == 1));
    assert!(stores.iter().all(|s| s["erased_at"].is_string()));
    assert!(!attestation.to_string().contains("Leaving Oy"), "nothing personal or named in it");
    assert!(verify_in_python(&attestation, &public_key, false), "the attestation verifies");
    assert!(!verify_in_python(&attestation, &public_key, true), "one changed byte fails");
}

#[tokio::test]
async fn a_second_extension_is_refused_with_409_and_requests_are_checked_field_by_field() {
    let app = spawn_app().await;
    let (_ctx, token) = app.tenant_token("Acme").await;

    let missing = app.post("/api/v1/switching-requests", &token, &json!({"action": "switch_provider"})).await;
    let body = problem(missing, 422).await;
    assert_eq!(problem_fields(&body), ["destination"]);
    assert!(body["detail"].as_str().unwrap().contains("provider_name"), "{body}");
    let bad =
        json!({"action": "switch_provider", "destination": {"provider_name": "Next Oy", "contact_email": "nope"}});
    let body = problem(app.post("/api/v1/switching-requests", &token, &bad).await, 422).await;
    assert_eq!(problem_fields(&body), ["destination.contact_email"]);
    let stray =
        json!({"action": "erase", "destination": {"provider_name": "Next Oy", "contact_email": "a@next.example"}});
    let body = problem(app.post("/api/v1/switching-requests", &token, &stray).await, 422).await;
    assert_eq!(problem_fields(&body), ["destination"]);
    let late = json!({"action": "erase", "transitional_starts_at": "2099-01-01T00:00:00Z"});
    let body = problem(app.post("/api/v1/switching-requests", &token, &late).await, 422).await;
    assert_eq!(problem_fields(&body), ["transitional_starts_at"]);
    assert!(body["detail"].as_str().unwrap().contains("2 months"), "{body}");

    let good = json!({
        "action": "switch_provider",
        "destination": {"provider_name": "Next Oy", "contact_email": "switch@next.example", "endpoint_url": "https://next.example/import"},
    });
    let created = app.post("/api/v1/switching-requests", &token, &good).await;
    assert_eq!(created.status(), 201);
    let request: Value = created.json().await.unwrap();
    assert_eq!(request["destination"]["provider_name"], "Next Oy");
    let id = request["id"].as_str().unwrap();
    let again = problem(app.post("/api/v1/switching-requests", &token, &good).await, 409).await;
    assert!(again["detail"].as_str().unwrap().contains(id), "{again}");

    let path = format!("/api/v1/switching-requests/{id}/extend");
    let body = problem(app.post(&path, &token, &json!({"days": 0})).await, 422).await;
    assert_eq!(problem_fields(&body), ["days"]);
    let once = app.post(&path, &token, &json!({"days": 14})).await;
    assert_eq!(once.status(), 200);
    let twice = problem(app.post(&path, &token, &json!({"days": 1})).await, 409).await;
    assert!(twice["detail"].as_str().unwrap().contains("one extension"), "{twice}");
    let view: Value = app.get(&format!("/api/v1/switching-requests/{id}"), &token).await.json().await.unwrap();
    assert_eq!(view["extension"]["days"], 14, "the refused extension changed nothing");
    let steps: Vec<&str> = view["timeline"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(steps, ["requested", "extended"]);

    let list: Value = app.get("/api/v1/switching-requests?status=notice", &token).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, viewer) = app.tenant_token("Other").await;
    let hidden = app.get(&format!("/api/v1/switching-requests/{id}"), &viewer).await;
    problem(hidden, 404).await;
}

#[tokio::test]
async fn erase_has_no_archive_and_erases_when_the_transitional_period_ends() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Gone Oy").await;
    seed(&app, &ctx, 3).await;
    let created = app.post("/api/v1/switching-requests", &token, &json!({"action": "erase"})).await;
    assert_eq!(created.status(), 201);
    let request: Value = created.json().await.unwrap();
    assert_eq!(request["archive_state"], "none");
    assert_eq!(request["retrieval_ends_at"], Value::Null);
    let location = format!("/api/v1/switching-requests/{}", request["id"].as_str().unwrap());
    assert_eq!(advance(&app).await, ["transitional_started"]);
    problem(app.get(&format!("{location}/archive"), &token).await, 404).await;
    let end = at(&request["erasure_due_at"]);
    assert_eq!(end, at(&request["transitional_ends_at"]));
    move_clock_to(&app, end.checked_sub(time::Duration::seconds(1)).unwrap());
    assert!(advance(&app).await.is_empty(), "the service runs unchanged until the end");
    move_clock_to(&app, end);
    assert_eq!(advance(&app).await, ["erased"]);
    assert!(app.store.get_tenant(ctx.tenant_id()).await.unwrap().is_none());
    let response = app.http.get(app.url(&format!("/switching-attestations/{}", ctx.tenant_id()))).send().await.unwrap();
    let attestation: Value = response.json().await.unwrap();
    let payload: Value = serde_json::from_str(attestation["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["action"], "erase");
}

#[tokio::test]
async fn a_request_in_its_notice_period_can_be_cancelled_and_another_made() {
    let app = spawn_app().await;
    let (_ctx, token) = app.tenant_token("Acme").await;
    let start = app.state.clock.now().checked_add(time::Duration::days(20)).unwrap();
    let body = json!({"action": "on_premises", "transitional_starts_at": start.to_string()});
    let request: Value = app.post("/api/v1/switching-requests", &token, &body).await.json().await.unwrap();
    assert_eq!(at(&request["transitional_starts_at"]), start);
    assert!(advance(&app).await.is_empty(), "still in notice");
    let path = format!("/api/v1/switching-requests/{}", request["id"].as_str().unwrap());
    let not_yet = problem(app.get(&format!("{path}/archive"), &token).await, 409).await;
    assert!(not_yet["detail"].as_str().unwrap().contains(&start.to_string()), "{not_yet}");
    let cancelled = app.post(&format!("{path}/cancel"), &token, &json!({})).await;
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    problem(app.post(&format!("{path}/cancel"), &token, &json!({})).await, 409).await;
    let next = app.post("/api/v1/switching-requests", &token, &json!({"action": "erase"})).await;
    assert_eq!(next.status(), 201);
}

#[tokio::test]
async fn an_attestation_that_does_not_exist_is_a_problem_and_the_key_is_stable() {
    let app = spawn_app().await;
    let body = problem(app.http.get(app.url("/switching-attestations/nope")).send().await.unwrap(), 404).await;
    assert!(body["detail"].as_str().unwrap().contains("erased"), "{body}");
    let first = steward_server::switching::attestation_public_key(&app.state).unwrap();
    assert_eq!(first, steward_server::switching::attestation_public_key(&app.state).unwrap());
    let path = app.store.vault().folder().join("attestation-ed25519.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(base64_len(&first), 32);
}

fn base64_len(text: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap().len()
}

#[tokio::test]
async fn an_erasure_interrupted_after_the_rows_went_is_finished_by_the_next_pass() {
    let app = spawn_app().await;
    let (counted, counted_token) = app.tenant_token("Counted Oy").await;
    let (lost, lost_token) = app.tenant_token("Lost Oy").await;
    seed(&app, &counted, 5).await;
    seed(&app, &lost, 3).await;
    let now = app.state.clock.now();
    // Each pass stopped right after the database transaction: one after noting the counts in
    // its journal, one before.
    for (ctx, token, rows) in
        [(&counted, &counted_token, Some(json!([{"leads": 5, "tenants": 1}, now]))), (&lost, &lost_token, None)]
    {
        let request: Value =
            app.post("/api/v1/switching-requests", token, &json!({"action": "erase"})).await.json().await.unwrap();
        let journal = json!({
            "tenant_id": ctx.tenant_id(), "request_id": request["id"], "action": "erase", "started_at": now,
            "files": [0, 0, now], "rows": rows, "key_destroyed_at": null,
        });
        let path = app.store.vault().folder().join(format!("erasing-{}.json", ctx.tenant_id()));
        std::fs::write(&path, journal.to_string()).unwrap();
        app.store.erase_tenant(ctx).await.unwrap();
    }

    let mut steps = advance(&app).await;
    steps.sort();
    assert_eq!(steps, ["erased", "erased"]);
    for ctx in [&counted, &lost] {
        assert!(!app.store.vault().has_key(ctx.tenant_id()), "the key is destroyed on the next pass");
        let journal = app.store.vault().folder().join(format!("erasing-{}.json", ctx.tenant_id()));
        assert!(!journal.exists(), "the journal goes once the attestation is written");
    }
    let payload = |ctx: &TenantCtx| {
        let bytes = steward_server::switching::read_attestation(&app.state, ctx.tenant_id()).unwrap().unwrap();
        let attestation: Value = serde_json::from_slice(&bytes).unwrap();
        let payload: Value = serde_json::from_str(attestation["payload"].as_str().unwrap()).unwrap();
        payload["stores"].as_array().unwrap().clone()
    };
    let stores = payload(&counted);
    assert!(
        stores.iter().any(|s| s["table"] == "leads" && s["rows"] == 5),
        "the noted counts are attested: {stores:?}"
    );
    let stores = payload(&lost);
    let database: Vec<&Value> = stores.iter().filter(|s| s["store"] == "database").collect();
    assert_eq!(database.len(), 1, "{stores:?}");
    assert_eq!(database[0]["verified_empty"], true, "lost counts are not attested as zero: {stores:?}");
    assert!(stores.iter().any(|s| s["store"] == "key_vault"));
    assert!(advance(&app).await.is_empty(), "nothing is left to finish");
}
