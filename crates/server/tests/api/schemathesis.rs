//! Schemathesis, an independent property-based API tester, generates requests from
//! `/openapi.json` and checks the server's answers against it: no server error, only documented
//! statuses and media types, bodies that fit their schemas, and requests the document calls
//! valid never refused. A failure names the operation and the request that shows it.
//!
//! Bounded for 2 cores: 8 examples per operation, a fixed seed, the examples, coverage and
//! fuzzing phases (about 3,500 requests in under a minute); the stateful phase (chains of calls
//! through links, which the document does not declare) is left out. [`EXCLUDED`] names the one
//! operation not run and why; [`SEMANTIC`] the operations where a request the schemas allow
//! can still be refused for a rule JSON Schema cannot state (`from` before `to`, a phone number's
//! numbering plan, a reference to an existing record), each with that rule.

use std::process::Command;

use serde_json::json;
use steward_server::Settings;

use crate::helpers::{python, spawn_app_with};

/// Fixed so that a run can be repeated; `STEWARD_SCHEMATHESIS_SEED` tries another.
const SEED: &str = "20261203";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_any_documented_operation() {
    let mut settings = Settings::default();
    // Every request of the run comes from one client; the budget must not be what is tested.
    settings.api.rate_limit_per_minute = 1_000_000;
    let app = spawn_app_with(settings).await;
    let (_ctx, token) = app.tenant_token("Schemathesis").await;
    // A few records, so that reads and lists have something to return.
    let lead = json!({"first_name": "Ada", "email": "ada@example.com", "tags": ["vip"]});
    assert_eq!(app.post("/api/v1/leads", &token, &lead).await.status(), 201);
    let organization = json!({"name": "Analytical Engines Ltd", "domain": "engines.example"});
    assert_eq!(app.post("/api/v1/organizations", &token, &organization).await.status(), 201);

    let reports = tempfile::tempdir().unwrap();
    let junit = reports.path().join("junit.xml");
    let config = reports.path().join("schemathesis.toml");
    std::fs::write(&config, configuration()).unwrap();
    let config = config.display().to_string();
    let seed = std::env::var("STEWARD_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.to_string());
    let schema = app.url("/openapi.json");
    let authorization = format!("Authorization: Bearer {token}");
    let junit_path = junit.display().to_string();
    // Schemathesis keeps a cache in its working folder: the report folder, removed after.
    let workdir = reports.path().to_path_buf();
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .current_dir(&workdir)
            .args(["-c", "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())"])
            .args(["--config-file", &config, "--no-color", "run", &schema])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,positive_data_acceptance",
            ])
            .args(["--header", &authorization])
            .args(["--max-examples", "8", "--seed", &seed, "--workers", "2"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--request-timeout", "30"])
            .args(["--report", "junit", "--report-junit-path", &junit_path])
            // Not tested: see `EXCLUDED`.
            .args(EXCLUDED.iter().flat_map(|(operation, _why)| ["--exclude-operation-id", *operation]))
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let report = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    println!("schemathesis ran for {:.0} s:\n{report}", elapsed.as_secs_f64());
    assert!(output.status.success(), "schemathesis found failures (exit {:?}):\n{report}", output.status.code());
    let junit = std::fs::read_to_string(&junit).expect("schemathesis wrote its JUnit report");
    let count = |name: &str| -> u64 {
        junit
            .split("<testsuite ")
            .nth(1)
            .and_then(|suite| suite.split(&format!(" {name}=\"")).nth(1))
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    assert_eq!((count("failures"), count("errors")), (0, 0), "{junit}");
    assert!(count("tests") >= 40, "schemathesis tested too few operations:\n{junit}");
}

#[tokio::test]
async fn whole_numbers_written_with_a_zero_fraction_are_whole_numbers() {
    // JSON Schema's `integer` includes 365.0; schemathesis sends such numbers.
    let app = crate::helpers::spawn_app().await;
    let (_ctx, token) = app.tenant_token("Fractions").await;
    let response = app
        .http
        .put(app.url("/api/v1/retention-policies"))
        .bearer_auth(&token)
        .json(&json!({"leads": 365.0, "journeys": 30}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let leads = body["data"].as_array().unwrap().iter().find(|p| p["dataset"] == "leads").cloned();
    assert_eq!(leads.map(|p| p["days"].clone()), Some(json!(365)), "{body}");
    let refused = app
        .http
        .put(app.url("/api/v1/retention-policies"))
        .bearer_auth(&token)
        .json(&json!({"leads": 365.5}))
        .send()
        .await
        .unwrap();
    let problem = crate::helpers::problem(refused, 422).await;
    assert_eq!(problem["errors"][0]["field"], "leads", "{problem}");
}

/// Operations left out of the run, and why.
const EXCLUDED: &[(&str, &str)] = &[(
    "import_archive",
    "its body is a Steward tenant archive (application/zip), which schemathesis cannot generate, \
     and it only loads into a tenant without records (the run's tenant has some: 409)",
)];

/// Operations whose requests can be well-formed by the document and still refused, because the
/// rule is one JSON Schema cannot state: for these, `positive_data_acceptance` also accepts the
/// listed statuses (each still has to be documented, and its body a problem, for the other
/// checks to pass).
const SEMANTIC: &[(&str, &[u16], &str)] = &[
    ("list_leads", &[422], "created_to must be later than created_from; email and phone lookups must parse"),
    ("list_organizations", &[422], "created_to must be later than created_from"),
    (
        "list_visitor_profiles",
        &[400, 422],
        "created_to later than created_from; ids lists 1 to 100 UUIDv7s and takes no other parameter",
    ),
    ("list_audit_log", &[422], "to must be later than from; a cursor is one this API issued (opaque)"),
    ("journey_insights", &[422], "profile_ids lists 1 to 100 UUIDv7s of visitor profiles, comma-separated"),
    ("get_report", &[422], "to must be later than from, at most reports.max_days after it"),
    ("find_data_subject", &[422], "at least one identifier, and a phone number valid in its numbering plan"),
    ("create_lead", &[422], "a lead names someone; phone numbering plans; references to existing records"),
    ("patch_lead", &[422], "as create_lead, on the merged record"),
    ("create_organization", &[422], "domain, business and VAT id check digits, phone plans, existing contacts"),
    ("patch_organization", &[422], "as create_organization, on the merged record"),
    ("create_request", &[422], "the kind decides which fields apply; the subject needs an identifier"),
    ("create_legal_hold", &[422], "a hold on one record names an existing record of that kind; tenant holds none"),
    (
        "create_switching_request",
        &[422],
        "only switch_provider names a destination; its start within the notice period",
    ),
    ("create_export_job", &[422], "to must be later than from; reports cover at most reports.max_days"),
    ("import_csv", &[400, 422], "the file is UTF-8 CSV and the mapping JSON that fits its columns"),
    ("collect", &[400, 422], "the text/plain body is a JSON batch of events for a known site"),
    ("stream_export_leads", &[400, 422], "to later than from; at most exports.console_max_days and _bytes"),
    ("stream_export_visitor_profiles", &[400, 422], "as stream_export_leads"),
    ("stream_export_journeys", &[400, 422], "as stream_export_leads"),
    ("stream_export_organizations", &[400, 422], "as stream_export_leads"),
    ("stream_export_reports", &[400, 422], "as stream_export_leads, and at most reports.max_days"),
    ("stream_export_audit_log", &[400, 422], "as stream_export_leads"),
];

/// The run's configuration: [`SEMANTIC`] as per-operation settings.
fn configuration() -> String {
    let mut toml = String::new();
    for (operation, statuses, why) in SEMANTIC {
        let mut expected: Vec<String> =
            ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"].iter().map(|s| format!("\"{s}\"")).collect();
        expected.extend(statuses.iter().map(|status| format!("\"{status}\"")));
        toml.push_str(&format!(
            "# {why}\n[[operations]]\ninclude-operation-id = \"{operation}\"\n\
             checks.positive_data_acceptance.expected-statuses = [{}]\n\n",
            expected.join(", ")
        ));
    }
    toml
}
