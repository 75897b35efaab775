//! SQLite reads on connections tessera holds itself (rusqlite), not on
//! sqlx's. sqlx-sqlite runs each connection on a thread of its own and sends
//! every row back over a channel: a thread hand-off per row, which cost
//! more than the statement itself (issue 17, `BENCHMARKS.md` S16). Here a
//! statement runs on a connection leased for the request and its rows come
//! back copied into one buffer; statements are prepared once per connection
//! and cached.
//!
//! Where it runs: the typical read takes well under a millisecond, less
//! than a hop to another thread and back costs, so a statement first runs
//! on the async worker that asked for it, with a budget of
//! [`INLINE_BUDGET`]. One that runs past it is stopped (by the progress
//! handler) and run again on tokio's blocking pool, so a long read holds a
//! worker for at most the budget. A connection not yet open is opened
//! there too.
//!
//! Writes stay on sqlx's pool, so the two share the file as any two SQLite
//! connections do: WAL lets readers see the last commit while a writer
//! works. Readers open the file read-only.
//!
//! `statement_timeout` (see `limits`) bounds a lease as it bounds a sqlx
//! checkout: a progress handler interrupts the connection once the lease
//! is older than the limit. Arming it is a store to an atomic, not a round
//! trip to another thread.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use sea_query::{OptionEnum, Value};
use sqlx::error::{DatabaseError, ErrorKind};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::dialect::Statement;

/// Most read connections open at once. Data work is admitted by the
/// store's share (`share.rs`) before it leases one, so this is a ceiling
/// that is rarely reached; an open connection costs its page cache.
const MAX_READERS: usize = 8;
/// How long a request waits for a free connection before it is refused.
const LEASE_WAIT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection: one per query shape in use.
const CACHED_STATEMENTS: usize = 128;
/// Virtual machine steps between two looks at the clock (a look costs
/// about as much as a few dozen steps).
const STEPS: i32 = 1_000;
/// How long a statement may run on an async worker thread before it is
/// stopped and run again on the blocking pool (see [`Lease::fetch`]).
const INLINE_BUDGET: Duration = Duration::from_micros(500);
/// A deadline that never comes.
const UNARMED: u64 = u64::MAX;

/// The read connections of one SQLite file.
pub struct Readers {
    settings: Arc<Settings>,
    idle: Mutex<Vec<Reader>>,
    slots: Semaphore,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.settings.path).finish_non_exhaustive()
    }
}

/// How to open a connection, shared with the blocking threads.
struct Settings {
    path: PathBuf,
    busy_timeout: Duration,
    limit: Option<Duration>,
    /// Deadlines are microseconds since this instant.
    epoch: Instant,
}

/// One open connection and the deadline its progress handler watches.
struct Reader {
    conn: Connection,
    deadline: Arc<AtomicU64>,
}

/// A connection leased for one request; it goes back idle when dropped,
/// its read transaction (if any) ended.
pub struct Lease<'a> {
    readers: &'a Readers,
    reader: Option<Reader>,
    /// When the lease's `statement_timeout` runs out, in `Settings::epoch` micros.
    deadline: u64,
    /// Whether the first statement opens a transaction, so that every
    /// statement of the lease sees one snapshot.
    snapshot: bool,
    _slot: SemaphorePermit<'a>,
}

/// The rows of one statement: every cell's text in one buffer.
#[derive(Debug, Default)]
pub struct TextRows {
    text: String,
    /// Per cell, row after row: its span of `text`, or none for NULL.
    cells: Vec<Option<(u32, u32)>>,
    width: usize,
}

impl Readers {
    /// Read connections to the SQLite file at `path`, opened as needed.
    pub fn new(path: PathBuf, busy_timeout: Duration, limit: Option<Duration>) -> Self {
        Self {
            settings: Arc::new(Settings { path, busy_timeout, limit, epoch: Instant::now() }),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(MAX_READERS),
        }
    }

    /// Leases a connection; `snapshot` asks for one transaction across its
    /// statements.
    pub async fn lease(&self, snapshot: bool) -> Result<Lease<'_>, sqlx::Error> {
        let slot = tokio::time::timeout(LEASE_WAIT, self.slots.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let deadline = match self.settings.limit {
            Some(limit) => self.settings.micros(Instant::now() + limit),
            None => UNARMED,
        };
        let reader = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Ok(Lease { readers: self, reader, deadline, snapshot, _slot: slot })
    }
}

impl Settings {
    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(UNARMED)
    }

    fn open(self: &Arc<Self>) -> rusqlite::Result<Reader> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
        let deadline = Arc::new(AtomicU64::new(UNARMED));
        let (watched, settings) = (deadline.clone(), self.clone());
        conn.progress_handler(
            STEPS,
            Some(move || settings.micros(Instant::now()) >= watched.load(Ordering::Relaxed)),
        )?;
        Ok(Reader { conn, deadline })
    }
}

impl Lease<'_> {
    /// Runs one statement and returns its rows.
    pub async fn fetch(&mut self, statement: Statement) -> Result<TextRows, sqlx::Error> {
        let values: Vec<SqlValue> = statement
            .values
            .0
            .into_iter()
            .map(bound)
            .collect::<rusqlite::Result<_>>()
            .map_err(failure)?;
        let sql = statement.sql;
        if let Some(rows) = self.inline(&sql, &values) {
            return rows.map_err(failure);
        }
        let reader = self.reader.take();
        let settings = self.readers.settings.clone();
        let (deadline, snapshot) = (self.deadline, self.snapshot);
        let (reader, rows) = tokio::task::spawn_blocking(move || {
            let reader = match reader {
                Some(reader) => reader,
                None => match settings.open() {
                    Ok(reader) => reader,
                    Err(e) => return (None, Err(e)),
                },
            };
            reader.deadline.store(deadline, Ordering::Relaxed);
            let rows = reader.run(&sql, &values, snapshot);
            (Some(reader), rows)
        })
        .await
        .map_err(|_| sqlx::Error::WorkerCrashed)?;
        self.reader = reader;
        rows.map_err(failure)
    }

    /// Runs the statement on this thread, on the lease's open connection,
    /// for at most [`INLINE_BUDGET`]. `None` if there is no open connection
    /// yet or the budget ran out first (a read has no effects, so it can
    /// run again).
    fn inline(&self, sql: &str, values: &[SqlValue]) -> Option<rusqlite::Result<TextRows>> {
        let reader = self.reader.as_ref()?;
        let budget = self.readers.settings.micros(Instant::now() + INLINE_BUDGET);
        reader.deadline.store(budget.min(self.deadline), Ordering::Relaxed);
        let rows = reader.run(sql, values, self.snapshot);
        let stopped = rows.as_ref().is_err_and(|e| {
            e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
        });
        // Stopped by the lease's own deadline, it is the statement_timeout.
        (!stopped || budget >= self.deadline).then_some(rows)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(reader) = self.reader.take() else { return };
        reader.deadline.store(UNARMED, Ordering::Relaxed);
        // Ending a read transaction only lets go of its snapshot: no I/O.
        if !reader.conn.is_autocommit() && reader.conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).push(reader);
    }
}

impl Reader {
    fn run(&self, sql: &str, values: &[SqlValue], snapshot: bool) -> rusqlite::Result<TextRows> {
        if snapshot && self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN")?;
        }
        let mut prepared = self.conn.prepare_cached(sql)?;
        let width = prepared.column_count();
        let mut rows = prepared.query(rusqlite::params_from_iter(values))?;
        let mut out = TextRows { width, ..TextRows::default() };
        while let Some(row) = rows.next()? {
            for c in 0..width {
                let cell = match row.get_ref(c)? {
                    ValueRef::Null => None,
                    ValueRef::Text(bytes) => {
                        let text = std::str::from_utf8(bytes)
                            .map_err(|e| rusqlite::Error::Utf8Error(c, e))?;
                        let start = out.text.len();
                        out.text.push_str(text);
                        Some((offset(start)?, offset(out.text.len())?))
                    }
                    other => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            c,
                            String::new(),
                            other.data_type(),
                        ));
                    }
                };
                out.cells.push(cell);
            }
        }
        Ok(out)
    }
}

/// A buffer offset as stored; an answer is capped far below 4 GiB.
fn offset(at: usize) -> rusqlite::Result<u32> {
    u32::try_from(at).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, at as i64))
}

/// A sea-query value as SQLite binds it, the way sea-query-sqlx binds it.
fn bound(value: Value) -> rusqlite::Result<SqlValue> {
    let int = |n: Option<i64>| n.map_or(SqlValue::Null, SqlValue::Integer);
    Ok(match value {
        Value::Bool(b) => int(b.map(i64::from)),
        Value::TinyInt(n) => int(n.map(i64::from)),
        Value::SmallInt(n) => int(n.map(i64::from)),
        Value::Int(n) => int(n.map(i64::from)),
        Value::BigInt(n) => int(n),
        Value::TinyUnsigned(n) => int(n.map(i64::from)),
        Value::SmallUnsigned(n) => int(n.map(i64::from)),
        Value::Unsigned(n) => int(n.map(i64::from)),
        Value::BigUnsigned(n) => match n.map(i64::try_from).transpose() {
            Ok(n) => int(n),
            Err(_) => return Err(rusqlite::Error::ToSqlConversionFailure("u64 past i64".into())),
        },
        Value::Float(f) => f.map_or(SqlValue::Null, |f| SqlValue::Real(f64::from(f))),
        Value::Double(f) => f.map_or(SqlValue::Null, SqlValue::Real),
        Value::String(s) => s.map_or(SqlValue::Null, SqlValue::Text),
        Value::Enum(OptionEnum::Some(e)) => SqlValue::Text(e.value.into_owned()),
        Value::Enum(OptionEnum::None(_)) => SqlValue::Null,
        Value::Char(c) => c.map_or(SqlValue::Null, |c| SqlValue::Text(c.to_string())),
        Value::Bytes(b) => b.map_or(SqlValue::Null, SqlValue::Blob),
    })
}

impl TextRows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.cells.len().checked_div(self.width).unwrap_or(0)
    }

    /// The `n` text cells of row `r`.
    pub fn cells(&self, r: usize, n: usize) -> Vec<Option<Cow<'_, str>>> {
        let row = &self.cells[r * self.width..][..n.min(self.width)];
        row.iter()
            .map(|cell| cell.map(|(a, b)| Cow::Borrowed(&self.text[a as usize..b as usize])))
            .collect()
    }
}

/// A rusqlite error as the rest of the store sees a database error: SQLite's
/// extended code and message, so `exec::Failure` reads both alike.
fn failure(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(e, message) => {
            sqlx::Error::Database(Box::new(SqliteFault {
                code: e.extended_code,
                message: message.unwrap_or_else(|| e.to_string()),
            }))
        }
        other => sqlx::Error::Decode(Box::new(other)),
    }
}

/// An error SQLite reported on a read connection.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct SqliteFault {
    code: i32,
    message: String,
}

impl DatabaseError for SqliteFault {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_query::Values;
    use sea_query_sqlx::SqlxValues;

    use super::*;
    use crate::store::exec::Failure;

    /// Counts to `n` the slow way: a statement that runs for as long as asked.
    fn count_to(n: i64) -> Statement {
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) \
                   SELECT CAST(count(*) AS TEXT), NULL FROM c";
        Statement { sql: sql.into(), values: SqlxValues(Values(vec![Value::BigInt(Some(n))])) }
    }

    fn readers(dir: &tempfile::TempDir, limit: Option<Duration>) -> Readers {
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap().execute_batch("PRAGMA journal_mode = WAL").unwrap();
        Readers::new(path, Duration::from_secs(1), limit)
    }

    #[tokio::test]
    async fn a_read_past_the_inline_budget_runs_again_off_the_workers_and_answers() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir, None);
        let mut lease = readers.lease(false).await.unwrap();
        // The first statement opens the connection; the second runs inline,
        // is stopped at the budget (it takes tens of milliseconds) and runs again.
        for _ in 0..2 {
            let started = Instant::now();
            let rows = lease.fetch(count_to(1_000_000)).await.unwrap();
            assert!(started.elapsed() > INLINE_BUDGET);
            assert_eq!((rows.len(), rows.cells(0, 2)), (1, vec![Some("1000000".into()), None]));
        }
    }

    #[tokio::test]
    async fn a_read_past_statement_timeout_is_stopped_inline_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir, Some(Duration::from_millis(50)));
        let mut lease = readers.lease(false).await.unwrap();
        for _ in 0..2 {
            let error = lease.fetch(count_to(i64::MAX)).await.unwrap_err();
            assert_eq!(Failure::of(&error), Failure::TimedOut, "{error}");
        }
    }

    #[tokio::test]
    async fn a_lease_back_in_the_pool_has_ended_its_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir, None);
        let mut lease = readers.lease(true).await.unwrap();
        lease.fetch(count_to(1)).await.unwrap();
        assert!(!lease.reader.as_ref().unwrap().conn.is_autocommit());
        drop(lease);
        let idle = readers.idle.lock().unwrap();
        assert!(idle.len() == 1 && idle[0].conn.is_autocommit());
    }
}
