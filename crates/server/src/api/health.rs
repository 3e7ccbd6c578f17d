//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::{ApiError, Problem};
use crate::retention::RetentionHealth;
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// `sqlite` or `postgres` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// Every tenant's last retention sweep, by any process (readiness only): a failing sweep makes `status`
    /// `degraded` while the service still serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionHealth>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Health)), security(()))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", database: None, retention: None })
}

/// The process can serve: its database answers. `status` is `ready`, or `degraded` while the
/// last retention sweep of some tenant failed (see `retention.failures`); either answers 200, so
/// a load balancer keeps sending traffic while monitoring sees the failure.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve (`ready`), or serving with failing retention sweeps (`degraded`)", body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::Unavailable("the database does not answer".into())
    })?;
    let retention = state.sweeps.health(&state).await;
    let status = if retention.status == "failing" { "degraded" } else { "ready" };
    Ok(Json(Health { status, database: Some(state.store.backend()), retention: Some(retention) }))
}
