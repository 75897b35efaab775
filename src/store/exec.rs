//! The data path's one door into the database: a [`Statement`] built with
//! sea-query (see [`super::dialect`]) runs inside a [`Db`] (one transaction,
//! or the pool for a lone read) and comes back as [`Rows`] of text cells.
//!
//! On SQLite, reads run on the store's own read connections (see
//! [`super::readers`]); a request that writes runs on sqlx's pool and begins
//! `IMMEDIATE`, taking the write lock up front rather than failing to
//! upgrade a read lock later. A request of one read runs as its single
//! statement, without BEGIN/COMMIT: one statement already sees one snapshot.

use std::borrow::Cow;

use sea_query_sqlx::SqlxValues;
use sqlx::error::ErrorKind;
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, IntoArguments, PgPool, Postgres, Row, Sqlite, Transaction};

use super::dialect::Statement;
use super::readers::{Lease, TextRows};
use super::{Backend, Store};

/// What a request will do, which decides how its transaction begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// One read statement: no transaction needed.
    OneRead,
    /// Several reads: one snapshot for all of them.
    Reads,
    /// Anything that writes.
    Writes,
}

/// An open unit of work: all of it commits, or none of it.
pub struct Db<'a>(Conn<'a>);

enum Conn<'a> {
    SqliteRead(Lease<'a>),
    PgPool(&'a PgPool),
    SqliteTx(Transaction<'static, Sqlite>),
    PgTx(Transaction<'static, Postgres>),
}

/// The rows a statement returned.
pub struct Rows(List);

enum List {
    Text(TextRows),
    Sqlite(Vec<SqliteRow>),
    /// The rows, and per column whether it is a `timestamptz`.
    Pg(Vec<PgRow>, Vec<bool>),
}

/// One cell read as text, borrowed from its row where it can be.
pub type Cell<'a> = Option<Cow<'a, str>>;

impl Store {
    /// Begins the unit of work a request needs.
    pub async fn begin(&self, work: Work) -> Result<Db<'_>, sqlx::Error> {
        Ok(Db(match (self, work) {
            (Self::Sqlite(_, Some(readers)), Work::OneRead) => {
                Conn::SqliteRead(readers.lease(false).await?)
            }
            (Self::Sqlite(_, Some(readers)), Work::Reads) => {
                Conn::SqliteRead(readers.lease(true).await?)
            }
            // An in-memory database lives in sqlx's pool alone.
            (Self::Sqlite(pool, None), Work::OneRead | Work::Reads) => {
                Conn::SqliteTx(pool.begin().await?)
            }
            (Self::Sqlite(pool, _), Work::Writes) => {
                Conn::SqliteTx(pool.begin_with("BEGIN IMMEDIATE").await?)
            }
            (Self::Postgres(pool), Work::OneRead) => Conn::PgPool(pool),
            (Self::Postgres(pool), Work::Writes) => Conn::PgTx(pool.begin().await?),
            (Self::Postgres(pool), Work::Reads) => Conn::PgTx(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
            ),
        }))
    }
}

impl Db<'_> {
    /// The dialect to build statements in.
    pub fn backend(&self) -> Backend {
        match self.0 {
            Conn::SqliteRead(_) | Conn::SqliteTx(_) => Backend::Sqlite,
            Conn::PgPool(_) | Conn::PgTx(_) => Backend::Postgres,
        }
    }

    /// Runs one statement and returns its rows.
    pub async fn fetch(&mut self, statement: Statement) -> Result<Rows, sqlx::Error> {
        Ok(Rows(match &mut self.0 {
            Conn::SqliteRead(lease) => List::Text(lease.fetch(statement).await?),
            Conn::SqliteTx(tx) => List::Sqlite(query(statement).fetch_all(&mut **tx).await?),
            Conn::PgPool(pool) => pg_list(query(statement).fetch_all(*pool).await?),
            Conn::PgTx(tx) => pg_list(query(statement).fetch_all(&mut **tx).await?),
        }))
    }

    /// Commits everything run so far. A read lease has nothing to commit:
    /// returning it ends its snapshot.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Conn::SqliteTx(tx) => tx.commit().await,
            Conn::PgTx(tx) => tx.commit().await,
            Conn::SqliteRead(_) | Conn::PgPool(_) => Ok(()),
        }
    }
}

impl Rows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        match &self.0 {
            List::Text(rows) => rows.len(),
            List::Sqlite(rows) => rows.len(),
            List::Pg(rows, _) => rows.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `n` text cells of row `r`, in select order.
    pub fn cells(&self, r: usize, n: usize) -> Result<Vec<Cell<'_>>, sqlx::Error> {
        match &self.0 {
            List::Text(rows) => Ok(rows.cells(r, n)),
            List::Sqlite(rows) => (0..n).map(|c| text(&rows[r], c)).collect(),
            List::Pg(rows, stamps) => (0..n)
                .map(|c| match stamps.get(c) {
                    Some(true) => pg_timestamp(&rows[r], c),
                    _ => text(&rows[r], c),
                })
                .collect(),
        }
    }
}

/// `statement` as sqlx runs it.
fn query<DB: Database>(statement: Statement) -> Query<'static, DB, SqlxValues>
where
    SqlxValues: for<'q> IntoArguments<DB>,
{
    // The text comes from sea-query over catalog identifiers; every value is bound.
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), statement.values)
}

/// Cell `c` of a row, as text. Every column the data path selects is text
/// (see `Backend::read_text`), so the type check per cell is skipped; a
/// value that is not UTF-8 still fails to decode.
fn text<R: Row>(row: &R, c: usize) -> Result<Cell<'_>, sqlx::Error>
where
    for<'r> Option<&'r str>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(row.try_get_unchecked::<Option<&str>, _>(c)?.map(Cow::Borrowed))
}

/// PostgreSQL rows, with which of their columns are `timestamptz`: a
/// property of the statement, read once rather than per cell.
fn pg_list(rows: Vec<PgRow>) -> List {
    use sqlx::{Column, TypeInfo};
    let stamps = rows.first().map_or_else(Vec::new, |row| {
        row.columns().iter().map(|column| column.type_info().name() == "TIMESTAMPTZ").collect()
    });
    List::Pg(rows, stamps)
}

/// Cell `c` of a PostgreSQL row, a `timestamptz` (selected as it is, see
/// `Backend::read_text`), as text: as to_char would write it in UTC.
fn pg_timestamp(row: &PgRow, c: usize) -> Result<Cell<'_>, sqlx::Error> {
    // On the wire: microseconds since 2000-01-01 UTC, or ±infinity as i64::MAX/MIN.
    let Some(micros) = row.try_get_unchecked::<Option<i64>, _>(c)? else { return Ok(None) };
    if micros == i64::MAX || micros == i64::MIN {
        return Ok(None); // to_char of ±infinity is NULL
    }
    let at = POSTGRES_EPOCH_MICROS
        .checked_add(micros)
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(|| {
            sqlx::Error::Decode(format!("a timestamp beyond chrono's range ({micros} µs)").into())
        })?;
    Ok(Some(Cow::Owned(to_char_utc(&at.naive_utc()))))
}

/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix microseconds.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// `at` as PostgreSQL's `to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`:
/// the year as at least four digits, a year before the common era by its
/// number (1 BC is astronomical year 0) without a sign, as to_char does.
/// Written digit by digit: `format!` cost as much as to_char did.
fn to_char_utc(at: &chrono::NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let year = at.year().unsigned_abs() + u32::from(at.year() <= 0);
    let mut out = String::with_capacity(27);
    if year > 9999 {
        out.push_str(&year.to_string());
    } else {
        digits(&mut out, year, 4);
    }
    let parts = [
        ('-', at.month(), 2),
        ('-', at.day(), 2),
        ('T', at.hour(), 2),
        (':', at.minute(), 2),
        (':', at.second(), 2),
        ('.', at.nanosecond() / 1000, 6),
    ];
    for (before, n, width) in parts {
        out.push(before);
        digits(&mut out, n, width);
    }
    out.push('Z');
    out
}

/// The last `width` decimal digits of `n`, zero-padded.
fn digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = n / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// What a failed statement means, whichever database said it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A unique or primary key is taken.
    Duplicate,
    /// A NOT NULL column got no value.
    MissingValue,
    /// A foreign key, check or exclusion constraint refused the row.
    BrokenRule,
    /// A value is out of range or malformed for its column.
    BadValue,
    /// A concurrent transaction won (serialization failure, deadlock).
    Contention,
    /// The database is busy or locked past its wait.
    Busy,
    /// The statement ran past `statement_timeout` and was stopped.
    TimedOut,
    /// Anything else: the server's problem, not the client's.
    Other,
}

impl Failure {
    /// Classifies an error of either database.
    pub fn of(error: &sqlx::Error) -> Self {
        let sqlx::Error::Database(e) = error else { return Self::Other };
        match e.kind() {
            ErrorKind::UniqueViolation => return Self::Duplicate,
            ErrorKind::NotNullViolation => return Self::MissingValue,
            ErrorKind::ForeignKeyViolation
            | ErrorKind::CheckViolation
            | ErrorKind::ExclusionViolation => return Self::BrokenRule,
            _ => {}
        }
        match e.code().as_deref().unwrap_or_default() {
            // PostgreSQL class 22 (data exception), SQLite 20 (datatype mismatch).
            code if code.starts_with("22") || code == "20" => Self::BadValue,
            // SQLite's SUM of whole numbers beyond 64 bits.
            "1" if e.message() == "integer overflow" => Self::BadValue,
            // PostgreSQL serialization failure and deadlock.
            "40001" | "40P01" => Self::Contention,
            // SQLite busy or locked (extended codes included).
            "5" | "6" | "517" | "261" | "262" => Self::Busy,
            // PostgreSQL query_canceled (statement_timeout), SQLite interrupt.
            "57014" | "9" => Self::TimedOut,
            _ => Self::Other,
        }
    }
}
