//! Change notices between instances (design §4.3). On PostgreSQL, triggers
//! (migration 0002) `NOTIFY tessera_changes` whenever a session ends, a user
//! changes, a role is granted or removed, or a key is added; every instance
//! listens. A lost connection may have lost notices, so it is reported as
//! [`Change::Missed`] and the listener forgets everything it remembers. The
//! gate's short cache lifetime bounds staleness even without notices (and on
//! SQLite, where there are none).

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::Store;

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

impl Store {
    /// Calls `on_change` for every change notice, forever. Returns at once
    /// on SQLite, which has no notices.
    pub async fn watch_changes(&self, on_change: impl Fn(Change) + Send) {
        let Self::Postgres(pool) = self else { return };
        loop {
            let mut listener = match PgListener::connect_with(pool).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for changes; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen("tessera_changes").await {
                tracing::warn!(error = %e, "cannot listen for changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Anything may have changed while no one listened.
            on_change(Change::Missed);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notice)) => {
                        if let Some(change) = Change::parse(notice.payload()) {
                            on_change(change);
                        }
                    }
                    // The connection dropped; the listener reconnects on the
                    // next call, and notices sent meanwhile are lost.
                    Ok(None) => on_change(Change::Missed),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the change listener; reconnecting");
                        on_change(Change::Missed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    }
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
}
