//! Analytical reports: counts per period (day, ISO week, month) and group, derived from
//! sessions, events and leads. They are never personal: a group counting fewer distinct people
//! than a threshold is suppressed, so that no row points at one person.
//!
//! Every report has the same row shape ([`ReportRow`]), so the API, the data register and every
//! export format share one definition; metrics a report does not measure are `null`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Duration, Month};
use uuid::Uuid;

use crate::id::OrganizationId;
use crate::lead::Lead;
use crate::time::Timestamp;
use crate::touch::Touch;
use crate::visitor::{Event, EventType, ReferrerType, Session};

/// The reports, as named in `/api/v1/reports/{report}` and in the `report` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportName {
    /// Visits, visitors and page views.
    Traffic,
    /// Converted visits, leads and the conversion rate of visits.
    Conversions,
    /// Leads by how they were captured, by referrer type and by UTM source.
    LeadSources,
    /// Page views and visitors per page (URL without query or fragment).
    TopPages,
    /// Visits, visitors and leads per organization.
    Organizations,
}

impl ReportName {
    pub const ALL: [ReportName; 5] =
        [Self::Traffic, Self::Conversions, Self::LeadSources, Self::TopPages, Self::Organizations];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.as_str() == text)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Traffic => "traffic",
            Self::Conversions => "conversions",
            Self::LeadSources => "lead_sources",
            Self::TopPages => "top_pages",
            Self::Organizations => "organizations",
        }
    }

    /// `traffic, conversions, …` for messages.
    pub fn list() -> String {
        Self::ALL.iter().map(ReportName::as_str).collect::<Vec<_>>().join(", ")
    }

    /// What the report reads.
    pub fn needs(&self) -> Inputs {
        match self {
            Self::Traffic => Inputs { sessions: true, ..Inputs::default() },
            Self::Conversions => Inputs { sessions: true, leads: true, ..Inputs::default() },
            Self::LeadSources => Inputs { leads: true, ..Inputs::default() },
            Self::TopPages => Inputs { events: true, ..Inputs::default() },
            Self::Organizations => Inputs { sessions: true, leads: true, organizations: true, ..Inputs::default() },
        }
    }
}

impl fmt::Display for ReportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which records a report is computed from (all of them within the period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inputs {
    pub sessions: bool,
    pub events: bool,
    pub leads: bool,
    /// The organization of each visitor (from the profiles) and each organization's name.
    pub organizations: bool,
}

/// How long one period is. Weeks start on Monday (ISO 8601); periods are UTC calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    Day,
    Week,
    Month,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Self::Day, Self::Week, Self::Month];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The first day of the period holding `at` (UTC).
    pub fn period_start(&self, at: Timestamp) -> PeriodStart {
        let day = at.as_datetime().date();
        PeriodStart(match self {
            Self::Day => day,
            Self::Week => {
                let back = Duration::days(i64::from(day.weekday().number_days_from_monday()));
                day.checked_sub(back).unwrap_or(day)
            }
            Self::Month => day.replace_day(1).unwrap_or(day),
        })
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first day of a period, written as an RFC 3339 full-date (`2026-11-02`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeriodStart(Date);

impl PeriodStart {
    pub fn date(&self) -> Date {
        self.0
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '-');
        let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
        Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok().map(Self)
    }
}

impl fmt::Display for PeriodStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0.year(), u8::from(self.0.month()), self.0.day())
    }
}

impl Serialize for PeriodStart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeriodStart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("is not an RFC 3339 full-date (YYYY-MM-DD)"))
    }
}

impl utoipa::PartialSchema for PeriodStart {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Date,
            )))
            .description(Some("RFC 3339 full-date: the first day of the period (UTC; weeks start on Monday)"))
            .into()
    }
}

impl utoipa::ToSchema for PeriodStart {}

/// One row of any report: a period, an optional group within it, and the report's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub report: ReportName,
    pub granularity: Granularity,
    pub period_start: PeriodStart,
    /// What the rows of a period are grouped by: `source` (how a lead was captured: the bot
    /// type, or `unknown`), `referrer_type` and `utm_source` (of the lead's first touch) in
    /// `lead_sources`; `page` in `top_pages`; `organization` in `organizations`; `null` when the
    /// row covers the whole period (`traffic`, `conversions`).
    pub dimension: Option<String>,
    /// The group's value: a bot type, referrer type, UTM source, page URL (without query and
    /// fragment) or organization id.
    pub group: Option<String>,
    /// A name for the group where it has one (the organization's name).
    pub label: Option<String>,
    /// Distinct visitors (profiles) with a visit or page view in the group.
    pub visitors: Option<u64>,
    /// Visits started in the group.
    pub sessions: Option<u64>,
    /// Page views: of the visits (`traffic`) or of the page (`top_pages`).
    pub pageviews: Option<u64>,
    /// Visits that converted.
    pub conversions: Option<u64>,
    /// Leads created in the group.
    pub leads: Option<u64>,
    /// `conversions / sessions`, rounded to 4 decimals; `null` without visits.
    pub conversion_rate: Option<f64>,
}

/// A report's rows and how many groups were left out as too small.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutput {
    pub rows: Vec<ReportRow>,
    pub suppressed_groups: u64,
}

/// What is counted in one group. `people` are the distinct persons behind it (visitor profiles,
/// and leads without a profile), which decides suppression.
#[derive(Debug, Default)]
struct Tally {
    people: HashSet<Uuid>,
    visitors: HashSet<Uuid>,
    sessions: u64,
    pageviews: u64,
    conversions: u64,
    leads: u64,
}

type GroupKey = (PeriodStart, Option<&'static str>, Option<String>);

/// Folds records into one report; [`ReportBuilder::finish`] applies suppression.
#[derive(Debug)]
pub struct ReportBuilder {
    report: ReportName,
    granularity: Granularity,
    groups: BTreeMap<GroupKey, Tally>,
    labels: BTreeMap<String, String>,
}

impl ReportBuilder {
    pub fn new(report: ReportName, granularity: Granularity) -> Self {
        Self { report, granularity, groups: BTreeMap::new(), labels: BTreeMap::new() }
    }

    fn tally(&mut self, at: Timestamp, dimension: Option<&'static str>, group: Option<String>) -> &mut Tally {
        let key = (self.granularity.period_start(at), dimension, group);
        self.groups.entry(key).or_default()
    }

    /// A visit, by when it started; `organization` is its visitor's (for `organizations`).
    pub fn add_session(&mut self, session: &Session, organization: Option<OrganizationId>) {
        let visitor = session.visitor_profile_id.into_uuid();
        let group = match self.report {
            ReportName::Traffic | ReportName::Conversions => None,
            ReportName::Organizations => match organization {
                Some(id) => Some(("organization", id.to_string())),
                None => return,
            },
            ReportName::LeadSources | ReportName::TopPages => return,
        };
        let (dimension, group) = group.map_or((None, None), |(d, g)| (Some(d), Some(g)));
        let tally = self.tally(session.started_at, dimension, group);
        tally.people.insert(visitor);
        tally.visitors.insert(visitor);
        tally.sessions += 1;
        tally.pageviews += session.pageview_count;
        tally.conversions += u64::from(session.converted);
    }

    /// An event, by when it occurred: page views with a URL count in `top_pages`.
    pub fn add_event(&mut self, event: &Event) {
        if self.report != ReportName::TopPages || event.kind != EventType::PageView {
            return;
        }
        let Some(url) = &event.url else { return };
        let visitor = event.visitor_profile_id.into_uuid();
        let tally = self.tally(event.occurred_at, Some("page"), Some(url.without_query()));
        tally.people.insert(visitor);
        tally.visitors.insert(visitor);
        tally.pageviews += 1;
    }

    /// A lead, by when it was created.
    pub fn add_lead(&mut self, lead: &Lead) {
        // One person whether they became a lead after visits (their profile) or not (the lead).
        let person = lead.visitor_profile_id.map_or(lead.id.into_uuid(), |v| v.into_uuid());
        let groups: Vec<(Option<&'static str>, Option<String>)> = match self.report {
            ReportName::Conversions => vec![(None, None)],
            ReportName::Organizations => match lead.organization_id {
                Some(id) => vec![(Some("organization"), Some(id.to_string()))],
                None => return,
            },
            ReportName::LeadSources => {
                let touch = lead.first_touch.as_ref().or(lead.last_touch.as_ref());
                let source = lead.bot.as_ref().map_or("unknown", |bot| bot.kind.as_str());
                let referrer = lead_referrer_type(lead);
                let utm = touch.and_then(|t| t.utm.source.clone()).unwrap_or_else(|| "(none)".into());
                vec![
                    (Some("source"), Some(source.to_string())),
                    (Some("referrer_type"), Some(referrer.to_string())),
                    (Some("utm_source"), Some(utm)),
                ]
            }
            ReportName::Traffic | ReportName::TopPages => return,
        };
        for (dimension, group) in groups {
            let tally = self.tally(lead.created_at, dimension, group);
            tally.people.insert(person);
            tally.leads += 1;
        }
    }

    /// Visits counted by the database from projected columns: `sessions` visits of one
    /// visitor that started on the day (UTC) of `day`, `conversions` of them converted. Counts
    /// in `conversions` alone; gives the same rows as [`Self::add_session`] for each visit.
    pub fn add_visit_tally(&mut self, day: Timestamp, visitor: Uuid, sessions: u64, conversions: u64) {
        if self.report != ReportName::Conversions {
            return;
        }
        let tally = self.tally(day, None, None);
        tally.people.insert(visitor);
        tally.visitors.insert(visitor);
        tally.sessions += sessions;
        tally.conversions += conversions;
    }

    /// Leads counted by the database from projected columns: `leads` leads of one person (see
    /// [`Self::add_lead`]) created on the day (UTC) of `day`, with the referrer type
    /// [`lead_referrer_type`] gave them. In `conversions` as [`Self::add_lead`]; in
    /// `lead_sources` only the `referrer_type` dimension (the others are not tallied).
    pub fn add_lead_tally(&mut self, day: Timestamp, person: Uuid, referrer_type: &str, leads: u64) {
        let (dimension, group) = match self.report {
            ReportName::Conversions => (None, None),
            ReportName::LeadSources => (Some("referrer_type"), Some(referrer_type.to_string())),
            _ => return,
        };
        let tally = self.tally(day, dimension, group);
        tally.people.insert(person);
        tally.leads += leads;
    }

    /// A display name for a group value (an organization's name for its id).
    pub fn label(&mut self, group: String, label: String) {
        self.labels.insert(group, label);
    }

    /// The rows of groups with at least `min_group_size` distinct people, ordered by period,
    /// dimension, then largest first; the others are counted as suppressed.
    pub fn finish(mut self, min_group_size: u64) -> ReportOutput {
        let mut rows = Vec::with_capacity(self.groups.len());
        let mut suppressed_groups = 0;
        for ((period_start, dimension, group), tally) in std::mem::take(&mut self.groups) {
            if (tally.people.len() as u64) < min_group_size {
                suppressed_groups += 1;
                continue;
            }
            rows.push(self.row(period_start, dimension, group, &tally));
        }
        rows.sort_by(|a, b| {
            let size = |r: &ReportRow| Reverse(r.leads.or(r.pageviews).or(r.sessions).unwrap_or(0));
            (a.period_start, &a.dimension, size(a), &a.group).cmp(&(b.period_start, &b.dimension, size(b), &b.group))
        });
        ReportOutput { rows, suppressed_groups }
    }

    fn row(&self, period_start: PeriodStart, dimension: Option<&str>, group: Option<String>, t: &Tally) -> ReportRow {
        let count = |n: usize| Some(n as u64);
        let mut row = ReportRow {
            report: self.report,
            granularity: self.granularity,
            period_start,
            dimension: dimension.map(str::to_string),
            label: group.as_ref().and_then(|g| self.labels.get(g).cloned()),
            group,
            visitors: None,
            sessions: None,
            pageviews: None,
            conversions: None,
            leads: None,
            conversion_rate: None,
        };
        match self.report {
            ReportName::Traffic => {
                row.visitors = count(t.visitors.len());
                row.sessions = Some(t.sessions);
                row.pageviews = Some(t.pageviews);
            }
            ReportName::Conversions => {
                row.visitors = count(t.visitors.len());
                row.sessions = Some(t.sessions);
                row.conversions = Some(t.conversions);
                row.leads = Some(t.leads);
                row.conversion_rate = rate(t.conversions, t.sessions);
            }
            ReportName::LeadSources => row.leads = Some(t.leads),
            ReportName::TopPages => {
                row.visitors = count(t.visitors.len());
                row.pageviews = Some(t.pageviews);
            }
            ReportName::Organizations => {
                row.visitors = count(t.visitors.len());
                row.sessions = Some(t.sessions);
                row.leads = Some(t.leads);
            }
        }
        row
    }
}

/// `part / whole` rounded to 4 decimals.
#[allow(clippy::cast_precision_loss)] // counts far below 2^53
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// A lead's group in the `referrer_type` dimension of `lead_sources`: the referrer type of its
/// first touch (else its last), `unknown` without either. Not personal: the store keeps it
/// beside the sealed lead so that reports can count leads without opening them.
pub fn lead_referrer_type(lead: &Lead) -> &'static str {
    lead.first_touch.as_ref().or(lead.last_touch.as_ref()).map_or("unknown", |t| referrer_type(t).as_str())
}

/// Where a touch came from, by the rule visits are classified with: UTM parameters make a
/// campaign; no referrer is direct; known search engines and social networks by host; any
/// other site is a website.
pub fn referrer_type(touch: &Touch) -> ReferrerType {
    ReferrerType::classify(touch.referrer_url.as_ref(), &touch.utm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-22 is a Sunday.
        let sunday = at("2026-11-22T23:59:59Z");
        assert_eq!(Granularity::Day.period_start(sunday).to_string(), "2026-11-22");
        assert_eq!(Granularity::Week.period_start(sunday).to_string(), "2026-11-16");
        assert_eq!(Granularity::Week.period_start(at("2026-11-23T00:00:00Z")).to_string(), "2026-11-23");
        assert_eq!(Granularity::Month.period_start(sunday).to_string(), "2026-11-01");
        // ISO week 1 of 2027 starts in 2026.
        assert_eq!(Granularity::Week.period_start(at("2027-01-01T12:00:00Z")).to_string(), "2026-12-28");
    }

    #[test]
    fn period_starts_print_and_parse_as_full_dates() {
        let start = PeriodStart::parse("2026-02-03").unwrap();
        assert_eq!(start.to_string(), "2026-02-03");
        assert_eq!(serde_json::to_string(&start).unwrap(), "\"2026-02-03\"");
        for bad in ["2026-2-03", "2026-02-30", "20260203", "2026-02-03T00:00:00Z"] {
            assert!(PeriodStart::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn referrers_are_classified_by_utm_then_host() {
        use crate::touch::Utm;
        use crate::weburl::WebUrl;
        let url = |u: &str| WebUrl::parse(u).unwrap();
        let none = Utm::default();
        let campaign = Utm { source: Some("newsletter".into()), ..Utm::default() };
        assert_eq!(ReferrerType::classify(None, &none), ReferrerType::Direct);
        assert_eq!(ReferrerType::classify(None, &campaign), ReferrerType::Campaign);
        assert_eq!(ReferrerType::classify(Some(&url("https://www.google.co.uk/")), &none), ReferrerType::Search);
        assert_eq!(ReferrerType::classify(Some(&url("https://www.google.com/")), &campaign), ReferrerType::Campaign);
        assert_eq!(ReferrerType::classify(Some(&url("https://www.linkedin.com/feed")), &none), ReferrerType::Social);
        assert_eq!(ReferrerType::classify(Some(&url("https://t.co/abc")), &none), ReferrerType::Social);
        assert_eq!(ReferrerType::classify(Some(&url("https://www.kauppalehti.fi/")), &none), ReferrerType::Website);
        assert_eq!(ReferrerType::classify(Some(&url("https://google.example/")), &none), ReferrerType::Search);
        assert_eq!(ReferrerType::classify(Some(&url("https://example.google/")), &none), ReferrerType::Website);
    }

    #[test]
    fn rates_are_rounded_and_undefined_without_visits() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(2, 2), Some(1.0));
    }
}
