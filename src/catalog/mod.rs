//! The catalog (design §3): datasources, their attributes and types, and the
//! roles that grant operations on them — all from the config file, checked
//! once at start. Authorization is a visible call here (see [`grants`]):
//! `catalog.authorize(&principal, "Employees", &[Operation::Delete])?`.

mod audit_trail;
pub mod fixtures;
mod grants;
mod schema;
mod types;
pub mod values;
mod visible;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::config::{AttributeConfig, Config, DatasourceConfig, GrantConfig, Operation, Scope};

pub use audit_trail::{AUDIT_TABLE, AUDIT_TRAIL};
pub use grants::{Grant, Rule, SessionValues};
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
    /// The `orgUid` attribute of an org-scoped datasource (design §4.5);
    /// `None` for a global one.
    pub org: Option<usize>,
    /// Whether writes are recorded in the audit trail (design §4.6).
    pub audit: bool,
    /// Declared indexes: attribute indexes, in column order.
    pub indexes: Vec<Vec<usize>>,
    by_code: HashMap<String, usize>,
}

impl Datasource {
    /// The index of the attribute with this code: the one look-up by code.
    pub fn index_of(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    /// The attribute with this code.
    pub fn attribute(&self, code: &str) -> Option<&Attribute> {
        self.index_of(code).map(|i| &self.attributes[i])
    }

    /// The primary-key attributes.
    pub fn primary_key(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(|a| a.primary_key)
    }

    /// The index of the WHO attribute of this kind (the WHO attributes come
    /// last, in [`WHO`] order).
    pub fn who_index(&self, who: Who) -> usize {
        let index = match who {
            Who::CreatedBy => 0,
            Who::CreationDate => 1,
            Who::LastUpdatedBy => 2,
            Who::LastUpdateDate => 3,
        };
        self.attributes.len() - 4 + index
    }

    /// The WHO attribute of this kind.
    pub fn who(&self, who: Who) -> &Attribute {
        &self.attributes[self.who_index(who)]
    }
}

/// All datasources and role grants.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    datasources: BTreeMap<String, Arc<Datasource>>,
    /// role → datasource → what the role grants on it.
    roles: BTreeMap<String, BTreeMap<String, RoleGrant>>,
}

/// What one role grants on one datasource, checked against the catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleGrant {
    pub operations: BTreeSet<Operation>,
    /// The role's row filter as written (the query language, with `$user`,
    /// `$org`, `$session`); every row when `None`.
    pub filter: Option<serde_json::Value>,
    /// The attributes the role sees, by index; every one when `None`.
    pub attributes: Option<BTreeSet<usize>>,
}

/// The name of the org attribute of an org-scoped datasource.
pub const ORG_UID: &str = "orgUid";

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
        if config.datasources.contains_key(AUDIT_TRAIL) {
            problems.push(format!(
                "datasource {AUDIT_TRAIL} is the system audit trail; give yours another name"
            ));
        }
        datasources.insert(AUDIT_TRAIL.to_owned(), Arc::new(audit_trail::datasource()));
        let mut roles = BTreeMap::new();
        for (role, grants) in &config.roles {
            let mut granted = BTreeMap::new();
            for (name, grant) in grants {
                let Some(ds) = datasources.get(name) else {
                    if !config.datasources.contains_key(name) {
                        problems.push(format!(
                            "role {role} grants datasource {name}, which is not defined in [datasources]"
                        ));
                    }
                    continue;
                };
                if name == AUDIT_TRAIL && grant.operations().iter().any(|o| *o != Operation::Query)
                {
                    problems.push(format!(
                        "role {role}: {AUDIT_TRAIL} is read-only; grant it [\"query\"] only"
                    ));
                    continue;
                }
                match role_grant(ds, grant) {
                    Ok(grant) => {
                        granted.insert(name.clone(), grant);
                    }
                    Err(e) => problems.push(format!("role {role}, datasource {name}: {e}")),
                }
            }
            roles.insert(role.clone(), granted);
        }
        if problems.is_empty() { Ok(Self { datasources, roles }) } else { Err(problems.join("\n")) }
    }

    /// Every datasource.
    pub fn datasources(&self) -> impl Iterator<Item = &Arc<Datasource>> {
        self.datasources.values()
    }

    /// The datasource of this name, whoever asks: for the CLI and the
    /// checks at start, never for a request (see [`Catalog::authorize`]).
    pub fn datasource(&self, name: &str) -> Option<&Arc<Datasource>> {
        self.datasources.get(name)
    }

    /// Every role grant: (role, datasource, grant).
    pub fn role_grants(&self) -> impl Iterator<Item = (&str, &str, &RoleGrant)> {
        self.roles.iter().flat_map(|(role, grants)| {
            grants.iter().map(move |(ds, grant)| (role.as_str(), ds.as_str(), grant))
        })
    }

    /// Whether a role of this name is defined.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }
}

/// A grant from the config file, its attribute codes resolved.
fn role_grant(ds: &Datasource, grant: &GrantConfig) -> Result<RoleGrant, String> {
    let operations = grant.operations().iter().copied().collect();
    let GrantConfig::Rules(rules) = grant else {
        return Ok(RoleGrant { operations, filter: None, attributes: None });
    };
    let attributes = match &rules.attributes {
        None => None,
        Some(codes) => Some(
            codes
                .iter()
                .map(|code| {
                    ds.index_of(code)
                        .ok_or_else(|| format!("attributes: unknown attribute {code:?}"))
                })
                .collect::<Result<BTreeSet<usize>, String>>()?,
        ),
    };
    Ok(RoleGrant { operations, filter: rules.filter.clone(), attributes })
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
    let org = (config.scope == Scope::Org).then_some(attributes.len());
    if org.is_some() {
        if config.attributes.contains_key(ORG_UID) {
            problems.push(format!(
                "datasource {name}: {ORG_UID} is the org attribute that the server adds to an org-scoped datasource; remove it, or say scope = \"global\""
            ));
        }
        attributes.push(Attribute {
            code: ORG_UID.into(),
            column: "org_uid".into(),
            kind: AttrType::String,
            primary_key: false,
            generated: false,
            required: false,
            updatable: false,
            default: None,
            who: None,
        });
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
    let by_code: HashMap<String, usize> =
        attributes.iter().enumerate().map(|(i, a)| (a.code.clone(), i)).collect();
    let indexes = declared_indexes(name, &config.indexes, &by_code).unwrap_or_else(|problem| {
        problems.push(problem);
        Vec::new()
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Datasource {
        name: name.into(),
        table: config.table.clone(),
        attributes,
        org,
        audit: config.audit,
        indexes,
        by_code,
    })
}

/// Most attributes in one declared index.
const MAX_INDEX_ATTRIBUTES: usize = 8;

/// The `indexes` of a datasource as attribute indexes; each names one to
/// [`MAX_INDEX_ATTRIBUTES`] attributes of the datasource, none twice.
fn declared_indexes(
    ds: &str,
    declared: &[Vec<String>],
    by_code: &HashMap<String, usize>,
) -> Result<Vec<Vec<usize>>, String> {
    let mut indexes = Vec::new();
    for codes in declared {
        if codes.is_empty() || codes.len() > MAX_INDEX_ATTRIBUTES {
            return Err(format!(
                "datasource {ds}: an index names 1 to {MAX_INDEX_ATTRIBUTES} attribute codes, e.g. indexes = [[\"dept\"]]"
            ));
        }
        let mut index = Vec::new();
        for code in codes {
            let Some(&i) = by_code.get(code) else {
                return Err(format!(
                    "datasource {ds}: an index names {code:?}, which is not an attribute"
                ));
            };
            if index.contains(&i) {
                return Err(format!("datasource {ds}: an index names {code} twice"));
            }
            index.push(i);
        }
        indexes.push(index);
    }
    Ok(indexes)
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
            values::from_json(kind, &json, false)
                .map_err(|e| format!("{at}: default {json}: {e}"))?;
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

    fn catalog(text: &str) -> Result<Catalog, String> {
        Catalog::from_config(&Config::parse(text).unwrap())
    }

    #[test]
    fn the_design_catalog_loads_with_who_attributes() {
        let catalog = catalog(fixtures::EMPLOYEES).unwrap();
        let ds = catalog.datasource("Employees").unwrap();
        let codes: Vec<_> = ds.attributes.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "empId",
                "name",
                "email",
                "salary",
                "active",
                "hireDate",
                "orgUid",
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
    fn snake_case_follows_the_design() {
        assert_eq!(snake_case("empId"), "emp_id");
        assert_eq!(snake_case("lastUpdateDate"), "last_update_date");
        assert_eq!(snake_case("name"), "name");
    }
}
