//! `/api/v1/organizations`: thin handlers over the generic dataset endpoints.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use steward_domain::organization::{ORGANIZATION_READ_ONLY, Organization, OrganizationInput};
use steward_domain::{OrganizationId, Scope, Timestamp, ValidationErrors};
use steward_store::DocKind;
use uuid::Uuid;

use super::common::{self, JsonBody, ListParams, Page, Reference, Resource};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

impl Resource for Organization {
    type Input = OrganizationInput;
    const NAME: &'static str = "organization";
    const READ: Scope = Scope::OrganizationsRead;
    const WRITE: Scope = Scope::OrganizationsWrite;
    const READ_ONLY: &'static [&'static str] = ORGANIZATION_READ_ONLY;

    fn build(
        input: OrganizationInput,
        id: Uuid,
        previous: Option<&Self>,
        now: Timestamp,
    ) -> Result<Self, ValidationErrors> {
        let stats = previous.map(Organization::visit_stats).unwrap_or_default();
        input.validate(OrganizationId::from_uuid(id), stats, previous.map_or(now, |p| p.created_at), now)
    }

    fn references(&self) -> Vec<Reference> {
        self.contacts
            .iter()
            .enumerate()
            .map(|(index, contact)| Reference {
                field: format!("contacts[{index}].lead_id"),
                kind: DocKind::Lead,
                id: contact.lead_id.into_uuid(),
            })
            .collect()
    }
}

/// Lists organizations in a stable order (oldest id first), a page at a time.
#[utoipa::path(
    get, path = "/api/v1/organizations", tag = "organizations",
    params(ListParams),
    responses(
        (status = 200, description = "A page of organizations; `Link: <…>; rel=\"next\"` when more follow", body = Page<Organization>),
        (status = 422, description = "Bad or unknown query parameters, each named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks organizations:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["organizations:read"]))
)]
pub async fn list_organizations(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    common::list::<Organization>(state, caller, uri).await
}

/// Creates a organization. Every invalid field is reported at once and nothing is stored.
#[utoipa::path(
    post, path = "/api/v1/organizations", tag = "organizations",
    request_body = OrganizationInput,
    responses(
        (status = 201, description = "Created; `Location` names it", body = Organization),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks organizations:write", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["organizations:write"]))
)]
pub async fn create_organization(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    common::create::<Organization>(state, caller, uri, body).await
}

/// Reads one organization.
#[utoipa::path(
    get, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "Organization id (UUIDv7)")),
    responses(
        (status = 200, description = "The organization", body = Organization),
        (status = 404, description = "No such organization for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["organizations:read"]))
)]
pub async fn get_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    common::read::<Organization>(state, caller, &id).await
}

/// Changes a organization with a JSON Merge Patch (RFC 7396): `null` clears a field.
#[utoipa::path(
    patch, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "Organization id (UUIDv7)")),
    request_body(content = OrganizationInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed organization", body = Organization),
        (status = 404, description = "No such organization for your tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["organizations:write"]))
)]
pub async fn patch_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Organization>, ApiError> {
    common::update::<Organization>(state, caller, &id, body).await
}

/// Deletes a organization.
#[utoipa::path(
    delete, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "Organization id (UUIDv7)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organization for your tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["organizations:write"]))
)]
pub async fn delete_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    common::remove::<Organization>(state, caller, &id).await
}
