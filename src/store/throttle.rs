//! Failed sign-in counters (design §4.2), kept in the database so every
//! instance sees them, and changed by single atomic statements so parallel
//! attempts cannot slip past a threshold.
//!
//! An attempt *reserves* a failure before its password is checked: the count
//! goes up first, and a success gives it back. So N parallel wrong guesses
//! can never get more than `threshold` password checks.

use anyhow::{Context, Result};

use super::{Store, on_pool};
use crate::clock::Micros;

/// The outcome of reserving an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may go ahead; `failures` counts it.
    Allowed { failures: i64 },
    /// Locked: refuse without hashing; retry after this many microseconds.
    Locked { wait: Micros },
}

/// The count after this attempt: failures older than the window ($3) no
/// longer count.
macro_rules! new_count {
    () => {
        "(CASE WHEN sign_in_failures.last_at < $3 THEN 1 ELSE sign_in_failures.failures + 1 END)"
    };
}

/// How far past the threshold ($4) the count is.
macro_rules! past_threshold {
    () => {
        concat!("CAST(", new_count!(), " - $4 AS INTEGER)")
    };
}

/// Counts an attempt unless the key is locked. The lock a count reaches is
/// none below the threshold, then the base wait ($5) doubled for each
/// failure past it, capped at the window ($6). Both dialects evaluate it.
const RESERVE: &str = concat!(
    "INSERT INTO sign_in_failures (key, failures, last_at, locked_until) ",
    "VALUES ($1, 1, $2, CASE WHEN 1 >= $4 THEN $2 + $5 ELSE 0 END) ",
    "ON CONFLICT (key) DO UPDATE SET ",
    "failures = ",
    new_count!(),
    ", ",
    "last_at = $2, ",
    "locked_until = CASE WHEN ",
    new_count!(),
    " < $4 THEN 0 ",
    "WHEN ",
    past_threshold!(),
    " >= 30 THEN $2 + $6 ",
    "WHEN ($5 << ",
    past_threshold!(),
    ") > $6 THEN $2 + $6 ",
    "ELSE $2 + ($5 << ",
    past_threshold!(),
    ") END ",
    "WHERE sign_in_failures.locked_until <= $2 ",
    "RETURNING failures"
);

/// How a counter behaves.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Failures allowed before attempts wait.
    pub threshold: i64,
    /// Failures older than this no longer count (microseconds).
    pub window: Micros,
    /// The first wait past the threshold (microseconds).
    pub base_wait: Micros,
}

impl Store {
    /// Counts an attempt under `key` before its password is checked, unless
    /// the key is locked.
    pub async fn reserve_attempt(
        &self,
        key: &str,
        limits: Limits,
        now: Micros,
    ) -> Result<Reservation> {
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(RESERVE)
            .bind(key).bind(now).bind(now - limits.window).bind(limits.threshold)
            .bind(limits.base_wait).bind(limits.window)
            .fetch_optional(pool).await)
        .context("counting a sign-in attempt")?;
        if let Some((failures,)) = row {
            return Ok(Reservation::Allowed { failures });
        }
        let locked: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT locked_until FROM sign_in_failures WHERE key = $1")
            .bind(key).fetch_optional(pool).await)
        .context("reading a sign-in lock")?;
        let until = locked.map_or(now, |(until,)| until);
        Ok(Reservation::Locked { wait: (until - now).max(1) })
    }

    /// Forgets every failure under `key` (a user's successful sign-in).
    pub async fn reset_attempts(&self, key: &str) -> Result<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM sign_in_failures WHERE key = $1")
            .bind(key).execute(pool).await.map(|r| r.rows_affected()))
        .context("resetting sign-in failures")?;
        Ok(())
    }

    /// Gives back one reserved attempt under `key` (a success, or a check
    /// that never ran): the count drops by one, and the lock that the
    /// reservation may have set goes too, since no failure happened.
    pub async fn release_attempt(&self, key: &str) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE sign_in_failures SET failures = failures - 1, locked_until = 0 \
             WHERE key = $1 AND failures > 0")
            .bind(key).execute(pool).await.map(|r| r.rows_affected()))
        .context("releasing a sign-in attempt")?;
        Ok(())
    }

    /// Drops counters whose failures have all aged out of the window.
    pub async fn forget_old_attempts(&self, cutoff: Micros) -> Result<u64> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM sign_in_failures WHERE last_at < $1 AND locked_until < $1")
            .bind(cutoff).execute(pool).await.map(|r| r.rows_affected()))
        .context("forgetting old sign-in failures")?;
        Ok(done)
    }
}
