//! Plan: a parsed request bound to the grants the caller holds, one per
//! alias. Every attribute is resolved and every value typed here, before the
//! database is touched, so a bad row anywhere rejects the whole request.

use std::sync::Arc;

use serde_json::Value;

use super::bind::{self, Filter};
use super::filter::{Op, RawFilter};
use super::grant;
use super::request::{Action, ApiRequest, PostRow, Projection, QueryRequest, RowStatus};
use super::summary::{self, Summary};
use crate::catalog::values::{Scalar, from_json};
use crate::catalog::{Datasource, Family, Grant, Who};
use crate::clock::Micros;
use crate::config::Operation;
use crate::error::ApiError;

/// Who writes, and when: the WHO values of every row of one request.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub user: String,
    /// The caller's org and session, for the audit trail.
    pub org: String,
    pub session: String,
    /// One instant per request, ISO 8601 UTC with microseconds.
    pub now: String,
}

/// A whole request, ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub aliases: Vec<AliasPlan>,
    /// Whether any alias writes (SQLite then begins `IMMEDIATE`).
    pub writes: bool,
}

/// One alias, ready to run.
#[derive(Clone, Debug)]
pub struct AliasPlan {
    pub alias: String,
    pub ds: Arc<Datasource>,
    pub action: Planned,
}

/// A bound query or a list of bound writes.
#[derive(Clone, Debug)]
pub enum Planned {
    Query(QueryPlan),
    Post(Vec<PlannedRow>),
}

/// A bound query.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    /// Attribute indexes, in output order.
    pub columns: Vec<usize>,
    pub filter: Vec<Filter>,
    pub sort: Vec<(usize, bool)>,
    pub offset: u64,
    pub limit: u32,
    /// Groups and aggregates, or the distinct rows of `fetchDistinct`
    /// (design §1.4). When set, rows are summaries: `filter`, `offset` and
    /// `limit` apply as ever (the filter before grouping, offset and limit
    /// to the summary rows), and `sort` is the summary's own.
    pub summary: Option<Summary>,
}

/// `(attribute index, value)`; `None` is NULL.
pub type Assign = (usize, Option<Scalar>);

/// A bound post row. WHO columns are added when it runs.
#[derive(Clone, Debug)]
pub enum WriteRow {
    Insert(Vec<Assign>),
    Update { key: Vec<(usize, Scalar)>, stamp: Option<Scalar>, set: Vec<Assign> },
    Delete { key: Vec<(usize, Scalar)>, stamp: Option<Scalar> },
}

/// A post row with what its grant asks of it.
#[derive(Clone, Debug)]
pub struct PlannedRow {
    pub row: WriteRow,
    /// The rows the operation may touch (org and role filters), ANDed into
    /// an update's or delete's WHERE; a row outside is as if it did not exist.
    pub scope: Vec<Filter>,
    /// What an inserted or updated row must still satisfy (`WITH CHECK`).
    pub check: Vec<Filter>,
    /// The attributes the caller sees in the row written back.
    pub columns: Vec<usize>,
}

/// Binds `request` to `grants` (the caller's grant for each alias, in
/// order); relative dates are fixed at `now`.
pub fn plan(request: ApiRequest, grants: Vec<Grant>, now: Micros) -> Result<Plan, ApiError> {
    let writes = request.aliases.iter().any(|a| a.writes());
    let mut aliases = Vec::with_capacity(request.aliases.len());
    for (alias, grant) in request.aliases.into_iter().zip(grants) {
        let action = match &alias.action {
            Action::Query(query) => {
                Planned::Query(plan_query(query, &grant, now).map_err(|e| prefix(&alias.alias, e))?)
            }
            Action::Post(rows) => Planned::Post(
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| {
                        plan_post_row(row, &grant, now)
                            .map_err(|e| prefix(&format!("{}, row {}", alias.alias, i + 1), e))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        aliases.push(AliasPlan { alias: alias.alias, ds: grant.ds, action });
    }
    Ok(Plan { aliases, writes })
}

fn prefix(at: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::Invalid(message) => ApiError::Invalid(format!("Alias {at}: {message}")),
        other => other,
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::Invalid(message)
}

fn index_of(ds: &Datasource, code: &str, what: &str) -> Result<usize, ApiError> {
    ds.index_of(code).ok_or_else(|| {
        invalid(format!("{what}: unknown attribute {code:?} of datasource {}.", ds.name))
    })
}

/// Every attribute a filter names is one the caller sees under `op`.
fn check_visible(filters: &[Filter], grant: &Grant, op: Operation) -> Result<(), ApiError> {
    for f in filters {
        match f {
            Filter::And(list) | Filter::Or(list) | Filter::Not(list) => {
                check_visible(list, grant, op)?;
            }
            Filter::Leaf { attr, .. } => {
                grant::visible(grant, op, *attr)?;
            }
        }
    }
    Ok(())
}

/// The attribute named `code`, if it exists (else 400) and the caller sees
/// it under `op` (else 403).
fn seen(grant: &Grant, op: Operation, code: &str, what: &str) -> Result<usize, ApiError> {
    grant::visible(grant, op, index_of(&grant.ds, code, what)?)
}

/// Binds a query's filter, params, projection, sort and summary to the
/// grant's datasource, and ANDs in the grant's row filter (so a summary
/// never sees a row the caller could not read).
pub fn plan_query(query: &QueryRequest, grant: &Grant, now: Micros) -> Result<QueryPlan, ApiError> {
    let ds = &*grant.ds;
    let op = Operation::Query;
    let visible = || (0..ds.attributes.len()).filter(|&i| grant.sees(op, i));
    let columns = match &query.projection {
        Projection::All => visible().collect(),
        Projection::Only(codes) => {
            let mut columns: Vec<usize> = Vec::with_capacity(codes.len());
            for code in codes {
                let i = seen(grant, op, code, "projection")?;
                if !columns.contains(&i) {
                    columns.push(i);
                }
            }
            columns
        }
        Projection::Except(codes) => {
            let mut skip = Vec::with_capacity(codes.len());
            for code in codes {
                skip.push(seen(grant, op, code, "projection")?);
            }
            visible().filter(|i| !skip.contains(i)).collect()
        }
    };
    let lookup = |code: &str, what: &str| seen(grant, op, code, what);
    let summary = summary::plan_summary(query, ds, &columns, &lookup)?;
    let mut sort = Vec::with_capacity(query.sort.len());
    for (code, desc) in query.sort.iter().filter(|_| summary.is_none()) {
        let i = seen(grant, op, code, "sort")?;
        if !sort.iter().any(|(j, _)| *j == i) {
            sort.push((i, *desc));
        }
    }
    let mut filter = bind::bind(&query.filter, ds, now)?;
    filter.extend(params(query, ds, now)?);
    check_visible(&filter, grant, op)?;
    filter.extend(grant::row_filter(grant, op, now)?);
    Ok(QueryPlan { columns, filter, sort, offset: query.offset, limit: query.limit, summary })
}
/// `params` as equality filters: `is` on text, `eq` on the rest, `null`
/// for a JSON null.
fn params(query: &QueryRequest, ds: &Datasource, now: Micros) -> Result<Vec<Filter>, ApiError> {
    let mut raw = Vec::with_capacity(query.params.len());
    for (code, value) in &query.params {
        let i = index_of(ds, code, "params")?;
        let op = match (value.is_null(), ds.attributes[i].kind.family()) {
            (true, _) => Op::Null,
            (false, Family::Text) => Op::Is,
            (false, _) => Op::Eq,
        };
        raw.push(RawFilter::Cond { attr: code.clone(), op, value: value.clone() });
    }
    bind::bind(&raw, ds, now).map_err(|e| match e {
        ApiError::Invalid(m) => ApiError::Invalid(format!("params: {m}")),
        other => other,
    })
}

/// One value of a post row: JSON null is NULL.
fn typed(ds: &Datasource, i: usize, value: &Value) -> Result<Option<Scalar>, ApiError> {
    let attr = &ds.attributes[i];
    if value.is_null() {
        return Ok(None);
    }
    from_json(attr.kind, value, false)
        .map(Some)
        .map_err(|e| invalid(format!("attribute {} ({}): {e}.", attr.code, attr.kind.name())))
}

fn key_of(ds: &Datasource, row: &PostRow) -> Result<Vec<(usize, Scalar)>, ApiError> {
    let mut key = Vec::new();
    for (i, attr) in ds.attributes.iter().enumerate().filter(|(_, a)| a.primary_key) {
        let value = row.values.get(&attr.code).unwrap_or(&Value::Null);
        match typed(ds, i, value)? {
            Some(v) => key.push((i, v)),
            None => {
                return Err(invalid(format!(
                    "primary-key attribute {} is required on an update or delete.",
                    attr.code
                )));
            }
        }
    }
    Ok(key)
}

fn stamp_of(ds: &Datasource, row: &PostRow) -> Result<Option<Scalar>, ApiError> {
    let attr = ds.who(Who::LastUpdateDate);
    let Some(value) = row.values.get(&attr.code) else {
        return Err(invalid(format!(
            "{} is required on an update or delete: send the value you read.",
            attr.code
        )));
    };
    typed(ds, ds.who_index(Who::LastUpdateDate), value)
}

/// Binds one post row to its grant: the row, the rows it may touch, what
/// it must still satisfy, and what the caller sees of it.
fn plan_post_row(row: &PostRow, grant: &Grant, now: Micros) -> Result<PlannedRow, ApiError> {
    let ds = &*grant.ds;
    let op = row.status.operation();
    for code in row.values.keys() {
        let i = ds.index_of(code).ok_or_else(|| {
            invalid(format!(
                "unknown attribute {code:?} of datasource {}; the whole request was rejected.",
                ds.name
            ))
        })?;
        if Some(i) != ds.org {
            grant::visible(grant, op, i)?;
        }
    }
    let mut written = plan_row(row, ds)?;
    if let (WriteRow::Insert(values), Some(i), Some(org)) = (&mut written, ds.org, &grant.org) {
        values.retain(|(j, _)| *j != i);
        values.push((i, Some(Scalar::Text(org.clone()))));
    }
    let scope = grant::row_filter(grant, op, now)?;
    let check = match op {
        Operation::Insert | Operation::Update => scope.clone(),
        _ => Vec::new(),
    };
    let columns = (0..ds.attributes.len()).filter(|&i| grant.sees(op, i)).collect();
    Ok(PlannedRow { row: written, scope, check, columns })
}

/// Binds one post row to `ds`.
fn plan_row(row: &PostRow, ds: &Datasource) -> Result<WriteRow, ApiError> {
    match row.status {
        RowStatus::Insert => {
            let mut values = Vec::new();
            for (i, attr) in ds.attributes.iter().enumerate() {
                if attr.who.is_some() || attr.generated || Some(i) == ds.org {
                    continue;
                }
                let value = match (row.values.get(&attr.code), &attr.default) {
                    (Some(v), _) => typed(ds, i, v)?,
                    (None, Some(default)) => typed(ds, i, default)?,
                    (None, None) => None,
                };
                if value.is_none() && (attr.required || attr.primary_key) {
                    return Err(invalid(format!(
                        "attribute {} is required on an insert.",
                        attr.code
                    )));
                }
                if value.is_some() || row.values.contains_key(&attr.code) {
                    values.push((i, value));
                }
            }
            Ok(WriteRow::Insert(values))
        }
        RowStatus::Update => {
            let key = key_of(ds, row)?;
            let stamp = stamp_of(ds, row)?;
            let mut set = Vec::new();
            for (i, attr) in ds.attributes.iter().enumerate() {
                if !attr.updatable || attr.primary_key || attr.who.is_some() {
                    continue;
                }
                let Some(v) = row.values.get(&attr.code) else { continue };
                let value = typed(ds, i, v)?;
                if value.is_none() && attr.required {
                    return Err(invalid(format!(
                        "attribute {} is required: it cannot be null.",
                        attr.code
                    )));
                }
                set.push((i, value));
            }
            Ok(WriteRow::Update { key, stamp, set })
        }
        RowStatus::Delete => {
            Ok(WriteRow::Delete { key: key_of(ds, row)?, stamp: stamp_of(ds, row)? })
        }
    }
}
