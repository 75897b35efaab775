//! Plan → SQL, through sea-query only: identifiers come from the catalog
//! (`Datasource::table`, `Attribute::column`), every value is bound.
//!
//! Both backends must answer alike, so: substring tests are case-sensitive
//! and literal (`GLOB` with `*?[` bracketed on SQLite, `LIKE ... ESCAPE '\'`
//! on PostgreSQL); text sorts by code point (`COLLATE "C"` on PostgreSQL);
//! NULLs sort first ascending and last descending; and the primary key ends
//! every ORDER BY so pages are stable.

use sea_query::extension::sqlite::SqliteExpr;
use sea_query::{
    Expr, ExprTrait, Func, LikeExpr, NullOrdering, Order, PostgresQueryBuilder, Query,
    SqliteQueryBuilder,
};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::filter::{Cmp, Filter, Match, Test};
use super::values::{Scalar, null_expr, read_expr};
use crate::catalog::{Datasource, Family};
use crate::store::Backend;

/// A statement ready for `sqlx::query_with`.
pub type Built = (String, SqlxValues);

fn build(statement: &impl SqlxBinder, backend: Backend) -> Built {
    match backend {
        Backend::Sqlite => statement.build_sqlx(SqliteQueryBuilder),
        Backend::Postgres => statement.build_sqlx(PostgresQueryBuilder),
    }
}

fn col(ds: &Datasource, attr: usize) -> Expr {
    Expr::col(ds.attributes[attr].column.clone())
}

/// A value to bind, or a typed NULL.
pub fn value_expr(ds: &Datasource, attr: usize, value: Option<&Scalar>, backend: Backend) -> Expr {
    match value {
        Some(v) => v.to_expr(backend),
        None => null_expr(ds.attributes[attr].kind, backend),
    }
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
            let v = v.to_expr(backend);
            match op {
                Cmp::Eq => c.eq(v),
                Cmp::Ne => c.ne(v),
                Cmp::Gt => c.gt(v),
                Cmp::Gte => c.gte(v),
                Cmp::Lt => c.lt(v),
                Cmp::Lte => c.lte(v),
            }
        }
        Test::Between(low, high) => c.between(low.to_expr(backend), high.to_expr(backend)),
        Test::In(list) => c.is_in(list.iter().map(|v| v.to_expr(backend))),
        Test::NotIn(list) => c.is_not_in(list.iter().map(|v| v.to_expr(backend))),
        Test::Match { how, values, all, negate } => {
            let parts = values.iter().map(|v| match_expr(c.clone(), *how, v, backend));
            let joined =
                if *all { parts.reduce(|a, b| a.and(b)) } else { parts.reduce(|a, b| a.or(b)) };
            let joined = joined.unwrap_or_else(|| Expr::cust("TRUE"));
            if *negate { joined.not() } else { joined }
        }
    }
}

/// A literal, case-sensitive substring test.
fn match_expr(c: Expr, how: Match, text: &str, backend: Backend) -> Expr {
    match backend {
        Backend::Sqlite => {
            let mut pattern = String::with_capacity(text.len() + 2);
            if how != Match::StartsWith {
                pattern.push('*');
            }
            for ch in text.chars() {
                match ch {
                    '*' => pattern.push_str("[*]"),
                    '?' => pattern.push_str("[?]"),
                    '[' => pattern.push_str("[[]"),
                    other => pattern.push(other),
                }
            }
            if how != Match::EndsWith {
                pattern.push('*');
            }
            c.glob(Expr::val(pattern))
        }
        Backend::Postgres => {
            let mut pattern = String::with_capacity(text.len() + 2);
            if how != Match::StartsWith {
                pattern.push('%');
            }
            for ch in text.chars() {
                if matches!(ch, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(ch);
            }
            if how != Match::EndsWith {
                pattern.push('%');
            }
            c.like(LikeExpr::new(pattern).escape('\\'))
        }
    }
}

/// What a query reads.
#[derive(Clone, Debug)]
pub struct Select<'a> {
    pub ds: &'a Datasource,
    /// Attribute indexes, in output order.
    pub columns: &'a [usize],
    pub filter: &'a [Filter],
    /// `(attribute, descending)`.
    pub sort: &'a [(usize, bool)],
    pub offset: u64,
    pub limit: u32,
}

/// `SELECT ... FROM table WHERE ... ORDER BY ... LIMIT n OFFSET m`. On
/// SQLite the selected columns come packed as one `json_array(...)` of their
/// texts per row (see [`unpack`]); on PostgreSQL as columns.
pub fn select(plan: &Select<'_>, backend: Backend) -> Built {
    let ds = plan.ds;
    let mut q = Query::select();
    q.from(ds.table.clone());
    let columns = plan.columns.iter().map(|&i| read_expr(&ds.attributes[i], backend));
    match backend {
        // One packed cell per row: sqlx copies every SQLite value it reads
        // with SQLite's allocator, and that per-cell cost dominated a query.
        Backend::Sqlite => {
            q.expr(Func::cust("json_array").args(columns));
        }
        Backend::Postgres => {
            q.exprs(columns);
        }
    }
    if let Some(cond) = where_expr(plan.filter, ds, backend) {
        q.and_where(cond);
    }
    let keys = ds.attributes.iter().enumerate().filter(|(_, a)| a.primary_key).map(|(i, _)| i);
    let tail = keys.filter(|k| !plan.sort.iter().any(|(i, _)| i == k)).map(|k| (k, false));
    for (i, desc) in plan.sort.iter().copied().chain(tail) {
        let attr = &ds.attributes[i];
        // Qualified: PostgreSQL would otherwise sort by the text output column of that name.
        let mut e = Expr::col((ds.table.clone(), attr.column.clone()));
        if backend == Backend::Postgres && attr.kind.family() == Family::Text {
            e = Expr::cust_with_expr(r#"$1 COLLATE "C""#, e);
        }
        let (order, nulls) = if desc {
            (Order::Desc, NullOrdering::Last)
        } else {
            (Order::Asc, NullOrdering::First)
        };
        if attr.primary_key {
            // Never NULL; a bare ASC/DESC lets PostgreSQL walk the key's index.
            q.order_by_expr(e, order);
        } else {
            q.order_by_expr_with_nulls(e, order, nulls);
        }
    }
    // Limit and offset are numbers checked by the parser, written into the
    // text rather than bound: SQLite (built with STAT4) re-prepares a
    // statement whose bound LIMIT changed the plan's cost estimate, which
    // cost more than the query itself.
    let (mut sql, values) = build(&q, backend);
    sql.push_str(&format!(" LIMIT {}", plan.limit));
    if plan.offset > 0 {
        sql.push_str(&format!(" OFFSET {}", plan.offset));
    }
    (sql, values)
}

/// The cells of one packed SQLite row, as the texts `read_expr` gives.
pub fn unpack(packed: &str) -> Result<Vec<Cell<'_>>, serde_json::Error> {
    serde_json::from_str(packed)
}

/// One cell of a packed row: borrowed from the row unless it had escapes.
#[derive(Debug, serde::Deserialize)]
pub struct Cell<'a>(#[serde(borrow)] pub Option<std::borrow::Cow<'a, str>>);

fn returning(
    ds: &Datasource,
    attrs: impl Iterator<Item = usize>,
    backend: Backend,
) -> sea_query::ReturningClause {
    Query::returning().exprs(attrs.map(|i| read_expr(&ds.attributes[i], backend)))
}

/// `INSERT INTO table (...) VALUES (...) RETURNING <every attribute>`.
pub fn insert(ds: &Datasource, values: Vec<(usize, Expr)>, backend: Backend) -> Option<Built> {
    let mut q = Query::insert();
    q.into_table(ds.table.clone());
    let (columns, exprs): (Vec<_>, Vec<_>) =
        values.into_iter().map(|(i, e)| (ds.attributes[i].column.clone(), e)).unzip();
    q.columns(columns);
    q.values(exprs).ok()?;
    q.returning(returning(ds, 0..ds.attributes.len(), backend));
    Some(build(&q, backend))
}

/// The WHERE of a `U`/`D` row: its primary key and its `lastUpdateDate`.
fn key_where(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    stamp: (usize, Option<&Scalar>),
    backend: Backend,
) -> Expr {
    let stamp_expr = match stamp.1 {
        Some(v) => col(ds, stamp.0).eq(v.to_expr(backend)),
        None => col(ds, stamp.0).is_null(),
    };
    key.iter().map(|(i, v)| col(ds, *i).eq(v.to_expr(backend))).fold(stamp_expr, |a, b| b.and(a))
}

fn key_only(ds: &Datasource, key: &[(usize, Scalar)], backend: Backend) -> Option<Expr> {
    key.iter().map(|(i, v)| col(ds, *i).eq(v.to_expr(backend))).reduce(|a, b| a.and(b))
}

/// `UPDATE table SET ... WHERE key AND stamp RETURNING <every attribute>`.
pub fn update(
    ds: &Datasource,
    set: Vec<(usize, Expr)>,
    key: &[(usize, Scalar)],
    stamp: (usize, Option<&Scalar>),
    backend: Backend,
) -> Built {
    let mut q = Query::update();
    q.table(ds.table.clone());
    q.values(set.into_iter().map(|(i, e)| (ds.attributes[i].column.clone(), e)));
    q.and_where(key_where(ds, key, stamp, backend));
    q.returning(returning(ds, 0..ds.attributes.len(), backend));
    build(&q, backend)
}

/// `DELETE FROM table WHERE key AND stamp RETURNING <key attributes>`.
pub fn delete(
    ds: &Datasource,
    key: &[(usize, Scalar)],
    stamp: (usize, Option<&Scalar>),
    backend: Backend,
) -> Built {
    let mut q = Query::delete();
    q.from_table(ds.table.clone());
    q.and_where(key_where(ds, key, stamp, backend));
    q.returning(returning(ds, key.iter().map(|(i, _)| *i), backend));
    build(&q, backend)
}

/// `SELECT 1 FROM table WHERE key LIMIT 1`: whether a row still exists.
pub fn exists(ds: &Datasource, key: &[(usize, Scalar)], backend: Backend) -> Built {
    let mut q = Query::select();
    q.expr(Expr::cust("'1'")).from(ds.table.clone());
    if let Some(cond) = key_only(ds, key, backend) {
        q.and_where(cond);
    }
    q.limit(1);
    build(&q, backend)
}
