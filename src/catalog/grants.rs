//! Authorize: (principal, datasource, operations) becomes a [`Grant`] that
//! the planner consumes, or the 403 that the caller sees. An unknown
//! datasource and an ungranted one get the same answer, so the catalog
//! cannot be probed.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Catalog, Datasource};
use crate::auth::Principal;
use crate::config::Operation;
use crate::error::ApiError;

/// What the caller may do with one datasource. Today a grant covers all of
/// its rows and attributes; the planner takes it whole, so row filters and
/// attribute lists can narrow it in one place.
#[derive(Clone, Debug)]
pub struct Grant {
    pub ds: Arc<Datasource>,
    /// Every operation the caller's roles grant on `ds`.
    pub operations: BTreeSet<Operation>,
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
        let granted: BTreeSet<Operation> = principal
            .roles
            .iter()
            .filter_map(|role| self.roles.get(role)?.get(name))
            .flatten()
            .copied()
            .collect();
        let ds = match self.datasources.get(name) {
            Some(ds) if !granted.is_empty() => ds,
            _ => {
                return Err(ApiError::Forbidden(format!(
                    "Access Denied - no access to datasource {name}"
                )));
            }
        };
        if let Some(op) = operations.iter().find(|op| !granted.contains(op)) {
            return Err(ApiError::Forbidden(format!(
                "Access Denied - no {op} access to datasource {name}"
            )));
        }
        Ok(Grant { ds: Arc::clone(ds), operations: granted })
    }
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
