//! `POST /v1/api` (design §1.4, issue 4) as a client sees it, on both
//! backends: every filter operator, every post rule, one transaction per
//! request, grants, and input that tries to be SQL.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::config::Config;
use tessera::store::Store;

use crate::helpers::*;

const CATALOG: &str = r#"
    [datasources.Employees]
    table = "employees"
    [datasources.Employees.attributes]
    empId  = { type = "Integer", primary_key = true, generated = true }
    name   = { type = "String", required = true }
    salary = { type = "Decimal" }
    active = { type = "YN", default = "Y" }
    email  = { type = "Email", column = "email_address", updatable = false }
    hired  = { type = "Date" }
    seen   = { type = "DateTime" }
    remote = { type = "Boolean" }
    rating = { type = "Double" }

    [datasources.Codes]
    table = "codes"
    [datasources.Codes.attributes]
    code  = { type = "String", primary_key = true }
    label = { type = "String" }

    [datasources.Secrets]
    table = "secrets"
    [datasources.Secrets.attributes]
    id = { type = "Integer", primary_key = true, generated = true }

    [roles.hr_reader]
    Employees = ["query"]
    [roles.hr_admin]
    Employees = ["query", "insert", "update", "delete"]
    Codes = ["query", "insert", "update", "delete"]
"#;

/// The test config with the catalog above.
fn catalog(config: &mut Config) {
    use_catalog(config, CATALOG);
}

/// A signed-in caller of `/v1/api`.
struct Caller<'a> {
    app: &'a TestApp,
    jwt: String,
    csrf: String,
}

impl Caller<'_> {
    async fn call(&self, body: &Value) -> Response {
        let path = format!("/v1/api?csrf={}", self.csrf);
        let bearer = format!("Bearer {}", self.jwt);
        let body = body.to_string();
        self.app
            .post(
                &path,
                &[("Authorization", &bearer), ("Content-Type", "application/json")],
                Some(&body),
            )
            .await
    }

    async fn raw(&self, body: &str) -> Response {
        let bearer = format!("Bearer {}", self.jwt);
        self.app
            .post(
                "/v1/api",
                &[("Authorization", &bearer), ("X-CSRF-Token", &self.csrf)],
                Some(body),
            )
            .await
    }

    async fn ok(&self, body: &Value) -> Value {
        let response = self.call(body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "request {body} failed: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The names of the rows that `filter` picks, by `empId`.
    async fn names(&self, filter: Value) -> Vec<String> {
        let body = json!({"q": {"ds": "Employees", "query": {
            "filter": filter, "projection": {"name": 1}, "sort": {"empId": 1}, "limit": 100}}});
        let response = self.ok(&body).await;
        rows(&response, "q").iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    }

    async fn all(&self) -> Vec<Value> {
        let body = json!({"q": {"ds": "Employees", "query": {"sort": {"empId": 1}, "limit": 100}}});
        rows(&self.ok(&body).await, "q").to_vec()
    }
}

fn rows<'v>(response: &'v Value, alias: &str) -> &'v Vec<Value> {
    response["data"][alias]["data"].as_array().unwrap()
}

async fn caller<'a>(app: &'a TestApp, name: &str, roles: &[&str]) -> Caller<'a> {
    caller_in(app, name, "cloudio", roles).await
}

/// A new user of `org` with `roles`, signed in.
async fn caller_in<'a>(app: &'a TestApp, name: &str, org: &str, roles: &[&str]) -> Caller<'a> {
    app.add_user(name, org, "pw", roles).await;
    let s = app.sign_in_ok(name, "pw").await;
    Caller { app, jwt: s.jwt, csrf: s.csrf }
}

/// Rows whose names are awkward on purpose: case, wildcards, quotes, SQL.
fn seed_rows() -> Value {
    json!([
        {"_rs": "I", "name": "Dana", "salary": 5000, "active": "Y", "email": "dana@x.io", "hired": "2020-01-15", "seen": "2024-01-01T09:00:00Z", "remote": true, "rating": 4.5},
        {"_rs": "I", "name": "dana", "salary": 4000.50, "active": "N", "hired": "2021-06-01", "seen": "2024-01-02T18:30:00Z", "remote": false, "rating": 3},
        {"_rs": "I", "name": "O'Brien", "salary": 7000, "email": "ob@x.io", "hired": "2019-03-10", "seen": "2023-12-31T23:59:59.999999Z", "remote": true},
        {"_rs": "I", "name": "50% off", "rating": 1.25},
        {"_rs": "I", "name": "a_b", "salary": 100, "active": "N", "email": "ab@x.io", "hired": "2020-01-15", "seen": "2024-01-01T00:00:00Z", "remote": false, "rating": 2},
        {"_rs": "I", "name": "back\\slash", "salary": 250.75, "hired": "2022-02-28", "seen": "2024-01-01T23:59:59Z", "remote": true, "rating": 5},
        {"_rs": "I", "name": "' OR '1'='1", "salary": 1, "hired": "2020-01-16", "seen": "2024-01-03T00:00:00Z", "remote": false, "rating": 0},
        {"_rs": "I", "name": "Robert'); DROP TABLE employees;--", "salary": 2, "active": "N", "hired": "2020-01-14", "seen": "2023-06-01T12:00:00+02:00", "remote": true, "rating": 1},
        {"_rs": "I", "name": "", "salary": 0},
    ])
}

const ALL: [&str; 9] = [
    "Dana",
    "dana",
    "O'Brien",
    "50% off",
    "a_b",
    "back\\slash",
    "' OR '1'='1",
    "Robert'); DROP TABLE employees;--",
    "",
];

async fn seeded(app: &TestApp) -> Caller<'_> {
    let admin = caller(app, "ada", &["hr_admin"]).await;
    admin.ok(&json!({"seed": {"ds": "Employees", "data": seed_rows()}})).await;
    admin
}

/// One test per filter: the names it must return, in `empId` order.
macro_rules! filter_test {
    ($name:ident, $filter:tt, [$($expected:expr),* $(,)?]) => {
        both_backends!($name, config = catalog);
        async fn $name(app: TestApp) {
            let c = seeded(&app).await;
            let expected: Vec<&str> = vec![$($expected),*];
            assert_eq!(c.names(json!($filter)).await, expected, "filter {}", json!($filter));
        }
    };
}

/// Every name but these.
fn all_but(skip: &[&str]) -> Vec<&'static str> {
    ALL.iter().copied().filter(|n| !skip.contains(n)).collect()
}

// ---- string operators (case-sensitive; %, _ and \ are literal) ---------------

filter_test!(string_is_matches_exactly_and_case_sensitively, {"name": {"is": "Dana"}}, ["Dana"]);
filter_test!(string_like_contains, {"name": {"like": "ana"}}, ["Dana", "dana"]);
filter_test!(string_like_is_case_sensitive, {"name": {"like": "DANA"}}, []);
filter_test!(string_like_percent_is_literal, {"name": {"like": "%"}}, ["50% off"]);
filter_test!(string_like_underscore_is_literal, {"name": {"like": "_"}}, ["a_b"]);
filter_test!(string_like_backslash_is_literal, {"name": {"like": "\\"}}, ["back\\slash"]);
filter_test!(string_like_quote_is_literal, {"name": {"like": "'"}},
    ["O'Brien", "' OR '1'='1", "Robert'); DROP TABLE employees;--"]);
filter_test!(string_nct_excludes_containing, {"name": {"nct": "a"}},
    ["O'Brien", "50% off", "' OR '1'='1", "Robert'); DROP TABLE employees;--", ""]);
filter_test!(string_sw_starts_with, {"name": {"sw": "Da"}}, ["Dana"]);
filter_test!(string_sw_quote, {"name": {"sw": "'"}}, ["' OR '1'='1"]);
filter_test!(string_ew_ends_with, {"name": {"ew": "na"}}, ["Dana", "dana"]);
filter_test!(string_ew_comment_marker, {"name": {"ew": ";--"}}, ["Robert'); DROP TABLE employees;--"]);
filter_test!(string_in_matches_any, {"name": {"in": ["Dana", "a_b", "nobody"]}}, ["Dana", "a_b"]);
filter_test!(string_has_all, {"name": {"hasAll": ["D", "a"]}}, ["Dana"]);
filter_test!(string_has_any, {"name": {"hasAny": ["%", "_"]}}, ["50% off", "a_b"]);
filter_test!(string_not_any, {"name": {"notAny": ["a", "'"]}}, ["50% off", ""]);
filter_test!(string_empty_is_null_or_blank, {"name": {"empty": ""}}, [""]);
filter_test!(string_injection_value_is_inert, {"name": {"is": "' OR '1'='1"}}, ["' OR '1'='1"]);
filter_test!(string_semicolon_value_is_inert, {"name": {"is": "x'; DELETE FROM employees; --"}}, []);

both_backends!(string_not_and_not_empty_and_nin, config = catalog);
async fn string_not_and_not_empty_and_nin(app: TestApp) {
    let c = seeded(&app).await;
    assert_eq!(c.names(json!({"name": {"not": "Dana"}})).await, all_but(&["Dana"]));
    assert_eq!(c.names(json!({"name": {"notEmpty": ""}})).await, all_but(&[""]));
    assert_eq!(
        c.names(json!({"name": {"nin": ["Dana", "dana"]}})).await,
        all_but(&["Dana", "dana"])
    );
    assert_eq!(c.all().await.len(), 9, "the table is intact");
}

// ---- number operators ----------------------------------------------------------

filter_test!(number_eq, {"salary": {"eq": 5000}}, ["Dana"]);
filter_test!(number_eq_keeps_decimal_digits, {"salary": {"eq": 4000.5}}, ["dana"]);
filter_test!(number_ne_skips_nulls, {"salary": {"ne": 5000}},
    ["dana", "O'Brien", "a_b", "back\\slash", "' OR '1'='1", "Robert'); DROP TABLE employees;--", ""]);
filter_test!(number_null, {"salary": {"null": 1}}, ["50% off"]);
filter_test!(number_gt, {"salary": {"gt": 250.75}}, ["Dana", "dana", "O'Brien"]);
filter_test!(number_gte, {"salary": {"gte": 250.75}}, ["Dana", "dana", "O'Brien", "back\\slash"]);
filter_test!(number_lt, {"salary": {"lt": 2}}, ["' OR '1'='1", ""]);
filter_test!(number_lte, {"salary": {"lte": 2}}, ["' OR '1'='1", "Robert'); DROP TABLE employees;--", ""]);
filter_test!(number_in, {"salary": {"in": [1, 2, 3]}}, ["' OR '1'='1", "Robert'); DROP TABLE employees;--"]);
filter_test!(number_nin, {"salary": {"nin": [1, 2]}}, ["Dana", "dana", "O'Brien", "a_b", "back\\slash", ""]);
filter_test!(number_bn_is_inclusive, {"salary": {"bn": [100, 5000]}}, ["Dana", "dana", "a_b", "back\\slash"]);
filter_test!(integer_gt, {"empId": {"gt": 7}}, ["Robert'); DROP TABLE employees;--", ""]);
filter_test!(double_gte, {"rating": {"gte": 3}}, ["Dana", "dana", "back\\slash"]);

both_backends!(number_not_null, config = catalog);
async fn number_not_null(app: TestApp) {
    let c = seeded(&app).await;
    assert_eq!(c.names(json!({"salary": {"notNull": 1}})).await, all_but(&["50% off"]));
}

// ---- date and date-time operators ------------------------------------------------

filter_test!(date_after_is_strict, {"hired": {"after": "2020-01-15"}}, ["dana", "back\\slash", "' OR '1'='1"]);
filter_test!(date_before, {"hired": {"before": "2020-01-15"}}, ["O'Brien", "Robert'); DROP TABLE employees;--"]);
filter_test!(date_on, {"hired": {"on": "2020-01-15"}}, ["Dana", "a_b"]);
filter_test!(date_on_or_after, {"hired": {"onOrAfter": "2020-01-15"}}, ["Dana", "dana", "a_b", "back\\slash", "' OR '1'='1"]);
filter_test!(date_on_or_before, {"hired": {"onOrBefore": "2020-01-15"}}, ["Dana", "O'Brien", "a_b", "Robert'); DROP TABLE employees;--"]);
filter_test!(date_bn_is_inclusive, {"hired": {"bn": ["2020-01-14", "2020-01-16"]}},
    ["Dana", "a_b", "' OR '1'='1", "Robert'); DROP TABLE employees;--"]);
filter_test!(datetime_after_instant_is_strict, {"seen": {"after": "2024-01-01T09:00:00Z"}}, ["dana", "back\\slash", "' OR '1'='1"]);
filter_test!(datetime_after_day_is_after_that_day, {"seen": {"after": "2024-01-01"}}, ["dana", "' OR '1'='1"]);
filter_test!(datetime_before_day, {"seen": {"before": "2024-01-01"}}, ["O'Brien", "Robert'); DROP TABLE employees;--"]);
filter_test!(datetime_on_day, {"seen": {"on": "2024-01-01"}}, ["Dana", "a_b", "back\\slash"]);
filter_test!(datetime_on_or_after_instant, {"seen": {"onOrAfter": "2024-01-01T09:00:00Z"}}, ["Dana", "dana", "back\\slash", "' OR '1'='1"]);
filter_test!(datetime_on_or_before_day, {"seen": {"onOrBefore": "2024-01-01"}},
    ["Dana", "O'Brien", "a_b", "back\\slash", "Robert'); DROP TABLE employees;--"]);
filter_test!(datetime_bn_days_inclusive, {"seen": {"bn": ["2024-01-01", "2024-01-02"]}}, ["Dana", "dana", "a_b", "back\\slash"]);
filter_test!(datetime_offsets_are_utc, {"seen": {"on": "2023-06-01"}}, ["Robert'); DROP TABLE employees;--"]);
filter_test!(datetime_eq_microseconds, {"seen": {"eq": "2023-12-31T23:59:59.999999Z"}}, ["O'Brien"]);

// ---- YN, Boolean, groups -----------------------------------------------------------

filter_test!(yn_is, {"active": {"is": "N"}}, ["dana", "a_b", "Robert'); DROP TABLE employees;--"]);
filter_test!(boolean_is, {"remote": {"is": true}}, ["Dana", "O'Brien", "back\\slash", "Robert'); DROP TABLE employees;--"]);
filter_test!(boolean_not_skips_nulls, {"remote": {"not": true}}, ["dana", "a_b", "' OR '1'='1"]);
filter_test!(boolean_empty, {"remote": {"empty": ""}}, ["50% off", ""]);
filter_test!(group_or, [{"or": [{"name": {"is": "Dana"}}, {"salary": {"lt": 2}}]}], ["Dana", "' OR '1'='1", ""]);
filter_test!(group_and_inside_or, [{"or": [{"and": [{"active": {"is": "Y"}}, {"salary": {"gte": 5000}}]}, {"name": {"is": "a_b"}}]}],
    ["Dana", "O'Brien", "a_b"]);
filter_test!(group_not_is_none_of_and_keeps_nulls, [{"not": [{"remote": {"is": true}}]}], ["dana", "50% off", "a_b", "' OR '1'='1", ""]);
filter_test!(top_level_filters_are_anded, [{"active": {"is": "Y"}}, {"salary": {"lt": 300}}], ["back\\slash", "' OR '1'='1", ""]);

mod aggregate;
mod post;
mod tenants;

/// The catalog above, with an index on Employees' `active` and `name`.
fn indexed(config: &mut Config) {
    catalog(config);
    config.datasources["Employees"].indexes = vec![vec!["active".into(), "name".into()]];
}

both_backends!(a_declared_index_is_made_at_start_and_answers_alike, config = indexed);
async fn a_declared_index_is_made_at_start_and_answers_alike(app: TestApp) {
    let sql = match app.db.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'employees'"
        }
        Backend::Postgres => "SELECT indexname FROM pg_indexes WHERE tablename = 'employees'",
    };
    let names: Vec<String> = match app.store() {
        Store::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    };
    assert!(names.iter().any(|n| n == "employees_by_org_uid_active_name"), "{names:?}");
    let c = seeded(&app).await;
    assert_eq!(c.names(json!({"active": {"is": "N"}, "name": {"sw": "d"}})).await, ["dana"]);
}

/// PostgreSQL's timestamps reach the client as `to_char(t AT TIME ZONE
/// 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` writes them, which is what
/// tessera selected before it wrote them out itself (issue 17): each edge
/// of the range, read through the data path's one door.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_timestamps_read_as_to_char_writes_them() {
    use sea_query::Values;
    use sea_query_sqlx::SqlxValues;
    use tessera::store::dialect::Statement;
    use tessera::store::exec::Work;

    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let store = Store::open(&db.url).await.unwrap();
    let times = [
        "2026-01-01 00:00:00+00",
        "2026-01-01 12:34:56.5+00",
        "1999-12-31 23:59:59.999999+00",
        "2000-01-01 00:00:00+00",
        "1900-02-28 01:02:03.000001+00",
        "1970-01-01 00:00:00+00",
        "0001-01-01 00:00:00+00",
        "0001-12-31 23:59:59+00 BC",
        "0044-03-15 12:00:00.25+00 BC",
        "4713-01-01 00:00:00+00 BC",
        "9999-12-31 23:59:59.999999+00",
        "12345-06-07 08:09:10.111111+00",
        "2024-06-01 12:00:00+05:30",
        "infinity",
        "-infinity",
    ];
    let rows: Vec<String> = times.iter().map(|t| format!("('{t}'::timestamptz)")).collect();
    let sql = format!(
        r#"SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), t FROM (VALUES {}) AS v(t)"#,
        rows.join(", ")
    );
    let mut db_work = store.begin(Work::OneRead).await.unwrap();
    let read = db_work.fetch(Statement { sql, values: SqlxValues(Values(Vec::new())) }).await;
    let read = read.unwrap();
    assert_eq!(read.len(), times.len());
    for (r, time) in times.iter().enumerate() {
        let cells = read.cells(r, 2).unwrap();
        assert_eq!(cells[1], cells[0], "{time}");
    }
    store.close().await;
}
