//! tessera: a server that speaks the CloudIO REST API.
//!
//! A request travels one way: `http` (parse) → `auth` (authenticate) →
//! `catalog` (authorize) → `query` (plan, execute) → `http` (render), over
//! `store`, the database. [`start`] and [`serve`] are the seam that the
//! binary and the integration tests share.

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod query;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::config::Config;
use crate::http::AppState;
use crate::store::Store;
use crate::store::changes::Change;

/// Opens the database, applies migrations and loads the key ring: everything
/// a server needs before it listens.
pub async fn start(config: Config, clock: Clock) -> Result<AppState> {
    let catalog = Catalog::from_config(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = Store::open(&config.database.0).await?;
    catalog::sync_tables(&store, &catalog).await?;
    let auth = Auth::new(store, clock, Arc::new(config)).await?;
    Ok(AppState::new(auth, catalog))
}

/// What `tessera check` does: the config file, the catalog and the database
/// agree (missing tables are created, as at start).
pub async fn check(config: &Config) -> Result<()> {
    let catalog = Catalog::from_config(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = Store::open(&config.database.0).await?;
    catalog::sync_tables(&store, &catalog).await
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.auth.clone()));
    let watcher = tokio::spawn(watch_changes(state.auth.clone()));
    let metrics = match &state.auth.config.network.metrics_listen {
        Some(addr) => Some(tokio::spawn(serve_metrics(state.clone(), bind(addr).await?))),
        None => None,
    };
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    housekeeping.abort();
    watcher.abort();
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

/// Applies change notices from other processes as they arrive (PostgreSQL).
async fn watch_changes(auth: Auth) {
    let store = auth.store.clone();
    store
        .watch_changes(|change| {
            auth.apply_change(&change);
            if matches!(change, Change::Keys | Change::Missed) {
                let auth = auth.clone();
                tokio::spawn(async move { refresh_keys(&auth).await });
            }
        })
        .await;
}

/// Reloads the key ring; a failure is logged and retried on the next round.
async fn refresh_keys(auth: &Auth) {
    if let Err(e) = auth.keys.refresh(&auth.store, auth.clock.now()).await {
        tracing::warn!(error = %format!("{e:#}"), "could not refresh the key ring");
    }
}

/// Periodic work: pick up rotated keys, forget idle cache entries and
/// aged-out guessing counters.
async fn housekeeping(auth: Auth) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        round += 1;
        let now = auth.clock.now();
        refresh_keys(&auth).await;
        auth.sweep();
        if round.is_multiple_of(60) {
            let window = clock::micros(auth.config.throttle.window.0);
            if let Err(e) = auth.store.forget_old_attempts(now - window).await {
                tracing::warn!(error = %format!("{e:#}"), "could not prune sign-in counters");
            }
        }
    }
}
