//! `/api/v1/reports/{report}` and the `reports` export: counts per period and group computed
//! from the tenant's sessions, events and leads, with groups of fewer than
//! `reports.min_group_size` people suppressed (see [`steward_domain::report`]).
//!
//! Records are sealed documents, so the database cannot aggregate them: a report reads the
//! period's records a page at a time and folds them into counters, holding one page and the
//! distinct people per group, never the whole period.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Uri};
use axum::response::Response;
use serde::Serialize;
use steward_domain::report::{ReportBuilder, ReportOutput};
use steward_domain::{
    Event, Granularity, Lead, Organization, OrganizationId, ReportName, ReportRow, Scope, Session, Timestamp,
    VisitorProfile,
};
use steward_export::{ExportError, Format, Writer};
use steward_store::{ListQuery, Record, Store, StoreError, StoreExt, StoreResult, TallyQuery, TenantCtx, Value};
use uuid::Uuid;

use super::exports::ExportRequest;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const PAGE: u32 = 1_000;
/// Ids per `IN (…)` read, well under every backend's parameter limit.
const IDS_PER_READ: usize = 500;
/// The period of a report asked for without `from` and `to`, ending today (UTC).
pub const DEFAULT_DAYS: i64 = 30;

/// One report over one period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub report: ReportName,
    pub granularity: Granularity,
    /// Start of the period (inclusive).
    pub from: Timestamp,
    /// End of the period (exclusive).
    pub to: Timestamp,
    /// Groups counting fewer distinct people than this are left out.
    pub min_group_size: u32,
    /// How many groups were left out for counting fewer than `min_group_size` people.
    pub suppressed_groups: u64,
    /// Rows by period, dimension, then largest group first. Periods and groups without activity
    /// have no row; the first and last period may be partial.
    pub data: Vec<ReportRow>,
}

/// A period bound: an RFC 3339 date-time, or a full-date meaning its midnight (UTC).
fn bound(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    if let Some(day) = steward_domain::report::PeriodStart::parse(text.trim()) {
        return Ok(midnight(day.date()));
    }
    Timestamp::parse(text).map_err(|_| {
        ApiError::invalid_query(field, "is not an RFC 3339 date (2026-11-01) or date-time (2026-11-01T00:00:00Z)")
    })
}

fn midnight(day: time::Date) -> Timestamp {
    Timestamp::from_datetime(day.midnight().assume_utc())
}

/// The period asked for: by default the last 30 days up to the end of today (UTC); at most
/// `max_days` long.
pub fn period(
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    now: Timestamp,
    max_days: u32,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let tomorrow = now.as_datetime().date().next_day().map_or(now, midnight);
    let to_given = to.is_some();
    let to = to.unwrap_or(tomorrow);
    let from = from.unwrap_or_else(|| to.checked_sub(time::Duration::days(DEFAULT_DAYS)).unwrap_or(to));
    let field = if to_given { "to" } else { "from" };
    if from >= to {
        return Err(ApiError::invalid_query(field, "must make the period end after it starts (to is exclusive)"));
    }
    let length = to.as_datetime() - from.as_datetime();
    if length > time::Duration::days(i64::from(max_days)) {
        return Err(ApiError::invalid_query(
            field,
            format!(
                "makes the period {from} to {to} {} days long; a report covers at most {max_days} days: \
                 ask for several shorter periods",
                length.whole_days() + i64::from(length.whole_seconds() % 86_400 != 0)
            ),
        ));
    }
    Ok((from, to))
}

/// Reads `from`, `to` and `granularity` from the query string; anything else is refused.
fn parameters(uri: &Uri, state: &AppState) -> Result<(Timestamp, Timestamp, Granularity), ApiError> {
    let (mut from, mut to, mut granularity) = (None, None, Granularity::Day);
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "from" => from = Some(bound("from", &value)?),
            "to" => to = Some(bound("to", &value)?),
            "granularity" => {
                granularity = Granularity::parse(value.trim())
                    .ok_or_else(|| ApiError::invalid_query("granularity", "must be day, week or month"))?;
            }
            other => return Err(ApiError::bad_query(other, "is not known here; use from, to, granularity")),
        }
    }
    let (from, to) = period(from, to, state.clock.now(), state.settings.reports.max_days)?;
    Ok((from, to, granularity))
}

/// One analytical report per period (`granularity`: `day`, ISO `week` starting on Monday, or
/// `month`; UTC) over `from` (inclusive) to `to` (exclusive), by default the last 30 days up to
/// the end of today, at most 366 days (`reports.max_days`). Reports: `traffic` (visits, visitors,
/// page views), `conversions` (converted visits, leads, conversion rate of visits), `lead_sources`
/// (leads by `source`, `referrer_type` and `utm_source`), `top_pages` (page views and visitors
/// per page, without query or fragment) and `organizations` (visits, visitors and leads per
/// organization). A group counting fewer distinct people than `reports.min_group_size` (5) is
/// left out and counted in `suppressed_groups`, so that no row points at one person.
#[utoipa::path(
    get, path = "/api/v1/reports/{report}", tag = "reports",
    params(
        ("report" = ReportName, Path, description = "traffic, conversions, lead_sources, top_pages or organizations"),
        ("from" = Option<String>, Query, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "RFC 3339 date-time or date (2026-11-01, meaning its midnight UTC), years 1970 to 9999; inclusive. Default: 30 days before `to`"),
        ("to" = Option<String>, Query, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "RFC 3339 date-time or date, years 1970 to 9999; exclusive, later than `from`, at most 366 days (`reports.max_days`) after it. Default: the end of today (UTC)"),
        ("granularity" = Option<Granularity>, Query, description = "day (default), week or month"),
    ),
    responses(
        (status = 200, description = "The report's rows and how many groups were suppressed", body = Report),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks reports:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report; the detail names the reports", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `from`, `to` or `granularity`, or a period past the limit; each named", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["reports:read"]))
)]
pub async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(report): Path<String>,
    uri: Uri,
) -> Result<Json<Report>, ApiError> {
    caller.require(Scope::ReportsRead)?;
    let name = ReportName::parse(&report).ok_or_else(|| {
        ApiError::NotFound(format!("there is no report {report:?}; the reports are {}", ReportName::list()))
    })?;
    let (from, to, granularity) = parameters(&uri, &state)?;
    let min_group_size = state.settings.reports.min_group_size;
    let output =
        compute(state.store.as_ref(), &caller.ctx, name, granularity, (from, to), u64::from(min_group_size)).await?;
    Ok(Json(Report {
        report: name,
        granularity,
        from,
        to,
        min_group_size,
        suppressed_groups: output.suppressed_groups,
        data: output.rows,
    }))
}

/// Calls `each` with every record of type `R` created in the window, a page at a time.
async fn for_each<R: Record>(
    store: &dyn Store,
    ctx: &TenantCtx,
    window: &ListQuery,
    mut each: impl FnMut(&R) + Send,
) -> StoreResult<()> {
    let mut query = ListQuery { limit: PAGE, ..window.clone() };
    loop {
        let page: Vec<R> = store.list(ctx, &query).await?;
        page.iter().for_each(&mut each);
        if page.len() < PAGE as usize {
            return Ok(());
        }
        query.after = page.last().map(Record::key);
    }
}

/// Records of type `R` with these ids, read in batches.
async fn by_ids<R: Record>(store: &dyn Store, ctx: &TenantCtx, ids: &[Uuid]) -> StoreResult<Vec<R>> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_READ) {
        let values = chunk.iter().map(|id| Value::Uuid(*id)).collect();
        let query = ListQuery { limit: PAGE, any_of: Some(("id", values)), ..ListQuery::default() };
        records.extend(store.list::<R>(ctx, &query).await?);
    }
    Ok(records)
}

/// Computes one report over `[from, to)`.
pub async fn compute(
    store: &dyn Store,
    ctx: &TenantCtx,
    report: ReportName,
    granularity: Granularity,
    (from, to): (Timestamp, Timestamp),
    min_group_size: u64,
) -> StoreResult<ReportOutput> {
    let window = ListQuery { created_from: Some(from), created_to: Some(to), ..ListQuery::default() };
    let needs = report.needs();
    let mut builder = ReportBuilder::new(report, granularity);
    // Restricted people (GDPR Art. 18) count in no report.
    let restricted = crate::api::exports::restricted_visitors(store, ctx).await?;
    let counted = |visitor: &Uuid| !restricted.contains(visitor);
    // The organization of each visitor who visited in the period (from their profiles).
    let mut organization_of: HashMap<Uuid, OrganizationId> = HashMap::new();
    let mut organizations: HashSet<OrganizationId> = HashSet::new();
    if needs.organizations {
        let mut visitors: HashSet<Uuid> = HashSet::new();
        for_each::<Session>(store, ctx, &window, |s| {
            if counted(s.visitor_profile_id.as_uuid()) {
                visitors.insert(s.visitor_profile_id.into_uuid());
            }
        })
        .await?;
        let visitors: Vec<Uuid> = visitors.into_iter().collect();
        for profile in by_ids::<VisitorProfile>(store, ctx, &visitors).await? {
            if let Some(organization) = profile.organization_id {
                organization_of.insert(profile.id.into_uuid(), organization);
                organizations.insert(organization);
            }
        }
    }
    if needs.sessions {
        for_each::<Session>(store, ctx, &window, |session| {
            if !counted(session.visitor_profile_id.as_uuid()) {
                return;
            }
            let organization = organization_of.get(session.visitor_profile_id.as_uuid()).copied();
            builder.add_session(session, organization);
        })
        .await?;
    }
    if needs.events {
        for_each::<Event>(store, ctx, &window, |event| {
            if counted(event.visitor_profile_id.as_uuid()) {
                builder.add_event(event);
            }
        })
        .await?;
    }
    if needs.leads {
        for_each::<Lead>(store, ctx, &window, |lead| {
            if lead.restricted_at.is_some() {
                return;
            }
            if needs.organizations
                && let Some(organization) = lead.organization_id
            {
                organizations.insert(organization);
            }
            builder.add_lead(lead);
        })
        .await?;
    }
    if needs.organizations {
        let ids: Vec<Uuid> = organizations.into_iter().map(OrganizationId::into_uuid).collect();
        for organization in by_ids::<Organization>(store, ctx, &ids).await? {
            builder.label(organization.id.to_string(), organization.name);
        }
    }
    Ok(builder.finish(min_group_size))
}

/// `conversions`, and the `referrer_type` rows of `lead_sources`, counted by the database from
/// projected columns (a visit's `converted`, a lead's `referrer_type`, who each is about)
/// instead of opening every record of the period: the rows and suppression [`compute`] gives
/// them (a test holds the two together), at the cost of a few aggregate queries. Other reports
/// and dimensions have no rows here.
pub async fn tallied(
    store: &dyn Store,
    ctx: &TenantCtx,
    report: ReportName,
    granularity: Granularity,
    (from, to): (Timestamp, Timestamp),
    min_group_size: u64,
) -> StoreResult<ReportOutput> {
    let window = ListQuery { created_from: Some(from), created_to: Some(to), ..ListQuery::default() };
    let day = |n: i64| {
        Timestamp::from_unix_micros(n.saturating_mul(86_400_000_000)).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    let mut builder = ReportBuilder::new(report, granularity);
    if report == ReportName::Conversions {
        // Restricted people (GDPR Art. 18) count in no report.
        let restricted = crate::api::exports::restricted_visitors(store, ctx).await?;
        let visits =
            TallyQuery { window: window.clone(), group: None, person: "visitor_profile_id", sum: Some("converted") };
        for row in store.tally::<Session>(ctx, &visits, &["converted"]).await? {
            if !restricted.contains(&row.person) {
                builder.add_visit_tally(day(row.day)?, row.person, row.rows, row.sum);
            }
        }
    }
    let unrestricted = ListQuery { equals: vec![("restricted", Value::Int(0))], ..window };
    let leads =
        TallyQuery { window: unrestricted, group: Some("referrer_type"), person: "visitor_profile_id", sum: None };
    for row in store.tally::<Lead>(ctx, &leads, &["referrer_type"]).await? {
        builder.add_lead_tally(day(row.day)?, row.person, row.group.as_deref().unwrap_or("unknown"), row.rows);
    }
    Ok(builder.finish(min_group_size))
}

/// Every report over the period at `granularity`, one after another: the `reports` dataset.
/// Returns the rows and how many groups were suppressed.
pub async fn all_reports(
    store: &dyn Store,
    ctx: &TenantCtx,
    granularity: Granularity,
    period: (Timestamp, Timestamp),
    min_group_size: u64,
) -> StoreResult<(Vec<ReportRow>, u64)> {
    let mut rows = Vec::new();
    let mut suppressed = 0;
    for report in ReportName::ALL {
        let output = compute(store, ctx, report, granularity, period, min_group_size).await?;
        rows.extend(output.rows);
        suppressed += output.suppressed_groups;
    }
    Ok((rows, suppressed))
}

/// Writes report rows in `format` to `out`.
pub fn write_rows<W: Write + Send>(format: Format, out: W, rows: &[ReportRow]) -> Result<W, ExportError> {
    let mut writer = Writer::<W, ReportRow>::new(format, out)?;
    for row in rows {
        writer.write(row)?;
    }
    writer.finish()
}

/// `GET /api/v1/exports/reports`: every report by day over the period (by default the last 30
/// days, at most `reports.max_days`) in one file. Report rows are few (suppression keeps only
/// groups of several people), so the file is made whole and then sent; the
/// `Steward-Suppressed-Groups` header says how many groups were left out. The caller checked
/// the right to read reports.
pub async fn stream(state: AppState, ctx: &TenantCtx, request: ExportRequest) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let (from, to) = period(request.from, request.to, now, state.settings.reports.max_days)?;
    let min_group_size = u64::from(state.settings.reports.min_group_size);
    let (rows, suppressed) =
        all_reports(state.store.as_ref(), ctx, Granularity::Day, (from, to), min_group_size).await?;
    let format = request.format;
    let bytes = tokio::task::spawn_blocking(move || write_rows(format, Vec::new(), &rows))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))?;
    tracing::info!(dataset = "reports", format = %format, "export written");
    let filename = format!("reports-{}.{}", now.as_datetime().date(), format.as_str());
    let mut response = super::exports::attachment(Body::from(bytes), format, &filename);
    response.headers_mut().insert("steward-suppressed-groups", HeaderValue::from(suppressed));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn the_default_period_is_the_last_30_days_to_the_end_of_today() {
        let (from, to) = period(None, None, at("2026-11-22T15:30:00Z"), 366).unwrap();
        assert_eq!(to.to_string(), "2026-11-23T00:00:00Z");
        assert_eq!(from.to_string(), "2026-10-24T00:00:00Z");
    }

    #[test]
    fn periods_past_the_limit_name_the_field() {
        let now = at("2026-11-22T15:30:00Z");
        assert!(period(Some(at("2025-01-01T00:00:00Z")), Some(at("2026-01-02T00:00:00Z")), now, 366).is_ok());
        let error = period(Some(at("2025-01-01T00:00:00Z")), Some(at("2026-01-03T00:00:00Z")), now, 366).err();
        assert!(matches!(&error, Some(ApiError::InvalidQuery(e)) if e.errors()[0].field == "to"), "{error:?}");
        let error = period(Some(at("2020-01-01T00:00:00Z")), None, now, 366).err();
        assert!(matches!(&error, Some(ApiError::InvalidQuery(e)) if e.errors()[0].field == "from"), "{error:?}");
    }
}
