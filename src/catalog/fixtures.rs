//! Catalogs shared by the demo, the tests, the fuzz target and the
//! benchmarks' documentation: one copy of each.

/// The demo's `Employees` datasource and its roles: `employees_editor`
/// (what `serve --demo` grants `steve`), `hr_reader` and `hr_admin`.
pub const EMPLOYEES: &str = r#"
[datasources.Employees]
table = "employees"
[datasources.Employees.attributes]
empId    = { type = "Integer", primary_key = true, generated = true }
name     = { type = "String", required = true }
email    = { type = "Email", column = "email_address", updatable = false }
salary   = { type = "Decimal" }
active   = { type = "YN", default = "Y" }
hireDate = { type = "Date" }

[roles.employees_editor]
Employees = ["query", "insert", "update", "delete"]
[roles.hr_reader]
Employees = ["query"]
[roles.hr_admin]
Employees = ["query", "insert", "update", "delete"]
"#;

/// One attribute of every value family, keyed by a client-given `id`, shared
/// by every org: what the filter model tests and the fuzz target bind
/// against. The role `things_all` grants every operation on it.
pub const THINGS: &str = r#"
[datasources.Things]
table = "things"
scope = "global"
[datasources.Things.attributes]
id     = { type = "Integer", primary_key = true }
name   = { type = "String" }
amount = { type = "Decimal" }
score  = { type = "Double" }
day    = { type = "Date" }
at     = { type = "DateTime" }
flag   = { type = "YN" }
ok     = { type = "Boolean" }

[roles.things_all]
Things = ["query", "insert", "update", "delete"]
"#;
