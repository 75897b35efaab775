//! The integrator's and operator's face (design §1.5, issue 16): the OpenAPI
//! document, `GET /v1/datasources`, `GET /metrics` and the Playground page.
//! The OpenAPI 3.1 validator, schemathesis, a Prometheus text parser and the
//! browser test run from `.ci/e2e` against the real binary.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use tessera::config::Config;

use crate::helpers::*;

const CATALOG: &str = r#"
    [datasources.Employees]
    table = "employees"
    [datasources.Employees.attributes]
    empId  = { type = "Integer", primary_key = true, generated = true }
    name   = { type = "String", required = true }
    email  = { type = "Email", column = "email_address", updatable = false }
    hired  = { type = "Date" }

    [datasources.Codes]
    table = "codes"
    [datasources.Codes.attributes]
    code  = { type = "String", primary_key = true }
    label = { type = "String" }

    [datasources.Vault]
    table = "vault"
    [datasources.Vault.attributes]
    id = { type = "Integer", primary_key = true, generated = true }

    [roles.hr_reader]
    Employees = ["query"]
    [roles.admin]
    Employees = ["query", "insert", "update", "delete"]
    Codes = ["query", "insert"]
"#;

const EVERY_NAME: [&str; 3] = ["Employees", "Codes", "Vault"];

fn catalog(config: &mut Config) {
    let parsed = Config::parse(CATALOG).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

/// `GET path` signed in with Bearer and `X-CSRF-Token`.
async fn get_signed_in(app: &TestApp, path: &str, user: &str) -> reqwest::Response {
    let session = app.sign_in_ok(user, "pw").await;
    let bearer = format!("Bearer {}", session.jwt);
    app.get(path, &[("Authorization", &bearer), ("X-CSRF-Token", &session.csrf)]).await
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|child| refs(child, out)),
        _ => {}
    }
}

/// Asserts the document's shape: 3.1, every endpoint, the error shape on
/// every error response, and every `$ref` resolving.
fn assert_document_shape(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: BTreeSet<&str> =
        doc["paths"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for path in [
        "/v1/auth",
        "/v1/status",
        "/v1/signout",
        "/v1/api",
        "/v1/datasources",
        "/v1/openapi.json",
        "/.well-known/jwks.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/playground",
    ] {
        assert!(paths.contains(path), "{path} is missing from {paths:?}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path} has no 200");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let api = &doc["paths"]["/v1/api"]["post"];
    assert!(api["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "Idempotency-Key"));
    assert_eq!(api["security"][0]["csrfHeader"], Value::Array(vec![]));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["csrfQuery"]["name"], "csrf");
    assert_eq!(schemes["csrfHeader"]["name"], "X-CSRF-Token");
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["code", "status", "title", "message"]));
    let mut all = Vec::new();
    refs(doc, &mut all);
    for target in all {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(doc["components"]["schemas"].get(name).is_some(), "{target} does not resolve");
    }
}

/// The datasource names the document's schemas are about.
fn schema_datasources(doc: &Value) -> BTreeSet<String> {
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    schemas.keys().filter_map(|k| k.split_once('.')).map(|(ds, _)| ds.to_owned()).collect()
}

both_backends!(openapi_without_a_session_names_no_datasource, config = catalog);
async fn openapi_without_a_session_names_no_datasource(app: TestApp) {
    let response = app.get("/v1/openapi.json", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
    let text = response.text().await.unwrap();
    for name in EVERY_NAME {
        assert!(!text.contains(name), "the anonymous document names {name}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_document_shape(&doc);
    assert!(schema_datasources(&doc).is_empty());
    let query = &doc["components"]["schemas"]["Query"];
    assert_eq!(query["required"], serde_json::json!(["limit"]));
    assert_eq!(query["properties"]["limit"]["maximum"], 1000);
    assert_eq!(query["additionalProperties"], false);
}

both_backends!(signed_in_openapi_names_exactly_the_callers_datasources, config = catalog);
async fn signed_in_openapi_names_exactly_the_callers_datasources(app: TestApp) {
    app.add_user("alice", "acme", "pw", &["hr_reader"]).await;
    app.add_user("bob", "acme", "pw", &["admin", "hr_reader"]).await;

    let response = get_signed_in(&app, "/v1/openapi.json", "alice").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains("Codes") && !text.contains("Vault"), "alice sees more than hers");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_document_shape(&doc);
    assert_eq!(schema_datasources(&doc), BTreeSet::from(["Employees".to_owned()]));
    let schemas = &doc["components"]["schemas"];
    let row: BTreeSet<&str> = schemas["Employees.Row"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let expected = [
        "empId",
        "name",
        "email",
        "hired",
        "orgUid",
        "createdBy",
        "creationDate",
        "lastUpdatedBy",
        "lastUpdateDate",
        "_rs",
    ];
    assert_eq!(row, BTreeSet::from(expected));
    assert_eq!(
        schemas["Employees.Row"]["properties"]["empId"]["type"],
        serde_json::json!(["integer", "null"])
    );
    assert_eq!(schemas["Employees.Row"]["properties"]["hired"]["format"], "date");
    assert_eq!(schemas["Employees.QueryAlias"]["properties"]["ds"]["const"], "Employees");
    assert!(schemas.get("Employees.PostAlias").is_none(), "alice may only query");

    let doc: Value = get_signed_in(&app, "/v1/openapi.json", "bob").await.json().await.unwrap();
    assert_eq!(
        schema_datasources(&doc),
        BTreeSet::from(["Codes".to_owned(), "Employees".to_owned()])
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Codes.PostRow"]["properties"]["_rs"]["enum"], serde_json::json!(["I"]));
    assert_eq!(
        schemas["Employees.PostRow"]["properties"]["_rs"]["enum"],
        serde_json::json!(["I", "U", "D"])
    );
    assert!(!serde_json::to_string(&doc).unwrap().contains("Vault"));
}

both_backends!(openapi_with_a_refused_session_says_why);
async fn openapi_with_a_refused_session_says_why(app: TestApp) {
    let response = app.get("/v1/openapi.json", &[("Authorization", "Bearer not.a.jwt")]).await;
    assert_unauthorized(response).await;
}

both_backends!(datasources_lists_the_callers_grants_and_nothing_else, config = catalog);
async fn datasources_lists_the_callers_grants_and_nothing_else(app: TestApp) {
    app.add_user("alice", "acme", "pw", &["hr_reader"]).await;
    app.add_user("bob", "acme", "pw", &["admin", "hr_reader"]).await;
    app.add_user("nobody", "acme", "pw", &[]).await;

    let response = get_signed_in(&app, "/v1/datasources", "alice").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "OK");
    let list = body["datasources"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Employees");
    assert_eq!(list[0]["operations"], serde_json::json!(["query"]));
    assert_eq!(
        list[0]["attributes"][0],
        serde_json::json!({"code": "empId", "type": "Integer", "primaryKey": true, "required": false, "updatable": false})
    );
    assert_eq!(
        list[0]["attributes"][1],
        serde_json::json!({"code": "name", "type": "String", "primaryKey": false, "required": true, "updatable": true})
    );
    assert_eq!(list[0]["attributes"][2]["updatable"], false, "email is updatable = false");
    let codes: Vec<&str> = list[0]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes[4..],
        ["orgUid", "createdBy", "creationDate", "lastUpdatedBy", "lastUpdateDate"]
    );

    let body: Value = get_signed_in(&app, "/v1/datasources", "bob").await.json().await.unwrap();
    let names: Vec<&str> = body["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Codes", "Employees"]);
    assert_eq!(body["datasources"][0]["operations"], serde_json::json!(["query", "insert"]));
    assert_eq!(
        body["datasources"][1]["operations"],
        serde_json::json!(["query", "insert", "update", "delete"])
    );

    let body: Value = get_signed_in(&app, "/v1/datasources", "nobody").await.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"datasources": [], "status": "OK"}));

    assert_unauthorized(app.get("/v1/datasources", &[]).await).await;
    let session = app.sign_in_ok("alice", "pw").await;
    let bearer = format!("Bearer {}", session.jwt);
    let response = app.get("/v1/datasources", &[("Authorization", &bearer)]).await;
    assert_error(response, 403, "Access Denied").await;
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response.text().await.unwrap()
}

both_backends!(metrics_count_requests_sign_ins_and_show_the_gauges);
async fn metrics_count_requests_sign_ins_and_show_the_gauges(app: TestApp) {
    app.add_user("carol", "acme", "pw", &[]).await;
    let before = scrape(&app).await;
    let healthz = r#"tessera_http_requests_total{route="/healthz",method="GET",status="200"}"#;
    let ok = r#"tessera_sign_ins_total{outcome="ok"}"#;
    let denied = r#"tessera_sign_ins_total{outcome="denied"}"#;
    let unmatched = r#"tessera_http_requests_total{route="unmatched",method="GET",status="404"}"#;
    let latency = r#"tessera_http_request_duration_seconds_count{route="/healthz"}"#;

    for _ in 0..2 {
        assert_eq!(app.get("/healthz", &[]).await.status(), StatusCode::OK);
    }
    assert_seed_403(app.sign_in("carol", "wrong").await).await;
    let session = app.sign_in_ok("carol", "pw").await;
    assert_eq!(app.status(&session.jwt, &session.csrf).await.status(), StatusCode::OK);
    assert_eq!(app.get("/no/such/thing/42", &[]).await.status(), StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    assert_eq!(sample(&after, healthz) - sample(&before, healthz), 2.0, "{after}");
    assert_eq!(sample(&after, latency) - sample(&before, latency), 2.0);
    assert_eq!(sample(&after, ok) - sample(&before, ok), 1.0);
    assert_eq!(sample(&after, denied) - sample(&before, denied), 1.0);
    assert_eq!(sample(&after, unmatched) - sample(&before, unmatched), 1.0);
    assert!(!after.contains("/no/such/thing"), "a concrete path became a label");
    assert!(sample(&after, "tessera_gate_cache_entries") >= 1.0, "{after}");
    assert!(sample(&after, "tessera_db_pool_connections") >= 1.0, "{after}");
    assert!(after.contains("\ntessera_password_hash_queue_depth 0\n"), "{after}");
    assert!(after.contains("\ntessera_db_pool_idle_connections "), "{after}");
    for secret in ["carol", "127.0.0.1", &session.jwt, &session.csrf, &session.session_id] {
        assert!(!after.contains(secret), "a label holds {secret}");
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_serves_metrics_only_on_its_own_address() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut config = test_config();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    config.network.metrics_listen = Some(metrics_addr.clone());
    let app = TestApp::spawn(db, config).await;

    assert_eq!(app.get("/healthz", &[]).await.status(), StatusCode::OK);
    assert_error(app.get("/metrics", &[]).await, 404, "Not Found").await;
    let doc: Value = app.get("/v1/openapi.json", &[]).await.json().await.unwrap();
    assert!(doc["paths"].get("/metrics").is_none(), "/metrics is not on this listener");

    let url = format!("http://{metrics_addr}/metrics");
    let mut response = None;
    for _ in 0..50 {
        match app.client.get(&url).send().await {
            Ok(r) => {
                response = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let response = response.expect("the metrics listener answers");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let healthz = r#"tessera_http_requests_total{route="/healthz",method="GET",status="200"}"#;
    assert_eq!(sample(&text, healthz), 1.0, "{text}");
    let other = app.client.get(format!("http://{metrics_addr}/healthz")).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_playground_is_one_page_under_a_strict_csp() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(db, test_config()).await;
    for path in ["/", "/playground"] {
        let response = app.get(path, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type").as_deref(), Some("text/html; charset=utf-8"));
        let csp = header(&response, "content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self'") && !csp.contains("unsafe"), "{csp}");
        assert_eq!(header(&response, "x-frame-options").as_deref(), Some("DENY"));
        let page = response.text().await.unwrap();
        assert!(page.contains(r#"<script src="/playground.js" defer></script>"#));
        assert_eq!(page.matches("<script").count(), 1, "no inline script");
        assert!(!page.contains("http://") && !page.contains("https://"), "no outside asset");
    }
    let script = app.get("/playground.js", &[]).await;
    assert_eq!(header(&script, "content-type").as_deref(), Some("text/javascript; charset=utf-8"));
    let script = script.text().await.unwrap();
    assert!(script.contains("textContent") && !script.contains("innerHTML"));
    assert!(!script.contains("http://") && !script.contains("https://"));
    let style = app.get("/playground.css", &[]).await;
    assert_eq!(header(&style, "content-type").as_deref(), Some("text/css; charset=utf-8"));
}
