use serde_json::{Value, json};

use crate::helpers::{problem, problem_fields, spawn_app};

#[tokio::test]
async fn organizations_are_created_patched_listed_and_deleted() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    // A free-mail address, so the lead does not bring an organization of its own.
    let lead: Value =
        app.post("/api/v1/leads", &token, &json!({"email": "esimerkki.ceo@gmail.com"})).await.json().await.unwrap();
    let body = json!({
        "name": "Esimerkki Oy",
        "domain": "esimerkki.fi",
        "business_id": "0112038-9",
        "vat_id": "FI01120389",
        "address": {"street": "Mannerheimintie 1", "postal_code": "00100", "city": "Helsinki", "country_code": "FI"},
        "employee_range": {"min": 10, "max": 49},
        "contacts": [{"lead_id": lead["id"], "role": "CEO"}]
    });
    let created = app.post("/api/v1/organizations", &token, &body).await;
    assert_eq!(created.status(), 201);
    let organization: Value = created.json().await.unwrap();
    assert_eq!(organization["visit_count"], 0);
    assert_eq!(organization["contacts"][0]["role"], "CEO");
    let path = format!("/api/v1/organizations/{}", organization["id"].as_str().unwrap());

    let patched: Value =
        app.patch(&path, &token, &json!({"industry": "Retail", "vat_id": null})).await.json().await.unwrap();
    assert_eq!(patched["industry"], "Retail");
    assert_eq!(patched["vat_id"], Value::Null);
    let read_only = problem(app.patch(&path, &token, &json!({"visit_count": 99})).await, 422).await;
    assert_eq!(problem_fields(&read_only), vec!["visit_count"]);

    let page: Value = app.get("/api/v1/organizations", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.delete(&path, &token).await.status(), 204);
    problem(app.get(&path, &token).await, 404).await;
}

#[tokio::test]
async fn an_organization_needs_a_name_and_valid_ids() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let body = problem(
        app.post("/api/v1/organizations", &token, &json!({"business_id": "0112038-8", "domain": "not a domain"})).await,
        422,
    )
    .await;
    assert_eq!(problem_fields(&body), vec!["name", "domain", "business_id"]);
    let dangling = problem(
        app.post(
            "/api/v1/organizations",
            &token,
            &json!({"name": "X Oy", "contacts": [{"lead_id": "0190b8c2-0000-7000-8000-000000000000"}]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(problem_fields(&dangling), vec!["contacts[0].lead_id"]);
}

#[tokio::test]
async fn a_vat_id_starting_with_a_multibyte_character_is_422_naming_vat_id_on_post_and_patch() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    for vat in ["€1234", "😀1234", "F€1234"] {
        let body =
            problem(app.post("/api/v1/organizations", &token, &json!({"name": "x", "vat_id": vat})).await, 422).await;
        assert_eq!(problem_fields(&body), vec!["vat_id"], "{vat}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("VAT"), "{body}");
    }
    let created: Value =
        app.post("/api/v1/organizations", &token, &json!({"name": "Good Oy"})).await.json().await.unwrap();
    let path = format!("/api/v1/organizations/{}", created["id"].as_str().unwrap());
    let body = problem(app.patch(&path, &token, &json!({"vat_id": "€1234"})).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["vat_id"], "{body}");
    let unchanged: Value = app.get(&path, &token).await.json().await.unwrap();
    assert_eq!(unchanged["vat_id"], Value::Null);
}
