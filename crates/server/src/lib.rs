//! Steward's HTTP server: the axum application, OAuth 2.0, configuration and shared state.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
pub mod collect;
pub mod config;
pub mod connection;
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
    if let Ok(address) = listener.local_addr() {
        let _ = state.listening.set(address);
    }
    let worker = state.settings.exports.worker.then(|| jobs::spawn_worker(state.clone()));
    let sweeper = retention::spawn_sweeper(state.clone());
    let advancer = switching::spawn_advancer(state.clone());
    let served = serve_connections(listener, state, shutdown).await;
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

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Accepts connections under `server.*` limits (see [`connection`]): plain HTTP, or HTTPS with
/// rustls when `tls.cert` and `tls.key` are set.
async fn serve_connections(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = state.settings.tls.clone();
    let limits = connection::Limits::new(&state.settings.server, tls.enabled());
    let handle = axum_server::Handle::new();
    let draining = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        draining.graceful_shutdown(Some(DRAIN));
    });
    let app = app::build(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum_server::from_tcp(listener.into_std()?)?.handle(handle);
    if tls.enabled() {
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("TLS certificate {} or key {} could not be used: {e}", tls.cert, tls.key),
            )
        })?;
        let rustls = axum_server::tls_rustls::RustlsAcceptor::new(config);
        server.acceptor(connection::Guard::new(rustls, limits)).serve(app).await
    } else {
        server.acceptor(connection::Guard::new(axum_server::accept::DefaultAcceptor, limits)).serve(app).await
    }
}
