//! Time as a parameter: everything that expires (sessions, tokens, guessing
//! counters) asks a [`Clock`], so tests move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Microseconds since the Unix epoch, the one time unit stored in the database.
pub type Micros = i64;

/// A source of the current time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Added to the system time; tests move it forward.
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self { offset: Arc::new(AtomicI64::new(0)) }
    }

    /// Microseconds since the Unix epoch, plus any offset.
    pub fn now(&self) -> Micros {
        chrono::Utc::now().timestamp_micros() + self.offset.load(Ordering::Relaxed)
    }

    /// Seconds since the Unix epoch (for JWT claims).
    pub fn now_secs(&self) -> i64 {
        self.now().div_euclid(1_000_000)
    }

    /// Moves this clock (and every copy of it) forward; for tests.
    pub fn advance(&self, by: std::time::Duration) {
        self.offset.fetch_add(micros(by), Ordering::Relaxed);
    }
}

/// A duration in microseconds, saturating.
pub fn micros(d: std::time::Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// ISO 8601 UTC with microseconds, e.g. `2023-02-01T10:06:12.123456Z`.
pub fn iso8601(at: Micros) -> String {
    chrono::DateTime::from_timestamp_micros(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_has_microseconds_and_z() {
        assert_eq!(iso8601(1_675_245_972_123_456), "2023-02-01T10:06:12.123456Z");
    }

    #[test]
    fn advance_moves_all_copies() {
        let a = Clock::system();
        let b = a.clone();
        let before = b.now();
        a.advance(std::time::Duration::from_secs(3600));
        assert!(b.now() - before >= 3_600_000_000);
    }
}
