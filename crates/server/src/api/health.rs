//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// `sqlite` or `postgres` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Health)), security(()))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", database: None })
}

/// The process can serve: its database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::Unavailable("the database does not answer".into())
    })?;
    Ok(Json(Health { status: "ready", database: Some(state.store.backend()) }))
}
