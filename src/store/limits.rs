//! `statement_timeout` (design §3 `[network]`, §4.8) on both backends.
//!
//! PostgreSQL enforces it itself: every connection of the pool starts with
//! the `statement_timeout` setting, and a statement past it fails with
//! `57014` (query_canceled). SQLite has no such setting, and sqlx offers no
//! hook around one statement, so each connection gets a progress handler
//! (checked every [`STEPS`] virtual machine steps) that interrupts it once the
//! connection has been out of the pool for longer than the limit. On SQLite
//! the limit therefore bounds one checkout: a single statement, or a whole
//! request's transaction, which also bounds how long a writer holds the lock.
//! Time spent waiting for the write lock is bounded by `busy_timeout`, not by
//! this handler.

use std::time::{Duration, Instant};

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnection, SqlitePoolOptions};

/// Virtual machine steps between two looks at the clock.
const STEPS: i32 = 10_000;

/// PostgreSQL connections that start with `statement_timeout = limit`.
pub(super) fn postgres(options: PgConnectOptions, limit: Option<Duration>) -> PgConnectOptions {
    match limit {
        Some(limit) => {
            let ms = limit.as_millis().max(1).to_string();
            options.options([("statement_timeout", ms.as_str())])
        }
        None => options,
    }
}

/// A SQLite pool whose connections are interrupted `limit` after checkout.
pub(super) fn sqlite(options: SqlitePoolOptions, limit: Option<Duration>) -> SqlitePoolOptions {
    let Some(limit) = limit else { return options };
    options
        .after_connect(move |conn, _| Box::pin(async move { arm(conn, limit).await }))
        .before_acquire(move |conn, _: PoolConnectionMetadata| {
            Box::pin(async move { arm(conn, limit).await.map(|()| true) })
        })
}

/// Sets the connection's progress handler to give up `limit` from now.
async fn arm(conn: &mut SqliteConnection, limit: Duration) -> Result<(), sqlx::Error> {
    let deadline = Instant::now() + limit;
    conn.lock_handle().await?.set_progress_handler(STEPS, move || Instant::now() < deadline);
    Ok(())
}
