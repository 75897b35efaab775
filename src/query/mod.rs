//! `POST /v1/api` below HTTP (spec §4–§8, design §1.4): the body is parsed
//! into typed requests ([`parse`]), bound to the granted datasources
//! ([`plan`]), run in one transaction and rendered ([`execute`]).
//!
//! parse → (the handler authorizes each alias) → plan → execute → render.

pub mod execute;
pub mod filter;
pub mod plan;
pub mod request;
pub mod sql;
pub mod values;

use std::sync::Arc;

use crate::catalog::{Catalog, Datasource};
use crate::error::ApiError;

pub use execute::{Stamp, execute};
pub use plan::{Plan, plan};
pub use request::{ApiRequest, parse};

/// Parses and plans a body against `catalog` without any grant check, then
/// builds every statement for both backends: what the fuzz target and the
/// property tests drive. The server authorizes between the two steps.
pub fn parse_and_plan(body: &[u8], catalog: &Catalog, max_limit: u32) -> Result<Plan, ApiError> {
    let request = parse(body, max_limit)?;
    let mut sources = Vec::with_capacity(request.aliases.len());
    for alias in &request.aliases {
        let ds = catalog.datasources().find(|ds| ds.name == alias.ds).ok_or_else(|| {
            ApiError::Forbidden(format!("Access Denied - no access to datasource {}", alias.ds))
        })?;
        sources.push(Arc::clone(ds));
    }
    let plan = plan(request, sources)?;
    let stamp = Stamp { user: "fuzz".into(), now: "2024-01-01T00:00:00.000000Z".into() };
    for backend in [crate::store::Backend::Sqlite, crate::store::Backend::Postgres] {
        for alias in &plan.aliases {
            statements(&alias.ds, &alias.action, &stamp, backend);
        }
    }
    Ok(plan)
}

fn statements(
    ds: &Datasource,
    action: &plan::Planned,
    stamp: &Stamp,
    backend: crate::store::Backend,
) -> usize {
    match action {
        plan::Planned::Query(q) => {
            let select = sql::Select {
                ds,
                columns: &q.columns,
                filter: &q.filter,
                sort: &q.sort,
                offset: q.offset,
                limit: q.limit,
            };
            sql::select(&select, backend).0.len()
        }
        plan::Planned::Post(rows) => rows
            .iter()
            .filter_map(|row| execute::row_statement(ds, row, stamp, backend))
            .map(|built| built.0.len())
            .sum(),
    }
}

#[cfg(test)]
mod tests;
