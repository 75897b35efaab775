//! The catalog (design §3): datasources, their attributes and types, and the
//! roles that grant operations on them — all from the config file, checked
//! once at start. Authorization is a visible call here:
//! `catalog.require(&principal, "Employees", Operation::Delete)?`.

mod schema;
mod types;
mod visible;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::auth::Principal;
use crate::config::{AttributeConfig, Config, DatasourceConfig, Operation};
use crate::error::ApiError;

pub use schema::sync_tables;
pub use types::{AttrType, Family};
pub use visible::Visible;

/// The four WHO attributes every datasource has, with their columns.
pub const WHO: [(&str, &str, AttrType); 4] = [
    ("createdBy", "created_by", AttrType::UserId),
    ("creationDate", "creation_date", AttrType::DateTime),
    ("lastUpdatedBy", "last_updated_by", AttrType::UserId),
    ("lastUpdateDate", "last_update_date", AttrType::DateTime),
];

/// Which WHO attribute an attribute is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    CreatedBy,
    CreationDate,
    LastUpdatedBy,
    LastUpdateDate,
}

/// One attribute of a datasource.
#[derive(Clone, Debug)]
pub struct Attribute {
    /// The code clients use (`empId`).
    pub code: String,
    /// The table column (`emp_id`).
    pub column: String,
    pub kind: AttrType,
    pub primary_key: bool,
    /// The database makes its value on insert (an identity column).
    pub generated: bool,
    pub required: bool,
    pub updatable: bool,
    /// Used on insert when a row has no value for the attribute.
    pub default: Option<serde_json::Value>,
    pub who: Option<Who>,
}

/// A datasource: a table and its attributes, in file order, WHO last.
#[derive(Clone, Debug)]
pub struct Datasource {
    pub name: String,
    pub table: String,
    pub attributes: Vec<Attribute>,
    by_code: HashMap<String, usize>,
}

impl Datasource {
    /// The attribute with this code.
    pub fn attribute(&self, code: &str) -> Option<&Attribute> {
        self.by_code.get(code).map(|&i| &self.attributes[i])
    }

    /// The primary-key attributes.
    pub fn primary_key(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(|a| a.primary_key)
    }

    /// The WHO attribute of this kind.
    pub fn who(&self, who: Who) -> &Attribute {
        let index = match who {
            Who::CreatedBy => 0,
            Who::CreationDate => 1,
            Who::LastUpdatedBy => 2,
            Who::LastUpdateDate => 3,
        };
        &self.attributes[self.attributes.len() - 4 + index]
    }
}

/// All datasources and role grants.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    datasources: BTreeMap<String, Arc<Datasource>>,
    /// role → datasource → operations.
    roles: BTreeMap<String, BTreeMap<String, BTreeSet<Operation>>>,
}

impl Catalog {
    /// Checks the config's `[datasources]` and `[roles]`; the error lists
    /// every problem found, one per line.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut problems = Vec::new();
        let mut datasources = BTreeMap::new();
        for (name, ds) in &config.datasources {
            match datasource(name, ds) {
                Ok(ds) => {
                    datasources.insert(name.clone(), Arc::new(ds));
                }
                Err(mut errs) => problems.append(&mut errs),
            }
        }
        let mut roles = BTreeMap::new();
        for (role, grants) in &config.roles {
            let mut granted = BTreeMap::new();
            for (ds, ops) in grants {
                if !config.datasources.contains_key(ds) {
                    problems.push(format!(
                        "role {role} grants datasource {ds}, which is not defined in [datasources]"
                    ));
                }
                granted.insert(ds.clone(), ops.iter().copied().collect());
            }
            roles.insert(role.clone(), granted);
        }
        if problems.is_empty() { Ok(Self { datasources, roles }) } else { Err(problems.join("\n")) }
    }

    /// Every datasource.
    pub fn datasources(&self) -> impl Iterator<Item = &Arc<Datasource>> {
        self.datasources.values()
    }

    /// Whether a role of this name is defined.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// The datasource if one of the caller's roles grants `op` on it; else
    /// 403. An unknown datasource and an ungranted one get the same answer,
    /// so the catalog cannot be probed.
    pub fn require(
        &self,
        principal: &Principal,
        name: &str,
        op: Operation,
    ) -> Result<&Arc<Datasource>, ApiError> {
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
        if !granted.contains(&op) {
            return Err(ApiError::Forbidden(format!(
                "Access Denied - no {op} access to datasource {name}"
            )));
        }
        Ok(ds)
    }
}

/// An identifier safe to use as a table or column name everywhere.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= 63
}

/// `empId` → `emp_id`.
pub fn snake_case(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 4);
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn datasource(name: &str, config: &DatasourceConfig) -> Result<Datasource, Vec<String>> {
    let mut problems = Vec::new();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > 128 {
        problems.push(format!(
            "datasource {name:?}: a name has only letters, digits and '_', at most 128"
        ));
    }
    if !is_identifier(&config.table) {
        problems.push(format!(
            "datasource {name}: table {:?} is not a plain SQL identifier (letters, digits, '_')",
            config.table
        ));
    }
    let mut attributes = Vec::new();
    for (code, attr) in &config.attributes {
        match attribute(name, code, attr) {
            Ok(a) => attributes.push(a),
            Err(e) => problems.push(e),
        }
    }
    for (code, column, kind) in WHO {
        if config.attributes.contains_key(code) {
            problems.push(format!(
                "datasource {name}: {code} is a WHO attribute that the server adds; remove it"
            ));
            continue;
        }
        let who = match code {
            "createdBy" => Who::CreatedBy,
            "creationDate" => Who::CreationDate,
            "lastUpdatedBy" => Who::LastUpdatedBy,
            _ => Who::LastUpdateDate,
        };
        attributes.push(Attribute {
            code: code.into(),
            column: column.into(),
            kind,
            primary_key: false,
            generated: false,
            required: false,
            updatable: false,
            default: None,
            who: Some(who),
        });
    }
    if !attributes.iter().any(|a| a.primary_key) {
        problems.push(format!(
            "datasource {name} has no primary key: mark an attribute with primary_key = true"
        ));
    }
    let mut columns = BTreeSet::new();
    for a in &attributes {
        if !columns.insert(a.column.as_str()) {
            problems.push(format!("datasource {name}: two attributes use the column {}", a.column));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let by_code = attributes.iter().enumerate().map(|(i, a)| (a.code.clone(), i)).collect();
    Ok(Datasource { name: name.into(), table: config.table.clone(), attributes, by_code })
}

fn attribute(ds: &str, code: &str, config: &AttributeConfig) -> Result<Attribute, String> {
    let at = format!("datasource {ds}, attribute {code}");
    if !is_identifier(code) || code.starts_with('_') {
        return Err(format!(
            "{at}: a code has only letters, digits and '_', and starts with a letter"
        ));
    }
    let kind = AttrType::parse(&config.kind).ok_or_else(|| {
        format!("{at}: unknown type {:?} (known: {})", config.kind, AttrType::NAMES.join(", "))
    })?;
    let column = config.column.clone().unwrap_or_else(|| snake_case(code));
    if !is_identifier(&column) {
        return Err(format!("{at}: column {column:?} is not a plain SQL identifier"));
    }
    if config.generated && !(config.primary_key && kind == AttrType::Integer) {
        return Err(format!("{at}: only an Integer primary key can be generated"));
    }
    let default = match &config.default {
        None => None,
        Some(value) => {
            let json = serde_json::to_value(value).map_err(|e| format!("{at}: default: {e}"))?;
            kind.check_json(&json).map_err(|e| format!("{at}: default {json}: {e}"))?;
            Some(json)
        }
    };
    Ok(Attribute {
        code: code.into(),
        column,
        kind,
        primary_key: config.primary_key,
        generated: config.generated,
        required: config.required,
        updatable: config.updatable && !config.primary_key,
        default,
        who: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn catalog(text: &str) -> Result<Catalog, String> {
        Catalog::from_config(&Config::parse(text).unwrap())
    }

    const EMPLOYEES: &str = r#"
        [datasources.Employees]
        table = "employees"
        [datasources.Employees.attributes]
        empId  = { type = "Integer", primary_key = true, generated = true }
        name   = { type = "String", required = true }
        salary = { type = "Decimal" }
        email  = { type = "Email", column = "email_address", updatable = false }
        [roles.hr_reader]
        Employees = ["query"]
    "#;

    fn principal(roles: &[&str]) -> Principal {
        let identity = crate::auth::gate::Identity {
            session_id: "s".into(),
            user_id: 1,
            user_name: "u".into(),
            org_uid: "o".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        Principal { identity: Arc::new(identity), expires_at: 0, idle_expires_at: 0 }
    }

    #[test]
    fn the_design_catalog_loads_with_who_attributes() {
        let catalog = catalog(EMPLOYEES).unwrap();
        let ds = catalog.datasources().next().unwrap();
        let codes: Vec<_> = ds.attributes.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "empId",
                "name",
                "salary",
                "email",
                "createdBy",
                "creationDate",
                "lastUpdatedBy",
                "lastUpdateDate"
            ]
        );
        assert_eq!(ds.attribute("empId").unwrap().column, "emp_id");
        assert_eq!(ds.attribute("email").unwrap().column, "email_address");
        assert_eq!(ds.who(Who::LastUpdateDate).column, "last_update_date");
    }

    #[test]
    fn problems_are_named_precisely() {
        let err = catalog(
            r#"
            [datasources.A]
            table = "a"
            [datasources.A.attributes]
            x = { type = "Strnig" }
            [roles.r]
            Missing = ["query"]
        "#,
        )
        .unwrap_err();
        assert!(err.contains("datasource A, attribute x: unknown type \"Strnig\""), "{err}");
        assert!(err.contains("datasource A has no primary key"), "{err}");
        assert!(err.contains("role r grants datasource Missing"), "{err}");
    }

    #[test]
    fn bad_identifiers_and_defaults_are_refused() {
        let err = catalog(
            r#"
            [datasources.A]
            table = "a; DROP TABLE users"
            [datasources.A.attributes]
            id = { type = "Integer", primary_key = true }
            n = { type = "Integer", default = "seven" }
        "#,
        )
        .unwrap_err();
        assert!(err.contains("not a plain SQL identifier"), "{err}");
        assert!(err.contains("attribute n: default"), "{err}");
    }

    #[test]
    fn require_grants_and_refuses_alike() {
        let catalog = catalog(EMPLOYEES).unwrap();
        let reader = principal(&["hr_reader"]);
        assert!(catalog.require(&reader, "Employees", Operation::Query).is_ok());
        let denied =
            |name: &str, op| catalog.require(&reader, name, op).unwrap_err().body().message;
        assert_eq!(
            denied("Employees", Operation::Delete),
            "Access Denied - no delete access to datasource Employees"
        );
        assert_eq!(
            denied("Nope", Operation::Query),
            "Access Denied - no access to datasource Nope"
        );
        let nobody = principal(&[]);
        let unknown = catalog.require(&nobody, "Nope", Operation::Query).unwrap_err().body();
        let ungranted = catalog.require(&nobody, "Nope", Operation::Query).unwrap_err().body();
        assert_eq!(unknown, ungranted);
        let ungranted = catalog.require(&nobody, "Employees", Operation::Query).unwrap_err().body();
        assert_eq!(ungranted.message, "Access Denied - no access to datasource Employees");
    }

    #[test]
    fn snake_case_follows_the_design() {
        assert_eq!(snake_case("empId"), "emp_id");
        assert_eq!(snake_case("lastUpdateDate"), "last_update_date");
        assert_eq!(snake_case("name"), "name");
    }
}
