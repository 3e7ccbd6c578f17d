//! The HTTP API: route table, OpenAPI document and its renderer.

pub mod archives;
pub mod audit;
pub mod common;
pub mod document;
pub mod export_jobs;
pub mod exports;
pub mod files;
pub mod health;
pub mod imports;
pub mod leads;
pub mod organizations;
pub mod reports;
pub mod retention;
pub mod subjects;
pub mod switching;
pub mod visitors;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes as OAuthScopes, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Steward API",
        description = "Leads, organizations, visitors, journeys and reports of one tenant. Every call \
            needs an OAuth 2.0 bearer token from `/oauth/token` (client credentials). Errors are RFC 9457 \
            problem details. Lists use cursor pagination: follow `next_cursor` or the `Link` header.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    // `/api/v1/exports/{dataset}` (a stream) and `/api/v1/exports/{id}` (a job) share one path
    // segment, so one handler (`export_jobs::get_export`) serves both; both are documented here,
    // the stream as one concrete path per dataset (see `document`).
    paths(openapi_json, exports::stream_export, export_jobs::get_export_job),
    components(schemas(steward_export::Format)),
    modifiers(&OAuthScheme),
    tags(
        (name = "leads", description = "Contact data captured by bots and forms"),
        (name = "organizations", description = "Company profiles"),
        (name = "visitors", description = "Pseudonymous visitor profiles and their journeys (visits and ordered events)"),
        (name = "reports", description = "Analytical reports per day, week or month; never personal: small groups are suppressed"),
        (name = "exports", description = "Whole datasets as CSV, JSON, NDJSON or XLSX"),
        (name = "imports", description = "Leads and organizations from another tool's CSV, with a column mapping"),
        (name = "data-subjects", description = "Data-subject rights (GDPR Art. 15 to 21): find everything held on a person; record, carry out, extend or reject their requests"),
        (name = "retention", description = "How long each dataset is kept, legal holds that keep records past it, and sweeps that delete the rest"),
        (name = "switching", description = "Data Act (Regulation (EU) 2023/2854, Chapter VI): the public data register, tenant archives and their import, switching to another provider or on premises, or erasure with a signed attestation. Free of charge"),
        (name = "audit", description = "The tenant's tamper-evident audit log: exports, refusals, changes"),
        (name = "oauth", description = "OAuth 2.0 client credentials (RFC 6749 §4.4), token revocation (RFC 7009) and introspection (RFC 7662)"),
        (name = "collection", description = "Public collection from websites, authorised by a site key: the tracker script and its batches of events"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

struct OAuthScheme;

impl Modify for OAuthScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scopes = OAuthScopes::from_iter(
            steward_domain::Scope::ALL.iter().map(|scope| (scope.as_str(), scope.description())),
        );
        let flow = Flow::ClientCredentials(ClientCredentials::new("/oauth/token", scopes));
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("oauth2", SecurityScheme::OAuth2(OAuth2::new([flow])));
    }
}

/// The OpenAPI 3.1 description of this API (served by [`router`]; this item only documents it).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")), security(()))]
async fn openapi_json(document: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document).into_response()
}

/// Every route with its documentation, and the document itself.
pub fn router(state: AppState) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(auth::issue_token))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(auth::introspect_token))
        .routes(routes!(leads::list_leads, leads::create_lead))
        .routes(routes!(leads::get_lead, leads::patch_lead, leads::delete_lead))
        .routes(routes!(organizations::list_organizations, organizations::create_organization))
        .routes(routes!(
            organizations::get_organization,
            organizations::patch_organization,
            organizations::delete_organization
        ))
        .routes(routes!(visitors::list_visitor_profiles))
        .routes(routes!(visitors::get_visitor_profile))
        .routes(routes!(visitors::journey_insights))
        .routes(routes!(reports::get_report))
        .routes(routes!(export_jobs::create_export_job))
        .routes(routes!(export_jobs::download_export))
        // Multipart bodies are limited by `imports.max_bytes` (see `app::limit_body`), not by
        // axum's default for extractors.
        .merge(OpenApiRouter::new().routes(routes!(imports::import_csv)).layer(DefaultBodyLimit::disable()))
        .routes(routes!(subjects::find_data_subject))
        .routes(routes!(subjects::list_requests, subjects::create_request))
        .routes(routes!(subjects::get_request))
        .routes(routes!(subjects::execute_request))
        .routes(routes!(subjects::extend_request))
        .routes(routes!(subjects::reject_request))
        .routes(routes!(subjects::download_archive))
        .routes(routes!(retention::get_retention_policies, retention::put_retention_policies))
        .routes(routes!(retention::sweep_now))
        .routes(routes!(retention::list_legal_holds, retention::create_legal_hold))
        .routes(routes!(retention::delete_legal_hold))
        .routes(routes!(archives::create_tenant_archive))
        .routes(routes!(archives::get_tenant_archive))
        .routes(routes!(archives::download_tenant_archive))
        .routes(routes!(archives::data_register))
        .routes(routes!(archives::dataset_schema))
        .routes(routes!(archives::import_archive))
        .routes(routes!(switching::list_switching_requests, switching::create_switching_request))
        .routes(routes!(switching::get_switching_request))
        .routes(routes!(switching::extend_switching_request))
        .routes(routes!(switching::cancel_switching_request))
        .routes(routes!(switching::download_switching_archive))
        .routes(routes!(switching::get_switching_attestation))
        .routes(routes!(audit::list_audit_log))
        .routes(routes!(audit::verify_audit_log))
        .routes(routes!(crate::collect::tracker_script))
        .routes(routes!(crate::collect::collect))
        .split_for_parts();
    // Rendered once, indented so that a change to it reads well in review (see the golden test).
    let mut rendered = serde_json::to_vec_pretty(&document::finish(&openapi)).unwrap_or_default();
    rendered.push(b'\n');
    let rendered = Bytes::from(rendered);
    router
        .route("/api/v1/exports/{name}", get(export_jobs::get_export))
        .merge(crate::collect::router())
        .route("/openapi.json", get(move || openapi_json(rendered.clone())))
        .merge(
            crate::console::router()
                .layer(axum::middleware::from_fn_with_state(state.clone(), crate::console::remember_peer)),
        )
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")))
        .with_state(state)
}
