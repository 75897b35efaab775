//! Sign-in counters (design §4.2), kept in the database so every instance
//! sees them, and changed by single atomic statements so parallel attempts
//! cannot slip past a threshold.
//!
//! An attempt first *reserves* a place under each of its keys: the key's
//! `pending` count goes up, unless the key is locked or its budget (the
//! failures it may still have) is already held by attempts being checked.
//! When the check ends, the reservation becomes a failure, or is given back.
//! So N parallel wrong guesses get at most `threshold` password checks, and
//! N parallel right ones are never failures: they only wait for each other.
//!
//! Each statement touches one key and commits at once, so no statement ever
//! holds one counter's row while it waits for another's: attempts sharing
//! keys cannot deadlock on PostgreSQL.

use anyhow::{Context, Result};

use super::{Store, on_pool};
use crate::clock::Micros;

/// One counter an attempt is held to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// `ua:ADDR|NAME`, `user:NAME` or `ip:ADDR`.
    pub key: String,
    /// Failures allowed before attempts wait.
    pub threshold: i64,
}

/// The times every counter statement needs (microseconds).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub now: Micros,
    /// Failures older than this no longer count.
    pub window: Micros,
    /// A reservation older than this was lost (a crashed instance) and no
    /// longer holds the budget.
    pub lease: Micros,
    /// The first wait past a threshold; it doubles with each further failure.
    pub base_wait: Micros,
}

/// What reserving found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Every counter holds a place for this attempt: check the password.
    Reserved,
    /// A counter's budget is held by attempts being checked: wait for them.
    Held,
    /// The counter `key` is locked: refuse without a check; retry after
    /// `wait` microseconds.
    Locked { key: String, wait: Micros },
}

/// How an attempt with a reservation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A failed sign-in: each counter counts a failure.
    Failed,
    /// A success: every reservation is given back, and the counter named
    /// here (the attempt's own user and address) forgets its failures.
    Succeeded { reset: &'a str },
    /// No check happened (busy, or the client went away): give back only.
    Released,
}

/// Pending attempts that still hold the budget (older ones were lost).
macro_rules! live_pending {
    () => {
        "(CASE WHEN sign_in_failures.pending_at < $3 THEN 0 ELSE sign_in_failures.pending END)"
    };
}

/// The failures that still count ($2: the window's start).
macro_rules! live_failures {
    () => {
        "(CASE WHEN sign_in_failures.last_at < $2 THEN 0 ELSE sign_in_failures.failures END)"
    };
}

/// Reserves a place under the key $4 (threshold $5); returns the key if it
/// reserved. A key may take another attempt
/// while it is not locked and its pending attempts are fewer than its budget:
/// the failures left below its threshold, or one attempt past it once the
/// lock has run out. $1 now, $2 window start, $3 lease start.
const RESERVE: &str = concat!(
    "INSERT INTO sign_in_failures ",
    "(key, failures, last_at, locked_until, pending, pending_at, threshold) VALUES ",
    "($4, 0, 0, 0, 1, $1, $5) ",
    "ON CONFLICT (key) DO UPDATE SET ",
    "failures = ",
    live_failures!(),
    ", pending = ",
    live_pending!(),
    " + 1, pending_at = $1, threshold = excluded.threshold ",
    "WHERE sign_in_failures.locked_until <= $1 AND ",
    live_pending!(),
    " < (CASE WHEN ",
    live_failures!(),
    " < excluded.threshold THEN excluded.threshold - ",
    live_failures!(),
    " ELSE 1 END) ",
    "RETURNING key"
);

/// The failure count after this failure.
macro_rules! new_failures {
    () => {
        "((CASE WHEN last_at < $2 THEN 0 ELSE failures END) + 1)"
    };
}

/// How far past its threshold this failure takes a key.
macro_rules! past_threshold {
    () => {
        concat!("CAST(", new_failures!(), " - threshold AS INTEGER)")
    };
}

/// Turns reservations into failures. The lock a count reaches is none below
/// the threshold, then the base wait ($3) doubled for each failure past it,
/// capped at the window ($4). $1 now, $2 window start.
const FAIL: &str = concat!(
    "UPDATE sign_in_failures SET ",
    "pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END, ",
    "failures = ",
    new_failures!(),
    ", last_at = $1, ",
    "locked_until = CASE WHEN ",
    new_failures!(),
    " < threshold THEN 0 ",
    "WHEN ",
    past_threshold!(),
    " >= 30 THEN $1 + $4 ",
    "WHEN ($3 << ",
    past_threshold!(),
    ") > $4 THEN $1 + $4 ",
    "ELSE $1 + ($3 << ",
    past_threshold!(),
    ") END ",
    "WHERE key = $5"
);

/// Gives a reservation back under the key $2; with $1 true the key also
/// forgets its failures and lock.
const GIVE_BACK: &str = concat!(
    "UPDATE sign_in_failures SET ",
    "pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END, ",
    "failures = CASE WHEN $1 THEN 0 ELSE failures END, ",
    "locked_until = CASE WHEN $1 THEN 0 ELSE locked_until END ",
    "WHERE key = $2"
);

impl Store {
    /// Reserves a place for one attempt under each of `counters` in turn,
    /// or under none: what one counter reserved is given back when another
    /// refuses. A lock on any counter wins over a budget held elsewhere.
    pub async fn reserve_attempt(
        &self,
        counters: &[Counter],
        timing: Timing,
    ) -> Result<Reservation> {
        let mut taken = Vec::with_capacity(counters.len());
        for counter in counters {
            let reserved: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(RESERVE)
                .bind(timing.now).bind(timing.now - timing.window).bind(timing.now - timing.lease)
                .bind(&counter.key).bind(counter.threshold)
                .fetch_optional(pool).await)
            .context("reserving a sign-in attempt")?;
            if reserved.is_none() {
                break;
            }
            taken.push(counter.key.as_str());
        }
        if taken.len() == counters.len() {
            return Ok(Reservation::Reserved);
        }
        self.finish_attempt(&taken, Outcome::Released, timing).await?;
        let mut lock: Option<(String, Micros)> = None;
        for counter in counters {
            let until: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(
                "SELECT locked_until FROM sign_in_failures WHERE key = $1")
                .bind(&counter.key).fetch_optional(pool).await)
            .context("reading a sign-in lock")?;
            match until {
                Some((until,))
                    if until > timing.now && lock.as_ref().is_none_or(|l| until > l.1) =>
                {
                    lock = Some((counter.key.clone(), until));
                }
                _ => {}
            }
        }
        Ok(match lock {
            Some((key, until)) => Reservation::Locked { key, wait: until - timing.now },
            None => Reservation::Held,
        })
    }

    /// Ends the reservations of one attempt under `keys`.
    pub async fn finish_attempt(
        &self,
        keys: &[&str],
        outcome: Outcome<'_>,
        timing: Timing,
    ) -> Result<()> {
        for key in keys {
            let done = match outcome {
                Outcome::Failed => on_pool!(self, pool => sqlx::query(FAIL)
                    .bind(timing.now).bind(timing.now - timing.window)
                    .bind(timing.base_wait).bind(timing.window).bind(*key)
                    .execute(pool).await.map(|r| r.rows_affected())),
                Outcome::Succeeded { reset } => on_pool!(self, pool => sqlx::query(GIVE_BACK)
                    .bind(*key == reset).bind(*key)
                    .execute(pool).await.map(|r| r.rows_affected())),
                Outcome::Released => on_pool!(self, pool => sqlx::query(GIVE_BACK)
                    .bind(false).bind(*key)
                    .execute(pool).await.map(|r| r.rows_affected())),
            };
            done.context("ending a sign-in attempt")?;
        }
        Ok(())
    }

    /// Drops counters with nothing left to say: no failure, lock or
    /// reservation since `cutoff`.
    pub async fn forget_old_attempts(&self, cutoff: Micros) -> Result<u64> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM sign_in_failures \
             WHERE last_at < $1 AND locked_until < $1 AND pending_at < $1")
            .bind(cutoff).execute(pool).await.map(|r| r.rows_affected()))
        .context("forgetting old sign-in failures")?;
        Ok(done)
    }

    /// Counts one refused sign-in in the audit: the first refusal of a
    /// `bucket` (minute, event and key) writes a row, the rest of that
    /// minute add to its `repeats`. So a flood grows the audit by one row per
    /// key and minute, whatever its size.
    pub async fn audit_refusal(&self, event: &super::AuditEvent<'_>, bucket: &str) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO audit (at, event, user_name, client, detail, repeats, bucket) \
             VALUES ($1, $2, $3, $4, $5, 1, $6) \
             ON CONFLICT (bucket) DO UPDATE SET repeats = audit.repeats + 1")
            .bind(event.at).bind(event.event).bind(event.user_name).bind(event.client)
            .bind(event.detail).bind(bucket).execute(pool).await.map(|r| r.rows_affected()))
        .context("counting a refused sign-in in the audit log")?;
        Ok(())
    }

    /// How many times `event` happened by the audit: its rows' repeats, summed.
    pub async fn audit_count(&self, event: &str) -> Result<i64> {
        let (n,): (Option<i64>,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT CAST(SUM(repeats) AS BIGINT) FROM audit WHERE event = $1")
            .bind(event).fetch_one(pool).await)
        .context("counting audit entries")?;
        Ok(n.unwrap_or(0))
    }
}
