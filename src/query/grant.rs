//! Applying a grant (design §4.5) while planning: the attributes the
//! caller may name, and the row filter of an operation, org scope included,
//! bound to the datasource with `$user`, `$org` and `$session` taken from
//! the session. The planner ANDs that filter into every statement it plans.

use serde_json::Value;

use super::bind::{self, Cmp, Filter, Test};
use super::filter;
use crate::catalog::values::Scalar;
use crate::catalog::{Catalog, Datasource, Grant, SessionValues};
use crate::clock::Micros;
use crate::config::Operation;
use crate::error::ApiError;

/// The 403 for naming an attribute the caller may not see.
pub fn hidden(code: &str) -> ApiError {
    ApiError::Forbidden(format!("Access Denied - no access to attribute {code}"))
}

/// Attribute `i` by index, if the caller sees it under `op`; else 403.
pub fn visible(grant: &Grant, op: Operation, i: usize) -> Result<usize, ApiError> {
    if grant.sees(op, i) { Ok(i) } else { Err(hidden(&grant.ds.attributes[i].code)) }
}

/// The rows `op` reaches: the org's, and those that one of the granting
/// roles' filters lets through. Empty when every row is reachable.
pub fn row_filter(grant: &Grant, op: Operation, now: Micros) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    if let (Some(org), Some(i)) = (&grant.org, grant.ds.org) {
        out.push(Filter::Leaf { attr: i, test: Test::Cmp(Cmp::Eq, Scalar::Text(org.clone())) });
    }
    let Some(filters) = grant.rule(op).and_then(|rule| rule.filters.as_ref()) else {
        return Ok(out);
    };
    let mut any = Vec::with_capacity(filters.len());
    for written in filters {
        let bound = bind_role_filter(&grant.ds, written, &grant.session, now).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "a role filter on {} failed to bind: {e}",
                grant.ds.name
            ))
        })?;
        any.push(Filter::And(bound));
    }
    out.push(Filter::Or(any));
    Ok(out)
}

/// Binds one role's filter as written in the config file, with the session
/// values put in for `$user`, `$org` and `$session`.
pub fn bind_role_filter(
    ds: &Datasource,
    written: &Value,
    session: &SessionValues,
    now: Micros,
) -> Result<Vec<Filter>, String> {
    let value = substitute(written, session);
    let raw = filter::parse_list(&value, 1, &mut filter::Budget::default())?;
    bind::bind(&raw, ds, now).map_err(|e| e.message())
}

/// Checks every role filter of `catalog` at start, as any filter is checked
/// (the error names the role and datasource).
pub fn check_role_filters(catalog: &Catalog) -> Result<(), String> {
    let session = SessionValues { user: "u".into(), org: "o".into(), session: "s".into() };
    let mut problems = Vec::new();
    for (role, name, grant) in catalog.role_grants() {
        let (Some(written), Some(ds)) = (&grant.filter, catalog.datasource(name)) else { continue };
        if let Err(e) = bind_role_filter(ds, written, &session, 0) {
            problems.push(format!("role {role}, datasource {name}: filter: {e}"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// `written` with every string `$user`, `$org` or `$session` replaced.
fn substitute(written: &Value, session: &SessionValues) -> Value {
    match written {
        Value::String(s) => Value::String(match s.as_str() {
            "$user" => session.user.clone(),
            "$org" => session.org.clone(),
            "$session" => session.session.clone(),
            _ => s.clone(),
        }),
        Value::Array(list) => Value::Array(list.iter().map(|v| substitute(v, session)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, session))).collect())
        }
        other => other.clone(),
    }
}
