//! Authorize: (principal, datasource, operations) becomes a [`Grant`] that
//! the planner consumes, or the 403 that the caller sees. An unknown
//! datasource and an ungranted one get the same answer, so the catalog
//! cannot be probed. Several roles combine as a union per operation: a row
//! (or attribute) is reachable when one role granting the operation reaches
//! it.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Catalog, Datasource, RoleGrant};
use crate::auth::Principal;
use crate::config::Operation;
use crate::error::ApiError;

/// What the caller may do with one datasource (design §4.5): which
/// operations, and for each the rows and attributes it reaches. The planner
/// takes the grant whole and applies all of it; no other path reaches the
/// table.
#[derive(Clone, Debug)]
pub struct Grant {
    pub ds: Arc<Datasource>,
    /// Every operation the caller's roles grant on `ds`.
    pub operations: BTreeSet<Operation>,
    /// The caller's org, for an org-scoped datasource: every statement sees
    /// only that org's rows, and inserted rows belong to it.
    pub org: Option<String>,
    /// The values `$user`, `$org` and `$session` stand for in role filters.
    pub session: SessionValues,
    /// The rules of each requested operation.
    rules: Vec<(Operation, Rule)>,
}

/// What `$user`, `$org` and `$session` mean in a role's filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionValues {
    pub user: String,
    pub org: String,
    pub session: String,
}

/// The rows and attributes one operation reaches: the union over the
/// caller's roles that grant it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    /// The roles that grant the operation.
    pub roles: Vec<String>,
    /// Any of these role filters lets a row through; `None` is every row
    /// (some role grants the operation without a filter).
    pub filters: Option<Vec<serde_json::Value>>,
    /// The attributes the caller sees; `None` is all of them.
    pub attributes: Option<BTreeSet<usize>>,
}

impl Grant {
    /// The rule of `op`, one of the operations the grant was asked for.
    pub fn rule(&self, op: Operation) -> Option<&Rule> {
        self.rules.iter().find(|(o, _)| *o == op).map(|(_, rule)| rule)
    }

    /// Whether the caller sees attribute `i` under `op`.
    pub fn sees(&self, op: Operation, i: usize) -> bool {
        self.rule(op).is_none_or(|rule| rule.attributes.as_ref().is_none_or(|a| a.contains(&i)))
    }
}

impl Catalog {
    /// The grant on datasource `name` if the caller's roles allow every one
    /// of `operations` on it; else 403.
    pub fn authorize(
        &self,
        principal: &Principal,
        name: &str,
        operations: &[Operation],
    ) -> Result<Grant, ApiError> {
        let held: Vec<(&str, &RoleGrant)> = principal
            .roles
            .iter()
            .filter_map(|role| Some((role.as_str(), self.roles.get(role)?.get(name)?)))
            .collect();
        let granted: BTreeSet<Operation> =
            held.iter().flat_map(|(_, grant)| grant.operations.iter().copied()).collect();
        let ds = match self.datasources.get(name) {
            Some(ds) if !granted.is_empty() => ds,
            _ => {
                return Err(ApiError::Forbidden(format!(
                    "Access Denied - no access to datasource {name}"
                )));
            }
        };
        if name == super::AUDIT_TRAIL && operations.iter().any(|op| *op != Operation::Query) {
            return Err(ApiError::Forbidden(format!(
                "Access Denied - {name} is read-only: it can be queried, never posted to"
            )));
        }
        if let Some(op) = operations.iter().find(|op| !granted.contains(op)) {
            return Err(ApiError::Forbidden(format!(
                "Access Denied - no {op} access to datasource {name}"
            )));
        }
        let rules = operations.iter().map(|&op| (op, rule(&held, op))).collect();
        Ok(Grant {
            ds: Arc::clone(ds),
            operations: granted,
            org: ds.org.map(|_| principal.org_uid.clone()),
            session: SessionValues {
                user: principal.user_name.clone(),
                org: principal.org_uid.clone(),
                session: principal.session_id.clone(),
            },
            rules,
        })
    }
}

/// The union of the held roles' grants of `op`.
fn rule(held: &[(&str, &RoleGrant)], op: Operation) -> Rule {
    let granting: Vec<&(&str, &RoleGrant)> =
        held.iter().filter(|(_, grant)| grant.operations.contains(&op)).collect();
    let filters = granting
        .iter()
        .map(|(_, grant)| grant.filter.clone())
        .collect::<Option<Vec<serde_json::Value>>>();
    let attributes = granting
        .iter()
        .map(|(_, grant)| grant.attributes.clone())
        .collect::<Option<Vec<BTreeSet<usize>>>>()
        .map(|sets| sets.into_iter().flatten().collect());
    let roles = granting.iter().map(|(role, _)| (*role).to_owned()).collect();
    Rule { roles, filters, attributes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::EMPLOYEES;
    use crate::config::Config;

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            session_id: "s".into(),
            user_id: 1,
            user_name: "u".into(),
            org_uid: "o".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn authorize_grants_and_refuses_alike() {
        let catalog = Catalog::from_config(&Config::parse(EMPLOYEES).unwrap()).unwrap();
        let reader = principal(&["hr_reader"]);
        let grant = catalog.authorize(&reader, "Employees", &[Operation::Query]).unwrap();
        assert_eq!(grant.ds.name, "Employees");
        assert_eq!(grant.operations, BTreeSet::from([Operation::Query]));
        let denied = |name: &str, op| catalog.authorize(&reader, name, &[op]).unwrap_err().body();
        assert_eq!(
            denied("Employees", Operation::Delete).message,
            "Access Denied - no delete access to datasource Employees"
        );
        assert_eq!(
            denied("Nope", Operation::Query).message,
            "Access Denied - no access to datasource Nope"
        );
        let nobody = principal(&[]);
        let unknown = catalog.authorize(&nobody, "Nope", &[Operation::Query]).unwrap_err().body();
        let ungranted =
            catalog.authorize(&nobody, "Employees", &[Operation::Query]).unwrap_err().body();
        assert_eq!((unknown.code, unknown.title), (ungranted.code, ungranted.title));
        assert_eq!(unknown.message.replace("Nope", "Employees"), ungranted.message);
        let editor = principal(&["hr_reader", "hr_admin"]);
        let all = [Operation::Insert, Operation::Update, Operation::Delete];
        assert!(catalog.authorize(&editor, "Employees", &all).is_ok());
    }
}
