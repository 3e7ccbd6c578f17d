//! The contract every backend passes. Each check takes a fresh, migrated store; backends run
//! them all through [`contract_suite!`](crate::contract_suite), so a new check reaches every
//! backend at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use steward_domain::{
    AccessToken, ApiClient, ClientId, LeadId, Organization, OrganizationId, OrganizationInput, Scopes, SecretHash,
    Site, SiteId, SiteKey, Tenant, Timestamp, lead::Lead, organization::VisitStats,
};
use uuid::Uuid;

use crate::doc::{DocKind, ListQuery, Projection, TallyQuery, Value};
use crate::jobs::{JobRecord, JobStatus};
use crate::{Lookup, Store, StoreError, StoreExt, TenantCtx, VaultError};

/// Generates one `#[tokio::test]` per contract check, each with a store from `$factory`, an
/// async expression yielding `Option<(impl Store, guard)>`: the guard (a temporary folder, a
/// database to drop) lives as long as the check; `None` skips, e.g. without a database URL.
#[macro_export]
macro_rules! contract_suite {
    ($factory:expr) => {
        $crate::contract_suite!(@tests $factory;
            tenants_round_trip,
            sites_belong_to_one_tenant_and_are_found_by_key,
            clients_and_tokens_round_trip,
            a_client_secret_rotates_and_a_client_is_deleted_within_its_tenant,
            records_round_trip_exactly,
            every_kind_of_record_round_trips,
            pages_follow_the_cursor_in_id_order,
            lists_filter_by_time_windows,
            lists_filter_by_projected_columns,
            a_column_takes_nulls_and_values_in_any_order,
            lists_take_any_of_several_values_and_measure_what_matches,
            a_scan_reads_the_whole_window_in_id_order_and_stops_when_asked,
            jobs_are_claimed_once_and_again_when_their_lease_ends,
            update_replaces_and_delete_removes,
            a_batch_of_writes_applies_whole_or_not_at_all,
            an_audited_batch_lands_with_its_entry_or_neither_does,
            a_day_has_one_salt_and_old_salts_are_deleted,
            another_tenant_sees_nothing,
            bodies_are_sealed_and_bound_to_their_row,
            a_destroyed_tenant_key_makes_its_records_unreadable,
            users_are_found_by_email_within_their_tenant_only,
            totp_steps_and_recovery_codes_are_accepted_once,
            failed_sign_ins_count_up_and_sessions_round_trip,
            deletes_take_bounded_batches_of_what_matches_and_spare_the_rest,
            tenant_settings_are_saved,
            requests_holds_and_the_ledger_are_found_by_their_keys,
            erasing_a_tenant_removes_its_rows_from_every_table_and_spares_the_others,
            tallies_count_per_day_group_and_person_and_project_missing_columns_first,
            user_roles_change_and_users_go_with_their_sessions_and_codes,
            the_last_owner_is_never_demoted_or_removed,
            a_tenants_last_sweep_is_kept_and_a_later_one_wins,
        );
    };
    (@tests $factory:expr; $($name:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                match $factory.await {
                    Some((store, _guard)) => $crate::contract::$name(&store).await,
                    None => eprintln!("skipped: no database for this backend"),
                }
            }
        )*
    };
}

pub async fn tenant(store: &dyn Store, name: &str) -> TenantCtx {
    let tenant = Tenant::new(name, Timestamp::now()).expect("valid tenant");
    store.create_tenant(&tenant).await.expect("create tenant");
    TenantCtx::new(tenant.id)
}

/// A lead with most fields set, numbered so that values differ.
pub fn lead(n: u32) -> Lead {
    let input: steward_domain::LeadInput = serde_json::from_value(json!({
        "contact_id": format!("crm-{n}"),
        "first_name": "Aino",
        "last_name": format!("Korhonen {n}"),
        "email": format!("aino.{n}@example.fi"),
        "phone": "+358401234567",
        "bot": {"id": "bot-1", "name": "Hinnasto", "type": "chat"},
        "answers": [{"question": "Budjetti?", "answer": "10 000 €, \"ehkä\"\nenemmän", "answered_at": "2026-11-01T10:00:00Z"}],
        "score": n % 101,
        "tags": ["b2b"],
        "custom_fields": {"koko": "", "toimiala": "retail"},
        "first_touch": {"landing_url": "https://example.fi/?utm_source=google", "utm": {"source": "google"}, "occurred_at": "2026-11-01T09:00:00Z"},
        "location": {"country_code": "FI", "city": "Espoo"},
        "ip_address": "198.51.100.77",
        "consent": {"marketing": true, "captured_at": "2026-11-01T10:00:00Z", "source": "form"},
    }))
    .expect("lead input");
    let now = Timestamp::now();
    input.validate(LeadId::new(), now, now).expect("valid lead")
}

pub fn organization(name: &str) -> Organization {
    let input: OrganizationInput = serde_json::from_value(json!({
        "name": name,
        "domain": "example.fi",
        "business_id": "0112038-9",
        "address": {"city": "Helsinki", "country_code": "FI"},
    }))
    .expect("organization input");
    let now = Timestamp::now();
    input.validate(OrganizationId::new(), VisitStats::default(), now, now).expect("valid organization")
}

pub async fn tenants_round_trip(store: &dyn Store) {
    let tenant = Tenant::new("Acme Oy", Timestamp::now()).unwrap();
    store.create_tenant(&tenant).await.unwrap();
    assert_eq!(store.get_tenant(tenant.id).await.unwrap(), Some(tenant.clone()));
    assert!(store.list_tenants().await.unwrap().contains(&tenant));
    assert_eq!(store.get_tenant(steward_domain::TenantId::new()).await.unwrap(), None);
}

pub async fn sites_belong_to_one_tenant_and_are_found_by_key(store: &dyn Store) {
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    let site = Site {
        id: SiteId::new(),
        tenant_id: a.tenant_id(),
        domain: steward_domain::tenant::Domain::parse("www.example.fi").unwrap(),
        site_key: SiteKey::from_random(*Uuid::now_v7().as_bytes()),
        created_at: Timestamp::now(),
        collection: steward_domain::tenant::CollectionSettings { cookieless: true, honour_gpc: false },
    };
    store.add_site(&a, &site).await.unwrap();
    assert_eq!(store.list_sites(&a).await.unwrap(), vec![site.clone()]);
    assert!(store.list_sites(&b).await.unwrap().is_empty());
    assert_eq!(store.find_site_by_key(&site.site_key).await.unwrap(), Some(site.clone()));

    let same_domain = Site { id: SiteId::new(), site_key: SiteKey::from_random([1; 16]), ..site.clone() };
    let conflict = store.add_site(&a, &same_domain).await.unwrap_err();
    assert!(matches!(conflict, StoreError::Conflict { field: "domain" }), "{conflict:?}");
    // Another tenant may run the same domain (e.g. after a switch of provider).
    let other = Site { id: SiteId::new(), tenant_id: b.tenant_id(), site_key: SiteKey::from_random([2; 16]), ..site };
    store.add_site(&b, &other).await.unwrap();
}

pub async fn clients_and_tokens_round_trip(store: &dyn Store) {
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    let client = ApiClient {
        id: ClientId::new(),
        tenant_id: a.tenant_id(),
        name: "CRM sync".into(),
        secret_hash: SecretHash([7; 32]),
        scopes: Scopes::parse("leads:read export").unwrap(),
        created_at: Timestamp::now(),
    };
    store.create_client(&a, &client).await.unwrap();
    assert_eq!(store.find_client(client.id).await.unwrap(), Some(client.clone()));
    assert_eq!(store.list_clients(&a).await.unwrap(), vec![client.clone()]);
    assert!(store.list_clients(&b).await.unwrap().is_empty());

    let now = Timestamp::now();
    let token = AccessToken {
        token_hash: SecretHash([9; 32]),
        client_id: client.id,
        tenant_id: a.tenant_id(),
        scopes: client.scopes.clone(),
        issued_at: now,
        expires_at: now.checked_add(time::Duration::hours(1)).unwrap(),
    };
    store.store_token(&token).await.unwrap();
    assert_eq!(store.find_token(&token.token_hash).await.unwrap(), Some(token));
    assert_eq!(store.find_token(&SecretHash([8; 32])).await.unwrap(), None);
}

pub async fn a_client_secret_rotates_and_a_client_is_deleted_within_its_tenant(store: &dyn Store) {
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    let client = |n: u8| ApiClient {
        id: ClientId::new(),
        tenant_id: a.tenant_id(),
        name: format!("client {n}"),
        secret_hash: SecretHash([n; 32]),
        scopes: Scopes::parse("leads:read").unwrap(),
        created_at: Timestamp::now(),
    };
    let (first, second) = (client(1), client(2));
    store.create_client(&a, &first).await.unwrap();
    store.create_client(&a, &second).await.unwrap();
    let now = Timestamp::now();
    let token = |n: u8, client: &ApiClient| AccessToken {
        token_hash: SecretHash([n; 32]),
        client_id: client.id,
        tenant_id: a.tenant_id(),
        scopes: client.scopes.clone(),
        issued_at: now,
        expires_at: now.checked_add(time::Duration::hours(1)).unwrap(),
    };
    for record in [token(11, &first), token(12, &first), token(21, &second)] {
        store.store_token(&record).await.unwrap();
    }

    // Another tenant can neither rotate nor delete the client.
    assert_eq!(store.rotate_client_secret(&b, first.id, &SecretHash([3; 32]), true).await.unwrap(), None);
    assert_eq!(store.delete_client(&b, first.id).await.unwrap(), None);
    assert_eq!(store.find_client(first.id).await.unwrap(), Some(first.clone()));
    assert!(store.find_token(&SecretHash([11; 32])).await.unwrap().is_some());

    // Rotation keeps the tokens unless asked to revoke them.
    assert_eq!(store.rotate_client_secret(&a, first.id, &SecretHash([3; 32]), false).await.unwrap(), Some(0));
    let rotated = store.find_client(first.id).await.unwrap().unwrap();
    assert_eq!(rotated, ApiClient { secret_hash: SecretHash([3; 32]), ..first.clone() });
    assert!(store.find_token(&SecretHash([11; 32])).await.unwrap().is_some());
    assert_eq!(store.rotate_client_secret(&a, first.id, &SecretHash([4; 32]), true).await.unwrap(), Some(2));
    assert_eq!(store.find_client(first.id).await.unwrap().unwrap().secret_hash, SecretHash([4; 32]));
    assert_eq!(store.find_token(&SecretHash([11; 32])).await.unwrap(), None);
    assert_eq!(store.find_token(&SecretHash([12; 32])).await.unwrap(), None);
    assert!(store.find_token(&SecretHash([21; 32])).await.unwrap().is_some(), "another client's token stays");
    assert_eq!(store.rotate_client_secret(&a, ClientId::new(), &SecretHash([5; 32]), false).await.unwrap(), None);

    // Deleting a client takes its tokens with it and leaves the other client alone.
    assert_eq!(store.delete_client(&a, second.id).await.unwrap(), Some(1));
    assert_eq!(store.find_client(second.id).await.unwrap(), None);
    assert_eq!(store.find_token(&SecretHash([21; 32])).await.unwrap(), None);
    assert_eq!(store.delete_client(&a, second.id).await.unwrap(), None);
    assert_eq!(store.list_clients(&a).await.unwrap().len(), 1);
}

pub async fn records_round_trip_exactly(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let lead = lead(1);
    store.insert(&ctx, std::slice::from_ref(&lead)).await.unwrap();
    assert_eq!(store.get::<Lead>(&ctx, lead.id.into_uuid()).await.unwrap(), Some(lead.clone()));

    let organization = organization("Esimerkki Oy");
    store.insert(&ctx, std::slice::from_ref(&organization)).await.unwrap();
    let back: Option<Organization> = store.get(&ctx, organization.id.into_uuid()).await.unwrap();
    assert_eq!(back, Some(organization));
    assert_eq!(store.count::<Lead>(&ctx).await.unwrap(), 1);
}

/// A small demo tenant: organizations, visitors, sessions, events and leads, all read back as stored.
pub async fn every_kind_of_record_round_trips(store: &dyn Store) {
    use steward_domain::{Event, Session, VisitorProfile};
    let ctx = tenant(store, "A").await;
    let end = Timestamp::parse("2026-11-22T00:00:00Z").unwrap();
    let data = steward_demo::generate(&steward_demo::DemoConfig::demo(end).scaled(0.01));
    store.insert(&ctx, &data.organizations).await.unwrap();
    store.insert(&ctx, &data.visitors).await.unwrap();
    store.insert(&ctx, &data.sessions).await.unwrap();
    store.insert(&ctx, &data.events).await.unwrap();
    store.insert(&ctx, &data.leads).await.unwrap();

    async fn all<R: crate::Record + Clone>(
        store: &dyn Store,
        ctx: &TenantCtx,
        equals: Vec<(&'static str, Value)>,
    ) -> Vec<R> {
        let mut query = ListQuery { limit: crate::doc::MAX_PAGE, equals, ..ListQuery::default() };
        let mut found = Vec::new();
        loop {
            let page: Vec<R> = store.list(ctx, &query).await.unwrap();
            let Some(last) = page.last() else { break };
            query.after = Some(last.key());
            found.extend(page);
        }
        found
    }
    let sorted = |mut records: Vec<Uuid>| {
        records.sort();
        records
    };
    let organizations: Vec<Organization> = all(store, &ctx, vec![]).await;
    assert_eq!(organizations.len(), data.organizations.len());
    for organization in &data.organizations {
        assert!(organizations.contains(organization));
    }
    let visitors: Vec<VisitorProfile> = all(store, &ctx, vec![]).await;
    assert_eq!(
        sorted(visitors.iter().map(|v| v.id.into_uuid()).collect()),
        sorted(data.visitors.iter().map(|v| v.id.into_uuid()).collect())
    );
    let sessions: Vec<Session> = all(store, &ctx, vec![]).await;
    assert_eq!(sessions.len(), data.sessions.len());
    let leads: Vec<Lead> = all(store, &ctx, vec![]).await;
    assert_eq!(leads.len(), data.leads.len());

    // A visitor's journey: its sessions, and each session's events in position order.
    let visitor = data.visitors.iter().max_by_key(|v| v.visit_count).unwrap();
    assert_eq!(store.get::<VisitorProfile>(&ctx, visitor.id.into_uuid()).await.unwrap().as_ref(), Some(visitor));
    let journey: Vec<Session> = all(store, &ctx, vec![("visitor_profile_id", visitor.id.into_uuid().into())]).await;
    assert_eq!(journey.len() as u64, visitor.visit_count);
    for session in &journey {
        assert!(data.sessions.contains(session));
        let mut events: Vec<Event> = all(store, &ctx, vec![("session_id", session.id.into_uuid().into())]).await;
        events.sort_by_key(|e| e.position);
        let expected: Vec<&Event> = data.events.iter().filter(|e| e.session_id == session.id).collect();
        assert_eq!(events.iter().collect::<Vec<_>>(), expected);
    }
    for kind in [DocKind::Organization, DocKind::VisitorProfile, DocKind::Session, DocKind::Event, DocKind::Lead] {
        let expected = match kind {
            DocKind::Organization => data.organizations.len(),
            DocKind::VisitorProfile => data.visitors.len(),
            DocKind::Session => data.sessions.len(),
            DocKind::Event => data.events.len(),
            DocKind::Lead => data.leads.len(),
            DocKind::SubjectRequest | DocKind::LegalHold | DocKind::ErasureEntry | DocKind::SwitchingRequest => 0,
        };
        assert_eq!(store.count_docs(&ctx, kind).await.unwrap(), expected as u64, "{kind:?}");
    }
}

pub async fn pages_follow_the_cursor_in_id_order(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let leads: Vec<Lead> = (0..250).map(lead).collect();
    store.insert(&ctx, &leads).await.unwrap();
    let mut seen = Vec::new();
    let mut query = ListQuery { limit: 100, ..ListQuery::default() };
    loop {
        let page: Vec<Lead> = store.list(&ctx, &query).await.unwrap();
        if page.is_empty() {
            break;
        }
        query.after = page.last().map(|lead| lead.id.into_uuid());
        seen.extend(page.into_iter().map(|lead| lead.id));
    }
    let expected: Vec<LeadId> = leads.iter().map(|lead| lead.id).collect();
    assert_eq!(seen, expected, "every lead once, in id order");
}

pub async fn lists_filter_by_time_windows(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let at = |text: &str| Timestamp::parse(text).unwrap();
    let mut leads = Vec::new();
    for (n, day) in ["2026-01-01", "2026-02-01", "2026-03-01"].iter().enumerate() {
        let mut lead = lead(n as u32);
        lead.created_at = at(&format!("{day}T00:00:00Z"));
        lead.updated_at = at(&format!("{day}T12:00:00Z"));
        leads.push(lead);
    }
    store.insert(&ctx, &leads).await.unwrap();
    let ids = |query: ListQuery| async move {
        let found: Vec<Lead> = store.list(&ctx, &query).await.unwrap();
        found.into_iter().map(|lead| lead.id).collect::<Vec<_>>()
    };
    let window = ListQuery {
        created_from: Some(at("2026-02-01T00:00:00Z")),
        created_to: Some(at("2026-03-01T00:00:00Z")),
        ..ListQuery::default()
    };
    assert_eq!(ids(window).await, vec![leads[1].id], "from is inclusive, to exclusive");
    let since = ListQuery { updated_since: Some(at("2026-02-01T12:00:00Z")), ..ListQuery::default() };
    assert_eq!(ids(since).await, vec![leads[1].id, leads[2].id]);
}

pub async fn lists_filter_by_projected_columns(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let leads: Vec<Lead> = (0..5).map(lead).collect();
    store.insert(&ctx, &leads).await.unwrap();
    let email = leads[3].email.clone().unwrap();
    let query = ListQuery {
        equals: vec![store.lookup(&ctx, Lookup::Email, &email.lookup_key()).unwrap()],
        ..ListQuery::default()
    };
    let found: Vec<Lead> = store.list(&ctx, &query).await.unwrap();
    assert_eq!(found, vec![leads[3].clone()]);
    assert!(DocKind::Lead.has_column("email_key"));
}

pub async fn lists_take_any_of_several_values_and_measure_what_matches(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let other = tenant(store, "B").await;
    let leads: Vec<Lead> = (0..6).map(lead).collect();
    store.insert(&ctx, &leads).await.unwrap();
    store.insert(&other, &[lead(9)]).await.unwrap();
    let wanted = vec![leads[1].id.into_uuid().into(), leads[4].id.into_uuid().into(), Uuid::now_v7().into()];
    let query = ListQuery { any_of: Some(("id", wanted)), ..ListQuery::default() };
    let found: Vec<Lead> = store.list(&ctx, &query).await.unwrap();
    assert_eq!(found, vec![leads[1].clone(), leads[4].clone()]);
    let none = ListQuery { any_of: Some(("id", Vec::new())), ..ListQuery::default() };
    assert!(store.list::<Lead>(&ctx, &none).await.unwrap().is_empty());

    let (rows, bytes) = store.measure_docs(&ctx, DocKind::Lead, &ListQuery::default()).await.unwrap();
    assert_eq!(rows, 6, "another tenant's rows are not counted");
    let json: usize = leads.iter().map(|lead| serde_json::to_vec(lead).unwrap().len()).sum();
    let json = json as u64;
    assert!(bytes >= json && bytes <= json + 6 * 64, "sealed bodies weigh about their JSON: {bytes} vs {json}");
    let (rows, _) = store.measure_docs(&ctx, DocKind::Lead, &query).await.unwrap();
    assert_eq!(rows, 2);
    let bad = ListQuery { any_of: Some(("body", Vec::new())), ..ListQuery::default() };
    assert!(store.list::<Lead>(&ctx, &bad).await.is_err(), "only known columns");
}

pub async fn a_scan_reads_the_whole_window_in_id_order_and_stops_when_asked(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let other = tenant(store, "B").await;
    let start = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let leads: Vec<Lead> = (0..2_500)
        .map(|n| {
            let mut lead = lead(n);
            lead.created_at = Timestamp::from_unix_micros(start.unix_micros() + i64::from(n) * 60_000_000).unwrap();
            lead
        })
        .collect();
    store.insert(&ctx, &leads).await.unwrap();
    store
        .insert(&other, &leads[..10].iter().map(|l| Lead { id: LeadId::new(), ..l.clone() }).collect::<Vec<_>>())
        .await
        .unwrap();
    // The window: leads 100 to 2,199 by creation time, across three pages of the scan.
    let window = ListQuery {
        created_from: Some(leads[100].created_at),
        created_to: Some(leads[2_200].created_at),
        after: Some(leads[2_000].id.into_uuid()),
        limit: 5,
        ..ListQuery::default()
    };
    let (sender, mut pages) = tokio::sync::mpsc::channel(1);
    let reading = async {
        let mut sizes = Vec::new();
        let mut ids = Vec::new();
        while let Some(page) = pages.recv().await {
            let page: Vec<crate::Doc> = page;
            sizes.push(page.len());
            ids.extend(page.iter().map(|doc| doc.id));
        }
        (sizes, ids)
    };
    let (scanned, (sizes, ids)) = tokio::join!(store.scan_docs(&ctx, DocKind::Lead, window.clone(), sender), reading);
    scanned.unwrap();
    let mut expected: Vec<Uuid> = leads[100..2_200].iter().map(|l| l.id.into_uuid()).collect();
    expected.sort();
    assert_eq!(ids, expected, "the whole window (cursor and limit aside), in id order, this tenant only");
    assert_eq!(sizes, vec![1_000, 1_000, 100]);
    let keys = store.keys(&ctx).unwrap();
    let (sender, mut pages) = tokio::sync::mpsc::channel(1);
    let first_only = async move {
        let first: Vec<crate::Doc> = pages.recv().await.unwrap();
        crate::records::decode_doc::<Lead>(&ctx, &keys, DocKind::Lead, &first[0]).unwrap()
    };
    let (scanned, first) = tokio::join!(store.scan_docs(&ctx, DocKind::Lead, window, sender), first_only);
    scanned.expect("a reader that stops early is not an error");
    assert_eq!(first.id.into_uuid(), expected[0], "scanned bodies open like listed ones");
}

pub async fn jobs_are_claimed_once_and_again_when_their_lease_ends(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let other = tenant(store, "B").await;
    let t0 = Timestamp::parse("2026-11-23T10:00:00Z").unwrap().unix_micros();
    let at = |seconds: i64| Timestamp::from_unix_micros(t0 + seconds * 1_000_000).unwrap();
    let job = |n: i64| JobRecord {
        tenant_id: ctx.tenant_id(),
        id: Uuid::now_v7(),
        kind: "export".into(),
        status: JobStatus::Queued,
        created_at: at(n),
        attempts: 0,
        data: json!({"n": n}),
    };
    let (first, second) = (job(0), job(1));
    store.create_job(&ctx, &first).await.unwrap();
    store.create_job(&ctx, &second).await.unwrap();
    assert!(store.get_job(&other, first.id).await.unwrap().is_none(), "another tenant's job is invisible");
    assert_eq!(store.get_job(&ctx, first.id).await.unwrap(), Some(first.clone()));

    let mut claimed = store.claim_job("export", "w1", at(10), at(70)).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.status, claimed.attempts), (first.id, JobStatus::Running, 1), "oldest first");
    let taken = store.claim_job("export", "w2", at(10), at(70)).await.unwrap().unwrap();
    assert_eq!(taken.id, second.id);
    assert!(store.claim_job("export", "w3", at(10), at(70)).await.unwrap().is_none(), "each job once");
    assert!(store.claim_job("archive", "w3", at(10), at(70)).await.unwrap().is_none(), "by kind");

    claimed.data = json!({"rows": 5});
    assert!(store.save_job(&claimed, "w1", at(200)).await.unwrap(), "the holder renews its lease");
    // w2 stops renewing: after its lease ends, another worker takes the job over.
    let again = store.claim_job("export", "w3", at(80), at(140)).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (second.id, 2));
    assert!(!store.save_job(&taken, "w2", at(300)).await.unwrap(), "a lost lease saves nothing");

    claimed.status = JobStatus::Succeeded;
    assert!(store.save_job(&claimed, "w1", at(200)).await.unwrap());
    let stored = store.get_job(&ctx, first.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.data), (JobStatus::Succeeded, json!({"rows": 5})));
    let last = store.claim_job("export", "w4", at(1000), at(1060)).await.unwrap().unwrap();
    assert_eq!(last.id, second.id, "finished jobs are never claimed again; abandoned ones are");
}

/// Found on PostgreSQL: a NULL sent untyped fixed a cached statement's parameter as text, and
/// the next lead with a phone failed. Inserts and updates here alternate NULL and a value, often
/// enough that every pooled connection sees both orders.
pub async fn a_column_takes_nulls_and_values_in_any_order(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let mut leads: Vec<Lead> = (0..40).map(lead).collect();
    for (n, lead) in leads.iter_mut().enumerate() {
        if n % 2 == 0 {
            lead.phone = None;
            lead.email = None;
            lead.organization_id = None;
        } else {
            lead.organization_id = None;
            lead.contact_id = None;
        }
        store.insert(&ctx, std::slice::from_ref(lead)).await.unwrap();
    }
    for lead in leads.iter_mut().rev() {
        lead.phone = if lead.phone.is_some() { None } else { steward_domain::Phone::parse("+358401234567").ok() };
        assert!(store.update(&ctx, lead).await.unwrap());
    }
    let stored: Vec<Lead> = store.list(&ctx, &ListQuery::default()).await.unwrap();
    assert_eq!(stored, leads);
    let with_phone =
        ListQuery { equals: vec![store.lookup(&ctx, Lookup::Phone, "+358401234567").unwrap()], ..ListQuery::default() };
    let found: Vec<Lead> = store.list(&ctx, &with_phone).await.unwrap();
    assert_eq!(found.len(), 20);
}

pub async fn update_replaces_and_delete_removes(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let mut lead = lead(1);
    store.insert(&ctx, std::slice::from_ref(&lead)).await.unwrap();
    lead.first_name = Some("Eino".into());
    lead.updated_at = Timestamp::now();
    assert!(store.update(&ctx, &lead).await.unwrap());
    assert_eq!(store.get::<Lead>(&ctx, lead.id.into_uuid()).await.unwrap(), Some(lead.clone()));
    assert!(store.delete::<Lead>(&ctx, lead.id.into_uuid()).await.unwrap());
    assert_eq!(store.get::<Lead>(&ctx, lead.id.into_uuid()).await.unwrap(), None);
    assert!(!store.delete::<Lead>(&ctx, lead.id.into_uuid()).await.unwrap(), "second delete finds nothing");
    assert!(!store.update(&ctx, &lead).await.unwrap(), "update of a deleted row changes nothing");
}

pub async fn a_batch_of_writes_applies_whole_or_not_at_all(store: &dyn Store) {
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    let (keys_a, keys_b) = (store.keys(&a).unwrap(), store.keys(&b).unwrap());
    let mut kept = lead(1);
    let gone = organization("Poistuva Oy");
    store.insert(&a, std::slice::from_ref(&kept)).await.unwrap();
    store.insert(&a, std::slice::from_ref(&gone)).await.unwrap();

    let mut batch = crate::Batch::default();
    let fresh: Vec<Lead> = (2..5).map(lead).collect();
    batch.insert(&a, &keys_a, &fresh[0]).unwrap();
    batch.insert(&a, &keys_a, &fresh[1]).unwrap();
    batch.insert(&b, &keys_b, &fresh[2]).unwrap();
    kept.first_name = Some("Muutettu".into());
    kept.created_at = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
    batch.update(&a, &keys_a, &kept).unwrap();
    batch.delete(&a, DocKind::Organization, gone.id.into_uuid());
    store.write_docs(batch.writes()).await.unwrap();
    assert_eq!(store.get::<Lead>(&a, kept.id.into_uuid()).await.unwrap(), Some(kept.clone()));
    let window =
        ListQuery { created_to: Some(Timestamp::parse("2021-01-01T00:00:00Z").unwrap()), ..ListQuery::default() };
    assert_eq!(store.list::<Lead>(&a, &window).await.unwrap(), vec![kept.clone()], "an update moves created_at too");
    assert_eq!(store.count::<Lead>(&a).await.unwrap(), 3);
    assert_eq!(store.get::<Lead>(&b, fresh[2].id.into_uuid()).await.unwrap(), Some(fresh[2].clone()));
    assert_eq!(store.get::<Organization>(&a, gone.id.into_uuid()).await.unwrap(), None);

    // An update of a row that is not there (here: another tenant's) undoes the whole batch.
    let mut failing = crate::Batch::default();
    let late = lead(5);
    failing.insert(&a, &keys_a, &late).unwrap();
    failing.update(&b, &keys_b, &kept).unwrap();
    let error = store.write_docs(failing.writes()).await.unwrap_err();
    assert!(matches!(error, StoreError::MissingReference { field: "id" }), "{error:?}");
    assert_eq!(store.get::<Lead>(&a, late.id.into_uuid()).await.unwrap(), None, "nothing half-written");
    let mut deleting = crate::Batch::default();
    deleting.insert(&a, &keys_a, &late).unwrap();
    deleting.delete(&a, DocKind::Organization, gone.id.into_uuid());
    assert!(store.write_docs(deleting.writes()).await.is_err());
    assert_eq!(store.count::<Lead>(&a).await.unwrap(), 3);
}

fn draft(action: &str, count: u64) -> crate::AuditDraft {
    crate::AuditDraft {
        at: Timestamp::now(),
        actor: crate::Actor { kind: crate::ActorKind::System, id: None },
        action: action.into(),
        target: crate::Target { kind: "lead".into(), count, ids: Vec::new() },
        detail: json!({"count": count}),
        ip_network: None,
    }
}

pub async fn an_audited_batch_lands_with_its_entry_or_neither_does(store: &dyn Store) {
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    let keys = store.keys(&a).unwrap();
    store.audit(&a, &draft("test.first", 0)).await.unwrap();
    let stray = lead(9);
    store.insert(&b, std::slice::from_ref(&stray)).await.unwrap();

    let mut batch = crate::Batch::default();
    let fresh: Vec<Lead> = (1..4).map(lead).collect();
    for record in &fresh {
        batch.insert(&a, &keys, record).unwrap();
    }
    let drafts = [draft("lead.imported", 3), draft("lead.scored", 3)];
    let entries = store.write_docs_audited(batch.writes(), &a, &drafts).await.unwrap();
    let summary: Vec<(i64, &str)> = entries.iter().map(|e| (e.seq, e.action.as_str())).collect();
    assert_eq!(summary, [(2, "lead.imported"), (3, "lead.scored")]);
    assert_eq!(entries[1].prev_hash, entries[0].hash, "chained in order");
    assert_eq!(store.count::<Lead>(&a).await.unwrap(), 3);

    // A batch that fails (here: it deletes another tenant's row) takes its entry with it.
    let mut failing = crate::Batch::default();
    let late = lead(5);
    failing.insert(&a, &keys, &late).unwrap();
    failing.delete(&a, DocKind::Lead, stray.id.into_uuid());
    let error = store.write_docs_audited(failing.writes(), &a, &[draft("lead.deleted", 2)]).await.unwrap_err();
    assert!(matches!(error, StoreError::MissingReference { field: "id" }), "{error:?}");
    assert_eq!(store.get::<Lead>(&a, late.id.into_uuid()).await.unwrap(), None, "nothing half-written");
    let all = crate::AuditQuery { limit: crate::doc::MAX_PAGE, ..crate::AuditQuery::default() };
    let actions: Vec<String> = store.list_audit(&a, &all, false).await.unwrap().into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["test.first", "lead.imported", "lead.scored"], "no entry for a change that did not happen");

    // Audited batches and plain appends racing each other: every one lands once, in one chain.
    let writer = |n: u32| {
        let keys = keys.clone();
        async move {
            for round in 0..5 {
                let mut batch = crate::Batch::default();
                batch.insert(&a, &keys, &lead(100 * n + round)).unwrap();
                store.write_docs_audited(batch.writes(), &a, &[draft("lead.created", 1)]).await.unwrap();
                store.audit(&a, &draft("test.read", 0)).await.unwrap();
            }
        }
    };
    tokio::join!(writer(1), writer(2), writer(3), writer(4));
    let verification = store.verify_audit(&a).await.unwrap();
    assert!(verification.valid, "{verification:?}");
    assert_eq!(verification.entries, 3 + 4 * 5 * 2);
    assert_eq!(store.count::<Lead>(&a).await.unwrap(), 3 + 4 * 5);
    assert!(store.list_audit(&b, &all, false).await.unwrap().is_empty(), "the other tenant's log is untouched");
}

pub async fn a_day_has_one_salt_and_old_salts_are_deleted(store: &dyn Store) {
    let day = 20_000;
    let first = store.daily_salt(day, [1; 32]).await.unwrap();
    assert_eq!(first, [1; 32]);
    assert_eq!(store.daily_salt(day, [2; 32]).await.unwrap(), [1; 32], "every node gets the day's first salt");
    assert_eq!(store.daily_salt(day + 1, [3; 32]).await.unwrap(), [3; 32]);
    assert_eq!(store.daily_salt(day, [4; 32]).await.unwrap(), [1; 32], "yesterday's salt lives one more day");
    assert_eq!(store.daily_salt(day + 2, [5; 32]).await.unwrap(), [5; 32]);
    assert_eq!(store.daily_salt(day, [6; 32]).await.unwrap(), [6; 32], "a salt two days old is gone for good");
}

pub async fn another_tenant_sees_nothing(store: &dyn Store) {
    let owner = tenant(store, "Owner").await;
    let intruder = tenant(store, "Intruder").await;
    let lead = lead(1);
    let organization = organization("Salainen Oy");
    store.insert(&owner, std::slice::from_ref(&lead)).await.unwrap();
    store.insert(&owner, std::slice::from_ref(&organization)).await.unwrap();
    let id = lead.id.into_uuid();

    assert_eq!(store.get::<Lead>(&intruder, id).await.unwrap(), None);
    assert_eq!(store.get::<Organization>(&intruder, organization.id.into_uuid()).await.unwrap(), None);
    assert!(store.list::<Lead>(&intruder, &ListQuery::default()).await.unwrap().is_empty());
    assert_eq!(store.count::<Lead>(&intruder).await.unwrap(), 0);
    let mut changed = lead.clone();
    changed.first_name = Some("Hijacked".into());
    assert!(!store.update(&intruder, &changed).await.unwrap());
    assert!(!store.delete::<Lead>(&intruder, id).await.unwrap());
    assert!(!store.delete::<Organization>(&intruder, organization.id.into_uuid()).await.unwrap());
    // Inserting a row with a taken id under another tenant must not overwrite the owner's row.
    let _ = store.insert(&intruder, std::slice::from_ref(&changed)).await;
    assert_eq!(store.get::<Lead>(&owner, id).await.unwrap(), Some(lead));
}

pub async fn bodies_are_sealed_and_bound_to_their_row(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let (first, second) = (lead(1), lead(2));
    store.insert(&ctx, &[first.clone(), second.clone()]).await.unwrap();
    let raw = store.get_doc(&ctx, DocKind::Lead, first.id.into_uuid()).await.unwrap().unwrap();
    let email = first.email.as_ref().unwrap().as_str().as_bytes();
    assert!(!raw.body.windows(email.len()).any(|w| w == email), "the body holds the email in clear");
    // A body copied onto another row does not open there.
    let moved = crate::DocRow {
        id: second.id.into_uuid(),
        created_at: second.created_at,
        updated_at: second.updated_at,
        columns: Vec::new(),
        body: raw.body.clone(),
    };
    let columns = {
        let keys = store.keys(&ctx).unwrap();
        crate::Record::projection(&second, &keys)
    };
    assert!(store.update_doc(&ctx, DocKind::Lead, &crate::DocRow { columns, ..moved }).await.unwrap());
    let error = store.get::<Lead>(&ctx, second.id.into_uuid()).await.unwrap_err();
    assert!(matches!(error, StoreError::Key(VaultError::Open)), "{error:?}");
}

pub async fn a_destroyed_tenant_key_makes_its_records_unreadable(store: &dyn Store) {
    let shredded = tenant(store, "Leaving").await;
    let staying = tenant(store, "Staying").await;
    let (gone, kept) = (lead(1), lead(2));
    store.insert(&shredded, std::slice::from_ref(&gone)).await.unwrap();
    store.insert(&staying, std::slice::from_ref(&kept)).await.unwrap();
    store.vault().destroy(shredded.tenant_id()).unwrap();
    let error = store.get::<Lead>(&shredded, gone.id.into_uuid()).await.unwrap_err();
    assert!(matches!(error, StoreError::Key(VaultError::Destroyed(_))), "{error:?}");
    assert!(store.insert(&shredded, &[lead(3)]).await.is_err(), "no new data under a destroyed key");
    assert_eq!(store.get::<Lead>(&staying, kept.id.into_uuid()).await.unwrap(), Some(kept));
}

/// A user of `ctx` with the given address, as the console creates one.
pub async fn user(store: &dyn Store, ctx: &TenantCtx, email: &str) -> crate::UserRecord {
    let user = steward_domain::User {
        id: steward_domain::UserId::new(),
        tenant_id: ctx.tenant_id(),
        email: steward_domain::Email::parse(email).unwrap(),
        role: steward_domain::Role::Analyst,
        mfa_enrolled: false,
        created_at: Timestamp::now(),
    };
    let keys = store.keys(ctx).unwrap();
    let record = crate::users::new_record(ctx, &keys, &user, "$argon2id$v=19$stand-in".into());
    store.users().create_user(ctx, &record).await.unwrap();
    record
}

pub async fn users_are_found_by_email_within_their_tenant_only(store: &dyn Store) {
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    let record = user(store, &a, "Aino@Example.fi").await;
    let users = store.users();
    assert_eq!(users.get_user(&a, record.id).await.unwrap(), Some(record.clone()));
    let keys = store.keys(&a).unwrap();
    let key = crate::users::email_key(&keys, &steward_domain::Email::parse("aino@EXAMPLE.fi").unwrap());
    let found = users.find_user_by_email_key(&a, &key).await.unwrap().expect("found by its address");
    let opened = crate::users::open_user(&a, &keys, &found).unwrap();
    assert_eq!(opened.email.as_str(), "Aino@example.fi");
    assert!(!record.email_sealed.windows(4).any(|w| w == b"Aino"), "the address is sealed");
    assert_eq!(users.get_user(&b, record.id).await.unwrap(), None, "another tenant's user");
    assert_eq!(users.list_users(&a).await.unwrap(), vec![record.clone()]);
    assert!(users.list_users(&b).await.unwrap().is_empty(), "another tenant's users are not listed");
    assert_eq!(users.find_user_by_email_key(&b, &key).await.unwrap(), None);
    let again = user(store, &b, "aino@example.fi").await;
    assert_ne!(again.email_key, record.email_key, "blind-index keys differ per tenant");
    let duplicate = crate::UserRecord { id: steward_domain::UserId::new(), ..record.clone() };
    let error = users.create_user(&a, &duplicate).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { field: "email" }), "{error:?}");
    let slug = store.get_tenant(a.tenant_id()).await.unwrap().unwrap().slug;
    assert!(users.tenants_by_slug(slug.as_str()).await.unwrap().iter().any(|t| t.id == a.tenant_id()));
    assert!(users.tenants_by_slug("no-such-tenant").await.unwrap().is_empty());
}

pub async fn totp_steps_and_recovery_codes_are_accepted_once(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let record = user(store, &ctx, "aino@example.fi").await;
    let users = store.users();
    assert!(!users.use_totp_step(&ctx, record.id, 5).await.unwrap(), "not enrolled yet");
    let now = Timestamp::now();
    assert!(!users.finish_totp_enrolment(&ctx, record.id, b"sealed secret", now, 10, &[]).await.unwrap(), "no secret");
    assert!(users.start_totp_enrolment(&ctx, record.id, b"first secret", false).await.unwrap());
    assert!(!users.start_totp_enrolment(&ctx, record.id, b"other tab", false).await.unwrap(), "one pending");
    assert!(users.start_totp_enrolment(&ctx, record.id, b"sealed secret", true).await.unwrap(), "asked anew");
    let codes = vec![vec![1u8; 32], vec![2u8; 32]];
    let stale = users.finish_totp_enrolment(&ctx, record.id, b"first secret", now, 10, &codes).await.unwrap();
    assert!(!stale, "a code checked against a replaced secret confirms nothing");
    assert!(users.finish_totp_enrolment(&ctx, record.id, b"sealed secret", now, 10, &codes).await.unwrap());
    assert!(!users.start_totp_enrolment(&ctx, record.id, b"another", true).await.unwrap(), "enrolled: no overwrite");
    assert!(!users.finish_totp_enrolment(&ctx, record.id, b"sealed secret", now, 11, &codes).await.unwrap());
    let stored = users.get_user(&ctx, record.id).await.unwrap().unwrap();
    assert_eq!(stored.totp_secret.as_deref(), Some(&b"sealed secret"[..]));
    assert_eq!(stored.totp_last_step, Some(10));

    assert!(!users.use_totp_step(&ctx, record.id, 10).await.unwrap(), "the enrolment code's step is used");
    assert!(users.use_totp_step(&ctx, record.id, 11).await.unwrap());
    assert!(!users.use_totp_step(&ctx, record.id, 11).await.unwrap(), "a replay");
    assert!(!users.use_totp_step(&ctx, record.id, 10).await.unwrap(), "an older step");

    assert_eq!(users.count_recovery_codes(&ctx, record.id).await.unwrap(), 2);
    assert!(users.use_recovery_code(&ctx, record.id, &[1; 32]).await.unwrap());
    assert!(!users.use_recovery_code(&ctx, record.id, &[1; 32]).await.unwrap(), "used up");
    assert!(!users.use_recovery_code(&ctx, record.id, &[9; 32]).await.unwrap(), "never issued");
    let other = tenant(store, "B").await;
    assert!(!users.use_recovery_code(&other, record.id, &[2; 32]).await.unwrap(), "another tenant");
    assert_eq!(users.count_recovery_codes(&ctx, record.id).await.unwrap(), 1);
}

pub async fn failed_sign_ins_count_up_and_sessions_round_trip(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let record = user(store, &ctx, "aino@example.fi").await;
    let users = store.users();
    let schedule = crate::LockSchedule { free: 3, first_seconds: 60, max_seconds: 150 };
    let second = Timestamp::from_unix_micros(Timestamp::now().unix_micros() / 1_000_000 * 1_000_000).unwrap();
    let later = |seconds: i64| second.checked_add(time::Duration::seconds(seconds)).unwrap();
    let (at_ctx, id) = (&ctx, record.id);
    let reserve = move |at: Timestamp| users.reserve_sign_in(at_ctx, id, at, schedule);
    let granted = |attempt, locked_until| crate::Reservation::Granted { attempt, locked_until };
    assert_eq!(reserve(second).await.unwrap(), granted(1, None));
    assert_eq!(reserve(second).await.unwrap(), granted(2, None));
    assert_eq!(reserve(second).await.unwrap(), granted(3, Some(later(60))), "the last free attempt locks");
    assert_eq!(reserve(later(59)).await.unwrap(), crate::Reservation::Locked { until: later(60) });
    assert_eq!(reserve(later(60)).await.unwrap(), granted(4, Some(later(180))), "one more, locked twice as long");
    assert_eq!(reserve(later(180)).await.unwrap(), granted(5, Some(later(330))), "at most max_seconds");
    assert_eq!(schedule.lock_seconds(5), Some(150));
    assert!(!users.clear_sign_in(&ctx, record.id, 4).await.unwrap(), "a later attempt was reserved");
    assert!(users.clear_sign_in(&ctx, record.id, 5).await.unwrap());
    assert_eq!(reserve(second).await.unwrap(), granted(1, None), "cleared");
    let other = tenant(store, "B").await;
    let elsewhere = users.reserve_sign_in(&other, record.id, second, schedule).await.unwrap();
    assert_eq!(elsewhere, crate::Reservation::Unknown, "another tenant's user");
    let until = Timestamp::from_unix_micros(Timestamp::now().unix_micros() / 1_000_000 * 1_000_000).unwrap();
    users.set_sign_in_lock(&ctx, record.id, 2, Some(until)).await.unwrap();
    let stored = users.get_user(&ctx, record.id).await.unwrap().unwrap();
    assert_eq!((stored.failed_attempts, stored.locked_until), (2, Some(until)));
    users.set_sign_in_lock(&ctx, record.id, 0, None).await.unwrap();
    let stored = users.get_user(&ctx, record.id).await.unwrap().unwrap();
    assert_eq!((stored.failed_attempts, stored.locked_until), (0, None));

    let now = Timestamp::from_unix_micros(Timestamp::now().unix_micros() / 1_000_000 * 1_000_000).unwrap();
    let session = crate::ConsoleSession {
        token_hash: SecretHash([4; 32]),
        tenant_id: ctx.tenant_id(),
        user_id: record.id,
        mfa_passed: true,
        created_at: now,
        expires_at: now.checked_add(time::Duration::hours(1)).unwrap(),
    };
    users.create_console_session(&session).await.unwrap();
    assert_eq!(users.find_console_session(&SecretHash([4; 32])).await.unwrap(), Some(session));
    assert_eq!(users.find_console_session(&SecretHash([5; 32])).await.unwrap(), None);
    assert!(users.delete_console_session(&SecretHash([4; 32])).await.unwrap());
    assert!(!users.delete_console_session(&SecretHash([4; 32])).await.unwrap());
    assert_eq!(users.find_console_session(&SecretHash([4; 32])).await.unwrap(), None);
}

pub async fn deletes_take_bounded_batches_of_what_matches_and_spare_the_rest(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let other = tenant(store, "B").await;
    let at = |text: &str| Timestamp::parse(text).unwrap();
    let mut leads = Vec::new();
    for n in 0..7 {
        let mut lead = lead(n);
        lead.updated_at = at(if n < 5 { "2026-01-01T00:00:00Z" } else { "2026-06-01T00:00:00Z" });
        leads.push(lead);
    }
    store.insert(&ctx, &leads).await.unwrap();
    store.insert(&other, &leads[..1]).await.unwrap();
    let held = Value::Uuid(leads[0].id.into_uuid());
    let expired = ListQuery {
        limit: 2,
        updated_before: Some(at("2026-03-01T00:00:00Z")),
        none_of: Some(("id", vec![held])),
        ..ListQuery::default()
    };
    let mut batches = Vec::new();
    loop {
        let deleted = store.delete_matching(&ctx, DocKind::Lead, &expired).await.unwrap();
        batches.push(deleted);
        if deleted < 2 {
            break;
        }
    }
    assert_eq!(batches, vec![2, 2, 0], "four expired leads, two per batch; the held one stays");
    let left: Vec<Lead> = store.list(&ctx, &ListQuery::default()).await.unwrap();
    let left: Vec<LeadId> = left.into_iter().map(|lead| lead.id).collect();
    assert_eq!(left, vec![leads[0].id, leads[5].id, leads[6].id]);
    assert_eq!(store.count_docs(&other, DocKind::Lead).await.unwrap(), 1, "another tenant's rows are not touched");

    let mut linked = lead(9);
    linked.visitor_profile_id = Some(steward_domain::VisitorId::new());
    store.insert(&ctx, std::slice::from_ref(&linked)).await.unwrap();
    let unlinked_only = ListQuery {
        limit: 100,
        none_of: Some(("visitor_profile_id", vec![Value::Uuid(linked.visitor_profile_id.unwrap().into_uuid())])),
        ..ListQuery::default()
    };
    assert_eq!(store.delete_matching(&ctx, DocKind::Lead, &unlinked_only).await.unwrap(), 3, "a NULL is none of them");
    let left: Vec<Lead> = store.list(&ctx, &ListQuery::default()).await.unwrap();
    assert_eq!(left, vec![linked]);
}

pub async fn tenant_settings_are_saved(store: &dyn Store) {
    let ctx = tenant(store, "A").await;
    let mut tenant = store.get_tenant(ctx.tenant_id()).await.unwrap().unwrap();
    tenant.settings.retention.days.insert("journeys".into(), Some(30));
    tenant.settings.retention.days.insert("leads".into(), None);
    assert!(store.update_tenant(&tenant).await.unwrap());
    assert_eq!(store.get_tenant(ctx.tenant_id()).await.unwrap().unwrap(), tenant);
    let stranger = Tenant::new("never stored", Timestamp::now()).unwrap();
    assert!(!store.update_tenant(&stranger).await.unwrap());
}

pub async fn requests_holds_and_the_ledger_are_found_by_their_keys(store: &dyn Store) {
    use steward_domain::subject::{
        HoldScope, LedgerEntry, LedgerId, LedgerReason, LegalHold, RequestKind, RequestOrigin, Subject, SubjectRequest,
    };
    let ctx = tenant(store, "A").await;
    let keys = store.keys(&ctx).unwrap();
    let now = Timestamp::now();
    let email = steward_domain::Email::parse("anna@example.com").unwrap();
    let key = Lookup::Email.key(&keys, &email.lookup_key());
    let subject = Subject { email: Some(email), ..Subject::default() };
    let mut request = SubjectRequest::new(RequestKind::Erasure, RequestOrigin::Controller, subject, None, now, now);
    request.subject_keys.email = Some(crate::records::to_hex(&key));
    let hold = LegalHold {
        id: steward_domain::subject::HoldId::new(),
        scope: HoldScope::Lead,
        record_id: Some(Uuid::now_v7()),
        reason: "case 14".into(),
        created_at: now,
        created_by: "user".into(),
    };
    let entry = LedgerEntry {
        id: LedgerId::new(),
        key: crate::records::to_hex(&key),
        reason: LedgerReason::Erasure,
        request_id: request.id,
        created_at: now,
    };
    store.insert(&ctx, std::slice::from_ref(&request)).await.unwrap();
    store.insert(&ctx, std::slice::from_ref(&hold)).await.unwrap();
    store.insert(&ctx, std::slice::from_ref(&entry)).await.unwrap();
    let by_email = ListQuery { equals: vec![("email_key", Value::Bytes(key.clone()))], ..ListQuery::default() };
    let found: Vec<SubjectRequest> = store.list(&ctx, &by_email).await.unwrap();
    assert_eq!(found, vec![request]);
    let by_key = ListQuery { equals: vec![("subject_key", Value::Bytes(key))], ..ListQuery::default() };
    let ledger: Vec<LedgerEntry> = store.list(&ctx, &by_key).await.unwrap();
    assert_eq!(ledger, vec![entry]);
    let by_record =
        ListQuery { equals: vec![("record_id", Value::Uuid(hold.record_id.unwrap()))], ..ListQuery::default() };
    let holds: Vec<LegalHold> = store.list(&ctx, &by_record).await.unwrap();
    assert_eq!(holds, vec![hold]);
}

/// Puts one row of `ctx` in every table there is: records, a site, a client with a token, a job,
/// an audit entry, a user with a recovery code and a console session, a switching request.
async fn fill_every_table(store: &dyn Store, ctx: &TenantCtx, seed: u8) {
    use steward_domain::switching::{SwitchingAction, SwitchingPeriods, SwitchingRequest};
    let now = Timestamp::now();
    store.insert(ctx, &[lead(u32::from(seed))]).await.unwrap();
    store.insert(ctx, &[organization("Oy")]).await.unwrap();
    let site = Site {
        id: SiteId::new(),
        tenant_id: ctx.tenant_id(),
        domain: steward_domain::tenant::Domain::parse("www.example.fi").unwrap(),
        site_key: SiteKey::from_random([seed; 16]),
        created_at: now,
        collection: steward_domain::tenant::CollectionSettings::default(),
    };
    store.add_site(ctx, &site).await.unwrap();
    let client = ApiClient {
        id: ClientId::new(),
        tenant_id: ctx.tenant_id(),
        name: "CRM".into(),
        secret_hash: SecretHash([seed; 32]),
        scopes: Scopes::parse("admin").unwrap(),
        created_at: now,
    };
    store.create_client(ctx, &client).await.unwrap();
    let token = AccessToken {
        token_hash: SecretHash([seed; 32]),
        client_id: client.id,
        tenant_id: ctx.tenant_id(),
        scopes: client.scopes.clone(),
        issued_at: now,
        expires_at: now.checked_add(time::Duration::hours(1)).unwrap(),
    };
    store.store_token(&token).await.unwrap();
    let job = JobRecord {
        tenant_id: ctx.tenant_id(),
        id: Uuid::now_v7(),
        kind: "export".into(),
        status: JobStatus::Queued,
        created_at: now,
        attempts: 0,
        data: json!({}),
    };
    store.create_job(ctx, &job).await.unwrap();
    let draft = crate::AuditDraft {
        at: now,
        actor: crate::Actor { kind: crate::ActorKind::Operator, id: None },
        action: "test.filled".into(),
        target: crate::Target { kind: "tenant".into(), count: 1, ids: Vec::new() },
        detail: json!({}),
        ip_network: None,
    };
    store.audit(ctx, &draft).await.unwrap();
    let record = user(store, ctx, "aino@example.fi").await;
    let users = store.users();
    users.start_totp_enrolment(ctx, record.id, b"sealed", false).await.unwrap();
    users.finish_totp_enrolment(ctx, record.id, b"sealed", now, 1, &[vec![seed; 32]]).await.unwrap();
    let session = crate::ConsoleSession {
        token_hash: SecretHash([seed; 32]),
        tenant_id: ctx.tenant_id(),
        user_id: record.id,
        mfa_passed: true,
        created_at: now,
        expires_at: now.checked_add(time::Duration::hours(1)).unwrap(),
    };
    users.create_console_session(&session).await.unwrap();
    let request = SwitchingRequest::new(SwitchingAction::Erase, None, now, None, SwitchingPeriods::default(), now);
    store.insert(ctx, &[request]).await.unwrap();
    let sweep = crate::SweepRecord { tenant_id: ctx.tenant_id(), finished_at: now, failed: false, report: json!({}) };
    store.save_sweep(&sweep).await.unwrap();
}

pub async fn erasing_a_tenant_removes_its_rows_from_every_table_and_spares_the_others(store: &dyn Store) {
    let leaving = tenant(store, "Leaving").await;
    let staying = tenant(store, "Staying").await;
    fill_every_table(store, &leaving, 1).await;
    fill_every_table(store, &staying, 2).await;

    let counts = store.erase_tenant(&leaving).await.unwrap();
    for table in [
        "leads",
        "organizations",
        "sites",
        "api_clients",
        "access_tokens",
        "jobs",
        "audit_log",
        "users",
        "user_recovery_codes",
        "console_sessions",
        "switching_requests",
        "retention_sweeps",
        "tenants",
    ] {
        assert_eq!(counts.get(table), Some(&1), "{table}: {counts:?}");
    }
    for table in ["visitor_profiles", "sessions", "events", "subject_requests", "legal_holds", "erasure_ledger"] {
        assert_eq!(counts.get(table), Some(&0), "{table} is walked too: {counts:?}");
    }
    assert_eq!(store.get_tenant(leaving.tenant_id()).await.unwrap(), None);
    for kind in DocKind::ALL {
        assert_eq!(store.count_docs(&leaving, kind).await.unwrap(), 0, "{kind:?}");
    }
    assert!(store.list_clients(&leaving).await.unwrap().is_empty());
    assert!(store.find_token(&SecretHash([1; 32])).await.unwrap().is_none());
    let all = crate::AuditQuery { limit: 100, ..crate::AuditQuery::default() };
    assert!(store.list_audit(&leaving, &all, false).await.unwrap().is_empty());
    assert_eq!(store.list_audit(&staying, &all, false).await.unwrap().len(), 1);

    // The other tenant keeps everything.
    assert!(store.get_tenant(staying.tenant_id()).await.unwrap().is_some());
    assert_eq!(store.count::<Lead>(&staying).await.unwrap(), 1);
    assert!(store.find_token(&SecretHash([2; 32])).await.unwrap().is_some());
    assert_eq!(store.list_sites(&staying).await.unwrap().len(), 1);
    assert_eq!(store.verify_audit(&staying).await.unwrap().entries, 1);
    let again = store.erase_tenant(&leaving).await.unwrap();
    assert!(again.values().all(|n| *n == 0), "erasing twice finds nothing: {again:?}");
}

pub async fn tallies_count_per_day_group_and_person_and_project_missing_columns_first(store: &dyn Store) {
    use std::collections::BTreeMap;
    use steward_domain::Session;
    let ctx = tenant(store, "A").await;
    let other = tenant(store, "B").await;
    let end = Timestamp::parse("2026-11-22T00:00:00Z").unwrap();
    let data = steward_demo::generate(&steward_demo::DemoConfig::demo(end).scaled(0.01));
    store.insert(&ctx, &data.sessions).await.unwrap();
    store.insert(&ctx, &data.leads).await.unwrap();
    let from = end.checked_sub(time::Duration::days(60)).unwrap();
    let window = ListQuery { created_from: Some(from), created_to: Some(end), ..ListQuery::default() };
    let day = |at: Timestamp| at.unix_micros().div_euclid(86_400_000_000);
    let in_window = |at: Timestamp| from <= at && at < end;

    let mut visits: BTreeMap<(i64, Uuid), (u64, u64)> = BTreeMap::new();
    for session in data.sessions.iter().filter(|s| in_window(s.started_at)) {
        let entry = visits.entry((day(session.started_at), session.visitor_profile_id.into_uuid())).or_default();
        entry.0 += 1;
        entry.1 += u64::from(session.converted);
    }
    assert!(visits.values().any(|(_, converted)| *converted > 0), "some visits converted");
    let by_visitor =
        TallyQuery { window: window.clone(), group: None, person: "visitor_profile_id", sum: Some("converted") };
    let tallied = |rows: Vec<crate::TallyRow>| -> BTreeMap<(i64, Uuid), (u64, u64)> {
        rows.into_iter()
            .map(|row| {
                assert_eq!(row.group, None);
                ((row.day, row.person), (row.rows, row.sum))
            })
            .collect()
    };
    let rows = store.tally::<Session>(&ctx, &by_visitor, &["converted"]).await.unwrap();
    assert_eq!(tallied(rows), visits);
    let rows = store.tally::<Session>(&other, &by_visitor, &["converted"]).await.unwrap();
    assert!(rows.is_empty(), "another tenant's rows are not counted");

    let mut leads: BTreeMap<(i64, Option<String>, Uuid), u64> = BTreeMap::new();
    for lead in data.leads.iter().filter(|l| in_window(l.created_at)) {
        let person = lead.visitor_profile_id.map_or(lead.id.into_uuid(), |v| v.into_uuid());
        let referrer = steward_domain::report::lead_referrer_type(lead).to_string();
        *leads.entry((day(lead.created_at), Some(referrer), person)).or_default() += 1;
    }
    assert!(leads.keys().any(|(_, _, person)| data.leads.iter().any(|l| l.id.into_uuid() == *person)));
    let by_referrer =
        TallyQuery { window: window.clone(), group: Some("referrer_type"), person: "visitor_profile_id", sum: None };
    let rows = store.tally::<Lead>(&ctx, &by_referrer, &["referrer_type"]).await.unwrap();
    let found: BTreeMap<_, _> = rows.into_iter().map(|row| ((row.day, row.group, row.person), row.rows)).collect();
    assert_eq!(found, leads);

    // A visit stored before `converted` existed holds NULL until a tally needs it.
    let session = data.sessions.iter().find(|s| in_window(s.started_at) && s.converted).unwrap();
    let id = session.id.into_uuid();
    let doc = store.get_doc(&ctx, DocKind::Session, id).await.unwrap().unwrap();
    let visitor = Value::Uuid(session.visitor_profile_id.into_uuid());
    let unset = Projection { id, body: doc.body.clone(), columns: vec![visitor.clone(), Value::Null] };
    assert_eq!(store.project_docs(&ctx, DocKind::Session, &[unset]).await.unwrap(), 1);
    let stale = Projection { id, body: b"another body".to_vec(), columns: vec![visitor, Value::Int(0)] };
    assert_eq!(store.project_docs(&ctx, DocKind::Session, &[stale]).await.unwrap(), 0, "the body is not that one");
    let missing = ListQuery { missing: Some("converted"), ..ListQuery::default() };
    let unprojected = store.list_docs(&ctx, DocKind::Session, &missing).await.unwrap();
    assert_eq!(unprojected.iter().map(|doc| doc.id).collect::<Vec<_>>(), vec![id]);
    let rows = store.tally::<Session>(&ctx, &by_visitor, &["converted"]).await.unwrap();
    assert_eq!(tallied(rows), visits, "the missing value was projected from the body, not counted as 0");
    assert!(store.list_docs(&ctx, DocKind::Session, &missing).await.unwrap().is_empty());
    assert_eq!(store.get::<Session>(&ctx, id).await.unwrap().as_ref(), Some(session), "the body is unchanged");
}

pub async fn user_roles_change_and_users_go_with_their_sessions_and_codes(store: &dyn Store) {
    use steward_domain::Role;
    let ctx = tenant(store, "A").await;
    let other = tenant(store, "B").await;
    let users = store.users();
    let owner = user(store, &ctx, "owner@example.fi").await;
    assert!(users.set_user_role(&ctx, owner.id, Role::Owner).await.unwrap());
    let record = user(store, &ctx, "aino@example.fi").await;
    assert!(users.set_user_role(&ctx, record.id, Role::Admin).await.unwrap());
    assert_eq!(users.get_user(&ctx, record.id).await.unwrap().unwrap().role, Role::Admin);
    assert!(!users.set_user_role(&other, record.id, Role::Viewer).await.unwrap(), "another tenant's user");
    assert!(!users.set_user_role(&ctx, steward_domain::UserId::new(), Role::Viewer).await.unwrap(), "no such user");
    assert_eq!(users.get_user(&ctx, record.id).await.unwrap().unwrap().role, Role::Admin);

    assert!(users.start_totp_enrolment(&ctx, record.id, b"sealed secret", false).await.unwrap());
    let codes = [vec![1u8; 32]];
    assert!(
        users.finish_totp_enrolment(&ctx, record.id, b"sealed secret", Timestamp::now(), 10, &codes).await.unwrap()
    );
    let now = Timestamp::from_unix_micros(Timestamp::now().unix_micros() / 1_000_000 * 1_000_000).unwrap();
    let session = |byte: u8, user_id| crate::ConsoleSession {
        token_hash: SecretHash([byte; 32]),
        tenant_id: ctx.tenant_id(),
        user_id,
        mfa_passed: true,
        created_at: now,
        expires_at: now.checked_add(time::Duration::hours(1)).unwrap(),
    };
    users.create_console_session(&session(7, record.id)).await.unwrap();
    users.create_console_session(&session(8, owner.id)).await.unwrap();

    assert!(!users.delete_user(&other, record.id).await.unwrap(), "another tenant's user");
    assert!(users.delete_user(&ctx, record.id).await.unwrap());
    assert!(!users.delete_user(&ctx, record.id).await.unwrap(), "already gone");
    assert_eq!(users.get_user(&ctx, record.id).await.unwrap(), None);
    assert_eq!(users.find_console_session(&SecretHash([7; 32])).await.unwrap(), None, "signed out at once");
    assert_eq!(users.count_recovery_codes(&ctx, record.id).await.unwrap(), 0);
    assert!(users.find_console_session(&SecretHash([8; 32])).await.unwrap().is_some(), "others stay signed in");
    assert_eq!(users.list_users(&ctx).await.unwrap(), vec![users.get_user(&ctx, owner.id).await.unwrap().unwrap()]);
    // The address is free again.
    let again = user(store, &ctx, "aino@example.fi").await;
    assert_eq!(users.get_user(&ctx, again.id).await.unwrap().unwrap().role, Role::Analyst);
}

pub async fn the_last_owner_is_never_demoted_or_removed(store: &dyn Store) {
    use steward_domain::Role;
    let ctx = tenant(store, "A").await;
    let users = store.users();
    let first = user(store, &ctx, "first@example.fi").await;
    let second = user(store, &ctx, "second@example.fi").await;
    assert!(users.set_user_role(&ctx, first.id, Role::Owner).await.unwrap());
    assert!(!users.set_user_role(&ctx, first.id, Role::Admin).await.unwrap(), "the only owner");
    assert!(!users.delete_user(&ctx, first.id).await.unwrap(), "the only owner");
    assert!(users.set_user_role(&ctx, first.id, Role::Owner).await.unwrap(), "owner to owner is no demotion");
    assert!(users.set_user_role(&ctx, second.id, Role::Owner).await.unwrap());
    // Two owners demoting each other at once: one of them stays owner.
    let (a, b) = tokio::join!(
        users.set_user_role(&ctx, first.id, Role::Viewer),
        users.set_user_role(&ctx, second.id, Role::Viewer)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one demotion goes through");
    let owners = users.list_users(&ctx).await.unwrap().into_iter().filter(|u| u.role == Role::Owner).count();
    assert_eq!(owners, 1);
    let owner = if users.get_user(&ctx, first.id).await.unwrap().unwrap().role == Role::Owner { first } else { second };
    assert!(!users.delete_user(&ctx, owner.id).await.unwrap());
    assert_eq!(users.get_user(&ctx, owner.id).await.unwrap().unwrap().role, Role::Owner);
}

pub async fn a_tenants_last_sweep_is_kept_and_a_later_one_wins(store: &dyn Store) {
    use crate::SweepRecord;
    let a = tenant(store, "A").await;
    let b = tenant(store, "B").await;
    assert_eq!(store.last_sweep(&a).await.unwrap(), None);
    assert_eq!(store.sweep_overview().await.unwrap(), crate::SweepOverview::default());

    let at = |text: &str| Timestamp::parse(text).unwrap();
    let record = |ctx: &TenantCtx, finished: &str, failed: bool, note: &str| SweepRecord {
        tenant_id: ctx.tenant_id(),
        finished_at: at(finished),
        failed,
        report: json!({"note": note, "deleted": {"leads": 3}, "failures": [{"error": "disk I/O error – €"}]}),
    };
    let failed_a = record(&a, "2026-11-02T10:00:00.000001Z", true, "first");
    store.save_sweep(&failed_a).await.unwrap();
    assert_eq!(store.last_sweep(&a).await.unwrap(), Some(failed_a.clone()), "kept exactly");
    assert_eq!(store.last_sweep(&b).await.unwrap(), None, "one tenant's sweep is not another's");

    // An older run that ends after a newer one was saved does not overwrite it.
    store.save_sweep(&record(&a, "2026-11-01T10:00:00Z", false, "older")).await.unwrap();
    assert_eq!(store.last_sweep(&a).await.unwrap(), Some(failed_a.clone()));

    let ok_b = record(&b, "2026-11-03T10:00:00Z", false, "b");
    store.save_sweep(&ok_b).await.unwrap();
    let overview = store.sweep_overview().await.unwrap();
    assert_eq!(overview.last_finished_at, Some(ok_b.finished_at));
    assert_eq!(overview.failed, vec![failed_a], "only the failed one");

    // A later good sweep clears the failure.
    let ok_a = record(&a, "2026-11-04T10:00:00Z", false, "later");
    store.save_sweep(&ok_a).await.unwrap();
    assert_eq!(store.last_sweep(&a).await.unwrap(), Some(ok_a.clone()));
    let overview = store.sweep_overview().await.unwrap();
    assert_eq!(overview.last_finished_at, Some(ok_a.finished_at));
    assert!(overview.failed.is_empty());

    // Erasing a tenant takes its sweep with it.
    store.erase_tenant(&a).await.unwrap();
    assert_eq!(store.last_sweep(&a).await.unwrap(), None);
    assert_eq!(store.sweep_overview().await.unwrap().last_finished_at, Some(ok_b.finished_at));
}
