//! Many instances on one database (design §4.3): a session made on one
//! works on all, a sign-out on one is refused on all within a second, the
//! guessing counters are shared, and key rotation reaches all.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tessera::auth::signin::SignedIn;
use tessera::auth::tokens::new_key;
use tessera::config::Config;
use tessera::store::Store;

use crate::helpers::*;

both_backends!(a_session_made_on_one_instance_works_on_another_until_signed_out_on_either);
async fn a_session_made_on_one_instance_works_on_another_until_signed_out_on_either(app: TestApp) {
    let other = app.another_instance().await;
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let first = app.sign_in_ok("steve", "s3cret").await;
    let second = other.sign_in_ok("steve", "s3cret").await;
    for server in [&app.server, &other] {
        for s in [&first, &second] {
            assert_eq!(server.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
        }
    }

    assert_eq!(other.sign_out(&first.jwt, &first.csrf).await.status(), StatusCode::OK);
    assert_eq!(app.sign_out(&second.jwt, &second.csrf).await.status(), StatusCode::OK);

    assert_unauthorized(app.refused_within_a_second(&first.jwt, &first.csrf).await).await;
    assert_unauthorized(other.refused_within_a_second(&second.jwt, &second.csrf).await).await;
    assert_unauthorized(other.status(&first.jwt, &first.csrf).await).await;
    assert_unauthorized(app.status(&second.jwt, &second.csrf).await).await;
}

fn five_user_failures(config: &mut Config) {
    config.throttle.user_failures = 5;
}

both_backends!(failures_on_one_instance_count_on_another, config = five_user_failures);
async fn failures_on_one_instance_count_on_another(app: TestApp) {
    let other = app.another_instance().await;
    app.add_user("steve", "cloudio", "s3cret", &[]).await;

    for attempt in 0..5 {
        let server = if attempt % 2 == 0 { &app.server } else { &other };
        assert_seed_403(server.sign_in("steve", "wrong").await).await;
    }

    for server in [&app.server, &other] {
        let response = server.sign_in("steve", "s3cret").await;
        assert!(header(&response, "retry-after").is_some());
        assert_error(response, 429, "Too Many Requests").await;
    }
}

both_backends!(a_key_rotated_through_one_instance_reaches_the_other_within_seconds);
async fn a_key_rotated_through_one_instance_reaches_the_other_within_seconds(app: TestApp) {
    let other = app.another_instance().await;
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let key = new_key(app.clock.now() + 1, &app.state.secrets).unwrap();

    app.store().add_key(&key).await.unwrap();
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();
    let signed_here = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(jwt_parts(&signed_here.jwt).0["kid"], key.kid);

    let start = Instant::now();
    loop {
        let s = other.sign_in_ok("steve", "s3cret").await;
        if jwt_parts(&s.jwt).0["kid"] == key.kid {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "the other still signs with the old key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = other.status(&signed_here.jwt, &signed_here.csrf).await;
    assert_eq!(response.status(), StatusCode::OK);
}

fn five_failures(config: &mut Config) {
    config.throttle.user_failures = 5;
    config.throttle.ip_failures = 1000;
}

async fn cli_disable_is_refused_on_every_instance_within_a_second(a: TestApp) {
    let b = a.another_instance().await;
    a.add_user("steve", "cloudio", "pw", &[]).await;
    let session = a.sign_in_ok("steve", "pw").await;
    assert_eq!(a.status(&session.jwt, &session.csrf).await.status(), StatusCode::OK);
    assert_eq!(b.status(&session.jwt, &session.csrf).await.status(), StatusCode::OK);
    let ran =
        run_tessera(a.db.dir.path(), &["user", "disable", "steve", "--database", &a.db.url], "")
            .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_unauthorized(a.refused_within_a_second(&session.jwt, &session.csrf).await).await;
    assert_unauthorized(b.refused_within_a_second(&session.jwt, &session.csrf).await).await;
}
both_backends!(cli_disable_is_refused_on_every_instance_within_a_second);

async fn a_role_change_reaches_every_instance_within_a_second(a: TestApp) {
    let b = a.another_instance().await;
    a.add_user("steve", "cloudio", "pw", &[]).await;
    let session = a.sign_in_ok("steve", "pw").await;
    assert_eq!(b.status(&session.jwt, &session.csrf).await.status(), StatusCode::OK);
    a.store().change_roles("steve", &["auditor".into()], &[]).await.unwrap();
    let start = std::time::Instant::now();
    loop {
        let body: serde_json::Value =
            b.status(&session.jwt, &session.csrf).await.json().await.unwrap();
        if body["roles"] == serde_json::json!(["auditor"]) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "roles still {}", body["roles"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
both_backends!(a_role_change_reaches_every_instance_within_a_second);

async fn forty_wrong_guesses_split_across_two_instances_are_throttled_as_one(a: TestApp) {
    let b = a.another_instance().await;
    a.add_user("steve", "cloudio", "pw", &[]).await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let client = a.client.clone();
            let url = if i % 2 == 0 { a.url("/v1/auth") } else { b.url("/v1/auth") };
            let auth = token("steve", &format!("wrong{i}"));
            tokio::spawn(async move {
                client.post(url).header("Authorization", auth).body("{}").send().await.unwrap()
            })
        })
        .collect();
    let mut responses = Vec::new();
    for guess in guesses {
        responses.push(guess.await.unwrap());
    }
    let checked = responses.iter().filter(|r| r.status() == StatusCode::FORBIDDEN).count();
    let throttled =
        responses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked, 5, "exactly user_failures guesses are checked");
    assert_eq!(throttled, 35);
    for response in responses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS) {
        assert!(header(response, "retry-after").is_some());
    }
}
both_backends!(
    forty_wrong_guesses_split_across_two_instances_are_throttled_as_one,
    config = five_failures
);

/// With PostgreSQL refusing connections, signed-in calls and `/readyz`
/// answer 503 in the error shape; when it accepts them again, the server
/// recovers on its own.
async fn a_lost_database_answers_503_and_recovers(a: TestApp) {
    let Store::Postgres(pool) = a.store().clone() else { unreachable!() };
    a.add_user("steve", "cloudio", "pw", &[]).await;
    let session = a.sign_in_ok("steve", "pw").await;
    let admin = std::env::var(POSTGRES_ENV).unwrap();
    let name: (String,) =
        sqlx::query_as("SELECT current_database()").fetch_one(&pool).await.unwrap();
    let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
    let run_admin = |sql: String| {
        let admin_pool = admin_pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin_pool).await.unwrap();
        }
    };
    run_admin(format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", name.0)).await;
    run_admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        name.0
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut saw_503 = false;
    for _ in 0..10 {
        let response = a.status(&session.jwt, &session.csrf).await;
        let code = response.status().as_u16();
        assert!(code == 200 || code == 503, "a lost database gives 503, not {code}");
        if code == 503 {
            assert!(header(&response, "retry-after").is_some());
            assert_error(response, 503, "Service Unavailable").await;
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_503, "signed-in calls never noticed the lost database");
    assert_error(a.get("/readyz", &[]).await, 503, "Service Unavailable").await;

    run_admin(format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", name.0)).await;
    let start = std::time::Instant::now();
    loop {
        let response = a.status(&session.jwt, &session.csrf).await;
        if response.status() == StatusCode::OK {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(a.get("/readyz", &[]).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_postgresql_answers_503_and_recovers() {
    run(Backend::Postgres, no_changes, a_lost_database_answers_503_and_recovers).await;
}

/// Terminated backends (a failover, an operator) cost nothing visible: the
/// pool replaces the connections and calls keep working.
async fn terminated_connections_are_replaced(a: TestApp) {
    let Store::Postgres(pool) = a.store().clone() else { unreachable!() };
    a.add_user("steve", "cloudio", "pw", &[]).await;
    let session = a.sign_in_ok("steve", "pw").await;
    let admin = sqlx::PgPool::connect(&std::env::var(POSTGRES_ENV).unwrap()).await.unwrap();
    let name: (String,) =
        sqlx::query_as("SELECT current_database()").fetch_one(&pool).await.unwrap();
    for _ in 0..3 {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name.0)
            .execute(&admin)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let code = a.status(&session.jwt, &session.csrf).await.status().as_u16();
        assert!(code == 200 || code == 503, "terminated connections gave {code}");
    }
    let start = std::time::Instant::now();
    while a.status(&session.jwt, &session.csrf).await.status() != StatusCode::OK {
        assert!(start.elapsed() < Duration::from_secs(5), "the server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_postgresql_connections_are_replaced() {
    run(Backend::Postgres, no_changes, terminated_connections_are_replaced).await;
}

const PEOPLE: &str = r#"
[datasources.People]
table = "people"
[datasources.People.attributes]
id   = { type = "Integer", primary_key = true, generated = true }
name = { type = "String", required = true }
[roles.editor]
People = ["query", "insert"]
"#;

fn people(config: &mut Config) {
    let parsed = Config::parse(PEOPLE).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

/// `POST /v1/api` on `server` with a session's JWT and CSRF token.
async fn api(server: &Server, session: &SignedIn, body: serde_json::Value) -> serde_json::Value {
    let path = format!("/v1/api?csrf={}", session.csrf);
    let bearer = format!("Bearer {}", session.jwt);
    let response = server.post(&path, &[("Authorization", &bearer)], Some(&body.to_string())).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

both_backends!(a_row_written_on_one_instance_is_read_on_the_other, config = people);
async fn a_row_written_on_one_instance_is_read_on_the_other(a: TestApp) {
    let b = a.another_instance().await;
    a.add_user("steve", "cloudio", "pw", &["editor"]).await;
    let session = a.sign_in_ok("steve", "pw").await;
    let insert = serde_json::json!({"p": {"ds": "People", "data": [{"_rs": "I", "name": "Ada"}]}});
    let written = api(&a.server, &session, insert).await;
    let id = written["data"]["p"]["data"][0]["id"].clone();
    let query = serde_json::json!({"p": {"ds": "People", "query": {"filter": [{"name": {"is": "Ada"}}], "limit": 10}}});
    let read = api(&b, &session, query).await;
    let rows = read["data"]["p"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], id);
    assert_eq!(rows[0]["createdBy"], "steve");
}
