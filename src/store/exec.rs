//! The data path's one door into the database: a [`Statement`] built with
//! sea-query (see [`super::dialect`]) runs inside a [`Db`] (one transaction,
//! or the pool for a lone read) and comes back as [`Rows`] of text cells.
//!
//! On SQLite a request that writes begins `IMMEDIATE`, taking the write lock
//! up front rather than failing to upgrade a read lock later. A request of
//! one read runs as its single statement, without BEGIN/COMMIT: one
//! statement already sees one snapshot.

use std::borrow::Cow;

use sqlx::error::ErrorKind;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};

use super::dialect::Statement;
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
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    SqliteTx(Transaction<'static, Sqlite>),
    PgTx(Transaction<'static, Postgres>),
}

/// The rows a statement returned.
pub struct Rows {
    list: List,
    packed: bool,
}

enum List {
    Sqlite(Vec<SqliteRow>),
    Pg(Vec<PgRow>),
}

/// One cell read as text, borrowed from its row where it can be.
pub type Cell<'a> = Option<Cow<'a, str>>;

impl Store {
    /// Begins the unit of work a request needs.
    pub async fn begin(&self, work: Work) -> Result<Db<'_>, sqlx::Error> {
        Ok(Db(match (self, work) {
            (Self::Sqlite(pool), Work::OneRead) => Conn::SqlitePool(pool),
            (Self::Postgres(pool), Work::OneRead) => Conn::PgPool(pool),
            (Self::Sqlite(pool), Work::Writes) => {
                Conn::SqliteTx(pool.begin_with("BEGIN IMMEDIATE").await?)
            }
            (Self::Sqlite(pool), Work::Reads) => Conn::SqliteTx(pool.begin().await?),
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
            Conn::SqlitePool(_) | Conn::SqliteTx(_) => Backend::Sqlite,
            Conn::PgPool(_) | Conn::PgTx(_) => Backend::Postgres,
        }
    }

    /// Runs one statement and returns its rows.
    pub async fn fetch(&mut self, statement: Statement) -> Result<Rows, sqlx::Error> {
        let Statement { sql, values, packed } = statement;
        // The text comes from sea-query over catalog identifiers; every value is bound.
        let sql = sqlx::AssertSqlSafe(sql);
        let list = match &mut self.0 {
            Conn::SqlitePool(pool) => {
                List::Sqlite(sqlx::query_with(sql, values).fetch_all(*pool).await?)
            }
            Conn::SqliteTx(tx) => {
                List::Sqlite(sqlx::query_with(sql, values).fetch_all(&mut **tx).await?)
            }
            Conn::PgPool(pool) => List::Pg(sqlx::query_with(sql, values).fetch_all(*pool).await?),
            Conn::PgTx(tx) => List::Pg(sqlx::query_with(sql, values).fetch_all(&mut **tx).await?),
        };
        Ok(Rows { list, packed })
    }

    /// Commits everything run so far.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Conn::SqliteTx(tx) => tx.commit().await,
            Conn::PgTx(tx) => tx.commit().await,
            Conn::SqlitePool(_) | Conn::PgPool(_) => Ok(()),
        }
    }
}

impl Rows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        match &self.list {
            List::Sqlite(rows) => rows.len(),
            List::Pg(rows) => rows.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `n` text cells of row `r`, in select order.
    pub fn cells(&self, r: usize, n: usize) -> Result<Vec<Cell<'_>>, sqlx::Error> {
        match &self.list {
            List::Sqlite(rows) if self.packed => {
                let packed: &str = rows[r].try_get(0)?;
                let cells: Vec<Packed<'_>> =
                    serde_json::from_str(packed).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Ok(cells.into_iter().map(|c| c.0).collect())
            }
            List::Sqlite(rows) => (0..n).map(|c| text(&rows[r], c)).collect(),
            List::Pg(rows) => (0..n).map(|c| text(&rows[r], c)).collect(),
        }
    }
}

/// Cell `c` of a row, as text.
fn text<R: Row>(row: &R, c: usize) -> Result<Cell<'_>, sqlx::Error>
where
    for<'r> Option<&'r str>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(row.try_get::<Option<&str>, _>(c)?.map(Cow::Borrowed))
}

/// One cell of a packed row: borrowed from the row unless it had escapes.
#[derive(serde::Deserialize)]
struct Packed<'a>(#[serde(borrow)] Option<Cow<'a, str>>);

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
