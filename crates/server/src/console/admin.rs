//! The console's admin pages: the audit log with filters and a "verify chain" button, retention
//! policies and legal holds, users and roles, API clients (the secret shown once). Each goes
//! through the code the API and the command line use, and audits with the user as actor.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde_json::json;
use steward_domain::subject::{HoldScope, LegalHold, LegalHoldInput, RetentionDataset};
use steward_domain::{Permission, Role, Scopes};
use steward_store::users as stored;
use steward_store::{ActorKind, AuditQuery, ListQuery, StoreExt, Target};

use super::records::day_range;
use super::views::{self, when};
use super::{ConsoleError, Signed, acting, check_csrf, chrome, page, param, permitted, security};
use crate::state::AppState;

const AUDIT_PAGE: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/audit", get(show_audit))
        .route("/console/audit/verify", get(verify_audit))
        .route("/console/retention", get(show_retention).post(change_retention))
        .route("/console/retention/holds", post(place_hold))
        .route("/console/retention/holds/{id}/release", post(release_hold))
        .route("/console/users", get(show_users).post(create_user))
        .route("/console/users/{id}/role", post(change_role))
        .route("/console/users/{id}/remove", post(remove_user))
        .route("/console/clients", get(show_clients).post(create_client))
        .route("/console/clients/{id}/delete", post(delete_client))
}

type Params = Query<HashMap<String, String>>;

// ---- audit log --------------------------------------------------------------------------

async fn show_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadAudit, "audit log").await?;
    let mut message = None;
    let mut query = AuditQuery { limit: AUDIT_PAGE + 1, ..AuditQuery::default() };
    query.after_seq = params.get("after").and_then(|text| text.parse().ok());
    let action = param(&params, "action");
    if !action.is_empty() {
        query.action = Some(action.to_string());
    }
    let actor = param(&params, "actor_kind");
    if !actor.is_empty() {
        match ActorKind::parse(actor) {
            Some(kind) => query.actor_kind = Some(kind),
            None => message = Some("Pick an actor kind from the list.".to_string()),
        }
    }
    match day_range(param(&params, "from"), param(&params, "to")) {
        Ok((from, to)) => (query.from, query.to) = (from, to),
        Err(text) => message = Some(text),
    }
    // Unfiltered, the log's sequence numbers have no gaps: open on its newest page and offer
    // older pages by number (`before`).
    let unfiltered = query.action.is_none() && query.actor_kind.is_none() && query.from.is_none() && query.to.is_none();
    let before = params.get("before").and_then(|text| text.parse::<i64>().ok()).filter(|_| unfiltered);
    if let Some(before) = before {
        let after = (before - 1 - i64::from(AUDIT_PAGE)).max(0);
        query.after_seq = Some(after);
        query.limit = u32::try_from(before - 1 - after).unwrap_or(AUDIT_PAGE).max(1);
    } else if unfiltered && query.after_seq.is_none() {
        let newest =
            state.store.list_audit(&signed.ctx, &AuditQuery { limit: 1, ..AuditQuery::default() }, true).await?;
        query.after_seq = newest.first().map(|row| (row.seq - i64::from(AUDIT_PAGE)).max(0));
    }
    let mut entries =
        if message.is_none() { state.store.audit_entries(&signed.ctx, &query).await? } else { Vec::new() };
    let more = before.is_some() || entries.len() > AUDIT_PAGE as usize;
    entries.truncate(AUDIT_PAGE as usize);
    let older = entries
        .first()
        .filter(|first| unfiltered && first.seq > 1)
        .map(|first| format!("/console/audit?before={}", first.seq));
    let next = more.then(|| entries.last().map(|entry| entry.seq)).flatten().map(|seq| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for name in ["action", "actor_kind", "from", "to"] {
            query.append_pair(name, param(&params, name));
        }
        query.append_pair("after", &seq.to_string());
        format!("/console/audit?{}", query.finish())
    });
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/audit");
    let body = html! {
        form method="get" action="/console/audit/verify" {
            button type="submit" id="verify" { "Verify chain" }
            " " span.muted { "Recomputes every entry's hash and its link to the one before." }
        }
        form.filters method="get" action="/console/audit" {
            label { "Action (or prefix ending in “.”)" input name="action" id="action" value=(action) placeholder="subject_request."; }
            label { "Actor" select name="actor_kind" {
                option value="" { "any" }
                @for kind in ["user", "client", "system", "operator"] { option value=(kind) selected[actor == kind] { (kind) } }
            } }
            label { "From" input type="date" name="from" value=(param(&params, "from")); }
            label { "to" input type="date" name="to" value=(param(&params, "to")); }
            button type="submit" id="filter" { "Filter" }
        }
        (views::notice(None, message.as_deref()))
        div.scroll { table id="audit" {
            caption.muted { "Oldest first within a page; unfiltered, the log opens on its newest entries" }
            thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Detail" } } }
            tbody {
                @for entry in &entries {
                    tr data-action=(entry.action) {
                        td { (entry.seq) }
                        td { (when(entry.at)) }
                        td { (entry.actor.kind.as_str()) @if let Some(id) = &entry.actor.id { br; small.muted { (id) } } }
                        td.action { (entry.action) }
                        td { (entry.target.kind) " × " (entry.target.count) }
                        td { small { code { (short_json(&entry.detail)) } } }
                    }
                }
                @if entries.is_empty() { tr { td colspan="6" { "No entries match." } } }
            }
        } }
        nav aria-label="Pages" {
            @if let Some(older) = older { a href=(older) rel="prev" id="older-page" { "Older entries" } " " }
            @if let Some(next) = next { a href=(next) rel="next" id="next-page" { "Newer entries" } }
        }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Audit log", body)))
}

fn short_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 300 { text.chars().take(299).chain(['…']).collect() } else { text }
}

async fn verify_audit(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ReadAudit, "audit verification").await?;
    let verdict = state.store.verify_audit(&signed.ctx).await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(&signed, &csrf, "/console/audit");
    let body = html! {
        @if verdict.valid {
            p.ok role="status" id="verdict" data-valid="true" { "The chain is intact: " (verdict.entries) " entries checked." }
        } @else {
            p role="alert" id="verdict" data-valid="false" {
                "The chain is broken at entry " (verdict.broken_seq.map(|s| s.to_string()).unwrap_or_default()) ": "
                (verdict.reason.as_deref().unwrap_or("changed, removed or out of place")) ". Tell your operator."
            }
        }
        @if let (Some(seq), Some(hash)) = (verdict.head_seq, &verdict.head_hash) {
            p { "Newest entry " (seq) ", hash " code { (hash) } ". Keep these elsewhere: a later removal of the newest entries shows as a different head." }
        }
        p { a href="/console/audit" { "Back to the audit log" } }
    };
    Ok(page(StatusCode::OK, views::shell(&frame, "Audit chain", body)))
}

// ---- retention --------------------------------------------------------------------------

async fn retention_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    message: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, ConsoleError> {
    let tenant = state
        .store
        .get_tenant(signed.ctx.tenant_id())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the user's tenant does not exist"))?;
    let settings = &tenant.settings.retention;
    let holds: Vec<LegalHold> =
        state.store.list(&signed.ctx, &ListQuery { limit: 1_000, ..ListQuery::default() }).await?;
    let last = crate::retention::last_sweep(state, &signed.ctx).await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(signed, &csrf, "/console/retention");
    let body = html! {
        (views::notice(notice, message))
        h2 { "Policies" }
        form method="post" action="/console/retention" id="policy-form" {
            input type="hidden" name="csrf" value=(csrf);
            div.scroll { table id="policies" {
                thead { tr { th scope="col" { "Dataset" } th scope="col" { "Kept for (days; empty: until deleted)" } th scope="col" { "Default" } th scope="col" { "Counted from" } } }
                tbody { @for dataset in RetentionDataset::ALL {
                    @let days = settings.days_for(*dataset).map(|d| d.to_string()).unwrap_or_default();
                    tr {
                        td { (dataset.as_str()) }
                        td { input type="number" min="1" name=(format!("days.{}", dataset.as_str())) value=(days) aria-label=(format!("Days to keep {}", dataset.as_str())); }
                        td { label.inline { input type="checkbox" name=(format!("default.{}", dataset.as_str())) value="1" checked[settings.is_default(*dataset)];
                             (dataset.default_days().map_or_else(|| "until deleted".to_string(), |d| format!("{d} days"))) } }
                        td { (dataset.age_from()) }
                    }
                } }
            } }
            p.muted { "A ticked “Default” follows Steward's default for the dataset; untick it to set your own." }
            button type="submit" { "Save policies" }
        }
        @if let Some(sweep) = &last {
            p id="last-sweep" { "Last sweep: " (when(sweep.finished_at)) ", " (sweep.total) " record(s) deleted." }
            @if !sweep.failures.is_empty() {
                div role="alert" id="sweep-failures" {
                    p { strong { "The last retention sweep failed." } " What had expired is still stored; the next sweep tries again. Tell your operator if this stays." }
                    ul { @for failure in &sweep.failures { li { (failure.dataset) ": " (failure.error) " (" (when(failure.at)) ")" } } }
                }
            }
        }
        h2 { "Legal holds" }
        p { "A held record is kept past its retention until the hold is released." }
        div.scroll { table id="holds" {
            thead { tr { th scope="col" { "Scope" } th scope="col" { "Record" } th scope="col" { "Reason" } th scope="col" { "Placed" } th scope="col" { span.skip { "Release" } } } }
            tbody {
                @for hold in &holds {
                    tr {
                        td { (hold.scope.as_str()) }
                        td { (hold.record_id.map(|id| id.to_string()).unwrap_or_else(|| "the whole tenant".into())) }
                        td { (hold.reason) }
                        td { (when(hold.created_at)) }
                        td { form method="post" action=(format!("/console/retention/holds/{}/release", hold.id)) {
                            input type="hidden" name="csrf" value=(csrf);
                            button.quiet type="submit" { "Release" }
                        } }
                    }
                }
                @if holds.is_empty() { tr { td colspan="5" { "No legal holds." } } }
            }
        } }
        h3 { "Place a hold" }
        form method="post" action="/console/retention/holds" id="hold-form" {
            input type="hidden" name="csrf" value=(csrf);
            p { label { "Scope" select name="scope" {
                @for scope in HoldScope::ALL { option value=(scope.as_str()) { (scope.as_str().replace('_', " ")) } }
            } } " "
            label { "Record id (empty for the whole tenant)" input name="record_id"; } }
            p { label { "Reason (a case reference, no personal data)" input name="reason" required maxlength="2000"; } }
            button type="submit" { "Place hold" }
        }
    };
    Ok(page(status, views::shell(&frame, "Retention and legal holds", body)))
}

async fn show_retention(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageRetention, "retention").await?;
    retention_page(&state, &signed, StatusCode::OK, None, None).await
}

async fn change_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageRetention, "retention").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let mut body = serde_json::Map::new();
    for dataset in RetentionDataset::ALL {
        let name = dataset.as_str();
        let days = param(&form, &format!("days.{name}"));
        let value = if form.contains_key(&format!("default.{name}")) {
            json!("default")
        } else if days.is_empty() {
            serde_json::Value::Null
        } else {
            days.parse::<u64>().map_or_else(|_| json!(days), |days| json!(days))
        };
        body.insert(name.to_string(), value);
    }
    let changed = crate::api::retention::change_policies(&state, &signed.ctx, &acting(&signed), body.into()).await;
    match changed {
        Ok(_) => retention_page(&state, &signed, StatusCode::OK, None, Some("Policies saved.")).await,
        Err(error) if error.status().is_client_error() => {
            let message = format!("The policies were not saved: {error}.");
            retention_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(&message), None).await
        }
        Err(error) => Err(error.into()),
    }
}

async fn place_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageRetention, "legal hold").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let text = |name: &str| Some(param(&form, name).to_string()).filter(|v| !v.is_empty());
    let input = LegalHoldInput { scope: text("scope"), record_id: text("record_id"), reason: text("reason") };
    match crate::api::retention::place_hold(&state, &signed.ctx, &acting(&signed), input, signed.user.id.to_string())
        .await
    {
        Ok(_) => Ok(Redirect::to("/console/retention").into_response()),
        Err(error) if error.status().is_client_error() => {
            let message = format!("The hold was not placed: {error}.");
            retention_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(&message), None).await
        }
        Err(error) => Err(error.into()),
    }
}

async fn release_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageRetention, "legal hold").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    crate::api::retention::release_hold(&state, &signed.ctx, &acting(&signed), &id).await?;
    Ok(Redirect::to("/console/retention").into_response())
}

// ---- users ------------------------------------------------------------------------------

/// The tenant's users, addresses opened.
async fn list_users(state: &AppState, signed: &Signed) -> Result<Vec<steward_domain::User>, ConsoleError> {
    let keys = state.store.keys(&signed.ctx)?;
    let records = state.store.users().list_users(&signed.ctx).await?;
    Ok(records.iter().map(|record| stored::open_user(&signed.ctx, &keys, record)).collect::<Result<_, _>>()?)
}

async fn users_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    message: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, ConsoleError> {
    let users = list_users(state, signed).await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(signed, &csrf, "/console/users");
    let assignable: Vec<Role> = Role::ALL.iter().copied().filter(|role| signed.user.role.may_assign(*role)).collect();
    let me = &signed.user;
    let body = html! {
        (views::notice(notice, message))
        div.scroll { table id="users" {
            thead { tr {
                th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Two-step sign-in" } th scope="col" { "Created" }
                th scope="col" { "Change" }
            } }
            tbody { @for user in &users {
                tr data-user=(user.id.to_string()) {
                    td { (user.email.as_str()) } td { (user.role.as_str()) } td { (if user.mfa_enrolled { "set up" } else { "not yet" }) } td { (when(user.created_at)) }
                    td {
                        @if user.id == me.id {
                            span.muted { "you" }
                        } @else if user.role == Role::Owner && me.role != Role::Owner {
                            span.muted { "only owners change owners" }
                        } @else {
                            form.inline method="post" action=(format!("/console/users/{}/role", user.id)) {
                                input type="hidden" name="csrf" value=(csrf);
                                label { span.skip { "Role of " (user.email.as_str()) } select name="role" {
                                    @for role in &assignable { option value=(role.as_str()) selected[*role == user.role] { (role.as_str()) } }
                                } }
                                " " button type="submit" { "Change role" }
                            }
                            details {
                                summary { "Remove…" }
                                form method="post" action=(format!("/console/users/{}/remove", user.id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    p { "They are signed out at once and can no longer sign in." }
                                    button.danger type="submit" { "Remove " (user.email.as_str()) }
                                }
                            }
                        }
                    }
                }
            } }
        } }
        h2 { "Roles" }
        dl.facts {
            @for role in Role::ALL {
                dt { (role.as_str()) }
                dd { (role.permissions().iter().map(|p| views::permission_text(*p)).collect::<Vec<_>>().join("; ")) }
            }
        }
        h2 { "Add a user" }
        form method="post" action="/console/users" id="user-form" {
            input type="hidden" name="csrf" value=(csrf);
            p { label { "Email" input type="email" name="email" required autocomplete="off"; } }
            p { label { "Role" select name="role" { @for role in &assignable { option value=(role.as_str()) { (role.as_str()) } } } } }
            p { label { "First password (at least 12 characters; tell it to them safely)" input type="password" name="password" required minlength="12" autocomplete="new-password"; } }
            p.muted { "They sign in with it once and then set up an authenticator app." }
            button type="submit" { "Add user" }
        }
    };
    Ok(page(status, views::shell(&frame, "Users and roles", body)))
}

async fn show_users(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageUsers, "users").await?;
    users_page(&state, &signed, StatusCode::OK, None, None).await
}

async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageUsers, "users").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let role: Option<Role> = param(&form, "role").parse().ok();
    if !role.is_some_and(|role| signed.user.role.may_assign(role)) {
        let message = "Pick a role you may give: only owners make owners.";
        return users_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(message), None).await;
    }
    let actor = acting(&signed).actor;
    let result = super::users::create_user(
        state.store.as_ref(),
        &signed.ctx,
        param(&form, "email"),
        param(&form, "role"),
        form.get("password").map_or("", String::as_str),
        actor,
        state.clock.now(),
    )
    .await;
    match result {
        Ok(user) => {
            let notice = format!("{} was added as {}.", user.email.as_str(), user.role.as_str());
            users_page(&state, &signed, StatusCode::OK, None, Some(&notice)).await
        }
        Err(super::users::UserError::Store(error)) => Err(error.into()),
        Err(super::users::UserError::Internal(error)) => Err(ConsoleError::Internal(error)),
        Err(error) => {
            let message = format!("The user was not added: {error}.");
            users_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(&message), None).await
        }
    }
}

async fn change_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageUsers, "users").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let id = user_id(&id)?;
    let Ok(role) = param(&form, "role").parse::<Role>() else {
        let message = "The role was not changed: pick a role from the list.";
        return users_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(message), None).await;
    };
    let (actor, now) = (acting(&signed).actor, state.clock.now());
    match super::users::change_role(state.store.as_ref(), &signed.ctx, &signed.user, id, role, actor, now).await {
        Ok((user, from)) => {
            let notice = if from == role {
                format!("{} already is {}.", user.email.as_str(), role.as_str())
            } else {
                format!("{} is now {} (was {}).", user.email.as_str(), role.as_str(), from.as_str())
            };
            users_page(&state, &signed, StatusCode::OK, None, Some(&notice)).await
        }
        Err(error) => refused(&state, &signed, "The role was not changed", error).await,
    }
}

async fn remove_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageUsers, "users").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let id = user_id(&id)?;
    let (actor, now) = (acting(&signed).actor, state.clock.now());
    match super::users::remove_user(state.store.as_ref(), &signed.ctx, &signed.user, id, actor, now).await {
        Ok(user) => {
            let notice = format!("{} was removed and signed out.", user.email.as_str());
            users_page(&state, &signed, StatusCode::OK, None, Some(&notice)).await
        }
        Err(error) => refused(&state, &signed, "The user was not removed", error).await,
    }
}

fn user_id(text: &str) -> Result<steward_domain::UserId, ConsoleError> {
    text.parse::<uuid::Uuid>()
        .map(steward_domain::UserId::from_uuid)
        .map_err(|_| ConsoleError::NotFound("There is no such user.".into()))
}

/// The users page again with why a change was refused.
async fn refused(
    state: &AppState,
    signed: &Signed,
    what: &str,
    error: super::users::ChangeError,
) -> Result<Response, ConsoleError> {
    use super::users::ChangeError;
    let status = match error {
        ChangeError::Store(error) => return Err(error.into()),
        ChangeError::NoUser => return Err(ConsoleError::NotFound("There is no such user.".into())),
        ChangeError::OwnersOnly => StatusCode::FORBIDDEN,
        ChangeError::LastOwner(_) | ChangeError::OwnRole | ChangeError::Yourself => StatusCode::CONFLICT,
    };
    let message = format!("{what}: {error}.");
    users_page(state, signed, status, Some(&message), None).await
}

// ---- API clients ------------------------------------------------------------------------

async fn clients_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    message: Option<&str>,
    secret: Option<(&str, &str)>,
) -> Result<Response, ConsoleError> {
    let clients = state.store.list_clients(&signed.ctx).await?;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(signed, &csrf, "/console/clients");
    let body = html! {
        (views::notice(None, message))
        @if let Some((id, secret)) = secret {
            div.ok role="status" id="new-secret" {
                p { "Client " code { (id) } " was created. Its secret is shown " strong { "only now" } ": copy it into your integration." }
                p { code id="client-secret" { (secret) } }
            }
        }
        div.scroll { table id="clients" {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Client id" } th scope="col" { "Scopes" } th scope="col" { "Created" } th scope="col" { span.skip { "Delete" } } } }
            tbody {
                @for client in &clients {
                    tr {
                        td { (client.name) } td { code { (client.id.to_string()) } } td { (client.scopes.to_string()) } td { (when(client.created_at)) }
                        td { form method="post" action=(format!("/console/clients/{}/delete", client.id)) {
                            input type="hidden" name="csrf" value=(csrf);
                            button.danger type="submit" { "Delete" }
                        } }
                    }
                }
                @if clients.is_empty() { tr { td colspan="5" { "No API clients." } } }
            }
        } }
        h2 { "Create a client" }
        form method="post" action="/console/clients" id="client-form" {
            input type="hidden" name="csrf" value=(csrf);
            p { label { "Name" input name="name" required maxlength="200"; } }
            fieldset {
                legend { "Scopes" }
                @for scope in Scopes::all().iter() {
                    p { label.inline { input type="checkbox" name=(format!("scope.{}", scope.as_str())) value="1"; code { (scope.as_str()) } " — " (scope.description()) } }
                }
            }
            button type="submit" { "Create client" }
        }
    };
    Ok(page(status, views::shell(&frame, "API clients", body)))
}

async fn show_clients(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageClients, "API clients").await?;
    clients_page(&state, &signed, StatusCode::OK, None, None).await
}

async fn create_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageClients, "API clients").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let scopes: Scopes =
        Scopes::all().iter().filter(|scope| form.contains_key(&format!("scope.{}", scope.as_str()))).collect();
    let now = state.clock.now();
    match crate::admin::create_client(state.store.as_ref(), &signed.ctx, param(&form, "name"), scopes, now).await {
        Ok((client, secret)) => {
            let target = Target { kind: "api_client".into(), count: 1, ids: vec![client.id.into_uuid()] };
            let detail = json!({"name": client.name, "scopes": client.scopes.to_string()});
            crate::api::audit::record(
                &state,
                &signed.ctx,
                acting(&signed).draft(now, "client.created", target, detail),
            )
            .await?;
            let id = client.id.to_string();
            clients_page(&state, &signed, StatusCode::CREATED, None, Some((&id, &secret))).await
        }
        Err(crate::admin::AdminError::Invalid(text)) => {
            let message = format!("The client was not created: {text}.");
            clients_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(&message), None).await
        }
        Err(error) => Err(ConsoleError::Internal(anyhow::Error::new(error))),
    }
}

async fn delete_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageClients, "API clients").await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    match crate::admin::delete_client(state.store.as_ref(), &signed.ctx, &id).await {
        Ok((client, revoked)) => {
            let target = Target { kind: "api_client".into(), count: 1, ids: vec![client.id.into_uuid()] };
            let detail = json!({"name": client.name, "tokens_revoked": revoked});
            let now = state.clock.now();
            crate::api::audit::record(
                &state,
                &signed.ctx,
                acting(&signed).draft(now, "client.deleted", target, detail),
            )
            .await?;
            Ok(Redirect::to("/console/clients").into_response())
        }
        Err(crate::admin::AdminError::NoClient(_)) => {
            Err(ConsoleError::NotFound("There is no such API client.".into()))
        }
        Err(error) => Err(ConsoleError::Internal(anyhow::Error::new(error))),
    }
}
