//! Execute: a [`Plan`] runs in one unit of work (all of it, or none of it)
//! through the store's one door (`store::exec`), and its rows are rendered
//! straight into the response body.

use std::time::Instant;

use super::audit::{self, Change};
use super::bind::Filter;
use super::limits::MAX_ANSWER;
use super::plan::{AliasPlan, Plan, Planned, PlannedRow, QueryPlan, Stamp, WriteRow};
use super::render::{Form, write_fields, write_row, write_str};
use super::sql;
use crate::catalog::Datasource;
use crate::catalog::values::{Scalar, from_text};
use crate::error::ApiError;
use crate::store::Store;
use crate::store::audit::Tail;
use crate::store::exec::{Cell, Db, Failure, Rows, Work};

/// Runs `plan` in one transaction and renders the response body
/// `{"status":"OK","data":{ALIAS:{...}}}`, aliases in request order. Any
/// error rolls everything back.
pub async fn execute(store: &Store, plan: &Plan, stamp: &Stamp) -> Result<Vec<u8>, ApiError> {
    let work = match (plan.writes, plan.aliases.len()) {
        (true, _) => Work::Writes,
        (false, 1) => Work::OneRead,
        (false, _) => Work::Reads,
    };
    let mut db = store.begin(work).await.map_err(|e| db_error(e, "the request"))?;
    let mut out = Vec::with_capacity(16 * 1024);
    let mut tail = None;
    out.extend_from_slice(br#"{"status":"OK","data":{"#);
    for (n, alias) in plan.aliases.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_str(&mut out, &alias.alias);
        out.push(b':');
        match &alias.action {
            Planned::Query(query) => run_query(&mut db, alias, query, &mut out).await?,
            Planned::Post(rows) => {
                run_post(&mut db, alias, rows, stamp, &mut tail, &mut out).await?;
            }
        }
        within_answer_cap(&out, &alias.alias)?;
    }
    db.commit().await.map_err(|e| db_error(e, "the request"))?;
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// Refuses an answer that has grown past [`MAX_ANSWER`] (design §4.8), so
/// one request cannot hold an unbounded buffer.
fn within_answer_cap(out: &[u8], alias: &str) -> Result<(), ApiError> {
    if out.len() <= MAX_ANSWER {
        return Ok(());
    }
    Err(ApiError::Invalid(format!(
        "The answer grew past {} MiB at alias {alias}: ask for fewer rows with \"limit\" and page with \"offset\", project fewer attributes, or spread the aliases over several requests. Nothing was written.",
        MAX_ANSWER >> 20
    )))
}

/// Writes row `r` of `rows`, whose cells are the attributes `columns`.
fn render_row(
    out: &mut Vec<u8>,
    ds: &Datasource,
    columns: &[usize],
    rows: &Rows,
    r: usize,
    rs: &str,
) -> Result<(), sqlx::Error> {
    let cells = rows.cells(r, columns.len())?;
    write_row(out, ds, columns, &cells, rs);
    Ok(())
}

async fn run_query(
    db: &mut Db<'_>,
    alias: &AliasPlan,
    query: &QueryPlan,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let ds = &alias.ds;
    let built = sql::select(ds, query, db.backend());
    let started = Instant::now();
    let at = || format!("Alias {}", alias.alias);
    let rows = db.fetch(built).await.map_err(|e| db_error(e, &at()))?;
    let elapsed = started.elapsed().as_millis();
    out.extend_from_slice(br#"{"data":["#);
    // A summary row: its group attributes, then its outputs.
    let fields: Option<Vec<(&str, Form)>> = query.summary.as_ref().map(|s| {
        let groups = s.groups.iter().map(|&i| {
            let attr = &ds.attributes[i];
            (attr.code.as_str(), Form::As(attr.kind))
        });
        groups.chain(s.outputs.iter().map(|o| (o.name.as_str(), o.form))).collect()
    });
    for r in 0..rows.len() {
        if r > 0 {
            out.push(b',');
        }
        match &fields {
            None => render_row(out, ds, &query.columns, &rows, r, "Q"),
            Some(fields) => {
                rows.cells(r, fields.len()).map(|cells| write_fields(out, fields, &cells, "Q"))
            }
        }
        .map_err(|e| db_error(e, &at()))?;
        within_answer_cap(out, &alias.alias)?;
    }
    out.extend_from_slice(
        format!(r#"],"queryElapsed":{elapsed},"rowsFetched":{}}}"#, rows.len()).as_bytes(),
    );
    Ok(())
}

async fn run_post(
    db: &mut Db<'_>,
    alias: &AliasPlan,
    rows: &[PlannedRow],
    stamp: &Stamp,
    tail: &mut Option<Tail>,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let ds = &alias.ds;
    let all: Vec<usize> = (0..ds.attributes.len()).collect();
    if ds.audit && tail.is_none() && !rows.is_empty() {
        // The chain's lock before any row lock, so writers queue rather than deadlock.
        let at = format!("Alias {}", alias.alias);
        *tail = Some(audit::tail(db).await.map_err(|e| db_error(e, &at))?);
    }
    out.extend_from_slice(br#"{"data":["#);
    for (n, planned) in rows.iter().enumerate() {
        let at = format!("Alias {}, row {}", alias.alias, n + 1);
        if n > 0 {
            out.push(b',');
        }
        let built = sql::row_statement(ds, planned, stamp, db.backend()).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("{at}: columns and values differ in number"))
        })?;
        let before = match &planned.row {
            WriteRow::Update { key, .. } if ds.audit => {
                let read = sql::row_by_key(ds, key, &planned.scope, db.backend());
                Some(db.fetch(read).await.map_err(|e| db_error(e, &at))?)
            }
            _ => None,
        };
        let written = db.fetch(built).await.map_err(|e| db_error(e, &at))?;
        let record = async |db: &mut Db<'_>, tail: &mut Option<Tail>, entry| {
            audit::record(db, tail, &entry).await.map_err(|e| db_error(e, &at))
        };
        match &planned.row {
            WriteRow::Insert(_) | WriteRow::Update { .. } if written.len() == 1 => {
                let cells = written.cells(0, all.len()).map_err(|e| db_error(e, &at))?;
                if !planned.check.is_empty() {
                    let key = key_of(ds, &cells).ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("{at}: the written key is unreadable"))
                    })?;
                    let check = sql::exists(ds, &key, &planned.check, db.backend());
                    if db.fetch(check).await.map_err(|e| db_error(e, &at))?.is_empty() {
                        return Err(ApiError::Forbidden(format!(
                            "Access Denied - {at}: the row would be outside what your roles may write in datasource {}; nothing was written.",
                            ds.name
                        )));
                    }
                }
                let shown: Vec<_> = planned.columns.iter().map(|&i| cells[i].clone()).collect();
                write_row(out, ds, &planned.columns, &shown, "Q");
                if ds.audit {
                    let old = match &before {
                        Some(rows) if !rows.is_empty() => {
                            Some(rows.cells(0, all.len()).map_err(|e| db_error(e, &at))?)
                        }
                        _ => None,
                    };
                    let change = if before.is_some() { Change::Update } else { Change::Insert };
                    let entry = audit::entry(ds, stamp, change, old.as_deref(), Some(&cells));
                    record(db, tail, entry).await?;
                }
            }
            WriteRow::Delete { key, .. } if written.len() == 1 => {
                let cells = written.cells(0, all.len()).map_err(|e| db_error(e, &at))?;
                let columns: Vec<usize> = key.iter().map(|(i, _)| *i).collect();
                let shown: Vec<_> = columns.iter().map(|&i| cells[i].clone()).collect();
                write_row(out, ds, &columns, &shown, "D");
                if ds.audit {
                    let entry = audit::entry(ds, stamp, Change::Delete, Some(&cells), None);
                    record(db, tail, entry).await?;
                }
            }
            WriteRow::Update { key, .. } | WriteRow::Delete { key, .. } if written.is_empty() => {
                return Err(conflict(db, ds, key, &planned.scope, &at).await);
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

/// The primary key of a row written back (every attribute, as text).
fn key_of(ds: &Datasource, cells: &[Cell<'_>]) -> Option<Vec<(usize, Scalar)>> {
    ds.attributes
        .iter()
        .enumerate()
        .filter(|(_, a)| a.primary_key)
        .map(|(i, a)| Some((i, from_text(a.kind, cells.get(i)?.as_deref()?)?)))
        .collect()
}

/// The 409 for an update or delete that matched no row: the row changed
/// since it was read, or it is gone.
async fn conflict(
    db: &mut Db<'_>,
    ds: &Datasource,
    key: &[(usize, Scalar)],
    scope: &[Filter],
    at: &str,
) -> ApiError {
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
    match db.fetch(sql::exists(ds, key, scope, db.backend())).await {
        Ok(found) if !found.is_empty() => ApiError::Conflict(format!(
            "{at}: row changed since read: {row} has another lastUpdateDate. Query it again and retry; nothing was written."
        )),
        Ok(_) => ApiError::Conflict(format!("{at}: {row} no longer exists; nothing was written.")),
        Err(e) => db_error(e, at),
    }
}

/// A database failure as the client should see it: constraint and data
/// errors are the client's (400/409, with a plain message); the rest is ours.
fn db_error(error: sqlx::Error, at: &str) -> ApiError {
    let unwritten = "nothing was written.";
    match Failure::of(&error) {
        Failure::Duplicate => ApiError::Conflict(format!(
            "{at}: a row with the same key or unique value already exists; {unwritten}"
        )),
        Failure::MissingValue => ApiError::Invalid(format!(
            "{at}: the table needs a value that the row does not give; {unwritten}"
        )),
        Failure::BrokenRule => {
            ApiError::Invalid(format!("{at}: the row breaks a rule of the table; {unwritten}"))
        }
        Failure::BadValue => ApiError::Invalid(format!(
            "{at}: a value is out of range or malformed for its column (or a Sum is beyond a 64-bit whole number); {unwritten}"
        )),
        Failure::Contention => ApiError::Conflict(format!(
            "{at}: a concurrent request changed the same rows; retry. Nothing was written."
        )),
        Failure::Busy => ApiError::Busy(format!(
            "{at}: the database is busy with other writes; retry in a moment. Nothing was written."
        )),
        Failure::TimedOut => ApiError::Busy(format!(
            "{at}: the database work ran past statement_timeout and was stopped; nothing was written. Narrow the filter, ask for fewer rows or aliases, or retry when the server is less busy."
        )),
        Failure::Other => {
            ApiError::from(anyhow::Error::new(error).context(format!("running {at}")))
        }
    }
}
