//! Change notices between instances (design §4.3). On PostgreSQL, triggers
//! (migration 0002) `NOTIFY tessera_changes` whenever a session ends, a user
//! changes, a role is granted or removed, or a key is added; every instance
//! listens, on a connection of its own (to `database_listen_url` when set),
//! named `tessera-listener` in `pg_stat_activity`.
//!
//! A listener is trusted only while it proves itself: each instance sends a
//! heartbeat notice on a channel of its own every [`HEARTBEAT`], over the
//! listener's connection, and hears it come back. PostgreSQL delivers notices in commit order, so hearing a
//! heartbeat sent at `t` proves every change committed before `t` was heard.
//! [`Health`] says whether one was heard within [`SILENCE`]; the gate
//! answers from memory only then, and re-reads on a short clock otherwise
//! (and always on SQLite, which has no notices). A lost connection may have
//! lost notices, so it is reported as [`Change::Missed`] and everything
//! remembered is forgotten.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::Store;
use crate::clock::Micros;

/// The channel the triggers notify.
const CHANNEL: &str = "tessera_changes";

/// How often an instance sends its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// How long after the newest heartbeat heard back was sent the listener is
/// still trusted: a heartbeat's period plus 450 ms for its round trip (it
/// reached 210 ms with ten instances loading two cores). Every change
/// committed before that send was heard, so a change is refused within
/// `SILENCE` plus one query (the gate's fallback, `STALE`, is shorter):
/// inside the one-second contract.
pub const SILENCE: Micros = 700_000;

/// With nothing at all heard for this long, the listener's connection is
/// presumed dead (a peer gone without a word) and replaced.
const DEAF: Duration = Duration::from_secs(10);

/// Something that changed in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A session ended.
    Session(String),
    /// A user changed (disabled, enabled, password, roles).
    User(i64),
    /// A signing key was added.
    Keys,
    /// Notices may have been lost: forget everything remembered.
    Missed,
}

impl Change {
    /// Parses a notification payload.
    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some(("session", id)) => Some(Self::Session(id.to_owned())),
            Some(("user", id)) => id.parse().ok().map(Self::User),
            None if payload == "keys" => Some(Self::Keys),
            _ => None,
        }
    }
}

/// Whether this instance's change listener is proven alive.
#[derive(Debug)]
pub struct Health {
    /// This instance's heartbeat channel, `tessera_beat_<random>`.
    channel: String,
    /// When the newest heartbeat heard back was sent; 0 when none was heard
    /// since the listener last (re)connected.
    heard: AtomicI64,
    /// The health last reported, so each change is logged once.
    reported: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            channel: format!("tessera_beat_{}", uuid::Uuid::new_v4().simple()),
            heard: AtomicI64::new(0),
            reported: AtomicBool::new(false),
        }
    }
}

impl Health {
    /// Whether a heartbeat sent within [`SILENCE`] of `now` was heard back.
    pub fn healthy(&self, now: Micros) -> bool {
        let heard = self.heard.load(Ordering::Acquire);
        heard > 0 && now - heard < SILENCE
    }

    fn heard(&self, sent: Micros) {
        self.heard.fetch_max(sent, Ordering::AcqRel);
    }

    fn lost(&self) {
        self.heard.store(0, Ordering::Release);
    }

    /// The health at `now`, logged when it differs from the last report.
    pub fn report(&self, now: Micros) -> bool {
        let healthy = self.healthy(now);
        if self.reported.swap(healthy, Ordering::AcqRel) != healthy {
            if healthy {
                tracing::info!(
                    "the change listener hears its heartbeat: the gate answers from memory and re-reads what a notice names"
                );
            } else {
                let ms = SILENCE / 1000;
                tracing::warn!(
                    "the change listener was silent for {ms} ms: the gate re-reads sessions every 200 ms until it hears again"
                );
            }
        }
        healthy
    }
}

impl Store {
    /// Calls `on_change` for every change notice and keeps `health`
    /// current, forever, listening on its own connection to `url` and
    /// sending the heartbeat (stamped with `now()`) on that same connection,
    /// so that a busy pool cannot delay it. Returns at once on SQLite, which
    /// has no notices.
    pub async fn watch_changes(
        &self,
        url: &str,
        health: &Health,
        now: impl Fn() -> Micros,
        on_change: impl Fn(Change),
    ) {
        if !matches!(self, Self::Postgres(_)) {
            return;
        }
        let mut failing = false;
        loop {
            let mut listener = match listen(url, &health.channel).await {
                Ok(listener) => listener,
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %format!("{e:#}"), "cannot listen for changes; retrying every second");
                    }
                    failing = true;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if failing {
                tracing::info!("listening for changes again");
                failing = false;
            }
            // Anything may have changed while no one listened.
            on_change(Change::Missed);
            let mut beat = tokio::time::interval(HEARTBEAT);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_heard = tokio::time::Instant::now();
            let why = loop {
                tokio::select! {
                    _ = beat.tick() => {
                        if last_heard.elapsed() > DEAF {
                            break format!("nothing heard for {} s", DEAF.as_secs());
                        }
                        let send = sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(&health.channel)
                            .bind(now().to_string())
                            .execute(&mut listener);
                        match tokio::time::timeout(DEAF, send).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => break format!("sending the heartbeat: {e}"),
                            Err(_) => break format!("sending the heartbeat took over {} s", DEAF.as_secs()),
                        }
                    }
                    // Cancel-safe: sqlx reads a message whole or not at all.
                    notice = listener.try_recv() => match notice {
                        Ok(Some(notice)) => {
                            last_heard = tokio::time::Instant::now();
                            if notice.channel() == health.channel {
                                if let Ok(sent) = notice.payload().parse() {
                                    health.heard(sent);
                                }
                            } else if let Some(change) = Change::parse(notice.payload()) {
                                on_change(change);
                            }
                        }
                        Ok(None) => break "its connection dropped".to_owned(),
                        Err(e) => break e.to_string(),
                    },
                }
            };
            tracing::warn!(error = %why, "lost the change listener; reconnecting");
            health.lost();
            drop(listener);
            on_change(Change::Missed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A listener on a connection of its own (a pool of one, which is how sqlx
/// reconnects it), on the changes channel and on `beat`.
async fn listen(url: &str, beat: &str) -> Result<PgListener> {
    let options = super::postgres_options(url, "tessera-listener")?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options);
    let shown = crate::config::redact_url(url);
    let mut listener = PgListener::connect_with(&pool)
        .await
        .with_context(|| format!("cannot connect the change listener to {shown:?}"))?;
    // A lost connection is ours to handle: forget everything, then reconnect.
    listener.eager_reconnect(false);
    listener.listen_all([CHANNEL, beat]).await.context("LISTEN")?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(Change::parse("session:abc"), Some(Change::Session("abc".into())));
        assert_eq!(Change::parse("user:42"), Some(Change::User(42)));
        assert_eq!(Change::parse("keys"), Some(Change::Keys));
        assert_eq!(Change::parse("user:x"), None);
        assert_eq!(Change::parse("other"), None);
    }

    #[test]
    fn health_lasts_for_the_silence_after_the_newest_heartbeat_heard() {
        let health = Health::default();
        assert!(!health.healthy(1_000_000), "healthy before any heartbeat");
        health.heard(1_000_000);
        health.heard(900_000);
        assert!(health.healthy(1_000_000 + SILENCE - 1));
        assert!(!health.healthy(1_000_000 + SILENCE));
        health.lost();
        assert!(!health.healthy(1_000_001));
        assert!(health.channel.starts_with("tessera_beat_") && health.channel.len() < 64);
    }
}
