//! The datasets and their columns: the one definition CSV, XLSX and the data register share.
//! Nested objects become dotted columns (`first_touch.utm.source`); lists and maps are JSON text.

use std::fmt;
use std::sync::LazyLock;

use serde::Serialize;
use steward_domain::geo::Location;
use steward_domain::lead::{Answer, Bot, Consent};
use steward_domain::organization::{Contact, EmployeeRange};
use steward_domain::touch::{Touch, Utm};
use steward_domain::{Journey, Lead, Organization, ReportRow, VisitorProfile};
use steward_store::AuditEntry;

use crate::{Cell, Column, ColumnKind, Dataset};

/// The dataset names used in URLs, exports, the register and archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum DatasetName {
    #[serde(rename = "leads")]
    Leads,
    #[serde(rename = "visitor-profiles")]
    VisitorProfiles,
    #[serde(rename = "journeys")]
    Journeys,
    #[serde(rename = "organizations")]
    Organizations,
    #[serde(rename = "reports")]
    Reports,
    #[serde(rename = "audit-log")]
    AuditLog,
}

impl DatasetName {
    pub const ALL: [DatasetName; 6] =
        [Self::Leads, Self::VisitorProfiles, Self::Journeys, Self::Organizations, Self::Reports, Self::AuditLog];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.as_str() == text)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Leads => "leads",
            Self::VisitorProfiles => "visitor-profiles",
            Self::Journeys => "journeys",
            Self::Organizations => "organizations",
            Self::Reports => "reports",
            Self::AuditLog => "audit-log",
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

use ColumnKind::{Boolean, DateTime, Id, Integer, Json, Number, Text};

fn text<R>(name: &str, get: fn(&R) -> Option<&str>) -> Column<R> {
    Column::new(name, Text, move |r| Cell::text(get(r)))
}

fn utm_columns() -> Vec<Column<Utm>> {
    vec![
        text("source", |u: &Utm| u.source.as_deref()),
        text("medium", |u: &Utm| u.medium.as_deref()),
        text("campaign", |u: &Utm| u.campaign.as_deref()),
        text("term", |u: &Utm| u.term.as_deref()),
        text("content", |u: &Utm| u.content.as_deref()),
    ]
}

fn touch_columns() -> Vec<Column<Touch>> {
    let mut columns = vec![
        text("referrer_url", |t: &Touch| t.referrer_url.as_ref().map(|u| u.as_str())),
        text("landing_url", |t: &Touch| t.landing_url.as_ref().map(|u| u.as_str())),
    ];
    columns.extend(utm_columns().into_iter().map(|c| c.nest("utm", |t: &Touch| Some(&t.utm))));
    columns.push(Column::new("occurred_at", DateTime, |t: &Touch| Cell::Time(t.occurred_at)));
    columns
}

fn location_columns() -> Vec<Column<Location>> {
    vec![
        text("country_code", |l: &Location| l.country_code.as_ref().map(|c| c.as_str())),
        text("region", |l: &Location| l.region.as_deref()),
        text("city", |l: &Location| l.city.as_deref()),
    ]
}

fn nested<P: 'static, R: 'static>(
    columns: Vec<Column<R>>,
    prefix: &str,
    outer: fn(&P) -> Option<&R>,
) -> Vec<Column<P>> {
    columns.into_iter().map(|column| column.nest(prefix, outer)).collect()
}

static LEAD_COLUMNS: LazyLock<Vec<Column<Lead>>> = LazyLock::new(|| {
    let mut c: Vec<Column<Lead>> = vec![
        Column::new("id", Id, |l: &Lead| Cell::Uuid(l.id.into_uuid())),
        text("contact_id", |l: &Lead| l.contact_id.as_deref()),
        text("first_name", |l: &Lead| l.first_name.as_deref()),
        text("last_name", |l: &Lead| l.last_name.as_deref()),
        text("email", |l: &Lead| l.email.as_ref().map(|e| e.as_str())),
        text("phone", |l: &Lead| l.phone.as_ref().map(|p| p.as_str())),
        text("company_name", |l: &Lead| l.company_name.as_deref()),
        text("job_title", |l: &Lead| l.job_title.as_deref()),
        text("bot.id", |l: &Lead| l.bot.as_ref().map(|b: &Bot| b.id.as_str())),
        text("bot.name", |l: &Lead| l.bot.as_ref().map(|b: &Bot| b.name.as_str())),
        text("bot.type", |l: &Lead| l.bot.as_ref().map(|b: &Bot| b.kind.as_str())),
        Column::new("answers", Json, |l: &Lead| Cell::json::<[Answer]>(&l.answers, l.answers.is_empty())),
        Column::new("score", Integer, |l: &Lead| Cell::int(l.score)),
        Column::new("tags", Json, |l: &Lead| Cell::json(&l.tags, l.tags.is_empty())),
        text("status", |l: &Lead| Some(l.status.as_str())),
        Column::new("custom_fields", Json, |l: &Lead| Cell::json(&l.custom_fields, l.custom_fields.is_empty())),
        text("conversion_url", |l: &Lead| l.conversion_url.as_ref().map(|u| u.as_str())),
    ];
    c.extend(nested(touch_columns(), "first_touch", |l: &Lead| l.first_touch.as_ref()));
    c.extend(nested(touch_columns(), "last_touch", |l: &Lead| l.last_touch.as_ref()));
    c.extend(nested(location_columns(), "location", |l: &Lead| Some(&l.location)));
    c.push(Column::new("ip_network", Text, |l: &Lead| Cell::display(l.ip_network.as_ref())));
    c.push(Column::new("consent.marketing", Boolean, |l: &Lead| {
        l.consent.as_ref().map_or(Cell::Empty, |c: &Consent| Cell::Bool(c.marketing))
    }));
    c.push(Column::new("consent.captured_at", DateTime, |l: &Lead| {
        Cell::time(l.consent.as_ref().map(|c| c.captured_at))
    }));
    c.push(text("consent.source", |l: &Lead| l.consent.as_ref().and_then(|c| c.source.as_deref())));
    c.push(Column::new("visitor_profile_id", Id, |l: &Lead| Cell::uuid(l.visitor_profile_id.map(|v| v.into_uuid()))));
    c.push(Column::new("organization_id", Id, |l: &Lead| Cell::uuid(l.organization_id.map(|o| o.into_uuid()))));
    c.push(Column::new("created_at", DateTime, |l: &Lead| Cell::Time(l.created_at)));
    c.push(Column::new("updated_at", DateTime, |l: &Lead| Cell::Time(l.updated_at)));
    c
});

impl Dataset for Lead {
    const NAME: DatasetName = DatasetName::Leads;
    fn columns() -> &'static [Column<Self>] {
        &LEAD_COLUMNS
    }
}

static ORGANIZATION_COLUMNS: LazyLock<Vec<Column<Organization>>> = LazyLock::new(|| {
    type O = Organization;
    let mut c: Vec<Column<O>> = vec![
        Column::new("id", Id, |o: &O| Cell::Uuid(o.id.into_uuid())),
        text("name", |o: &O| Some(o.name.as_str())),
        text("domain", |o: &O| o.domain.as_ref().map(|d| d.as_str())),
        text("website_url", |o: &O| o.website_url.as_ref().map(|u| u.as_str())),
        text("business_id", |o: &O| o.business_id.as_deref()),
        text("vat_id", |o: &O| o.vat_id.as_deref()),
        text("industry", |o: &O| o.industry.as_deref()),
        Column::new("employee_range.min", Integer, |o: &O| {
            Cell::int(o.employee_range.as_ref().and_then(|r: &EmployeeRange| r.min))
        }),
        Column::new("employee_range.max", Integer, |o: &O| {
            Cell::int(o.employee_range.as_ref().and_then(|r: &EmployeeRange| r.max))
        }),
        text("address.street", |o: &O| o.address.street.as_deref()),
        text("address.postal_code", |o: &O| o.address.postal_code.as_deref()),
        text("address.city", |o: &O| o.address.city.as_deref()),
        text("address.country_code", |o: &O| o.address.country_code.as_ref().map(|c| c.as_str())),
        text("phone", |o: &O| o.phone.as_ref().map(|p| p.as_str())),
        text("email", |o: &O| o.email.as_ref().map(|e| e.as_str())),
        text("linkedin_url", |o: &O| o.linkedin_url.as_ref().map(|u| u.as_str())),
        Column::new("tags", Json, |o: &O| Cell::json(&o.tags, o.tags.is_empty())),
        Column::new("first_visit_at", DateTime, |o: &O| Cell::time(o.first_visit_at)),
        Column::new("last_visit_at", DateTime, |o: &O| Cell::time(o.last_visit_at)),
        Column::new("visit_count", Integer, |o: &O| Cell::uint(o.visit_count)),
        Column::new("visitor_count", Integer, |o: &O| Cell::uint(o.visitor_count)),
        Column::new("contacts", Json, |o: &O| Cell::json::<[Contact]>(&o.contacts, o.contacts.is_empty())),
        Column::new("created_at", DateTime, |o: &O| Cell::Time(o.created_at)),
        Column::new("updated_at", DateTime, |o: &O| Cell::Time(o.updated_at)),
    ];
    c.shrink_to_fit();
    c
});

impl Dataset for Organization {
    const NAME: DatasetName = DatasetName::Organizations;
    fn columns() -> &'static [Column<Self>] {
        &ORGANIZATION_COLUMNS
    }
}

static PROFILE_COLUMNS: LazyLock<Vec<Column<VisitorProfile>>> = LazyLock::new(|| {
    type V = VisitorProfile;
    let mut c: Vec<Column<V>> = vec![
        Column::new("id", Id, |v: &V| Cell::Uuid(v.id.into_uuid())),
        text("contact_id", |v: &V| v.contact_id.as_deref()),
        Column::new("identified", Boolean, |v: &V| Cell::Bool(v.identified)),
        Column::new("lead_ids", Json, |v: &V| Cell::json(&v.lead_ids, v.lead_ids.is_empty())),
        Column::new("organization_id", Id, |v: &V| Cell::uuid(v.organization_id.map(|o| o.into_uuid()))),
        Column::new("first_seen_at", DateTime, |v: &V| Cell::Time(v.first_seen_at)),
        Column::new("last_seen_at", DateTime, |v: &V| Cell::Time(v.last_seen_at)),
        Column::new("visit_count", Integer, |v: &V| Cell::uint(v.visit_count)),
        Column::new("pageview_count", Integer, |v: &V| Cell::uint(v.pageview_count)),
        Column::new("event_count", Integer, |v: &V| Cell::uint(v.event_count)),
        Column::new("total_duration_s", Integer, |v: &V| Cell::uint(v.total_duration_s)),
        Column::new("conversion_count", Integer, |v: &V| Cell::uint(v.conversion_count)),
    ];
    c.extend(nested(touch_columns(), "first_touch", |v: &V| v.first_touch.as_ref()));
    c.extend(nested(touch_columns(), "last_touch", |v: &V| v.last_touch.as_ref()));
    c.extend(nested(location_columns(), "last_location", |v: &V| Some(&v.last_location)));
    c.push(Column::new("ip_network", Text, |v: &V| Cell::display(v.ip_network.as_ref())));
    c.push(Column::new("devices", Json, |v: &V| Cell::json(&v.devices, v.devices.is_empty())));
    c.push(Column::new("top_pages", Json, |v: &V| Cell::json(&v.top_pages, v.top_pages.is_empty())));
    c
});

impl Dataset for VisitorProfile {
    const NAME: DatasetName = DatasetName::VisitorProfiles;
    fn columns() -> &'static [Column<Self>] {
        &PROFILE_COLUMNS
    }
}

static JOURNEY_COLUMNS: LazyLock<Vec<Column<Journey>>> = LazyLock::new(|| {
    type J = Journey;
    let mut c: Vec<Column<J>> = vec![
        Column::new("id", Id, |j: &J| Cell::Uuid(j.session.id.into_uuid())),
        Column::new("visitor_profile_id", Id, |j: &J| Cell::Uuid(j.session.visitor_profile_id.into_uuid())),
        Column::new("visit_index", Integer, |j: &J| Cell::Int(i64::from(j.session.visit_index))),
        Column::new("started_at", DateTime, |j: &J| Cell::Time(j.session.started_at)),
        Column::new("ended_at", DateTime, |j: &J| Cell::Time(j.session.ended_at)),
        Column::new("duration_s", Integer, |j: &J| Cell::uint(j.session.duration_s)),
        text("entry_url", |j: &J| j.session.entry_url.as_ref().map(|u| u.as_str())),
        text("exit_url", |j: &J| j.session.exit_url.as_ref().map(|u| u.as_str())),
        text("referrer_url", |j: &J| j.session.referrer_url.as_ref().map(|u| u.as_str())),
        text("referrer_type", |j: &J| Some(j.session.referrer_type.as_str())),
    ];
    c.extend(nested(utm_columns(), "utm", |j: &J| Some(&j.session.utm)));
    c.extend([
        text("device.type", |j: &J| Some(j.session.device.kind.as_str())),
        text("device.os", |j: &J| j.session.device.os.as_deref()),
        text("device.browser", |j: &J| j.session.device.browser.as_deref()),
        text("device.language", |j: &J| j.session.device.language.as_deref()),
    ]);
    c.extend(nested(location_columns(), "location", |j: &J| Some(&j.session.location)));
    c.push(Column::new("ip_network", Text, |j: &J| Cell::display(j.session.ip_network.as_ref())));
    c.push(Column::new("pageview_count", Integer, |j: &J| Cell::uint(j.session.pageview_count)));
    c.push(Column::new("converted", Boolean, |j: &J| Cell::Bool(j.session.converted)));
    c.push(Column::new("events", Json, |j: &J| Cell::json(&j.events, j.events.is_empty())));
    c
});

impl Dataset for Journey {
    const NAME: DatasetName = DatasetName::Journeys;
    fn columns() -> &'static [Column<Self>] {
        &JOURNEY_COLUMNS
    }
}

/// Every report shares these columns; metrics a report does not measure are empty.
static REPORT_COLUMNS: LazyLock<Vec<Column<ReportRow>>> = LazyLock::new(|| {
    type R = ReportRow;
    let count = |name: &str, get: fn(&R) -> Option<u64>| {
        Column::new(name, Integer, move |r: &R| get(r).map_or(Cell::Empty, Cell::uint))
    };
    vec![
        text("report", |r: &R| Some(r.report.as_str())),
        text("granularity", |r: &R| Some(r.granularity.as_str())),
        Column::new("period_start", Text, |r: &R| Cell::Owned(r.period_start.to_string())),
        text("dimension", |r: &R| r.dimension.as_deref()),
        text("group", |r: &R| r.group.as_deref()),
        text("label", |r: &R| r.label.as_deref()),
        count("visitors", |r| r.visitors),
        count("sessions", |r| r.sessions),
        count("pageviews", |r| r.pageviews),
        count("conversions", |r| r.conversions),
        count("leads", |r| r.leads),
        Column::new("conversion_rate", Number, |r: &R| r.conversion_rate.map_or(Cell::Empty, Cell::Number)),
    ]
});

impl Dataset for ReportRow {
    const NAME: DatasetName = DatasetName::Reports;
    fn columns() -> &'static [Column<Self>] {
        &REPORT_COLUMNS
    }
}

/// The audit log as `GET /api/v1/audit-log` answers it; `detail` is JSON text whatever its shape.
static AUDIT_COLUMNS: LazyLock<Vec<Column<AuditEntry>>> = LazyLock::new(|| {
    type A = AuditEntry;
    let detail_empty = |d: &serde_json::Value| match d {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        _ => false,
    };
    vec![
        Column::new("seq", Integer, |a: &A| Cell::Int(a.seq)),
        Column::new("id", Id, |a: &A| Cell::Uuid(a.id)),
        Column::new("at", DateTime, |a: &A| Cell::Time(a.at)),
        text("actor.kind", |a: &A| Some(a.actor.kind.as_str())),
        text("actor.id", |a: &A| a.actor.id.as_deref()),
        text("action", |a: &A| Some(a.action.as_str())),
        text("target.kind", |a: &A| Some(a.target.kind.as_str())),
        Column::new("target.count", Integer, |a: &A| Cell::uint(a.target.count)),
        Column::new("target.ids", Json, |a: &A| Cell::json(&a.target.ids, a.target.ids.is_empty())),
        Column::new("detail", Json, move |a: &A| Cell::json(&a.detail, detail_empty(&a.detail))),
        Column::new("ip_network", Text, |a: &A| Cell::display(a.ip_network.as_ref())),
        text("prev_hash", |a: &A| Some(a.prev_hash.as_str())),
        text("hash", |a: &A| Some(a.hash.as_str())),
        text("damaged", |a: &A| a.damaged.as_deref()),
    ]
});

impl Dataset for AuditEntry {
    const NAME: DatasetName = DatasetName::AuditLog;
    fn columns() -> &'static [Column<Self>] {
        &AUDIT_COLUMNS
    }
}
