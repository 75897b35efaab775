//! Bounded work per request (design §4.8, issue 10): a statement past
//! `statement_timeout` is a 503 that says what to change, on both backends;
//! every documented limit answers 200 at the limit and 400 past it.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::config::{Config, HumanDuration};
use tessera::store::Store;

use crate::helpers::*;

const CATALOG: &str = r#"
    [datasources.Items]
    table = "items"
    scope = "global"
    [datasources.Items.attributes]
    id   = { type = "Integer", primary_key = true, generated = true }
    name = { type = "String" }
    n    = { type = "Decimal" }

    [roles.reader]
    Items = ["query", "insert"]
"#;

fn catalog(config: &mut Config) {
    let parsed = Config::parse(CATALOG).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

fn short_statements(config: &mut Config) {
    catalog(config);
    config.network.statement_timeout = HumanDuration(Duration::from_millis(300));
}

/// Signs in a reader and returns a function-like caller of `/v1/api`.
async fn reader(app: &TestApp) -> (String, String) {
    app.add_user("reader", "cloudio", "pw", &["reader"]).await;
    let s = app.sign_in_ok("reader", "pw").await;
    (s.jwt, s.csrf)
}

async fn query(app: &TestApp, who: &(String, String), filter: Value) -> reqwest::Response {
    call(app, who, json!({"q": {"ds": "Items", "query": {"filter": filter, "limit": 1}}})).await
}

async fn call(app: &TestApp, who: &(String, String), body: Value) -> reqwest::Response {
    call_text(app, who, &body.to_string()).await
}

async fn call_text(app: &TestApp, who: &(String, String), body: &str) -> reqwest::Response {
    let bearer = format!("Bearer {}", who.0);
    app.post(
        &format!("/v1/api?csrf={}", who.1),
        &[("Authorization", &bearer), ("Content-Type", "application/json")],
        Some(body),
    )
    .await
}

/// 100,000 rows, written on a connection of its own (the server's pool is
/// limited).
async fn seed_many_items(app: &TestApp) {
    let admin = Store::connect(&app.db.url).await.unwrap();
    admin
        .execute_ddl(
            "INSERT INTO items (name, created_by, creation_date, last_updated_by, last_update_date) \
             WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 100000) \
             SELECT 'item ' || i, 'x', CURRENT_TIMESTAMP, 'x', CURRENT_TIMESTAMP FROM k",
        )
        .await
        .unwrap();
    admin.close().await;
}

/// 200 patterns over 100,000 rows, none matching: seconds of work.
fn heavy_filter() -> Value {
    let patterns: Vec<Value> =
        (0..200).map(|i| json!({"name": {"like": format!("%nothing {i}%")}})).collect();
    json!([{"or": patterns}])
}

both_backends!(a_statement_past_statement_timeout_is_503_not_500, config = short_statements);
async fn a_statement_past_statement_timeout_is_503_not_500(app: TestApp) {
    seed_many_items(&app).await;
    let who = reader(&app).await;
    let response = query(&app, &who, heavy_filter()).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = assert_error(response, 503, "Service Unavailable").await;
    assert!(body.message.contains("statement_timeout"), "{}", body.message);
    // A cheap query on the same server still answers.
    let response = query(&app, &who, json!({"id": {"eq": 1}})).await;
    assert_eq!(response.status(), 200);
}

/// Only SQLite has one writer at a time.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_sqlite_writer_is_503_with_retry_after() {
    use sqlx::Connection;
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let mut config = test_config();
    short_statements(&mut config);
    let app = TestApp::spawn(db, config).await;
    let who = reader(&app).await;
    let mut holder = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let insert = json!({"w": {"ds": "Items", "data": [{"_rs": "I", "name": "x"}]}});
    let response = call(&app, &who, insert.clone()).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = assert_error(response, 503, "Service Unavailable").await;
    assert!(body.message.contains("busy"), "{}", body.message);
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(call(&app, &who, insert).await.status(), 200);
}

both_backends!(housekeeping_prunes_sessions_ended_more_than_max_lifetime_ago);
async fn housekeeping_prunes_sessions_ended_more_than_max_lifetime_ago(app: TestApp) {
    app.add_user("ada", "cloudio", "pw", &[]).await;
    let ended = app.sign_in_ok("ada", "pw").await;
    let ended_id = app.state.store.open_sessions(Some("ada")).await.unwrap()[0].id.clone();
    assert_eq!(app.sign_out(&ended.jwt, &ended.csrf).await.status(), 200);
    app.sign_in_ok("ada", "pw").await;
    let open_id = app.state.store.open_sessions(Some("ada")).await.unwrap()[0].id.clone();
    let store = &app.state.store;
    let now = app.clock.now();
    let hour = 3_600_000_000;
    assert_eq!(store.prune_sessions(now - hour, hour).await.unwrap(), 0);
    // Past the sign-out by more than the cut: the ended one goes, the open one stays.
    assert_eq!(store.prune_sessions(now + 1, 100 * hour).await.unwrap(), 1);
    assert!(store.session(&ended_id).await.unwrap().is_none());
    assert!(store.session(&open_id).await.unwrap().is_some());
    // Past its lifetime and then max_lifetime more: the never-ended one goes too.
    assert_eq!(store.prune_sessions(now + 2 * hour + 1, hour).await.unwrap(), 1);
    assert!(store.session(&open_id).await.unwrap().is_none());
}

both_backends!(a_list_of_1000_values_answers_200_and_1001_answers_400, config = catalog);
async fn a_list_of_1000_values_answers_200_and_1001_answers_400(app: TestApp) {
    let who = reader(&app).await;
    for op in ["in", "nin", "hasAny", "hasAll", "notAny"] {
        let at: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let response = query(&app, &who, json!({"name": {op: at}})).await;
        let status = response.status();
        assert_eq!(status, 200, "{op} with 1000 values: {}", response.text().await.unwrap());
        let past: Vec<String> = (0..1001).map(|i| format!("v{i}")).collect();
        let body = assert_error(
            query(&app, &who, json!({"name": {op: past}})).await,
            400,
            "Invalid Request",
        )
        .await;
        assert!(body.message.contains("1000"), "{op}: {}", body.message);
    }
}

/// Asserts that `body` answers 200, and `past` a 400 whose message names `limit`.
async fn at_and_past(
    app: &TestApp,
    who: &(String, String),
    what: &str,
    body: Value,
    past: Value,
    limit: &str,
) {
    let response = call(app, who, body).await;
    let status = response.status();
    assert_eq!(status, 200, "{what} at the limit: {}", response.text().await.unwrap());
    let error = assert_error(call(app, who, past).await, 400, "Invalid Request").await;
    assert!(error.message.contains(limit), "{what} past the limit: {}", error.message);
}

/// `n` filter groups nested in one another around one condition.
fn nested_groups(n: usize) -> Value {
    (0..n).fold(json!({"name": {"is": "x"}}), |inner, _| json!({"or": [inner]}))
}

/// A query of Items with `query` merged into `{"limit": 1}`.
fn items(query: Value) -> Value {
    let mut full = json!({"limit": 1});
    full.as_object_mut().unwrap().extend(query.as_object().unwrap().clone());
    json!({"ds": "Items", "query": full})
}

/// A body of `n` aliases, each the query `query`.
fn aliases(n: usize, query: &Value) -> Value {
    Value::Object((0..n).map(|i| (format!("a{i}"), query.clone())).collect())
}

/// Items, and `Wide` with 65 attributes `c0`..`c64` for the group-by limit.
fn wide_catalog(config: &mut Config) {
    let columns: String = (0..65).map(|i| format!("c{i} = {{ type = \"String\" }}\n")).collect();
    let text = format!(
        "{CATALOG}\n[datasources.Wide]\ntable = \"wide\"\nscope = \"global\"\n\
         [datasources.Wide.attributes]\nid = {{ type = \"Integer\", primary_key = true, generated = true }}\n\
         {columns}\n[roles.reader.Wide]\noperations = [\"query\"]\n"
    );
    let parsed = Config::parse(&text).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

both_backends!(every_documented_limit_answers_200_at_it_and_400_past_it, config = wide_catalog);
async fn every_documented_limit_answers_200_at_it_and_400_past_it(app: TestApp) {
    let who = reader(&app).await;
    let one = items(json!({}));
    at_and_past(&app, &who, "aliases", aliases(64, &one), aliases(65, &one), "64").await;

    let rows = |n: usize| {
        let data: Vec<Value> =
            (0..n).map(|i| json!({"_rs": "I", "name": format!("r{i}")})).collect();
        json!({"w": {"ds": "Items", "data": data}})
    };
    at_and_past(&app, &who, "post rows", rows(1000), rows(1001), "1000").await;

    // The top level is the first of 16 levels.
    let depth = |n| json!({"q": items(json!({"filter": [nested_groups(n)]}))});
    at_and_past(&app, &who, "nesting", depth(15), depth(16), "16").await;

    let nodes = |n: usize| {
        let conditions: Vec<Value> =
            (0..n - 1).map(|i| json!({"name": {"is": format!("v{i}")}})).collect();
        json!({"q": items(json!({"filter": [{"or": conditions}]}))})
    };
    at_and_past(&app, &who, "filter nodes", nodes(256), nodes(257), "256").await;

    let values = |extra: usize| {
        let list: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let mut conditions: Vec<Value> = (0..5).map(|_| json!({"name": {"in": list}})).collect();
        conditions.extend((0..extra).map(|_| json!({"name": {"is": "x"}})));
        json!({"q": items(json!({"filter": [{"or": conditions}]}))})
    };
    at_and_past(&app, &who, "filter values", values(0), values(1), "5000").await;

    let limit = |n: u64| json!({"q": {"ds": "Items", "query": {"limit": n}}});
    at_and_past(&app, &who, "limit", limit(1000), limit(1001), "1000").await;
    let offset = |n: Value| json!({"q": items(json!({"offset": n}))});
    at_and_past(
        &app,
        &who,
        "offset",
        offset(json!(i64::MAX)),
        offset(json!(1u64 << 63)),
        "9223372036854775807",
    )
    .await;
    at_and_past(&app, &who, "offset", offset(json!(0)), offset(json!(-1)), "offset").await;

    let aggregates = |n: usize| {
        let list: Vec<Value> =
            (0..n).map(|i| json!({"func": "Count", "intoCode": format!("c{i}")})).collect();
        json!({"q": items(json!({"aggregateList": list}))})
    };
    at_and_past(&app, &who, "aggregates", aggregates(64), aggregates(65), "64").await;
    let groups = |n: usize| {
        let codes: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let query = json!({"groupByAttributeCodeList": codes, "aggregateList": [{"func": "Count"}], "limit": 1});
        json!({"q": {"ds": "Wide", "query": query}})
    };
    at_and_past(&app, &who, "group-by codes", groups(64), groups(65), "64").await;

    // JSON itself: no body nested 128 deep is a valid request, so only past it.
    let deep = (0..129).fold(json!(1), |inner, _| json!([inner]));
    let error = assert_error(
        call(&app, &who, json!({"q": items(json!({"x": deep}))})).await,
        400,
        "Invalid Request",
    )
    .await;
    assert!(error.message.contains("128"), "{}", error.message);
}

both_backends!(huge_numbers_answer_200_or_a_400_that_names_the_value, config = catalog);
async fn huge_numbers_answer_200_or_a_400_that_names_the_value(app: TestApp) {
    let who = reader(&app).await;
    let digits = "9".repeat(500);
    // Written by hand: serde_json would not write these numbers as they are.
    for number in [
        "1e400",
        "-1e400",
        digits.as_str(),
        &format!("-{digits}"),
        &format!("0.{digits}"),
        "1e-400",
    ] {
        let bodies = [
            format!(
                r#"{{"q":{{"ds":"Items","query":{{"filter":[{{"n":{{"eq":{number}}}}}],"limit":1}}}}}}"#
            ),
            format!(
                r#"{{"q":{{"ds":"Items","query":{{"filter":[{{"id":{{"gt":{number}}}}}],"limit":1}}}}}}"#
            ),
            format!(
                r#"{{"q":{{"ds":"Items","query":{{"filter":[{{"n":{{"in":[1,{number}]}}}}],"limit":1}}}}}}"#
            ),
            format!(r#"{{"q":{{"ds":"Items","query":{{"limit":{number}}}}}}}"#),
            format!(r#"{{"q":{{"ds":"Items","query":{{"limit":1,"offset":{number}}}}}}}"#),
            format!(r#"{{"w":{{"ds":"Items","data":[{{"_rs":"I","name":"big","n":{number}}}]}}}}"#),
        ];
        for body in bodies {
            let response = call_text(&app, &who, &body).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert!(status == 200 || status == 400, "{status} for {body}: {text}");
            if status == 400
                && number.contains("e400") | number.starts_with("9") | number.starts_with("-9")
            {
                // Past what the attribute holds: the message names the range.
                let limit = ["1.7e308", "9223372036854775807", "from 1 to 1000"];
                assert!(limit.iter().any(|l| text.contains(l)), "{body}: {text}");
            }
        }
    }
}

fn slow_statements(config: &mut Config) {
    catalog(config);
    config.network.statement_timeout = HumanDuration(Duration::from_secs(3));
}

both_backends!(
    a_flood_of_heavy_queries_leaves_sign_in_and_the_gate_a_connection,
    config = slow_statements
);
async fn a_flood_of_heavy_queries_leaves_sign_in_and_the_gate_a_connection(app: TestApp) {
    app.add_user("late", "cloudio", "pw", &["reader"]).await;
    let who = reader(&app).await;
    // Queries that hold their connection until statement_timeout (3 s). On
    // SQLite they work that long; on PostgreSQL, whose backends would take
    // the test's CPU, they wait that long behind a lock on the table.
    let mut locker = None;
    let filter = match app.db.backend {
        Backend::Sqlite => {
            seed_many_items(&app).await;
            heavy_filter()
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            locker = Some(conn);
            json!([])
        }
    };
    // More of them than the pool has connections.
    let pool = app.state.store.max_connections() as usize;
    let flood: Vec<_> = (0..pool + 4)
        .map(|_| {
            let request = app
                .client
                .post(app.url(&format!("/v1/api?csrf={}", who.1)))
                .bearer_auth(&who.0)
                .json(&json!({"q": {"ds": "Items", "query": {"filter": filter, "limit": 1}}}));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new session: its sign-in writes, its first call reads it.
    let late = app.sign_in_ok("late", "pw").await;
    assert_eq!(app.status(&late.jwt, &late.csrf).await.status(), 200);
    // The gate did not wait for a heavy query to give its connection back.
    assert!(
        flood.iter().all(|task| !task.is_finished()),
        "sign-in and the gate answered only after a heavy query ended"
    );
    for task in flood {
        let status = task.await.unwrap();
        // Past statement_timeout, or waiting too long for their share: 503.
        assert!(status == 200 || status == 503, "a heavy query answered {status}");
    }
    drop(locker);
}

both_backends!(an_answer_past_its_cap_is_400_saying_to_page, config = catalog);
async fn an_answer_past_its_cap_is_400_saying_to_page(app: TestApp) {
    let who = reader(&app).await;
    let long = "x".repeat(400);
    let data: Vec<Value> = (0..1000).map(|_| json!({"_rs": "I", "name": long})).collect();
    assert_eq!(call(&app, &who, json!({"w": {"ds": "Items", "data": data}})).await.status(), 200);
    // About half a MiB an alias: 20 fit in 16 MiB, 40 do not.
    let all = json!({"ds": "Items", "query": {"limit": 1000}});
    assert_eq!(call(&app, &who, aliases(20, &all)).await.status(), 200);
    let error =
        assert_error(call(&app, &who, aliases(40, &all)).await, 400, "Invalid Request").await;
    assert!(
        error.message.contains("16 MiB") && error.message.contains("offset"),
        "{}",
        error.message
    );
}
