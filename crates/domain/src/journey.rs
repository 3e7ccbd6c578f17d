//! Journeys as collection builds them: hits placed into sessions, positions, time on page and the profile's aggregates.
//!
//! Placing is a rescan, not an append: the visitor's last sessions (the [`Tail`]) and the new hits
//! are put in one order and cut into sessions again. That is what makes late, reordered and
//! bridging hits end up exactly where they would have been had they arrived in order, and it keeps
//! the rules in one place instead of in a set of special cases. Everything here is pure; the caller
//! loads the tail and writes the [`Placement`] in one transaction.

use std::cmp::Reverse;

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::geo::Location;
use crate::id::{EventId, SessionId, VisitorId};
use crate::ip::IpNetwork;
use crate::text;
use crate::time::Timestamp;
use crate::touch::{Touch, Utm};
use crate::visitor::{Device, DeviceCount, Event, EventType, PageCount, ReferrerType, Session, VisitorProfile};
use crate::weburl::WebUrl;

/// The longest pause that still belongs to one visit.
pub const SESSION_GAP: Duration = Duration::minutes(30);

/// How many pages a profile lists; the whole page history is in the events.
pub const TOP_PAGES: usize = 20;

/// The bound `UtmInput` puts on each part, so that a touch built here passes the API's validation.
const MAX_UTM_PART: usize = 200;

const MICROS_PER_SECOND: i128 = 1_000_000;

/// Where and with what a hit was sent: the request's context (already masked/reduced at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct HitContext {
    pub device: Device,
    pub location: Location,
    pub ip_network: Option<IpNetwork>,
}

/// An event as collection accepted it, before it has a place in a session. `id` is assigned at
/// ingest (UUIDv7, in arrival order).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: EventId,
    pub occurred_at: Timestamp,
    pub kind: EventType,
    pub url: Option<WebUrl>,
    pub page_title: Option<String>,
    pub referrer_url: Option<WebUrl>,
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub context: HitContext,
}

/// The visitor's sessions that new hits may change, oldest first, each with ALL its events in position order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tail {
    pub sessions: Vec<(Session, Vec<Event>)>,
}

/// What placing hits changes; the caller writes it in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub profile: VisitorProfile,
    pub profile_is_new: bool,
    pub sessions_inserted: Vec<Session>,
    /// Only sessions whose stored value changed.
    pub sessions_updated: Vec<Session>,
    /// Sessions merged away.
    pub sessions_deleted: Vec<SessionId>,
    /// Every hit, now an [`Event`].
    pub events_inserted: Vec<Event>,
    /// Existing events whose `session_id`, `position` or `time_on_page_s` changed.
    pub events_updated: Vec<Event>,
    /// The new tail to keep in memory for the next placement: the LAST session with all its events.
    pub tail: Tail,
}

/// The earliest `ended_at` a stored session may have and still be changed by hits whose earliest
/// `occurred_at` is `earliest`: the caller loads every session of the visitor ending at or after
/// this (with all their events) as the Tail.
///
/// A session that ended more than [`SESSION_GAP`] before every hit can neither take one in nor be
/// bridged to the next, so it is safe to leave out.
pub fn tail_from(earliest: Timestamp) -> Timestamp {
    earliest.checked_sub(SESSION_GAP).unwrap_or_else(|| Timestamp::from_datetime(PrimitiveDateTime::MIN.assume_utc()))
}

/// Whether a tail kept from an earlier placement (only the last session) is enough for hits
/// whose earliest time is `earliest`: true when `earliest >= last session's started_at`
/// (or when the tail is empty AND the profile is None, i.e. a new visitor). Otherwise the caller must load from the store.
///
/// Hits at or after the last session's start cannot touch the gap before it, so the sessions
/// before it stay as they are; an empty tail of a known visitor only means nothing was kept.
pub fn tail_covers(tail: &Tail, profile: Option<&VisitorProfile>, earliest: Timestamp) -> bool {
    match tail.sessions.last() {
        Some((last, _)) => earliest >= last.started_at,
        None => profile.is_none(),
    }
}

/// Places hits (any order, possibly earlier than stored events) into the visitor's journey.
///
/// The caller guarantees the tail holds every session the hits can change ([`tail_from`],
/// [`tail_covers`]); sessions before the tail are never touched. The rules:
///
/// 1. **Order.** All events of the tail and all hits are sorted by `occurred_at`, then existing
///    events before hits (a hit sharing an instant with a stored event does not push it down a
///    position), then id (arrival order, so the result never depends on the input's order). Visit
///    indexes continue from the first tail session's, or from `profile.visit_count + 1` when the
///    tail is empty (1 for a new visitor).
/// 2. **Session starts.** At the first event; after a pause of more than [`SESSION_GAP`]; and at a
///    `page_view` whose URL carries UTM parameters that are not empty and differ from the
///    session's, because a new campaign is a new visit. A session's campaign is set by its first
///    page view with a URL, so that page view never splits its own session.
/// 3. **Session ids.** The sessions found reuse the tail's ids in order, so a session keeps its id
///    while its events stay in it; extra sessions get a new id, and tail sessions left over (a late
///    hit bridged a gap) are deleted. Only sessions whose value changed are reported as updated.
/// 4. **Session fields.** `started_at`/`ended_at` are the first and last event's times and
///    `duration_s` the whole seconds between; `entry_url`/`exit_url` are the first and last page
///    view's URL (else the first and last URL); `referrer_url` is the first event's; `utm` is the
///    entry URL's and `referrer_type` is classified from both. Device, location and network are
///    the first event's context: a hit's own, or for a stored event the stored session it came
///    from, because events do not keep a context of their own. `pageview_count` counts page views;
///    `converted` is set by a `conversion` or `form_submit`.
/// 5. **Events.** `position` is 1-based in the order above. `time_on_page_s` is only for page
///    views: whole seconds until the next page view of the session, for the last one until the
///    session's last event when that is later (else `None`, since nothing shows how long it was read).
/// 6. **Profile.** Created for a new visitor. `first_seen_at`/`last_seen_at` widen to the hits;
///    event, page view and conversion counts grow by the hits; `visit_count`,
///    `total_duration_s` and `devices` swap the tail's old sessions for the new ones, so a merge
///    counts one visit less; `top_pages` counts page-view hits by URL without query (which is
///    where personal data hides), at most [`TOP_PAGES`], most viewed first and equal counts in
///    the order they reached it; `first_touch` follows visit 1 when it is recomputed,
///    `last_touch` the latest session; `last_location` and `ip_network` follow the latest hit
///    only if no stored event is newer, because a late hit is not where the visitor is now.
/// 7. **Totality.** Deterministic apart from fresh session ids, and never panics: counts saturate,
///    out-of-range values fall back to the nearest representable one, and a new visitor placed
///    without hits is first seen at the epoch.
pub fn place(visitor: VisitorId, profile: Option<VisitorProfile>, tail: Tail, hits: Vec<Hit>) -> Placement {
    let first_visit = first_visit_index(&tail, profile.as_ref());
    let (stored, stored_events): (Vec<Session>, Vec<Vec<Event>>) = tail.sessions.into_iter().unzip();
    let contexts: Vec<HitContext> = stored.iter().map(context_of).collect();

    let entries = in_order(&contexts, stored_events, hits);
    let newest_hit = entries.last().and_then(Entry::hit_context).cloned();
    let groups = sessionize(entries);
    let sessions: Vec<Session> = groups
        .iter()
        .enumerate()
        .map(|(offset, group)| {
            let id = stored.get(offset).map_or_else(SessionId::new, |s| s.id);
            session_of(group, id, visitor, visit_index(first_visit, offset))
        })
        .collect();
    let events = events_of(groups, &sessions);

    let profile_is_new = profile.is_none();
    let mut profile = profile.unwrap_or_else(|| new_profile(visitor, &events.inserted));
    count_hits(&mut profile, &events.inserted);
    recount_sessions(&mut profile, first_visit, &stored, &sessions);
    if let Some(context) = newest_hit {
        profile.last_location = context.location;
        profile.ip_network = context.ip_network;
    }

    let sessions_deleted = stored.iter().skip(sessions.len()).map(|s| s.id).collect();
    let sessions_updated =
        sessions.iter().zip(&stored).filter(|(new, old)| new != old).map(|(new, _)| new.clone()).collect();
    let tail = Tail { sessions: sessions.last().map(|last| (last.clone(), events.last_session)).into_iter().collect() };
    let sessions_inserted = sessions.into_iter().skip(stored.len()).collect();
    Placement {
        profile,
        profile_is_new,
        sessions_inserted,
        sessions_updated,
        sessions_deleted,
        events_inserted: events.inserted,
        events_updated: events.updated,
        tail,
    }
}

/// One event of the rescan: stored in the tail, or a hit still without a place.
enum Entry<'t> {
    /// With the context of the stored session it came from.
    Stored {
        event: Event,
        context: &'t HitContext,
    },
    Hit(Hit),
}

/// What placing did to an event.
enum Change {
    Inserted,
    Moved,
    Kept,
}

impl<'t> Entry<'t> {
    fn occurred_at(&self) -> Timestamp {
        match self {
            Self::Stored { event, .. } => event.occurred_at,
            Self::Hit(hit) => hit.occurred_at,
        }
    }

    fn id(&self) -> EventId {
        match self {
            Self::Stored { event, .. } => event.id,
            Self::Hit(hit) => hit.id,
        }
    }

    fn kind(&self) -> EventType {
        match self {
            Self::Stored { event, .. } => event.kind,
            Self::Hit(hit) => hit.kind,
        }
    }

    fn url(&self) -> Option<&WebUrl> {
        match self {
            Self::Stored { event, .. } => event.url.as_ref(),
            Self::Hit(hit) => hit.url.as_ref(),
        }
    }

    fn referrer_url(&self) -> Option<&WebUrl> {
        match self {
            Self::Stored { event, .. } => event.referrer_url.as_ref(),
            Self::Hit(hit) => hit.referrer_url.as_ref(),
        }
    }

    fn context(&self) -> &HitContext {
        match self {
            Self::Stored { context, .. } => context,
            Self::Hit(hit) => &hit.context,
        }
    }

    fn hit_context(&self) -> Option<&HitContext> {
        match self {
            Self::Stored { .. } => None,
            Self::Hit(hit) => Some(&hit.context),
        }
    }

    fn is_hit(&self) -> bool {
        matches!(self, Self::Hit(_))
    }

    /// The URL of a page view: the only kind of event that lands a visitor on a page.
    fn landing_url(&self) -> Option<&WebUrl> {
        if self.kind() == EventType::PageView { self.url() } else { None }
    }

    fn placed(
        self,
        visitor: VisitorId,
        session_id: SessionId,
        position: u32,
        time_on_page_s: Option<u64>,
    ) -> (Event, Change) {
        match self {
            Self::Stored { mut event, .. } => {
                let before = (event.session_id, event.position, event.time_on_page_s);
                (event.session_id, event.position, event.time_on_page_s) = (session_id, position, time_on_page_s);
                let change =
                    if before == (session_id, position, time_on_page_s) { Change::Kept } else { Change::Moved };
                (event, change)
            }
            Self::Hit(hit) => {
                let event = Event {
                    id: hit.id,
                    session_id,
                    visitor_profile_id: visitor,
                    position,
                    occurred_at: hit.occurred_at,
                    kind: hit.kind,
                    url: hit.url,
                    page_title: hit.page_title,
                    referrer_url: hit.referrer_url,
                    time_on_page_s,
                    properties: hit.properties,
                };
                (event, Change::Inserted)
            }
        }
    }
}

/// A session being cut from the rescan. Never empty: it is opened by its first event.
struct Group<'t> {
    head: Entry<'t>,
    rest: Vec<Entry<'t>>,
    /// The UTM of the first page view with a URL, once there is one: what a later campaign is
    /// compared with.
    campaign: Option<Utm>,
}

impl<'t> Group<'t> {
    fn open(head: Entry<'t>) -> Self {
        let campaign = head.landing_url().map(utm_of);
        Self { head, rest: Vec::new(), campaign }
    }

    fn last(&self) -> &Entry<'t> {
        self.rest.last().unwrap_or(&self.head)
    }

    fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry<'t>> {
        std::iter::once(&self.head).chain(&self.rest)
    }

    fn into_entries(self) -> impl Iterator<Item = Entry<'t>> {
        std::iter::once(self.head).chain(self.rest)
    }

    /// Whether `entry` belongs to this session rather than opening the next one (rule 2).
    fn continues_with(&self, entry: &Entry<'_>) -> bool {
        if micros_between(self.last().occurred_at(), entry.occurred_at()) > SESSION_GAP.whole_microseconds() {
            return false;
        }
        match (&self.campaign, entry.landing_url()) {
            (Some(campaign), Some(url)) => {
                let utm = utm_of(url);
                utm.is_empty() || utm == *campaign
            }
            _ => true,
        }
    }

    fn push(&mut self, entry: Entry<'t>) {
        if self.campaign.is_none() {
            self.campaign = entry.landing_url().map(utm_of);
        }
        self.rest.push(entry);
    }
}

/// The events placing created or changed, and the events of the last session for the next tail.
#[derive(Default)]
struct EventChanges {
    inserted: Vec<Event>,
    updated: Vec<Event>,
    last_session: Vec<Event>,
}

fn first_visit_index(tail: &Tail, profile: Option<&VisitorProfile>) -> u64 {
    match tail.sessions.first() {
        Some((first, _)) => u64::from(first.visit_index),
        None => profile.map_or(0, |p| p.visit_count).saturating_add(1),
    }
}

fn visit_index(first_visit: u64, offset: usize) -> u32 {
    let offset = u64::try_from(offset).unwrap_or(u64::MAX);
    u32::try_from(first_visit.saturating_add(offset)).unwrap_or(u32::MAX)
}

fn context_of(session: &Session) -> HitContext {
    HitContext { device: session.device.clone(), location: session.location.clone(), ip_network: session.ip_network }
}

/// Rule 1. The sort is stable and its key total, so equal input gives equal output.
fn in_order<'t>(contexts: &'t [HitContext], stored: Vec<Vec<Event>>, hits: Vec<Hit>) -> Vec<Entry<'t>> {
    let stored = contexts
        .iter()
        .zip(stored)
        .flat_map(|(context, events)| events.into_iter().map(move |event| Entry::Stored { event, context }));
    let mut entries: Vec<Entry<'t>> = stored.chain(hits.into_iter().map(Entry::Hit)).collect();
    entries.sort_by_key(|entry| (entry.occurred_at(), entry.is_hit(), entry.id()));
    entries
}

fn sessionize(entries: Vec<Entry<'_>>) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for entry in entries {
        match groups.last_mut() {
            Some(group) if group.continues_with(&entry) => group.push(entry),
            _ => groups.push(Group::open(entry)),
        }
    }
    groups
}

fn session_of(group: &Group<'_>, id: SessionId, visitor: VisitorId, visit_index: u32) -> Session {
    let started_at = group.head.occurred_at();
    let ended_at = group.last().occurred_at();
    let entry_url = group.entries().find_map(Entry::landing_url).or_else(|| group.entries().find_map(Entry::url));
    let exit_url =
        group.entries().rev().find_map(Entry::landing_url).or_else(|| group.entries().rev().find_map(Entry::url));
    let referrer_url = group.head.referrer_url().cloned();
    let utm = entry_url.map(utm_of).unwrap_or_default();
    let context = group.head.context();
    let pageview_count = group.entries().filter(|e| e.kind() == EventType::PageView).count();
    Session {
        id,
        visitor_profile_id: visitor,
        visit_index,
        started_at,
        ended_at,
        duration_s: whole_seconds(started_at, ended_at),
        entry_url: entry_url.cloned(),
        exit_url: exit_url.cloned(),
        referrer_type: ReferrerType::classify(referrer_url.as_ref(), &utm),
        referrer_url,
        utm,
        device: context.device.clone(),
        location: context.location.clone(),
        ip_network: context.ip_network,
        pageview_count: u64::try_from(pageview_count).unwrap_or(u64::MAX),
        converted: group.entries().any(|e| converts(e.kind())),
    }
}

/// Rule 5, for one session in order. Walks backwards so each page view already knows the next.
fn times_on_page(group: &Group<'_>) -> Vec<Option<u64>> {
    let session_end = group.last().occurred_at();
    let mut next_view: Option<Timestamp> = None;
    let mut times: Vec<Option<u64>> = group
        .entries()
        .rev()
        .map(|entry| {
            if entry.kind() != EventType::PageView {
                return None;
            }
            let at = entry.occurred_at();
            let until = next_view.or((session_end > at).then_some(session_end));
            next_view = Some(at);
            until.map(|until| whole_seconds(at, until))
        })
        .collect();
    times.reverse();
    times
}

/// Turns the groups into events, keeping only those whose stored row must be written.
fn events_of(groups: Vec<Group<'_>>, sessions: &[Session]) -> EventChanges {
    let mut changes = EventChanges::default();
    let last = groups.len().saturating_sub(1);
    for (index, (group, session)) in groups.into_iter().zip(sessions).enumerate() {
        let times = times_on_page(&group);
        for (offset, (entry, time_on_page_s)) in group.into_entries().zip(times).enumerate() {
            let position = u32::try_from(offset.saturating_add(1)).unwrap_or(u32::MAX);
            let (event, change) = entry.placed(session.visitor_profile_id, session.id, position, time_on_page_s);
            if index == last {
                changes.last_session.push(event.clone());
            }
            match change {
                Change::Inserted => changes.inserted.push(event),
                Change::Moved => changes.updated.push(event),
                Change::Kept => {}
            }
        }
    }
    changes
}

/// A profile for a visitor seen for the first time, at its earliest hit. Without hits there is no
/// time to give it, and the epoch stands in.
fn new_profile(visitor: VisitorId, hits: &[Event]) -> VisitorProfile {
    let seen = hits.first().map_or_else(|| Timestamp::from_datetime(OffsetDateTime::UNIX_EPOCH), |e| e.occurred_at);
    VisitorProfile {
        id: visitor,
        contact_id: None,
        identified: false,
        lead_ids: Vec::new(),
        organization_id: None,
        first_seen_at: seen,
        last_seen_at: seen,
        visit_count: 0,
        pageview_count: 0,
        event_count: 0,
        total_duration_s: 0,
        conversion_count: 0,
        first_touch: None,
        last_touch: None,
        last_location: Location::default(),
        ip_network: None,
        devices: Vec::new(),
        top_pages: Vec::new(),
        restricted_at: None,
        objected_at: None,
    }
}

/// The aggregates that only grow: each hit is counted once, when it is placed.
fn count_hits(profile: &mut VisitorProfile, hits: &[Event]) {
    for hit in hits {
        profile.first_seen_at = profile.first_seen_at.min(hit.occurred_at);
        profile.last_seen_at = profile.last_seen_at.max(hit.occurred_at);
        profile.event_count = profile.event_count.saturating_add(1);
        if hit.kind == EventType::PageView {
            profile.pageview_count = profile.pageview_count.saturating_add(1);
            if let Some(url) = &hit.url {
                count_page(&mut profile.top_pages, url);
            }
        }
        if converts(hit.kind) {
            profile.conversion_count = profile.conversion_count.saturating_add(1);
        }
    }
}

/// The aggregates over sessions: the tail's old sessions are taken out and the new ones put in,
/// so merges and splits count right without rereading the visitor's history.
fn recount_sessions(profile: &mut VisitorProfile, first_visit: u64, old: &[Session], new: &[Session]) {
    let new_count = u64::try_from(new.len()).unwrap_or(u64::MAX);
    profile.visit_count = first_visit.saturating_sub(1).saturating_add(new_count);
    let old_total = old.iter().fold(0u64, |sum, s| sum.saturating_add(s.duration_s));
    let new_total = new.iter().fold(0u64, |sum, s| sum.saturating_add(s.duration_s));
    profile.total_duration_s = profile.total_duration_s.saturating_sub(old_total).saturating_add(new_total);
    recount_devices(&mut profile.devices, old, new);
    if let Some(first) = new.iter().find(|s| s.visit_index == 1) {
        profile.first_touch = Some(touch_of(first));
    }
    if let Some(latest) = new.last() {
        profile.last_touch = Some(touch_of(latest));
    }
}

/// Sessions per device, most used first; ties in a fixed order so equal journeys compare equal.
fn recount_devices(devices: &mut Vec<DeviceCount>, old: &[Session], new: &[Session]) {
    let same = |count: &DeviceCount, device: &Device| {
        count.kind == device.kind && count.os == device.os && count.browser == device.browser
    };
    for session in old {
        if let Some(count) = devices.iter_mut().find(|c| same(c, &session.device)) {
            count.count = count.count.saturating_sub(1);
        }
    }
    for session in new {
        match devices.iter_mut().find(|c| same(c, &session.device)) {
            Some(count) => count.count = count.count.saturating_add(1),
            None => devices.push(DeviceCount {
                kind: session.device.kind,
                os: session.device.os.clone(),
                browser: session.device.browser.clone(),
                count: 1,
            }),
        }
    }
    devices.retain(|c| c.count > 0);
    devices.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
            .then_with(|| a.os.cmp(&b.os))
            .then_with(|| a.browser.cmp(&b.browser))
    });
}

/// Counts one view of a page. The list only knows the counts of the pages on it, so a page not
/// on a full list starts at one and enters only by beating the smallest count; the stable sort
/// keeps earlier pages ahead of equal counts, so the list does not churn.
fn count_page(pages: &mut Vec<PageCount>, url: &WebUrl) {
    let Ok(page) = WebUrl::parse(&url.without_query()) else { return };
    let full = pages.len() >= TOP_PAGES;
    let first_view = PageCount { url: page, count: 1 };
    match pages.iter_mut().find(|p| p.url == first_view.url) {
        Some(listed) => listed.count = listed.count.saturating_add(1),
        None if !full => pages.push(first_view),
        None => {
            let smallest = pages.iter_mut().min_by_key(|p| p.count).filter(|p| p.count < first_view.count);
            if let Some(smallest) = smallest {
                *smallest = first_view;
            }
        }
    }
    pages.sort_by_key(|p| Reverse(p.count));
    pages.truncate(TOP_PAGES);
}

fn touch_of(session: &Session) -> Touch {
    Touch {
        referrer_url: session.referrer_url.clone(),
        landing_url: session.entry_url.clone(),
        utm: session.utm.clone(),
        occurred_at: session.started_at,
    }
}

fn converts(kind: EventType) -> bool {
    matches!(kind, EventType::Conversion | EventType::FormSubmit)
}

/// The campaign a URL carries. Blank, over-long or control-character parts are dropped, as the
/// API would refuse them in a touch; of repeated parameters the first usable one counts.
fn utm_of(url: &WebUrl) -> Utm {
    let mut utm = Utm::default();
    let Ok(parsed) = url::Url::parse(url.as_str()) else { return utm };
    for (key, value) in parsed.query_pairs() {
        let part = match key.as_ref() {
            "utm_source" => &mut utm.source,
            "utm_medium" => &mut utm.medium,
            "utm_campaign" => &mut utm.campaign,
            "utm_term" => &mut utm.term,
            "utm_content" => &mut utm.content,
            _ => continue,
        };
        if part.is_none() {
            *part = text::line(value.into_owned(), MAX_UTM_PART).ok();
        }
    }
    utm
}

/// Microseconds from `from` to `to`; wide enough that no two timestamps overflow it.
fn micros_between(from: Timestamp, to: Timestamp) -> i128 {
    i128::from(to.unix_micros()) - i128::from(from.unix_micros())
}

fn whole_seconds(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(micros_between(from, to) / MICROS_PER_SECOND).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::geo::CountryCode;
    use crate::visitor::DeviceType;

    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY_LATER: i64 = 24 * HOUR;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::parse("2026-11-22T10:00:00Z").unwrap().checked_add(Duration::seconds(seconds)).unwrap()
    }

    fn page(path: &str) -> WebUrl {
        WebUrl::parse(&format!("https://example.fi{path}")).unwrap()
    }

    fn context(kind: DeviceType, browser: &str, city: &str, network: &str) -> HitContext {
        HitContext {
            device: Device {
                kind,
                os: Some("Linux".into()),
                browser: Some(browser.into()),
                language: Some("fi".into()),
            },
            location: Location {
                country_code: Some(CountryCode::parse("FI").unwrap()),
                region: None,
                city: Some(city.into()),
            },
            ip_network: Some(IpNetwork::parse(network).unwrap()),
        }
    }

    fn desktop() -> HitContext {
        context(DeviceType::Desktop, "Firefox", "Tampere", "198.51.100.7")
    }

    fn mobile() -> HitContext {
        context(DeviceType::Mobile, "Safari", "Helsinki", "203.0.113.9")
    }

    fn tablet() -> HitContext {
        context(DeviceType::Tablet, "Chrome", "Oulu", "192.0.2.1")
    }

    fn hit(kind: EventType, seconds: i64, path: Option<&str>) -> Hit {
        Hit {
            id: EventId::new(),
            occurred_at: at(seconds),
            kind,
            url: path.map(page),
            page_title: None,
            referrer_url: None,
            properties: serde_json::Map::new(),
            context: desktop(),
        }
    }

    fn view(seconds: i64, path: &str) -> Hit {
        hit(EventType::PageView, seconds, Some(path))
    }

    fn on(context: HitContext, hit: Hit) -> Hit {
        Hit { context, ..hit }
    }

    fn from(referrer: &str, hit: Hit) -> Hit {
        Hit { referrer_url: Some(WebUrl::parse(referrer).unwrap()), ..hit }
    }

    fn positions(events: &[Event]) -> Vec<u32> {
        events.iter().map(|e| e.position).collect()
    }

    fn dwell_times(events: &[Event]) -> Vec<Option<u64>> {
        events.iter().map(|e| e.time_on_page_s).collect()
    }

    fn device_counts(profile: &VisitorProfile) -> Vec<(DeviceType, u64)> {
        profile.devices.iter().map(|d| (d.kind, d.count)).collect()
    }

    /// A stand-in for session ids, which differ between runs: the visit index says the same.
    fn stable_id(visit_index: u32) -> SessionId {
        SessionId::from_uuid(uuid::Uuid::from_u128(u128::from(visit_index)))
    }

    /// The caller's side of the contract: keeps the tail, loads from "storage" when the kept tail
    /// does not cover the hits, applies placements, and checks after each one what must hold.
    struct Store {
        visitor: VisitorId,
        profile: Option<VisitorProfile>,
        sessions: Vec<Session>,
        events: Vec<Event>,
        kept: Tail,
    }

    impl Store {
        fn new() -> Self {
            Self::of(VisitorId::new())
        }

        fn of(visitor: VisitorId) -> Self {
            Self { visitor, profile: None, sessions: Vec::new(), events: Vec::new(), kept: Tail::default() }
        }

        fn profile(&self) -> &VisitorProfile {
            self.profile.as_ref().expect("placed at least once")
        }

        fn place(&mut self, hits: Vec<Hit>) -> Placement {
            let earliest = hits.iter().map(|h| h.occurred_at).min().expect("hits to place");
            let tail = if tail_covers(&self.kept, self.profile.as_ref(), earliest) {
                self.kept.clone()
            } else {
                self.load(tail_from(earliest))
            };
            let placement = place(self.visitor, self.profile.clone(), tail, hits);
            self.apply(&placement);
            placement
        }

        fn load(&self, from: Timestamp) -> Tail {
            let mut sessions: Vec<&Session> = self.sessions.iter().filter(|s| s.ended_at >= from).collect();
            sessions.sort_by_key(|s| s.started_at);
            Tail { sessions: sessions.into_iter().map(|s| (s.clone(), self.events_of(s.id))).collect() }
        }

        fn events_of(&self, session: SessionId) -> Vec<Event> {
            let mut events: Vec<Event> = self.events.iter().filter(|e| e.session_id == session).cloned().collect();
            events.sort_by_key(|e| e.position);
            events
        }

        fn sessions(&self) -> Vec<Session> {
            let mut sessions = self.sessions.clone();
            sessions.sort_by_key(|s| s.visit_index);
            sessions
        }

        fn apply(&mut self, placement: &Placement) {
            assert_eq!(placement.profile_is_new, self.profile.is_none());
            for session in &placement.sessions_inserted {
                assert!(self.sessions.iter().all(|s| s.id != session.id), "a new session reuses a stored id");
                self.sessions.push(session.clone());
            }
            for session in &placement.sessions_updated {
                let stored = self.sessions.iter_mut().find(|s| s.id == session.id).expect("updated session stored");
                assert_ne!(stored, session, "reported as updated without a change");
                *stored = session.clone();
            }
            for id in &placement.sessions_deleted {
                assert!(self.sessions.iter().any(|s| s.id == *id), "deleted session stored");
                self.sessions.retain(|s| s.id != *id);
            }
            for event in &placement.events_inserted {
                assert!(self.events.iter().all(|e| e.id != event.id), "event inserted twice");
                self.events.push(event.clone());
            }
            for event in &placement.events_updated {
                let stored = self.events.iter_mut().find(|e| e.id == event.id).expect("updated event stored");
                assert_ne!(stored, event, "reported as updated without a change");
                *stored = event.clone();
            }
            self.profile = Some(placement.profile.clone());
            self.kept = placement.tail.clone();
            self.assert_consistent();
        }

        fn assert_consistent(&self) {
            let profile = self.profile();
            let sessions = self.sessions();
            for (index, session) in sessions.iter().enumerate() {
                assert_eq!(session.visit_index as usize, index + 1, "visit indexes are consecutive");
                let events = self.events_of(session.id);
                assert_eq!(positions(&events), (1..=events.len() as u32).collect::<Vec<_>>());
                assert_eq!(Some(session.started_at), events.first().map(|e| e.occurred_at));
                assert_eq!(Some(session.ended_at), events.last().map(|e| e.occurred_at));
            }
            assert!(self.events.iter().all(|e| sessions.iter().any(|s| s.id == e.session_id)), "orphan event");
            assert_eq!(profile.visit_count, sessions.len() as u64);
            assert_eq!(profile.event_count, self.events.len() as u64);
            assert_eq!(profile.total_duration_s, sessions.iter().map(|s| s.duration_s).sum::<u64>());
            assert_eq!(profile.devices.iter().map(|d| d.count).sum::<u64>(), sessions.len() as u64);
            let last = sessions.last().map(|s| (s.clone(), self.events_of(s.id)));
            assert_eq!(self.kept.sessions, last.into_iter().collect::<Vec<_>>(), "kept tail is the last session");
        }

        /// Sessions with their events, ids replaced by visit indexes so that runs compare.
        fn journeys(&self) -> Vec<(Session, Vec<Event>)> {
            self.sessions()
                .into_iter()
                .map(|session| {
                    let id = stable_id(session.visit_index);
                    let events =
                        self.events_of(session.id).into_iter().map(|e| Event { session_id: id, ..e }).collect();
                    (Session { id, ..session }, events)
                })
                .collect()
        }
    }

    fn placed_at_once(hits: &[Hit]) -> Store {
        let mut store = Store::new();
        store.place(hits.to_vec());
        store
    }

    #[test]
    fn three_page_views_and_a_form_submit_make_one_converted_session() {
        let visitor = VisitorId::new();
        let hits = vec![
            view(0, "/"),
            view(40, "/hinnasto"),
            view(100, "/yhteystiedot"),
            hit(EventType::FormSubmit, 130, Some("/yhteystiedot")),
        ];
        let placement = place(visitor, None, Tail::default(), hits);

        assert!(placement.profile_is_new);
        let [session] = placement.sessions_inserted.as_slice() else { panic!("one session") };
        assert_eq!((session.visit_index, session.pageview_count, session.converted), (1, 3, true));
        assert_eq!((session.started_at, session.ended_at, session.duration_s), (at(0), at(130), 130));
        assert_eq!(positions(&placement.events_inserted), [1, 2, 3, 4]);
        assert_eq!(dwell_times(&placement.events_inserted), [Some(40), Some(60), Some(30), None]);
        assert!(
            placement.events_inserted.iter().all(|e| e.session_id == session.id && e.visitor_profile_id == visitor)
        );
        assert!(placement.sessions_updated.is_empty() && placement.sessions_deleted.is_empty());
        assert!(placement.events_updated.is_empty());
        let profile = &placement.profile;
        assert_eq!((profile.id, profile.identified, profile.contact_id.as_deref()), (visitor, false, None));
        assert_eq!((profile.visit_count, profile.event_count, profile.pageview_count), (1, 4, 3));
        assert_eq!((profile.conversion_count, profile.total_duration_s), (1, 130));
        assert_eq!((profile.first_seen_at, profile.last_seen_at), (at(0), at(130)));
        assert_eq!(placement.tail.sessions, vec![(session.clone(), placement.events_inserted.clone())]);
    }

    #[test]
    fn a_pause_of_more_than_thirty_minutes_starts_the_next_visit() {
        let store = placed_at_once(&[view(0, "/a"), view(30 * MINUTE, "/b"), view(61 * MINUTE, "/c")]);

        let journeys = store.journeys();
        let visits: Vec<(u32, usize)> = journeys.iter().map(|(s, events)| (s.visit_index, events.len())).collect();
        assert_eq!(visits, [(1, 2), (2, 1)], "exactly thirty minutes is still the same visit");
        assert_eq!(dwell_times(&journeys[0].1), [Some(1800), None], "nothing shows how long /b was read");
        assert_eq!(store.profile().visit_count, 2);
    }

    #[test]
    fn a_page_view_with_a_new_campaign_starts_a_new_session_within_thirty_minutes() {
        let store = placed_at_once(&[
            view(0, "/?utm_source=google&utm_campaign=spring"),
            view(5 * MINUTE, "/b"),
            view(10 * MINUTE, "/?utm_source=newsletter&utm_campaign=autumn"),
        ]);

        let journeys = store.journeys();
        assert_eq!(journeys.len(), 2);
        let (spring, autumn) = (&journeys[0].0, &journeys[1].0);
        assert_eq!(spring.utm.campaign.as_deref(), Some("spring"));
        assert_eq!((spring.pageview_count, spring.exit_url.clone()), (2, Some(page("/b"))));
        assert_eq!(
            (autumn.utm.source.as_deref(), autumn.utm.campaign.as_deref()),
            (Some("newsletter"), Some("autumn"))
        );
        assert_eq!((autumn.visit_index, autumn.referrer_type), (2, ReferrerType::Campaign));
        assert_eq!(autumn.entry_url, Some(page("/?utm_source=newsletter&utm_campaign=autumn")));
    }

    #[test]
    fn the_same_campaign_again_a_page_without_one_or_another_kind_of_event_keeps_the_session() {
        let store = placed_at_once(&[
            view(0, "/?utm_campaign=spring"),
            view(5 * MINUTE, "/b"),
            view(10 * MINUTE, "/?utm_campaign=spring&utm_source="),
            hit(EventType::Click, 11 * MINUTE, Some("/?utm_campaign=autumn")),
        ]);

        let journeys = store.journeys();
        assert_eq!(journeys.len(), 1);
        assert_eq!(
            journeys[0].0.utm,
            Utm { campaign: Some("spring".into()), ..Utm::default() },
            "blank parts are none"
        );
    }

    #[test]
    fn a_late_hit_is_placed_between_stored_events_and_moves_the_later_one_down() {
        let visitor = VisitorId::new();
        let first = place(visitor, None, Tail::default(), vec![view(0, "/a"), view(3 * MINUTE, "/c")]);
        let (a, c) = (&first.events_inserted[0], &first.events_inserted[1]);
        assert!(tail_covers(&first.tail, Some(&first.profile), at(MINUTE)));

        let late = place(visitor, Some(first.profile.clone()), first.tail.clone(), vec![view(MINUTE, "/b")]);

        let [b] = late.events_inserted.as_slice() else { panic!("one new event") };
        assert_eq!((b.position, b.time_on_page_s, b.session_id), (2, Some(120), a.session_id));
        let moved: Vec<(EventId, u32, Option<u64>)> =
            late.events_updated.iter().map(|e| (e.id, e.position, e.time_on_page_s)).collect();
        assert_eq!(moved, [(a.id, 1, Some(60)), (c.id, 3, None)], "/a was read until /b, /c moved down");
        assert!(late.sessions_inserted.is_empty() && late.sessions_deleted.is_empty());
        assert_eq!(late.sessions_updated.len(), 1, "its page view count changed");
        assert_eq!(late.sessions_updated[0].pageview_count, 3);
        assert_eq!((late.profile.event_count, late.profile.visit_count), (3, 1));
    }

    #[test]
    fn a_late_hit_bridging_two_sessions_merges_them() {
        let mut store = Store::new();
        store.place(vec![view(0, "/a"), view(MINUTE, "/b")]);
        store.place(vec![view(41 * MINUTE, "/c"), view(42 * MINUTE, "/d")]);
        let (first, second) = (store.sessions()[0].clone(), store.sessions()[1].clone());
        assert_eq!((store.profile().visit_count, store.profile().total_duration_s), (2, 120));
        assert!(!tail_covers(&store.kept, store.profile.as_ref(), at(21 * MINUTE)), "the kept tail is not enough");

        let placement = store.place(vec![view(21 * MINUTE, "/bridge")]);

        assert_eq!(placement.sessions_deleted, [second.id]);
        assert_eq!(placement.sessions_updated.len(), 1);
        let merged = &placement.sessions_updated[0];
        assert_eq!((merged.id, merged.visit_index, merged.ended_at), (first.id, 1, at(42 * MINUTE)));
        assert_eq!((merged.pageview_count, merged.duration_s, merged.exit_url.clone()), (5, 42 * 60, Some(page("/d"))));
        let moved: Vec<(SessionId, u32)> =
            placement.events_updated.iter().map(|e| (e.session_id, e.position)).collect();
        assert_eq!(moved, [(first.id, 2), (first.id, 4), (first.id, 5)], "/b's time on page, then /c and /d");
        assert_eq!(placement.events_updated[0].time_on_page_s, Some(20 * 60));
        assert_eq!((placement.profile.visit_count, placement.profile.total_duration_s), (1, 42 * 60));
        assert_eq!(placement.profile.last_touch.as_ref().map(|t| t.occurred_at), Some(at(0)));
    }

    #[test]
    fn unchanged_sessions_are_not_reported_as_updated() {
        let mut store = Store::new();
        store.place(vec![view(0, "/a"), view(MINUTE, "/b")]);
        store.place(vec![view(2 * HOUR, "/c"), view(2 * HOUR + MINUTE, "/d")]);
        let second = store.sessions()[1].id;

        let placement = place(store.visitor, store.profile.clone(), store.load(at(0)), vec![view(2 * HOUR + 30, "/e")]);

        assert_eq!(placement.sessions_updated.iter().map(|s| s.id).collect::<Vec<_>>(), [second]);
        assert!(placement.sessions_inserted.is_empty() && placement.sessions_deleted.is_empty());
        assert_eq!(placement.profile.visit_count, 2);
    }

    /// A visitor's morning: a campaign visit that converts, a mobile visit, a new campaign within
    /// it, and a return the next day.
    fn a_journey() -> Vec<Hit> {
        let google = "https://www.google.fi/search";
        vec![
            from(google, view(0, "/?utm_source=google&utm_medium=cpc&utm_campaign=spring")),
            view(45, "/hinnasto"),
            hit(EventType::Click, 70, Some("/hinnasto")),
            view(100, "/yhteystiedot"),
            hit(EventType::FormSubmit, 160, Some("/yhteystiedot")),
            on(mobile(), view(2 * HOUR, "/")),
            on(mobile(), view(2 * HOUR + 5 * MINUTE, "/blogi?utm_source=newsletter&utm_campaign=autumn")),
            on(mobile(), view(2 * HOUR + 7 * MINUTE, "/hinnasto")),
            on(mobile(), hit(EventType::Conversion, 2 * HOUR + 8 * MINUTE, None)),
            view(24 * HOUR, "/"),
        ]
    }

    #[test]
    fn placing_hits_over_several_calls_gives_the_same_journey_as_placing_them_at_once() {
        let hits = a_journey();
        let at_once = placed_at_once(&hits);
        let mut in_calls = Store::of(at_once.visitor);
        for batch in [&hits[0..3], &hits[3..5], &hits[5..6], &hits[6..9], &hits[9..]] {
            in_calls.place(batch.to_vec());
        }

        assert_eq!(at_once.journeys().len(), 4);
        assert_eq!(in_calls.journeys(), at_once.journeys());
        assert_eq!(in_calls.profile(), at_once.profile());
    }

    #[test]
    fn hits_arriving_late_and_out_of_order_give_the_same_journey_as_in_order() {
        let hits = a_journey();
        let at_once = placed_at_once(&hits);
        let mut scrambled = Store::of(at_once.visitor);
        for batch in [&hits[9..], &hits[5..7], &hits[0..2], &hits[7..9], &hits[2..5]] {
            let mut batch = batch.to_vec();
            batch.reverse();
            scrambled.place(batch);
        }

        assert_eq!(scrambled.journeys(), at_once.journeys());
        let by_url = |profile: &VisitorProfile| {
            let mut profile = profile.clone();
            profile.top_pages.sort_by(|a, b| a.url.as_str().cmp(b.url.as_str()));
            profile
        };
        assert_eq!(by_url(scrambled.profile()), by_url(at_once.profile()), "only ties in top pages may differ");
    }

    #[test]
    fn existing_events_sort_before_hits_at_the_same_instant_and_hits_by_arrival() {
        let mut store = Store::new();
        store.place(vec![view(0, "/a"), view(MINUTE, "/b")]);
        let earlier = hit(EventType::Click, MINUTE, Some("/b"));
        let later = hit(EventType::Custom, MINUTE, Some("/b"));

        let placement = store.place(vec![later, earlier]);

        let kinds: Vec<(EventType, u32)> = placement.events_inserted.iter().map(|e| (e.kind, e.position)).collect();
        assert_eq!(kinds, [(EventType::Click, 3), (EventType::Custom, 4)]);
        assert!(placement.events_updated.is_empty(), "the stored page view keeps its place");
    }

    #[test]
    fn visit_indexes_continue_from_the_profile_when_the_tail_is_empty() {
        let earlier = place(VisitorId::new(), None, Tail::default(), vec![view(0, "/")]);
        let profile = VisitorProfile { visit_count: 4, ..earlier.profile };

        let placement =
            place(profile.id, Some(profile), Tail::default(), vec![view(DAY_LATER, "/"), view(DAY_LATER + 1, "/")]);

        assert_eq!(placement.sessions_inserted.iter().map(|s| s.visit_index).collect::<Vec<_>>(), [5]);
        assert_eq!(placement.profile.visit_count, 5);
        assert!(!placement.profile_is_new);
    }

    #[test]
    fn the_last_page_view_is_read_until_the_sessions_last_event() {
        let store = placed_at_once(&[
            view(0, "/a"),
            view(10, "/b"),
            hit(EventType::Click, 25, Some("/b")),
            hit(EventType::BotOpen, 40, Some("/b")),
        ]);

        assert_eq!(dwell_times(&store.journeys()[0].1), [Some(10), Some(30), None, None]);
    }

    #[test]
    fn session_fields_come_from_its_first_and_last_page_views() {
        let store = placed_at_once(&[
            from("https://www.google.fi/search?q=steward", hit(EventType::BotOpen, 0, None)),
            from("https://example.fi/elsewhere", view(10, "/a")),
            view(20, "/b"),
            hit(EventType::Click, 30, Some("/c")),
            hit(EventType::Custom, 3 * HOUR, Some("/x")),
        ]);

        let journeys = store.journeys();
        let (first, second) = (&journeys[0].0, &journeys[1].0);
        assert_eq!((first.entry_url.clone(), first.exit_url.clone()), (Some(page("/a")), Some(page("/b"))));
        assert_eq!(first.referrer_url, Some(WebUrl::parse("https://www.google.fi/search?q=steward").unwrap()));
        assert_eq!((first.referrer_type, first.pageview_count, first.converted), (ReferrerType::Search, 2, false));
        assert_eq!((second.entry_url.clone(), second.exit_url.clone()), (Some(page("/x")), Some(page("/x"))));
        assert_eq!((second.referrer_type, second.pageview_count, second.duration_s), (ReferrerType::Direct, 0, 0));
    }

    #[test]
    fn a_session_takes_the_context_of_its_first_event() {
        let mut store = Store::new();
        store.place(vec![on(mobile(), view(0, "/a")), on(desktop(), view(MINUTE, "/b"))]);
        assert_eq!(store.sessions()[0].device, mobile().device);

        let placement = store.place(vec![on(desktop(), view(-MINUTE, "/"))]);
        assert_eq!(placement.sessions_updated[0].device, desktop().device, "it now starts with a hit");

        store.place(vec![on(tablet(), view(30, "/a"))]);
        assert_eq!(store.sessions()[0].device, desktop().device, "it still starts with the stored event");
        assert_eq!(device_counts(store.profile()), [(DeviceType::Desktop, 1)]);
    }

    #[test]
    fn a_session_split_off_by_a_late_hit_keeps_the_stored_context_of_its_events() {
        let mut store = Store::new();
        store.place(vec![
            on(mobile(), hit(EventType::BotOpen, 0, None)),
            on(mobile(), view(MINUTE, "/?utm_campaign=a")),
        ]);
        assert_eq!(store.sessions().len(), 1, "the first page view sets the campaign");
        let stored = store.sessions()[0].id;

        let placement = store.place(vec![on(desktop(), view(30, "/"))]);

        let [split] = placement.sessions_inserted.as_slice() else { panic!("one session split off") };
        assert_eq!((split.visit_index, split.device.clone()), (2, mobile().device));
        assert_eq!(split.utm.campaign.as_deref(), Some("a"));
        assert_eq!(
            placement.sessions_updated.iter().map(|s| (s.id, s.device.clone())).collect::<Vec<_>>(),
            [(stored, mobile().device)]
        );
        let moved: Vec<(SessionId, u32)> =
            placement.events_updated.iter().map(|e| (e.session_id, e.position)).collect();
        assert_eq!(moved, [(split.id, 1)]);
        assert_eq!(device_counts(store.profile()), [(DeviceType::Mobile, 2)]);
    }

    #[test]
    fn devices_count_sessions_per_device_and_follow_merges() {
        let mut store = Store::new();
        store.place(vec![on(desktop(), view(0, "/a")), on(desktop(), view(MINUTE, "/a2"))]);
        store.place(vec![on(mobile(), view(40 * MINUTE, "/b"))]);
        store.place(vec![on(desktop(), view(80 * MINUTE, "/c"))]);
        assert_eq!(device_counts(store.profile()), [(DeviceType::Desktop, 2), (DeviceType::Mobile, 1)]);

        store.place(vec![on(mobile(), view(20 * MINUTE, "/bridge"))]);

        assert_eq!(store.sessions().len(), 2);
        assert_eq!(device_counts(store.profile()), [(DeviceType::Desktop, 2)], "the mobile visit merged away");
    }

    #[test]
    fn top_pages_never_hold_query_strings_or_more_than_twenty_pages() {
        let mut store = Store::new();
        let hits = (0..25).map(|i| view(i * 10, &format!("/page-{i}?email=someone%40example.fi#form"))).collect();
        store.place(hits);

        let pages = &store.profile().top_pages;
        assert_eq!(pages.len(), TOP_PAGES);
        assert!(pages.iter().all(|p| !p.url.as_str().contains(['?', '#'])));
        assert_eq!((pages[0].url.clone(), pages[19].url.clone()), (page("/page-0"), page("/page-19")));

        store.place(vec![view(300, "/page-7?again=1")]);
        let pages = &store.profile().top_pages;
        assert_eq!(pages[0], PageCount { url: page("/page-7"), count: 2 }, "more views move a page up");
        assert_eq!(pages[1].url, page("/page-0"), "equal counts keep their order");

        store.place(vec![view(310, "/page-24")]);
        let pages = &store.profile().top_pages;
        assert_eq!(pages.len(), TOP_PAGES);
        assert!(pages.iter().all(|p| p.url != page("/page-24")), "one view does not beat the smallest count");
    }

    #[test]
    fn touches_and_last_location_follow_the_journey() {
        let mut store = Store::new();
        let google = "https://www.google.fi/";
        store.place(vec![from(google, view(0, "/?utm_source=google&utm_campaign=spring"))]);
        let first_touch = Touch {
            referrer_url: Some(WebUrl::parse(google).unwrap()),
            landing_url: Some(page("/?utm_source=google&utm_campaign=spring")),
            utm: Utm { source: Some("google".into()), campaign: Some("spring".into()), ..Utm::default() },
            occurred_at: at(0),
        };
        assert_eq!(store.profile().first_touch.as_ref(), Some(&first_touch));
        assert_eq!(store.profile().last_touch.as_ref(), Some(&first_touch));

        store.place(vec![on(mobile(), view(2 * HOUR, "/b"))]);
        let last_touch =
            Touch { referrer_url: None, landing_url: Some(page("/b")), utm: Utm::default(), occurred_at: at(2 * HOUR) };
        assert_eq!(store.profile().last_touch.as_ref(), Some(&last_touch));
        assert_eq!(
            (store.profile().last_location.clone(), store.profile().ip_network),
            (mobile().location, mobile().ip_network)
        );

        store.place(vec![on(tablet(), view(HOUR, "/between"))]);
        let profile = store.profile();
        assert_eq!(
            (profile.first_touch.as_ref(), profile.last_touch.as_ref()),
            (Some(&first_touch), Some(&last_touch))
        );
        assert_eq!(profile.last_location, mobile().location, "a late hit is not where the visitor is now");
        assert_eq!(store.sessions().iter().map(|s| s.visit_index).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(profile.last_seen_at, at(2 * HOUR));
    }

    #[test]
    fn tail_from_and_tail_covers_tell_the_caller_what_to_load() {
        assert_eq!(tail_from(at(HOUR)), at(30 * MINUTE));
        assert!(tail_covers(&Tail::default(), None, at(0)), "a new visitor has nothing stored");
        let placement = place(VisitorId::new(), None, Tail::default(), vec![view(100, "/")]);
        assert!(
            !tail_covers(&Tail::default(), Some(&placement.profile), at(200)),
            "nothing kept is not nothing stored"
        );
        assert!(tail_covers(&placement.tail, Some(&placement.profile), at(100)));
        assert!(!tail_covers(&placement.tail, Some(&placement.profile), at(99)));
    }

    #[test]
    fn placing_no_hits_changes_nothing_and_never_panics() {
        let mut store = Store::new();
        store.place(vec![view(0, "/a"), view(MINUTE, "/b")]);

        let placement = place(store.visitor, store.profile.clone(), store.kept.clone(), Vec::new());
        assert_eq!(&placement.profile, store.profile());
        assert_eq!(placement.tail, store.kept);
        assert!(placement.sessions_inserted.is_empty() && placement.sessions_updated.is_empty());
        assert!(placement.events_inserted.is_empty() && placement.events_updated.is_empty());

        let nothing = place(VisitorId::new(), None, Tail::default(), Vec::new());
        assert!(nothing.profile_is_new);
        assert_eq!((nothing.profile.visit_count, nothing.tail.clone()), (0, Tail::default()));
    }
}
