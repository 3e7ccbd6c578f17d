//! Generated hostile input through the doors a user uses: `/collect` payloads, CSV imports and
//! archive files. Whatever arrives, the answer is a clear refusal or a partial success that
//! accounts for every item, never a server error or a panic, and good items are never lost.
//!
//! The suite draws `PROPTEST_CASES` inputs per door (64 by default); a longer run:
//! `PROPTEST_CASES=5000 cargo test -p steward-server --test api properties::`.

use std::io::Write;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use steward_domain::Timestamp;
use steward_domain::tenant::CollectionSettings;
use steward_server::{Settings, admin};

use crate::helpers::{spawn_app, spawn_app_with};
use crate::imports::{multipart, send};

fn cases() -> usize {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
}

/// `cases()` values of `strategy`, drawn at random (the failing input is printed by the test).
fn draw<S: Strategy>(strategy: S) -> Vec<S::Value> {
    let mut runner = TestRunner::default();
    (0..cases()).map(|_| strategy.new_tree(&mut runner).expect("a value").current()).collect()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[a-zA-Z0-9€😀\u{0}\u{202e}\"', ;\r\n@.+:/=-]{0,40}",
        1 => proptest::collection::vec(any::<char>(), 0..40_000).prop_map(|chars| chars.into_iter().collect()),
    ]
}

/// Any JSON value, nested a little, with hostile strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,12}",
                    Just("type".to_string()),
                    Just("url".to_string()),
                    Just("lead".to_string())
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An event: mostly well-formed fields with hostile values, sometimes anything at all.
fn event() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (
            prop_oneof![Just("page_view".to_string()), Just("form_submit".to_string()), text()],
            prop_oneof![Just("https://shop.example/a".to_string()), text()],
            json_value(),
            prop_oneof![Just(Value::Null), json_value()],
        )
            .prop_map(|(kind, url, properties, lead)| {
                json!({"type": kind, "url": url, "properties": properties, "lead": lead, "title": "t"})
            }),
        1 => json_value(),
    ]
}

#[tokio::test]
async fn collect_answers_every_generated_payload_with_a_count_or_a_clear_refusal() {
    let app = spawn_app().await;
    let ctx = app.tenant("Shop Oy").await;
    let site =
        admin::add_site(app.store.as_ref(), &ctx, "shop.example", CollectionSettings::default(), Timestamp::now())
            .await
            .unwrap();
    let batches = draw(proptest::collection::vec(event(), 0..8));
    let bodies = draw(prop_oneof![json_value().prop_map(|v| v.to_string()), text()]);
    for (events, raw) in batches.into_iter().zip(bodies) {
        let visitor = uuid::Uuid::now_v7().to_string();
        let count = events.len();
        let body = json!({"site_key": site.site_key.as_str(), "visitor_id": visitor, "events": events}).to_string();
        for (payload, batch) in [(body, Some(count)), (raw, None)] {
            let response = app
                .http
                .post(app.url("/collect"))
                .header("content-type", "text/plain")
                .body(payload.clone())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert!(matches!(status, 200 | 400 | 401 | 413 | 422), "{status} {answer} for {payload:.300}");
            if let (200, Some(count)) = (status, batch) {
                let rejected = answer["rejected"].as_array().map_or(0, Vec::len);
                assert_eq!(answer["accepted"].as_u64().unwrap() as usize + rejected, count, "{answer}");
            } else if status != 200 {
                assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()), "{status} {answer}");
            }
        }
    }
}

/// A CSV of a dataset's rows, each a good one or hostile cells; with how many are good.
fn csv_file(organizations: bool) -> impl Strategy<Value = (Vec<u8>, usize)> {
    let good = move |name: String| {
        if organizations { format!("{name} Oy,FI12345678\r\n") } else { format!("{name},{name}@example.fi\r\n") }
    };
    let row = prop_oneof![
        2 => "[a-z]{1,8}".prop_map(move |name| (good(name).into_bytes(), true)),
        2 => (text(), text()).prop_map(|(a, b)| {
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            (format!("{},{}\r\n", quote(&a), quote(&b)).into_bytes(), false)
        }),
        // Raw bytes on one line of their own (a stray quote would rightly join the next lines).
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| {
            let mut line: Vec<u8> =
                bytes.into_iter().map(|b| if matches!(b, b'"' | b'\r' | b'\n') { b' ' } else { b }).collect();
            line.push(b'\n');
            (line, false)
        }),
    ];
    let header: &[u8] = if organizations { b"name,vat_id\r\n" } else { b"first_name,email\r\n" };
    proptest::collection::vec(row, 0..12).prop_map(move |rows| {
        let mut file = header.to_vec();
        let good = rows.iter().filter(|(_, good)| *good).count();
        for (row, _) in rows {
            file.extend_from_slice(&row);
        }
        (file, good)
    })
}

#[tokio::test]
async fn a_csv_import_of_generated_rows_keeps_every_good_row_and_never_fails_as_a_whole() {
    // A long run sends more imports than one client may in a minute.
    let mut settings = Settings::default();
    settings.api.rate_limit_per_minute = 1_000_000;
    let app = spawn_app_with(settings).await;
    let (_, token) = app.tenant_token("Import Oy").await;
    let files = draw(csv_file(false)).into_iter().map(|file| ("leads", file));
    for (dataset, (file, good)) in files.chain(draw(csv_file(true)).into_iter().map(|file| ("organizations", file))) {
        let response = send(&app, &token, dataset, multipart(&[("file", &file)])).await;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let shown = String::from_utf8_lossy(&file).chars().take(300).collect::<String>();
        assert!(matches!(status, 200 | 422), "{status} {answer} for {shown:?}");
        if status == 200 {
            let (created, rejected) = (answer["created"].as_u64().unwrap(), answer["rejected"].as_u64().unwrap());
            assert_eq!(created + rejected, answer["rows"].as_u64().unwrap(), "{answer}");
            assert!(created as usize >= good, "every good row is kept: {answer} for {shown:?}");
        } else {
            assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()), "{answer}");
        }
    }
}

/// ZIP files with a manifest and members of generated content, and plain random bytes.
fn archive_file() -> impl Strategy<Value = Vec<u8>> {
    let member = (
        prop_oneof![Just("manifest.json".to_string()), Just("leads.ndjson".to_string()), "[a-z./]{1,20}"],
        json_value(),
    );
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
        3 => proptest::collection::vec(member, 0..5).prop_map(|members| {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for (name, value) in members {
                if zip.start_file(name, zip::write::SimpleFileOptions::default()).is_ok() {
                    let _ = zip.write_all(value.to_string().as_bytes());
                }
            }
            zip.finish().map(|cursor| cursor.into_inner()).unwrap_or_default()
        }),
    ]
}

#[test]
fn the_archive_reader_refuses_generated_files_with_a_reason_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    for (n, bytes) in draw(archive_file()).into_iter().enumerate() {
        let path = dir.path().join(format!("{n}.zip"));
        std::fs::write(&path, &bytes).unwrap();
        let read = std::panic::catch_unwind(|| steward_server::import::archive::verify(&path));
        let Ok(result) = read else { panic!("the archive reader panicked on {} bytes: {bytes:?}", bytes.len()) };
        if let Err(error) = result {
            assert!(!error.to_string().is_empty());
        }
    }
}
