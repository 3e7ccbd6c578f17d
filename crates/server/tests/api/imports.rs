//! `POST /api/v1/imports/{dataset}`: CSVs from other products through a mapping, Steward's own
//! export back in, bad rows reported by line, bad mappings and oversize files refused.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use steward_server::Settings;

use crate::helpers::{TestApp, problem, problem_fields, spawn_app, spawn_app_with};

const BOUNDARY: &str = "steward-import-test-7MA4YWxkTrZu0gW";

/// A multipart/form-data body of `parts` (name, content), as browsers and curl send it.
pub(crate) fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content) in parts {
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.txt\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(crate) async fn send(app: &TestApp, token: &str, dataset: &str, body: Vec<u8>) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/imports/{dataset}")))
        .bearer_auth(token)
        .header(CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn import(app: &TestApp, token: &str, dataset: &str, csv: &str, mapping: Option<&Value>) -> reqwest::Response {
    let mapping = mapping.map(|m| m.to_string());
    let mut parts: Vec<(&str, &[u8])> = Vec::new();
    if let Some(mapping) = &mapping {
        parts.push(("mapping", mapping.as_bytes()));
    }
    parts.push(("file", csv.as_bytes()));
    send(app, token, dataset, multipart(&parts)).await
}

async fn imported(app: &TestApp, token: &str, dataset: &str, csv: &str, mapping: Option<&Value>) -> Value {
    let response = import(app, token, dataset, csv, mapping).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn lead_by_email(app: &TestApp, token: &str, email: &str) -> Value {
    let page: Value = app.get(&format!("/api/v1/leads?email={email}"), token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "one lead with {email}: {page}");
    page["data"][0].clone()
}

/// (line, field, column) of each rejection.
fn rejected(summary: &Value) -> Vec<(u64, Option<String>, Option<String>)> {
    summary["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().map(str::to_string);
            (r["line"].as_u64().unwrap(), text("field"), text("column"))
        })
        .collect()
}

fn hubspot_mapping() -> Value {
    json!({
        "delimiter": ";",
        "date_format": "%d.%m.%Y %H:%M",
        "unmapped": "custom_fields",
        "columns": {
            "First Name": "first_name",
            "Last Name": "last_name",
            "Email Address": "email",
            "Phone Number": "phone",
            "Company": "company_name",
            "Create Date": "first_touch.occurred_at",
            "Lifecycle Stage": "custom_fields.lifecycle_stage",
            "Original Source": "first_touch.utm.source",
        },
        "constants": {"status": "qualified"},
    })
}

/// Lines: 1 header; 2-3 Anna (a note over two lines); 4 an erased person (refused when stored,
/// after the rows below are read); 5 bad email; 6 bad phone; 7 bad date; 8 no identifier; 9 too
/// many fields; 10-12 Frank (a note over three lines); 13 bad email after the multi-line cell;
/// 14 Grace.
const HUBSPOT_CSV: &str = "First Name;Last Name;Email Address;Phone Number;Company;Create Date;Lifecycle Stage;Original Source;Notes\r\n\
Anna;Virtanen;anna@acme.fi;+358 40 123 4567;Acme Oy;31.01.2026 14:05;lead;google;\"Met at the fair;\r\nwants a demo\"\r\n\
Ivan;Gone;erased@example.org;;;03.02.2026 09:00;lead;;\r\n\
Bob;Builder;not-an-email;;;01.02.2026 09:00;lead;;\r\n\
Cecilia;Berg;cecilia@globex.se;12345;Globex;01.02.2026 10:00;lead;;\r\n\
Dan;Doe;dan@initech.com;;Initech;yesterday;lead;;\r\n\
;;;;Nobody Inc;01.02.2026 10:00;lead;;\r\n\
Eve;Extra;eve@example.fi;;;01.02.2026 10:00;lead;;;extra\r\n\
Frank;Lee;frank@acme.fi;;Acme Oy;02.02.2026 10:30;customer;linkedin;\"line one\nline two\nline three\"\r\n\
Heidi;Half;heidi@;;;02.02.2026 11:00;lead;;\r\n\
Grace;Hopper;grace@example.org;+358 50 765 4321;;03.02.2026 08:00;lead;direct;\r\n";

#[tokio::test]
async fn leads_from_another_product_import_through_a_mapping_and_bad_rows_are_reported_by_line() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let created = app.post("/api/v1/leads", &token, &json!({"email": "erased@example.org"})).await;
    assert_eq!(created.status(), 201);
    let erasure = json!({"kind": "erasure", "subject": {"email": "erased@example.org"}, "execute": true});
    let erased = app.post("/api/v1/data-subject-requests", &token, &erasure).await;
    assert!(erased.status().is_success(), "{}", erased.text().await.unwrap());

    let summary = imported(&app, &token, "leads", HUBSPOT_CSV, Some(&hubspot_mapping())).await;
    assert_eq!(summary["dataset"], "leads");
    assert_eq!((summary["rows"].as_u64(), summary["created"].as_u64()), (Some(10), Some(3)), "{summary}");
    assert_eq!(summary["rejected"], 7, "{summary}");
    let s = |t: &str| Some(t.to_string());
    assert_eq!(
        rejected(&summary),
        vec![
            (4, None, None),
            (5, s("email"), s("Email Address")),
            (6, s("phone"), s("Phone Number")),
            (7, s("first_touch.occurred_at"), s("Create Date")),
            (8, s("email"), s("Email Address")),
            (9, None, None),
            (13, s("email"), s("Email Address")),
        ],
        "{summary}"
    );
    let messages: Vec<&str> =
        summary["rejections"].as_array().unwrap().iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert!(messages[0].contains("erased"), "{}", messages[0]);
    assert!(messages[3].contains("%d.%m.%Y %H:%M"), "{}", messages[3]);
    assert!(messages[4].contains("at least one of"), "{}", messages[4]);
    assert!(messages[5].contains("has 10 fields where the header has 9"), "{}", messages[5]);
    assert_eq!(summary["rejections_total"], 7);

    let anna = lead_by_email(&app, &token, "anna@acme.fi").await;
    assert_eq!(anna["first_name"], "Anna");
    assert_eq!(anna["last_name"], "Virtanen");
    assert_eq!(anna["phone"], "+358401234567");
    assert_eq!(anna["company_name"], "Acme Oy");
    assert_eq!(anna["status"], "qualified");
    assert_eq!(anna["first_touch"]["occurred_at"], "2026-01-31T14:05:00Z");
    assert_eq!(anna["first_touch"]["utm"]["source"], "google");
    assert_eq!(anna["custom_fields"], json!({"lifecycle_stage": "lead", "Notes": "Met at the fair;\r\nwants a demo"}));
    let frank = lead_by_email(&app, &token, "frank@acme.fi").await;
    assert_eq!(frank["custom_fields"]["Notes"], "line one\nline two\nline three");
    assert_eq!(frank["first_touch"]["occurred_at"], "2026-02-02T10:30:00Z");
    // Linked as the API links: both work at acme.fi, one organization named after the company.
    assert!(anna["organization_id"].is_string(), "{anna}");
    assert_eq!(frank["organization_id"], anna["organization_id"]);
    let organization =
        app.get(&format!("/api/v1/organizations/{}", anna["organization_id"].as_str().unwrap()), &token).await;
    let organization: Value = organization.json().await.unwrap();
    assert_eq!(organization["name"], "Acme Oy");
    assert_eq!(organization["contacts"].as_array().unwrap().len(), 2);
    let grace = lead_by_email(&app, &token, "grace@example.org").await;
    assert_eq!(grace["phone"], "+358507654321");
    let page: Value = app.get("/api/v1/leads", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 3, "the erased lead is gone and only good rows landed");

    let audit: Value = app.get("/api/v1/audit-log?action=import.completed", &token).await.json().await.unwrap();
    let entry = &audit["data"][0];
    assert_eq!(entry["actor"]["kind"], "client");
    assert_eq!(entry["target"]["kind"], "lead");
    assert_eq!(entry["target"]["count"], 3);
    assert_eq!(entry["detail"], json!({"dataset": "leads", "rows": 10, "created": 3, "rejected": 7, "complete": true}));
    assert!(!entry.to_string().contains("acme.fi"), "no personal data in the audit entry: {entry}");
}

#[tokio::test]
async fn organizations_import_through_a_mapping_and_bad_rows_are_reported_by_line() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let csv = "Company Name,Website,Country,Employees From,Employees To,VAT,Business ID,Labels,Founded\n\
Acme Oy,https://acme.fi/,FI,10,49,FI 0112 0389,0112038-9,b2b; saas,1990\n\
Wrong Check Oy,,FI,,,,0112038-8,,\n\
Nowhere Ltd,,XX,,,,,,\n\
,https://nameless.example/,SE,,,,,,\n\
Many Ltd,,GB,many,,,,,\n\
Small AB,https://small.se/,se,1,9,,,\"[\"\"nordic\"\"]\",\n";
    let mapping = json!({
        "columns": {
            "Company Name": "name", "Website": "website_url", "Country": "address.country_code",
            "Employees From": "employee_range.min", "Employees To": "employee_range.max",
            "VAT": "vat_id", "Business ID": "business_id", "Labels": "tags", "Founded": null,
        },
        "constants": {"industry": "Software"},
    });
    let summary = imported(&app, &token, "organizations", csv, Some(&mapping)).await;
    assert_eq!((summary["rows"].as_u64(), summary["created"].as_u64()), (Some(6), Some(2)), "{summary}");
    let s = |t: &str| Some(t.to_string());
    assert_eq!(
        rejected(&summary),
        vec![
            (3, s("business_id"), s("Business ID")),
            (4, s("address.country_code"), s("Country")),
            (5, s("name"), s("Company Name")),
            (6, s("employee_range.min"), s("Employees From")),
        ],
        "{summary}"
    );
    let page: Value = app.get("/api/v1/organizations", &token).await.json().await.unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let acme = &data[0];
    assert_eq!(acme["name"], "Acme Oy");
    assert_eq!(acme["website_url"], "https://acme.fi/");
    assert_eq!(acme["address"]["country_code"], "FI");
    assert_eq!(acme["employee_range"], json!({"min": 10, "max": 49}));
    assert_eq!(acme["vat_id"], "FI01120389");
    assert_eq!(acme["business_id"], "0112038-9");
    assert_eq!(acme["tags"], json!(["b2b", "saas"]));
    assert_eq!(acme["industry"], "Software");
    assert_eq!(data[1]["name"], "Small AB");
    assert_eq!(data[1]["address"]["country_code"], "SE");
    assert_eq!(data[1]["tags"], json!(["nordic"]));

    // Without a mapping, columns named like the export's; counters and ids of other records
    // (an export's contacts name leads of its own tenant) are skipped.
    let csv = "name,domain,visit_count,employee_range.min,contacts\n\
               Fresh Oy,fresh.fi,99,5,\"[{\"\"lead_id\"\": \"\"0190b8c2-0000-7000-8000-000000000000\"\"}]\"\n";
    let summary = imported(&app, &token, "organizations", csv, None).await;
    assert_eq!((summary["created"].as_u64(), summary["rejected"].as_u64()), (Some(1), Some(0)), "{summary}");
    let page: Value = app.get("/api/v1/organizations", &token).await.json().await.unwrap();
    let fresh = &page["data"][2];
    assert_eq!((fresh["name"].as_str(), fresh["domain"].as_str()), (Some("Fresh Oy"), Some("fresh.fi")));
    assert_eq!(fresh["visit_count"], 0, "counters Steward keeps are not imported");
    assert_eq!(fresh["contacts"], json!([]));
    assert_eq!(fresh["employee_range"]["min"], 5);
}

#[tokio::test]
async fn a_steward_csv_export_of_leads_imports_into_another_tenant_without_a_mapping() {
    let app = spawn_app().await;
    let (_, source) = app.tenant_token("Source").await;
    let leads = [
        json!({
            "email": "anna@acme.fi", "phone": "+358 40 123 4567", "first_name": "Anna", "last_name": "=Virtanen",
            "company_name": "Acme Oy", "job_title": "CTO", "contact_id": "crm-1", "score": 80, "status": "won",
            "tags": ["vip", "b2b"], "custom_fields": {"size": "50", "note": "line\nbreak, \"quoted\""},
            "bot": {"id": "b1", "name": "Pricing bot", "type": "chat"},
            "answers": [{"question": "Budget?", "answer": "10k", "answered_at": "2026-11-01T10:00:00Z"}],
            "conversion_url": "https://acme.fi/pricing",
            "first_touch": {"landing_url": "https://acme.fi/", "referrer_url": "https://google.com/",
                "utm": {"source": "google", "medium": "cpc", "campaign": "q4"}, "occurred_at": "2026-11-01T09:00:00.123456Z"},
            "last_touch": {"landing_url": "https://acme.fi/pricing", "occurred_at": "2026-11-02T09:00:00Z"},
            "location": {"country_code": "FI", "region": "Uusimaa", "city": "Espoo"},
            "ip_address": "198.51.100.77",
            "consent": {"marketing": true, "captured_at": "2026-11-01T10:00:00Z", "source": "form"},
        }),
        json!({"first_name": "Bob", "job_title": "@home", "tags": ["-minus"], "score": 0}),
        json!({"contact_id": "crm-3", "consent": {"marketing": false, "captured_at": "2026-11-03T10:00:00Z"}}),
    ];
    let mut originals = Vec::new();
    for lead in &leads {
        let response = app.post("/api/v1/leads", &source, lead).await;
        let body: Value = response.json().await.unwrap();
        assert!(body["id"].is_string(), "{body}");
        originals.push(body);
    }
    let csv = app.get("/api/v1/exports/leads?format=csv", &source).await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("'=Virtanen") && csv.contains("'@home"), "the export defused formulas: {csv}");

    let (_, target) = app.tenant_token("Target").await;
    let summary = imported(&app, &target, "leads", &csv, None).await;
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(summary["created"], originals.len());
    let page: Value = app.get("/api/v1/leads", &target).await.json().await.unwrap();
    let copies = page["data"].as_array().unwrap();
    assert_eq!(copies.len(), originals.len());
    let server_owned = ["id", "created_at", "updated_at", "organization_id", "visitor_profile_id"];
    for (original, copy) in originals.iter().zip(copies) {
        let mut original = original.clone();
        let mut copy = copy.clone();
        for key in server_owned {
            original.as_object_mut().unwrap().remove(key);
            copy.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(copy, original, "every writable field survives the round trip");
    }
    let anna = lead_by_email(&app, &target, "anna@acme.fi").await;
    assert!(anna["organization_id"].is_string(), "linked to an organization of the target tenant");
}

#[tokio::test]
async fn a_bad_mapping_is_422_naming_each_problem_and_nothing_is_imported() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let unknown = json!({"columns": {"E-mail": "emial", "Created": "created_at"}, "delimiter": "|"});
    let body = problem(import(&app, &token, "leads", "E-mail,Created\na@b.fi,x\n", Some(&unknown)).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["delimiter", "columns.Created", "columns.E-mail"], "{body}");
    assert!(body["detail"].as_str().unwrap().contains("emial"), "{body}");

    let absent = json!({"columns": {"Email Address": "email"}});
    let body = problem(import(&app, &token, "leads", "Email,Name\na@b.fi,A\n", Some(&absent)).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["columns.Email Address"]);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("Email, Name"), "{body}");

    let not_json = multipart(&[("mapping", b"{columns"), ("file", b"email\na@b.fi\n")]);
    let body = problem(send(&app, &token, "leads", not_json).await, 422).await;
    assert_eq!(problem_fields(&body), vec!["mapping"]);

    let page: Value = app.get("/api/v1/leads", &token).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]), "nothing was imported");
    let audit: Value = app.get("/api/v1/audit-log?action=import.completed", &token).await.json().await.unwrap();
    assert_eq!(audit["data"], json!([]));
}

#[tokio::test]
async fn a_file_past_the_import_limit_is_413_and_other_mistakes_have_their_own_status() {
    let mut settings = Settings::default();
    settings.imports.max_bytes = 1_000;
    let app = spawn_app_with(settings).await;
    let (ctx, token) = app.tenant_token("Acme").await;
    let mut csv = String::from("email\n");
    while csv.len() <= 2_000 {
        csv.push_str("someone@example.org\n");
    }
    let body = problem(import(&app, &token, "leads", &csv, None).await, 413).await;
    assert!(body["detail"].as_str().unwrap().contains("imports.max_bytes"), "{body}");
    // Past the whole body's limit too, refused by its declared length before it is read.
    let huge = "email\n".repeat(400_000);
    let body = problem(import(&app, &token, "leads", &huge, None).await, 413).await;
    assert!(body["detail"].as_str().unwrap().contains("imports.max_bytes"), "{body}");
    let page: Value = app.get("/api/v1/leads", &token).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));

    let small = "email\nanna@example.org\n";
    problem(import(&app, &token, "journeys", small, None).await, 404).await;
    let reader = app.token(&ctx, "leads:read organizations:write").await;
    problem(import(&app, &reader, "leads", small, None).await, 403).await;
    let json_body = app.post("/api/v1/imports/leads", &token, &json!({"file": small})).await;
    problem(json_body, 415).await;
    let body = problem(send(&app, &token, "leads", multipart(&[("mapping", b"{}")])).await, 400).await;
    assert_eq!(problem_fields(&body), vec!["file"]);
    let summary = imported(&app, &token, "leads", small, None).await;
    assert_eq!(summary["created"], 1);
}

#[tokio::test]
async fn an_organization_row_with_a_multibyte_vat_id_is_rejected_and_the_good_rows_are_kept() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    let csv = "name,vat_id\nFirst Oy,FI01120389\nEuro Oy,€1234\nLast Oy,\n";
    let summary = imported(&app, &token, "organizations", csv, None).await;
    assert_eq!((summary["rows"].as_u64(), summary["created"].as_u64()), (Some(3), Some(2)), "{summary}");
    let s = |t: &str| Some(t.to_string());
    assert_eq!(rejected(&summary), vec![(3, s("vat_id"), s("vat_id"))], "{summary}");
    let page: Value = app.get("/api/v1/organizations", &token).await.json().await.unwrap();
    let names: Vec<&str> = page["data"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["First Oy", "Last Oy"]);
}

#[tokio::test]
async fn a_file_that_is_not_csv_is_refused_once_with_422_naming_what_it_looks_like() {
    let app = spawn_app().await;
    let (_, token) = app.tenant_token("Acme").await;
    app.post("/api/v1/leads", &token, &json!({"email": "anna@example.org"})).await;
    let xlsx = app.get("/api/v1/exports/leads?format=xlsx", &token).await;
    assert_eq!(xlsx.status(), 200);
    let xlsx = xlsx.bytes().await.unwrap().to_vec();
    let json_file = app.get("/api/v1/exports/leads?format=json", &token).await.bytes().await.unwrap().to_vec();
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(&[0; 26]);
    zip.extend_from_slice(b"notes/readme.txt");
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("an export in XLSX", xlsx, "XLSX"),
        ("an export in JSON", json_file, "JSON"),
        ("a ZIP", zip, "a ZIP archive"),
        ("a PDF", b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n".to_vec(), "PDF"),
        ("binary data", b"email\nanna@example.org\0\0\0\x01\x02\n".to_vec(), "NUL"),
        ("UTF-16", b"\xFF\xFEe\0m\0a\0i\0l\0\n\0".to_vec(), "UTF-16"),
    ];
    for (what, file, says) in cases {
        let body = problem(send(&app, &token, "leads", multipart(&[("file", &file)])).await, 422).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("this is not a CSV file (it looks like ") && detail.contains(says),
            "{what}: {body}"
        );
        assert_eq!(problem_fields(&body), vec!["file"], "{what}: {body}");
    }
    let page: Value = app.get("/api/v1/leads", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "nothing was imported");
    // A CSV whose first cell merely starts with a bracket is still CSV.
    let summary = imported(&app, &token, "leads", "email,[note]\nbob@example.org,x\n", None).await;
    assert_eq!(summary["created"], 1, "{summary}");
}
