//! The console in a real browser: headless Chromium, driven by Selenium from
//! `scripts/console_browser.py`, against the app over a small demo tenant. Every acceptance
//! point of the console: TOTP sign-in with pyotp's codes and a refused wrong code; leads exported
//! as CSV and XLSX for a period through the export form, parsed by Python's csv and openpyxl and
//! compared with the leads generated for that period; a too-long period refused on the page; an
//! erasure from the data-subject page, gone from the leads table and shown on the audit page; a
//! viewer without export or admin links, refused when asking for them directly; screenshots of
//! the overview, a journey and the export page in `target/console-screenshots/`.
//!
//! Chromium, chromedriver and Selenium are prepared by `scripts/test` (Debian's packages and the
//! test virtualenv).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use steward_demo::{DemoConfig, generate};
use steward_domain::Timestamp;
use steward_server::console::users;
use steward_store::{Actor, ActorKind, AuditQuery, StoreExt};

use crate::helpers::{python, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("console-screenshots")
}

fn day_of(at: Timestamp) -> String {
    at.as_datetime().date().to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_chromium_signs_in_exports_erases_and_keeps_a_viewer_out() {
    let app = spawn_app().await;
    let ctx = app.tenant("Acme Oy").await;
    let now = app.state.clock.now();
    let data = generate(&DemoConfig::demo(now).scaled(0.1));
    app.store.insert(&ctx, &data.organizations).await.unwrap();
    app.store.insert(&ctx, &data.visitors).await.unwrap();
    app.store.insert(&ctx, &data.sessions).await.unwrap();
    app.store.insert(&ctx, &data.events).await.unwrap();
    app.store.insert(&ctx, &data.leads).await.unwrap();
    let operator = Actor { kind: ActorKind::Operator, id: None };
    for (email, role) in [("owner@acme.fi", "owner"), ("viewer@acme.fi", "viewer")] {
        users::create_user(app.store.as_ref(), &ctx, email, role, PASSWORD, operator.clone(), Timestamp::now())
            .await
            .unwrap();
    }

    // Ten days a month or so back; the expected leads come from the generator, not the export.
    let day = |offset: i64| now.checked_sub(time::Duration::days(offset)).unwrap();
    let (from, to) = (day_of(day(40)), day_of(day(31)));
    let start = Timestamp::parse(&format!("{from}T00:00:00Z")).unwrap();
    let end = Timestamp::parse(&format!("{to}T00:00:00Z")).unwrap().checked_add(time::Duration::days(1)).unwrap();
    let expected: BTreeSet<String> = data
        .leads
        .iter()
        .filter(|lead| lead.created_at >= start && lead.created_at < end && lead.restricted_at.is_none())
        .map(|lead| lead.id.to_string())
        .collect();
    assert!(expected.len() >= 5, "the period holds leads: {}", expected.len());
    let erase = data
        .leads
        .iter()
        .filter_map(|lead| lead.email.as_ref().map(|e| e.as_str().to_string()))
        .find(|email| data.leads.iter().filter(|l| l.email.as_ref().map(|e| e.as_str()) == Some(email)).count() == 1)
        .expect("a lead with an address of its own");
    let visitor = data.sessions[0].visitor_profile_id.to_string();

    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let downloads = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/console_browser.py");
    let unix = (now.unix_micros() / 1_000_000).to_string();
    let output = tokio::task::spawn_blocking({
        let args: Vec<String> = [
            "--base",
            &app.address,
            "--tenant",
            "acme-oy",
            "--owner",
            "owner@acme.fi",
            "--viewer",
            "viewer@acme.fi",
            "--password",
            PASSWORD,
            "--now",
            &unix,
            "--from",
            &from,
            "--to",
            &to,
            "--long-from",
            "2020-01-01",
            "--long-to",
            &day_of(now),
            "--erase-email",
            &erase,
            "--visitor",
            &visitor,
            "--downloads",
            &downloads.path().display().to_string(),
            "--screenshots",
            &shots.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        move || Command::new(python()).arg(script).args(args).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the console browser run failed (scripts/test installs chromium, chromium-driver and selenium): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();

    // Sign-in with TOTP; a wrong code is refused with a clear message.
    let wrong = seen["wrong_code_message"].as_str().unwrap();
    assert!(wrong.contains("The code is wrong"), "{wrong}");
    assert!(seen["wrong_code_url"].as_str().unwrap().ends_with("/console/sign-in"));
    assert!(seen["signed_in_url"].as_str().unwrap().ends_with("/console"), "{seen}");
    assert_eq!(seen["signed_in_role"], "owner");
    assert_eq!(seen["overview_has_chart"], true);
    assert!(seen["journey_events"].as_u64().unwrap() > 0, "{seen}");
    assert!(seen["limits_text"].as_str().unwrap().contains("366 days"), "{seen}");

    // CSV and XLSX downloads hold exactly the period's leads.
    for key in ["csv_ids", "xlsx_ids"] {
        let ids = strings(&seen[key]);
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(ids.len(), unique.len(), "{key} repeats a lead");
        assert_eq!(unique, expected, "{key}");
    }
    let streamed = app
        .store
        .audit_entries(
            &ctx,
            &AuditQuery { limit: 1_000, action: Some("export.streamed".into()), ..AuditQuery::default() },
        )
        .await
        .unwrap();
    let formats: Vec<&str> = streamed.iter().map(|e| e.detail["format"].as_str().unwrap()).collect();
    assert_eq!(formats, vec!["csv", "xlsx"]);
    assert!(streamed.iter().all(|e| e.actor.kind == ActorKind::User));

    // Past the maximum period: refused on the page, saying what to do.
    let long = seen["long_period_message"].as_str().unwrap();
    assert!(long.contains("at most 366 days") && long.contains("Pick a shorter period"), "{long}");
    assert!(long.contains("Run as an export job"), "{long}");
    assert_eq!(seen["long_period_form_kept"], "2020-01-01");

    // Erasure from the data-subject page: gone from the leads table, on the audit page.
    assert_eq!(seen["leads_before_erasure"], 1, "{seen}");
    assert_eq!(seen["request_status"], "completed");
    assert_eq!(seen["leads_after_erasure"], 0);
    let table = strings(&seen["leads_table_emails_after"]);
    assert!(!table.contains(&erase), "{erase} is still listed");
    assert_eq!(table.len() as u64, app.store.count::<steward_domain::Lead>(&ctx).await.unwrap(), "every lead listed");
    assert_eq!(seen["audit_erasures"], 1);

    // A viewer sees no export or admin actions and is refused when asking directly.
    let nav = strings(&seen["viewer_nav"]);
    assert!(nav.contains(&"/console/leads".to_string()), "{nav:?}");
    for hidden in [
        "/console/exports",
        "/console/data-subjects",
        "/console/audit",
        "/console/users",
        "/console/clients",
        "/console/retention",
    ] {
        assert!(!nav.contains(&hidden.to_string()), "{hidden} in {nav:?}");
    }
    for key in ["viewer_exports_page", "viewer_users_page", "viewer_subjects_page"] {
        assert!(seen[key].as_str().unwrap().contains("Your role (viewer) may not"), "{key}: {}", seen[key]);
    }

    // Screenshots for people to look at.
    assert!(seen["phone_scroll_width"].as_u64().unwrap() <= 400, "the overview scrolls sideways on a phone: {seen}");
    for name in ["overview.png", "journey.png", "export.png", "overview-phone.png"] {
        let size = std::fs::metadata(shots.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{name} is {size} bytes");
    }
}
