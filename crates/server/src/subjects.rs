//! Data-subject rights, carried out: finding everything held on a person, and answering access,
//! rectification, erasure, restriction and objection requests in every store at once.
//!
//! A person is found by the keyed hashes of their identifiers (the blind indexes), widened once
//! through the visitor profiles their leads name, so a lookup by email also finds the journeys of
//! the browser that filled in the form. Changes of one request commit in one transaction
//! ([`steward_store::Store::write_docs`]); an erasure first puts the person's identifiers in the
//! erasure ledger and waits until the collection writer drops them, so nothing lands after it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;

use serde::Serialize;
use steward_domain::lead::Consent;
use steward_domain::organization::Contact;
use steward_domain::subject::{
    ArchiveFile, CompletionReport, LedgerEntry, LedgerId, LedgerReason, Rectification, RequestKind, Subject,
    SubjectKeys, SubjectRequest,
};
use steward_domain::{
    Event, IpNetwork, Journey, Lead, LeadId, Organization, OrganizationId, Session, Timestamp, VisitorId,
    VisitorProfile,
};
use steward_export::archive::Archive;
use steward_export::{Dataset, Format, Writer};
use steward_store::doc::MAX_PAGE;
use steward_store::records::{from_hex, to_hex};
use steward_store::{
    Actor, AuditDraft, AuditEntry, AuditQuery, Batch, DocKind, ListQuery, Lookup, Record, Store, StoreError, StoreExt,
    StoreResult, Target, TenantCtx, TenantKeys, Value,
};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Most values one `IN (…)` list carries.
const IDS_PER_QUERY: usize = 500;
/// Most words one search of organizations' `contact_keys` tries (each a `LIKE`).
const WORDS_PER_QUERY: usize = 100;

/// Who answers a request, for its history and the audit log.
#[derive(Debug, Clone)]
pub struct Acting {
    pub actor: Actor,
    pub ip_network: Option<IpNetwork>,
}

impl Acting {
    pub fn draft(&self, at: Timestamp, action: &str, target: Target, detail: serde_json::Value) -> AuditDraft {
        AuditDraft {
            at,
            actor: self.actor.clone(),
            action: action.to_string(),
            target,
            detail,
            ip_network: self.ip_network,
        }
    }

    pub fn step_actor(&self) -> (&'static str, Option<String>) {
        (self.actor.kind.as_str(), self.actor.id.clone())
    }
}

/// One entry of an organization's contact list that is about the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrganizationContact {
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub contact: Contact,
}

/// Everything held on one person.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub leads: Vec<Lead>,
    pub visitor_profiles: Vec<VisitorProfile>,
    /// Sessions with their events in order.
    pub journeys: Vec<Journey>,
    pub organization_contacts: Vec<OrganizationContact>,
    /// Earlier requests of the same person, found by their keyed identifiers.
    pub subject_requests: Vec<SubjectRequest>,
    /// Audit entries whose target names one of the person's records or requests.
    pub audit_entries: Vec<AuditEntry>,
    /// The organizations holding those contact entries, as read (erasure and rectification
    /// change them).
    #[serde(skip)]
    #[schema(ignore)]
    organizations: Vec<Organization>,
}

impl Person {
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let events: usize = self.journeys.iter().map(|journey| journey.events.len()).sum();
        BTreeMap::from([
            ("leads".to_string(), self.leads.len() as u64),
            ("visitor_profiles".to_string(), self.visitor_profiles.len() as u64),
            ("sessions".to_string(), self.journeys.len() as u64),
            ("events".to_string(), events as u64),
            ("organization_contacts".to_string(), self.organization_contacts.len() as u64),
            ("subject_requests".to_string(), self.subject_requests.len() as u64),
            ("audit_entries".to_string(), self.audit_entries.len() as u64),
        ])
    }

    fn is_empty(&self) -> bool {
        self.leads.is_empty() && self.visitor_profiles.is_empty() && self.journeys.is_empty()
    }

    /// Ids of the records an audit entry may name.
    fn record_ids(&self) -> HashSet<Uuid> {
        let mut ids: HashSet<Uuid> = self.leads.iter().map(|lead| lead.id.into_uuid()).collect();
        ids.extend(self.visitor_profiles.iter().map(|profile| profile.id.into_uuid()));
        ids.extend(self.subject_requests.iter().map(|request| request.id.into_uuid()));
        ids
    }
}

/// The keyed hashes of a subject's identifiers, hex.
pub fn subject_keys(keys: &TenantKeys, subject: &Subject) -> SubjectKeys {
    SubjectKeys {
        email: subject.email.as_ref().map(|email| to_hex(&Lookup::Email.key(keys, &email.lookup_key()))),
        phone: subject.phone.as_ref().map(|phone| to_hex(&Lookup::Phone.key(keys, phone.as_str()))),
        contact_id: subject.contact_id.as_deref().map(|id| to_hex(&Lookup::ContactId.key(keys, id))),
        visitor_id: subject.visitor_id.map(|id| to_hex(&Lookup::VisitorId.key(keys, &id.to_string()))),
    }
}

/// Stores a request left pending (recorded for later, or forwarded by the operator) with its
/// lookup keys, and audits it as `action`.
pub async fn record_pending(
    store: &dyn Store,
    ctx: &TenantCtx,
    request: &mut SubjectRequest,
    acting: &Acting,
    action: &str,
    now: Timestamp,
) -> StoreResult<()> {
    if let Some(subject) = &request.subject {
        request.subject_keys = subject_keys(&*store.keys(ctx)?, subject);
    }
    let target = Target { kind: "subject_request".into(), count: 1, ids: vec![request.id.into_uuid()] };
    let detail = serde_json::json!({
        "request": request.id, "kind": request.kind.as_str(), "origin": request.origin.as_str(),
        "received_at": request.received_at, "due_at": request.due_at,
    });
    store.insert_audited(ctx, std::slice::from_ref(request), &acting.draft(now, action, target, detail)).await
}

/// Every record of `R` whose `column` holds one of `values`.
pub(crate) async fn any_of<R: Record>(
    store: &dyn Store,
    ctx: &TenantCtx,
    column: &'static str,
    values: &BTreeSet<Uuid>,
) -> StoreResult<Vec<R>> {
    let values: Vec<Value> = values.iter().map(|id| Value::Uuid(*id)).collect();
    let mut found = Vec::new();
    for chunk in values.chunks(IDS_PER_QUERY) {
        let query = ListQuery { any_of: Some((column, chunk.to_vec())), ..ListQuery::default() };
        found.extend(store.list_all::<R>(ctx, query).await?);
    }
    Ok(found)
}

/// The identifiers a lead holds that a request can name, for telling one person from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    Email,
    Phone,
    ContactId,
    VisitorId,
}

impl Identifier {
    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::ContactId => "contact_id",
            Self::VisitorId => "visitor_id",
        }
    }

    /// Whether `lead` holds this identifier with the subject's value (`Some(true)`), another
    /// value (`Some(false)`), or none at all (`None`).
    fn agrees(self, subject: &Subject, lead: &Lead) -> Option<bool> {
        match self {
            Self::Email => Some(lead.email.as_ref()?.lookup_key() == subject.email.as_ref()?.lookup_key()),
            Self::Phone => Some(lead.phone.as_ref()? == subject.phone.as_ref()?),
            Self::ContactId => Some(lead.contact_id.as_ref()? == subject.contact_id.as_ref()?),
            Self::VisitorId => Some(lead.visitor_profile_id? == subject.visitor_id?),
        }
    }

    /// The identifiers a subject names.
    fn of(subject: &Subject) -> Vec<Self> {
        let mut named = Vec::new();
        if subject.email.is_some() {
            named.push(Self::Email);
        }
        if subject.phone.is_some() {
            named.push(Self::Phone);
        }
        if subject.contact_id.is_some() {
            named.push(Self::ContactId);
        }
        if subject.visitor_id.is_some() {
            named.push(Self::VisitorId);
        }
        named
    }
}

/// Identifiers that describe one person: an email, a phone and a contact id belong to one
/// person each, so a lead holding one of them with the subject's value and another with a
/// different value belongs to someone else. A browser (visitor id) is not a person: one
/// person uses several, so a lead of another browser never contradicts.
fn contradicts(subject: &Subject, lead: &Lead) -> Option<Identifier> {
    [Identifier::Email, Identifier::Phone, Identifier::ContactId]
        .into_iter()
        .find(|identifier| identifier.agrees(subject, lead) == Some(false))
}

/// Refuses identifiers that point at different people, with counts only: which identifier
/// matched how many records, and how many of those hold another value of another identifier.
fn check_one_person(subject: &Subject, matched: &BTreeMap<Identifier, Vec<Lead>>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (identifier, leads) in matched {
        let mut other: BTreeMap<&'static str, usize> = BTreeMap::new();
        for lead in leads {
            if let Some(differs) = contradicts(subject, lead) {
                *other.entry(differs.name()).or_default() += 1;
            }
        }
        for (differs, count) in other {
            errors.push(steward_domain::FieldError {
                field: format!("subject.{}", identifier.name()),
                message: format!(
                    "matches {} lead(s), {count} of which hold a different {differs} than the one given",
                    leads.len()
                ),
            });
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let named: Vec<&str> = Identifier::of(subject).into_iter().map(Identifier::name).collect();
    let detail = format!(
        "the identifiers given ({}) point at records of different people: {}; nothing was read or changed. \
         Ask again with the identifiers of one person only",
        named.join(", "),
        errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
    );
    Err(ApiError::Conflict(detail, errors))
}

/// Finds everything held on `subject`, the audit entries aside ([`with_audit`] adds them).
///
/// The person's leads are those matching one of the identifiers and contradicting none
/// ([`contradicts`]); identifiers that match leads of different people are refused with 409
/// before anything is read further, so a request never reaches someone else. The person's
/// browsers are those their leads name, the visitor id given and the profiles holding the
/// contact id; the leads of those browsers join when they contradict no identifier given.
/// Organizations are searched by the keyed hashes of the person's emails, phones and lead ids
/// ([`steward_store::records::contact_keys`]), whichever organization holds the entry.
pub async fn find(store: &dyn Store, ctx: &TenantCtx, subject: &Subject) -> Result<Person, ApiError> {
    let keys = store.keys(ctx)?;
    let mut matched: BTreeMap<Identifier, Vec<Lead>> = BTreeMap::new();
    let mut lookups = Vec::new();
    if let Some(email) = &subject.email {
        lookups.push((Identifier::Email, "email_key", Lookup::Email.key(&keys, &email.lookup_key())));
    }
    if let Some(phone) = &subject.phone {
        lookups.push((Identifier::Phone, "phone_key", Lookup::Phone.key(&keys, phone.as_str())));
    }
    if let Some(contact) = &subject.contact_id {
        lookups.push((Identifier::ContactId, "contact_key", Lookup::ContactId.key(&keys, contact)));
    }
    for (identifier, column, key) in &lookups {
        let query = ListQuery { equals: vec![(column, Value::Bytes(key.clone()))], ..ListQuery::default() };
        matched.insert(*identifier, store.list_all::<Lead>(ctx, query).await?);
    }
    if let Some(visitor) = subject.visitor_id {
        let one = BTreeSet::from([visitor.into_uuid()]);
        matched.insert(Identifier::VisitorId, any_of::<Lead>(store, ctx, "visitor_profile_id", &one).await?);
    }
    check_one_person(subject, &matched)?;
    let mut leads: BTreeMap<Uuid, Lead> =
        matched.into_values().flatten().map(|lead| (lead.id.into_uuid(), lead)).collect();

    let mut visitors: BTreeSet<Uuid> =
        leads.values().filter_map(|l| l.visitor_profile_id.map(VisitorId::into_uuid)).collect();
    visitors.extend(subject.visitor_id.map(VisitorId::into_uuid));
    if let Some(contact) = &subject.contact_id {
        let key = Lookup::ContactId.key(&keys, contact);
        let query = ListQuery { equals: vec![("contact_key", Value::Bytes(key))], ..ListQuery::default() };
        visitors.extend(store.list_all::<VisitorProfile>(ctx, query).await?.iter().map(|p| p.id.into_uuid()));
    }
    // Once wider: the leads the same browsers left, unless they are someone else's (a shared
    // computer): those stay out.
    for lead in any_of::<Lead>(store, ctx, "visitor_profile_id", &visitors).await? {
        if contradicts(subject, &lead).is_none() {
            leads.insert(lead.id.into_uuid(), lead);
        }
    }
    let profiles = any_of::<VisitorProfile>(store, ctx, "id", &visitors).await?;
    let sessions = any_of::<Session>(store, ctx, "visitor_profile_id", &visitors).await?;
    let events = any_of::<Event>(store, ctx, "visitor_profile_id", &visitors).await?;
    let journeys = assemble(sessions, events);

    let mut person =
        Person { leads: leads.into_values().collect(), visitor_profiles: profiles, journeys, ..Person::default() };
    let copies = Copies::of_person(&keys, subject, &person);
    for (organization, contacts) in copies.organizations(store, ctx, &keys).await? {
        person.organization_contacts.extend(contacts);
        person.organizations.push(organization);
    }
    person.subject_requests = requests_of(store, ctx, &keys, subject, &person).await?;
    Ok(person)
}

/// Adds the audit entries naming the person's records: the whole log is read, so only lookups and
/// access archives ask for them.
pub async fn with_audit(store: &dyn Store, ctx: &TenantCtx, mut person: Person) -> StoreResult<Person> {
    let ids = person.record_ids();
    let mut query = AuditQuery { limit: MAX_PAGE, ..AuditQuery::default() };
    loop {
        let page = store.audit_entries(ctx, &query).await?;
        let full = page.len() == MAX_PAGE as usize;
        query.after_seq = page.last().map(|entry| entry.seq);
        person
            .audit_entries
            .extend(page.into_iter().filter(|entry| entry.target.ids.iter().any(|id| ids.contains(id))));
        if !full {
            return Ok(person);
        }
    }
}

/// Sessions with their events, in session order, events by position.
fn assemble(sessions: Vec<Session>, events: Vec<Event>) -> Vec<Journey> {
    let mut by_session: BTreeMap<Uuid, Vec<Event>> = BTreeMap::new();
    for event in events {
        by_session.entry(event.session_id.into_uuid()).or_default().push(event);
    }
    sessions
        .into_iter()
        .map(|session| {
            let mut events = by_session.remove(&session.id.into_uuid()).unwrap_or_default();
            events.sort_by_key(|event| (event.position, event.occurred_at));
            Journey { session, events }
        })
        .collect()
}

/// What identifies a person's copies in organizations: the keyed hashes (hex) of their lead
/// ids, emails and phones, the words of organizations' `contact_keys`. Erasure, its
/// re-application after a restore, rectification, access and retention all find copies through
/// this one definition.
#[derive(Debug, Default)]
pub(crate) struct Copies {
    words: BTreeSet<String>,
}

impl Copies {
    /// The copies of leads that go while the person may live on in other leads (retention):
    /// contact entries by lead id only.
    pub fn of_lead_ids<'a>(keys: &TenantKeys, leads: impl IntoIterator<Item = &'a LeadId>) -> Self {
        let mut copies = Self::default();
        for lead in leads {
            copies.words.insert(to_hex(&Lookup::LeadId.key(keys, &lead.to_string())));
        }
        copies
    }

    /// Everything of these leads: their ids, emails and phones.
    pub fn of_leads<'a>(keys: &TenantKeys, leads: impl IntoIterator<Item = &'a Lead>) -> Self {
        let leads: Vec<&Lead> = leads.into_iter().collect();
        let mut copies = Self::of_lead_ids(keys, leads.iter().map(|lead| &lead.id));
        let subjects = leads.iter().map(|lead| identifiers_of(lead));
        copies.words.extend(subjects.flat_map(|subject| {
            let of = subject_keys(keys, &subject);
            [of.email, of.phone].into_iter().flatten()
        }));
        copies
    }

    /// Keyed hashes as the erasure ledger keeps them (hex).
    pub fn of_keys(words: impl IntoIterator<Item = String>) -> Self {
        Self { words: words.into_iter().collect() }
    }

    fn of_person(keys: &TenantKeys, subject: &Subject, person: &Person) -> Self {
        let mut copies = Self::of_leads(keys, &person.leads);
        let own = subject_keys(keys, subject);
        copies.words.extend([own.email, own.phone].into_iter().flatten());
        copies
    }

    pub fn extend(&mut self, other: Self) {
        self.words.extend(other.words);
    }

    fn has(&self, key: Vec<u8>) -> bool {
        self.words.contains(&to_hex(&key))
    }

    /// Whether a contact entry is about the person: by lead or by email.
    fn names(&self, keys: &TenantKeys, contact: &Contact) -> bool {
        self.has(Lookup::LeadId.key(keys, &contact.lead_id.to_string()))
            || contact.email.as_ref().is_some_and(|e| self.has(Lookup::Email.key(keys, &e.lookup_key())))
    }

    fn own_email(&self, keys: &TenantKeys, organization: &Organization) -> bool {
        organization.email.as_ref().is_some_and(|e| self.has(Lookup::Email.key(keys, &e.lookup_key())))
    }

    fn own_phone(&self, keys: &TenantKeys, organization: &Organization) -> bool {
        organization.phone.as_ref().is_some_and(|p| self.has(Lookup::Phone.key(keys, p.as_str())))
    }

    /// Every organization holding a copy of the person (a contact entry, or the person's email
    /// or phone as its own), with the contact entries about them.
    pub async fn organizations(
        &self,
        store: &dyn Store,
        ctx: &TenantCtx,
        keys: &TenantKeys,
    ) -> StoreResult<Vec<(Organization, Vec<OrganizationContact>)>> {
        if self.words.is_empty() {
            return Ok(Vec::new());
        }
        // Organizations stored before `contact_keys` existed are projected first.
        store.project_missing::<Organization>(ctx, "contact_keys", &ListQuery::default()).await?;
        let words: Vec<String> = self.words.iter().cloned().collect();
        let mut found: BTreeMap<Uuid, Organization> = BTreeMap::new();
        for chunk in words.chunks(WORDS_PER_QUERY) {
            let query = ListQuery { any_word: Some(("contact_keys", chunk.to_vec())), ..ListQuery::default() };
            for organization in store.list_all::<Organization>(ctx, query).await? {
                found.insert(organization.id.into_uuid(), organization);
            }
        }
        Ok(found
            .into_values()
            .filter_map(|organization| {
                let contacts: Vec<OrganizationContact> = organization
                    .contacts
                    .iter()
                    .filter(|contact| self.names(keys, contact))
                    .map(|contact| OrganizationContact {
                        organization_id: organization.id,
                        organization_name: organization.name.clone(),
                        contact: contact.clone(),
                    })
                    .collect();
                let held =
                    !contacts.is_empty() || self.own_email(keys, &organization) || self.own_phone(keys, &organization);
                held.then_some((organization, contacts))
            })
            .collect())
    }

    /// Takes the person out of every organization holding a copy: their contact entries go,
    /// and the organization's own email or phone when it is theirs. Each changed organization
    /// joins `batch`; how many contact entries went.
    pub async fn remove(
        &self,
        store: &dyn Store,
        ctx: &TenantCtx,
        keys: &TenantKeys,
        now: Timestamp,
        batch: &mut Batch,
    ) -> StoreResult<u64> {
        let mut removed = 0;
        for (mut organization, _) in self.organizations(store, ctx, keys).await? {
            let before = organization.contacts.len();
            organization.contacts.retain(|contact| !self.names(keys, contact));
            removed += (before - organization.contacts.len()) as u64;
            if self.own_email(keys, &organization) {
                organization.email = None;
            }
            if self.own_phone(keys, &organization) {
                organization.phone = None;
            }
            organization.updated_at = now;
            batch.update(ctx, keys, &organization)?;
        }
        Ok(removed)
    }
}

/// Requests about the same person: by the subject's keys and those of the person's leads.
async fn requests_of(
    store: &dyn Store,
    ctx: &TenantCtx,
    keys: &TenantKeys,
    subject: &Subject,
    person: &Person,
) -> StoreResult<Vec<SubjectRequest>> {
    let mut wanted: BTreeSet<(&'static str, Vec<u8>)> = BTreeSet::new();
    let mut add = |column: &'static str, hex: Option<String>| {
        if let Some(key) = hex.as_deref().and_then(from_hex) {
            wanted.insert((column, key));
        }
    };
    let own = subject_keys(keys, subject);
    add("email_key", own.email);
    add("phone_key", own.phone);
    add("contact_key", own.contact_id);
    add("visitor_key", own.visitor_id);
    for lead in &person.leads {
        let of = subject_keys(keys, &identifiers_of(lead));
        add("email_key", of.email);
        add("phone_key", of.phone);
        add("contact_key", of.contact_id);
    }
    for profile in &person.visitor_profiles {
        add("visitor_key", Some(to_hex(&Lookup::VisitorId.key(keys, &profile.id.to_string()))));
    }
    let mut requests: BTreeMap<Uuid, SubjectRequest> = BTreeMap::new();
    for (column, key) in wanted {
        let query = ListQuery { equals: vec![(column, Value::Bytes(key))], ..ListQuery::default() };
        for request in store.list_all::<SubjectRequest>(ctx, query).await? {
            requests.insert(request.id.into_uuid(), request);
        }
    }
    Ok(requests.into_values().collect())
}

fn identifiers_of(lead: &Lead) -> Subject {
    Subject {
        email: lead.email.clone(),
        phone: lead.phone.clone(),
        contact_id: lead.contact_id.clone(),
        visitor_id: lead.visitor_profile_id,
    }
}

/// Carries out a request: changes every store, fills in the report and completes it. The
/// request itself is saved (inserted or updated) in the same transaction as the changes.
pub async fn execute(
    state: &AppState,
    ctx: &TenantCtx,
    request: &mut SubjectRequest,
    acting: &Acting,
    stored: bool,
) -> Result<(), ApiError> {
    let Some(subject) = request.subject.clone() else {
        return Err(ApiError::Conflict(
            format!("the request is {} and holds no identifiers any more", request.status.as_str()),
            Vec::new(),
        ));
    };
    let keys = state.store.keys(ctx)?;
    request.subject_keys = subject_keys(&keys, &subject);
    let now = state.clock.now();
    // A record changed or deleted by someone else between finding and writing fails the batch:
    // find again and retry.
    for attempt in 0..3 {
        let mut batch = Batch::default();
        let result = match request.kind {
            RequestKind::Erasure => erase(state, ctx, &keys, request, &subject, &mut batch).await,
            RequestKind::Rectification => rectify(state, ctx, &keys, request, &subject, &mut batch, now).await,
            RequestKind::Restriction => restrict(state, ctx, &keys, &subject, &mut batch, now).await,
            RequestKind::Objection => object(state, ctx, &keys, request, &subject, &mut batch, now).await,
            RequestKind::Access => access(state, ctx, request, &subject, now).await,
        };
        let (report, detail) = result?;
        let changed_fields: BTreeSet<String> = detail
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|change| Some(format!("{}.{}", change["record"].as_str()?, change["field"].as_str()?)))
            .collect();
        // Values about the person (a rectification's before and after) are sealed under the
        // request's own key, which the person's erasure destroys; the fields changed stay legible.
        let detail = if detail.is_null() {
            detail
        } else {
            steward_store::audit::seal_for_subject(state.store.vault(), ctx, request.id.into_uuid(), &detail)?
        };
        let mut completed = request.clone();
        completed.step(now, "completed", acting.step_actor(), None);
        completed.complete(report, now);
        if stored {
            batch.update(ctx, &keys, &completed)?;
        } else {
            batch.insert(ctx, &keys, &completed)?;
        }
        let counts = completed.report.as_ref().map(|r| r.counts.clone()).unwrap_or_default();
        let total = counts.values().sum();
        let target = Target { kind: "subject_request".into(), count: total, ids: vec![completed.id.into_uuid()] };
        let action = format!("subject_request.{}", completed_action(completed.kind));
        let detail = serde_json::json!({
            "request": completed.id, "kind": completed.kind.as_str(), "counts": counts,
            "received_at": completed.received_at, "due_at": completed.due_at, "changes": detail,
            "changed_fields": changed_fields,
        });
        // The changes, the completed request and the entry recording them: one transaction.
        let draft = acting.draft(now, &action, target, detail);
        match state.store.write_docs_audited(batch.writes(), ctx, &[draft]).await {
            Ok(_) => {
                if request.kind == RequestKind::Erasure
                    && let Err(error) = state.store.purge_deleted().await
                {
                    tracing::warn!(error = %error, "erased rows may linger in the database files until the next purge");
                }
                *request = completed;
                return Ok(());
            }
            Err(StoreError::MissingReference { .. }) if attempt < 2 => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!("the person's records kept changing; the request was not completed")))
}

fn completed_action(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Access => "access_answered",
        RequestKind::Rectification => "rectified",
        RequestKind::Erasure => "erased",
        RequestKind::Restriction => "restricted",
        RequestKind::Objection => "objection_honoured",
    }
}

type Outcome = Result<(CompletionReport, serde_json::Value), ApiError>;

/// The ledger keys of a person: every identifier of the subject, of their leads and profiles.
fn ledger_keys(keys: &TenantKeys, subject: &Subject, person: &Person) -> BTreeSet<Vec<u8>> {
    let mut found = BTreeSet::new();
    let mut add = |of: SubjectKeys| {
        for hex in [of.email, of.phone, of.contact_id, of.visitor_id].into_iter().flatten() {
            if let Some(key) = from_hex(&hex) {
                found.insert(key);
            }
        }
    };
    add(subject_keys(keys, subject));
    for lead in &person.leads {
        add(subject_keys(keys, &identifiers_of(lead)));
    }
    for profile in &person.visitor_profiles {
        add(subject_keys(keys, &Subject { visitor_id: Some(profile.id), ..Subject::default() }));
    }
    found
}

/// Stores ledger entries not there yet and has the collection writer drop them; returns how
/// many were added.
async fn block(
    state: &AppState,
    ctx: &TenantCtx,
    request: &SubjectRequest,
    keys: BTreeSet<Vec<u8>>,
    reason: LedgerReason,
    visitors: Vec<VisitorId>,
) -> Result<u64, ApiError> {
    let values: Vec<Value> = keys.iter().map(|key| Value::Bytes(key.clone())).collect();
    let mut known: HashSet<(Vec<u8>, LedgerReason)> = HashSet::new();
    for chunk in values.chunks(IDS_PER_QUERY) {
        let query = ListQuery { any_of: Some(("subject_key", chunk.to_vec())), ..ListQuery::default() };
        for entry in state.store.list_all::<LedgerEntry>(ctx, query).await? {
            if let Some(key) = from_hex(&entry.key) {
                known.insert((key, entry.reason));
            }
        }
    }
    let now = state.clock.now();
    let entries: Vec<LedgerEntry> = keys
        .iter()
        .filter(|key| !known.contains(&((*key).clone(), reason)))
        .map(|key| LedgerEntry {
            id: LedgerId::new(),
            key: to_hex(key),
            reason,
            request_id: request.id,
            created_at: now,
        })
        .collect();
    // Mirrored outside the database first, so a restore from an older backup can apply it again.
    crate::erasure_ledger::append(state.store.as_ref(), ctx.tenant_id(), &entries)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("mirroring the erasure ledger: {e}")))?;
    state.store.insert(ctx, &entries).await?;
    let blocked = keys.into_iter().map(|key| (key, reason)).collect();
    state.collector.block(*ctx, blocked, visitors).await.map_err(crate::collect::collect_error)?;
    Ok(entries.len() as u64)
}

async fn erase(
    state: &AppState,
    ctx: &TenantCtx,
    keys: &TenantKeys,
    request: &SubjectRequest,
    subject: &Subject,
    batch: &mut Batch,
) -> Outcome {
    let store = state.store.as_ref();
    let before = find(store, ctx, subject).await?;
    let visitors: Vec<VisitorId> = before.visitor_profiles.iter().map(|p| p.id).chain(subject.visitor_id).collect();
    let ledger =
        block(state, ctx, request, ledger_keys(keys, subject, &before), LedgerReason::Erasure, visitors).await?;
    // Found again: what the collection writer committed before it stopped taking this person.
    let person = find(store, ctx, subject).await?;
    for lead in &person.leads {
        batch.delete(ctx, DocKind::Lead, lead.id.into_uuid());
    }
    for profile in &person.visitor_profiles {
        batch.delete(ctx, DocKind::VisitorProfile, profile.id.into_uuid());
    }
    let mut events = 0;
    for journey in &person.journeys {
        for event in &journey.events {
            batch.delete(ctx, DocKind::Event, event.id.into_uuid());
            events += 1;
        }
        batch.delete(ctx, DocKind::Session, journey.session.id.into_uuid());
    }
    let now = state.clock.now();
    let contacts = Copies::of_person(keys, subject, &person).remove(store, ctx, keys, now, batch).await?;
    // What the audit log keeps about the person's earlier requests (a rectification's values)
    // becomes unreadable for good.
    let anchors: Vec<Uuid> = person.subject_requests.iter().map(|r| r.id.into_uuid()).collect();
    store.vault().destroy_subject_keys(ctx.tenant_id(), &anchors).map_err(StoreError::from)?;
    let mut requests = 0;
    for mut earlier in person.subject_requests.iter().filter(|r| r.id != request.id).cloned() {
        // Kept as proof that the requests were answered; who asked, the corrected values and
        // the access archive (a copy of everything) go.
        earlier.subject = None;
        earlier.subject_hint = "erased".into();
        earlier.changes = None;
        if let Some(report) = earlier.report.as_mut()
            && let Some(archive) = report.archive.take()
        {
            state.files.remove(&archive.key).map_err(|e| ApiError::Internal(e.into()))?;
            report.note = Some(format!(
                "the access archive was deleted when the person's data was erased (request {})",
                request.id
            ));
        }
        batch.update(ctx, keys, &earlier)?;
        requests += 1;
    }
    let counts = BTreeMap::from([
        ("leads".to_string(), person.leads.len() as u64),
        ("visitor_profiles".to_string(), person.visitor_profiles.len() as u64),
        ("sessions".to_string(), person.journeys.len() as u64),
        ("events".to_string(), events),
        ("organization_contacts".to_string(), contacts),
        ("subject_requests".to_string(), requests),
        ("erasure_ledger".to_string(), ledger),
    ]);
    let note =
        person.is_empty().then(|| "nothing was held on this person; the ledger keeps them out from now on".to_string());
    Ok((CompletionReport { counts, archive: None, note }, serde_json::Value::Null))
}

/// One field of one record, before and after.
#[derive(Debug, Serialize)]
struct FieldChange {
    record: &'static str,
    id: Uuid,
    field: &'static str,
    before: Option<String>,
    after: Option<String>,
}

/// Replaces a value the record holds (a field it never had stays empty) and logs the change.
fn set_field<T: Clone + PartialEq>(
    changes: &mut Vec<FieldChange>,
    (record, id): (&'static str, Uuid),
    field: &'static str,
    slot: &mut Option<T>,
    value: Option<&T>,
    text: fn(&T) -> String,
) {
    if let (Some(value), Some(held)) = (value, slot.as_ref())
        && held != value
    {
        changes.push(FieldChange { record, id, field, before: Some(text(held)), after: Some(text(value)) });
        *slot = Some(value.clone());
    }
}

fn rectify_lead(lead: &mut Lead, changes: &Rectification, log: &mut Vec<FieldChange>) -> bool {
    let at = ("lead", lead.id.into_uuid());
    let before = log.len();
    let text = |value: &String| value.clone();
    set_field(log, at, "first_name", &mut lead.first_name, changes.first_name.as_ref(), text);
    set_field(log, at, "last_name", &mut lead.last_name, changes.last_name.as_ref(), text);
    set_field(log, at, "company_name", &mut lead.company_name, changes.company_name.as_ref(), text);
    set_field(log, at, "job_title", &mut lead.job_title, changes.job_title.as_ref(), text);
    set_field(log, at, "email", &mut lead.email, changes.email.as_ref(), |email| email.as_str().to_string());
    set_field(log, at, "phone", &mut lead.phone, changes.phone.as_ref(), |phone| phone.as_str().to_string());
    log.len() > before
}

async fn rectify(
    state: &AppState,
    ctx: &TenantCtx,
    keys: &TenantKeys,
    request: &mut SubjectRequest,
    subject: &Subject,
    batch: &mut Batch,
    now: Timestamp,
) -> Outcome {
    let Some(changes) = request.changes.clone() else {
        return Err(ApiError::Validation(steward_domain::ValidationErrors::single(
            "changes",
            "a rectification needs the corrected fields",
        )));
    };
    let store = state.store.as_ref();
    let person = find(store, ctx, subject).await?;
    let mut log = Vec::new();
    let mut rectified: BTreeMap<LeadId, Lead> = BTreeMap::new();
    for mut lead in person.leads.clone() {
        if rectify_lead(&mut lead, &changes, &mut log) {
            lead.updated_at = now;
            batch.update(ctx, keys, &lead)?;
        }
        rectified.insert(lead.id, lead);
    }
    let old_emails: HashSet<String> =
        person.leads.iter().filter_map(|lead| lead.email.as_ref().map(|email| email.lookup_key())).collect();
    let mut contacts = 0;
    for mut organization in person.organizations.clone() {
        let mut changed = false;
        for contact in &mut organization.contacts {
            let by_email = contact.email.as_ref().is_some_and(|e| old_emails.contains(&e.lookup_key()));
            let lead = rectified.get(&contact.lead_id);
            if lead.is_none() && !by_email {
                continue;
            }
            let mut updated = match lead {
                Some(lead) => Contact { role: contact.role.clone(), ..Contact::of(lead) },
                None => contact.clone(),
            };
            if lead.is_none() {
                updated.email = changes.email.clone().or(updated.email);
            }
            if &updated != contact {
                let id = organization.id.into_uuid();
                if updated.email != contact.email {
                    log.push(FieldChange {
                        record: "organization_contact",
                        id,
                        field: "email",
                        before: contact.email.as_ref().map(|e| e.as_str().to_string()),
                        after: updated.email.as_ref().map(|e| e.as_str().to_string()),
                    });
                }
                if updated.name != contact.name {
                    log.push(FieldChange {
                        record: "organization_contact",
                        id,
                        field: "name",
                        before: contact.name.clone(),
                        after: updated.name.clone(),
                    });
                }
                *contact = updated;
                contacts += 1;
                changed = true;
            }
        }
        if let (Some(email), Some(new)) = (&organization.email, &changes.email)
            && old_emails.contains(&email.lookup_key())
        {
            organization.email = Some(new.clone());
            changed = true;
        }
        if changed {
            organization.updated_at = now;
            batch.update(ctx, keys, &organization)?;
        }
    }
    // The person is known by the new values from now on: their requests follow.
    let renamed = Subject {
        email: changes.email.clone().or(subject.email.clone()),
        phone: changes.phone.clone().or(subject.phone.clone()),
        ..subject.clone()
    };
    let new_keys = subject_keys(keys, &renamed);
    let mut requests = 0;
    for mut earlier in person.subject_requests.iter().filter(|r| r.id != request.id).cloned() {
        earlier.subject_keys.email = new_keys.email.clone().or(earlier.subject_keys.email);
        earlier.subject_keys.phone = new_keys.phone.clone().or(earlier.subject_keys.phone);
        if let Some(open) = earlier.subject.as_mut() {
            open.email = renamed.email.clone().or(open.email.take());
            open.phone = renamed.phone.clone().or(open.phone.take());
            earlier.subject_hint = open.hint();
        }
        batch.update(ctx, keys, &earlier)?;
        requests += 1;
    }
    request.subject_keys = new_keys;
    request.subject_hint = renamed.hint();
    let lead_changes = log.iter().filter(|c| c.record == "lead").map(|c| c.id).collect::<HashSet<_>>().len();
    let counts = BTreeMap::from([
        ("leads".to_string(), lead_changes as u64),
        ("organization_contacts".to_string(), contacts),
        ("subject_requests".to_string(), requests),
    ]);
    let note = person.leads.is_empty().then(|| "no lead of this person was found; nothing was changed".to_string());
    Ok((CompletionReport { counts, archive: None, note }, serde_json::to_value(&log).unwrap_or_default()))
}

async fn restrict(
    state: &AppState,
    ctx: &TenantCtx,
    keys: &TenantKeys,
    subject: &Subject,
    batch: &mut Batch,
    now: Timestamp,
) -> Outcome {
    let person = find(state.store.as_ref(), ctx, subject).await?;
    let (mut leads, mut profiles) = (0, 0);
    for mut lead in person.leads {
        if lead.restricted_at.is_none() {
            lead.restricted_at = Some(now);
            lead.updated_at = now;
            batch.update(ctx, keys, &lead)?;
            leads += 1;
        }
    }
    for mut profile in person.visitor_profiles {
        if profile.restricted_at.is_none() {
            profile.restricted_at = Some(now);
            batch.update(ctx, keys, &profile)?;
            profiles += 1;
        }
    }
    let counts = BTreeMap::from([("leads".to_string(), leads), ("visitor_profiles".to_string(), profiles)]);
    Ok((CompletionReport { counts, archive: None, note: None }, serde_json::Value::Null))
}

async fn object(
    state: &AppState,
    ctx: &TenantCtx,
    keys: &TenantKeys,
    request: &SubjectRequest,
    subject: &Subject,
    batch: &mut Batch,
    now: Timestamp,
) -> Outcome {
    let store = state.store.as_ref();
    let before = find(store, ctx, subject).await?;
    let visitors: Vec<VisitorId> = before.visitor_profiles.iter().map(|p| p.id).chain(subject.visitor_id).collect();
    let visitor_keys: BTreeSet<Vec<u8>> =
        visitors.iter().map(|visitor| Lookup::VisitorId.key(keys, &visitor.to_string())).collect();
    let ledger = block(state, ctx, request, visitor_keys, LedgerReason::Objection, visitors).await?;
    let person = find(store, ctx, subject).await?;
    let (mut leads, mut profiles) = (0, 0);
    for mut lead in person.leads {
        lead.objected_at.get_or_insert(now);
        lead.score = None;
        lead.consent =
            Some(Consent { marketing: false, captured_at: now, source: Some("objection (GDPR Art. 21)".into()) });
        lead.updated_at = now;
        batch.update(ctx, keys, &lead)?;
        leads += 1;
    }
    for mut profile in person.visitor_profiles {
        profile.objected_at.get_or_insert(now);
        batch.update(ctx, keys, &profile)?;
        profiles += 1;
    }
    let counts = BTreeMap::from([
        ("leads".to_string(), leads),
        ("visitor_profiles".to_string(), profiles),
        ("erasure_ledger".to_string(), ledger),
    ]);
    let note = Some("marketing consent withdrawn, scores cleared; the person's browsers are no longer tracked".into());
    Ok((CompletionReport { counts, archive: None, note }, serde_json::Value::Null))
}

async fn access(
    state: &AppState,
    ctx: &TenantCtx,
    request: &SubjectRequest,
    subject: &Subject,
    now: Timestamp,
) -> Outcome {
    let store = state.store.as_ref();
    let person = with_audit(store, ctx, find(store, ctx, subject).await?).await?;
    let counts = person.counts();
    let key = format!("subject-requests/{}/{}.zip", ctx.tenant_id(), request.id);
    let files = state.files.clone();
    let tenant = store.get_tenant(ctx.tenant_id()).await?.map(|t| t.name).unwrap_or_default();
    let summary = summary(&tenant, request, &person, now);
    let keys = store.keys(ctx)?;
    let written = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, String)> {
        // Encrypted with the tenant's key; the ZIP is written front to back (no seeking).
        let file = zip::write::StreamWriter::new(files.create_sealed(&keys, &key)?);
        let (_, plain) = write_archive(file, &person, &summary)?.into_inner().finish()?;
        files.commit(&key)?;
        Ok((plain.bytes, plain.sha256))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(ApiError::Internal)?;
    let days = i64::from(state.settings.exports.file_days);
    let archive = ArchiveFile {
        key: format!("subject-requests/{}/{}.zip", ctx.tenant_id(), request.id),
        bytes: written.0,
        sha256: written.1,
        expires_at: now.checked_add(time::Duration::days(days)).unwrap_or(now),
    };
    Ok((CompletionReport { counts, archive: Some(archive), note: None }, serde_json::Value::Null))
}

fn csv_member<R: Dataset>(
    archive: &mut Archive<impl Write + std::io::Seek + Send>,
    name: &str,
    rows: &[R],
) -> anyhow::Result<()> {
    archive.member(name, |out| {
        let mut writer = Writer::<_, R>::new(Format::Csv, out)?;
        for row in rows {
            writer.write(row)?;
        }
        writer.finish().map(|_| ())
    })?;
    Ok(())
}

fn json_member<T: Serialize + ?Sized>(
    archive: &mut Archive<impl Write + std::io::Seek + Send>,
    name: &str,
    value: &T,
) -> anyhow::Result<()> {
    archive.member(name, |out| Ok(serde_json::to_writer_pretty(out, value)?))?;
    Ok(())
}

/// The access archive: every record as JSON, the tabular ones as CSV too, the JSON Schemas of
/// the datasets, and a summary a person can read.
fn write_archive<W: Write + std::io::Seek + Send>(out: W, person: &Person, summary: &str) -> anyhow::Result<W> {
    let mut archive = Archive::new(out);
    archive.add("README.txt", summary.as_bytes())?;
    json_member(&mut archive, "leads.json", &person.leads)?;
    json_member(&mut archive, "visitor-profiles.json", &person.visitor_profiles)?;
    json_member(&mut archive, "journeys.json", &person.journeys)?;
    json_member(&mut archive, "organization-contacts.json", &person.organization_contacts)?;
    let requests: Vec<SubjectRequest> = person.subject_requests.iter().cloned().map(SubjectRequest::public).collect();
    json_member(&mut archive, "subject-requests.json", &requests)?;
    json_member(&mut archive, "audit-entries.json", &person.audit_entries)?;
    csv_member(&mut archive, "leads.csv", &person.leads)?;
    csv_member(&mut archive, "visitor-profiles.csv", &person.visitor_profiles)?;
    csv_member(&mut archive, "journeys.csv", &person.journeys)?;
    json_member(&mut archive, "schemas/leads.schema.json", &steward_export::json_schema::<Lead>())?;
    json_member(
        &mut archive,
        "schemas/visitor-profiles.schema.json",
        &steward_export::json_schema::<VisitorProfile>(),
    )?;
    json_member(&mut archive, "schemas/journeys.schema.json", &steward_export::json_schema::<Journey>())?;
    Ok(archive.finish()?)
}

fn summary(tenant: &str, request: &SubjectRequest, person: &Person, now: Timestamp) -> String {
    let counts = person.counts();
    let count = |name: &str| counts.get(name).copied().unwrap_or(0);
    let mut text = String::new();
    text.push_str("Your personal data: a copy (GDPR Art. 15) in portable formats (Art. 20)\n");
    text.push_str("=====================================================================\n\n");
    text.push_str(&format!(
        "Controller: {tenant}\nRequest: {}\nReceived: {}\nPrepared: {now}\n\n",
        request.id, request.received_at
    ));
    text.push_str("What is held on you:\n");
    text.push_str(&format!(
        "  - {} contact record(s) (leads.json, leads.csv): what you gave in forms and chats, with your consent\n",
        count("leads")
    ));
    text.push_str(&format!(
        "  - {} visitor profile(s) (visitor-profiles.json, .csv): pseudonymous statistics of your visits\n",
        count("visitor_profiles")
    ));
    text.push_str(&format!(
        "  - {} visit(s) with {} event(s) (journeys.json, journeys.csv): the pages you viewed, in order\n",
        count("sessions"),
        count("events")
    ));
    text.push_str(&format!(
        "  - {} entry(ies) in company contact lists (organization-contacts.json)\n",
        count("organization_contacts")
    ));
    text.push_str(&format!("  - {} earlier request(s) of yours (subject-requests.json)\n", count("subject_requests")));
    text.push_str(&format!(
        "  - {} audit log entry(ies) naming your records (audit-entries.json)\n\n",
        count("audit_entries")
    ));
    if let Some(lead) = person.leads.first() {
        let purposes = if lead.consent.as_ref().is_some_and(|c| c.marketing) {
            "sales contact and marketing (you consented)"
        } else {
            "answering your enquiry"
        };
        text.push_str(&format!("Purpose: {purposes}.\n"));
    }
    text.push_str(
        "Source: the website's chat, forms and visit statistics (IP addresses are kept only as their /24 network).\n",
    );
    text.push_str("Recipients: the controller; the service provider processes the data on its behalf.\n");
    text.push_str("Storage: records are deleted when the controller's retention period ends.\n");
    text.push_str(
        "Your rights: rectification, erasure, restriction, objection, and a complaint to a supervisory authority.\n\n",
    );
    text.push_str(
        "schemas/ describes every JSON file (JSON Schema 2020-12); MANIFEST.sha256 lists a checksum of every file.\n",
    );
    text
}
