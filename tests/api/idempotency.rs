//! `Idempotency-Key` on `POST /v1/api` (design §1.4, issue 15) on both
//! backends: a replayed answer that changes nothing, 422 for another body,
//! 409 while the first still runs, across instances, and expiry.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::config::Config;

use crate::helpers::*;

const CATALOG: &str = r#"
    [datasources.Employees]
    table = "employees"
    [datasources.Employees.attributes]
    empId = { type = "Integer", primary_key = true, generated = true }
    name  = { type = "String", required = true }

    [roles.hr_admin]
    Employees = ["query", "insert", "update", "delete"]
"#;

fn catalog(config: &mut Config) {
    let parsed = Config::parse(CATALOG).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

struct Caller {
    jwt: String,
    csrf: String,
}

impl Caller {
    async fn post(&self, server: &Server, body: &Value, key: Option<&str>) -> Response {
        let bearer = format!("Bearer {}", self.jwt);
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key));
        }
        server.post("/v1/api", &headers, Some(&body.to_string())).await
    }
}

async fn caller(app: &TestApp, name: &str) -> Caller {
    app.add_user(name, "acme", "pw", &["hr_admin"]).await;
    let s = app.sign_in_ok(name, "pw").await;
    Caller { jwt: s.jwt, csrf: s.csrf }
}

fn insert(name: &str) -> Value {
    json!({"p": {"ds": "Employees", "data": [{"_rs": "I", "name": name}]}})
}

async fn count(app: &TestApp, c: &Caller) -> usize {
    let body = json!({"q": {"ds": "Employees", "query": {"limit": 100}}});
    let v: Value = c.post(app, &body, None).await.json().await.unwrap();
    v["data"]["q"]["data"].as_array().unwrap().len()
}

fn replayed(response: &Response) -> bool {
    header(response, "Idempotency-Replayed").as_deref() == Some("true")
}

both_backends!(a_repeat_gets_the_kept_answer_and_changes_nothing, config = catalog);
async fn a_repeat_gets_the_kept_answer_and_changes_nothing(app: TestApp) {
    let c = caller(&app, "ada").await;
    let first = c.post(&app, &insert("Ada"), Some("key-1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(!replayed(&first));
    let first = first.text().await.unwrap();
    let again = c.post(&app, &insert("Ada"), Some("key-1")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(replayed(&again), "{:?}", again.headers());
    assert_eq!(header(&again, "Content-Type").as_deref(), Some("application/json"));
    assert_eq!(again.text().await.unwrap(), first, "the kept answer, byte for byte");
    assert_eq!(count(&app, &c).await, 1, "applied once");

    let other = c.post(&app, &insert("Eve"), Some("key-1")).await;
    assert_error(other, 422, "Unprocessable Content").await;
    assert_eq!(count(&app, &c).await, 1);

    let bob = caller(&app, "bob").await;
    let theirs = bob.post(&app, &insert("Bob"), Some("key-1")).await;
    assert_eq!(theirs.status(), StatusCode::OK, "keys are per user");
    assert!(!replayed(&theirs));

    let refused =
        c.post(&app, &json!({"p": {"ds": "Employees", "data": [{"_rs": "I"}]}}), Some("k2")).await;
    let first = assert_error(refused, 400, "Invalid Request").await;
    let again =
        c.post(&app, &json!({"p": {"ds": "Employees", "data": [{"_rs": "I"}]}}), Some("k2")).await;
    assert!(replayed(&again));
    assert_eq!(
        assert_error(again, 400, "Invalid Request").await,
        first,
        "a 4xx answer is kept too"
    );

    for bad in ["", &"k".repeat(256), "has space", "caf\u{e9}"] {
        let bearer = format!("Bearer {}", c.jwt);
        let headers = [("Authorization", bearer.as_str()), ("X-CSRF-Token", c.csrf.as_str())];
        let mut request = app.client.post(app.url("/v1/api")).body(insert("X").to_string());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
        );
        let e = assert_error(request.send().await.unwrap(), 400, "Invalid Request").await;
        assert!(e.message.contains("Idempotency-Key"), "{}", e.message);
    }
    assert_eq!(count(&app, &c).await, 2, "Ada and Bob only");
}

both_backends!(a_repeat_while_the_first_runs_is_409, config = catalog);
async fn a_repeat_while_the_first_runs_is_409(app: TestApp) {
    let c = caller(&app, "ada").await;
    let body = insert("Ada");
    let (a, b) = tokio::join!(c.post(&app, &body, Some("twin")), c.post(&app, &body, Some("twin")));
    let mut ran = 0;
    for response in [a, b] {
        match response.status() {
            StatusCode::OK if !replayed(&response) => ran += 1,
            StatusCode::OK => {}
            StatusCode::CONFLICT => {
                let e = assert_error(response, 409, "Conflict").await;
                assert!(e.message.contains("still running"), "{}", e.message);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ran, 1, "exactly one of two concurrent twins runs");
    assert_eq!(count(&app, &c).await, 1);

    // A request still running is a claimed key without an answer.
    tamper(app.store(), "UPDATE idempotency_keys SET status = NULL, body = NULL").await;
    let e = assert_error(c.post(&app, &body, Some("twin")).await, 409, "Conflict").await;
    assert!(e.message.contains("still running"), "{}", e.message);
    assert_eq!(count(&app, &c).await, 1);
}

both_backends!(keys_hold_across_instances_and_expire_after_a_day, config = catalog);
async fn keys_hold_across_instances_and_expire_after_a_day(app: TestApp) {
    let c = caller(&app, "ada").await;
    let other = app.another_instance().await;
    let first = c.post(&app, &insert("Ada"), Some("cross")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = c.post(&other, &insert("Ada"), Some("cross")).await;
    assert!(replayed(&again), "the other instance replays");
    assert_eq!(count(&app, &c).await, 1);

    app.clock.advance(Duration::from_secs(25 * 3600));
    let s = app.sign_in_ok("ada", "pw").await;
    let c = Caller { jwt: s.jwt, csrf: s.csrf };
    let pruned = app.store().forget_old_answers(app.clock.now() - 24 * 3600 * 1_000_000).await;
    assert_eq!(pruned.unwrap(), 1, "housekeeping's prune removes the expired answer");
    let fresh = c.post(&app, &insert("Ada"), Some("cross")).await;
    assert!(!replayed(&fresh));
    assert_eq!(count(&app, &c).await, 2);
}
