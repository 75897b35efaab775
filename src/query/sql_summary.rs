//! Plan → SQL for a summary (design §1.4): `SELECT groups, aggregates FROM
//! table WHERE filter GROUP BY groups ORDER BY ... LIMIT n OFFSET m`.
//!
//! The query's WHERE (the filter, the params, and whatever else narrows the
//! rows a caller may read) applies before GROUP BY: an aggregate never sees
//! a row the same query without it would not return. Distinct rows are a
//! GROUP BY over the projected attributes with no aggregate. Every group
//! attribute ends the ORDER BY, so pages of groups are stable.

use sea_query::{Expr, Func, Query};

use super::aggregate::Func as Agg;
use super::plan::QueryPlan;
use super::sql::{direction, paged, where_expr};
use super::summary::{Key, Output, Summary};
use crate::catalog::Datasource;
use crate::store::Backend;
use crate::store::dialect::{Statement, Storage};

fn column(ds: &Datasource, attr: usize) -> Expr {
    Expr::col((ds.table.clone(), ds.attributes[attr].column.clone()))
}

/// The aggregate of `output`, unread (what ORDER BY compares), and how its
/// result is kept (how it is read as text).
fn aggregate(ds: &Datasource, output: &Output, backend: Backend) -> (Expr, Storage) {
    let Some(attr) = output.attr else {
        return (Expr::cust("COUNT(*)"), Storage::Integer);
    };
    let c = column(ds, attr);
    let storage = ds.attributes[attr].kind.storage();
    match output.func {
        Agg::Count => (Func::count(c).into(), Storage::Integer),
        Agg::DistinctCount => (Func::count_distinct(c).into(), Storage::Integer),
        Agg::Sum => (backend.sum(c, storage), storage),
        // Read with every digit (a double's 17 on SQLite); rendering rounds.
        Agg::Avg => (Func::avg(c).into(), Storage::Double),
        Agg::Min => (backend.extreme(c, storage, false), storage),
        Agg::Max => (backend.extreme(c, storage, true), storage),
    }
}

/// The statement of a summary query.
pub fn summary_select(
    ds: &Datasource,
    plan: &QueryPlan,
    summary: &Summary,
    backend: Backend,
) -> Statement {
    let mut q = Query::select();
    q.from(ds.table.clone());
    let aggregates: Vec<(Expr, Storage)> =
        summary.outputs.iter().map(|o| aggregate(ds, o, backend)).collect();
    let groups = summary
        .groups
        .iter()
        .map(|&i| backend.read_text(ds.attributes[i].kind.storage(), column(ds, i)));
    let outputs = aggregates.iter().map(|(e, storage)| backend.read_text(*storage, e.clone()));
    q.exprs(groups.chain(outputs));
    if let Some(cond) = where_expr(&plan.filter, ds, backend) {
        q.and_where(cond);
    }
    q.add_group_by(summary.groups.iter().map(|&i| column(ds, i)));
    let tail = summary
        .groups
        .iter()
        .map(|&i| Key::Group(i))
        .filter(|k| !summary.sort.iter().any(|(s, _)| s == k))
        .map(|k| (k, false));
    for (key, desc) in summary.sort.iter().copied().chain(tail) {
        let e = match key {
            Key::Group(i) => backend.sort_key(column(ds, i), ds.attributes[i].kind.storage()),
            Key::Output(n) => aggregates[n].0.clone(),
        };
        let (order, nulls) = direction(desc);
        q.order_by_expr_with_nulls(e, order, nulls);
    }
    paged(&q, plan, backend)
}
