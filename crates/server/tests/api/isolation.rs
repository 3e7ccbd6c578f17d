//! No route returns or changes another tenant's rows, and none reveals that they exist.

use serde_json::{Value, json};
use steward_store::StoreExt;

use crate::helpers::{problem, problem_fields, spawn_app};

#[tokio::test]
async fn every_route_answers_404_for_another_tenants_ids() {
    let app = spawn_app().await;
    let (owner_ctx, owner) = app.tenant_token("Owner").await;
    let (_, intruder) = app.tenant_token("Intruder").await;

    let lead: Value =
        app.post("/api/v1/leads", &owner, &json!({"email": "secret@owner.fi"})).await.json().await.unwrap();
    let organization: Value =
        app.post("/api/v1/organizations", &owner, &json!({"name": "Owner Oy"})).await.json().await.unwrap();
    let paths = [
        format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
        format!("/api/v1/organizations/{}", organization["id"].as_str().unwrap()),
    ];
    for path in &paths {
        let read = problem(app.get(path, &intruder).await, 404).await;
        let changed = problem(app.patch(path, &intruder, &json!({"tags": ["pwned"]})).await, 404).await;
        let deleted = problem(app.delete(path, &intruder).await, 404).await;
        // The answer for a foreign id is the answer for an id that never existed.
        let unknown = path.rsplit_once('/').unwrap().0.to_string() + "/0190b8c2-0000-7000-8000-000000000000";
        let never = problem(app.get(&unknown, &intruder).await, 404).await;
        for body in [&read, &changed, &deleted] {
            assert_eq!(body["detail"], never["detail"]);
        }
    }
    for list in ["/api/v1/leads", "/api/v1/organizations"] {
        let page: Value = app.get(list, &intruder).await.json().await.unwrap();
        assert_eq!(page["data"], json!([]), "{list} leaks");
    }
    // Linking to another tenant's records is refused as if they did not exist.
    let link = json!({"email": "x@intruder.fi", "organization_id": organization["id"]});
    let refused = problem(app.post("/api/v1/leads", &intruder, &link).await, 422).await;
    assert_eq!(problem_fields(&refused), vec!["organization_id"]);
    let contact = json!({"name": "Intruder Oy", "contacts": [{"lead_id": lead["id"]}]});
    let refused = problem(app.post("/api/v1/organizations", &intruder, &contact).await, 422).await;
    assert_eq!(problem_fields(&refused), vec!["contacts[0].lead_id"]);

    // Visitors, journeys and reports: read-only routes answer as if the rows did not exist.
    let data = steward_demo::generate(&steward_demo::DemoConfig::demo(app.state.clock.now()).scaled(0.004));
    app.store.insert(&owner_ctx, &data.visitors).await.unwrap();
    app.store.insert(&owner_ctx, &data.sessions).await.unwrap();
    app.store.insert(&owner_ctx, &data.events).await.unwrap();
    let profile = data.visitors[0].id.to_string();
    let read = problem(app.get(&format!("/api/v1/visitor-profiles/{profile}"), &intruder).await, 404).await;
    let never =
        problem(app.get("/api/v1/visitor-profiles/0190b8c2-0000-7000-8000-000000000000", &intruder).await, 404).await;
    assert_eq!(read["detail"], never["detail"]);
    for path in
        [format!("/api/v1/visitor-profiles?ids={profile}"), format!("/api/v1/journey-insights?profile_ids={profile}")]
    {
        let body: Value = app.get(&path, &intruder).await.json().await.unwrap();
        assert_eq!(body, json!({"data": [], "missing": [profile]}), "{path} leaks");
    }
    let page: Value = app.get("/api/v1/visitor-profiles", &intruder).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]), "the profile list leaks");
    let traffic: Value = app.get("/api/v1/reports/traffic?from=2020-01-01", &owner).await.json().await.unwrap();
    assert_eq!(traffic["status"], 422, "the period limit holds");
    for report in ["traffic", "top_pages"] {
        let body: Value = app.get(&format!("/api/v1/reports/{report}"), &intruder).await.json().await.unwrap();
        assert_eq!((&body["data"], &body["suppressed_groups"]), (&json!([]), &json!(0)), "{report} leaks");
        let own: Value = app.get(&format!("/api/v1/reports/{report}"), &owner).await.json().await.unwrap();
        assert!(own["data"].as_array().unwrap().len() + own["suppressed_groups"].as_u64().unwrap() as usize > 0);
    }

    // The owner's rows are untouched.
    let still: Value = app.get(&paths[0], &owner).await.json().await.unwrap();
    assert_eq!(still, lead);
    let still: Value = app.get(&paths[1], &owner).await.json().await.unwrap();
    assert_eq!(still, organization);
}
