//! Deterministic, realistic synthetic data: Finnish and European people and companies, bots,
//! campaigns, visits with ordered page views, and the leads they turn into.
//!
//! The same [`DemoConfig`] always yields the same data, byte for byte, so demos, tests and
//! benchmarks are repeatable. Every value goes through the domain's parsers, and aggregates
//! (visit counts, contacts, lead links) agree with the records they summarise.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_domain::geo::Location;
use steward_domain::id::v7_from_parts;
use steward_domain::lead::{Answer, Bot, BotType, Consent, LeadStatus};
use steward_domain::organization::{Address, Contact, EmployeeRange};
use steward_domain::tenant::Domain;
use steward_domain::touch::{Touch, Utm};
use steward_domain::visitor::{Device, DeviceCount, DeviceType, PageCount, ReferrerType};
use steward_domain::{
    CountryCode, Email, Event, EventId, EventType, IpNetwork, Lead, LeadId, Organization, OrganizationId, Phone,
    Session, SessionId, Timestamp, VisitorId, VisitorProfile, WebUrl,
};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Demo organizations keep at most this many contacts, well under the domain's limit.
const MAX_DEMO_CONTACTS: usize = 50;
const SITE: &str = "https://www.demo-oy.example";

/// What to generate: how much, over which period, from which seed.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    pub seed: u64,
    pub organizations: usize,
    pub visitors: usize,
    pub leads: usize,
    /// Activity happens in `[start, end)`.
    pub start: Timestamp,
    pub end: Timestamp,
}

impl DemoConfig {
    /// The demo tenant: 300 organizations, 12 000 visitors, 3 000 leads over the 90 days before `end`.
    pub fn demo(end: Timestamp) -> Self {
        let start = Timestamp::from_unix_micros(end.unix_micros() - 90 * MICROS_PER_DAY).unwrap_or(end);
        Self { seed: 2026, organizations: 300, visitors: 12_000, leads: 3_000, start, end }
    }

    /// The same shape with every count multiplied by `factor` (at least one of each).
    pub fn scaled(mut self, factor: f64) -> Self {
        let scale = |n: usize| ((n as f64 * factor).round() as usize).max(1);
        self.organizations = scale(self.organizations);
        self.visitors = scale(self.visitors);
        self.leads = scale(self.leads);
        self
    }

    fn span_micros(&self) -> i64 {
        (self.end.unix_micros() - self.start.unix_micros()).max(MICROS_PER_DAY)
    }
}

/// Everything one tenant holds, ready to insert in this order (organizations first).
#[derive(Debug, Clone, Default)]
pub struct DemoData {
    pub organizations: Vec<Organization>,
    pub visitors: Vec<VisitorProfile>,
    pub sessions: Vec<Session>,
    pub events: Vec<Event>,
    pub leads: Vec<Lead>,
}

/// Generates a whole tenant: organizations, visitors with their sessions and events, and leads,
/// most of them converted visitors, linked both ways.
pub fn generate(config: &DemoConfig) -> DemoData {
    let mut generator = Generator::new(config);
    let mut data = DemoData {
        organizations: (0..config.organizations).map(|i| generator.organization(i)).collect(),
        ..DemoData::default()
    };
    // Converted visitors are spread evenly; the rest of the leads arrive without tracking.
    let linked = (config.leads * 7 / 10).min(config.visitors);
    let stride = config.visitors.checked_div(linked).unwrap_or(usize::MAX);
    let mut converted = 0;
    for index in 0..config.visitors {
        let converts = converted < linked && index % stride == 0;
        converted += usize::from(converts);
        generator.visitor(&mut data, converts);
    }
    while data.leads.len() < config.leads {
        let created_at = generator.time_between(config.start.unix_micros(), config.end.unix_micros());
        let organization = generator.pick_organization(&data.organizations, 0.4);
        let lead = generator.lead(created_at, None, organization.map(|o| &data.organizations[o]), None);
        data.leads.push(lead);
    }
    link_contacts(&mut data);
    data
}

/// `count` standalone leads (no visitor or organization links) in the configured period, oldest
/// first, for benchmarks that need many rows without the rest of a tenant. Deterministic like
/// [`generate`].
pub fn lead_stream(config: &DemoConfig, count: usize) -> impl Iterator<Item = Lead> + use<> {
    let mut generator = Generator::new(config);
    let (start, end) = (config.start.unix_micros(), config.end.unix_micros());
    // In the order they would have been captured: the period cut in `count` equal slots, one
    // lead at a random time in each, so ids (time-ordered) grow as a live store's do.
    let slot = ((end - start) / i64::try_from(count.max(1)).unwrap_or(i64::MAX)).max(1);
    (0..count).map(move |n| {
        let from = start.saturating_add(slot.saturating_mul(n as i64)).min(end);
        let created_at = generator.time_between(from, from.saturating_add(slot).min(end));
        generator.lead(created_at, None, None, None)
    })
}

/// Organizations list the leads that belong to them, oldest first.
fn link_contacts(data: &mut DemoData) {
    let index: HashMap<OrganizationId, usize> = data.organizations.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let mut leads: Vec<&Lead> = data.leads.iter().filter(|l| l.organization_id.is_some()).collect();
    leads.sort_by_key(|l| l.created_at);
    for lead in leads {
        let Some(&i) = lead.organization_id.as_ref().and_then(|id| index.get(id)) else { continue };
        let organization = &mut data.organizations[i];
        if organization.contacts.len() < MAX_DEMO_CONTACTS {
            organization.contacts.push(Contact::of(lead));
            organization.updated_at = organization.updated_at.max(lead.created_at);
        }
    }
}

struct Generator {
    config: DemoConfig,
    rng: ChaCha8Rng,
    contact_seq: u64,
}

impl Generator {
    fn new(config: &DemoConfig) -> Self {
        Self { config: config.clone(), rng: ChaCha8Rng::seed_from_u64(config.seed), contact_seq: 0 }
    }

    fn time_between(&mut self, from: i64, to: i64) -> i64 {
        if to <= from { from } else { self.rng.random_range(from..to) }
    }

    fn id_at(&mut self, micros: i64) -> uuid::Uuid {
        v7_from_parts(micros.max(0) as u64 / 1_000, self.rng.random())
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).unwrap_or(&items[0])
    }

    /// A skewed choice: a few organizations get most of the traffic, as in real B2B sites.
    fn pick_organization(&mut self, organizations: &[Organization], probability: f64) -> Option<usize> {
        if organizations.is_empty() || !self.rng.random_bool(probability) {
            return None;
        }
        let r: f64 = self.rng.random();
        Some(((r * r) * organizations.len() as f64) as usize % organizations.len())
    }

    fn organization(&mut self, index: usize) -> Organization {
        let (prefix, suffix) = (self.pick(COMPANY_PREFIXES), self.pick(COMPANY_SUFFIXES));
        let form = self.pick(&["Oy", "Oy", "Oy", "Oyj", "Ab", "AB", "GmbH", "OÜ", "AS"]);
        let name = format!("{prefix} {suffix} {form}");
        let slug = format!("{}-{}{}", ascii_slug(prefix), ascii_slug(suffix), index);
        let domain = Domain::parse(&format!("{slug}.example")).ok();
        let city = self.pick(CITIES);
        let country = match form {
            "AB" => "SE",
            "GmbH" => "DE",
            "OÜ" => "EE",
            "AS" => "NO",
            _ => city.3,
        };
        let (business_id, vat_id) = if country == "FI" {
            let id = finnish_business_id(1_000_000 + (index as u32 * 7_919 + 104_729) % 8_999_999);
            let vat = format!("FI{}", id.replace('-', ""));
            (Some(id), Some(vat))
        } else {
            (None, None)
        };
        let created_at =
            self.time_between(self.config.start.unix_micros() - 365 * MICROS_PER_DAY, self.config.start.unix_micros());
        let (min, max) = self.pick(&[(1, 9), (10, 49), (50, 249), (250, 999), (1_000, 4_999)]);
        let tags = match self.rng.random_range(0..4) {
            0 => vec!["customer".to_string()],
            1 => vec!["prospect".to_string(), "priority".to_string()],
            _ => vec!["prospect".to_string()],
        };
        Organization {
            id: OrganizationId::from_uuid(self.id_at(created_at)),
            name,
            website_url: WebUrl::parse(&format!("https://www.{slug}.example/")).ok(),
            email: Email::parse(&format!("info@{slug}.example")).ok(),
            domain,
            business_id,
            vat_id,
            industry: Some(self.pick(INDUSTRIES).to_string()),
            employee_range: Some(EmployeeRange { min: Some(min), max: Some(max) }),
            address: Address {
                street: Some(format!("{} {}", self.pick(STREETS), self.rng.random_range(1..80))),
                postal_code: Some(city.1.to_string()),
                city: Some(city.0.to_string()),
                country_code: CountryCode::parse(country).ok(),
            },
            phone: Phone::parse(&format!("+358 9 {}", self.rng.random_range(1_000_000..9_999_999))).ok(),
            linkedin_url: WebUrl::parse(&format!("https://www.linkedin.com/company/{slug}")).ok(),
            tags,
            first_visit_at: None,
            last_visit_at: None,
            visit_count: 0,
            visitor_count: 0,
            contacts: Vec::new(),
            created_at: timestamp(created_at),
            updated_at: timestamp(created_at),
        }
    }

    /// One visitor: 1 to 6 visits of ordered events; a converting visitor ends with a lead.
    fn visitor(&mut self, data: &mut DemoData, converts: bool) {
        let (start, end) = (self.config.start.unix_micros(), self.config.end.unix_micros());
        let first_seen = self.time_between(start, end - self.config.span_micros() / 20);
        let visitor_id = VisitorId::from_uuid(self.id_at(first_seen));
        let organization = self.pick_organization(&data.organizations, 0.35);
        let city = self.pick(CITIES);
        let location = location(city);
        let network = IpNetwork::mask(IpAddr::V4(Ipv4Addr::new(
            self.pick(&[85, 91, 188, 193, 213]),
            self.rng.random(),
            self.rng.random(),
            self.rng.random(),
        )));
        let device = self.device();
        let visits = match self.rng.random_range(0..100) {
            0..55 => 1,
            55..80 => 2,
            80..92 => 3,
            92..97 => 4,
            _ => 6,
        };

        let mut profile = VisitorProfile {
            id: visitor_id,
            contact_id: None,
            identified: false,
            lead_ids: Vec::new(),
            organization_id: organization.map(|o| data.organizations[o].id),
            first_seen_at: timestamp(first_seen),
            last_seen_at: timestamp(first_seen),
            visit_count: 0,
            pageview_count: 0,
            event_count: 0,
            total_duration_s: 0,
            conversion_count: 0,
            first_touch: None,
            last_touch: None,
            last_location: location.clone(),
            ip_network: Some(network),
            devices: Vec::new(),
            top_pages: Vec::new(),
            restricted_at: None,
            objected_at: None,
        };
        let mut pages: BTreeMap<String, u64> = BTreeMap::new();
        let mut at = first_seen;
        for visit in 1..=visits {
            // A visit is the last one when the next would start too close to the end of the period.
            let gap = self.rng.random_range(MICROS_PER_DAY / 24..7 * MICROS_PER_DAY);
            let last = visit == visits || at + gap + 2 * MICROS_PER_DAY / 24 >= end;
            let (session, events, lead) = self.session(
                &profile,
                visit,
                at,
                (&device, &location, network),
                converts && last,
                organization.map(|o| &data.organizations[o]),
            );
            for event in events.iter().filter(|e| e.kind == EventType::PageView) {
                if let Some(path) = event.url.as_ref().and_then(|u| u.as_str().strip_prefix(SITE)) {
                    *pages.entry(path.to_string()).or_default() += 1;
                }
            }
            let touch = Touch {
                referrer_url: session.referrer_url.clone(),
                landing_url: session.entry_url.clone(),
                utm: session.utm.clone(),
                occurred_at: session.started_at,
            };
            profile.first_touch.get_or_insert_with(|| touch.clone());
            profile.last_touch = Some(touch);
            profile.visit_count += 1;
            profile.pageview_count += session.pageview_count;
            profile.event_count += events.len() as u64;
            profile.total_duration_s += session.duration_s;
            profile.last_seen_at = session.ended_at;
            at = session.ended_at.unix_micros() + gap;
            if let Some(lead) = lead {
                profile.conversion_count += 1;
                profile.identified = true;
                profile.contact_id = lead.contact_id.clone();
                profile.lead_ids.push(lead.id);
                data.leads.push(lead);
            }
            data.sessions.push(session);
            data.events.extend(events);
            if last {
                break;
            }
        }
        profile.devices = vec![DeviceCount {
            kind: device.kind,
            os: device.os.clone(),
            browser: device.browser.clone(),
            count: profile.visit_count,
        }];
        let mut top: Vec<(String, u64)> = pages.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        profile.top_pages = top
            .into_iter()
            .take(5)
            .filter_map(|(path, count)| Some(PageCount { url: WebUrl::parse(&format!("{SITE}{path}")).ok()?, count }))
            .collect();
        if let Some(o) = organization {
            let org = &mut data.organizations[o];
            org.visitor_count += 1;
            org.visit_count += profile.visit_count;
            org.first_visit_at =
                Some(org.first_visit_at.map_or(profile.first_seen_at, |t| t.min(profile.first_seen_at)));
            org.last_visit_at = Some(org.last_visit_at.map_or(profile.last_seen_at, |t| t.max(profile.last_seen_at)));
            org.updated_at = org.updated_at.max(profile.last_seen_at);
        }
        data.visitors.push(profile);
    }

    fn device(&mut self) -> Device {
        let (kind, os, browser) = self.pick(&[
            (DeviceType::Desktop, "Windows", "Chrome"),
            (DeviceType::Desktop, "Windows", "Edge"),
            (DeviceType::Desktop, "macOS", "Safari"),
            (DeviceType::Desktop, "macOS", "Chrome"),
            (DeviceType::Desktop, "Linux", "Firefox"),
            (DeviceType::Mobile, "iOS", "Safari"),
            (DeviceType::Mobile, "iOS", "Safari"),
            (DeviceType::Mobile, "Android", "Chrome"),
            (DeviceType::Mobile, "Android", "Samsung Internet"),
            (DeviceType::Tablet, "iPadOS", "Safari"),
        ]);
        let language = self.pick(&["fi-FI", "fi-FI", "fi-FI", "sv-FI", "en-GB", "en-US", "de-DE", "et-EE"]);
        Device {
            kind,
            os: Some(os.to_string()),
            browser: Some(browser.to_string()),
            language: Some(language.to_string()),
        }
    }

    fn session(
        &mut self,
        profile: &VisitorProfile,
        visit: u32,
        started: i64,
        (device, location, network): (&Device, &Location, IpNetwork),
        converting: bool,
        organization: Option<&Organization>,
    ) -> (Session, Vec<Event>, Option<Lead>) {
        let session_id = SessionId::from_uuid(self.id_at(started));
        let (referrer_type, referrer, utm) = self.source();
        let views = self.rng.random_range(1..=8u32);
        let mut events = Vec::new();
        let mut at = started;
        let mut entry = None;
        let mut exit = None;
        let mut previous: Option<WebUrl> = referrer.clone();
        for _ in 0..views {
            let (path, title) =
                if entry.is_none() && utm.campaign.is_some() { ("/demo", "Book a demo") } else { self.pick(PAGES) };
            let url = WebUrl::parse(&format!("{SITE}{path}")).ok();
            let dwell = self.rng.random_range(4..240u64);
            entry.get_or_insert_with(|| url.clone());
            exit = url.clone();
            events.push(self.event(
                &session_id,
                profile.id,
                &events,
                at,
                EventType::PageView,
                url.clone(),
                Some(title),
                previous.clone(),
                Some(dwell),
            ));
            previous = url;
            at += dwell as i64 * MICROS_PER_SECOND;
        }
        let mut lead = None;
        if converting {
            let bot = self.bot();
            let url = exit.clone();
            events.push(self.event(
                &session_id,
                profile.id,
                &events,
                at,
                EventType::BotOpen,
                url.clone(),
                None,
                None,
                None,
            ));
            let answers = self.answers(at, &bot);
            for _ in &answers {
                at += self.rng.random_range(5..40) * MICROS_PER_SECOND;
                events.push(self.event(
                    &session_id,
                    profile.id,
                    &events,
                    at,
                    EventType::BotAnswer,
                    url.clone(),
                    None,
                    None,
                    None,
                ));
            }
            at += self.rng.random_range(5..30) * MICROS_PER_SECOND;
            events.push(self.event(
                &session_id,
                profile.id,
                &events,
                at,
                EventType::FormSubmit,
                url.clone(),
                None,
                None,
                None,
            ));
            events.push(self.event(
                &session_id,
                profile.id,
                &events,
                at,
                EventType::Conversion,
                url.clone(),
                None,
                None,
                None,
            ));
            let mut new_lead = self.lead(at, Some(profile.id), organization, Some((bot, answers)));
            new_lead.conversion_url = url;
            new_lead.location = location.clone();
            new_lead.ip_network = Some(network);
            let touch = |occurred_at| Touch {
                referrer_url: referrer.clone(),
                landing_url: entry.clone().flatten(),
                utm: utm.clone(),
                occurred_at,
            };
            new_lead.first_touch = Some(profile.first_touch.clone().unwrap_or_else(|| touch(timestamp(started))));
            new_lead.last_touch = Some(touch(timestamp(started)));
            lead = Some(new_lead);
        }
        let ended = events.last().map_or(started, |e| e.occurred_at.unix_micros());
        let session = Session {
            id: session_id,
            visitor_profile_id: profile.id,
            visit_index: visit,
            started_at: timestamp(started),
            ended_at: timestamp(ended),
            duration_s: ((ended - started) / MICROS_PER_SECOND) as u64,
            entry_url: entry.flatten(),
            exit_url: exit,
            referrer_url: referrer,
            referrer_type,
            utm,
            device: device.clone(),
            location: location.clone(),
            ip_network: Some(network),
            pageview_count: u64::from(views),
            converted: lead.is_some(),
        };
        (session, events, lead)
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        session_id: &SessionId,
        visitor: VisitorId,
        before: &[Event],
        at: i64,
        kind: EventType,
        url: Option<WebUrl>,
        title: Option<&str>,
        referrer: Option<WebUrl>,
        dwell: Option<u64>,
    ) -> Event {
        let mut properties = serde_json::Map::new();
        if matches!(kind, EventType::BotOpen | EventType::Conversion) {
            properties.insert("trigger".into(), serde_json::Value::from("demo"));
        }
        Event {
            id: EventId::from_uuid(self.id_at(at)),
            session_id: *session_id,
            visitor_profile_id: visitor,
            position: before.len() as u32 + 1,
            occurred_at: timestamp(at),
            kind,
            url,
            page_title: title.map(str::to_string),
            referrer_url: referrer,
            time_on_page_s: dwell,
            properties,
        }
    }

    fn source(&mut self) -> (ReferrerType, Option<WebUrl>, Utm) {
        let utm = |source: &str, medium: &str, campaign: &str| Utm {
            source: Some(source.into()),
            medium: Some(medium.into()),
            campaign: Some(campaign.into()),
            term: None,
            content: None,
        };
        let url = |u: &str| WebUrl::parse(u).ok();
        match self.rng.random_range(0..10) {
            0..3 => (ReferrerType::Search, url("https://www.google.com/"), Utm::default()),
            3 => (ReferrerType::Search, url("https://www.bing.com/"), Utm::default()),
            4 => (ReferrerType::Social, url("https://www.linkedin.com/"), Utm::default()),
            5 => (
                ReferrerType::Campaign,
                url("https://www.linkedin.com/"),
                utm("linkedin", "paid_social", "autumn-webinar"),
            ),
            6 => (ReferrerType::Campaign, url("https://www.google.com/"), utm("google", "cpc", "brand-fi")),
            7 => (ReferrerType::Campaign, None, utm("newsletter", "email", "november-news")),
            8 => (ReferrerType::Website, url("https://www.kauppalehti.fi/"), Utm::default()),
            _ => (ReferrerType::Direct, None, Utm::default()),
        }
    }

    fn bot(&mut self) -> Bot {
        let (id, name, kind) = self.pick(&[
            ("bot-sales", "Sales chat", BotType::Chat),
            ("bot-pricing", "Pricing assistant", BotType::Chat),
            ("form-contact", "Contact form", BotType::Form),
            ("form-demo", "Book a demo", BotType::Form),
            ("popup-newsletter", "Newsletter popup", BotType::Popup),
        ]);
        Bot { id: id.into(), name: name.into(), kind }
    }

    fn answers(&mut self, at: i64, bot: &Bot) -> Vec<Answer> {
        let questions: &[(&str, &[&str])] = match bot.kind {
            BotType::Popup => &[("Which topics interest you?", &["Product news", "Events", "Case studies"])],
            _ => &[
                ("What are you looking for?", &["More leads from our website", "Better reporting", "Pricing"]),
                ("How many visitors does your site have per month?", &["Under 5 000", "5 000–50 000", "Over 50 000"]),
                ("When would you like to start?", &["Right away", "Within 3 months", "Just looking"]),
            ],
        };
        let mut time = at;
        questions
            .iter()
            .map(|(question, options)| {
                time += self.rng.random_range(5..40) * MICROS_PER_SECOND;
                Answer {
                    question: question.to_string(),
                    answer: self.pick(options).to_string(),
                    answered_at: timestamp(time),
                }
            })
            .collect()
    }

    fn lead(
        &mut self,
        created_at: i64,
        visitor: Option<VisitorId>,
        organization: Option<&Organization>,
        capture: Option<(Bot, Vec<Answer>)>,
    ) -> Lead {
        let first = self.pick(FIRST_NAMES);
        let last = self.pick(LAST_NAMES);
        let local = format!("{}.{}", ascii_slug(first), ascii_slug(last));
        let email_domain = match organization.and_then(|o| o.domain.as_ref()) {
            Some(domain) => domain.as_str().to_string(),
            None => self.pick(&["gmail.com", "outlook.com", "hotmail.fi", "yahoo.com", "icloud.com"]).to_string(),
        };
        let email = match self.rng.random_range(0..20) {
            0 => format!("{local}+steward@{email_domain}"),
            _ => format!("{local}@{email_domain}"),
        };
        let phone = match self.rng.random_range(0..10) {
            0..6 => Phone::parse(&format!(
                "+358 {} {}",
                self.pick(&["40", "41", "44", "45", "50"]),
                self.rng.random_range(1_000_000..9_999_999)
            ))
            .ok(),
            6 => Phone::parse(&format!("+46 70 {}", self.rng.random_range(1_000_000..9_999_999))).ok(),
            _ => None,
        };
        self.contact_seq += 1;
        let (bot, answers) = match capture {
            Some((bot, answers)) => (Some(bot), answers),
            None => {
                let bot = self.bot();
                let answers = self.answers(created_at - 60 * MICROS_PER_SECOND, &bot);
                (Some(bot), answers)
            }
        };
        let status = self.pick(&[
            LeadStatus::New,
            LeadStatus::New,
            LeadStatus::New,
            LeadStatus::Contacted,
            LeadStatus::Contacted,
            LeadStatus::Qualified,
            LeadStatus::Won,
            LeadStatus::Lost,
        ]);
        let updated_at = match status {
            LeadStatus::New => created_at,
            _ => created_at + self.rng.random_range(MICROS_PER_DAY / 24..5 * MICROS_PER_DAY),
        };
        let marketing = self.rng.random_bool(0.6);
        let city = self.pick(CITIES);
        let mut custom_fields = BTreeMap::new();
        if let Some(bot) = &bot {
            custom_fields.insert("channel".to_string(), bot.kind.as_str().to_string());
        }
        Lead {
            id: LeadId::from_uuid(self.id_at(created_at)),
            contact_id: Some(format!("CRM-{:06}", self.config.seed % 1000 * 1_000_000 + self.contact_seq)),
            first_name: Some(first.to_string()),
            last_name: Some(last.to_string()),
            email: Email::parse(&email).ok(),
            phone,
            company_name: organization.map(|o| o.name.clone()),
            job_title: organization.map(|_| self.pick(JOB_TITLES).to_string()),
            bot,
            answers,
            score: Some(self.rng.random_range(0..=100)),
            tags: if marketing { vec!["newsletter".into()] } else { Vec::new() },
            status,
            custom_fields,
            conversion_url: None,
            first_touch: None,
            last_touch: None,
            location: location(city),
            ip_network: None,
            consent: Some(Consent { marketing, captured_at: timestamp(created_at), source: Some("demo".into()) }),
            visitor_profile_id: visitor,
            organization_id: organization.map(|o| o.id),
            restricted_at: None,
            objected_at: None,
            created_at: timestamp(created_at),
            updated_at: timestamp(updated_at.min(self.config.end.unix_micros().max(created_at))),
        }
    }
}

fn timestamp(micros: i64) -> Timestamp {
    // Every demo instant lies between the configured start and end, which are valid timestamps.
    Timestamp::from_unix_micros(micros).expect("demo instants lie within the supported range")
}

fn location(city: (&str, &str, &str, &str)) -> Location {
    Location {
        country_code: CountryCode::parse(city.3).ok(),
        region: Some(city.2.to_string()),
        city: Some(city.0.to_string()),
    }
}

/// `1234567-8`: seven digits and the check digit the Finnish Patent and Registration Office uses.
pub fn finnish_business_id(seven_digits: u32) -> String {
    const WEIGHTS: [u32; 7] = [7, 9, 10, 5, 8, 4, 2];
    let digits = format!("{:07}", seven_digits % 10_000_000);
    let mut sum: u32 = digits.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    // Remainder 1 has no check digit; such numbers are never issued, so step to the next one.
    let mut number = seven_digits % 10_000_000;
    while sum % 11 == 1 {
        number = (number + 1) % 10_000_000;
        let digits = format!("{number:07}");
        sum = digits.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    }
    let check = match sum % 11 {
        0 => 0,
        r => 11 - r,
    };
    format!("{number:07}-{check}")
}

fn ascii_slug(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c.to_ascii_lowercase() {
            'ä' | 'Ä' | 'å' | 'Å' => Some('a'),
            'ö' | 'Ö' | 'ø' => Some('o'),
            'ü' | 'Ü' => Some('u'),
            'é' => Some('e'),
            c if c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

const FIRST_NAMES: &[&str] = &[
    "Aino",
    "Eero",
    "Helmi",
    "Juha",
    "Kaisa",
    "Lauri",
    "Minna",
    "Mikko",
    "Noora",
    "Olli",
    "Päivi",
    "Sami",
    "Tiina",
    "Ville",
    "Anna",
    "Jukka",
    "Sanna",
    "Timo",
    "Elina",
    "Antti",
    "Satu",
    "Heikki",
    "Johanna",
    "Petteri",
    "Kerttu",
    "Väinö",
    "Ilona",
    "Oskar",
    "Linnea",
    "Erik",
    "Ingrid",
    "Lars",
    "Maria",
    "Jonas",
    "Sofia",
    "Lukas",
    "Emma",
    "Mart",
    "Kadri",
    "Piotr",
    "Agnieszka",
    "Björn",
    "Åsa",
];

const LAST_NAMES: &[&str] = &[
    "Korhonen",
    "Virtanen",
    "Mäkinen",
    "Nieminen",
    "Mäkelä",
    "Hämäläinen",
    "Laine",
    "Heikkinen",
    "Koskinen",
    "Järvinen",
    "Lehtonen",
    "Lehtinen",
    "Saarinen",
    "Salminen",
    "Heinonen",
    "Niemi",
    "Heikkilä",
    "Kinnunen",
    "Salonen",
    "Turunen",
    "Salo",
    "Laitinen",
    "Tuominen",
    "Rantanen",
    "Karjalainen",
    "Jokinen",
    "Mattila",
    "Savolainen",
    "Lindqvist",
    "Johansson",
    "Andersson",
    "Nyström",
    "Schmidt",
    "Müller",
    "Tamm",
    "Saar",
    "Kowalski",
    "Berg",
    "Öhman",
];

const COMPANY_PREFIXES: &[&str] = &[
    "Pohjoinen",
    "Aalto",
    "Kivi",
    "Tuuli",
    "Revontuli",
    "Sisu",
    "Kaleva",
    "Lumi",
    "Meri",
    "Honka",
    "Saimaa",
    "Koivu",
    "Karhu",
    "Ilves",
    "Nordic",
    "Baltic",
    "Arctic",
    "Polar",
    "Vasa",
    "Tampere",
];

const COMPANY_SUFFIXES: &[&str] = &[
    "Data",
    "Logistiikka",
    "Rakennus",
    "Consulting",
    "Solutions",
    "Software",
    "Energia",
    "Metalli",
    "Design",
    "Analytics",
    "Talotekniikka",
    "Kiinteistöt",
    "Marketing",
    "Systems",
    "Foods",
    "Robotics",
];

const INDUSTRIES: &[&str] = &[
    "Software",
    "Construction",
    "Logistics",
    "Manufacturing",
    "Energy",
    "Retail",
    "Real estate",
    "Consulting",
    "Food and beverage",
    "Marketing services",
];

const JOB_TITLES: &[&str] = &[
    "CEO",
    "CMO",
    "Marketing Manager",
    "Sales Director",
    "Head of Growth",
    "Digital Marketing Specialist",
    "Chief Digital Officer",
    "Customer Success Manager",
    "Procurement Manager",
    "Founder",
];

const STREETS: &[&str] = &[
    "Mannerheimintie",
    "Hämeenkatu",
    "Aleksanterinkatu",
    "Keilaranta",
    "Satakunnankatu",
    "Kauppakatu",
    "Teknologiantie",
    "Yliopistonkatu",
    "Rantakatu",
    "Tietotie",
];

/// City, postal code, region, country.
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Helsinki", "00100", "Uusimaa", "FI"),
    ("Helsinki", "00180", "Uusimaa", "FI"),
    ("Espoo", "02150", "Uusimaa", "FI"),
    ("Vantaa", "01510", "Uusimaa", "FI"),
    ("Tampere", "33100", "Pirkanmaa", "FI"),
    ("Turku", "20100", "Varsinais-Suomi", "FI"),
    ("Oulu", "90100", "Pohjois-Pohjanmaa", "FI"),
    ("Jyväskylä", "40100", "Keski-Suomi", "FI"),
    ("Kuopio", "70100", "Pohjois-Savo", "FI"),
    ("Vaasa", "65100", "Pohjanmaa", "FI"),
    ("Stockholm", "111 20", "Stockholm", "SE"),
    ("Tallinn", "10111", "Harjumaa", "EE"),
    ("Berlin", "10115", "Berlin", "DE"),
    ("Oslo", "0150", "Oslo", "NO"),
    ("Copenhagen", "1050", "Hovedstaden", "DK"),
];

/// Path and title of the demo site's pages.
const PAGES: &[(&str, &str)] = &[
    ("/", "Demo Oy – Website conversion"),
    ("/pricing", "Pricing"),
    ("/features", "Features"),
    ("/features/chatbots", "Chat bots"),
    ("/features/lead-forms", "Lead forms"),
    ("/customers", "Customer stories"),
    ("/blog/website-conversion-2026", "Blog: Website conversion in 2026"),
    ("/blog/gdpr-and-chat-bots", "Blog: GDPR and chat bots"),
    ("/contact", "Contact us"),
    ("/demo", "Book a demo"),
];
