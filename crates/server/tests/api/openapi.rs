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
    ("/api/v1/exports/{dataset}", &["get"]),
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
