//! Makes the database agree with the catalog at start: a missing table is
//! created; an existing table that lacks a column stops the start with a
//! message naming both.

use anyhow::{Result, bail};
use sea_query::{ColumnDef, Index, Table};

use super::{Catalog, Datasource};
use crate::store::{Backend, Store};

/// Creates missing tables and checks existing ones.
pub async fn sync_tables(store: &Store, catalog: &Catalog) -> Result<()> {
    let mut problems = Vec::new();
    for ds in catalog.datasources() {
        let existing = store.table_columns(&ds.table).await?;
        if existing.is_empty() {
            store.execute_ddl(&create_table(ds, store.backend())).await?;
        } else {
            let lacking = lacking_columns(ds, &existing);
            if !lacking.is_empty() {
                // No index on a table that does not match its datasource.
                problems.extend(lacking);
                continue;
            }
        }
        for index in &ds.indexes {
            store.execute_ddl(&create_index(ds, index, store.backend())).await?;
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// What an existing table with the columns `existing` lacks for `ds`, one
/// message per missing column.
fn lacking_columns(ds: &Datasource, existing: &[String]) -> Vec<String> {
    ds.attributes
        .iter()
        .filter(|attr| !existing.iter().any(|c| c.eq_ignore_ascii_case(&attr.column)))
        .map(|attr| {
            format!(
                "table {} lacks column {} (attribute {} of datasource {}): add the column or remove the attribute",
                ds.table, attr.column, attr.code, ds.name
            )
        })
        .collect()
}

/// `CREATE INDEX IF NOT EXISTS` for a declared index: led by the org column
/// on an org-scoped datasource (every statement filters on it), then the
/// declared attributes, then the primary key, so that a filter on them
/// reads only matching rows, in key order.
fn create_index(ds: &Datasource, attributes: &[usize], backend: Backend) -> String {
    let mut columns: Vec<&str> = ds.org.iter().map(|&o| ds.attributes[o].column.as_str()).collect();
    for &i in attributes {
        columns.push(&ds.attributes[i].column);
    }
    let name = format!("{}_by_{}", ds.table, columns.join("_"));
    for key in ds.primary_key() {
        if !columns.contains(&key.column.as_str()) {
            columns.push(&key.column);
        }
    }
    let mut index = Index::create();
    index.name(name).table(ds.table.clone()).if_not_exists();
    for column in columns {
        index.col(column.to_owned());
    }
    backend.build_index(&index)
}

/// `CREATE TABLE IF NOT EXISTS` for a datasource, in the store's dialect.
fn create_table(ds: &Datasource, backend: Backend) -> String {
    let mut table = Table::create();
    table.table(ds.table.clone()).if_not_exists();
    let keys: Vec<_> = ds.primary_key().collect();
    for attr in &ds.attributes {
        let mut column = ColumnDef::new(attr.column.clone());
        let identity = backend.identity_type().filter(|_| attr.generated);
        column.custom(identity.unwrap_or_else(|| backend.column_type(attr.kind.storage())));
        if attr.primary_key {
            column.not_null();
        }
        if attr.generated && keys.len() == 1 {
            column.primary_key();
            if backend.identity_type().is_none() {
                column.auto_increment();
            }
        }
        table.col(column);
    }
    if !keys.iter().any(|a| a.generated) || keys.len() > 1 {
        let mut index = Index::create();
        for key in &keys {
            index.col(key.column.clone());
        }
        table.primary_key(&mut index);
    }
    let mut sql = backend.build_table(&table);
    // Every statement of an org-scoped datasource filters on its org.
    if let Some(org) = ds.org {
        let mut index = Index::create();
        index.name(format!("{}_org_uid", ds.table)).table(ds.table.clone()).if_not_exists();
        index.col(ds.attributes[org].column.clone());
        for key in &keys {
            index.col(key.column.clone());
        }
        sql.push_str(";\n");
        sql.push_str(&backend.build_index(&index));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn employees() -> Catalog {
        let config = Config::parse(
            r#"
            [datasources.Employees]
            table = "employees"
            [datasources.Employees.attributes]
            empId  = { type = "Integer", primary_key = true, generated = true }
            name   = { type = "String", required = true }
            salary = { type = "Decimal" }
        "#,
        )
        .unwrap();
        Catalog::from_config(&config).unwrap()
    }

    #[test]
    fn sqlite_tables_get_an_autoincrement_key() {
        let catalog = employees();
        let sql = create_table(catalog.datasource("Employees").unwrap(), Backend::Sqlite);
        assert!(sql.contains("\"emp_id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"), "{sql}");
        assert!(sql.contains("\"last_update_date\" TEXT"), "{sql}");
    }

    #[test]
    fn a_declared_index_leads_with_the_org_and_ends_with_the_key() {
        let config = Config::parse(
            r#"
            [datasources.Employees]
            table = "employees"
            indexes = [["dept", "active"]]
            [datasources.Employees.attributes]
            empId  = { type = "Integer", primary_key = true, generated = true }
            dept   = { type = "String" }
            active = { type = "YN" }
        "#,
        )
        .unwrap();
        let catalog = Catalog::from_config(&config).unwrap();
        let ds = catalog.datasource("Employees").unwrap();
        let sql = create_index(ds, &ds.indexes[0], Backend::Postgres);
        assert_eq!(
            sql,
            r#"CREATE INDEX IF NOT EXISTS "employees_by_org_uid_dept_active" ON "employees" ("org_uid", "dept", "active", "emp_id")"#
        );
    }

    #[test]
    fn an_index_of_an_unknown_attribute_is_refused() {
        let config = Config::parse(
            r#"
            [datasources.Employees]
            table = "employees"
            indexes = [["dept"]]
            [datasources.Employees.attributes]
            empId  = { type = "Integer", primary_key = true, generated = true }
        "#,
        )
        .unwrap();
        let error = Catalog::from_config(&config).unwrap_err().to_string();
        assert!(error.contains("an index names \"dept\", which is not an attribute"), "{error}");
    }

    #[test]
    fn postgres_tables_get_an_identity_key() {
        let catalog = employees();
        let sql = create_table(catalog.datasource("Employees").unwrap(), Backend::Postgres);
        assert!(
            sql.contains("\"emp_id\" BIGINT GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY"),
            "{sql}"
        );
        assert!(sql.contains("\"salary\" NUMERIC"), "{sql}");
    }
}
