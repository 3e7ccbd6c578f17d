//! Steward's HTTP server: the axum application, OAuth 2.0, configuration and shared state.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
pub mod collect;
pub mod config;
pub mod console;
pub mod erasure_ledger;
pub mod error;
pub mod files;
pub mod import;
pub mod jobs;
pub mod ratelimit;
pub mod register;
pub mod retention;
pub mod state;
pub mod subjects;
pub mod switching;
pub mod tenant_archive;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Settings;
pub use state::{AppState, Clock, open_store};

/// Serves until `shutdown` resolves, then lets in-flight requests finish: HTTPS with rustls
/// when `tls.cert` and `tls.key` are set, else plain HTTP.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let worker = state.settings.exports.worker.then(|| jobs::spawn_worker(state.clone()));
    let sweeper = retention::spawn_sweeper(state.clone());
    let advancer = switching::spawn_advancer(state.clone());
    let served = if state.settings.tls.enabled() {
        serve_tls(listener, state, shutdown).await
    } else {
        let app = app::build(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await
    };
    if let Some(worker) = worker {
        // An interrupted job keeps its lease until it runs out, then any node runs it again.
        worker.abort();
    }
    if let Some(sweeper) = sweeper {
        // Each batch commits on its own: an interrupted sweep is finished by the next one.
        sweeper.abort();
    }
    if let Some(advancer) = advancer {
        // Each step is saved before the next: an interrupted pass is finished by the next one.
        advancer.abort();
    }
    served
}

/// How long in-flight requests may run on after a shutdown signal under TLS.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = &state.settings.tls;
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("TLS certificate {} or key {} could not be used: {e}", tls.cert, tls.key))
    })?;
    let handle = axum_server::Handle::new();
    let draining = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        draining.graceful_shutdown(Some(DRAIN));
    });
    let app = app::build(state);
    axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
