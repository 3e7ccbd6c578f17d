//! Every parser of user text answers hostile text (multibyte and astral characters where ASCII is
//! expected, NUL, 40,000 characters) with a value or a typed error, never a panic: a panic in a
//! request handler is a 500, and in an import it loses the rows around it.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use steward_domain::id::parse_v7;
use steward_domain::{
    CountryCode, Email, IpNetwork, LeadId, LeadInput, OrganizationId, OrganizationInput, Password, Phone, Scopes,
    SiteKey, TenantSlug, Timestamp, WebUrl,
};

/// Texts that break code which slices by bytes or assumes ASCII.
fn hostile() -> Vec<String> {
    let mut texts: Vec<String> = [
        "€",
        "€1234",
        "€€€€",
        "F€1234",
        "FI€1234",
        "€1234-9",
        "0112038-€",
        "😀",
        "😀1234567",
        "a😀@example.org",
        "anna@😀.fi",
        "+358😀401234567",
        "https://😀.example/€",
        "site_€€€€€€€€€€€€€€€€€€€€€€€€€€",
        "\0",
        "a\0b",
        "FI\x001234",
        "\u{feff}€",
        "e\u{301}",
        "ǅ",
        "İ",
        "ß",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    texts.push("€".repeat(40_000));
    texts.push("a".repeat(40_000));
    texts.push("😀".repeat(40_000));
    texts.push("\0".repeat(40_000));
    texts.push(format!("{}@example.org", "€".repeat(40_000)));
    texts
}

#[test]
fn every_text_parser_refuses_hostile_text_without_panicking() {
    for text in hostile() {
        let t = text.as_str();
        let _ = Email::parse(t);
        let _ = Phone::parse(t);
        let _ = WebUrl::parse(t);
        let _ = CountryCode::parse(t);
        let _ = TenantSlug::parse(t);
        let _ = steward_domain::tenant::Domain::parse(t);
        let _ = SiteKey::parse(t);
        let _ = LeadId::parse(t);
        let _ = parse_v7(t);
        let _ = IpNetwork::parse(t);
        let _ = Timestamp::parse(t);
        let _ = Password::parse(t);
        let _ = Scopes::parse(t);
        let _ = steward_domain::switching::parse_until(t);
        let _ = steward_domain::text::line(text.clone(), 200);
        let _ = steward_domain::text::multiline(text.clone(), 200);
    }
}

fn organization(input: Value) -> Result<(), Vec<String>> {
    let input: OrganizationInput = serde_json::from_value(input).unwrap();
    let now = Timestamp::now();
    input
        .validate(OrganizationId::new(), Default::default(), now, now)
        .map(drop)
        .map_err(|errors| errors.errors().iter().map(|e| e.field.clone()).collect())
}

fn lead(input: Value) -> Result<(), Vec<String>> {
    let input: LeadInput = serde_json::from_value(input).unwrap();
    let now = Timestamp::now();
    input
        .validate(LeadId::new(), now, now)
        .map(drop)
        .map_err(|errors| errors.errors().iter().map(|e| e.field.clone()).collect())
}

#[test]
fn a_vat_id_with_a_multibyte_first_character_is_a_field_error_not_a_panic() {
    for vat in ["€1234", "😀1234", "F€1234", "€", "FI\x001234"] {
        assert_eq!(organization(json!({"name": "x", "vat_id": vat})), Err(vec!["vat_id".to_string()]), "{vat:?}");
    }
    assert_eq!(organization(json!({"name": "x", "vat_id": "fi 0112 0389"})), Ok(()));
}

#[test]
fn every_organization_and_lead_text_field_refuses_hostile_text_without_panicking() {
    let organization_fields =
        ["name", "domain", "website_url", "business_id", "vat_id", "industry", "phone", "email", "linkedin_url"];
    let lead_fields = [
        "contact_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company_name",
        "job_title",
        "status",
        "conversion_url",
        "ip_network",
        "ip_address",
        "visitor_profile_id",
        "organization_id",
    ];
    for text in hostile() {
        for field in organization_fields {
            let _ = organization(json!({"name": "x", field: text}));
        }
        let _ = organization(json!({
            "name": "x",
            "tags": [text],
            "address": {"street": text, "postal_code": text, "city": text, "country_code": text},
            "contacts": [{"lead_id": text, "role": text, "name": text, "email": text}],
        }));
        for field in lead_fields {
            let _ = lead(json!({field: text}));
        }
        let touch = json!({"referrer_url": text, "landing_url": text, "occurred_at": text,
            "utm": {"source": text, "medium": text, "campaign": text, "term": text, "content": text}});
        let _ = lead(json!({
            "tags": [text],
            "custom_fields": {text.clone(): text},
            "bot": {"id": text, "name": text, "type": text},
            "answers": [{"question": text, "answer": text, "answered_at": text}],
            "first_touch": touch,
            "last_touch": touch,
            "location": {"country_code": text, "region": text, "city": text},
            "consent": {"marketing": true, "captured_at": text, "source": text},
        }));
    }
}
