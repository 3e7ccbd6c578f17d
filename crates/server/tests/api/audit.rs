//! The audit log through HTTP: exports and refusals are recorded with who, what and how many;
//! the chain verifies, and names the exact entry someone changed or removed in the database;
//! the log itself exports in every format, entry for entry as its list answers.

use serde_json::{Value, json};
use steward_demo::DemoConfig;
use steward_domain::{IpNetwork, Lead, Scopes, Timestamp};
use steward_store::{Actor, ActorKind, AuditDraft, AuditEntry, StoreExt, Target, TenantCtx};

use crate::exports::round_trip_period;
use crate::helpers::{TestApp, problem, spawn_app};

async fn entries(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/api/v1/audit-log?{query}");
    loop {
        let response = app.get(&path, token).await;
        assert_eq!(response.status(), 200);
        let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        let page: Value = response.json().await.unwrap();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match (page["next_cursor"].as_str(), link) {
            (Some(_), Some(link)) => path = link.trim_start_matches('<').split('>').next().unwrap().to_string(),
            (None, None) => return all,
            other => panic!("next_cursor and Link disagree: {other:?}"),
        }
    }
}

async fn token_for(app: &TestApp, ctx: &TenantCtx, scopes: &str) -> (String, String) {
    let (id, secret) = app.client(ctx, scopes).await;
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    (id, body["access_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn exports_and_refused_exports_are_audited_and_the_chain_verifies() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (exporter, token) = token_for(&app, &ctx, &Scopes::all().to_string()).await;
    let leads: Vec<Lead> = steward_demo::lead_stream(&DemoConfig::demo(Timestamp::now()), 30).collect();
    app.store.insert(&ctx, &leads).await.unwrap();

    let csv = app.get("/api/v1/exports/leads?format=csv", &token).await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 31);
    let queued = app.post("/api/v1/exports", &token, &json!({"dataset": "leads", "format": "ndjson"})).await;
    assert_eq!(queued.status(), 202);
    let location = queued.headers()["location"].to_str().unwrap().to_string();
    let job = loop {
        let job: Value = app.get(&location, &token).await.json().await.unwrap();
        if job["status"] == "succeeded" {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // A viewer-like client (reads, no export) and an analyst-like one (reports and export, no
    // personal data) are both refused, and both refusals are on record.
    let (viewer, viewer_token) = token_for(&app, &ctx, "leads:read reports:read").await;
    problem(app.get("/api/v1/exports/leads?format=csv", &viewer_token).await, 403).await;
    let (analyst, analyst_token) = token_for(&app, &ctx, "reports:read export").await;
    problem(app.get("/api/v1/exports/leads?format=xlsx", &analyst_token).await, 403).await;
    let job_refused = app.post("/api/v1/exports", &analyst_token, &json!({"dataset": "leads"})).await;
    problem(job_refused, 403).await;

    let log = entries(&app, &token, "limit=2").await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["export.streamed", "export.queued", "export.completed", "export.refused", "export.refused", "export.refused"]
    );
    let seqs: Vec<i64> = log.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>(), "oldest first, every entry once across pages");
    for pair in log.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "each entry names the one before");
    }

    let streamed = &log[0];
    assert_eq!(streamed["actor"], json!({"kind": "client", "id": exporter}));
    assert_eq!(streamed["target"], json!({"kind": "leads", "count": 30}));
    assert_eq!(streamed["detail"]["format"], "csv");
    assert_eq!(streamed["detail"]["rows"], 30);
    assert_eq!(streamed["detail"]["completed"], true);
    assert_eq!(streamed["ip_network"], "127.0.0.0/24", "the caller's network, masked");
    let completed = &log[2];
    assert_eq!(completed["actor"], json!({"kind": "system", "id": null}));
    assert_eq!(completed["detail"]["rows"], 30);
    assert_eq!(completed["detail"]["sha256"], job["sha256"]);
    assert_eq!(completed["target"]["ids"], json!([job["id"]]));
    assert_eq!(log[3]["actor"]["id"], viewer.as_str());
    assert!(log[3]["detail"]["reason"].as_str().unwrap().contains("export"), "{}", log[3]);
    assert_eq!(log[4]["actor"]["id"], analyst.as_str());
    assert!(log[4]["detail"]["reason"].as_str().unwrap().contains("leads:read"), "{}", log[4]);
    assert_eq!(log[5]["detail"]["job"], true);

    let refusals = entries(&app, &token, "action=export.refused").await;
    assert_eq!(refusals.len(), 3);
    let by_system = entries(&app, &token, "action=export.&actor_kind=system").await;
    assert_eq!(by_system.len(), 1);
    assert_eq!(by_system[0]["action"], "export.completed");

    let verdict: Value = app.get("/api/v1/audit-log/verify", &token).await.json().await.unwrap();
    assert_eq!(
        verdict,
        json!({"valid": true, "entries": 6, "unkeyed_entries": 0, "head_seq": 6, "head_hash": log[5]["hash"], "broken_seq": null, "reason": null})
    );

    // Another tenant's log is its own.
    let (_, other) = app.tenant_token("Other").await;
    assert!(entries(&app, &other, "").await.is_empty());
    // Reading the log needs its scope; bad parameters are named.
    problem(app.get("/api/v1/audit-log", &viewer_token).await, 403).await;
    for (query, field) in [("actor_kind=robot", "actor_kind"), ("cursor=zzz", "cursor"), ("colour=red", "colour")] {
        let body = problem(app.get(&format!("/api/v1/audit-log?{query}"), &token).await, 422).await;
        assert!(body["detail"].as_str().unwrap().contains(field), "{body}");
    }
}

async fn five_entries(app: &TestApp, name: &str) -> TenantCtx {
    let ctx = app.tenant(name).await;
    for n in 0..5_u64 {
        let draft = AuditDraft {
            at: app.state.clock.now(),
            actor: Actor { kind: ActorKind::Client, id: Some(format!("client-{n}")) },
            action: "lead.deleted".into(),
            target: Target { kind: "leads".into(), count: n + 1, ids: Vec::new() },
            detail: json!({"n": n}),
            ip_network: None,
        };
        app.store.audit(&ctx, &draft).await.unwrap();
    }
    ctx
}

#[tokio::test]
async fn verify_names_the_entry_whose_stored_bytes_changed_or_that_was_removed() {
    let app = spawn_app().await;
    let sqlite = crate::helpers::backend() == "sqlite";
    let flip = |column: &str| {
        if sqlite {
            // Another first byte whatever it was (a hash starts with 0xff once in 256 times).
            format!(
                "{column} = CASE WHEN substr({column}, 1, 1) = X'ff' THEN X'00' ELSE X'ff' END || substr({column}, 2)"
            )
        } else {
            format!("{column} = set_byte({column}, 0, 255 - get_byte({column}, 0))")
        }
    };
    // Each tampering on entry 3 of a tenant of its own; the log is append-only, so the
    // "attacker" first removes the guard, as someone with the database file could.
    let tamperings = [
        ("seq", "seq = seq + 100".to_string()),
        ("id", if sqlite { "id = randomblob(16)".into() } else { "id = gen_random_uuid()".into() }),
        ("at", if sqlite { "at = at + 1".into() } else { "at = at + interval '1 microsecond'".into() }),
        ("action", "action = action || '!'".into()),
        ("actor_kind", "actor_kind = 'operator'".into()),
        ("actor_id", "actor_id = 'client-9'".into()),
        ("body", flip("body")),
        ("prev_hash", flip("prev_hash")),
        ("hash", flip("hash")),
    ];
    let drop_guard = if sqlite {
        "DROP TRIGGER IF EXISTS audit_log_append_only"
    } else {
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log"
    };
    let untouched = five_entries(&app, "Untouched").await;
    let first = five_entries(&app, "First").await;
    let tenant = app.tenant_literal(&first);
    let refused =
        app.raw_sql(&format!("UPDATE audit_log SET action = 'x' WHERE tenant_id = {tenant} AND seq = 1")).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"), "the guard refuses an UPDATE");
    app.raw_sql(drop_guard).await.unwrap();
    for (column, change) in tamperings {
        let ctx = five_entries(&app, column).await;
        let tenant = app.tenant_literal(&ctx);
        app.raw_sql(&format!("UPDATE audit_log SET {change} WHERE tenant_id = {tenant} AND seq = 3")).await.unwrap();
        let verdict = app.store.verify_audit(&ctx).await.unwrap();
        assert!(!verdict.valid, "a change of {column} went unnoticed");
        assert_eq!(verdict.broken_seq, Some(3), "a change of {column}: {verdict:?}");
    }
    let removed = five_entries(&app, "Removed").await;
    let tenant = app.tenant_literal(&removed);
    app.raw_sql(&format!("DELETE FROM audit_log WHERE tenant_id = {tenant} AND seq = 3")).await.unwrap();
    let verdict = app.store.verify_audit(&removed).await.unwrap();
    assert_eq!(verdict.broken_seq, Some(3));
    assert!(verdict.reason.unwrap().contains("entry 3 is missing"));
    let intact = app.store.verify_audit(&untouched).await.unwrap();
    assert!(intact.valid && intact.entries == 5 && intact.head_seq == Some(5), "{intact:?}");
}

/// Entries of every shape: by a client and by the system (no actor id), with record ids and a
/// network, hostile text, and details that are a map, empty or null.
fn varied_drafts(at: Timestamp) -> Vec<AuditDraft> {
    let client = |id: &str| Actor { kind: ActorKind::Client, id: Some(id.to_string()) };
    let ids = vec![uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
    vec![
        AuditDraft {
            at,
            actor: client("=cmd|' /C calc'!A0"),
            action: "lead.deleted".into(),
            target: Target { kind: "leads".into(), count: 2, ids },
            detail: json!({"reason": "-2+3, \"quoted\"\r\nsecond line", "before": {"email": "@x.fi", "tags": ["=1"]}}),
            ip_network: Some(IpNetwork::parse("198.51.100.77").unwrap()),
        },
        AuditDraft {
            at,
            actor: Actor { kind: ActorKind::System, id: None },
            action: "export.completed".into(),
            target: Target { kind: "leads".into(), count: 0, ids: Vec::new() },
            detail: json!({}),
            ip_network: Some(IpNetwork::parse("2001:db8:1234:5678::1").unwrap()),
        },
        AuditDraft {
            at,
            actor: Actor { kind: ActorKind::Operator, id: None },
            action: "client.revoked".into(),
            target: Target { kind: "client".into(), count: 1, ids: Vec::new() },
            detail: Value::Null,
            ip_network: None,
        },
    ]
}

#[tokio::test]
async fn the_audit_log_exports_in_every_format_and_as_a_job_exactly_as_the_api_lists_it() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (exporter, token) = token_for(&app, &ctx, &Scopes::all().to_string()).await;
    let start = app.state.clock.now();
    for draft in varied_drafts(start) {
        app.store.audit(&ctx, &draft).await.unwrap();
    }
    // And entries the server writes: a streamed export, a refused one.
    // Read to the end: a streamed export is audited once its last byte is written.
    let streamed = app.get("/api/v1/exports/organizations?format=csv", &token).await;
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().starts_with("id,"));
    let (_, viewer_token) = token_for(&app, &ctx, "leads:read").await;
    problem(app.get("/api/v1/exports/leads", &viewer_token).await, 403).await;
    // Later entries, those of the exports below included, fall outside the period exported.
    app.state.clock.advance(time::Duration::minutes(10));
    let end = start.checked_add(time::Duration::minutes(1)).unwrap();
    let expected = entries(&app, &token, &format!("from={start}&to={end}")).await;
    assert_eq!(expected.len(), 5, "{expected:?}");

    let period = format!("&from={start}&to={end}");
    let report = round_trip_period::<AuditEntry>(&app, &token, &period, &expected).await;
    assert!(report.contains("14 columns"), "{report}");
    // Without `from` the period starts at the oldest entry; the whole log up to `to` is these.
    let ndjson = app.get(&format!("/api/v1/exports/audit-log?format=ndjson&to={end}"), &token).await;
    assert_eq!(ndjson.status(), 200);
    let lines: Vec<Value> =
        ndjson.text().await.unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines, expected);

    // An export job of the audit log holds the same entries.
    let job = json!({"dataset": "audit-log", "format": "json", "from": start.to_string(), "to": end.to_string()});
    let queued = app.post("/api/v1/exports", &token, &job).await;
    assert_eq!(queued.status(), 202, "{}", queued.text().await.unwrap());
    let location = queued.headers()["location"].to_str().unwrap().to_string();
    let job = loop {
        let job: Value = app.get(&location, &token).await.json().await.unwrap();
        if job["status"] == "succeeded" || job["status"] == "failed" {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!((job["rows_total"].as_u64(), job["rows_written"].as_u64()), (Some(5), Some(5)));
    let file: Vec<Value> = app.get(job["file_url"].as_str().unwrap(), &token).await.json().await.unwrap();
    assert_eq!(file, expected);

    // Taking the audit log out is itself on record: each export, by whom, in which format.
    let streamed = entries(&app, &token, &format!("action=export.streamed&from={end}")).await;
    let formats: Vec<&str> = streamed.iter().map(|e| e["detail"]["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["csv", "json", "ndjson", "xlsx", "ndjson"]);
    for entry in &streamed {
        assert_eq!(entry["actor"], json!({"kind": "client", "id": exporter}));
        assert_eq!(entry["target"], json!({"kind": "audit-log", "count": 5}));
        assert_eq!(entry["detail"]["completed"], true, "{entry}");
    }
    let completed = entries(&app, &token, &format!("action=export.completed&from={end}")).await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["actor"]["kind"], "system");
    assert_eq!(completed[0]["target"]["kind"], "audit-log");
    assert_eq!(completed[0]["detail"]["sha256"], job["sha256"]);
}

#[tokio::test]
async fn exporting_the_audit_log_needs_audit_read_and_a_refusal_is_on_record() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme").await;
    let (_, token) = token_for(&app, &ctx, "audit:read").await;
    let (refused, export_only) = token_for(&app, &ctx, "export leads:read").await;
    for format in ["csv", "xlsx"] {
        let body =
            problem(app.get(&format!("/api/v1/exports/audit-log?format={format}"), &export_only).await, 403).await;
        assert!(body["detail"].as_str().unwrap().contains("audit:read"), "{body}");
    }
    problem(app.post("/api/v1/exports", &export_only, &json!({"dataset": "audit-log"})).await, 403).await;
    // Audit reading without `export` is not enough either.
    problem(app.get("/api/v1/exports/audit-log", &token).await, 403).await;

    let log = entries(&app, &token, "action=export.refused").await;
    assert_eq!(log.len(), 4);
    for entry in &log[..3] {
        assert_eq!(entry["actor"]["id"], refused.as_str());
        assert_eq!(entry["target"]["kind"], "audit-log");
        assert!(entry["detail"]["reason"].as_str().unwrap().contains("audit:read"), "{entry}");
    }
    assert!(log[3]["detail"]["reason"].as_str().unwrap().contains("export"), "{}", log[3]);
}

/// Drops the append-only guard, as someone with the database file or server could.
async fn drop_append_only_guard(app: &TestApp) {
    let drop_guard = if crate::helpers::backend() == "sqlite" {
        "DROP TRIGGER IF EXISTS audit_log_append_only"
    } else {
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log"
    };
    app.raw_sql(drop_guard).await.unwrap();
}

/// Rewrites entries `from..` of a tenant's log as an attacker who knows the format but not the
/// key would: entry `from` gets a new action, and every hash from there on is recomputed with
/// the only hash such an attacker can compute.
async fn rewrite_without_the_key(app: &TestApp, ctx: &TenantCtx, from: i64) {
    let rows = app
        .store
        .list_audit(ctx, &steward_store::AuditQuery { limit: 1000, ..Default::default() }, false)
        .await
        .unwrap();
    let tenant = app.tenant_literal(ctx);
    let mut prev = rows.iter().find(|row| row.seq == from - 1).map_or(vec![0; 32], |row| row.hash.clone());
    for mut row in rows.into_iter().filter(|row| row.seq >= from) {
        if row.seq == from {
            row.action = "export.streamed".into();
        }
        row.prev_hash = prev.clone();
        row.hash = steward_store::audit::unkeyed_hash(ctx, &row, &prev).to_vec();
        let sql = format!(
            "UPDATE audit_log SET action = '{}', prev_hash = {}, hash = {} WHERE tenant_id = {tenant} AND seq = {}",
            row.action,
            app.bytes_literal(&row.prev_hash),
            app.bytes_literal(&row.hash),
            row.seq
        );
        app.raw_sql(&sql).await.unwrap();
        prev = row.hash;
    }
}

#[tokio::test]
async fn an_entry_rewritten_with_every_later_hash_recomputed_without_the_key_is_found() {
    let app = spawn_app().await;
    drop_append_only_guard(&app).await;
    let ctx = five_entries(&app, "Keyed").await;
    let intact = app.store.verify_audit(&ctx).await.unwrap();
    assert!(intact.valid && intact.unkeyed_entries == 0, "a new log is keyed from its first entry: {intact:?}");
    rewrite_without_the_key(&app, &ctx, 3).await;
    let verdict = app.store.verify_audit(&ctx).await.unwrap();
    assert!(!verdict.valid, "{verdict:?}");
    assert_eq!(verdict.broken_seq, Some(3));
    assert!(verdict.reason.as_deref().unwrap().contains("without the tenant's key"), "{verdict:?}");

    // The whole log rewritten from its first entry verifies only as unkeyed, which a log
    // started on this version never is: the answer says so for the auditor to see.
    let whole = five_entries(&app, "Rewritten").await;
    rewrite_without_the_key(&app, &whole, 1).await;
    let verdict = app.store.verify_audit(&whole).await.unwrap();
    assert_eq!(verdict.unkeyed_entries, 5, "{verdict:?}");
    let token = app.token(&ctx, "audit:read").await;
    let answer: Value = app.get("/api/v1/audit-log/verify", &token).await.json().await.unwrap();
    assert_eq!(
        (&answer["valid"], &answer["broken_seq"], &answer["unkeyed_entries"]),
        (&json!(false), &json!(3), &json!(0))
    );
}

#[tokio::test]
async fn a_damaged_entry_is_listed_and_exported_as_damaged_and_the_rest_of_the_log_still_reads() {
    let app = spawn_app().await;
    drop_append_only_guard(&app).await;
    let ctx = five_entries(&app, "Damaged").await;
    let token = app.token(&ctx, "audit:read export").await;
    let tenant = app.tenant_literal(&ctx);
    let garbage = app.bytes_literal(b"\x01not a sealed body at all, just bytes");
    app.raw_sql(&format!("UPDATE audit_log SET body = {garbage} WHERE tenant_id = {tenant} AND seq = 2"))
        .await
        .unwrap();

    let listed = entries(&app, &token, "action=lead.deleted").await;
    assert_eq!(listed.len(), 5, "every entry is listed");
    assert!(listed[1]["damaged"].as_str().unwrap().contains("cannot be read"), "{}", listed[1]);
    assert_eq!(listed[1]["action"], "lead.deleted", "its plain columns still show");
    assert!(listed.iter().enumerate().all(|(n, e)| n == 1 || e.get("damaged").is_none()));
    assert_eq!(listed[4]["detail"]["n"], 4, "entries after it read as before");

    for format in ["csv", "ndjson", "json", "xlsx"] {
        let response = app.get(&format!("/api/v1/exports/audit-log?format={format}"), &token).await;
        assert_eq!(response.status(), 200, "{format}");
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 200, "{format}: the export goes on past the damaged entry");
        if format == "ndjson" {
            let lines: Vec<Value> =
                String::from_utf8(body.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert!(lines.len() >= 6, "the five entries, the token's and the earlier exports'");
            assert!(lines[1]["damaged"].is_string(), "{}", lines[1]);
            assert_eq!(lines.iter().filter(|line| line.get("damaged").is_some()).count(), 1);
        }
    }
    let verdict: Value = app.get("/api/v1/audit-log/verify", &token).await.json().await.unwrap();
    assert_eq!(verdict["broken_seq"], 2, "{verdict}");
}
