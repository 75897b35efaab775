//! Answers kept for `Idempotency-Key` (design §1.4, migration 0015), per
//! user and key, in the database so that every instance sees them. A
//! claimed key whose answer is not yet kept is a request still running.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Store, on_pool};
use crate::clock::Micros;

/// How long an answer is kept.
pub const KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// What a request carrying a key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its answer expired): run the request, then
    /// [`Store::keep_answer`] or [`Store::release_key`].
    Run,
    /// The same request ran: its kept status and body.
    Replay { status: u16, body: Vec<u8> },
    /// The key was used with another body.
    OtherBody,
    /// The first request with this key is still running.
    Running,
}

impl Store {
    /// Claims `key` for `user`'s request whose body hashes to `hash`, or says
    /// why not. Answers kept before `expired` count as gone.
    pub async fn claim_key(
        &self,
        user: &str,
        key: &str,
        hash: &str,
        now: Micros,
        expired: Micros,
    ) -> Result<Claim> {
        let claimed = on_pool!(self, pool => sqlx::query(
            "INSERT INTO idempotency_keys (user_name, key, request_hash, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_name, key) DO UPDATE
                SET request_hash = excluded.request_hash, status = NULL, body = NULL,
                    created_at = excluded.created_at
                WHERE idempotency_keys.created_at < $5")
            .bind(user).bind(key).bind(hash).bind(now).bind(expired)
            .execute(pool).await.map(|r| r.rows_affected()))
        .context("claiming an idempotency key")?;
        if claimed == 1 {
            return Ok(Claim::Run);
        }
        let kept: Option<(String, Option<i64>, Option<Vec<u8>>)> = on_pool!(self, pool =>
            sqlx::query_as(
                "SELECT request_hash, status, body FROM idempotency_keys
                 WHERE user_name = $1 AND key = $2")
            .bind(user).bind(key).fetch_optional(pool).await)
        .context("reading an idempotency key")?;
        Ok(match kept {
            // Pruned between the two statements: as good as running.
            None => Claim::Running,
            Some((kept, _, _)) if kept != hash => Claim::OtherBody,
            Some((_, Some(status), Some(body))) => {
                Claim::Replay { status: u16::try_from(status).unwrap_or(500), body }
            }
            Some(_) => Claim::Running,
        })
    }

    /// Keeps the answer of the request that claimed `key`.
    pub async fn keep_answer(&self, user: &str, key: &str, status: u16, body: &[u8]) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE idempotency_keys SET status = $3, body = $4 WHERE user_name = $1 AND key = $2")
            .bind(user).bind(key).bind(i64::from(status)).bind(body)
            .execute(pool).await.map(|_| ()))
        .context("keeping an idempotent answer")?;
        Ok(())
    }

    /// Gives up a claim whose request failed on the server's side, so a
    /// retry runs again.
    pub async fn release_key(&self, user: &str, key: &str) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_name = $1 AND key = $2 AND status IS NULL")
            .bind(user).bind(key).execute(pool).await.map(|_| ()))
        .context("releasing an idempotency key")?;
        Ok(())
    }

    /// Deletes answers kept before `cutoff` (housekeeping).
    pub async fn forget_old_answers(&self, cutoff: Micros) -> Result<u64> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(cutoff).execute(pool).await.map(|r| r.rows_affected()))
        .context("pruning idempotency keys")?;
        Ok(done)
    }
}
