//! Execute and render: a [`Plan`] runs in one transaction (all of it, or
//! none of it) and its rows are written straight into the response body.
//!
//! On SQLite a request that writes begins `IMMEDIATE`, taking the write lock
//! up front rather than failing to upgrade a read lock later. A request of
//! one query alias runs as its single statement, without BEGIN/COMMIT: one
//! statement already sees one snapshot.

use std::time::Instant;

use sea_query::Expr;
use sqlx::error::ErrorKind;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};

use super::plan::{AliasPlan, Plan, Planned, QueryPlan, WriteRow};
use super::sql::{self, Built, Select, value_expr};
use super::values::{Scalar, write_cell, write_str};
use crate::catalog::{Datasource, Who};
use crate::error::ApiError;
use crate::store::{Backend, Store};

/// Who writes, and when: the WHO values of every row of one request.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub user: String,
    /// One instant per request, ISO 8601 UTC with microseconds.
    pub now: String,
}

enum Db<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    SqliteTx(Transaction<'static, Sqlite>),
    PgTx(Transaction<'static, Postgres>),
}

enum Rows {
    Sqlite(Vec<SqliteRow>),
    Pg(Vec<PgRow>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Self::Sqlite(rows) => rows.len(),
            Self::Pg(rows) => rows.len(),
        }
    }

    fn cell(&self, row: usize, column: usize) -> Result<Option<&str>, sqlx::Error> {
        match self {
            Self::Sqlite(rows) => rows[row].try_get(column),
            Self::Pg(rows) => rows[row].try_get(column),
        }
    }
}

impl<'a> Db<'a> {
    async fn open(store: &'a Store, plan: &Plan) -> Result<Self, sqlx::Error> {
        let single_read = plan.aliases.len() == 1 && !plan.writes;
        Ok(match (store, single_read) {
            (Store::Sqlite(pool), true) => Self::SqlitePool(pool),
            (Store::Postgres(pool), true) => Self::PgPool(pool),
            (Store::Sqlite(pool), false) if plan.writes => {
                Self::SqliteTx(pool.begin_with("BEGIN IMMEDIATE").await?)
            }
            (Store::Sqlite(pool), false) => Self::SqliteTx(pool.begin().await?),
            (Store::Postgres(pool), false) if plan.writes => Self::PgTx(pool.begin().await?),
            // Several queries and no writes: one snapshot for all of them.
            (Store::Postgres(pool), false) => Self::PgTx(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
            ),
        })
    }

    fn backend(&self) -> Backend {
        match self {
            Self::SqlitePool(_) | Self::SqliteTx(_) => Backend::Sqlite,
            Self::PgPool(_) | Self::PgTx(_) => Backend::Postgres,
        }
    }

    async fn fetch(&mut self, (sql, values): Built) -> Result<Rows, sqlx::Error> {
        // The text comes from sea-query over catalog identifiers; every value is bound.
        let sql = sqlx::AssertSqlSafe(sql);
        Ok(match self {
            Self::SqlitePool(pool) => {
                Rows::Sqlite(sqlx::query_with(sql, values).fetch_all(*pool).await?)
            }
            Self::SqliteTx(tx) => {
                Rows::Sqlite(sqlx::query_with(sql, values).fetch_all(&mut **tx).await?)
            }
            Self::PgPool(pool) => Rows::Pg(sqlx::query_with(sql, values).fetch_all(*pool).await?),
            Self::PgTx(tx) => Rows::Pg(sqlx::query_with(sql, values).fetch_all(&mut **tx).await?),
        })
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::SqliteTx(tx) => tx.commit().await,
            Self::PgTx(tx) => tx.commit().await,
            Self::SqlitePool(_) | Self::PgPool(_) => Ok(()),
        }
    }
}

/// Runs `plan` in one transaction and renders the response body
/// `{"status":"OK","data":{ALIAS:{...}}}`, aliases in request order. Any
/// error rolls everything back.
pub async fn execute(store: &Store, plan: &Plan, stamp: &Stamp) -> Result<Vec<u8>, ApiError> {
    let mut db = Db::open(store, plan).await.map_err(|e| db_error(e, "the request"))?;
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(br#"{"status":"OK","data":{"#);
    for (n, alias) in plan.aliases.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_str(&mut out, &alias.alias);
        out.push(b':');
        match &alias.action {
            Planned::Query(query) => run_query(&mut db, alias, query, &mut out).await?,
            Planned::Post(rows) => run_post(&mut db, alias, rows, stamp, &mut out).await?,
        }
    }
    db.commit().await.map_err(|e| db_error(e, "the request"))?;
    out.extend_from_slice(b"}}");
    Ok(out)
}

async fn run_query(
    db: &mut Db<'_>,
    alias: &AliasPlan,
    query: &QueryPlan,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let ds = &alias.ds;
    let select = Select {
        ds,
        columns: &query.columns,
        filter: &query.filter,
        sort: &query.sort,
        offset: query.offset,
        limit: query.limit,
    };
    let built = sql::select(&select, db.backend());
    let started = Instant::now();
    let at = || format!("Alias {}", alias.alias);
    let rows = db.fetch(built).await.map_err(|e| db_error(e, &at()))?;
    let elapsed = started.elapsed().as_millis();
    out.extend_from_slice(br#"{"data":["#);
    for r in 0..rows.len() {
        if r > 0 {
            out.push(b',');
        }
        match &rows {
            Rows::Sqlite(list) => {
                let packed: &str = list[r].try_get(0).map_err(|e| db_error(e, &at()))?;
                let cells = sql::unpack(packed).map_err(|e| {
                    ApiError::Internal(anyhow::anyhow!("{}: a packed row is not JSON: {e}", at()))
                })?;
                let cell = |c: usize| Ok(cells.get(c).and_then(|cell| cell.0.as_deref()));
                write_cells(out, ds, &query.columns, cell, "Q").map_err(|e| db_error(e, &at()))?;
            }
            Rows::Pg(_) => {
                write_row(out, ds, &query.columns, &rows, r, "Q")
                    .map_err(|e| db_error(e, &at()))?;
            }
        }
    }
    out.extend_from_slice(
        format!(r#"],"queryElapsed":{elapsed},"rowsFetched":{}}}"#, rows.len()).as_bytes(),
    );
    Ok(())
}

fn write_row(
    out: &mut Vec<u8>,
    ds: &Datasource,
    columns: &[usize],
    rows: &Rows,
    r: usize,
    rs: &str,
) -> Result<(), sqlx::Error> {
    write_cells(out, ds, columns, |c| rows.cell(r, c), rs)
}

/// Writes one row object from its cells' texts, then `"_rs"`.
fn write_cells<'a>(
    out: &mut Vec<u8>,
    ds: &Datasource,
    columns: &[usize],
    cell: impl Fn(usize) -> Result<Option<&'a str>, sqlx::Error>,
    rs: &str,
) -> Result<(), sqlx::Error> {
    out.push(b'{');
    for (c, &i) in columns.iter().enumerate() {
        let attr = &ds.attributes[i];
        write_str(out, &attr.code);
        out.push(b':');
        write_cell(out, attr.kind, cell(c)?);
        out.push(b',');
    }
    out.extend_from_slice(br#""_rs":""#);
    out.extend_from_slice(rs.as_bytes());
    out.extend_from_slice(b"\"}");
    Ok(())
}

fn who_index(ds: &Datasource, who: Who) -> usize {
    ds.attributes.iter().position(|a| a.who == Some(who)).unwrap_or(ds.attributes.len() - 1)
}

/// The statement of one post row, WHO columns included.
pub fn row_statement(
    ds: &Datasource,
    row: &WriteRow,
    stamp: &Stamp,
    backend: Backend,
) -> Option<Built> {
    let user = || Scalar::Text(stamp.user.clone()).to_expr(backend);
    let now = || Scalar::DateTime(stamp.now.clone()).to_expr(backend);
    let assigns = |list: &[(usize, Option<Scalar>)]| -> Vec<(usize, Expr)> {
        list.iter().map(|(i, v)| (*i, value_expr(ds, *i, v.as_ref(), backend))).collect()
    };
    let stamp_at = who_index(ds, Who::LastUpdateDate);
    match row {
        WriteRow::Insert(values) => {
            let mut values = assigns(values);
            values.push((who_index(ds, Who::CreatedBy), user()));
            values.push((who_index(ds, Who::CreationDate), now()));
            values.push((who_index(ds, Who::LastUpdatedBy), user()));
            values.push((stamp_at, now()));
            sql::insert(ds, values, backend)
        }
        WriteRow::Update { key, stamp, set } => {
            let mut values = assigns(set);
            values.push((who_index(ds, Who::LastUpdatedBy), user()));
            values.push((stamp_at, now()));
            Some(sql::update(ds, values, key, (stamp_at, stamp.as_ref()), backend))
        }
        WriteRow::Delete { key, stamp } => {
            Some(sql::delete(ds, key, (stamp_at, stamp.as_ref()), backend))
        }
    }
}

async fn run_post(
    db: &mut Db<'_>,
    alias: &AliasPlan,
    rows: &[WriteRow],
    stamp: &Stamp,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let ds = &alias.ds;
    let all: Vec<usize> = (0..ds.attributes.len()).collect();
    out.extend_from_slice(br#"{"data":["#);
    for (n, row) in rows.iter().enumerate() {
        let at = format!("Alias {}, row {}", alias.alias, n + 1);
        if n > 0 {
            out.push(b',');
        }
        let built = row_statement(ds, row, stamp, db.backend()).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("{at}: columns and values differ in number"))
        })?;
        let written = db.fetch(built).await.map_err(|e| db_error(e, &at))?;
        match row {
            WriteRow::Insert(_) | WriteRow::Update { .. } if written.len() == 1 => {
                write_row(out, ds, &all, &written, 0, "Q").map_err(|e| db_error(e, &at))?;
            }
            WriteRow::Delete { key, .. } if written.len() == 1 => {
                let columns: Vec<usize> = key.iter().map(|(i, _)| *i).collect();
                write_row(out, ds, &columns, &written, 0, "D").map_err(|e| db_error(e, &at))?;
            }
            WriteRow::Update { key, .. } | WriteRow::Delete { key, .. } if written.len() == 0 => {
                return Err(conflict(db, ds, key, &at).await);
            }
            _ => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "{at}: {} rows were written where one was meant",
                    written.len()
                )));
            }
        }
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// The 409 for an update or delete that matched no row: the row changed
/// since it was read, or it is gone.
async fn conflict(db: &mut Db<'_>, ds: &Datasource, key: &[(usize, Scalar)], at: &str) -> ApiError {
    let shown: Vec<String> = key
        .iter()
        .map(|(i, v)| {
            let value = match v {
                Scalar::Text(s) | Scalar::Num(s) | Scalar::Date(s) | Scalar::DateTime(s) => {
                    s.clone()
                }
                Scalar::Int(n) => n.to_string(),
                Scalar::Double(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            format!("{}={value}", ds.attributes[*i].code)
        })
        .collect();
    let row = format!("the {} row {}", ds.name, shown.join(", "));
    match db.fetch(sql::exists(ds, key, db.backend())).await {
        Ok(found) if found.len() > 0 => ApiError::Conflict(format!(
            "{at}: row changed since read: {row} has another lastUpdateDate. Query it again and retry; nothing was written."
        )),
        Ok(_) => ApiError::Conflict(format!("{at}: {row} no longer exists; nothing was written.")),
        Err(e) => db_error(e, at),
    }
}

/// A database failure as the client should see it: constraint and data
/// errors are the client's (400/409, with a plain message); the rest is ours.
fn db_error(error: sqlx::Error, at: &str) -> ApiError {
    if let sqlx::Error::Database(e) = &error {
        let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
        let unwritten = "nothing was written.";
        match e.kind() {
            ErrorKind::UniqueViolation => {
                return ApiError::Conflict(format!(
                    "{at}: a row with the same key or unique value already exists; {unwritten}"
                ));
            }
            ErrorKind::NotNullViolation => {
                return ApiError::Invalid(format!(
                    "{at}: the table needs a value that the row does not give; {unwritten}"
                ));
            }
            ErrorKind::ForeignKeyViolation
            | ErrorKind::CheckViolation
            | ErrorKind::ExclusionViolation => {
                return ApiError::Invalid(format!(
                    "{at}: the row breaks a rule of the table; {unwritten}"
                ));
            }
            _ => {}
        }
        // PostgreSQL class 22 (data exception), SQLite 20 (datatype mismatch).
        if code.starts_with("22") || code == "20" {
            return ApiError::Invalid(format!(
                "{at}: a value is out of range or malformed for its column; {unwritten}"
            ));
        }
        // PostgreSQL serialization failure and deadlock.
        if code == "40001" || code == "40P01" {
            return ApiError::Conflict(format!(
                "{at}: a concurrent request changed the same rows; retry. Nothing was written."
            ));
        }
        // SQLite busy or locked past the busy timeout.
        if matches!(code.as_str(), "5" | "6" | "517" | "261" | "262") {
            return ApiError::Unavailable(
                anyhow::Error::new(error).context(format!("{at}: database busy")),
            );
        }
    }
    ApiError::from(anyhow::Error::new(error).context(format!("running {at}")))
}
