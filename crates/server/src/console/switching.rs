//! The console's Data Act page: start a switch (to another provider, on premises, or erasure),
//! follow its timeline, extend the transitional period once, cancel while in notice, and
//! download the archive. Owners only (`ManageSwitching`): the whole organisation leaves. Every
//! action goes through the API's own functions ([`crate::api::switching`]) and is audited with
//! the user as actor.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use steward_domain::Permission;
use steward_domain::switching::{DestinationInput, SwitchingAction, SwitchingRequest, SwitchingStatus};
use steward_store::{ListQuery, StoreExt};

use super::views::{self, when};
use super::{ConsoleError, Signed, acting, check_csrf, chrome, page, param, permitted, security};
use crate::api::switching::{SwitchingInput, SwitchingView, archive_response, cancel, extend, start};
use crate::error::ApiError;
use crate::state::AppState;

const PAGE: &str = "switching";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/switching", get(show).post(create))
        .route("/console/switching/{id}/extend", post(extend_request))
        .route("/console/switching/{id}/cancel", post(cancel_request))
        .route("/console/switching/{id}/archive", get(download))
}

fn text(form: &HashMap<String, String>, name: &str) -> Option<String> {
    Some(param(form, name).to_string()).filter(|value| !value.is_empty())
}

async fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    message: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, ConsoleError> {
    let requests: Vec<SwitchingRequest> =
        state.store.list(&signed.ctx, &ListQuery { limit: 100, ..ListQuery::default() }).await?;
    let now = state.clock.now();
    let views: Vec<SwitchingView> =
        requests.into_iter().rev().map(|request| SwitchingView::of(request, signed.ctx.tenant_id(), now)).collect();
    let open = views.iter().any(|view| {
        matches!(
            view.request.status,
            SwitchingStatus::Notice | SwitchingStatus::Transitional | SwitchingStatus::Retrieval
        )
    });
    let settings = &state.settings.switching;
    let csrf = security::csrf_token(&signed.token);
    let frame = chrome(signed, &csrf, "/console/switching");
    let body = html! {
        (views::notice(notice, message))
        p {
            "Under the EU Data Act you may move all of your organisation's data to another provider or to your own "
            "infrastructure, or have it erased. It is free of charge. The service runs unchanged for the transitional "
            "period (" (settings.transitional_days) " days, which you may extend once); the archive of everything can "
            "then be downloaded for " (settings.retrieval_days) " more days; after that every record, file and key of "
            "your organisation is erased and a signed attestation is published. What the archive holds is described in the "
            a href="/data-register" { "public data register" } "."
        }
        @for view in &views {
            @let request = &view.request;
            section.card id=(format!("request-{}", request.id)) aria-labelledby=(format!("title-{}", request.id)) {
                h2 id=(format!("title-{}", request.id)) { (action_text(request.action)) " — " span.status { (request.status.as_str()) } }
                dl.facts {
                    dt { "Received" } dd { (when(request.received_at)) }
                    @if let Some(destination) = &request.destination {
                        dt { "Destination" } dd { (destination.provider_name) " (" (destination.contact_email.as_str()) ")" }
                    }
                    dt { "Transitional period" } dd { (when(request.transitional_starts_at)) " to " (when(request.transitional_ends_at)) }
                    @if let Some(end) = request.retrieval_ends_at { dt { "Archive downloadable until" } dd { (when(end)) } }
                    dt { "Erasure" } dd { (when(request.erasure_due_at)) }
                    dt { "Archive" } dd {
                        (view.archive_state)
                        @if let Some(archive) = request.archive.as_ref().filter(|_| view.archive_state == "available") {
                            " — " a href=(format!("/console/switching/{}/archive", request.id)) download { "Download the archive" }
                            " (" (archive.bytes) " bytes, SHA-256 " code { (archive.sha256) } ")"
                        }
                    }
                    dt { "Attestation" } dd { "After erasure, at " code { (view.attestation_url) } }
                }
                h3 { "Timeline" }
                ol.timeline {
                    @for step in &request.timeline {
                        li { (when(step.at)) ": " (step.action.replace('_', " ")) " (" (step.actor_kind) ")"
                            @if let Some(note) = &step.note { " — " (note) } }
                    }
                }
                @if request.status == SwitchingStatus::Notice || request.status == SwitchingStatus::Transitional {
                    @if request.extension.is_none() {
                        form method="post" action=(format!("/console/switching/{}/extend", request.id)) {
                            input type="hidden" name="csrf" value=(csrf);
                            label { "Extend the transitional period by (days; once, no reason needed) "
                                input type="number" name="days" min="1" max="366" required; }
                            " " button type="submit" { "Extend" }
                        }
                    } @else {
                        p.muted { "The transitional period was extended once; it cannot be extended again." }
                    }
                }
                @if request.status == SwitchingStatus::Notice {
                    form method="post" action=(format!("/console/switching/{}/cancel", request.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button.quiet type="submit" { "Cancel this request" }
                    }
                }
            }
        }
        @if views.is_empty() { p id="no-requests" { "No switching request has been made." } }
        @if !open {
            h2 { "Start a switch" }
            form method="post" action="/console/switching" id="switching-form" {
                input type="hidden" name="csrf" value=(csrf);
                fieldset {
                    legend { "What should happen" }
                    @for action in [SwitchingAction::SwitchProvider, SwitchingAction::OnPremises, SwitchingAction::Erase] {
                        p { label.inline { input type="radio" name="action" value=(action.as_str()) required; " " (action_text(action)) } }
                    }
                }
                fieldset {
                    legend { "Destination (only when moving to another provider)" }
                    p { label { "Provider name" input name="provider_name" maxlength="200"; } }
                    p { label { "Provider contact email" input type="email" name="contact_email"; } }
                    p { label { "Import endpoint URL (if known)" input type="url" name="endpoint_url"; } }
                }
                p { label { "Start of the transitional period (empty: now; at most two months ahead)"
                    input type="datetime-local" name="starts_at"; } }
                p { label.inline { input type="checkbox" name="confirm" value="1" required;
                    " I understand that after the retrieval period all of our data is erased." } }
                button type="submit" { "Send the switching request" }
            }
        }
    };
    Ok(page(status, views::shell(&frame, "Switching provider (Data Act)", body)))
}

fn action_text(action: SwitchingAction) -> &'static str {
    match action {
        SwitchingAction::SwitchProvider => "Move to another provider",
        SwitchingAction::OnPremises => "Move to our own infrastructure",
        SwitchingAction::Erase => "Erase all of our data",
    }
}

/// A refusal the user can act on is shown on the page; a request that is not this tenant's (or
/// not any) is the not-found page, as elsewhere; anything else is an internal error.
async fn refused(state: &AppState, signed: &Signed, what: &str, error: ApiError) -> Result<Response, ConsoleError> {
    if !error.status().is_client_error() {
        return Err(error.into());
    }
    if let ApiError::NotFound(detail) = error {
        return Err(ConsoleError::NotFound(detail));
    }
    let detail = match &error {
        ApiError::Validation(errors) => errors.to_string(),
        other => other.to_string(),
    };
    let message = format!("{what}: {detail}.");
    render(state, signed, StatusCode::UNPROCESSABLE_ENTITY, Some(&message), None).await
}

async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageSwitching, PAGE).await?;
    render(&state, &signed, StatusCode::OK, None, None).await
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageSwitching, PAGE).await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    if param(&form, "confirm") != "1" {
        let message = "Tick the box to confirm that you understand all data is erased after the retrieval period.";
        return render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(message), None).await;
    }
    let destination = DestinationInput {
        provider_name: text(&form, "provider_name"),
        contact_email: text(&form, "contact_email"),
        endpoint_url: text(&form, "endpoint_url"),
    };
    let named = destination.provider_name.is_some() || destination.contact_email.is_some();
    let input = SwitchingInput {
        action: text(&form, "action"),
        destination: named.then_some(destination),
        // `datetime-local` sends `2026-12-01T09:00`: read as UTC.
        transitional_starts_at: text(&form, "starts_at").map(|local| format!("{local}:00Z")),
    };
    match start(&state, &signed.ctx, &acting(&signed), input).await {
        Ok(_) => Ok(Redirect::to("/console/switching").into_response()),
        Err(error) => refused(&state, &signed, "The request was not recorded", error).await,
    }
}

async fn extend_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageSwitching, PAGE).await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    let Some(days) = param(&form, "days").parse::<u32>().ok().filter(|days| (1..=366).contains(days)) else {
        let message = "Give the days to add, 1 to 366.";
        return render(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, Some(message), None).await;
    };
    match extend(&state, &signed.ctx, &acting(&signed), &id, days).await {
        Ok(_) => render(&state, &signed, StatusCode::OK, None, Some("The transitional period was extended.")).await,
        Err(error) => refused(&state, &signed, "The period was not extended", error).await,
    }
}

async fn cancel_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageSwitching, PAGE).await?;
    check_csrf(&signed, param(&form, "csrf"))?;
    match cancel(&state, &signed.ctx, &acting(&signed), &id).await {
        Ok(_) => render(&state, &signed, StatusCode::OK, None, Some("The request was cancelled.")).await,
        Err(error) => refused(&state, &signed, "The request was not cancelled", error).await,
    }
}

async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let signed = permitted(&state, &headers, Permission::ManageSwitching, PAGE).await?;
    match archive_response(&state, &signed.ctx, &acting(&signed), &id, &headers).await {
        Ok(response) => Ok(response),
        Err(error) => refused(&state, &signed, "The archive cannot be downloaded", error).await,
    }
}
