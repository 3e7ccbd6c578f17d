//! Property tests of the parsers at the edge: whatever text arrives (multibyte characters, NUL,
//! control characters, 40,000 characters), parsing answers a value or an error and never
//! panics, and what it accepts parses again to the same value.
//!
//! The suite runs proptest's default number of cases (256 per property); a longer run:
//! `PROPTEST_CASES=100000 cargo test -p steward-domain --test properties --release`.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use steward_domain::lead::LeadInput;
use steward_domain::organization::{OrganizationInput, VisitStats};
use steward_domain::weburl::WebUrl;
use steward_domain::{CountryCode, Email, IpNetwork, LeadId, OrganizationId, Phone, Timestamp};

/// Text an attacker or a careless export would send: anything, characters that look like the
/// syntax of what is parsed, and very long input.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        4 => "[a-zA-Z0-9€😀\u{0}\u{202e} @._+:/%#?=&\\[\\]-]{0,48}",
        2 => "[A-Z€]{0,3}[0-9€ -]{0,14}",
        2 => "(https?|ftp|javascript)://[a-z0-9€.-]{0,20}(:[0-9]{0,6})?/[^ ]{0,20}",
        2 => "[+]?[0-9 ()€-]{0,20}",
        2 => "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}|€)?",
        1 => proptest::collection::vec(any::<char>(), 0..40_000).prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn now() -> Timestamp {
    Timestamp::parse("2026-12-03T12:00:00Z").unwrap()
}

proptest! {
    #[test]
    fn emails_parse_or_refuse_and_what_parses_parses_again(text in hostile()) {
        if let Ok(email) = Email::parse(&text) {
            prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email);
        }
    }

    #[test]
    fn phones_parse_or_refuse_and_what_parses_is_e164(text in hostile()) {
        if let Ok(phone) = Phone::parse(&text) {
            prop_assert!(phone.as_str().starts_with('+'));
            prop_assert_eq!(Phone::parse(phone.as_str()).unwrap(), phone);
        }
    }

    #[test]
    fn urls_parse_or_refuse_and_what_parses_parses_again(text in hostile()) {
        if let Ok(url) = WebUrl::parse(&text) {
            prop_assert_eq!(WebUrl::parse(url.as_str()).unwrap(), url);
        }
    }

    #[test]
    fn timestamps_parse_or_refuse_and_their_text_round_trips(text in hostile()) {
        if let Ok(at) = Timestamp::parse(&text) {
            prop_assert_eq!(Timestamp::parse(&at.to_rfc3339()).unwrap(), at);
        }
    }

    #[test]
    fn countries_and_networks_parse_or_refuse(text in hostile()) {
        if let Ok(country) = CountryCode::parse(&text) {
            prop_assert_eq!(country.as_str().len(), 2);
        }
        if let Ok(network) = IpNetwork::parse(&text) {
            prop_assert_eq!(IpNetwork::parse(&network.to_string()).unwrap(), network);
        }
    }

    /// Every text field of an organization, the VAT id and business id among them, with hostile
    /// text: validation names the field or accepts it, and never panics.
    #[test]
    fn organizations_validate_any_text_in_any_field(text in hostile(), field in 0_usize..9) {
        let mut input = OrganizationInput { name: Some("Acme Oy".into()), ..OrganizationInput::default() };
        let slot = match field {
            0 => &mut input.name,
            1 => &mut input.domain,
            2 => &mut input.website_url,
            3 => &mut input.business_id,
            4 => &mut input.vat_id,
            5 => &mut input.industry,
            6 => &mut input.phone,
            7 => &mut input.email,
            _ => &mut input.linkedin_url,
        };
        *slot = Some(text);
        let _ = input.validate(OrganizationId::new(), VisitStats::default(), now(), now());
    }

    /// Every text field of a lead with hostile text.
    #[test]
    fn leads_validate_any_text_in_any_field(text in hostile(), field in 0_usize..10) {
        let mut input = LeadInput::default();
        let slot = match field {
            0 => &mut input.contact_id,
            1 => &mut input.first_name,
            2 => &mut input.last_name,
            3 => &mut input.email,
            4 => &mut input.phone,
            5 => &mut input.company_name,
            6 => &mut input.job_title,
            7 => &mut input.status,
            8 => &mut input.conversion_url,
            _ => &mut input.ip_network,
        };
        *slot = Some(text);
        let _ = input.validate(LeadId::new(), now(), now());
    }
}
