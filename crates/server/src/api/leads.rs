//! `/api/v1/leads`: thin handlers over the generic dataset endpoints.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use steward_domain::lead::{LEAD_READ_ONLY, Lead, LeadInput};
use steward_domain::{LeadId, Scope, Timestamp, ValidationErrors};
use steward_store::{DocKind, Lookup};
use uuid::Uuid;

use super::common::{self, JsonBody, ListParams, Page, Reference, Resource};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

impl Resource for Lead {
    type Input = LeadInput;
    const NAME: &'static str = "lead";
    const READ: Scope = Scope::LeadsRead;
    const WRITE: Scope = Scope::LeadsWrite;
    const READ_ONLY: &'static [&'static str] = LEAD_READ_ONLY;
    const LOOKUPS: &'static [(&'static str, Lookup)] =
        &[("email", Lookup::Email), ("phone", Lookup::Phone), ("contact_id", Lookup::ContactId)];

    fn build(input: LeadInput, id: Uuid, previous: Option<&Self>, now: Timestamp) -> Result<Self, ValidationErrors> {
        let mut lead = input.validate(LeadId::from_uuid(id), previous.map_or(now, |p| p.created_at), now)?;
        if let Some(previous) = previous {
            // Set by data-subject requests only, and kept through every change.
            lead.restricted_at = previous.restricted_at;
            lead.objected_at = previous.objected_at;
            if lead.score.is_some() && lead.score != previous.score {
                let reason = match (previous.objected_at, previous.restricted_at) {
                    (Some(_), _) => Some("the person objected to profiling (GDPR Art. 21)"),
                    (None, Some(_)) => Some("the person's processing is restricted (GDPR Art. 18)"),
                    (None, None) => None,
                };
                if let Some(reason) = reason {
                    return Err(ValidationErrors::single("score", format!("cannot be set: {reason}")));
                }
            }
        }
        Ok(lead)
    }

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        if let Some(id) = self.organization_id {
            references.push(Reference {
                field: "organization_id".into(),
                kind: DocKind::Organization,
                id: id.into_uuid(),
            });
        }
        if let Some(id) = self.visitor_profile_id {
            references.push(Reference {
                field: "visitor_profile_id".into(),
                kind: DocKind::VisitorProfile,
                id: id.into_uuid(),
            });
        }
        references
    }

    /// Through the collection pipeline, which links the lead to its visitor and to the
    /// organization of its work email in the same transaction.
    fn store_new(
        state: &AppState,
        ctx: &steward_store::TenantCtx,
        record: Self,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send {
        let (collector, ctx) = (state.collector.clone(), *ctx);
        async move { collector.capture(ctx, record).await.map_err(crate::collect::collect_error) }
    }

    /// Through the collection pipeline too, queued at once so its writer commits them in groups.
    fn store_batch(
        state: &AppState,
        ctx: &steward_store::TenantCtx,
        records: Vec<Self>,
    ) -> impl Future<Output = Vec<Result<Self, ApiError>>> + Send {
        let (collector, ctx) = (state.collector.clone(), *ctx);
        async move {
            let results = collector.capture_many(ctx, records).await;
            results.into_iter().map(|result| result.map_err(crate::collect::collect_error)).collect()
        }
    }
}

/// Lists leads in a stable order (oldest id first), a page at a time; `email`, `phone` and
/// `contact_id` find leads by an exact value (matched through keyed hashes, never stored in clear).
#[utoipa::path(
    get, path = "/api/v1/leads", tag = "leads",
    params(
        ListParams,
        ("email" = Option<String>, Query, description = "Exact email (case-insensitive, IDN forms alike)"),
        ("phone" = Option<String>, Query, description = "Exact phone in international notation"),
        ("contact_id" = Option<String>, Query, description = "Exact contact id"),
    ),
    responses(
        (status = 200, description = "A page of leads; `Link: <…>; rel=\"next\"` when more follow", body = Page<Lead>),
        (status = 422, description = "Bad or unknown query parameters, each named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks leads:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["leads:read"]))
)]
pub async fn list_leads(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    common::list::<Lead>(state, caller, uri).await
}

/// Creates a lead. Every invalid field is reported at once and nothing is stored.
#[utoipa::path(
    post, path = "/api/v1/leads", tag = "leads",
    request_body = LeadInput,
    responses(
        (status = 201, description = "Created; `Location` names it", body = Lead),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks leads:write", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["leads:write"]))
)]
pub async fn create_lead(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    common::create::<Lead>(state, caller, uri, body).await
}

/// Reads one lead.
#[utoipa::path(
    get, path = "/api/v1/leads/{id}", tag = "leads",
    params(("id" = uuid::Uuid, Path, description = "Lead id (UUIDv7)")),
    responses(
        (status = 200, description = "The lead", body = Lead),
        (status = 404, description = "No such lead for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["leads:read"]))
)]
pub async fn get_lead(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Lead>, ApiError> {
    common::read::<Lead>(state, caller, &id).await
}

/// Changes a lead with a JSON Merge Patch (RFC 7396): `null` clears a field.
#[utoipa::path(
    patch, path = "/api/v1/leads/{id}", tag = "leads",
    params(("id" = uuid::Uuid, Path, description = "Lead id (UUIDv7)")),
    request_body(content = LeadInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed lead", body = Lead),
        (status = 404, description = "No such lead for your tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["leads:write"]))
)]
pub async fn patch_lead(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Lead>, ApiError> {
    common::update::<Lead>(state, caller, &id, body).await
}

/// Deletes a lead.
#[utoipa::path(
    delete, path = "/api/v1/leads/{id}", tag = "leads",
    params(("id" = uuid::Uuid, Path, description = "Lead id (UUIDv7)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such lead for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["leads:write"]))
)]
pub async fn delete_lead(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    common::remove::<Lead>(state, caller, &id).await
}
