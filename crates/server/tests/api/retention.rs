//! Retention: policies and legal holds through the API, sweeps that delete exactly what has
//! expired (moving the test clock), and failures that show in `/readyz` and the audit log.

use serde_json::{Value, json};
use steward_demo::{DemoConfig, DemoData};
use steward_domain::{Event, Lead, Organization, Session, Timestamp, VisitorProfile};
use steward_store::{ListQuery, Record, StoreExt, TenantCtx};

use crate::helpers::{TestApp, backend, problem, problem_fields, spawn_app};

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

/// A tenant's worth of linked records with activity over the `span` days before now.
async fn seed(app: &TestApp, ctx: &TenantCtx, seed: u64, span: i64, visitors: usize, leads: usize) -> DemoData {
    let end = app.state.clock.now();
    let start = end.checked_sub(days(span)).unwrap();
    let data = steward_demo::generate(&DemoConfig { seed, organizations: 2, visitors, leads, start, end });
    app.store.insert(ctx, &data.organizations).await.unwrap();
    app.store.insert(ctx, &data.visitors).await.unwrap();
    app.store.insert(ctx, &data.sessions).await.unwrap();
    app.store.insert(ctx, &data.events).await.unwrap();
    app.store.insert(ctx, &data.leads).await.unwrap();
    data
}

/// Every stored record of a kind, as ids.
async fn ids<R: Record>(app: &TestApp, ctx: &TenantCtx) -> Vec<uuid::Uuid> {
    let mut query = ListQuery { limit: steward_store::doc::MAX_PAGE, ..ListQuery::default() };
    let mut found = Vec::new();
    loop {
        let page: Vec<R> = app.store.list(ctx, &query).await.unwrap();
        query.after = page.last().map(Record::key);
        let full = page.len() == query.limit as usize;
        found.extend(page.iter().map(Record::key));
        if !full {
            let mut found = found;
            found.sort();
            return found;
        }
    }
}

fn sorted(ids: impl IntoIterator<Item = uuid::Uuid>) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    ids.sort();
    ids
}

async fn put_policy(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http.put(app.url("/api/v1/retention-policies")).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn sweep(app: &TestApp, token: &str) -> Value {
    let response = app.post("/api/v1/retention-policies/sweep", token, &json!({})).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn audit(app: &TestApp, token: &str, action: &str) -> Vec<Value> {
    let response = app.get(&format!("/api/v1/audit-log?action={action}"), token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

async fn readyz(app: &TestApp) -> Value {
    let response = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200, "a failing sweep does not take the node out of service");
    response.json().await.unwrap()
}

fn older(at: Timestamp, cutoff: Timestamp) -> bool {
    at < cutoff
}

#[tokio::test]
async fn one_sweep_deletes_exactly_the_journeys_past_the_policy_and_spares_newer_ones_and_other_tenants() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let (other, other_token) = app.tenant_token("Globex").await;
    let data = seed(&app, &ctx, 7, 40, 12, 0).await;
    let theirs = seed(&app, &other, 8, 400, 12, 0).await;
    let policy = json!({"journeys": 30, "visitor-profiles": null, "leads": null});
    assert_eq!(put_policy(&app, &token, policy.clone()).await.status(), 200);
    assert_eq!(put_policy(&app, &other_token, json!({"journeys": 1})).await.status(), 200);

    // Activity of the last 40 days under a 30-day policy: the oldest ten days go, to the row.
    let cutoff = app.state.clock.now().checked_sub(days(30)).unwrap();
    let expired_events = data.events.iter().filter(|e| older(e.occurred_at, cutoff)).count();
    let expired_sessions = data.sessions.iter().filter(|s| older(s.started_at, cutoff)).count();
    assert!(expired_events > 0 && expired_events < data.events.len(), "the data straddles the cutoff");
    let report = sweep(&app, &token).await;
    assert_eq!(report["deleted"]["events"], expired_events, "{report}");
    assert_eq!(report["deleted"]["sessions"], expired_sessions, "{report}");
    assert_eq!(report["total"], expired_events + expired_sessions);
    assert_eq!(report["days"], json!({"journeys": 30, "leads": null, "visitor-profiles": null, "organizations": null}));
    assert_eq!(report["cutoffs"]["journeys"], cutoff.to_rfc3339());
    assert_eq!(report["held"], false);
    assert_eq!(report["failures"], json!([]));
    let kept = sorted(data.events.iter().filter(|e| !older(e.occurred_at, cutoff)).map(|e| e.id.into_uuid()));
    assert_eq!(ids::<Event>(&app, &ctx).await, kept);
    let kept = sorted(data.sessions.iter().filter(|s| !older(s.started_at, cutoff)).map(|s| s.id.into_uuid()));
    assert_eq!(ids::<Session>(&app, &ctx).await, kept);
    assert_eq!(ids::<VisitorProfile>(&app, &ctx).await.len(), data.visitors.len(), "profiles are kept forever here");

    // Another tenant's rows are untouched by this tenant's sweep, whatever its own policy says.
    assert_eq!(ids::<Event>(&app, &other).await.len(), theirs.events.len());
    assert_eq!(ids::<Session>(&app, &other).await.len(), theirs.sessions.len());

    let entries = audit(&app, &token, "retention.swept").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"]["kind"], "system");
    assert_eq!(entries[0]["target"]["kind"], "retention");
    assert_eq!(entries[0]["target"]["count"], expired_events + expired_sessions);
    assert_eq!(entries[0]["detail"]["deleted"]["events"], expired_events);
    assert_eq!(entries[0]["detail"]["days"]["journeys"], 30);

    // Nothing more has expired: the next sweep deletes nothing and audits nothing.
    let again = sweep(&app, &token).await;
    assert_eq!(again["total"], 0, "{again}");
    assert_eq!(audit(&app, &token, "retention.swept").await.len(), 1);

    // Ten days later the next ten days of journeys have expired too.
    app.state.clock.advance(days(10));
    let token = app.token(&ctx, "admin audit:read").await;
    let cutoff = app.state.clock.now().checked_sub(days(30)).unwrap();
    let left = data.events.iter().filter(|e| !older(e.occurred_at, cutoff)).count();
    let report = sweep(&app, &token).await;
    assert_eq!(ids::<Event>(&app, &ctx).await.len(), left);
    assert_eq!(report["deleted"]["events"], data.events.len() - expired_events - left);

    // The policy's answer shows the tenant's last sweep.
    let policies: Value = app.get("/api/v1/retention-policies", &token).await.json().await.unwrap();
    assert_eq!(policies["last_sweep"]["total"], report["total"], "{policies}");
    assert_eq!(policies["last_sweep"]["tenant_id"], ctx.tenant_id().to_string());
}

#[tokio::test]
async fn sweeping_in_small_batches_takes_more_statements_and_every_tenant_is_swept() {
    let mut settings = steward_server::Settings::default();
    settings.retention.batch_size = 7;
    let app = crate::helpers::spawn_app_with(settings).await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let (other, _) = app.tenant_token("Globex").await;
    let data = seed(&app, &ctx, 11, 20, 6, 0).await;
    let theirs = seed(&app, &other, 12, 20, 6, 0).await;
    assert_eq!(put_policy(&app, &token, json!({"journeys": 5})).await.status(), 200);
    app.state.clock.advance(days(30));

    let summary = steward_server::retention::sweep_all(&app.state).await;
    assert!(!summary.failed(), "{summary:?}");
    let mine = summary.tenants.iter().find(|t| t.tenant_id == ctx.tenant_id()).unwrap();
    assert_eq!(mine.deleted["events"], data.events.len() as u64);
    assert_eq!(mine.deleted["sessions"], data.sessions.len() as u64);
    // The other tenant keeps its defaults (395 days for journeys and profiles): nothing is old enough.
    let theirs_outcome = summary.tenants.iter().find(|t| t.tenant_id == other.tenant_id()).unwrap();
    assert_eq!(theirs_outcome.deleted.values().sum::<u64>(), 0);
    assert_eq!(ids::<Event>(&app, &other).await.len(), theirs.events.len());
    assert_eq!(summary.deleted, (data.events.len() + data.sessions.len()) as u64);

    let report = steward_server::retention::last_sweep(&app.state, &ctx).await.unwrap().unwrap();
    let minimum = (data.events.len() / 7 + 1) as u64;
    assert!(report.batches >= minimum, "{} batches for {} events", report.batches, data.events.len());
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["retention"]["status"], "ok");
    assert_eq!(ready["retention"]["failures"], json!([]));
}

#[tokio::test]
async fn legal_holds_keep_a_held_profile_with_its_journeys_a_held_lead_with_its_profile_and_a_held_tenant_whole() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let data = seed(&app, &ctx, 21, 60, 12, 6).await;
    let everything = json!({"journeys": 30, "visitor-profiles": 30, "leads": 30, "organizations": 30});
    assert_eq!(put_policy(&app, &token, everything.clone()).await.status(), 200);

    let lonely = data.visitors.iter().find(|v| v.lead_ids.is_empty()).unwrap();
    let lead = data.leads.iter().find(|l| l.visitor_profile_id.is_some()).unwrap();
    let converted = lead.visitor_profile_id.unwrap();
    assert_ne!(lonely.id, converted);
    let placed = app
        .post(
            "/api/v1/legal-holds",
            &token,
            &json!({"scope": "visitor_profile", "record_id": lonely.id, "reason": "case 14"}),
        )
        .await;
    assert_eq!(placed.status(), 201);
    let location = placed.headers()["location"].to_str().unwrap().to_string();
    let profile_hold: Value = placed.json().await.unwrap();
    assert_eq!(profile_hold["scope"], "visitor_profile");
    assert_eq!(location, format!("/api/v1/legal-holds/{}", profile_hold["id"].as_str().unwrap()));
    let lead_hold = app
        .post("/api/v1/legal-holds", &token, &json!({"scope": "lead", "record_id": lead.id, "reason": "case 15"}))
        .await;
    assert_eq!(lead_hold.status(), 201);

    // A hold names a record of this tenant, and says why.
    let missing = app
        .post("/api/v1/legal-holds", &token, &json!({"scope": "lead", "record_id": lonely.id, "reason": "case 16"}))
        .await;
    assert_eq!(problem_fields(&problem(missing, 422).await), ["record_id"]);
    let bad = app.post("/api/v1/legal-holds", &token, &json!({"scope": "planet"})).await;
    assert_eq!(problem_fields(&problem(bad, 422).await), ["scope", "reason"]);
    let listed: Value = app.get("/api/v1/legal-holds", &token).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let policies: Value = app.get("/api/v1/retention-policies", &token).await.json().await.unwrap();
    assert_eq!(policies["legal_holds"], 2);

    app.state.clock.advance(days(120));
    let token = app.token(&ctx, "admin audit:read").await;
    let report = sweep(&app, &token).await;
    assert_eq!(report["held"], false);
    let held_profiles = sorted([lonely.id.into_uuid(), converted.into_uuid()]);
    assert_eq!(ids::<VisitorProfile>(&app, &ctx).await, held_profiles, "{report}");
    assert_eq!(ids::<Lead>(&app, &ctx).await, vec![lead.id.into_uuid()]);
    let of_held = |profile: steward_domain::VisitorId| profile == lonely.id || profile == converted;
    let kept = sorted(data.events.iter().filter(|e| of_held(e.visitor_profile_id)).map(|e| e.id.into_uuid()));
    assert!(!kept.is_empty());
    assert_eq!(ids::<Event>(&app, &ctx).await, kept);
    let kept = sorted(data.sessions.iter().filter(|s| of_held(s.visitor_profile_id)).map(|s| s.id.into_uuid()));
    assert_eq!(ids::<Session>(&app, &ctx).await, kept);
    assert_eq!(report["deleted"]["events"], data.events.len() - ids::<Event>(&app, &ctx).await.len());
    assert_eq!(report["deleted"]["organizations"], data.organizations.len());

    // Released, the profile goes with the next sweep; the lead's hold still keeps its profile.
    let hold_path = format!("/api/v1/legal-holds/{}", profile_hold["id"].as_str().unwrap());
    assert_eq!(app.delete(&hold_path, &token).await.status(), 204);
    problem(app.delete(&hold_path, &token).await, 404).await;
    sweep(&app, &token).await;
    assert_eq!(ids::<VisitorProfile>(&app, &ctx).await, vec![converted.into_uuid()]);
    let placed = audit(&app, &token, "legal_hold.placed").await;
    assert_eq!(placed.len(), 2);
    assert_eq!(placed[0]["detail"]["reason"], "case 14");
    let released = audit(&app, &token, "legal_hold.released").await;
    assert_eq!(released[0]["target"]["ids"], json!([profile_hold["id"]]));

    // A tenant-wide hold keeps everything, however old.
    let (held, held_token) = app.tenant_token("Initech").await;
    let theirs = seed(&app, &held, 22, 60, 6, 3).await;
    assert_eq!(put_policy(&app, &held_token, everything).await.status(), 200);
    let tenant_hold =
        app.post("/api/v1/legal-holds", &held_token, &json!({"scope": "tenant", "reason": "litigation"})).await;
    assert_eq!(tenant_hold.status(), 201);
    app.state.clock.advance(days(120));
    let held_token = app.token(&held, "admin").await;
    let report = sweep(&app, &held_token).await;
    assert_eq!(report["held"], true);
    assert_eq!(report["total"], 0);
    assert_eq!(ids::<Event>(&app, &held).await.len(), theirs.events.len());
    assert_eq!(ids::<Lead>(&app, &held).await.len(), theirs.leads.len());
    assert_eq!(ids::<VisitorProfile>(&app, &held).await.len(), theirs.visitors.len());
}

/// A trigger named `name` makes every `operation` (`DELETE`, `INSERT`) on `table` fail with `message`.
async fn refuse(app: &TestApp, name: &str, operation: &str, table: &str, message: &str) {
    if backend() == "postgres" {
        let function = format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        );
        app.raw_sql(&function).await.unwrap();
        let trigger =
            format!("CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()");
        app.raw_sql(&trigger).await.unwrap();
    } else {
        let trigger =
            format!("CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END");
        app.raw_sql(&trigger).await.unwrap();
    }
}

/// Drops what [`refuse`] made.
async fn allow(app: &TestApp, name: &str, table: &str) {
    let drop = if backend() == "postgres" {
        format!("DROP TRIGGER {name} ON {table}")
    } else {
        format!("DROP TRIGGER {name}")
    };
    app.raw_sql(&drop).await.unwrap();
}

#[tokio::test]
async fn a_failing_sweep_shows_in_readiness_and_the_audit_log_until_a_good_sweep_clears_it() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["retention"], json!({"status": "not_run", "last_run_at": null, "failures": []}));
    let data = seed(&app, &ctx, 31, 20, 6, 0).await;
    assert_eq!(put_policy(&app, &token, json!({"journeys": 10})).await.status(), 200);
    let cutoff = app.state.clock.now().checked_sub(days(10)).unwrap();
    let expired = data.events.iter().filter(|e| older(e.occurred_at, cutoff)).count();
    assert!(expired > 0);

    // Someone with the database makes every delete of events fail.
    refuse(&app, "no_delete", "DELETE", "events", "injected failure").await;
    let failed = problem(app.post("/api/v1/retention-policies/sweep", &token, &json!({})).await, 500).await;
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("events could not be swept") && detail.contains("injected failure"), "{detail}");

    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["database"], backend());
    assert_eq!(ready["retention"]["status"], "failing");
    let failures = ready["retention"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{ready}");
    assert_eq!(failures[0]["tenant_id"], ctx.tenant_id().to_string());
    assert_eq!(failures[0]["dataset"], "events");
    assert!(failures[0]["error"].as_str().unwrap().contains("injected failure"), "{ready}");
    assert_eq!(failures[0]["at"], app.state.clock.now().to_rfc3339());

    let entries = audit(&app, &token, "retention.sweep_failed").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"]["kind"], "system");
    assert_eq!(entries[0]["detail"]["failures"][0]["dataset"], "events");
    assert!(entries[0]["detail"]["failures"][0]["error"].as_str().unwrap().contains("injected failure"));
    assert!(audit(&app, &token, "retention.swept").await.is_empty(), "nothing was deleted");
    assert_eq!(ids::<Event>(&app, &ctx).await.len(), data.events.len());
    let policies: Value = app.get("/api/v1/retention-policies", &token).await.json().await.unwrap();
    assert_eq!(policies["last_sweep"]["failures"][0]["dataset"], "events");
    // And in the console, where the tenant's admins look.
    let admin = crate::console_pages::Member::new(&app, &ctx, "admin").await;
    let page = admin.html("/console/retention").await;
    assert!(page.contains("id=\"sweep-failures\"") && page.contains("injected failure"), "{page}");

    // The background sweep of every tenant sees the same failure and says so.
    let summary = steward_server::retention::sweep_all(&app.state).await;
    assert!(summary.failed());
    assert!(summary.tenants[0].error.as_deref().unwrap().contains("injected failure"));

    allow(&app, "no_delete", "events").await;
    let report = sweep(&app, &token).await;
    assert_eq!(report["deleted"]["events"], expired);
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["retention"]["status"], "ok");
    assert_eq!(ready["retention"]["failures"], json!([]));
    let page = admin.html("/console/retention").await;
    assert!(!page.contains("sweep-failures") && page.contains("id=\"last-sweep\""), "{page}");
}

#[tokio::test]
async fn a_sweep_whose_outcome_cannot_be_saved_still_shows_in_readiness_of_the_node_that_ran_it() {
    let app = spawn_app().await;
    let (_ctx, token) = app.tenant_token("Acme").await;
    // Someone with the database makes every write of sweep outcomes fail.
    refuse(&app, "no_sweep_row", "INSERT", "retention_sweeps", "sweeps cannot be saved").await;
    let report = sweep(&app, &token).await;
    assert_eq!(report["failures"], json!([]), "the sweep itself worked: {report}");
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    let failures = ready["retention"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{ready}");
    assert_eq!(failures[0]["dataset"], "retention-sweeps");
    assert!(failures[0]["error"].as_str().unwrap().contains("sweeps cannot be saved"), "{ready}");

    allow(&app, "no_sweep_row", "retention_sweeps").await;
    sweep(&app, &token).await;
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["retention"]["status"], "ok");
    let policies: Value = app.get("/api/v1/retention-policies", &token).await.json().await.unwrap();
    assert_eq!(policies["last_sweep"]["failures"], json!([]), "{policies}");
}

#[tokio::test]
async fn policies_show_defaults_and_a_put_changes_the_named_datasets_or_names_every_bad_field() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let response = app.get("/api/v1/retention-policies", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"][0],
        json!({"dataset": "leads", "days": 730, "default": true, "default_days": 730, "age_from": "updated_at"})
    );
    let by_name = |body: &Value, name: &str| -> Value {
        body["data"].as_array().unwrap().iter().find(|p| p["dataset"] == name).cloned().unwrap()
    };
    assert_eq!(by_name(&body, "journeys")["days"], 395);
    assert_eq!(by_name(&body, "organizations")["days"], Value::Null);
    assert_eq!(body["legal_holds"], 0);
    assert_eq!(body["last_sweep"], Value::Null);

    // Data-subject handlers may read the policy; only admins change it.
    let reader = app.token(&ctx, "data-subjects").await;
    assert_eq!(app.get("/api/v1/retention-policies", &reader).await.status(), 200);
    problem(put_policy(&app, &reader, json!({"leads": 30})).await, 403).await;
    let stranger = app.token(&ctx, "leads:read").await;
    problem(app.get("/api/v1/retention-policies", &stranger).await, 403).await;
    problem(app.get("/api/v1/legal-holds", &reader).await, 403).await;

    let changed = put_policy(&app, &token, json!({"leads": 365, "journeys": null})).await;
    assert_eq!(changed.status(), 200);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(by_name(&body, "leads")["days"], 365);
    assert_eq!(by_name(&body, "leads")["default"], false);
    assert_eq!(by_name(&body, "journeys")["days"], Value::Null);
    assert_eq!(by_name(&body, "journeys")["default"], false);
    assert_eq!(
        by_name(&body, "visitor-profiles"),
        json!({"dataset": "visitor-profiles", "days": 395, "default": true, "default_days": 395, "age_from": "last_seen_at"})
    );

    let bad = json!({"leads": 0, "planets": 5, "journeys": "forever", "organizations": 3651, "visitor-profiles": 2.5});
    let refused = problem(put_policy(&app, &token, bad).await, 422).await;
    let mut fields = problem_fields(&refused);
    fields.sort();
    assert_eq!(fields, ["journeys", "leads", "organizations", "planets", "visitor-profiles"]);
    assert!(refused["errors"].to_string().contains("from 1 to 3650"), "{refused}");
    problem(put_policy(&app, &token, json!([365])).await, 422).await;
    let unchanged: Value = app.get("/api/v1/retention-policies", &token).await.json().await.unwrap();
    assert_eq!(by_name(&unchanged, "leads")["days"], 365, "a refused change stores nothing");

    let reset: Value = put_policy(&app, &token, json!({"leads": "default"})).await.json().await.unwrap();
    assert_eq!(by_name(&reset, "leads")["days"], 730);
    assert_eq!(by_name(&reset, "leads")["default"], true);
    // Saved with the tenant, not only answered.
    let tenant = app.store.get_tenant(ctx.tenant_id()).await.unwrap().unwrap();
    assert_eq!(tenant.settings.retention.days.get("journeys"), Some(&None));
    assert!(!tenant.settings.retention.days.contains_key("leads"));

    let entries = audit(&app, &token, "retention.changed").await;
    assert_eq!(entries.len(), 2, "the refused change is not audited");
    assert_eq!(entries[0]["actor"]["kind"], "client");
    assert_eq!(entries[0]["detail"]["before"]["leads"], 730);
    assert_eq!(entries[0]["detail"]["after"]["leads"], 365);
    assert_eq!(entries[0]["detail"]["after"]["journeys"], Value::Null);
    assert_eq!(entries[0]["detail"]["changed"], json!(["leads", "journeys"]));
    assert_eq!(entries[1]["detail"]["after"]["leads"], 730);
}

#[tokio::test]
async fn an_expired_lead_leaves_no_copy_in_its_organization_or_its_visitor_profile() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let data = seed(&app, &ctx, 31, 60, 16, 12).await;
    assert_eq!(
        put_policy(&app, &token, json!({"leads": 30, "visitor-profiles": null, "journeys": null})).await.status(),
        200
    );
    let cutoff = app.state.clock.now().checked_sub(days(30)).unwrap();
    let expired: Vec<&Lead> = data.leads.iter().filter(|lead| older(lead.updated_at, cutoff)).collect();
    let expired_ids: Vec<_> = expired.iter().map(|lead| lead.id).collect();
    let organizations: Vec<Organization> = app.store.list(&ctx, &ListQuery::default()).await.unwrap();
    let copies = |organizations: &[Organization]| -> usize {
        organizations.iter().flat_map(|o| &o.contacts).filter(|c| expired_ids.contains(&c.lead_id)).count()
    };
    assert!(copies(&organizations) > 0, "expired leads are organization contacts before the sweep");
    assert!(expired.iter().any(|lead| lead.visitor_profile_id.is_some()), "and linked to visitor profiles");

    let report = sweep(&app, &token).await;
    assert_eq!(report["deleted"]["leads"], expired.len(), "{report}");
    let organizations: Vec<Organization> = app.store.list(&ctx, &ListQuery::default()).await.unwrap();
    assert_eq!(copies(&organizations), 0, "no contact entry of an expired lead is left");
    let exported = app.get("/api/v1/exports/organizations?format=json", &token).await.text().await.unwrap();
    for lead in &expired {
        if let Some(email) = &lead.email {
            assert!(!exported.contains(email.as_str()), "an expired lead's email is in no organization");
        }
    }
    let profiles: Vec<VisitorProfile> = app.store.list(&ctx, &ListQuery::default()).await.unwrap();
    assert_eq!(profiles.len(), data.visitors.len(), "profiles are kept: their policy keeps them");
    let remaining = ids::<Lead>(&app, &ctx).await;
    for profile in &profiles {
        for id in &profile.lead_ids {
            assert!(remaining.contains(&id.into_uuid()), "profile {} still names expired lead {id}", profile.id);
        }
    }
    assert_eq!(remaining.len(), data.leads.len() - expired.len());
}

#[tokio::test]
async fn an_expired_lead_leaves_no_copy_in_another_organizations_contact_list_either() {
    let app = spawn_app().await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let lead = app
        .post(
            "/api/v1/leads",
            &token,
            &json!({"first_name": "Aino", "last_name": "Virtanen", "email": "aino@nordwind.example"}),
        )
        .await;
    assert_eq!(lead.status(), 201);
    let lead: Value = lead.json().await.unwrap();
    let lead_id = lead["id"].as_str().unwrap();
    let partner = json!({"name": "Partner Oy", "contacts": [
        {"lead_id": lead_id, "name": "Aino Virtanen", "email": "aino@nordwind.example", "role": "buyer"}]});
    assert_eq!(app.post("/api/v1/organizations", &token, &partner).await.status(), 201);
    assert_eq!(put_policy(&app, &token, json!({"leads": 30})).await.status(), 200);
    app.state.clock.advance(days(31));
    let token = app.token(&ctx, &steward_domain::Scopes::all().to_string()).await;

    let report = sweep(&app, &token).await;
    assert_eq!(report["deleted"]["leads"], 1, "{report}");
    for format in ["csv", "ndjson"] {
        let exported =
            app.get(&format!("/api/v1/exports/organizations?format={format}"), &token).await.text().await.unwrap();
        assert!(exported.contains("Partner Oy"), "the organization stays");
        for copy in ["aino@nordwind.example", "Virtanen", lead_id] {
            assert!(!exported.contains(copy), "the {format} export still holds {copy}");
        }
    }
}
