//! The generator's promises: deterministic, valid by the domain's own rules, and consistent.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use steward_demo::{DemoConfig, DemoData, finnish_business_id, generate, lead_stream};
use steward_domain::lead::LEAD_READ_ONLY;
use steward_domain::organization::ORGANIZATION_READ_ONLY;
use steward_domain::{EventType, LeadInput, OrganizationInput, Timestamp};

fn config() -> DemoConfig {
    let end = Timestamp::parse("2026-11-22T12:00:00Z").unwrap();
    DemoConfig::demo(end).scaled(0.1)
}

fn without(value: &serde_json::Value, fields: &[&str]) -> serde_json::Value {
    let mut value = value.clone();
    let object = value.as_object_mut().unwrap();
    for field in fields {
        object.remove(*field);
    }
    value
}

#[test]
fn the_same_config_gives_the_same_data_and_another_seed_does_not() {
    let a = generate(&config());
    let b = generate(&config());
    let json = |d: &DemoData| {
        serde_json::to_string(&(&d.organizations, &d.visitors, &d.sessions, &d.events, &d.leads)).unwrap()
    };
    assert_eq!(json(&a), json(&b));
    let c = generate(&DemoConfig { seed: 7, ..config() });
    assert_ne!(json(&a), json(&c));
}

#[test]
fn counts_follow_the_size_knob() {
    let config = config();
    let data = generate(&config);
    assert_eq!(data.organizations.len(), 30);
    assert_eq!(data.visitors.len(), 1_200);
    assert_eq!(data.leads.len(), 300);
    assert!(data.sessions.len() > data.visitors.len(), "some visitors come back");
    assert!(data.events.len() > 3 * data.sessions.len(), "{} events", data.events.len());
    let full = DemoConfig::demo(config.end);
    assert_eq!((full.organizations, full.visitors, full.leads), (300, 12_000, 3_000));
}

#[test]
fn every_lead_passes_the_same_validation_as_the_api() {
    let data = generate(&config());
    for lead in &data.leads {
        let json = without(&serde_json::to_value(lead).unwrap(), LEAD_READ_ONLY);
        let input: LeadInput = serde_json::from_value(json).unwrap();
        let again = input.validate(lead.id, lead.created_at, lead.updated_at).unwrap();
        assert_eq!(&again, lead);
        assert!(lead.updated_at >= lead.created_at);
    }
    let with_email = data.leads.iter().filter(|l| l.email.is_some()).count();
    let with_phone = data.leads.iter().filter(|l| l.phone.is_some()).count();
    assert_eq!(with_email, data.leads.len(), "every generated address parses");
    assert!(with_phone * 10 > data.leads.len() * 6, "{with_phone} phones of {}", data.leads.len());
    let contact_ids: HashSet<_> = data.leads.iter().map(|l| l.contact_id.clone()).collect();
    assert_eq!(contact_ids.len(), data.leads.len(), "contact ids are unique");
}

#[test]
fn every_organization_passes_validation_and_finnish_ones_have_checked_business_ids() {
    let data = generate(&config());
    let mut finnish = 0;
    for organization in &data.organizations {
        let json = without(&serde_json::to_value(organization).unwrap(), ORGANIZATION_READ_ONLY);
        let input: OrganizationInput = serde_json::from_value(json).unwrap();
        let again = input
            .validate(organization.id, organization.visit_stats(), organization.created_at, organization.updated_at)
            .unwrap();
        assert_eq!(&again, organization);
        finnish += usize::from(organization.business_id.is_some());
    }
    assert!(finnish > 0);
    // Known registered ids: 0112038-9 (Nokia Oyj) and 2331972-7.
    assert_eq!(finnish_business_id(112_038), "0112038-9");
    assert_eq!(finnish_business_id(2_331_972), "2331972-7");
}

#[test]
fn journeys_are_ordered_and_profiles_sum_them_up() {
    let data = generate(&config());
    let mut events_by_session: HashMap<_, Vec<_>> = HashMap::new();
    for event in &data.events {
        events_by_session.entry(event.session_id).or_default().push(event);
    }
    let mut sessions_by_visitor: HashMap<_, Vec<_>> = HashMap::new();
    for session in &data.sessions {
        let events = &events_by_session[&session.id];
        let positions: Vec<u32> = events.iter().map(|e| e.position).collect();
        assert_eq!(positions, (1..=events.len() as u32).collect::<Vec<_>>());
        assert!(events.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
        assert_eq!(events[0].occurred_at, session.started_at);
        assert_eq!(events.last().unwrap().occurred_at, session.ended_at);
        let views = events.iter().filter(|e| e.kind == EventType::PageView).count() as u64;
        assert_eq!(views, session.pageview_count);
        assert_eq!(session.converted, events.iter().any(|e| e.kind == EventType::Conversion));
        assert!(session.ended_at <= config().end, "no activity after the end of the period");
        sessions_by_visitor.entry(session.visitor_profile_id).or_default().push(session);
    }
    let leads: HashMap<_, _> = data.leads.iter().map(|l| (l.id, l)).collect();
    for profile in &data.visitors {
        let sessions = &sessions_by_visitor[&profile.id];
        assert_eq!(profile.visit_count, sessions.len() as u64);
        assert_eq!(profile.pageview_count, sessions.iter().map(|s| s.pageview_count).sum::<u64>());
        assert_eq!(profile.first_seen_at, sessions[0].started_at);
        assert_eq!(profile.last_seen_at, sessions.last().unwrap().ended_at);
        let indexes: Vec<u32> = sessions.iter().map(|s| s.visit_index).collect();
        assert_eq!(indexes, (1..=sessions.len() as u32).collect::<Vec<_>>());
        assert_eq!(profile.identified, !profile.lead_ids.is_empty());
        for lead_id in &profile.lead_ids {
            let lead = leads[lead_id];
            assert_eq!(lead.visitor_profile_id, Some(profile.id));
            assert_eq!(lead.contact_id, profile.contact_id);
            assert_eq!(lead.organization_id, profile.organization_id);
        }
    }
    let linked = data.leads.iter().filter(|l| l.visitor_profile_id.is_some()).count();
    assert_eq!(linked, data.visitors.iter().map(|v| v.lead_ids.len()).sum::<usize>());
    assert!(linked * 10 >= data.leads.len() * 6, "most leads come from tracked visits ({linked})");
}

#[test]
fn organizations_count_their_visitors_and_list_their_leads() {
    let data = generate(&config());
    for organization in &data.organizations {
        let visitors: Vec<_> = data.visitors.iter().filter(|v| v.organization_id == Some(organization.id)).collect();
        assert_eq!(organization.visitor_count, visitors.len() as u64);
        assert_eq!(organization.visit_count, visitors.iter().map(|v| v.visit_count).sum::<u64>());
        assert_eq!(organization.first_visit_at, visitors.iter().map(|v| v.first_seen_at).min());
        for contact in &organization.contacts {
            let lead = data.leads.iter().find(|l| l.id == contact.lead_id).unwrap();
            assert_eq!(lead.organization_id, Some(organization.id));
            assert_eq!(lead.company_name.as_deref(), Some(organization.name.as_str()));
        }
    }
    assert!(data.organizations.iter().any(|o| !o.contacts.is_empty()));
}

#[test]
fn ip_networks_are_masked_and_ids_follow_creation_time() {
    let data = generate(&config());
    for profile in &data.visitors {
        let network = profile.ip_network.unwrap();
        assert_eq!(network.prefix_len(), 24);
        assert!(network.to_string().ends_with(".0/24"));
        assert_eq!(profile.id.as_uuid().get_version_num(), 7);
    }
    for lead in &data.leads {
        let (seconds, _) = lead.id.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!(seconds as i64, lead.created_at.unix_micros() / 1_000_000);
    }
}

#[test]
fn lead_stream_yields_the_requested_number_of_valid_standalone_leads() {
    let leads: Vec<_> = lead_stream(&config(), 1_000).collect();
    assert_eq!(leads.len(), 1_000);
    assert!(leads.iter().all(|l| l.visitor_profile_id.is_none() && l.organization_id.is_none()));
    let again: Vec<_> = lead_stream(&config(), 1_000).collect();
    assert_eq!(leads, again);
    let ids: HashSet<_> = leads.iter().map(|l| l.id).collect();
    assert_eq!(ids.len(), 1_000);
    // In capture order across the whole period, as a live store receives them.
    assert!(leads.windows(2).all(|pair| pair[0].created_at < pair[1].created_at), "oldest first");
    let config = config();
    let (first, last) = (leads[0].created_at, leads[999].created_at);
    let span = config.end.unix_micros() - config.start.unix_micros();
    assert!(first.unix_micros() - config.start.unix_micros() < span / 500, "starts at the period's start");
    assert!(config.end.unix_micros() - last.unix_micros() < span / 500, "ends at the period's end");
}
