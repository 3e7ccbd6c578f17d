//! The console's read-only pages: the overview with its charts, and the leads, organizations and
//! visitor profiles with search, filters, cursor pagination and detail pages, a visitor's
//! journey as a timeline.
//!
//! Records are sealed documents: the database filters only on their projected columns (an exact
//! email through its keyed hash, a status, a domain, the creation time). A free-text search
//! opens a bounded number of records per request and says so when it stopped early.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use steward_domain::lead::LeadStatus;
use steward_domain::report::PeriodStart;
use steward_domain::{
    Email, Granularity, Journey, Lead, Organization, Permission, ReportName, Session, TenantId, Timestamp,
    VisitorProfile,
};
use steward_store::{DocKind, ListQuery, Lookup, Record, Store, StoreExt, StoreResult, TenantCtx, Value};
use uuid::Uuid;

use super::views::{self, day, or_dash, when};
use super::{ConsoleError, charts, chrome, page, param, permitted, security};
use crate::api::common::{decode_cursor, encode_cursor};
use crate::state::AppState;

/// Rows per table page.
pub const PAGE: usize = 50;
/// Records one free-text search opens before it stops and offers to go on.
pub const SCAN_MAX: usize = 5_000;
/// Visits shown on a visitor's page, newest first.
const MAX_VISITS: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/leads", get(list_leads))
        .route("/console/leads/{id}", get(show_lead))
        .route("/console/organizations", get(list_organizations))
        .route("/console/organizations/{id}", get(show_organization))
        .route("/console/visitors", get(list_visitors))
        .route("/console/visitors/{id}", get(show_visitor))
}

type Params = Query<HashMap<String, String>>;

/// A `YYYY-MM-DD` day as its midnight (UTC).
pub fn parse_day(text: &str) -> Option<Timestamp> {
    PeriodStart::parse(text.trim()).map(|day| Timestamp::from_datetime(day.date().midnight().assume_utc()))
}

/// The period of a `from`–`to` pair of days, both inclusive, as `[from, to + 1 day)`; an error
/// message for people when a day is malformed or the period is reversed.
pub fn day_range(from: &str, to: &str) -> Result<(Option<Timestamp>, Option<Timestamp>), String> {
    let parse = |text: &str, name: &str| -> Result<Option<Timestamp>, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        parse_day(text).map(Some).ok_or_else(|| format!("The {name} date is not a date; use the form YYYY-MM-DD."))
    };
    let from_at = parse(from, "from")?;
    let to_at = parse(to, "to")?.and_then(|at| at.checked_add(time::Duration::days(1)));
    if let (Some(from_at), Some(to_at)) = (from_at, to_at)
        && from_at >= to_at
    {
        return Err("The period ends before it starts: pick a “to” date on or after the “from” date.".into());
    }
    Ok((from_at, to_at))
}

fn cursor_of(params: &HashMap<String, String>) -> Option<Uuid> {
    params.get("cursor").and_then(|text| decode_cursor(text).ok())
}

/// The same page's URL with `cursor` replaced.
fn next_href(path: &str, params: &HashMap<String, String>, cursor: Uuid) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let sorted: BTreeMap<&String, &String> = params.iter().filter(|(key, _)| key.as_str() != "cursor").collect();
    for (key, value) in sorted {
        query.append_pair(key, value);
    }
    query.append_pair("cursor", &encode_cursor(cursor));
    format!("{path}?{}", query.finish())
}

/// One page of a table: its rows, where the next page starts, and whether a search stopped at
/// [`SCAN_MAX`] records.
pub struct Found<R> {
    pub rows: Vec<R>,
    pub next: Option<Uuid>,
    pub stopped_early: bool,
}

/// Reads `R` from the query's cursor on, keeping what `keep` accepts, until a page is full or
/// [`SCAN_MAX`] records were opened.
pub async fn find_page<R: Record>(
    store: &dyn Store,
    ctx: &TenantCtx,
    mut query: ListQuery,
    keep: impl Fn(&R) -> bool,
) -> StoreResult<Found<R>> {
    let batch = 200_u32;
    query.limit = batch;
    let (mut rows, mut scanned) = (Vec::new(), 0_usize);
    loop {
        let chunk: Vec<R> = store.list(ctx, &query).await?;
        let full = chunk.len() == batch as usize;
        scanned += chunk.len();
        query.after = chunk.last().map(Record::key);
        for record in chunk {
            if keep(&record) {
                if rows.len() == PAGE {
                    let next = rows.last().map(Record::key);
                    return Ok(Found { rows, next, stopped_early: false });
                }
                rows.push(record);
            }
        }
        if !full {
            return Ok(Found { rows, next: None, stopped_early: false });
        }
        if scanned >= SCAN_MAX {
            return Ok(Found { rows, next: query.after, stopped_early: true });
        }
    }
}

fn contains(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|text| text.to_lowercase().contains(needle))
}

fn pager(path: &str, params: &HashMap<String, String>, next: Option<Uuid>, stopped_early: bool) -> Markup {
    html! {
        @if stopped_early {
            p.muted { "The search looked at " (SCAN_MAX) " records and stopped; narrow it with dates or go on." }
        }
        nav aria-label="Pages" {
            @if params.contains_key("cursor") { a href=(path) { "First page" } " " }
            @if let Some(next) = next { a href=(next_href(path, params, next)) rel="next" id="next-page" { "Next page" } }
        }
    }
}

// ---- overview ---------------------------------------------------------------------------

/// The overview's charts of one tenant: numbers per day and the top sources, never personal.
struct Charts {
    computed_at: Timestamp,
    from: Timestamp,
    to: Timestamp,
    days: Vec<time::Date>,
    visits: Vec<u64>,
    leads: Vec<u64>,
    converted: Vec<u64>,
    top: Vec<(String, u64)>,
    suppressed: u64,
}

/// How long the overview's charts are reused: a reload within this time shows the same picture
/// (the page says when it was computed), sparing the database a month's aggregates per view.
/// Counts are read fresh on every view.
const CHARTS_SECONDS: i64 = 120;

fn charts_cache() -> &'static Mutex<HashMap<TenantId, Arc<Charts>>> {
    static CACHE: OnceLock<Mutex<HashMap<TenantId, Arc<Charts>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

async fn overview_charts(state: &AppState, ctx: &TenantCtx) -> Result<Arc<Charts>, ConsoleError> {
    let now = state.clock.now();
    let fresh = |charts: &Arc<Charts>| {
        charts.computed_at <= now
            && charts.computed_at.checked_add(time::Duration::seconds(CHARTS_SECONDS)).is_some_and(|until| now < until)
    };
    if let Some(charts) = charts_cache().lock().ok().and_then(|cache| cache.get(&ctx.tenant_id()).cloned())
        && fresh(&charts)
    {
        return Ok(charts);
    }
    let store = state.store.as_ref();
    let (from, to) = crate::api::reports::period(None, None, now, state.settings.reports.max_days)
        .map_err(|e| anyhow::anyhow!("overview period: {e}"))?;
    let min = u64::from(state.settings.reports.min_group_size);
    // Counted by the database from projected columns, so no record is opened (see
    // `reports::tallied`). Sources by month, not day: a source's leads of one day are mostly
    // too few to show.
    let period = (from, to);
    let conversions =
        crate::api::reports::tallied(store, ctx, ReportName::Conversions, Granularity::Day, period, min).await?;
    let sources =
        crate::api::reports::tallied(store, ctx, ReportName::LeadSources, Granularity::Month, period, min).await?;
    let mut days = Vec::new();
    let mut cursor = from.as_datetime().date();
    let last = to.as_datetime().date();
    while cursor < last {
        days.push(cursor);
        match cursor.next_day() {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let index: HashMap<time::Date, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let (mut visits, mut leads, mut converted) = (vec![0; days.len()], vec![0; days.len()], vec![0; days.len()]);
    for row in &conversions.rows {
        if let Some(i) = index.get(&row.period_start.date()) {
            visits[*i] += row.sessions.unwrap_or(0);
            leads[*i] += row.leads.unwrap_or(0);
            converted[*i] += row.conversions.unwrap_or(0);
        }
    }
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    for row in sources.rows.iter().filter(|row| row.dimension.as_deref() == Some("referrer_type")) {
        *by_source.entry(row.group.clone().unwrap_or_else(|| "unknown".into())).or_default() += row.leads.unwrap_or(0);
    }
    let mut top: Vec<(String, u64)> = by_source.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(8);
    let charts = Arc::new(Charts {
        computed_at: now,
        from,
        to,
        days,
        visits,
        leads,
        converted,
        top,
        suppressed: conversions.suppressed_groups + sources.suppressed_groups,
    });
    if let Ok(mut cache) = charts_cache().lock() {
        cache.insert(ctx.tenant_id(), charts.clone());
    }
    Ok(charts)
}

/// The overview: record counts, visits, leads and conversions per day over the last 30 days,
/// and the top lead sources by referrer type: the rows `/api/v1/reports` gives, counted by the
/// database (`reports::tallied`).
pub async fn show_overview(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadReports, "overview").await?;
    let ctx = &signed.ctx;
    let store = state.store.as_ref();
    let counts = [
        ("Leads", store.count::<Lead>(ctx).await?),
        ("Organizations", store.count::<Organization>(ctx).await?),
        ("Visitor profiles", store.count::<VisitorProfile>(ctx).await?),
        ("Visits", store.count_docs(ctx, DocKind::Session).await?),
    ];
    let charts = overview_charts(&state, ctx).await?;
    let Charts { from, to, days, visits, leads, converted, top, suppressed, computed_at } = charts.as_ref();
    let labels: Vec<String> = days.iter().map(|d| format!("{} {}", d.day(), month_short(d.month()))).collect();
    let series = [
        charts::Series { label: "Visits", colour: "#0b57a4", dash: "", values: visits.clone() },
        charts::Series { label: "Leads", colour: "#17612b", dash: "6 4", values: leads.clone() },
        charts::Series { label: "Conversions", colour: "#a00000", dash: "2 3", values: converted.clone() },
    ];
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console");
    let body = html! {
        ul.cards id="counts" {
            @for (label, count) in counts { li { strong { (count) } (label) } }
        }
        h2 { "Last 30 days (" (day(*from)) " to " (day(to.checked_sub(time::Duration::days(1)).unwrap_or(*to))) ")" }
        div.scroll { (charts::lines("daily-chart", "Visits, leads and conversions per day", &labels, &series)) }
        h2 { "Top lead sources" }
        div.scroll { (charts::bars("sources-chart", "Leads by referrer type, last 30 days", top)) }
        @if *suppressed > 0 {
            p.muted { (suppressed) " small groups are left out so that no number points at one person." }
        }
        p.muted { "Charts computed " (when(*computed_at)) "." }
        details {
            summary { "The numbers per day" }
            div.scroll { table {
                thead { tr { th scope="col" { "Day" } th scope="col" { "Visits" } th scope="col" { "Leads" } th scope="col" { "Conversions" } } }
                tbody {
                    @for (i, d) in days.iter().enumerate() {
                        tr { td { (d.to_string()) } td { (visits[i]) } td { (leads[i]) } td { (converted[i]) } }
                    }
                }
            } }
        }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Overview", body)))
}

fn month_short(month: time::Month) -> &'static str {
    use time::Month::*;
    match month {
        January => "Jan",
        February => "Feb",
        March => "Mar",
        April => "Apr",
        May => "May",
        June => "Jun",
        July => "Jul",
        August => "Aug",
        September => "Sep",
        October => "Oct",
        November => "Nov",
        December => "Dec",
    }
}

// ---- leads ------------------------------------------------------------------------------

pub fn lead_name(lead: &Lead) -> String {
    let name = [lead.first_name.as_deref(), lead.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>();
    if name.is_empty() { "(no name)".into() } else { name.join(" ") }
}

async fn list_leads(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadRecords, "leads").await?;
    let ctx = &signed.ctx;
    let q = param(&params, "q").to_lowercase();
    let status = param(&params, "status");
    let mut message = None;
    let mut query = ListQuery { after: cursor_of(&params), ..ListQuery::default() };
    match day_range(param(&params, "from"), param(&params, "to")) {
        Ok((from, to)) => (query.created_from, query.created_to) = (from, to),
        Err(text) => message = Some(text),
    }
    if !status.is_empty() {
        match LeadStatus::parse(status) {
            Ok(status) => query.equals.push(("status", Value::Text(status.as_str().into()))),
            Err(text) => message = Some(text),
        }
    }
    // An exact address goes to the database through its keyed hash; other text is matched here.
    let exact = Email::parse(&q).ok();
    if let Some(email) = &exact {
        let keys = state.store.keys(ctx)?;
        query.equals.push(("email_key", Value::Bytes(Lookup::Email.key(&keys, &email.lookup_key()))));
    }
    let needle = if exact.is_some() { String::new() } else { q.clone() };
    let found = if message.is_some() {
        Found { rows: Vec::new(), next: None, stopped_early: false }
    } else {
        find_page::<Lead>(state.store.as_ref(), ctx, query, |lead: &Lead| {
            needle.is_empty()
                || contains(lead.first_name.as_deref(), &needle)
                || contains(lead.last_name.as_deref(), &needle)
                || contains(lead.company_name.as_deref(), &needle)
                || contains(lead.email.as_ref().map(Email::as_str), &needle)
                || lead.id.to_string() == needle
        })
        .await?
    };
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/leads");
    let body = html! {
        form.filters method="get" action="/console/leads" role="search" {
            label { "Search" input type="search" name="q" value=(param(&params, "q")) placeholder="name, company or email"; }
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in LeadStatus::ALL { option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) } }
            } }
            label { "Created from" input type="date" name="from" value=(param(&params, "from")); }
            label { "to" input type="date" name="to" value=(param(&params, "to")); }
            button type="submit" { "Filter" }
        }
        (views::notice(None, message.as_deref()))
        div.scroll { table id="leads" {
            caption.muted { "Leads, oldest first" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Company" } th scope="col" { "Status" } th scope="col" { "Score" } th scope="col" { "Created" } } }
            tbody {
                @for lead in &found.rows {
                    tr data-lead-id=(lead.id.to_string()) {
                        td { a href=(format!("/console/leads/{}", lead.id)) { (lead_name(lead)) } }
                        td.email { (or_dash(lead.email.as_ref().map(Email::as_str))) }
                        td { (or_dash(lead.company_name.as_deref())) }
                        td { (lead.status.as_str()) @if lead.restricted_at.is_some() { " (restricted)" } }
                        td { (lead.score.map(|s| s.to_string()).unwrap_or_else(|| "–".into())) }
                        td { (when(lead.created_at)) }
                    }
                }
                @if found.rows.is_empty() { tr { td colspan="6" { "No leads match." } } }
            }
        } }
        (pager("/console/leads", &params, found.next, found.stopped_early))
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Leads", body)))
}

fn parse_id(text: &str, what: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(text).map_err(|_| ConsoleError::NotFound(format!("There is no {what} with this address.")))
}

async fn show_lead(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadRecords, "lead").await?;
    let missing = || ConsoleError::NotFound("There is no such lead; it may have been erased.".into());
    let lead = state.store.get::<Lead>(&signed.ctx, parse_id(&id, "lead")?).await?.ok_or_else(missing)?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/leads");
    let touch = |touch: &Option<steward_domain::touch::Touch>| {
        html! {
            @if let Some(t) = touch {
                (when(t.occurred_at)) " · landing " (or_dash(t.landing_url.as_ref().map(|u| u.as_str())))
                " · referrer " (or_dash(t.referrer_url.as_ref().map(|u| u.as_str())))
                @if let Some(source) = &t.utm.source { " · utm_source " (source) }
            } @else { "–" }
        }
    };
    let body = html! {
        dl.facts {
            dt { "Email" } dd { (or_dash(lead.email.as_ref().map(Email::as_str))) }
            dt { "Phone" } dd { (or_dash(lead.phone.as_ref().map(|p| p.as_str()))) }
            dt { "Company" } dd { (or_dash(lead.company_name.as_deref())) }
            dt { "Job title" } dd { (or_dash(lead.job_title.as_deref())) }
            dt { "Status" } dd { (lead.status.as_str()) }
            dt { "Score" } dd { (lead.score.map(|s| s.to_string()).unwrap_or_else(|| "–".into())) }
            dt { "Tags" } dd { (if lead.tags.is_empty() { "–".to_string() } else { lead.tags.join(", ") }) }
            dt { "Bot" } dd { (or_dash(lead.bot.as_ref().map(|b| b.name.as_str()))) }
            dt { "First touch" } dd { (touch(&lead.first_touch)) }
            dt { "Last touch" } dd { (touch(&lead.last_touch)) }
            dt { "Location" } dd { (location(&lead.location)) }
            dt { "Consent to marketing" } dd { (lead.consent.as_ref().map_or("not asked", |c| if c.marketing { "yes" } else { "no" })) }
            dt { "Created" } dd { (when(lead.created_at)) }
            @if let Some(at) = lead.restricted_at { dt { "Processing restricted" } dd { (when(at)) } }
            @if let Some(at) = lead.objected_at { dt { "Objected" } dd { (when(at)) } }
            dt { "Visitor" } dd { @if let Some(v) = lead.visitor_profile_id { a href=(format!("/console/visitors/{v}")) { "Journey of this visitor" } } @else { "–" } }
            dt { "Organization" } dd { @if let Some(o) = lead.organization_id { a href=(format!("/console/organizations/{o}")) { "Organization" } } @else { "–" } }
        }
        @if !lead.answers.is_empty() {
            h2 { "Answers" }
            dl.facts { @for a in &lead.answers { dt { (a.question) } dd { (a.answer) } } }
        }
        @if !lead.custom_fields.is_empty() {
            h2 { "Custom fields" }
            dl.facts { @for (k, v) in &lead.custom_fields { dt { (k) } dd { (v) } } }
        }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, &lead_name(&lead), body)))
}

fn location(location: &steward_domain::Location) -> String {
    let parts: Vec<&str> =
        [location.city.as_deref(), location.region.as_deref(), location.country_code.as_ref().map(|c| c.as_str())]
            .into_iter()
            .flatten()
            .collect();
    if parts.is_empty() { "–".into() } else { parts.join(", ") }
}

// ---- organizations ----------------------------------------------------------------------

async fn list_organizations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadRecords, "organizations").await?;
    let q = param(&params, "q").to_lowercase();
    let query = ListQuery { after: cursor_of(&params), ..ListQuery::default() };
    let found = find_page::<Organization>(state.store.as_ref(), &signed.ctx, query, |org: &Organization| {
        q.is_empty()
            || org.name.to_lowercase().contains(&q)
            || contains(org.domain.as_ref().map(|d| d.as_str()), &q)
            || contains(org.industry.as_deref(), &q)
    })
    .await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/organizations");
    let body = html! {
        form.filters method="get" action="/console/organizations" role="search" {
            label { "Search" input type="search" name="q" value=(param(&params, "q")) placeholder="name, domain or industry"; }
            button type="submit" { "Search" }
        }
        div.scroll { table id="organizations" {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Domain" } th scope="col" { "Industry" } th scope="col" { "Visits" } th scope="col" { "Last visit" } } }
            tbody {
                @for org in &found.rows {
                    tr {
                        td { a href=(format!("/console/organizations/{}", org.id)) { (org.name) } }
                        td { (or_dash(org.domain.as_ref().map(|d| d.as_str()))) }
                        td { (or_dash(org.industry.as_deref())) }
                        td { (org.visit_count) }
                        td { (org.last_visit_at.map(when).unwrap_or_else(|| "–".into())) }
                    }
                }
                @if found.rows.is_empty() { tr { td colspan="5" { "No organizations match." } } }
            }
        } }
        (pager("/console/organizations", &params, found.next, found.stopped_early))
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Organizations", body)))
}

async fn show_organization(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadRecords, "organization").await?;
    let missing = || ConsoleError::NotFound("There is no such organization.".into());
    let org =
        state.store.get::<Organization>(&signed.ctx, parse_id(&id, "organization")?).await?.ok_or_else(missing)?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/organizations");
    let body = html! {
        dl.facts {
            dt { "Domain" } dd { (or_dash(org.domain.as_ref().map(|d| d.as_str()))) }
            dt { "Website" } dd { (or_dash(org.website_url.as_ref().map(|u| u.as_str()))) }
            dt { "Business id" } dd { (or_dash(org.business_id.as_deref())) }
            dt { "Industry" } dd { (or_dash(org.industry.as_deref())) }
            dt { "Visits / visitors" } dd { (org.visit_count) " / " (org.visitor_count) }
            dt { "First visit" } dd { (org.first_visit_at.map(when).unwrap_or_else(|| "–".into())) }
            dt { "Last visit" } dd { (org.last_visit_at.map(when).unwrap_or_else(|| "–".into())) }
            dt { "Tags" } dd { (if org.tags.is_empty() { "–".to_string() } else { org.tags.join(", ") }) }
        }
        h2 { "Contacts" }
        @if org.contacts.is_empty() { p { "None." } }
        ul { @for contact in &org.contacts {
            li { a href=(format!("/console/leads/{}", contact.lead_id)) { (contact.name.as_deref().unwrap_or("(no name)")) }
                 @if let Some(role) = &contact.role { " · " (role) } }
        } }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, &org.name, body)))
}

// ---- visitors ---------------------------------------------------------------------------

async fn list_visitors(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadRecords, "visitors").await?;
    let identified = param(&params, "identified");
    let mut message = None;
    let mut query = ListQuery { after: cursor_of(&params), ..ListQuery::default() };
    match day_range(param(&params, "from"), param(&params, "to")) {
        Ok((from, to)) => (query.created_from, query.created_to) = (from, to),
        Err(text) => message = Some(text),
    }
    let found =
        find_page::<VisitorProfile>(state.store.as_ref(), &signed.ctx, query, |v: &VisitorProfile| match identified {
            "yes" => v.identified,
            "no" => !v.identified,
            _ => true,
        })
        .await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/visitors");
    let body = html! {
        form.filters method="get" action="/console/visitors" {
            label { "Identified" select name="identified" {
                option value="" { "any" }
                option value="yes" selected[identified == "yes"] { "yes (became a lead)" }
                option value="no" selected[identified == "no"] { "no" }
            } }
            label { "First seen from" input type="date" name="from" value=(param(&params, "from")); }
            label { "to" input type="date" name="to" value=(param(&params, "to")); }
            button type="submit" { "Filter" }
        }
        (views::notice(None, message.as_deref()))
        div.scroll { table id="visitors" {
            thead { tr { th scope="col" { "Visitor" } th scope="col" { "Identified" } th scope="col" { "Visits" } th scope="col" { "Page views" } th scope="col" { "Conversions" } th scope="col" { "Last seen" } } }
            tbody {
                @for v in &found.rows {
                    tr {
                        td { a href=(format!("/console/visitors/{}", v.id)) { (v.id.to_string()) } }
                        td { (if v.identified { "yes" } else { "no" }) }
                        td { (v.visit_count) } td { (v.pageview_count) } td { (v.conversion_count) }
                        td { (when(v.last_seen_at)) }
                    }
                }
                @if found.rows.is_empty() { tr { td colspan="6" { "No visitors match." } } }
            }
        } }
        (pager("/console/visitors", &params, found.next, found.stopped_early))
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Visitor profiles", body)))
}

/// The newest visits of a profile (at most [`MAX_VISITS`]) with their events, newest first.
async fn visits(store: &dyn Store, ctx: &TenantCtx, profile: Uuid) -> StoreResult<(Vec<Journey>, bool)> {
    let mut query =
        ListQuery { limit: 1_000, equals: vec![("visitor_profile_id", Value::Uuid(profile))], ..ListQuery::default() };
    let mut sessions: Vec<Session> = Vec::new();
    loop {
        let page: Vec<Session> = store.list(ctx, &query).await?;
        let full = page.len() == 1_000;
        query.after = page.last().map(|s| s.id.into_uuid());
        sessions.extend(page);
        if !full {
            break;
        }
    }
    sessions.sort_by_key(|s| std::cmp::Reverse((s.visit_index, s.started_at)));
    let more = sessions.len() > MAX_VISITS;
    sessions.truncate(MAX_VISITS);
    Ok((crate::api::exports::journeys(store, ctx, sessions).await?, more))
}

async fn show_visitor(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadRecords, "visitor").await?;
    let missing = || ConsoleError::NotFound("There is no such visitor profile; it may have been erased.".into());
    let id = parse_id(&id, "visitor profile")?;
    let profile = state.store.get::<VisitorProfile>(&signed.ctx, id).await?.ok_or_else(missing)?;
    let (journeys, more) = visits(state.store.as_ref(), &signed.ctx, id).await?;
    let leads: Vec<Lead> = if profile.lead_ids.is_empty() {
        Vec::new()
    } else {
        let ids = profile.lead_ids.iter().map(|l| Value::Uuid(l.into_uuid())).collect();
        state.store.list(&signed.ctx, &ListQuery { any_of: Some(("id", ids)), ..ListQuery::default() }).await?
    };
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/visitors");
    let body = html! {
        dl.facts {
            dt { "First seen" } dd { (when(profile.first_seen_at)) }
            dt { "Last seen" } dd { (when(profile.last_seen_at)) }
            dt { "Visits / page views / conversions" } dd { (profile.visit_count) " / " (profile.pageview_count) " / " (profile.conversion_count) }
            dt { "Time on site" } dd { (duration(profile.total_duration_s)) }
            dt { "Location" } dd { (location(&profile.last_location)) }
            dt { "Leads" } dd {
                @if leads.is_empty() { "none" }
                @for lead in &leads { a href=(format!("/console/leads/{}", lead.id)) { (lead_name(lead)) } " " }
            }
            @if let Some(org) = profile.organization_id { dt { "Organization" } dd { a href=(format!("/console/organizations/{org}")) { "Organization" } } }
        }
        h2 { "Journey" }
        (timeline(&journeys, &leads))
        @if more { p.muted { "Only the newest " (MAX_VISITS) " visits are shown; export journeys for all." } }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Visitor journey", body)))
}

fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3_600, (seconds % 3_600) / 60),
    }
}

/// Whether `at` falls in a visit (with a few minutes' slack: a form's lead may be saved just
/// after the visit's last event).
fn during(session: &Session, at: Timestamp) -> bool {
    let slack = time::Duration::minutes(10);
    at >= session.started_at && session.ended_at.checked_add(slack).is_some_and(|end| at <= end)
}

/// A visitor's visits as a timeline, newest visit first and each visit's events in order: page
/// views, bot answers (the questions and answers the visitor's leads hold), form submissions and
/// the conversion with the lead it made.
pub fn timeline(journeys: &[Journey], leads: &[Lead]) -> Markup {
    html! {
        @if journeys.is_empty() { p { "No visits recorded." } }
        ol.timeline id="journey" {
            @for journey in journeys {
                @let s = &journey.session;
                li {
                    h3 { "Visit " (s.visit_index) " · " (when(s.started_at)) @if s.converted { " · converted" } }
                    p.muted {
                        (duration(s.duration_s)) " · " (s.referrer_type.as_str())
                        @if let Some(r) = &s.referrer_url { " from " (r.as_str()) }
                        @if let Some(source) = &s.utm.source { " · utm_source " (source) }
                        " · " (s.device.kind.as_str())
                        @if let Some(browser) = &s.device.browser { ", " (browser) }
                    }
                    ol {
                        @for e in &journey.events {
                            li data-event=(e.kind.as_str()) {
                                time datetime=(e.occurred_at.to_string()) { (when(e.occurred_at)) } " · "
                                strong { (event_label(e.kind)) } " "
                                (e.page_title.as_deref().or(e.url.as_ref().map(|u| u.as_str())).unwrap_or(""))
                                @if let Some(t) = e.time_on_page_s { span.muted { " (" (duration(t)) ")" } }
                            }
                        }
                    }
                    @for lead in leads.iter().filter(|lead| during(s, lead.created_at) || lead.answers.iter().any(|a| during(s, a.answered_at))) {
                        @let answers: Vec<_> = lead.answers.iter().filter(|a| during(s, a.answered_at)).collect();
                        @if !answers.is_empty() {
                            p { strong { "Bot answers" } @if let Some(bot) = &lead.bot { " (" (bot.name) ")" } }
                            dl.facts.answers { @for a in answers { dt { (a.question) } dd { (a.answer) } } }
                        }
                        @if during(s, lead.created_at) {
                            p data-lead=(lead.id.to_string()) { "Became a lead: " a href=(format!("/console/leads/{}", lead.id)) { (lead_name(lead)) } " at " (when(lead.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

fn event_label(kind: steward_domain::EventType) -> &'static str {
    use steward_domain::EventType::*;
    match kind {
        PageView => "Viewed",
        BotOpen => "Opened the bot",
        BotAnswer => "Answered the bot",
        FormSubmit => "Sent a form",
        Conversion => "Converted",
        Click => "Clicked",
        Custom => "Event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges_include_the_last_day_and_refuse_reversed_periods() {
        let (from, to) = day_range("2026-01-05", "2026-01-10").unwrap_or_default();
        assert_eq!(from.map(|t| t.to_string()).as_deref(), Some("2026-01-05T00:00:00Z"));
        assert_eq!(to.map(|t| t.to_string()).as_deref(), Some("2026-01-11T00:00:00Z"));
        assert_eq!(day_range("", "").ok(), Some((None, None)));
        assert!(day_range("2026-01-10", "2026-01-09").is_err());
        assert!(day_range("yesterday", "").is_err());
    }

    #[test]
    fn the_next_page_link_keeps_the_filters_and_replaces_the_cursor() {
        let params = HashMap::from([("q".to_string(), "a&b".to_string()), ("cursor".to_string(), "old".to_string())]);
        let href = next_href("/console/leads", &params, Uuid::nil());
        assert!(href.starts_with("/console/leads?q=a%26b&cursor="), "{href}");
        assert!(!href.contains("old"));
    }
}
