//! Last use of sessions, written in batches: one statement for every session
//! an instance saw since its last flush, not one per session (design §4.3).

use anyhow::{Context, Result};

use super::Store;
use crate::clock::Micros;

/// The most sessions one statement carries; a flush of more takes several.
/// Small, because SQLite parses the statement's JSON array into a tree with
/// its own (C) allocator, on the connection's thread, whose arena keeps the
/// peak: at 5,000 a busy server's RSS grew by megabytes per pooled
/// connection over a few flushes (S9 runs), at 500 it stays flat.
const CHUNK: usize = 500;

impl Store {
    /// Moves each session's last use forward to its time (never back), for
    /// all of `uses` in one statement per [`CHUNK`]. The values travel bound:
    /// two arrays on PostgreSQL, one JSON array on SQLite.
    pub async fn touch_sessions(&self, uses: &[(String, Micros)]) -> Result<()> {
        for chunk in uses.chunks(CHUNK) {
            match self {
                Self::Postgres(pool) => {
                    let (ids, times): (Vec<&str>, Vec<Micros>) =
                        chunk.iter().map(|(id, at)| (id.as_str(), *at)).unzip();
                    sqlx::query(
                        "UPDATE sessions SET last_used_at = v.t \
                         FROM unnest($1::text[], $2::bigint[]) AS v(id, t) \
                         WHERE sessions.id = v.id AND sessions.last_used_at < v.t",
                    )
                    .bind(ids)
                    .bind(times)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
                }
                Self::Sqlite(pool, _) => {
                    let json = serde_json::to_string(chunk).context("encoding session uses")?;
                    sqlx::query(
                        "UPDATE sessions SET last_used_at = v.t \
                         FROM (SELECT value ->> 0 AS id, value ->> 1 AS t FROM json_each($1)) AS v \
                         WHERE sessions.id = v.id AND sessions.last_used_at < v.t",
                    )
                    .bind(json)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
                }
            }
            .context("recording the last use of sessions")?;
        }
        Ok(())
    }
}
