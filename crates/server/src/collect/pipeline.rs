//! The collection pipeline: one writer per process turns hits into journeys and captured leads
//! into linked records, and commits whole groups of requests in one transaction.
//!
//! Requests hand their validated hits to the writer and wait for the commit that holds them (a
//! 200 means stored). While one group commits, the next requests queue up and become the next
//! group: under load a transaction carries many requests (group commit), at rest a request
//! waits for nothing but its own write. Being the only writer of journeys on this node, the
//! writer keeps each recent visitor's profile and last session in memory and reads the store
//! only for visitors it has not seen lately or for hits older than what it holds.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use steward_domain::journey::{self, Hit, Tail};
use steward_domain::subject::{LedgerEntry, LedgerReason};
use steward_domain::tenant::Domain;
use steward_domain::{
    Event, Lead, Organization, OrganizationId, Session, TenantId, Timestamp, VisitorId, VisitorProfile,
};
use steward_store::doc::MAX_PAGE;
use steward_store::{
    Batch, DocKind, ListQuery, Lookup, Record, Store, StoreError, StoreExt, StoreResult, TenantCtx, TenantKeys, Value,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::state::Clock;

/// Visitors whose journey tail stays in memory.
const CACHED_VISITORS: usize = 50_000;
/// A tail longer than this is read again when needed instead of being kept.
const CACHED_EVENTS_PER_VISITOR: usize = 2_000;
/// Events all cached tails hold together (a few hundred bytes each): past this the least recently
/// written visitors go, whatever their number (measured by `scripts/soak`, see BENCHMARKS.md).
const CACHED_EVENTS: usize = 100_000;
/// Events one transaction carries at most (requests are never split).
const GROUP_EVENTS: usize = 5_000;
const QUEUE: usize = 1_024;

/// Hits of one visitor from one request, with the leads its form submits carry.
#[derive(Debug)]
pub struct Visit {
    pub ctx: TenantCtx,
    pub visitor: VisitorId,
    pub hits: Vec<Hit>,
    pub leads: Vec<Lead>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectError {
    #[error("{0}")]
    Store(Arc<StoreError>),
    #[error("the visitor profile {0} does not exist for this tenant")]
    NoVisitor(VisitorId),
    #[error("the collection pipeline has stopped")]
    Stopped,
    /// The person was erased at their request; what arrives for them is dropped.
    #[error("this person's data was erased at their request (GDPR Art. 17); nothing about them is stored again")]
    Erased,
}

impl From<StoreError> for CollectError {
    fn from(error: StoreError) -> Self {
        Self::Store(Arc::new(error))
    }
}

/// The handle requests use; the writer starts with the first job.
#[derive(Clone)]
pub struct Collector {
    store: Arc<dyn Store>,
    clock: Clock,
    sender: Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Collector")
    }
}

struct Job {
    work: Work,
    reply: Reply,
}

enum Work {
    Visit(Visit),
    Lead(TenantCtx, Box<Lead>),
    Forget(TenantCtx, VisitorId),
    /// New ledger entries of a tenant and the visitors they name.
    Block(TenantCtx, Vec<(Vec<u8>, LedgerReason)>, Vec<VisitorId>),
}

enum Reply {
    Visit(oneshot::Sender<Result<Vec<Lead>, CollectError>>),
    Lead(oneshot::Sender<Result<Lead, CollectError>>),
    Done(oneshot::Sender<()>),
    Nothing,
}

/// What a job produced, sent once its group committed.
enum Done {
    Leads(Vec<Lead>),
    Lead(Box<Lead>),
    Nothing,
}

impl Job {
    fn size(&self) -> usize {
        match &self.work {
            Work::Visit(visit) => visit.hits.len() + visit.leads.len(),
            Work::Lead(..) | Work::Forget(..) | Work::Block(..) => 1,
        }
    }

    fn visitor(&self) -> Option<VisitorKey> {
        match &self.work {
            Work::Visit(visit) => Some((visit.ctx.tenant_id(), visit.visitor)),
            Work::Lead(ctx, lead) => lead.visitor_profile_id.map(|id| (ctx.tenant_id(), id)),
            Work::Forget(ctx, visitor) => Some((ctx.tenant_id(), *visitor)),
            Work::Block(..) => None,
        }
    }

    fn answer(self, result: Result<Done, CollectError>) {
        match (self.reply, result) {
            (Reply::Visit(reply), Ok(Done::Leads(leads))) => drop(reply.send(Ok(leads))),
            (Reply::Lead(reply), Ok(Done::Lead(lead))) => drop(reply.send(Ok(*lead))),
            (Reply::Visit(reply), Err(error)) => drop(reply.send(Err(error))),
            (Reply::Lead(reply), Err(error)) => drop(reply.send(Err(error))),
            (Reply::Done(reply), _) => drop(reply.send(())),
            // A job's result always matches its reply; anything else has no one waiting.
            _ => {}
        }
    }
}

impl Collector {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, clock, sender: Arc::new(OnceLock::new()) }
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let writer = Writer {
                store: self.store.clone(),
                clock: self.clock.clone(),
                cache: Cache::default(),
                ledgers: HashMap::new(),
            };
            tokio::spawn(writer.run(receiver));
            sender
        })
    }

    /// Stores a visitor's hits and leads; answers once they are committed with the leads as
    /// stored (linked to the visitor and to an organization).
    pub async fn record(&self, visit: Visit) -> Result<Vec<Lead>, CollectError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { work: Work::Visit(visit), reply: Reply::Visit(reply) };
        self.sender().send(job).await.map_err(|_| CollectError::Stopped)?;
        answer.await.map_err(|_| CollectError::Stopped)?
    }

    /// Stores a lead captured outside the tracker (the API), linked the same way.
    pub async fn capture(&self, ctx: TenantCtx, lead: Lead) -> Result<Lead, CollectError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { work: Work::Lead(ctx, Box::new(lead)), reply: Reply::Lead(reply) };
        self.sender().send(job).await.map_err(|_| CollectError::Stopped)?;
        answer.await.map_err(|_| CollectError::Stopped)?
    }

    /// Stores many leads (an import), linked like [`Collector::capture`], with one result per
    /// lead in order. All are queued before any answer is awaited, so the writer commits them
    /// in few transactions; one that fails (an erased person) fails alone.
    pub async fn capture_many(&self, ctx: TenantCtx, leads: Vec<Lead>) -> Vec<Result<Lead, CollectError>> {
        let mut answers = Vec::with_capacity(leads.len());
        for lead in leads {
            let (reply, answer) = oneshot::channel();
            let job = Job { work: Work::Lead(ctx, Box::new(lead)), reply: Reply::Lead(reply) };
            let sent = self.sender().send(job).await.map_err(|_| CollectError::Stopped);
            answers.push(sent.map(|()| answer));
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(answer) => answer.await.unwrap_or(Err(CollectError::Stopped)),
                Err(error) => Err(error),
            });
        }
        results
    }

    /// Drops what the writer remembers of a visitor whose records changed elsewhere (erasure).
    pub async fn forget(&self, ctx: TenantCtx, visitor: VisitorId) {
        let job = Job { work: Work::Forget(ctx, visitor), reply: Reply::Nothing };
        let _ = self.sender().send(job).await;
    }

    /// Adds ledger entries (keyed hashes, stored already) to what the writer drops, forgets the
    /// visitors, and returns once everything queued before is committed: from then on nothing
    /// for these people is written on this node, so an erasure can delete what is there.
    pub async fn block(
        &self,
        ctx: TenantCtx,
        entries: Vec<(Vec<u8>, LedgerReason)>,
        visitors: Vec<VisitorId>,
    ) -> Result<(), CollectError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { work: Work::Block(ctx, entries, visitors), reply: Reply::Done(reply) };
        self.sender().send(job).await.map_err(|_| CollectError::Stopped)?;
        answer.await.map_err(|_| CollectError::Stopped)
    }
}

/// How long a node trusts its copy of a tenant's ledger: entries another node adds reach this
/// one within this time.
const LEDGER_TTL: Duration = Duration::from_secs(60);

/// A tenant's erasure ledger as the writer checks it.
struct LedgerView {
    entries: HashMap<Vec<u8>, LedgerReason>,
    loaded: Instant,
}

impl LedgerView {
    fn reason(&self, key: &[u8]) -> Option<LedgerReason> {
        self.entries.get(key).copied()
    }

    /// Whether a lead names an erased person by any of its identifiers.
    fn erases(&self, keys: &TenantKeys, lead: &Lead) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let mut candidates = Vec::with_capacity(4);
        if let Some(email) = &lead.email {
            candidates.push(Lookup::Email.key(keys, &email.lookup_key()));
        }
        if let Some(phone) = &lead.phone {
            candidates.push(Lookup::Phone.key(keys, phone.as_str()));
        }
        if let Some(contact) = &lead.contact_id {
            candidates.push(Lookup::ContactId.key(keys, contact));
        }
        if let Some(visitor) = lead.visitor_profile_id {
            candidates.push(Lookup::VisitorId.key(keys, &visitor.to_string()));
        }
        candidates.iter().any(|key| self.reason(key) == Some(LedgerReason::Erasure))
    }
}

type VisitorKey = (TenantId, VisitorId);

/// What the writer knows of one visitor: `profile` is `None` for one not stored yet.
#[derive(Debug, Clone, Default)]
struct VisitorState {
    profile: Option<VisitorProfile>,
    tail: Tail,
}

/// Recent visitors, least recently written out first, bounded both in visitors and in the events
/// their tails hold together: memory stays flat however many visitors come and go.
#[derive(Default)]
struct Cache {
    states: hashlink::LinkedHashMap<VisitorKey, (VisitorState, usize)>,
    events: usize,
}

impl Cache {
    fn keep(&mut self, key: VisitorKey, state: VisitorState) {
        self.take(&key);
        let events: usize = state.tail.sessions.iter().map(|(_, events)| events.len()).sum();
        if events > CACHED_EVENTS_PER_VISITOR {
            return;
        }
        self.states.insert(key, (state, events));
        self.events += events;
        while self.states.len() > CACHED_VISITORS || self.events > CACHED_EVENTS {
            match self.states.pop_front() {
                Some((_, (_, events))) => self.events -= events,
                None => break,
            }
        }
    }

    /// Takes the visitor out (to stage or forget it).
    fn take(&mut self, key: &VisitorKey) -> Option<VisitorState> {
        let (state, events) = self.states.remove(key)?;
        self.events -= events;
        Some(state)
    }
}

/// The changes of one group before they commit: its view of every visitor and organization
/// it touched, over the cache and the store, and the writes so far.
#[derive(Default)]
struct Staging {
    visitors: HashMap<VisitorKey, Staged>,
    organizations: HashMap<(TenantId, OrganizationId), (TenantCtx, Organization, bool)>,
    by_domain: HashMap<(TenantId, String), OrganizationId>,
    batch: Batch,
}

struct Staged {
    ctx: TenantCtx,
    state: VisitorState,
    /// Whether the profile was stored before this group (an update, not an insert).
    stored: bool,
    changed: bool,
}

struct Writer {
    store: Arc<dyn Store>,
    clock: Clock,
    cache: Cache,
    ledgers: HashMap<TenantId, LedgerView>,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        while let Some(first) = receiver.recv().await {
            let mut size = first.size();
            let mut group = vec![first];
            while size < GROUP_EVENTS {
                match receiver.try_recv() {
                    Ok(job) => {
                        size += job.size();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group).await;
        }
    }

    /// Commits a group in one transaction; if that fails, each job again on its own, so that
    /// one bad job fails alone and its neighbours are stored.
    async fn commit(&mut self, group: Vec<Job>) {
        let now = self.clock.now();
        let mut staging = Staging::default();
        let mut done = Vec::with_capacity(group.len());
        let mut result = Ok(());
        for job in &group {
            match self.prepare(&mut staging, &job.work, now).await {
                Ok(outcome) => done.push(outcome),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        let result = match result {
            Ok(()) => match self.finish(&mut staging) {
                Ok(()) => self.store.write_docs(staging.batch.writes()).await.map_err(|e| Some(CollectError::from(e))),
                Err(error) => Err(Some(CollectError::from(error))),
            },
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                for (key, staged) in staging.visitors {
                    self.cache.keep(key, staged.state);
                }
                for (job, outcome) in group.into_iter().zip(done) {
                    job.answer(Ok(outcome));
                }
            }
            Err(error) if group.len() == 1 => {
                for job in group {
                    if let Some(key) = job.visitor() {
                        self.cache.take(&key);
                    }
                    job.answer(Err(error.clone().unwrap_or(CollectError::Stopped)));
                }
            }
            Err(error) => {
                if let Some(error) = error {
                    tracing::warn!(error = %error, jobs = group.len(), "a collection group failed; committing its jobs one by one");
                }
                for job in group {
                    Box::pin(self.commit(vec![job])).await;
                }
            }
        }
    }

    /// Stages one job's changes. `Err(None)` asks for the group to be committed job by job.
    async fn prepare(
        &mut self,
        staging: &mut Staging,
        work: &Work,
        now: Timestamp,
    ) -> Result<Done, Option<CollectError>> {
        match work {
            Work::Visit(visit) => {
                let keys = self.store.keys(&visit.ctx).map_err(|e| Some(e.into()))?;
                let ledger = self.ledger(&visit.ctx).await.map_err(Some)?;
                if ledger.entries.is_empty() {
                    return self.place(staging, visit, now).await.map(Done::Leads);
                }
                if ledger.reason(&Lookup::VisitorId.key(&keys, &visit.visitor.to_string())).is_some() {
                    // Erased or objected: the visit is dropped, and the tracker is not told.
                    return Ok(Done::Leads(Vec::new()));
                }
                let leads: Vec<Lead> = visit.leads.iter().filter(|lead| !ledger.erases(&keys, lead)).cloned().collect();
                if leads.len() == visit.leads.len() {
                    return self.place(staging, visit, now).await.map(Done::Leads);
                }
                let kept = Visit { ctx: visit.ctx, visitor: visit.visitor, hits: visit.hits.clone(), leads };
                self.place(staging, &kept, now).await.map(Done::Leads)
            }
            Work::Lead(ctx, lead) => {
                let keys = self.store.keys(ctx).map_err(|e| Some(e.into()))?;
                if self.ledger(ctx).await.map_err(Some)?.erases(&keys, lead) {
                    return Err(Some(CollectError::Erased));
                }
                let lead = (**lead).clone();
                if let Some(visitor) = lead.visitor_profile_id {
                    let key = (ctx.tenant_id(), visitor);
                    self.stage_visitor(staging, ctx, visitor, now).await?;
                    let Some(mut staged) = staging.visitors.remove(&key) else { return Err(None) };
                    let Some(profile) = staged.state.profile.as_mut() else {
                        return Err(Some(CollectError::NoVisitor(visitor)));
                    };
                    let linked = self.link(staging, ctx, Some(profile), lead, now).await;
                    staged.changed = true;
                    staging.visitors.insert(key, staged);
                    linked.map(|lead| Done::Lead(Box::new(lead))).map_err(Some)
                } else {
                    self.link(staging, ctx, None, lead, now).await.map(|lead| Done::Lead(Box::new(lead))).map_err(Some)
                }
            }
            Work::Forget(ctx, visitor) => {
                let key = (ctx.tenant_id(), *visitor);
                self.cache.take(&key);
                if staging.visitors.contains_key(&key) {
                    return Err(None);
                }
                Ok(Done::Nothing)
            }
            Work::Block(ctx, entries, visitors) => {
                let ledger = self.ledger(ctx).await.map_err(Some)?;
                ledger.entries.extend(entries.iter().cloned());
                let mut staged = false;
                for visitor in visitors {
                    let key = (ctx.tenant_id(), *visitor);
                    self.cache.take(&key);
                    staged |= staging.visitors.contains_key(&key);
                }
                // Staged before the block in this group: commit job by job, so those writes land
                // before the block answers and the erasure finds them.
                if staged { Err(None) } else { Ok(Done::Nothing) }
            }
        }
    }

    async fn place(
        &mut self,
        staging: &mut Staging,
        visit: &Visit,
        now: Timestamp,
    ) -> Result<Vec<Lead>, Option<CollectError>> {
        let ctx = &visit.ctx;
        let key = (ctx.tenant_id(), visit.visitor);
        let earliest = visit.hits.iter().map(|hit| hit.occurred_at).min().unwrap_or(now);
        self.stage_visitor(staging, ctx, visit.visitor, earliest).await?;
        let Some(mut staged) = staging.visitors.remove(&key) else { return Err(None) };
        let state = std::mem::take(&mut staged.state);
        let placement = journey::place(visit.visitor, state.profile, state.tail, visit.hits.clone());
        let keys = self.store.keys(ctx).map_err(|e| Some(e.into()))?;
        let batch = &mut staging.batch;
        let staged_result: StoreResult<()> = (|| {
            for id in &placement.sessions_deleted {
                batch.delete(ctx, DocKind::Session, id.into_uuid());
            }
            for session in &placement.sessions_inserted {
                batch.insert(ctx, &keys, session)?;
            }
            for session in &placement.sessions_updated {
                batch.update(ctx, &keys, session)?;
            }
            for event in &placement.events_inserted {
                batch.insert(ctx, &keys, event)?;
            }
            for event in &placement.events_updated {
                batch.update(ctx, &keys, event)?;
            }
            Ok(())
        })();
        staged_result.map_err(|e| Some(e.into()))?;
        let mut profile = placement.profile;
        let new_visits = placement.sessions_inserted.len() as u64;
        if let (Some(organization), true) = (profile.organization_id, new_visits > 0)
            && let Some(org) = self.stage_organization(staging, ctx, organization).await.map_err(Some)?
        {
            org.count_visits(new_visits, profile.last_seen_at, now);
        }
        let mut leads = Vec::with_capacity(visit.leads.len());
        for lead in &visit.leads {
            leads.push(self.link(staging, ctx, Some(&mut profile), lead.clone(), now).await.map_err(Some)?);
        }
        staged.state = VisitorState { profile: Some(profile), tail: placement.tail };
        staged.changed = true;
        staging.visitors.insert(key, staged);
        Ok(leads)
    }

    /// Puts the visitor into the staging area: from an earlier job of the group, the cache or the
    /// store, with every session that hits from `earliest` on may change.
    async fn stage_visitor(
        &mut self,
        staging: &mut Staging,
        ctx: &TenantCtx,
        visitor: VisitorId,
        earliest: Timestamp,
    ) -> Result<(), Option<CollectError>> {
        let key = (ctx.tenant_id(), visitor);
        if let Some(staged) = staging.visitors.get(&key) {
            return if journey::tail_covers(&staged.state.tail, staged.state.profile.as_ref(), earliest) {
                Ok(())
            } else {
                Err(None)
            };
        }
        let state = match self.cache.take(&key) {
            Some(state) if journey::tail_covers(&state.tail, state.profile.as_ref(), earliest) => state,
            _ => load(self.store.as_ref(), ctx, visitor, earliest).await.map_err(|e| Some(e.into()))?,
        };
        let stored = state.profile.is_some();
        staging.visitors.insert(key, Staged { ctx: *ctx, state, stored, changed: false });
        Ok(())
    }

    async fn stage_organization<'a>(
        &self,
        staging: &'a mut Staging,
        ctx: &TenantCtx,
        id: OrganizationId,
    ) -> Result<Option<&'a mut Organization>, CollectError> {
        let key = (ctx.tenant_id(), id);
        if let std::collections::hash_map::Entry::Vacant(vacant) = staging.organizations.entry(key) {
            match self.store.get::<Organization>(ctx, id.into_uuid()).await? {
                Some(organization) => {
                    vacant.insert((*ctx, organization, true));
                }
                None => return Ok(None),
            }
        }
        Ok(staging.organizations.get_mut(&key).map(|(_, organization, _)| organization))
    }

    /// Links a lead to its visitor and to the organization of its work email (found by domain or
    /// created; free-mail domains name no organization), and stages it.
    async fn link(
        &self,
        staging: &mut Staging,
        ctx: &TenantCtx,
        mut profile: Option<&mut VisitorProfile>,
        mut lead: Lead,
        now: Timestamp,
    ) -> Result<Lead, CollectError> {
        let newly_linked = profile.as_ref().is_some_and(|p| p.organization_id.is_none());
        if let Some(profile) = profile.as_deref_mut() {
            profile.identify(&mut lead);
        }
        if lead.organization_id.is_none() {
            lead.organization_id = self.organization_by_email(staging, ctx, &lead, now).await?;
        }
        if let Some(id) = lead.organization_id {
            let visits = profile.as_ref().map(|p| (p.visit_count, p.first_seen_at, p.last_seen_at));
            if let Some(organization) = self.stage_organization(staging, ctx, id).await? {
                organization.add_contact(&lead, visits.filter(|_| newly_linked), now);
            }
            if let Some(profile) = profile {
                profile.organization_id.get_or_insert(id);
            }
        }
        let keys = self.store.keys(ctx)?;
        staging.batch.insert(ctx, &keys, &lead)?;
        Ok(lead)
    }

    async fn organization_by_email(
        &self,
        staging: &mut Staging,
        ctx: &TenantCtx,
        lead: &Lead,
        now: Timestamp,
    ) -> Result<Option<OrganizationId>, CollectError> {
        let Some(email) = &lead.email else { return Ok(None) };
        let Ok(domain) = Domain::parse(email.domain()) else { return Ok(None) };
        if steward_domain::freemail::is_free_mail(domain.as_str()) {
            return Ok(None);
        }
        let by_domain = (ctx.tenant_id(), domain.as_str().to_string());
        if let Some(id) = staging.by_domain.get(&by_domain) {
            return Ok(Some(*id));
        }
        let query = ListQuery {
            limit: 1,
            equals: vec![("domain", Value::Text(domain.as_str().to_string()))],
            ..ListQuery::default()
        };
        let organization = match self.store.list::<Organization>(ctx, &query).await?.pop() {
            Some(found) => {
                let id = found.id;
                staging.organizations.entry((ctx.tenant_id(), id)).or_insert((*ctx, found, true));
                id
            }
            None => {
                let created = Organization::from_email_domain(domain, lead.company_name.as_deref(), now);
                let id = created.id;
                staging.organizations.insert((ctx.tenant_id(), id), (*ctx, created, false));
                id
            }
        };
        staging.by_domain.insert(by_domain, organization);
        Ok(Some(organization))
    }

    /// The tenant's ledger, read again when older than [`LEDGER_TTL`].
    async fn ledger(&mut self, ctx: &TenantCtx) -> Result<&mut LedgerView, CollectError> {
        let fresh = self.ledgers.get(&ctx.tenant_id()).is_some_and(|view| view.loaded.elapsed() < LEDGER_TTL);
        if !fresh {
            let mut entries = HashMap::new();
            let mut query = ListQuery { limit: MAX_PAGE, ..ListQuery::default() };
            loop {
                let page: Vec<LedgerEntry> = self.store.list(ctx, &query).await?;
                query.after = page.last().map(|entry| entry.id.into_uuid());
                let full = page.len() == MAX_PAGE as usize;
                for entry in page {
                    if let Some(key) = steward_store::records::from_hex(&entry.key) {
                        entries.insert(key, entry.reason);
                    }
                }
                if !full {
                    break;
                }
            }
            self.ledgers.insert(ctx.tenant_id(), LedgerView { entries, loaded: Instant::now() });
        }
        self.ledgers.get_mut(&ctx.tenant_id()).ok_or(CollectError::Stopped)
    }

    /// Stages the final state of every profile and organization the group changed.
    fn finish(&self, staging: &mut Staging) -> StoreResult<()> {
        for staged in staging.visitors.values().filter(|staged| staged.changed) {
            let Some(profile) = &staged.state.profile else { continue };
            let keys = self.store.keys(&staged.ctx)?;
            if staged.stored {
                staging.batch.update(&staged.ctx, &keys, profile)?;
            } else {
                staging.batch.insert(&staged.ctx, &keys, profile)?;
            }
        }
        for (ctx, organization, stored) in staging.organizations.values() {
            let keys = self.store.keys(ctx)?;
            if *stored {
                staging.batch.update(ctx, &keys, organization)?;
            } else {
                staging.batch.insert(ctx, &keys, organization)?;
            }
        }
        Ok(())
    }
}

/// Reads a visitor's profile and every session ending at or after `journey::tail_from(earliest)`
/// with all their events.
async fn load(
    store: &dyn Store,
    ctx: &TenantCtx,
    visitor: VisitorId,
    earliest: Timestamp,
) -> StoreResult<VisitorState> {
    let Some(profile) = store.get::<VisitorProfile>(ctx, visitor.into_uuid()).await? else {
        return Ok(VisitorState::default());
    };
    let sessions_query = ListQuery {
        updated_since: Some(journey::tail_from(earliest)),
        equals: vec![("visitor_profile_id", Value::Uuid(visitor.into_uuid()))],
        ..ListQuery::default()
    };
    let mut sessions: Vec<Session> = list_all(store, ctx, sessions_query).await?;
    sessions.sort_by_key(|session| session.visit_index);
    let mut events: HashMap<Uuid, Vec<Event>> = HashMap::new();
    if !sessions.is_empty() {
        let ids = sessions.iter().map(|session| Value::Uuid(session.id.into_uuid())).collect();
        let query = ListQuery { any_of: Some(("session_id", ids)), ..ListQuery::default() };
        for event in list_all::<Event>(store, ctx, query).await? {
            events.entry(event.session_id.into_uuid()).or_default().push(event);
        }
    }
    let sessions = sessions
        .into_iter()
        .map(|session| {
            let mut own = events.remove(&session.id.into_uuid()).unwrap_or_default();
            own.sort_by_key(|event| event.position);
            (session, own)
        })
        .collect();
    Ok(VisitorState { profile: Some(profile), tail: Tail { sessions } })
}

async fn list_all<R: Record>(store: &dyn Store, ctx: &TenantCtx, mut query: ListQuery) -> StoreResult<Vec<R>> {
    query.limit = MAX_PAGE;
    let keys = store.keys(ctx)?;
    let mut all = Vec::new();
    loop {
        let docs = store.list_docs(ctx, R::KIND, &query).await?;
        let full = docs.len() == MAX_PAGE as usize;
        query.after = docs.last().map(|doc| doc.id);
        for doc in &docs {
            all.push(steward_store::records::decode_doc(ctx, &keys, R::KIND, doc)?);
        }
        if !full {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(events: usize) -> VisitorState {
        let end = Timestamp::parse("2026-11-22T00:00:00Z").unwrap();
        let config = steward_demo::DemoConfig { seed: 1, organizations: 0, visitors: 1, leads: 0, start: end, end };
        let data = steward_demo::generate(&config);
        let session = data.sessions[0].clone();
        let event = data.events[0].clone();
        VisitorState { profile: None, tail: Tail { sessions: vec![(session, vec![event; events])] } }
    }

    #[test]
    fn the_cache_holds_at_most_its_events_and_visitors_and_rewriting_one_visitor_does_not_grow_it() {
        let tenant = TenantId::new();
        let mut cache = Cache::default();
        let busy = state(CACHED_EVENTS_PER_VISITOR);
        let fit = CACHED_EVENTS / CACHED_EVENTS_PER_VISITOR;
        for _ in 0..fit * 3 {
            cache.keep((tenant, VisitorId::new()), busy.clone());
            assert!(cache.events <= CACHED_EVENTS, "{} events cached", cache.events);
        }
        assert_eq!(cache.states.len(), fit);
        assert_eq!(cache.events, fit * CACHED_EVENTS_PER_VISITOR);

        // The same visitor written again and again takes one place and counts its events once.
        let returning = (tenant, VisitorId::new());
        for _ in 0..1_000 {
            cache.keep(returning, state(3));
        }
        assert_eq!(cache.states.len(), fit, "the oldest busy visitor made room once");
        assert_eq!(cache.events, (fit - 1) * CACHED_EVENTS_PER_VISITOR + 3);
        assert!(cache.take(&returning).is_some());
        assert_eq!(cache.events, (fit - 1) * CACHED_EVENTS_PER_VISITOR);
        assert!(cache.take(&returning).is_none());

        // Small tails: the number of visitors bounds the cache.
        let small = state(1);
        for _ in 0..CACHED_VISITORS + 10 {
            cache.keep((tenant, VisitorId::new()), small.clone());
        }
        assert_eq!(cache.states.len(), CACHED_VISITORS);
        assert_eq!(cache.events, CACHED_VISITORS);

        // A tail past the per-visitor bound is not kept, and drops what was kept of the visitor.
        let huge = (tenant, VisitorId::new());
        cache.keep(huge, state(1));
        cache.keep(huge, state(CACHED_EVENTS_PER_VISITOR + 1));
        assert!(cache.take(&huge).is_none());
        assert!(cache.events <= CACHED_VISITORS);
    }
}
