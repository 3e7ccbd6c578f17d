//! `/openapi.json` is valid OpenAPI 3.1, checked by an independent validator, and lists every
//! route the server serves.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{python, spawn_app};

/// Routes of the API as DESIGN.md names them, with their methods.
const ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/openapi.json", &["get"]),
    ("/oauth/token", &["post"]),
    ("/oauth/revoke", &["post"]),
    ("/oauth/introspect", &["post"]),
    ("/tracker.js", &["get"]),
    ("/collect", &["post"]),
    ("/api/v1/leads", &["get", "post"]),
    ("/api/v1/leads/{id}", &["get", "patch", "delete"]),
    ("/api/v1/organizations", &["get", "post"]),
    ("/api/v1/organizations/{id}", &["get", "patch", "delete"]),
    ("/api/v1/visitor-profiles", &["get"]),
    ("/api/v1/visitor-profiles/{id}", &["get"]),
    ("/api/v1/journey-insights", &["get"]),
    ("/api/v1/reports/{report}", &["get"]),
    ("/api/v1/exports", &["post"]),
    // The streamed export of each dataset: concrete paths, so they cannot be mistaken for the
    // templated job path beside them.
    ("/api/v1/exports/leads", &["get"]),
    ("/api/v1/exports/visitor-profiles", &["get"]),
    ("/api/v1/exports/journeys", &["get"]),
    ("/api/v1/exports/organizations", &["get"]),
    ("/api/v1/exports/reports", &["get"]),
    ("/api/v1/exports/audit-log", &["get"]),
    ("/api/v1/exports/{id}", &["get"]),
    ("/api/v1/exports/{id}/file", &["get"]),
    ("/api/v1/imports/{dataset}", &["post"]),
    ("/api/v1/data-subjects", &["get"]),
    ("/api/v1/data-subject-requests", &["get", "post"]),
    ("/api/v1/data-subject-requests/{id}", &["get"]),
    ("/api/v1/data-subject-requests/{id}/execute", &["post"]),
    ("/api/v1/data-subject-requests/{id}/extend", &["post"]),
    ("/api/v1/data-subject-requests/{id}/reject", &["post"]),
    ("/api/v1/data-subject-requests/{id}/archive", &["get"]),
    ("/api/v1/retention-policies", &["get", "put"]),
    ("/api/v1/retention-policies/sweep", &["post"]),
    ("/api/v1/legal-holds", &["get", "post"]),
    ("/api/v1/legal-holds/{id}", &["delete"]),
    ("/api/v1/archives", &["post"]),
    ("/api/v1/archives/{id}", &["get"]),
    ("/api/v1/archives/{id}/file", &["get"]),
    ("/api/v1/imports/archive", &["post"]),
    ("/data-register", &["get"]),
    ("/data-register/schemas/{file}", &["get"]),
    ("/api/v1/switching-requests", &["get", "post"]),
    ("/api/v1/switching-requests/{id}", &["get"]),
    ("/api/v1/switching-requests/{id}/extend", &["post"]),
    ("/api/v1/switching-requests/{id}/cancel", &["post"]),
    ("/api/v1/switching-requests/{id}/archive", &["get"]),
    ("/switching-attestations/{tenant_id}", &["get"]),
    ("/api/v1/audit-log", &["get"]),
    ("/api/v1/audit-log/verify", &["get"]),
];

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_per_an_independent_validator() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&document).unwrap()).unwrap();
    let output = Command::new(python())
        .args(["-m", "openapi_spec_validator"])
        .arg(file.path())
        .output()
        .expect("run openapi-spec-validator");
    let report = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openapi-spec-validator rejected the document:\n{report}");
    assert!(report.contains("OK"), "{report}");
}

#[tokio::test]
async fn the_document_lists_every_route_and_every_listed_route_is_served() {
    let app = spawn_app().await;
    let document: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in ROUTES {
        let item = paths.get(*path).unwrap_or_else(|| panic!("{path} is not documented"));
        for method in *methods {
            assert!(item.get(*method).is_some(), "{method} {path} is not documented");
        }
    }
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "0190b8c2-0000-7000-8000-000000000000");
            let request = app.http.request(method.to_uppercase().parse().unwrap(), app.url(&concrete));
            let status = request.send().await.unwrap().status().as_u16();
            assert!(status != 405, "{method} {path} is documented but not served");
            let known = ROUTES.iter().any(|(p, m)| p == path && m.contains(&method.as_str()));
            assert!(known, "{method} {path} is served but missing from the test's route list");
        }
    }
    let scheme = &document["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["flows"]["clientCredentials"]["tokenUrl"], "/oauth/token");
}

#[tokio::test]
async fn the_docs_page_renders_the_document() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
}

#[tokio::test]
async fn no_two_paths_are_the_same_template_under_other_parameter_names() {
    let app = spawn_app().await;
    let document: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for path in document["paths"].as_object().unwrap().keys() {
        // OpenAPI 3.1 §4.8.8: templates equal but for their parameters' names are identical.
        let shape: Vec<&str> =
            path.split('/').map(|segment| if segment.starts_with('{') { "{}" } else { segment }).collect();
        if let Some(other) = seen.insert(shape.join("/"), path.clone()) {
            panic!("{path} and {other} are the same template");
        }
    }
    // The job keeps its template; the datasets are concrete paths the router serves as before.
    let job = &document["paths"]["/api/v1/exports/{id}"]["get"];
    assert_eq!(job["parameters"][0]["schema"]["format"], "uuid", "{job}");
    let leads = &document["paths"]["/api/v1/exports/leads"]["get"];
    assert_eq!(leads["operationId"], "stream_export_leads");
    assert!(leads["parameters"].as_array().unwrap().iter().all(|p| p["in"] == "query"), "{leads}");
}

#[tokio::test]
async fn every_operation_documents_the_problems_it_can_answer() {
    let app = spawn_app().await;
    let document: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let shared = &document["components"]["responses"];
    let resolve = |response: &Value| -> Value {
        match response["$ref"].as_str() {
            Some(reference) => shared[reference.trim_start_matches("#/components/responses/")].clone(),
            None => response.clone(),
        }
    };
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let label = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            let secured = operation["security"]
                .as_array()
                .is_some_and(|all| all.iter().any(|r| r.as_object().is_some_and(|r| !r.is_empty())));
            let mut expected: Vec<&str> = Vec::new();
            if secured {
                expected.extend(["401", "403", "429"]);
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            if parameters.iter().any(|p| p["in"] == "path") {
                expected.push("404");
            }
            if parameters.iter().any(|p| p["in"] == "query") {
                expected.extend(["400", "422"]);
            }
            for status in expected {
                let response = resolve(responses.get(status).unwrap_or_else(|| panic!("{label} lacks {status}")));
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(schema["$ref"], "#/components/schemas/Problem", "{label} {status}: {response}");
            }
            if secured {
                let limited = resolve(&responses["429"]);
                assert_eq!(limited["headers"]["Retry-After"]["schema"]["type"], "integer", "{label}");
                let unauthorized = resolve(&responses["401"]);
                assert!(unauthorized["headers"]["WWW-Authenticate"].is_object(), "{label}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 55, "only {checked} operations");
}

#[tokio::test]
async fn parameters_state_their_limits_formats_and_values() {
    let app = spawn_app().await;
    let document: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let parameter = |path: &str, method: &str, name: &str| -> Value {
        let parameters = document["paths"][path][method]["parameters"].as_array().cloned().unwrap_or_default();
        let found = parameters.into_iter().find(|p| p["name"] == name);
        found.unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))["schema"].clone()
    };
    for path in ["/api/v1/leads", "/api/v1/organizations", "/api/v1/audit-log", "/api/v1/legal-holds"] {
        let limit = parameter(path, "get", "limit");
        assert_eq!((limit["minimum"].as_u64(), limit["maximum"].as_u64()), (Some(1), Some(1000)), "{path}: {limit}");
    }
    assert_eq!(parameter("/api/v1/leads", "get", "created_from")["format"], "date-time");
    assert_eq!(parameter("/api/v1/leads/{id}", "get", "id")["format"], "uuid");
    assert_eq!(parameter("/api/v1/exports/leads", "get", "from")["format"], "date-time");
    let formats = parameter("/api/v1/exports/leads", "get", "format");
    let formats =
        if formats["$ref"].is_string() { document["components"]["schemas"]["Format"].clone() } else { formats };
    assert_eq!(formats["enum"], serde_json::json!(["csv", "json", "ndjson", "xlsx"]), "{formats}");
    let imports = parameter("/api/v1/imports/{dataset}", "post", "dataset");
    assert_eq!(imports["enum"], serde_json::json!(["leads", "organizations"]));
}

/// The served document, byte for byte, as reviewed: any change to it (an annotation, a schema, a
/// dependency's rendering) shows up as a diff of `openapi.golden.json`. After an intended change,
/// `STEWARD_UPDATE_GOLDEN=1` rewrites the file; review and commit it with the change.
#[tokio::test]
async fn the_document_is_byte_for_byte_the_reviewed_golden_file() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.bytes().await.unwrap();
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/openapi.golden.json");
    if std::env::var("STEWARD_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(golden, &served).unwrap();
    }
    let expected = std::fs::read(golden).expect("tests/api/openapi.golden.json: run with STEWARD_UPDATE_GOLDEN=1");
    if served.as_ref() != expected.as_slice() {
        let served = String::from_utf8_lossy(&served);
        let expected = String::from_utf8_lossy(&expected);
        let line = served.lines().zip(expected.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "/openapi.json differs from openapi.golden.json from line {}:\n  served:   {}\n  expected: {}\n\
             review the change and rewrite the file with STEWARD_UPDATE_GOLDEN=1",
            line + 1,
            served.lines().nth(line).unwrap_or("(end)"),
            expected.lines().nth(line).unwrap_or("(end)"),
        );
    }
}
