//! Files that hold personal data (export files, access archives) are encrypted at rest with the
//! tenant's key, while downloads stay what they were: the plaintext, its SHA-256 as `ETag`,
//! byte ranges of it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steward_demo::DemoConfig;
use steward_domain::tenant::CollectionSettings;
use steward_domain::{Lead, Timestamp};
use steward_server::admin;
use steward_store::StoreExt;

use crate::helpers::{TestApp, spawn_app};

const EMAIL: &str = "kaisa.at-rest@example.fi";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Every file under the files folder, as stored.
fn files_on_disk(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found
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

async fn ranged(app: &TestApp, token: &str, path: &str, range: &str) -> reqwest::Response {
    app.http.get(app.url(path)).bearer_auth(token).header("range", range).send().await.unwrap()
}

#[tokio::test]
async fn export_files_and_access_archives_are_encrypted_on_disk_and_download_as_plaintext_with_etag_and_ranges() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let leads: Vec<Lead> = steward_demo::lead_stream(&DemoConfig::demo(Timestamp::now()), 1_500).collect();
    app.store.insert(&ctx, &leads).await.unwrap();
    // One known person: a browser that visited, then a lead with an email from it.
    let site =
        admin::add_site(app.store.as_ref(), &ctx, "shop.example", CollectionSettings::default(), Timestamp::now())
            .await
            .unwrap();
    let visitor = uuid::Uuid::now_v7().to_string();
    let hit = json!({"site_key": site.site_key.as_str(), "visitor_id": visitor,
                     "events": [{"type": "page_view", "url": "https://shop.example/", "occurred_at": Timestamp::now().to_rfc3339()}]});
    let collected = app
        .http
        .post(app.url("/collect"))
        .header("content-type", "text/plain")
        .body(hit.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(collected.status(), 200);
    let lead =
        app.post("/api/v1/leads", &token, &json!({"first_name": "Kaisa", "email": EMAIL, "visitor_id": visitor})).await;
    assert_eq!(lead.status(), 201, "{}", lead.text().await.unwrap());

    // An export job of every lead, the known one among them.
    let response = app.post("/api/v1/exports", &token, &json!({"dataset": "leads", "format": "csv"})).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let job = wait_until_done(&app, &token, &location).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let file_url = job["file_url"].as_str().unwrap().to_string();
    let whole = app.get(&file_url, &token).await;
    assert_eq!(whole.status(), 200);
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let length: u64 = whole.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let body = whole.bytes().await.unwrap();
    assert!(contains(&body, EMAIL.as_bytes()), "the download is the plaintext");
    assert_eq!(etag, format!("\"{}\"", hex(&Sha256::digest(&body))), "ETag is the SHA-256 of what is downloaded");
    assert_eq!(job["sha256"], hex(&Sha256::digest(&body)));
    assert_eq!((length, job["bytes"].as_u64().unwrap()), (body.len() as u64, body.len() as u64));
    assert!(body.len() > 3 * 65_536, "several chunks: {}", body.len());

    // Ranges anywhere, across and at the edges of the 64 KiB chunks, and the last byte.
    let n = body.len();
    for (range, start, end) in [
        ("bytes=0-0".to_string(), 0, 0),
        ("bytes=65535-65536".to_string(), 65_535, 65_536),
        ("bytes=65536-131071".to_string(), 65_536, 131_071),
        ("bytes=1000-200000".to_string(), 1000, 200_000),
        (format!("bytes={}-", n - 1), n - 1, n - 1),
        ("bytes=-70000".to_string(), n - 70_000, n - 1),
    ] {
        let part = ranged(&app, &token, &file_url, &range).await;
        assert_eq!(part.status(), 206, "{range}");
        assert_eq!(part.headers()["content-range"], format!("bytes {start}-{end}/{n}").as_str(), "{range}");
        assert_eq!(part.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(part.bytes().await.unwrap(), body[start..=end], "{range}");
    }

    // An access request of the person: its archive downloads whole, hashed as it says.
    let response = app
        .post("/api/v1/data-subject-requests", &token, &json!({"kind": "access", "subject": {"email": EMAIL}}))
        .await;
    assert_eq!(response.status(), 201);
    let access: Value = response.json().await.unwrap();
    let archive_path = format!("/api/v1/data-subject-requests/{}/archive", access["id"].as_str().unwrap());
    let archive = app.get(&archive_path, &token).await;
    assert_eq!(archive.status(), 200);
    let archive_etag = archive.headers()["etag"].to_str().unwrap().to_string();
    let zip_bytes = archive.bytes().await.unwrap();
    assert_eq!(archive_etag, format!("\"{}\"", hex(&Sha256::digest(&zip_bytes))));
    assert_eq!(access["report"]["archive"]["sha256"], hex(&Sha256::digest(&zip_bytes)));
    assert_eq!(access["report"]["archive"]["bytes"], zip_bytes.len());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
    let mut leads_csv = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("leads.csv").unwrap(), &mut leads_csv).unwrap();
    assert!(leads_csv.contains(EMAIL) && leads_csv.contains(&visitor), "{leads_csv}");

    // On disk: neither file holds the person, nor anything readable (no CSV header, no ZIP
    // signature or member names): only the encrypted format.
    let stored = files_on_disk(Path::new(&app.state.settings.exports.files_dir));
    assert_eq!(stored.len(), 2, "{:?}", stored.iter().map(|(path, _)| path).collect::<Vec<_>>());
    for (path, bytes) in &stored {
        assert!(bytes.starts_with(b"STWDFIL\x01"), "{}", path.display());
        for clear in [EMAIL.as_bytes(), visitor.as_bytes(), b"Kaisa", b"PK\x03\x04", b"leads.json", b"email"] {
            assert!(!contains(bytes, clear), "{} holds {:?} in clear", path.display(), String::from_utf8_lossy(clear));
        }
    }
    let export_on_disk = stored.iter().find(|(path, _)| path.extension().is_some_and(|e| e == "csv")).unwrap();
    assert!(export_on_disk.1.len() as u64 > length, "the stored file is the plaintext plus the format's overhead");
}
