//! Plan: a parsed request bound to the grants the caller holds, one per
//! alias. Every attribute is resolved and every value typed here, before the
//! database is touched, so a bad row anywhere rejects the whole request.

use std::sync::Arc;

use serde_json::Value;

use super::bind::{self, Filter};
use super::filter::{Op, RawFilter};
use super::request::{Action, ApiRequest, PostRow, Projection, QueryRequest, RowStatus};
use super::summary::{self, Summary};
use crate::catalog::values::{Scalar, from_json};
use crate::catalog::{Datasource, Family, Grant, Who};
use crate::clock::Micros;
use crate::error::ApiError;

/// Who writes, and when: the WHO values of every row of one request.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub user: String,
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
    Post(Vec<WriteRow>),
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

/// Binds `request` to `grants` (the caller's grant for each alias, in
/// order); relative dates are fixed at `now`.
pub fn plan(request: ApiRequest, grants: Vec<Grant>, now: Micros) -> Result<Plan, ApiError> {
    let writes = request.aliases.iter().any(|a| a.writes());
    let mut aliases = Vec::with_capacity(request.aliases.len());
    for (alias, Grant { ds, .. }) in request.aliases.into_iter().zip(grants) {
        let action = match &alias.action {
            Action::Query(query) => {
                Planned::Query(plan_query(query, &ds, now).map_err(|e| prefix(&alias.alias, e))?)
            }
            Action::Post(rows) => Planned::Post(
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| {
                        plan_row(row, &ds)
                            .map_err(|e| prefix(&format!("{}, row {}", alias.alias, i + 1), e))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        aliases.push(AliasPlan { alias: alias.alias, ds, action });
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

/// Binds a query's filter, params, projection, sort and summary to `ds`.
pub fn plan_query(
    query: &QueryRequest,
    ds: &Datasource,
    now: Micros,
) -> Result<QueryPlan, ApiError> {
    let columns = match &query.projection {
        Projection::All => (0..ds.attributes.len()).collect(),
        Projection::Only(codes) => {
            let mut columns: Vec<usize> = Vec::with_capacity(codes.len());
            for code in codes {
                let i = index_of(ds, code, "projection")?;
                if !columns.contains(&i) {
                    columns.push(i);
                }
            }
            columns
        }
        Projection::Except(codes) => {
            let mut skip = Vec::with_capacity(codes.len());
            for code in codes {
                skip.push(index_of(ds, code, "projection")?);
            }
            (0..ds.attributes.len()).filter(|i| !skip.contains(i)).collect()
        }
    };
    let lookup = |code: &str, what: &str| index_of(ds, code, what);
    let summary = summary::plan_summary(query, ds, &columns, &lookup)?;
    let mut sort = Vec::with_capacity(query.sort.len());
    for (code, desc) in query.sort.iter().filter(|_| summary.is_none()) {
        let i = index_of(ds, code, "sort")?;
        if !sort.iter().any(|(j, _)| *j == i) {
            sort.push((i, *desc));
        }
    }
    let mut filter = bind::bind(&query.filter, ds, now)?;
    filter.extend(params(query, ds, now)?);
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

/// Binds one post row to `ds`.
pub fn plan_row(row: &PostRow, ds: &Datasource) -> Result<WriteRow, ApiError> {
    if let Some(code) = row.values.keys().find(|code| ds.attribute(code).is_none()) {
        return Err(invalid(format!(
            "unknown attribute {code:?} of datasource {}; the whole request was rejected.",
            ds.name
        )));
    }
    match row.status {
        RowStatus::Insert => {
            let mut values = Vec::new();
            for (i, attr) in ds.attributes.iter().enumerate() {
                if attr.who.is_some() || attr.generated {
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
