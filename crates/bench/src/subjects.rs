//! The erasure benchmark: one person's erasure in a tenant holding a million events, against the
//! issue's bound (100 ms). Filler events are copies of generated ones spread over many visitors;
//! each subject has 2 leads, 1 profile, 5 sessions and 40 events linked like collection links them.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};
use steward_domain::subject::{RequestKind, RequestOrigin, Subject, SubjectRequest};
use steward_domain::{Email, EventId, LeadId, SessionId, Timestamp, VisitorId};
use steward_server::subjects::{self, Acting};
use steward_server::{AppState, Clock, Settings, admin};
use steward_store::{Actor, ActorKind, StoreExt, TenantCtx};

const CHUNK: usize = 10_000;
const FILLER_VISITORS: usize = 25_000;

pub async fn erase(data_dir: PathBuf, events: usize, subjects_count: usize) -> anyhow::Result<Value> {
    let settings = Settings { data_dir, ..Settings::default() };
    let store = steward_server::open_store(&settings).await?;
    let now = Timestamp::now();
    let tenant = admin::create_tenant(store.as_ref(), "Bench Oy", now).await?;
    let ctx = TenantCtx::new(tenant.id);
    let template = steward_demo::generate(&steward_demo::DemoConfig::demo(now).scaled(0.02));
    anyhow::ensure!(!template.events.is_empty() && !template.leads.is_empty(), "the generator made no events");

    let started = Instant::now();
    let visitors: Vec<VisitorId> = (0..FILLER_VISITORS).map(|_| VisitorId::new()).collect();
    let mut chunk = Vec::with_capacity(CHUNK);
    for n in 0..events {
        let mut event = template.events[n % template.events.len()].clone();
        event.id = EventId::new();
        event.visitor_profile_id = visitors[n % FILLER_VISITORS];
        event.session_id = SessionId::from_uuid(visitors[n % FILLER_VISITORS].into_uuid());
        chunk.push(event);
        if chunk.len() == CHUNK {
            store.insert(&ctx, &chunk).await?;
            chunk.clear();
        }
    }
    store.insert(&ctx, &chunk).await?;
    let seeded_s = started.elapsed().as_secs_f64();

    let mut people = Vec::new();
    for n in 0..subjects_count {
        people.push(seed_person(&store, &ctx, &template, n).await?);
    }

    let state = AppState::with_clock(store.clone(), settings, Clock::system());
    let acting = Acting { actor: Actor { kind: ActorKind::Operator, id: None }, ip_network: None };
    let mut runs = Vec::new();
    for email in people {
        let subject = Subject { email: Some(email), ..Subject::default() };
        let mut request =
            SubjectRequest::new(RequestKind::Erasure, RequestOrigin::Controller, subject, None, now, Timestamp::now());
        let started = Instant::now();
        subjects::execute(&state, &ctx, &mut request, &acting, false).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let counts = request.report.map(|report| report.counts).unwrap_or_default();
        anyhow::ensure!(counts.get("events") == Some(&40), "the erasure missed events: {counts:?}");
        runs.push(ms);
    }
    let total = store.count_docs(&ctx, steward_store::DocKind::Event).await?;
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "events_in_tenant": total, "seed_seconds": seeded_s, "erasures_ms": runs,
        "median_ms": sorted[sorted.len() / 2], "max_ms": sorted[sorted.len() - 1], "bound_ms": 100,
    }))
}

/// A person with 2 leads (one email), 1 profile, 5 sessions of 8 events and an organization
/// contact entry; returns their email.
async fn seed_person(
    store: &std::sync::Arc<dyn steward_store::Store>,
    ctx: &TenantCtx,
    template: &steward_demo::DemoData,
    n: usize,
) -> anyhow::Result<Email> {
    let visitor = VisitorId::new();
    let mut profile = template.visitors[0].clone();
    profile.id = visitor;
    profile.lead_ids.clear();
    let mut sessions = Vec::new();
    let mut events = Vec::new();
    for visit in 0..5 {
        let mut session = template.sessions[0].clone();
        session.id = SessionId::new();
        session.visitor_profile_id = visitor;
        session.visit_index = visit + 1;
        for position in 0..8 {
            let mut event = template.events[0].clone();
            event.id = EventId::new();
            event.session_id = session.id;
            event.visitor_profile_id = visitor;
            event.position = position + 1;
            events.push(event);
        }
        sessions.push(session);
    }
    let email = Email::parse(&format!("subject.{n}@bench-erasure.example"))?;
    let mut leads = Vec::new();
    for k in 0..2 {
        let mut lead = template.leads[0].clone();
        lead.id = LeadId::new();
        lead.email = (k == 0).then(|| email.clone());
        lead.contact_id = Some(format!("BENCH-{n}-{k}"));
        lead.visitor_profile_id = Some(visitor);
        profile.lead_ids.push(lead.id);
        leads.push(lead);
    }
    let mut organization = template.organizations[n % template.organizations.len()].clone();
    organization.contacts.push(steward_domain::organization::Contact::of(&leads[0]));
    leads[0].organization_id = Some(organization.id);
    store.insert(ctx, std::slice::from_ref(&profile)).await?;
    store.insert(ctx, &sessions).await?;
    store.insert(ctx, &events).await?;
    store.insert(ctx, &leads).await?;
    if store.get::<steward_domain::Organization>(ctx, organization.id.into_uuid()).await?.is_some() {
        store.update(ctx, &organization).await?;
    } else {
        store.insert(ctx, std::slice::from_ref(&organization)).await?;
    }
    Ok(email)
}
