//! Data subjects in the console: find a person by email, phone, contact id or visitor id, see
//! everything held, and run access, rectification, erasure, restriction or objection requests
//! through the same code as the API ([`crate::subjects`]: `find`, `record_pending`, `execute`),
//! with due dates, completion reports and the access archive.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;
use steward_domain::subject::{
    RectificationInput, RequestKind, RequestOrigin, RequestStatus, Subject, SubjectInput, SubjectRequest,
};
use steward_domain::{Email, Permission};
use steward_store::{ListQuery, StoreExt, Target, Value};

use super::records::{lead_name, parse_day};
use super::views::{self, or_dash, when};
use super::{ConsoleError, Signed, acting, check_csrf, chrome, page, permitted, security};
use crate::api::subjects::{ExtendInput, RejectInput, RequestInput};
use crate::state::AppState;
use crate::subjects;

const PERMISSION: Permission = Permission::AnswerDataSubjectRequests;
/// Open requests listed on the search page.
const OPEN_MAX: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/data-subjects", get(show_search))
        .route("/console/data-subjects/requests", post(create_request))
        .route("/console/data-subjects/requests/{id}", get(show_request))
        .route("/console/data-subjects/requests/{id}/execute", post(execute_request))
        .route("/console/data-subjects/requests/{id}/extend", post(extend_request))
        .route("/console/data-subjects/requests/{id}/reject", post(reject_request))
        .route("/console/data-subjects/requests/{id}/archive", get(download_archive))
}

const IDENTIFIERS: [(&str, &str); 4] =
    [("email", "Email"), ("phone", "Phone (+358…)"), ("contact_id", "Contact id"), ("visitor_id", "Visitor id")];

fn subject_input(params: &HashMap<String, String>) -> SubjectInput {
    let get = |name: &str| params.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    SubjectInput {
        email: get("email"),
        phone: get("phone"),
        contact_id: get("contact_id"),
        visitor_id: get("visitor_id"),
    }
}

fn has_identifier(params: &HashMap<String, String>) -> bool {
    IDENTIFIERS.iter().any(|(name, _)| params.get(*name).is_some_and(|v| !v.trim().is_empty()))
}

fn hidden_identifiers(params: &HashMap<String, String>) -> Markup {
    html! {
        @for (name, _) in IDENTIFIERS {
            @if let Some(value) = params.get(name).filter(|v| !v.trim().is_empty()) {
                input type="hidden" name=(name) value=(value.trim());
            }
        }
    }
}

async fn open_requests(state: &AppState, signed: &Signed) -> Result<Vec<SubjectRequest>, ConsoleError> {
    let query = ListQuery {
        limit: OPEN_MAX as u32,
        equals: vec![("status", Value::Text(RequestStatus::Pending.as_str().into()))],
        ..ListQuery::default()
    };
    Ok(state.store.list(&signed.ctx, &query).await?)
}

fn requests_table(id: &str, requests: &[SubjectRequest], now: steward_domain::Timestamp) -> Markup {
    html! {
        div.scroll { table id=(id) {
            thead { tr { th scope="col" { "Request" } th scope="col" { "About" } th scope="col" { "Status" } th scope="col" { "Received" } th scope="col" { "Due" } } }
            tbody {
                @for r in requests {
                    tr {
                        td { a href=(format!("/console/data-subjects/requests/{}", r.id)) { (r.kind.as_str()) } }
                        td { (r.subject_hint) }
                        td { (r.status.as_str()) }
                        td { (when(r.received_at)) }
                        td { (views::day(r.due_at)) @if r.status == RequestStatus::Pending && r.due_at <= now { strong { " overdue" } } }
                    }
                }
                @if requests.is_empty() { tr { td colspan="5" { "None." } } }
            }
        } }
    }
}

async fn show_search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "data subjects").await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/data-subjects");
    let now = state.clock.now();
    let search = html! {
        p { "Find a person by any of their identifiers; several narrow the search to records matching all of them." }
        form.filters method="get" action="/console/data-subjects" role="search" {
            @for (name, text) in IDENTIFIERS {
                label { (text) input name=(name) id=(format!("find-{name}")) value=(params.get(name).map_or("", |v| v.as_str())); }
            }
            button type="submit" id="find" { "Find" }
        }
    };
    if !has_identifier(&params) {
        let open = open_requests(&state, &signed).await?;
        let body = html! {
            (search)
            h2 { "Open requests" }
            (requests_table("open-requests", &open, now))
        };
        return Ok(page(StatusCode::OK, views::shell(&frame, "Data subjects", body)));
    }
    let subject = match subject_input(&params).validate() {
        Ok(subject) => subject,
        Err(errors) => {
            let text = errors.errors().iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>();
            let body = html! { (search) (views::notice(None, Some(&format!("Check the identifiers — {}.", text.join("; "))))) };
            return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, views::shell(&frame, "Data subjects", body)));
        }
    };
    let store = state.store.as_ref();
    let person = subjects::with_audit(store, &signed.ctx, subjects::find(store, &signed.ctx, &subject).await?).await?;
    let counts = person.counts();
    let target = Target { kind: "data_subject".into(), count: counts.values().sum(), ids: Vec::new() };
    let detail = serde_json::json!({ "by": identifier_names(&subject), "counts": counts });
    crate::api::audit::record(
        &state,
        &signed.ctx,
        acting(&signed).draft(now, "data_subject.looked_up", target, detail),
    )
    .await?;
    let nothing = person.leads.is_empty() && person.visitor_profiles.is_empty() && person.journeys.is_empty();
    let body = html! {
        (search)
        h2 { "What is held" }
        ul.cards id="held" {
            @for (store, count) in &counts { li data-store=(store) { strong { (count) } (store.replace('_', " ")) } }
        }
        @if nothing { p id="nothing-held" { "No leads, visitor profiles or visits are held on this person." } }
        @if !person.leads.is_empty() {
            h3 { "Leads" }
            ul id="person-leads" { @for lead in &person.leads {
                li { a href=(format!("/console/leads/{}", lead.id)) { (lead_name(lead)) } " · " (or_dash(lead.email.as_ref().map(Email::as_str))) " · created " (when(lead.created_at)) }
            } }
        }
        @if !person.visitor_profiles.is_empty() {
            h3 { "Visitor profiles" }
            ul { @for profile in &person.visitor_profiles {
                li { a href=(format!("/console/visitors/{}", profile.id)) { "Journey of " (profile.id.to_string()) } " · " (profile.visit_count) " visits" }
            } }
        }
        @if !person.organization_contacts.is_empty() {
            h3 { "Contact entries in organizations" }
            ul { @for c in &person.organization_contacts { li { a href=(format!("/console/organizations/{}", c.organization_id)) { (c.organization_name) } } } }
        }
        @if !person.subject_requests.is_empty() {
            h3 { "Earlier requests" }
            (requests_table("person-requests", &person.subject_requests, now))
        }
        h2 { "Run a request" }
        p.muted { "Each request is carried out at once in every store and due one month after it was received. Record it as pending instead while you check the person's identity." }
        (request_forms(&csrf, &params))
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Data subjects", body)))
}

fn identifier_names(subject: &Subject) -> Vec<&'static str> {
    let mut names = Vec::new();
    if subject.email.is_some() {
        names.push("email");
    }
    if subject.phone.is_some() {
        names.push("phone");
    }
    if subject.contact_id.is_some() {
        names.push("contact_id");
    }
    if subject.visitor_id.is_some() {
        names.push("visitor_id");
    }
    names
}

fn common_fields(csrf: &str, params: &HashMap<String, String>, kind: RequestKind) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="kind" value=(kind.as_str());
        (hidden_identifiers(params))
        p {
            label { "Received on (empty: today)" input type="date" name="received_on"; }
            " "
            label { "Reference (ticket number, no personal data)" input name="note" maxlength="200"; }
        }
        p { label.inline { input type="checkbox" name="pending" value="1"; "Record as pending, carry out later" } }
    }
}

fn request_forms(csrf: &str, params: &HashMap<String, String>) -> Markup {
    html! {
        details open {
            summary { "Erasure (Art. 17): delete every record of this person" }
            form method="post" action="/console/data-subjects/requests" id="erasure-form" {
                (common_fields(csrf, params, RequestKind::Erasure))
                p { label.inline { input type="checkbox" name="confirm" value="1" id="confirm-erasure" required; "I understand that this deletes the person's leads, profiles and visits for good" } }
                button.danger type="submit" id="erase" { "Erase this person" }
            }
        }
        details {
            summary { "Access (Art. 15): an archive of everything held" }
            form method="post" action="/console/data-subjects/requests" id="access-form" {
                (common_fields(csrf, params, RequestKind::Access))
                button type="submit" { "Answer access request" }
            }
        }
        details {
            summary { "Rectification (Art. 16): correct their details" }
            form method="post" action="/console/data-subjects/requests" id="rectification-form" {
                (common_fields(csrf, params, RequestKind::Rectification))
                p.muted { "Fill in only the fields to correct." }
                @for (name, text) in [("first_name", "First name"), ("last_name", "Last name"), ("new_email", "Email"), ("new_phone", "Phone"), ("company_name", "Company"), ("job_title", "Job title")] {
                    p { label { (text) input name=(name); } }
                }
                button type="submit" { "Correct" }
            }
        }
        details {
            summary { "Restriction (Art. 18): keep, but stop processing" }
            form method="post" action="/console/data-subjects/requests" id="restriction-form" {
                (common_fields(csrf, params, RequestKind::Restriction))
                button type="submit" { "Restrict processing" }
            }
        }
        details {
            summary { "Objection (Art. 21): stop marketing and profiling" }
            form method="post" action="/console/data-subjects/requests" id="objection-form" {
                (common_fields(csrf, params, RequestKind::Objection))
                button type="submit" { "Record objection" }
            }
        }
    }
}

fn back_to_search(params: &HashMap<String, String>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, _) in IDENTIFIERS {
        if let Some(value) = params.get(name).filter(|v| !v.trim().is_empty()) {
            query.append_pair(name, value.trim());
        }
    }
    format!("/console/data-subjects?{}", query.finish())
}

async fn create_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "data-subject request").await?;
    check_csrf(&signed, form.get("csrf").map_or("", String::as_str))?;
    let field = |name: &str| form.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let kind = field("kind");
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/data-subjects");
    let refuse_form = |message: String| {
        let body = html! {
            (views::notice(None, Some(&message)))
            p { a href=(back_to_search(&form)) { "Back to the person" } }
        };
        page(StatusCode::UNPROCESSABLE_ENTITY, views::shell(&frame, "Data subjects", body))
    };
    if kind.as_deref() == Some("erasure") && field("confirm").is_none() {
        return Ok(refuse_form("Tick the confirmation box to erase the person.".into()));
    }
    let now = state.clock.now();
    let received_at = match field("received_on") {
        None => None,
        Some(text) => match parse_day(&text) {
            Some(day) => Some(day.min(now).to_string()),
            None => return Ok(refuse_form("The received date is not a date; use the form YYYY-MM-DD.".into())),
        },
    };
    let changes = (kind.as_deref() == Some("rectification")).then(|| RectificationInput {
        first_name: field("first_name"),
        last_name: field("last_name"),
        email: field("new_email"),
        phone: field("new_phone"),
        company_name: field("company_name"),
        job_title: field("job_title"),
    });
    let input = RequestInput {
        kind,
        subject: Some(subject_input(&form)),
        changes,
        received_at,
        note: field("note"),
        execute: Some(field("pending").is_none()),
    };
    let (mut request, execute) = match input.validate(RequestOrigin::Controller, now) {
        Ok(valid) => valid,
        Err(errors) => {
            let text = errors.errors().iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>();
            return Ok(refuse_form(format!("The request was not recorded — {}.", text.join("; "))));
        }
    };
    let acting = acting(&signed);
    request.step(now, "received", acting.step_actor(), None);
    if execute {
        subjects::execute(&state, &signed.ctx, &mut request, &acting, false).await?;
    } else {
        subjects::record_pending(
            state.store.as_ref(),
            &signed.ctx,
            &mut request,
            &acting,
            "subject_request.received",
            now,
        )
        .await?;
    }
    Ok(Redirect::to(&format!("/console/data-subjects/requests/{}", request.id)).into_response())
}

async fn load(state: &AppState, signed: &Signed, id: &str) -> Result<SubjectRequest, ConsoleError> {
    let missing = || ConsoleError::NotFound("There is no such data-subject request.".into());
    let id = steward_domain::id::parse_v7(id).map_err(|_| missing())?;
    state.store.get::<SubjectRequest>(&signed.ctx, id).await?.ok_or_else(missing)
}

async fn show_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "data-subject request").await?;
    let request = load(&state, &signed, &id).await?.public();
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/data-subjects");
    let now = state.clock.now();
    let title = format!("{} request", capitalised(request.kind.as_str()));
    let body = html! {
        @if request.status == RequestStatus::Completed { p.ok role="status" id="message" { "Completed " (request.completed_at.map(when).unwrap_or_default()) "." } }
        dl.facts id="request" {
            dt { "About" } dd { (request.subject_hint) }
            dt { "Status" } dd id="request-status" { (request.status.as_str()) }
            dt { "Received" } dd { (when(request.received_at)) }
            dt { "Due" } dd { (views::day(request.due_at)) @if request.status == RequestStatus::Pending && request.due_at <= now { strong { " — overdue" } } }
            @if let Some(extension) = &request.extension { dt { "Extended" } dd { "by " (extension.months) " month(s) on " (when(extension.at)) ": " (extension.reason) } }
            @if let Some(note) = &request.note { dt { "Reference" } dd { (note) } }
        }
        @if let Some(report) = &request.report {
            h2 { "Completion report" }
            div.scroll { table id="report" {
                thead { tr { th scope="col" { "Store" } th scope="col" { "Records" } } }
                tbody { @for (store, count) in &report.counts { tr { td { (store.replace('_', " ")) } td { (count) } } } }
            } }
            @if let Some(note) = &report.note { p { (note) } }
            @if let Some(archive) = &report.archive {
                p {
                    @if archive.expires_at > now {
                        a href=(format!("/console/data-subjects/requests/{}/archive", request.id)) id="archive" download { "Download the access archive" }
                        " (" (archive.bytes.div_ceil(1024)) " KiB, until " (when(archive.expires_at)) ")"
                    } @else { "The archive expired " (when(archive.expires_at)) "." }
                }
            }
        }
        @if request.status == RequestStatus::Pending {
            form method="post" action=(format!("/console/data-subjects/requests/{}/execute", request.id)) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" id="execute" { "Carry it out now" }
            }
            details {
                summary { "Extend the deadline (Art. 12(3))" }
                form method="post" action=(format!("/console/data-subjects/requests/{}/extend", request.id)) {
                    input type="hidden" name="csrf" value=(csrf);
                    p { label { "By" select name="months" { option value="1" { "one month" } option value="2" { "two months" } } } }
                    p { label { "Why (the person is told)" input name="reason" required maxlength="2000"; } }
                    button type="submit" { "Extend" }
                }
            }
            details {
                summary { "Reject (Art. 12(5))" }
                form method="post" action=(format!("/console/data-subjects/requests/{}/reject", request.id)) {
                    input type="hidden" name="csrf" value=(csrf);
                    p { label { "Why (the person is told)" input name="reason" required maxlength="2000"; } }
                    button.danger type="submit" { "Reject" }
                }
            }
        }
        h2 { "History" }
        ol id="history" { @for step in &request.history {
            li { (when(step.at)) " · " (step.action) " by " (step.actor_kind) @if let Some(note) = &step.note { " — " (note) } }
        } }
        p { a href="/console/data-subjects" { "All open requests" } }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, &title, body)))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfOnly {
    csrf: String,
}

async fn execute_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "data-subject request").await?;
    check_csrf(&signed, &form.csrf)?;
    let mut request = load(&state, &signed, &id).await?;
    if request.status != RequestStatus::Pending {
        return Err(ConsoleError::Refused {
            status: StatusCode::CONFLICT,
            detail: format!("This request is {} already.", request.status.as_str()),
        });
    }
    subjects::execute(&state, &signed.ctx, &mut request, &acting(&signed), true).await?;
    Ok(Redirect::to(&format!("/console/data-subjects/requests/{}", request.id)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReasonForm {
    csrf: String,
    months: String,
    reason: String,
}

async fn extend_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "data-subject request").await?;
    check_csrf(&signed, &form.csrf)?;
    let mut request = load(&state, &signed, &id).await?;
    let input = ExtendInput { months: form.months.trim().parse().ok(), reason: Some(form.reason) };
    crate::api::subjects::extend(&state, &signed.ctx, &acting(&signed), &mut request, input).await?;
    Ok(Redirect::to(&format!("/console/data-subjects/requests/{}", request.id)).into_response())
}

async fn reject_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "data-subject request").await?;
    check_csrf(&signed, &form.csrf)?;
    let mut request = load(&state, &signed, &id).await?;
    let input = RejectInput { reason: Some(form.reason) };
    crate::api::subjects::reject(&state, &signed.ctx, &acting(&signed), &mut request, input).await?;
    Ok(Redirect::to(&format!("/console/data-subjects/requests/{}", request.id)).into_response())
}

async fn download_archive(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, PERMISSION, "access archive").await?;
    let request = load(&state, &signed, &id).await?;
    Ok(crate::api::subjects::archive_response(&state, &signed.ctx, &acting(&signed), &request).await?)
}
