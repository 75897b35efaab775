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
    let bearer = format!("Bearer {}", who.0);
    app.post(
        &format!("/v1/api?csrf={}", who.1),
        &[("Authorization", &bearer), ("Content-Type", "application/json")],
        Some(&body.to_string()),
    )
    .await
}

both_backends!(a_statement_past_statement_timeout_is_503_not_500, config = short_statements);
async fn a_statement_past_statement_timeout_is_503_not_500(app: TestApp) {
    // Rows written on a connection of its own: the server's pool is limited.
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
    let who = reader(&app).await;
    // 200 patterns over 100,000 rows, none matching: seconds of work.
    let patterns: Vec<Value> =
        (0..200).map(|i| json!({"name": {"like": format!("%nothing {i}%")}})).collect();
    let response = query(&app, &who, json!([{"or": patterns}])).await;
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
