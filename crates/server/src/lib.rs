//! Steward's HTTP server: the axum application, OAuth 2.0, configuration and shared state.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod files;
pub mod jobs;
pub mod ratelimit;
pub mod state;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Settings;
pub use state::{AppState, Clock, open_store};

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let worker = state.settings.exports.worker.then(|| jobs::spawn_worker(state.clone()));
    let served = axum::serve(listener, app::build(state)).with_graceful_shutdown(shutdown).await;
    if let Some(worker) = worker {
        // An interrupted job keeps its lease until it runs out, then any node runs it again.
        worker.abort();
    }
    served
}
