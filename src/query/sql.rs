//! Plan → SQL, through sea-query only: identifiers come from the catalog
//! (`Datasource::table`, `Attribute::column`), every value is bound, and
//! what differs between the databases is asked of the dialect
//! ([`Backend`], in `store::dialect`).
//!
//! NULLs sort first ascending and last descending, and the primary key ends
//! every ORDER BY so pages are stable.

use sea_query::{Expr, ExprTrait, Func, NullOrdering, Order, Query, SelectStatement};

use super::bind::{Cmp, Filter, Match, Test};
use super::plan::{Plan, Planned, PlannedRow, QueryPlan, Stamp, WriteRow};
use crate::catalog::values::Scalar;
use crate::catalog::{Attribute, Datasource, Who};
use crate::store::Backend;
use crate::store::dialect::Anchor;
use crate::store::dialect::Statement;

fn col(ds: &Datasource, attr: usize) -> Expr {
    Expr::col(ds.attributes[attr].column.clone())
}

/// A value bound as a parameter, with the cast its storage needs.
fn bound(value: &Scalar, backend: Backend) -> Expr {
    let plain = match value {
        Scalar::Text(s) | Scalar::Num(s) | Scalar::Date(s) | Scalar::DateTime(s) => {
            Expr::val(s.as_str())
        }
        Scalar::Int(i) => Expr::val(*i),
        Scalar::Double(f) => Expr::val(*f),
        Scalar::Bool(b) => Expr::val(*b),
    };
    backend.cast(plain, value.storage())
}

/// A value to bind, or a typed NULL.
fn value_expr(ds: &Datasource, attr: usize, value: Option<&Scalar>, backend: Backend) -> Expr {
    match value {
        Some(v) => bound(v, backend),
        None => backend.null(ds.attributes[attr].kind.storage()),
    }
}

/// The expression that reads an attribute's column as text.
fn read_expr(attr: &Attribute, backend: Backend) -> Expr {
    backend.read_text(attr.kind.storage(), Expr::col(attr.column.clone()))
}

/// The WHERE expression of a list of filters (ANDed), if any.
pub fn where_expr(filters: &[Filter], ds: &Datasource, backend: Backend) -> Option<Expr> {
    filters.iter().map(|f| filter_expr(f, ds, backend)).reduce(|a, b| a.and(b))
}

fn filter_expr(filter: &Filter, ds: &Datasource, backend: Backend) -> Expr {
    let group = |list: &[Filter], and: bool| {
        let parts = list.iter().map(|f| filter_expr(f, ds, backend));
        let joined = if and { parts.reduce(|a, b| a.and(b)) } else { parts.reduce(|a, b| a.or(b)) };
        joined.unwrap_or_else(|| Expr::cust(if and { "TRUE" } else { "FALSE" }))
    };
    match filter {
        Filter::And(list) => group(list, true),
        Filter::Or(list) => group(list, false),
        // "None of": an unknown (NULL) inner result counts as no match.
        Filter::Not(list) => {
            Expr::from(Func::coalesce([group(list, false), Expr::cust("FALSE")])).not()
        }
        Filter::Leaf { attr, test } => test_expr(col(ds, *attr), test, backend),
    }
}

fn test_expr(c: Expr, test: &Test, backend: Backend) -> Expr {
    match test {
        Test::Null => c.is_null(),
        Test::NotNull => c.is_not_null(),
        Test::Blank => c.clone().is_null().or(c.eq("")),
        Test::NotBlank => c.ne(""),
        Test::Cmp(op, v) => {
            let v = bound(v, backend);
            match op {
                Cmp::Eq => c.eq(v),
                Cmp::Ne => c.ne(v),
                Cmp::Gt => c.gt(v),
                Cmp::Gte => c.gte(v),
                Cmp::Lt => c.lt(v),
                Cmp::Lte => c.lte(v),
            }
        }
        Test::Between(low, high) => c.between(bound(low, backend), bound(high, backend)),
        Test::In(list) => c.is_in(list.iter().map(|v| bound(v, backend))),
        Test::NotIn(list) => c.is_not_in(list.iter().map(|v| bound(v, backend))),
        Test::Match { how, values, all, negate } => {
            let anchor = match how {
                Match::Contains => Anchor::Nowhere,
                Match::StartsWith => Anchor::Start,
                Match::EndsWith => Anchor::End,
            };
            let parts: Vec<_> =
                values.iter().map(|v| backend.contains(c.clone(), v, anchor)).collect();
            let joined = balanced(&parts, *all).unwrap_or_else(|| Expr::cust("TRUE"));
            if *negate { joined.not() } else { joined }
        }
    }
}

/// `SELECT ... FROM table WHERE ... ORDER BY ... LIMIT n OFFSET m`, or a
/// summary's statement (`sql_summary.rs`) when the plan has one.
pub fn select(ds: &Datasource, plan: &QueryPlan, backend: Backend) -> Statement {
    if let Some(summary) = &plan.summary {
        return super::sql_summary::summary_select(ds, plan, summary, backend);
    }
    let mut q = Query::select();
    q.from(ds.table.clone());
    let columns = plan.columns.iter().map(|&i| read_expr(&ds.attributes[i], backend));
    q.exprs(columns);
    if let Some(cond) = where_expr(&plan.filter, ds, backend) {
        q.and_where(cond);
    }
    let keys = ds.attributes.iter().enumerate().filter(|(_, a)| a.primary_key).map(|(i, _)| i);
    let tail = keys.filter(|k| !plan.sort.iter().any(|(i, _)| i == k)).map(|k| (k, false));
    for (i, desc) in plan.sort.iter().copied().chain(tail) {
        let attr = &ds.attributes[i];
        // Qualified: PostgreSQL would otherwise sort by the text output column of that name.
        let e = backend
            .sort_key(Expr::col((ds.table.clone(), attr.column.clone())), attr.kind.storage());
        let (order, nulls) = direction(desc);
        if attr.primary_key {
            // Never NULL; a bare ASC/DESC lets PostgreSQL walk the key's index.
            q.order_by_expr(e, order);
        } else {
            q.order_by_expr_with_nulls(e, order, nulls);
        }
    }
    paged(&q, plan, backend)
}

/// The order and the place of NULLs of one sort key: NULL first ascending,
/// last descending, on both backends.
pub(super) fn direction(desc: bool) -> (Order, NullOrdering) {
    if desc { (Order::Desc, NullOrdering::Last) } else { (Order::Asc, NullOrdering::First) }
}

/// `q` in the backend's dialect, with the plan's LIMIT and OFFSET. They are
/// numbers checked by the parser, written into the text rather than bound:
/// SQLite (built with STAT4) re-prepares a statement whose bound LIMIT
/// changed the plan's cost estimate, which cost more than the query itself.
pub(super) fn paged(q: &SelectStatement, plan: &QueryPlan, backend: Backend) -> Statement {
    let mut statement = backend.build(q);
    statement.sql.push_str(&format!(" LIMIT {}", plan.limit));
    if plan.offset > 0 {
        statement.sql.push_str(&format!(" OFFSET {}", plan.offset));
    }
    statement
}

fn returning(
    ds: &Datasource,
    attrs: impl Iterator<Item = usize>,
    backend: Backend,
) -> sea_query::ReturningClause {
    Query::returning().exprs(attrs.map(|i| read_expr(&ds.attributes[i], backend)))
}

/// `INSERT INTO table (...) VALUES (...) RETURNING <every attribute>`.
fn insert(ds: &Datasource, values: Vec<(usize, Expr)>, backend: Backend) -> Option<Statement> {
    let mut q = Query::insert();
    q.into_table(ds.table.clone());
    let (columns, exprs): (Vec<_>, Vec<_>) =
        values.into_iter().map(|(i, e)| (ds.attributes[i].column.clone(), e)).unzip();
    q.columns(columns);
    q.values(exprs).ok()?;
    q.returning(returning(ds, 0..ds.attributes.len(), backend));
    Some(backend.build(&q))
}

/// The WHERE of a `U`/`D` row: its primary key, its `lastUpdateDate`, and
/// the rows its grant reaches.
fn key_where(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    stamp: (usize, Option<&Scalar>),
    scope: &[Filter],
    backend: Backend,
) -> Expr {
    let stamp_expr = match stamp.1 {
        Some(v) => col(ds, stamp.0).eq(bound(v, backend)),
        None => col(ds, stamp.0).is_null(),
    };
    let exact = key
        .iter()
        .map(|(i, v)| col(ds, *i).eq(bound(v, backend)))
        .fold(stamp_expr, |a, b| b.and(a));
    match where_expr(scope, ds, backend) {
        Some(scope) => exact.and(scope),
        None => exact,
    }
}

/// The row with this key, among the rows `filters` let through.
fn key_only(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    filters: &[Filter],
    backend: Backend,
) -> Option<Expr> {
    key.iter()
        .map(|(i, v)| col(ds, *i).eq(bound(v, backend)))
        .chain(where_expr(filters, ds, backend))
        .reduce(|a, b| a.and(b))
}

/// `UPDATE table SET ... WHERE key AND stamp RETURNING <every attribute>`.
fn update(
    ds: &Datasource,
    set: Vec<(usize, Expr)>,
    key: &[(usize, Scalar)],
    stamp: (usize, Option<&Scalar>),
    scope: &[Filter],
    backend: Backend,
) -> Statement {
    let mut q = Query::update();
    q.table(ds.table.clone());
    q.values(set.into_iter().map(|(i, e)| (ds.attributes[i].column.clone(), e)));
    q.and_where(key_where(ds, key, stamp, scope, backend));
    q.returning(returning(ds, 0..ds.attributes.len(), backend));
    backend.build(&q)
}

/// `DELETE FROM table WHERE key AND stamp RETURNING <every attribute>`
/// (the old values, for the audit trail).
fn delete(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    stamp: (usize, Option<&Scalar>),
    scope: &[Filter],
    backend: Backend,
) -> Statement {
    let mut q = Query::delete();
    q.from_table(ds.table.clone());
    q.and_where(key_where(ds, key, stamp, scope, backend));
    q.returning(returning(ds, 0..ds.attributes.len(), backend));
    backend.build(&q)
}

/// Every attribute of the row with this key among those `filters` let
/// through: an update's old values, for the audit trail.
pub fn row_by_key(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    filters: &[Filter],
    backend: Backend,
) -> Statement {
    let mut q = Query::select();
    q.exprs(ds.attributes.iter().map(|a| read_expr(a, backend))).from(ds.table.clone());
    if let Some(cond) = key_only(ds, key, filters, backend) {
        q.and_where(cond);
    }
    q.limit(1);
    backend.build(&q)
}

/// `SELECT 1 FROM table WHERE key AND filters LIMIT 1`: whether the row
/// exists among those `filters` let through.
pub fn exists(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    filters: &[Filter],
    backend: Backend,
) -> Statement {
    let mut q = Query::select();
    q.expr(Expr::cust("'1'")).from(ds.table.clone());
    if let Some(cond) = key_only(ds, key, filters, backend) {
        q.and_where(cond);
    }
    q.limit(1);
    backend.build(&q)
}

/// The statement of one post row, WHO columns included; `None` if its
/// columns and values differ in number.
pub fn row_statement(
    ds: &Datasource,
    planned: &PlannedRow,
    stamp: &Stamp,
    backend: Backend,
) -> Option<Statement> {
    let scope = &planned.scope;
    let user = || bound(&Scalar::Text(stamp.user.clone()), backend);
    let now = || bound(&Scalar::DateTime(stamp.now.clone()), backend);
    let assigns = |list: &[(usize, Option<Scalar>)]| -> Vec<(usize, Expr)> {
        list.iter().map(|(i, v)| (*i, value_expr(ds, *i, v.as_ref(), backend))).collect()
    };
    let stamp_at = ds.who_index(Who::LastUpdateDate);
    match &planned.row {
        WriteRow::Insert(values) => {
            let mut values = assigns(values);
            values.push((ds.who_index(Who::CreatedBy), user()));
            values.push((ds.who_index(Who::CreationDate), now()));
            values.push((ds.who_index(Who::LastUpdatedBy), user()));
            values.push((stamp_at, now()));
            insert(ds, values, backend)
        }
        WriteRow::Update { key, stamp, set } => {
            let mut values = assigns(set);
            values.push((ds.who_index(Who::LastUpdatedBy), user()));
            values.push((stamp_at, now()));
            Some(update(ds, values, key, (stamp_at, stamp.as_ref()), scope, backend))
        }
        WriteRow::Delete { key, stamp } => {
            Some(delete(ds, key, (stamp_at, stamp.as_ref()), scope, backend))
        }
    }
}

/// Every statement `plan` runs, built at once for `backend`: what the fuzz
/// target and the property tests check can always be built.
pub fn statements(plan: &Plan, stamp: &Stamp, backend: Backend) -> Vec<Statement> {
    let mut out = Vec::new();
    for alias in &plan.aliases {
        let ds = &alias.ds;
        match &alias.action {
            Planned::Query(q) => out.push(select(ds, q, backend)),
            Planned::Post(rows) => {
                out.extend(rows.iter().filter_map(|row| row_statement(ds, row, stamp, backend)));
            }
        }
    }
    out
}

/// `parts` joined by AND (`all`) or OR as a balanced tree: 1,000 values nest
/// 10 deep, not 1,000 (SQLite refuses expression trees deeper than 1,000, and
/// rendering a chain that deep recurses as far).
fn balanced(parts: &[Expr], all: bool) -> Option<Expr> {
    match parts {
        [] => None,
        [one] => Some(one.clone()),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            let (left, right) = (balanced(left, all)?, balanced(right, all)?);
            Some(if all { left.and(right) } else { left.or(right) })
        }
    }
}
