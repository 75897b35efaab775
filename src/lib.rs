//! tessera: a server that speaks the CloudIO REST API.
//!
//! A request travels one way: `http` (parse the HTTP request) → `auth`
//! (authenticate) → `query` (parse the body, authorize through `catalog`,
//! plan, build SQL, execute over `store`, render) → `http` (answer).
//! [`start`] and [`serve`] are the seam that the binary and the integration
//! tests share; [`app::AppState`] holds everything a request needs.

pub mod app;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod query;
pub mod store;
pub mod testing;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::app::AppState;
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

/// Opens the database, applies migrations and loads the key ring: everything
/// a server needs before it listens.
pub async fn start(config: Config, clock: Clock) -> Result<AppState> {
    AppState::start(config, clock).await
}

/// What `tessera check` does: the config file, the catalog and the database
/// agree (missing tables are created, as at start), and the database's
/// signing keys open with the secret key in use. Returns the open store.
pub async fn check(config: &Config) -> Result<Store> {
    let catalog = app::load_catalog(config)?;
    let secrets = auth::secrets::Secrets::load(&config.secrets)?;
    let store = Store::open(&config.database.0).await?;
    auth::tokens::check_sealed(&store, &secrets).await?;
    catalog::sync_tables(&store, &catalog).await?;
    Ok(store)
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let housekeeping = tokio::spawn(state.clone().housekeeping());
    let watcher = tokio::spawn(state.clone().watch_changes());
    let health = tokio::spawn(state.clone().watch_health());
    let flusher = tokio::spawn(state.clone().flush_uses());
    let metrics = match &state.config.network.metrics_listen {
        Some(addr) => Some(tokio::spawn(serve_metrics(state.clone(), bind(addr).await?))),
        None => None,
    };
    let network = state.config.network.clone();
    let served =
        http::server::serve(http::router(state.clone()), listener, &network, shutdown).await;
    housekeeping.abort();
    watcher.abort();
    health.abort();
    flusher.abort();
    // The uses seen since the last flush, so the other instances know them.
    state.flush_uses_now().await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served.context("serving HTTP")
}

async fn bind(addr: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on metrics_listen = {addr:?}"))?;
    if let Ok(local) = listener.local_addr() {
        tracing::info!(address = %local, "serving /metrics");
    }
    Ok(listener)
}

/// Serves `GET /metrics` alone on the `metrics_listen` address.
async fn serve_metrics(state: AppState, listener: TcpListener) {
    if let Err(e) = axum::serve(listener, http::metrics_router(state)).await {
        tracing::warn!(error = %e, "the metrics listener stopped");
    }
}
