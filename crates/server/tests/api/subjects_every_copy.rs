//! A data-subject request reaches every copy of one person and only that person: a person with
//! records in every store and contact entries in two organizations, a colleague in the same
//! organization, and a second person who shares the colleague's phone.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Value, json};
use steward_domain::tenant::CollectionSettings;
use steward_domain::{Lead, Organization, Timestamp};
use steward_server::admin;
use steward_store::{ListQuery, Record, StoreExt, TenantCtx};

use crate::helpers::{TestApp, problem, spawn_app};

const EMAIL: &str = "aino.virtanen@nordwind.example";
const PHONE: &str = "+358401234567";
const NEW_PHONE: &str = "+358401234568";
const CONTACT_ID: &str = "CRM-AINO-1";
const SHARED_PHONE: &str = "+358409999999";

/// The people of the scene: Aino (the subject), Ville (her colleague at Nordwind) and Bertta
/// (elsewhere, with Ville's phone).
struct Scene {
    token: String,
    visitor: String,
    aino: Vec<String>,
    ville: String,
    bertta: String,
    partner: String,
}

async fn collect(app: &TestApp, site_key: &str, visitor: &str, pages: usize) {
    let now = app.state.clock.now();
    let events: Vec<Value> = (0..pages)
        .map(|n| {
            let at = now.checked_add(time::Duration::seconds(-10 * (pages - n) as i64)).unwrap();
            json!({"type": "page_view", "url": format!("https://nordwind.example/p{n}"), "occurred_at": at.to_rfc3339()})
        })
        .collect();
    let body = json!({"site_key": site_key, "visitor_id": visitor, "events": events});
    let response = app.http.post(app.url("/collect")).header("content-type", "text/plain").body(body.to_string());
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = app.post(path, token, &body).await;
    assert_eq!(response.status(), 201, "{path} {body}");
    response.json().await.unwrap()
}

async fn scene(app: &TestApp, ctx: &TenantCtx) -> Scene {
    let site =
        admin::add_site(app.store.as_ref(), ctx, "nordwind.example", CollectionSettings::default(), Timestamp::now())
            .await
            .unwrap();
    let visitor = uuid::Uuid::now_v7().to_string();
    for _ in 0..3 {
        collect(app, site.site_key.as_str(), &visitor, 4).await;
        app.state.clock.advance(time::Duration::hours(1));
    }
    let token = app.token(ctx, &steward_domain::Scopes::all().to_string()).await;
    let form = json!({"first_name": "Aino", "last_name": "Virtanen", "email": EMAIL, "phone": PHONE,
                      "contact_id": CONTACT_ID, "visitor_id": visitor, "job_title": "Buyer"});
    let chat = json!({"first_name": "Aino", "phone": PHONE, "visitor_id": visitor});
    let aino = vec![
        created(app, &token, "/api/v1/leads", form).await["id"].as_str().unwrap().to_string(),
        created(app, &token, "/api/v1/leads", chat).await["id"].as_str().unwrap().to_string(),
    ];
    let ville = json!({"first_name": "Ville", "last_name": "Nieminen", "email": "ville.nieminen@nordwind.example",
                       "phone": SHARED_PHONE});
    let ville = created(app, &token, "/api/v1/leads", ville).await["id"].as_str().unwrap().to_string();
    let bertta =
        json!({"first_name": "Bertta", "last_name": "Lahti", "email": "bertta@lahti.example", "phone": SHARED_PHONE});
    let bertta = created(app, &token, "/api/v1/leads", bertta).await["id"].as_str().unwrap().to_string();
    // A partner company lists Aino (and Bertta) among its contacts: not Aino's own organization.
    let partner = json!({"name": "Partner Oy", "domain": "partner.example", "contacts": [
        {"lead_id": aino[0], "name": "Aino Virtanen", "email": EMAIL, "role": "buyer"},
        {"lead_id": bertta, "name": "Bertta Lahti", "email": "bertta@lahti.example"},
    ]});
    let partner = created(app, &token, "/api/v1/organizations", partner).await["id"].as_str().unwrap().to_string();
    Scene { token, visitor, aino, ville, bertta, partner }
}

async fn lookup(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/data-subjects?{query}"), token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every record of a kind, as JSON by id, read from the store.
async fn all<R: Record>(app: &TestApp, ctx: &TenantCtx) -> BTreeMap<uuid::Uuid, Value> {
    let records: Vec<R> = app.store.list_all(ctx, ListQuery::default()).await.unwrap();
    records.into_iter().map(|record| (record.key(), serde_json::to_value(&record).unwrap())).collect()
}

async fn organization(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/organizations/{id}"), token).await.json().await.unwrap()
}

/// The text of every member of a ZIP (an XLSX workbook, an archive).
fn unzipped(bytes: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    for index in 0..archive.len() {
        archive.by_index(index).unwrap().read_to_string(&mut text).unwrap();
    }
    text
}

fn assert_holds_none(text: &str, needles: &[&str], place: &str) {
    for needle in needles {
        assert!(!text.contains(needle), "{place} still holds {needle:?}");
    }
}

#[tokio::test]
async fn a_request_reaches_every_copy_of_one_person_and_erasure_leaves_nothing_of_them() {
    let app = spawn_app().await;
    let ctx = app.tenant("Nordwind Oy").await;
    let s = scene(&app, &ctx).await;
    let token = s.token.as_str();

    // Lookup: both leads, the browser's journeys, and the contact entries of both organizations.
    let found = lookup(&app, token, &format!("email={EMAIL}")).await;
    let counts = &found["counts"];
    assert_eq!(counts["leads"], 2, "{counts}");
    assert_eq!(counts["visitor_profiles"], 1);
    assert_eq!(counts["sessions"], 3);
    assert_eq!(counts["events"], 12);
    let holders: std::collections::BTreeSet<&str> = found["organization_contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["organization_name"].as_str().unwrap())
        .collect();
    assert!(holders.contains("Partner Oy"), "another organization's contact list is searched too: {holders:?}");
    assert_eq!(holders.len(), 2, "her own organization and the partner: {holders:?}");
    assert_eq!(counts["organization_contacts"], 3, "both leads in her own organization, one in the partner's");
    for query in [
        format!("phone={}", PHONE.replace('+', "%2B")),
        format!("contact_id={CONTACT_ID}"),
        format!("visitor_id={}", s.visitor),
    ] {
        assert_eq!(lookup(&app, token, &query).await["counts"], *counts, "{query} finds the same person");
    }
    let both = lookup(&app, token, &format!("email={EMAIL}&phone={}", PHONE.replace('+', "%2B"))).await;
    assert_eq!(both["counts"], *counts, "two identifiers of one person narrow nothing away");

    // Identifiers of two people: refused with counts, nothing read or changed.
    let before_conflict = (all::<Lead>(&app, &ctx).await, all::<Organization>(&app, &ctx).await);
    let conflict = app
        .post(
            "/api/v1/data-subject-requests",
            token,
            &json!({"kind": "erasure", "subject": {"email": EMAIL, "phone": SHARED_PHONE}}),
        )
        .await;
    let body = problem(conflict, 409).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("different people"), "{body}");
    assert!(!detail.contains("ville") && !detail.contains("bertta"), "counts only: {body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["subject.email", "subject.phone"], "each identifier meets the other's records: {body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("matches 1 lead(s), 1 of which hold a different phone")
    );
    assert!(
        body["errors"][1]["message"].as_str().unwrap().contains("matches 2 lead(s), 2 of which hold a different email")
    );
    let lookup_conflict = app
        .get(&format!("/api/v1/data-subjects?email={EMAIL}&phone={}", SHARED_PHONE.replace('+', "%2B")), token)
        .await;
    problem(lookup_conflict, 409).await;
    assert_eq!((all::<Lead>(&app, &ctx).await, all::<Organization>(&app, &ctx).await), before_conflict);
    let requests: Value = app.get("/api/v1/data-subject-requests", token).await.json().await.unwrap();
    assert_eq!(requests["data"], json!([]), "a refused request is not recorded");

    // Access: the archive holds both organizations' entries.
    let access =
        created(&app, token, "/api/v1/data-subject-requests", json!({"kind": "access", "subject": {"email": EMAIL}}))
            .await;
    let archive_path = format!("/api/v1/data-subject-requests/{}/archive", access["id"].as_str().unwrap());
    let archive = app.get(&archive_path, token).await;
    assert_eq!(archive.status(), 200);
    let archived = unzipped(&archive.bytes().await.unwrap());
    assert!(archived.contains("Partner Oy") && archived.contains(EMAIL) && archived.contains(&s.visitor));

    // Rectification: every copy, the partner's entry included.
    let rectification = json!({"kind": "rectification", "subject": {"email": EMAIL},
                               "changes": {"last_name": "Korhonen", "phone": NEW_PHONE}});
    let rectified = created(&app, token, "/api/v1/data-subject-requests", rectification).await;
    assert_eq!(rectified["report"]["counts"]["leads"], 2, "{rectified}");
    let partner = organization(&app, token, &s.partner).await;
    let entry = partner["contacts"].as_array().unwrap().iter().find(|c| c["lead_id"] == s.aino[0].as_str()).unwrap();
    assert_eq!(entry["name"], "Aino Korhonen", "{partner}");
    let audit: Value = app.get("/api/v1/audit-log?action=subject_request.rectified", token).await.json().await.unwrap();
    let changes = audit["data"][0]["detail"]["changes"].to_string();
    assert!(changes.contains(PHONE) && changes.contains(NEW_PHONE), "readable while the person is held: {changes}");

    // Everyone else, as stored, before the erasure.
    let others_before = {
        let mut leads = all::<Lead>(&app, &ctx).await;
        leads.retain(|id, _| !s.aino.contains(&id.to_string()));
        leads
    };
    assert_eq!(others_before.len(), 2);

    let erasure =
        created(&app, token, "/api/v1/data-subject-requests", json!({"kind": "erasure", "subject": {"email": EMAIL}}))
            .await;
    let report = &erasure["report"]["counts"];
    assert_eq!(report["leads"], 2, "{report}");
    assert_eq!(report["organization_contacts"], 3, "{report}");
    assert_eq!(report["subject_requests"], 2, "the access and the rectification: {report}");

    // The other people are byte for byte as they were; the partner keeps Bertta's entry.
    let mut others_after = all::<Lead>(&app, &ctx).await;
    others_after.retain(|id, _| !s.aino.contains(&id.to_string()));
    assert_eq!(others_after, others_before);
    let partner = organization(&app, token, &s.partner).await;
    assert_eq!(partner["contacts"].as_array().unwrap().len(), 1, "{partner}");
    assert_eq!(partner["contacts"][0]["lead_id"], s.bertta.as_str());
    for id in [&s.ville, &s.bertta] {
        assert_eq!(app.get(&format!("/api/v1/leads/{id}"), token).await.status(), 200);
    }

    let needles = [
        EMAIL,
        PHONE,
        NEW_PHONE,
        CONTACT_ID,
        s.visitor.as_str(),
        "Virtanen",
        "Korhonen",
        s.aino[0].as_str(),
        s.aino[1].as_str(),
    ];
    for dataset in ["leads", "organizations", "visitor-profiles", "journeys", "reports", "audit-log"] {
        for format in ["csv", "json", "ndjson", "xlsx"] {
            let response = app.get(&format!("/api/v1/exports/{dataset}?format={format}"), token).await;
            assert_eq!(response.status(), 200, "{dataset} {format}");
            let bytes = response.bytes().await.unwrap();
            let text = if format == "xlsx" { unzipped(&bytes) } else { String::from_utf8(bytes.to_vec()).unwrap() };
            assert_holds_none(&text, &needles, &format!("the {dataset} export as {format}"));
        }
    }
    for path in
        ["/api/v1/data-subject-requests", "/api/v1/audit-log?limit=1000", "/api/v1/leads", "/api/v1/organizations"]
    {
        let text = app.get(path, token).await.text().await.unwrap();
        assert_holds_none(&text, &needles, path);
    }
    let audit: Value = app.get("/api/v1/audit-log?action=subject_request.rectified", token).await.json().await.unwrap();
    let detail = &audit["data"][0]["detail"];
    assert_eq!(detail["changes"]["erased"], true, "the values are sealed for good: {detail}");
    assert_eq!(
        detail["changed_fields"],
        json!(["lead.last_name", "lead.phone", "organization_contact.name"]),
        "which fields changed stays legible"
    );
    let verified: Value = app.get("/api/v1/audit-log/verify", token).await.json().await.unwrap();
    assert_eq!(verified["valid"], true, "{verified}");

    let gone = app.get(&archive_path, token).await;
    let body = problem(gone, 410).await;
    assert!(body["detail"].as_str().unwrap().contains("erased"), "{body}");
    for (lookup_query, what) in [(format!("email={EMAIL}"), "email"), (format!("visitor_id={}", s.visitor), "visitor")]
    {
        let after = lookup(&app, token, &lookup_query).await;
        for store in ["leads", "visitor_profiles", "sessions", "events", "organization_contacts"] {
            assert_eq!(after["counts"][store], 0, "{what}: {store}");
        }
    }

    // Not even the database's own files keep a byte of them (SQLite; PostgreSQL: see README).
    if let Some(files) = app.database_bytes() {
        let visitor = uuid::Uuid::parse_str(&s.visitor).unwrap();
        for (name, bytes) in files {
            for needle in [visitor.as_bytes().as_slice(), s.visitor.as_bytes(), EMAIL.as_bytes(), CONTACT_ID.as_bytes()]
            {
                assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{name} still holds {needle:?}");
            }
        }
    }
}
