//! The application: everything a request needs, as flat siblings in one
//! [`AppState`] (store, clock, config, catalog, key ring, hasher, gate), and
//! the background loops that keep it current.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::auth::password::Hasher;
use crate::auth::secrets::Secrets;
use crate::auth::tokens::KeyRing;
use crate::auth::{Auth, gate};
use crate::catalog::{self, Catalog};
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::query;
use crate::store::Store;
use crate::store::changes::{Change, HEARTBEAT};
use crate::store::share::Share;
use crate::store::sign_ins::SignIns;

/// How often the key ring is re-read while the change listener is healthy
/// (a notice names every new key; this is the fallback).
const KEYS_FALLBACK: u64 = 60;

/// The catalog of `config`, every role filter checked like any filter.
pub fn load_catalog(config: &Config) -> Result<Catalog> {
    let catalog = Catalog::from_config(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    query::grant::check_role_filters(&catalog).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(catalog)
}

/// What [`AppState`] holds.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub clock: Clock,
    pub catalog: Catalog,
    pub keys: KeyRing,
    /// The keys derived from the secret key (design §4.7).
    pub secrets: Secrets,
    pub hasher: Hasher,
    /// Writes sign-ins' sessions and audit entries in batches.
    pub sign_ins: SignIns,
    pub gate: gate::Cache,
    /// The part of the pool data work may hold, so the gate never waits.
    pub share: Share,
    /// This server's metrics registry (never a process global).
    pub metrics: Metrics,
}

/// The application state. Cloned per request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Checks the catalog, opens the database, applies migrations, creates
    /// missing tables and loads the key ring: everything a server needs
    /// before it listens.
    pub async fn start(config: Config, clock: Clock) -> Result<Self> {
        let catalog = load_catalog(&config)?;
        let secrets = Secrets::load(&config.secrets)?;
        let timeout = config.network.statement_timeout.0;
        let store =
            Store::open_limited(&config.database.0, Some(timeout), config.database_pool_size)
                .await?;
        catalog::sync_tables(&store, &catalog).await?;
        let hasher = Hasher::new(&config.password)?;
        let lifetime = clock::micros(config.session.max_lifetime.0);
        let keys = KeyRing::new(&config.issuer, lifetime, secrets.clone());
        keys.refresh(&store, clock.now()).await?;
        let gate = gate::Cache::default();
        let metrics = Metrics::new();
        let share = Share::new(&store, timeout);
        let sign_ins = SignIns::start(&store);
        let app = App {
            config,
            store,
            clock,
            catalog,
            keys,
            secrets,
            hasher,
            sign_ins,
            gate,
            share,
            metrics,
        };
        Ok(Self(Arc::new(app)))
    }

    /// Sign-in and the gate's view of the state.
    pub fn auth(&self) -> Auth<'_> {
        Auth {
            store: &self.store,
            clock: &self.clock,
            config: &self.config,
            hasher: &self.hasher,
            keys: &self.keys,
            secrets: &self.secrets,
            sign_ins: &self.sign_ins,
            gate: &self.gate,
        }
    }

    /// The data pipeline's view of the state.
    pub fn query_env(&self) -> query::Env<'_> {
        query::Env {
            store: &self.store,
            share: &self.share,
            catalog: &self.catalog,
            max_limit: self.config.max_limit,
        }
    }

    /// Applies change notices from other processes as they arrive
    /// (PostgreSQL); runs until aborted.
    pub async fn watch_changes(self) {
        self.store
            .watch_changes(
                self.config.listen_url(),
                &self.gate.listener,
                || self.clock.now(),
                |change| {
                    self.auth().apply_change(&change);
                    if matches!(change, Change::Keys | Change::Missed) {
                        let state = self.clone();
                        tokio::spawn(async move { state.refresh_keys().await });
                    }
                },
            )
            .await;
    }

    /// Logs when the change listener's health changes (PostgreSQL; its
    /// heartbeat is sent by the listener itself); runs until aborted.
    pub async fn watch_health(self) {
        if self.store.backend() == crate::store::Backend::Sqlite {
            return;
        }
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            self.gate.listener.report(self.clock.now());
        }
    }

    /// Writes the sessions' last uses in batches, every touch interval (at
    /// most each second); runs until aborted.
    pub async fn flush_uses(self) {
        let every = Duration::from_micros(self.auth().touch_interval().unsigned_abs())
            .min(Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush_uses_now().await;
        }
    }

    /// Writes the last uses seen and not yet stored; a failure is logged and
    /// retried on the next round.
    pub async fn flush_uses_now(&self) {
        if let Err(e) = self.auth().flush_uses().await {
            tracing::warn!(error = %format!("{e:#}"), "could not record the last use of sessions");
        }
    }

    /// Reloads the key ring; a failure is logged and retried on the next round.
    async fn refresh_keys(&self) {
        if let Err(e) = self.keys.refresh(&self.store, self.clock.now()).await {
            tracing::warn!(error = %format!("{e:#}"), "could not refresh the key ring");
        }
    }

    /// Periodic work: pick up rotated keys (each second, or each minute while
    /// the change listener is healthy and names new keys itself), forget idle
    /// cache entries and aged-out guessing counters; runs until aborted.
    pub async fn housekeeping(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut round: u64 = 0;
        loop {
            tick.tick().await;
            round += 1;
            let now = self.clock.now();
            if !self.gate.listener.healthy(now) || round.is_multiple_of(KEYS_FALLBACK) {
                self.refresh_keys().await;
            }
            self.auth().sweep();
            if round.is_multiple_of(60) {
                let window = clock::micros(self.config.throttle.window.0);
                if let Err(e) = self.store.forget_old_attempts(now - window).await {
                    tracing::warn!(error = %format!("{e:#}"), "could not prune sign-in counters");
                }
                let lifetime = clock::micros(self.config.session.max_lifetime.0);
                if let Err(e) = self.store.prune_sessions(now - lifetime, lifetime).await {
                    tracing::warn!(error = %format!("{e:#}"), "could not prune ended sessions");
                }
                let kept = clock::micros(crate::store::idempotency::KEEP);
                if let Err(e) = self.store.forget_old_answers(now - kept).await {
                    tracing::warn!(error = %format!("{e:#}"), "could not prune idempotency keys");
                }
            }
        }
    }
}
