//! The public data register and tenant archives (Data Act): the register matches what the
//! exporters write; an archive checks out against its manifest and the published schemas with
//! independent tools; and an archive imported into a fresh instance archives again record for
//! record.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steward_demo::{DemoConfig, generate};
use steward_domain::Lead;
use steward_store::{ListQuery, StoreExt, TenantCtx};

use crate::helpers::{TestApp, problem, problem_fields, python, spawn_app};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn register(app: &TestApp) -> Value {
    let response = app.http.get(app.url("/data-register")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    response.json().await.unwrap()
}

/// Seeds a whole tenant: generated organizations, visitors, sessions, events and leads, one
/// restricted lead, hostile strings, a site, a retention policy and a legal hold.
async fn seed(app: &TestApp, ctx: &TenantCtx, token: &str) {
    let data = generate(&DemoConfig::demo(app.state.clock.now()).scaled(0.01));
    app.store.insert(ctx, &data.organizations).await.unwrap();
    app.store.insert(ctx, &data.visitors).await.unwrap();
    app.store.insert(ctx, &data.sessions).await.unwrap();
    app.store.insert(ctx, &data.events).await.unwrap();
    app.store.insert(ctx, &data.leads).await.unwrap();
    let hostile = json!({"email": "rtl@example.fi", "first_name": "=HYPERLINK(\"x\")", "last_name": "שלום, \"עולם\" 😀",
        "custom_fields": {"note": "\t+tab\r\nline two", "empty": ""}, "tags": ["-a", "@b"]});
    let created = app.post("/api/v1/leads", token, &hostile).await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let mut restricted: Lead =
        app.store.list(ctx, &ListQuery { limit: 1, ..ListQuery::default() }).await.unwrap().remove(0);
    restricted.restricted_at = Some(app.state.clock.now());
    assert!(app.store.update(ctx, &restricted).await.unwrap());
    let owner = steward_domain::User {
        id: steward_domain::UserId::new(),
        tenant_id: ctx.tenant_id(),
        email: steward_domain::Email::parse("owner@acme.example").unwrap(),
        role: steward_domain::Role::Owner,
        mfa_enrolled: false,
        created_at: app.state.clock.now(),
    };
    let keys = app.store.keys(ctx).unwrap();
    let record = steward_store::users::new_record(ctx, &keys, &owner, "$argon2id$v=19$stand-in".into());
    app.store.users().create_user(ctx, &record).await.unwrap();
    steward_server::admin::add_site(
        app.store.as_ref(),
        ctx,
        "shop.example.fi",
        Default::default(),
        app.state.clock.now(),
    )
    .await
    .unwrap();
    let policy = app
        .http
        .put(app.url("/api/v1/retention-policies"))
        .bearer_auth(token)
        .json(&json!({"leads": 365, "visitor-profiles": 200, "journeys": 100, "organizations": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 200, "{}", policy.text().await.unwrap());
    let hold = app
        .post(
            "/api/v1/legal-holds",
            token,
            &json!({"scope": "lead", "record_id": restricted.id, "reason": "court order 12/2026"}),
        )
        .await;
    assert_eq!(hold.status(), 201, "{}", hold.text().await.unwrap());
}

/// Asks for an archive, waits for the job and downloads it in two ranges; checks the ETag and
/// SHA-256 against the job's view.
async fn archive(app: &TestApp, token: &str) -> (Vec<u8>, Value) {
    let queued = app.http.post(app.url("/api/v1/archives")).bearer_auth(token).send().await.unwrap();
    assert_eq!(queued.status(), 202);
    let location = queued.headers()["location"].to_str().unwrap().to_string();
    let mut job = Value::Null;
    for _ in 0..1200 {
        job = app.get(&location, token).await.json().await.unwrap();
        if job["status"] == "succeeded" || job["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "succeeded", "{job}");
    let url = job["file_url"].as_str().unwrap().to_string();
    let whole = app.get(&url, token).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "application/zip");
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let whole = whole.bytes().await.unwrap().to_vec();
    assert_eq!(etag, format!("\"{}\"", job["summary"]["sha256"].as_str().unwrap()));
    assert_eq!(hex(&Sha256::digest(&whole)), job["summary"]["sha256"].as_str().unwrap());
    assert_eq!(whole.len() as u64, job["summary"]["bytes"].as_u64().unwrap());
    let half = whole.len() / 2;
    let first = app
        .http
        .get(app.url(&url))
        .bearer_auth(token)
        .header("range", format!("bytes=0-{}", half - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 206);
    let mut resumed = first.bytes().await.unwrap().to_vec();
    let rest = app
        .http
        .get(app.url(&url))
        .bearer_auth(token)
        .header("range", format!("bytes={half}-"))
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 206);
    resumed.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(resumed, whole, "a resumed download is the same file");
    (whole, job)
}

async fn upload(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    let url = app.url("/api/v1/imports/archive");
    app.http.post(url).bearer_auth(token).header("content-type", content_type).body(body).send().await.unwrap()
}

fn members(zip: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(entry.name().unwrap().to_string(), bytes);
    }
    out
}

#[tokio::test]
async fn the_register_names_exactly_the_datasets_columns_and_formats_the_exporters_write() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    seed(&app, &ctx, &token).await;
    let register = register(&app).await;
    assert_eq!(register["version"], "1.0.0");
    assert!(register["updated_at"].as_str().unwrap().ends_with('Z'));
    for section in ["standards", "limits", "switching", "excluded", "formats"] {
        assert!(!register[section].is_null(), "{section}");
    }
    assert_eq!(register["limits"]["api_requests_per_minute_per_client"], 500);
    let excluded: Vec<&str> =
        register["excluded"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(
        excluded,
        [
            "internal system architecture",
            "proprietary algorithms",
            "internal monitoring",
            "internal security processes"
        ]
    );
    assert!(register["excluded"].as_array().unwrap().iter().all(|e| e["justification"].as_str().unwrap().len() > 40));
    let standards = register["standards"].to_string();
    for standard in
        ["RFC 4180", "RFC 5322", "RFC 9562", "RFC 3339", "ISO 3166-1", "E.164", "JSON Schema 2020-12", "OpenAPI 3.1"]
    {
        assert!(standards.contains(standard), "{standard}");
    }

    let datasets: Vec<String> =
        register["datasets"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(datasets, ["leads", "visitor-profiles", "journeys", "organizations", "reports", "audit-log"]);
    let formats: Vec<&str> =
        register["formats"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(formats, ["csv", "json", "ndjson", "xlsx"]);
    for dataset in register["datasets"].as_array().unwrap() {
        let name = dataset["name"].as_str().unwrap();
        let listed: Vec<&str> = dataset["formats"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert_eq!(listed, formats, "{name}");
        // Every listed format exports; the CSV header is exactly the column dictionary.
        for format in &listed {
            let response = app.get(&format!("/api/v1/exports/{name}?format={format}"), &token).await;
            assert_eq!(response.status(), 200, "{name} as {format}: {}", response.text().await.unwrap());
            if *format == "csv" {
                let text = response.text().await.unwrap();
                let header = text.split("\r\n").next().unwrap();
                let columns: Vec<&str> =
                    dataset["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
                assert_eq!(header, columns.join(","), "{name}: the register's columns are the CSV header");
            }
        }
        // And nothing outside the register exports.
        problem(app.get(&format!("/api/v1/exports/{name}?format=parquet"), &token).await, 422).await;
        let schema = app.http.get(app.url(dataset["schema"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(schema.status(), 200);
        assert_eq!(schema.headers()["content-type"], "application/schema+json");
        let schema: Value = schema.json().await.unwrap();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["title"], name);
    }
    problem(app.get("/api/v1/exports/sessions?format=csv", &token).await, 404).await;
    let missing =
        problem(app.http.get(app.url("/data-register/schemas/sessions.schema.json")).send().await.unwrap(), 404).await;
    assert!(missing["detail"].as_str().unwrap().contains("leads.schema.json"), "{missing}");

    // People get the same register as a page.
    let page = app
        .http
        .get(app.url("/data-register"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.text().await.unwrap();
    for dataset in register["datasets"].as_array().unwrap() {
        assert!(page.contains(&format!("id=\"ds-{}\"", dataset["name"].as_str().unwrap())));
        for column in dataset["columns"].as_array().unwrap() {
            assert!(page.contains(&format!("<code>{}</code>", column["name"].as_str().unwrap())), "{column}");
        }
    }
    for exclusion in excluded {
        assert!(page.contains(exclusion));
    }
}

#[tokio::test]
async fn an_archive_checks_out_and_imported_elsewhere_archives_again_record_for_record() {
    let source = spawn_app().await;
    let (ctx, token) = source.tenant_token("Acme Oy").await;
    seed(&source, &ctx, &token).await;
    let (zip, job) = archive(&source, &token).await;

    // Independent checks: manifest sums and counts, MANIFEST.sha256, every NDJSON record against
    // the published schema, and the register's datasets, files and columns.
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("archive.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    let schemas = dir.path().join("schemas");
    std::fs::create_dir(&schemas).unwrap();
    let register = register(&source).await;
    for dataset in register["datasets"].as_array().unwrap() {
        let schema = source
            .http
            .get(source.url(dataset["schema"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        std::fs::write(schemas.join(format!("{}.schema.json", dataset["name"].as_str().unwrap())), schema).unwrap();
    }
    let register_path = dir.path().join("register.json");
    std::fs::write(&register_path, register.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/check_archive.py");
    let output = Command::new(python())
        .args([
            script,
            "--archive",
            zip_path.to_str().unwrap(),
            "--schemas",
            schemas.to_str().unwrap(),
            "--register",
            register_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "check_archive.py: {}", String::from_utf8_lossy(&output.stderr));
    let checked: Value = serde_json::from_slice(&output.stdout).unwrap();
    let leads = source.store.count::<Lead>(&ctx).await.unwrap();
    assert!(checked["records"].as_u64().unwrap() > leads, "{checked}");

    let first = members(&zip);
    let manifest: Value = serde_json::from_slice(&first["manifest.json"]).unwrap();
    let rows = |manifest: &Value, path: &str| {
        manifest["files"].as_array().unwrap().iter().find(|f| f["path"] == path).unwrap()["rows"].as_u64().unwrap()
    };
    assert_eq!(rows(&manifest, "datasets/leads.ndjson"), leads, "restricted leads are in the archive too");
    assert!(rows(&manifest, "datasets/journeys.ndjson") > 0 && rows(&manifest, "datasets/reports.ndjson") > 0);
    assert_eq!(job["summary"]["files"], manifest["files"]);
    let readme = String::from_utf8(first["README.md"].clone()).unwrap();
    assert!(readme.contains("datasets/<dataset>.ndjson") && readme.contains("manifest.json"));
    let users: Value = serde_json::from_slice(&first["assets/users.json"]).unwrap();
    assert_eq!(users[0]["email"], "owner@acme.example", "{users}");
    assert_eq!(users[0]["role"], "owner");
    assert!(!String::from_utf8_lossy(&first["assets/users.json"]).contains("argon2"), "no password hash");
    let clients: Value = serde_json::from_slice(&first["assets/api-clients.json"]).unwrap();
    assert!(!clients.as_array().unwrap().is_empty());
    assert!(
        !String::from_utf8_lossy(&first["assets/api-clients.json"]).contains("secret"),
        "no secret, not even its hash"
    );

    // A fresh instance: import, then archive again.
    let destination = spawn_app().await;
    let (new_ctx, new_token) = destination.tenant_token("Acme Oy").await;
    let imported = upload(&destination, &new_token, "application/zip", zip.clone()).await;
    assert_eq!(imported.status(), 200);
    let report: Value = imported.json().await.unwrap();
    assert_eq!(report["imported"]["leads"], leads);
    assert_eq!(report["imported"]["journeys"], rows(&manifest, "datasets/journeys.ndjson"));
    assert_eq!(report["assets"]["sites"], 1);
    assert_eq!(report["assets"]["legal-holds"], 1);
    assert_eq!(destination.store.count::<Lead>(&new_ctx).await.unwrap(), leads);

    let (again, _) = archive(&destination, &new_token).await;
    let second = members(&again);
    let mut compared = 0;
    for (path, bytes) in &first {
        let Some(dataset) = path.strip_prefix("datasets/") else { continue };
        if dataset.starts_with("audit-log.") {
            continue; // each provider keeps its own log; the destination's records the import
        }
        let other = second.get(path).unwrap_or_else(|| panic!("{path} is missing from the second archive"));
        if path.ends_with(".ndjson") {
            let records = |bytes: &[u8]| -> Vec<Value> {
                String::from_utf8(bytes.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
            };
            assert_eq!(records(bytes), records(other), "{path}: record for record");
        }
        assert_eq!(bytes, other, "{path}: byte for byte");
        compared += 1;
    }
    assert_eq!(compared, 10, "five datasets in two formats");
    for asset in ["assets/retention-policies.json", "assets/sites.json", "assets/legal-holds.json"] {
        assert_eq!(first[asset], second[asset], "{asset}");
    }
    for schema in first.keys().filter(|k| k.starts_with("schemas/")) {
        assert_eq!(first[schema], second[schema]);
    }

    // A second import into the same tenant is refused; a damaged archive loses nothing.
    let again = upload(&destination, &new_token, "application/zip", zip.clone()).await;
    let refused = problem(again, 409).await;
    assert!(refused["detail"].as_str().unwrap().contains("new, empty tenant"), "{refused}");

    let mut damaged = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, bytes) in &first {
        damaged.start_file(path.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        if path == "datasets/leads.ndjson" {
            let mut changed = bytes.clone();
            changed[10] ^= 1;
            damaged.write_all(&changed).unwrap();
        } else {
            damaged.write_all(bytes).unwrap();
        }
    }
    let damaged = damaged.finish().unwrap().into_inner();
    let (empty_ctx, empty_token) = destination.tenant_token("Empty Oy").await;
    let response = upload(&destination, &empty_token, "application/zip", damaged).await;
    let body = problem(response, 422).await;
    assert_eq!(problem_fields(&body), ["archive"]);
    assert!(body.to_string().contains("datasets/leads.ndjson does not match the manifest"), "{body}");
    assert_eq!(destination.store.count::<Lead>(&empty_ctx).await.unwrap(), 0, "nothing was written");
    let wrong = upload(
        &destination,
        &empty_token,
        "text/csv",
        b"a,b
"
        .to_vec(),
    )
    .await;
    problem(wrong, 415).await;
}

#[tokio::test]
async fn archives_need_the_admin_scope_and_stay_within_the_tenant() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let reader = app.token(&ctx, "leads:read export").await;
    problem(app.http.post(app.url("/api/v1/archives")).bearer_auth(&reader).send().await.unwrap(), 403).await;
    let queued = app.http.post(app.url("/api/v1/archives")).bearer_auth(&token).send().await.unwrap();
    let location = queued.headers()["location"].to_str().unwrap().to_string();
    let (_, other) = app.tenant_token("Other").await;
    problem(app.get(&location, &other).await, 404).await;
    problem(app.get(&format!("{location}/file"), &other).await, 404).await;
    problem(app.get("/api/v1/archives/not-an-id", &token).await, 404).await;
}

#[tokio::test]
async fn an_archive_member_that_inflates_far_past_its_manifest_size_is_refused_without_inflating_it() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Empty Oy").await;
    let manifest = json!({
        "format": "steward-tenant-archive",
        "format_version": 1,
        "generator": "a forger",
        "tenant": {"id": ctx.tenant_id().to_string(), "name": "Acme Oy", "slug": "acme-oy"},
        "created_at": "2026-12-01T00:00:00Z",
        "register": "https://steward.example/data-register",
        "files": [{"path": "datasets/leads.ndjson", "dataset": "leads", "format": "ndjson", "rows": 1,
                   "bytes": 100, "sha256": hex(&Sha256::digest([0u8; 100]))}],
    });
    let mut bomb = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    bomb.start_file("manifest.json", deflated).unwrap();
    bomb.write_all(manifest.to_string().as_bytes()).unwrap();
    bomb.start_file("datasets/leads.ndjson", deflated).unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..64 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap().into_inner();
    assert!(bomb.len() < 1024 * 1024, "64 MiB of zeros in {} bytes", bomb.len());

    let started = std::time::Instant::now();
    let body = problem(upload(&app, &token, "application/zip", bomb).await, 422).await;
    let took = started.elapsed();
    assert_eq!(problem_fields(&body), ["archive"]);
    assert!(
        body.to_string().contains("datasets/leads.ndjson inflates past the 100 bytes the manifest gives it"),
        "{body}"
    );
    assert!(took < std::time::Duration::from_secs(5), "refused in {took:?}");
    assert_eq!(app.store.count::<Lead>(&ctx).await.unwrap(), 0);
}
