//! Clients as they really are (issue 18): a bare JWT, a browser on another
//! origin (CORS, design §1.2 and §3 `[network] cors_origins`), compressed
//! answers, and the read-modify-write round trip of CloudIO clients.

use std::io::Read;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tessera::auth::signin::SignedIn;
use tessera::config::Config;

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

    [roles.hr_admin]
    Employees = ["query", "insert", "update", "delete"]
"#;

/// The origin of the browser page in these tests.
const APP_ORIGIN: &str = "http://127.0.0.1:5173";

/// The headers a CloudIO browser client asks to send (design §1.2).
const CLIENT_HEADERS: [&str; 7] = [
    "authorization",
    "authentication",
    "x-csrf-token",
    "content-type",
    "idempotency-key",
    "x-application",
    "x-api-key",
];

fn catalog(config: &mut Config) {
    let parsed = Config::parse(CATALOG).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

fn catalog_and_one_origin(config: &mut Config) {
    catalog(config);
    config.network.cors_origins = vec![APP_ORIGIN.into(), "https://other.example".into()];
}

fn catalog_and_any_origin(config: &mut Config) {
    catalog(config);
    config.network.cors_origins = vec!["*".into()];
}

async fn signed_in(app: &TestApp) -> SignedIn {
    app.add_user("ada", "cloudio", "pw", &["hr_admin"]).await;
    app.sign_in_ok("ada", "pw").await
}

/// `POST /v1/api` with the body, the JWT as `authorization` is given, and
/// extra headers.
async fn api(app: &TestApp, s: &SignedIn, body: &Value, extra: &[(&str, &str)]) -> Response {
    let bearer = format!("Bearer {}", s.jwt);
    let mut headers = vec![
        ("Authorization", bearer.as_str()),
        ("X-CSRF-Token", s.csrf.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    app.post("/v1/api", &headers, Some(&body.to_string())).await
}

async fn api_ok(app: &TestApp, s: &SignedIn, body: &Value) -> Value {
    let response = api(app, s, body, &[]).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body} failed: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Every `access-control-*` header of a response.
fn cors_headers(response: &Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// A comma-separated header value as lower-case items.
fn list(response: &Response, name: &str) -> Vec<String> {
    header(response, name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

// ---- a bare JWT --------------------------------------------------------------

both_backends!(a_bare_jwt_works_in_either_header_name, config = catalog);
async fn a_bare_jwt_works_in_either_header_name(app: TestApp) {
    let s = signed_in(&app).await;
    for name in ["Authorization", "Authentication"] {
        let response = app.get("/v1/status", &[(name, &s.jwt), ("X-CSRF-Token", &s.csrf)]).await;
        assert_eq!(response.status(), StatusCode::OK, "bare JWT in {name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["userName"], "ada");
        assert_eq!(body["sessionId"], s.session_id.as_str());
    }
    let query = json!({"q": {"ds": "Employees", "query": {"limit": 1}}}).to_string();
    let response = app
        .post("/v1/api", &[("Authorization", &s.jwt), ("X-CSRF-Token", &s.csrf)], Some(&query))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

both_backends!(a_bare_tampered_jwt_is_401, config = catalog);
async fn a_bare_tampered_jwt_is_401(app: TestApp) {
    let s = signed_in(&app).await;
    let parts: Vec<&str> = s.jwt.split('.').collect();
    // A character in the middle of the signature (the last one may carry
    // only padding bits), and a payload that claims another user.
    let mut signature = parts[2].as_bytes().to_vec();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == b'A' { b'B' } else { b'A' };
    let bad_signature =
        format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(signature).unwrap());
    let (_, mut claims) = jwt_parts(&s.jwt);
    claims["sub"] = json!("root");
    let bad_payload = format!("{}.{}.{}", parts[0], b64url(claims.to_string()), parts[2]);
    for tampered in [&bad_signature, &bad_payload] {
        let response =
            app.get("/v1/status", &[("Authorization", tampered), ("X-CSRF-Token", &s.csrf)]).await;
        let e = assert_unauthorized(response).await;
        assert!(e.message.contains("refused"), "{}", e.message);
        assert!(!e.message.contains(tampered.as_str()), "the token is echoed: {}", e.message);
    }
    // Not a JWT at all: the message says what the header must be.
    for junk in ["not-a-jwt", "a.b", "Token abc", "a.b.c.d"] {
        let response =
            app.get("/v1/status", &[("Authorization", junk), ("X-CSRF-Token", &s.csrf)]).await;
        let e = assert_unauthorized(response).await;
        assert!(e.message.contains("'Bearer <jwt>'"), "{junk}: {}", e.message);
    }
}

// ---- CORS --------------------------------------------------------------------

both_backends!(a_listed_origin_gets_preflight_and_cors_headers, config = catalog_and_one_origin);
async fn a_listed_origin_gets_preflight_and_cors_headers(app: TestApp) {
    let asked = CLIENT_HEADERS.join(", ");
    let preflight = app
        .request(
            Method::OPTIONS,
            "/v1/api",
            &[
                ("Origin", APP_ORIGIN),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", &asked),
            ],
            None,
        )
        .await;
    assert!(preflight.status().is_success(), "preflight: {}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    let methods = list(&preflight, "access-control-allow-methods");
    assert!(methods.contains(&"post".into()) && methods.contains(&"get".into()), "{methods:?}");
    let allowed = list(&preflight, "access-control-allow-headers");
    for name in CLIENT_HEADERS {
        assert!(allowed.contains(&name.to_owned()), "{name} not allowed: {allowed:?}");
    }
    assert!(header(&preflight, "access-control-max-age").is_some());
    assert!(list(&preflight, "vary").contains(&"origin".into()));

    // The actual calls: sign-in, a query, and a refusal, all readable by the page.
    app.add_user("ada", "cloudio", "pw", &["hr_admin"]).await;
    let sign_in = app
        .post(
            "/v1/auth",
            &[("Origin", APP_ORIGIN), ("Authorization", &token("ada", "pw"))],
            Some("{}"),
        )
        .await;
    assert_eq!(sign_in.status(), StatusCode::OK);
    assert_eq!(header(&sign_in, "access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    let exposed = list(&sign_in, "access-control-expose-headers");
    for name in ["x-request-id", "retry-after", "idempotency-replayed"] {
        assert!(exposed.contains(&name.to_owned()), "{name} not exposed: {exposed:?}");
    }
    let s: SignedIn = sign_in.json().await.unwrap();
    let query = api(
        &app,
        &s,
        &json!({"q": {"ds": "Employees", "query": {"limit": 5}}}),
        &[("Origin", APP_ORIGIN)],
    )
    .await;
    assert_eq!(query.status(), StatusCode::OK);
    assert_eq!(header(&query, "access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    let refused = app.get("/v1/status", &[("Origin", APP_ORIGIN)]).await;
    assert_eq!(header(&refused, "access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    assert_unauthorized(refused).await;
}

both_backends!(an_unlisted_origin_gets_no_cors_headers, config = catalog_and_one_origin);
async fn an_unlisted_origin_gets_no_cors_headers(app: TestApp) {
    app.add_user("ada", "cloudio", "pw", &["hr_admin"]).await;
    for origin in ["http://127.0.0.1:5174", "https://evil.example", "null"] {
        let preflight = app
            .request(
                Method::OPTIONS,
                "/v1/api",
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "authorization, x-csrf-token"),
                ],
                None,
            )
            .await;
        assert_eq!(cors_headers(&preflight), Vec::<String>::new(), "{origin}");
        assert_error(preflight, 405, "Method Not Allowed").await;

        let sign_in = app
            .post("/v1/auth", &[("Origin", origin), ("Authorization", &token("ada", "pw"))], None)
            .await;
        assert_eq!(sign_in.status(), StatusCode::OK);
        assert_eq!(cors_headers(&sign_in), Vec::<String>::new(), "{origin}");
        assert!(list(&sign_in, "vary").contains(&"origin".into()), "{origin}");
    }
}

both_backends!(without_cors_origins_no_origin_gets_cors_headers, config = catalog);
async fn without_cors_origins_no_origin_gets_cors_headers(app: TestApp) {
    let preflight = app
        .request(
            Method::OPTIONS,
            "/v1/auth",
            &[("Origin", APP_ORIGIN), ("Access-Control-Request-Method", "POST")],
            None,
        )
        .await;
    assert_eq!(cors_headers(&preflight), Vec::<String>::new());
    assert_error(preflight, 405, "Method Not Allowed").await;
    let health = app.get("/healthz", &[("Origin", APP_ORIGIN)]).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(cors_headers(&health), Vec::<String>::new());
}

both_backends!(a_star_lets_any_origin_call, config = catalog_and_any_origin);
async fn a_star_lets_any_origin_call(app: TestApp) {
    let s = signed_in(&app).await;
    for origin in ["https://anything.example", "http://localhost:3000"] {
        let preflight = app
            .request(
                Method::OPTIONS,
                "/v1/api",
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "authorization, x-csrf-token, content-type"),
                ],
                None,
            )
            .await;
        assert!(preflight.status().is_success());
        assert_eq!(header(&preflight, "access-control-allow-origin").as_deref(), Some("*"));
        let body = json!({"q": {"ds": "Employees", "query": {"limit": 1}}});
        let query = api(&app, &s, &body, &[("Origin", origin)]).await;
        assert_eq!(query.status(), StatusCode::OK);
        assert_eq!(header(&query, "access-control-allow-origin").as_deref(), Some("*"));
    }
    // A request that names no origin is not a cross-origin one.
    let plain = app.get("/healthz", &[]).await;
    assert_eq!(cors_headers(&plain), Vec::<String>::new());
}

// ---- compression ---------------------------------------------------------------

/// An answer well over 1 KiB: 40 rows.
async fn forty_rows(app: &TestApp, s: &SignedIn) -> Value {
    let rows: Vec<Value> = (0..40)
        .map(|i| json!({"_rs": "I", "name": format!("Employee {i:03}"), "salary": 1000 + i, "email": format!("e{i}@example.com")}))
        .collect();
    api_ok(app, s, &json!({"seed": {"ds": "Employees", "data": rows}})).await;
    json!({"q": {"ds": "Employees", "query": {"sort": {"empId": 1}, "limit": 100}}})
}

/// The answer with `queryElapsed` (which differs from call to call) set to 0.
fn without_elapsed(bytes: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
    v["data"]["q"]["queryElapsed"] = json!(0);
    v
}

both_backends!(gzip_and_br_answers_decode_to_the_plain_answer, config = catalog);
async fn gzip_and_br_answers_decode_to_the_plain_answer(app: TestApp) {
    let s = signed_in(&app).await;
    let query = forty_rows(&app, &s).await;

    let plain = api(&app, &s, &query, &[]).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(header(&plain, "content-encoding"), None, "nothing asked, nothing compressed");
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 2048, "the answer is only {} bytes", plain.len());
    let expected = without_elapsed(&plain);
    assert_eq!(expected["data"]["q"]["data"].as_array().unwrap().len(), 40);

    for (accept, encoding) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("identity;q=0.5, gzip", "gzip"),
    ] {
        let response = api(&app, &s, &query, &[("Accept-Encoding", accept)]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-encoding").as_deref(), Some(encoding), "{accept}");
        assert!(list(&response, "vary").contains(&"accept-encoding".into()));
        assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
        let compressed = response.bytes().await.unwrap();
        assert!(compressed.len() < plain.len() / 2, "{encoding}: {} bytes", compressed.len());
        let mut decoded = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut decoded),
            _ => brotli::Decompressor::new(&compressed[..], 4096).read_to_end(&mut decoded),
        }
        .unwrap();
        assert_eq!(without_elapsed(&decoded), expected, "{accept}");
    }

    // Only identity is acceptable, or an encoding this server does not speak.
    for accept in ["identity", "compress", "gzip;q=0", "identity, gzip;q=0.8"] {
        let response = api(&app, &s, &query, &[("Accept-Encoding", accept)]).await;
        assert_eq!(header(&response, "content-encoding"), None, "{accept}");
        assert_eq!(without_elapsed(&response.bytes().await.unwrap()), expected, "{accept}");
    }
}

both_backends!(answers_of_1_kib_or_less_are_not_compressed, config = catalog);
async fn answers_of_1_kib_or_less_are_not_compressed(app: TestApp) {
    let s = signed_in(&app).await;
    let status = app
        .get(
            "/v1/status",
            &[
                ("Authorization", &format!("Bearer {}", s.jwt)),
                ("X-CSRF-Token", &s.csrf),
                ("Accept-Encoding", "gzip, br"),
            ],
        )
        .await;
    assert_eq!(status.status(), StatusCode::OK);
    assert_eq!(header(&status, "content-encoding"), None);
    let bytes = status.bytes().await.unwrap();
    assert!(bytes.len() <= 1024, "{} bytes", bytes.len());
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["userName"], "ada");
    let refused = app.get("/v1/status", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(header(&refused, "content-encoding"), None);
    assert_unauthorized(refused).await;
}

// ---- the read-modify-write round trip ----------------------------------------

both_backends!(a_queried_row_posted_back_as_u_then_deleted_round_trips, config = catalog);
async fn a_queried_row_posted_back_as_u_then_deleted_round_trips(app: TestApp) {
    let s = signed_in(&app).await;
    let insert = json!({"i": {"ds": "Employees", "data": [
        {"_rs": "I", "name": "Dana", "salary": 5000, "email": "dana@x.io"},
        {"_rs": "I", "name": "Eli", "salary": 4000}]}});
    api_ok(&app, &s, &insert).await;

    // Read: the row exactly as a client gets it, WHO columns and `_rs: "Q"` included.
    let read = json!({"r": {"ds": "Employees", "query": {"filter": [{"name": {"is": "Dana"}}], "limit": 1}}});
    let answer = api_ok(&app, &s, &read).await;
    let row = answer["data"]["r"]["data"][0].clone();
    assert_eq!(row["_rs"], "Q");
    for who in ["createdBy", "creationDate", "lastUpdatedBy", "lastUpdateDate"] {
        assert!(row[who].is_string(), "{who} missing from {row}");
    }

    // Modify and write back: the whole row, `_rs` set to "U".
    app.clock.advance(std::time::Duration::from_secs(2));
    let mut changed = row.clone();
    changed["_rs"] = json!("U");
    changed["salary"] = json!(5500);
    let written = api_ok(&app, &s, &json!({"w": {"ds": "Employees", "data": [changed]}})).await;
    let after = written["data"]["w"]["data"][0].clone();
    assert_eq!(after["empId"], row["empId"]);
    assert_eq!(after["salary"], json!(5500));
    assert_eq!(after["name"], "Dana");
    assert_eq!(after["email"], "dana@x.io");
    assert_eq!(after["createdBy"], row["createdBy"]);
    assert_eq!(after["creationDate"], row["creationDate"]);
    assert_ne!(after["lastUpdateDate"], row["lastUpdateDate"]);
    let reread = api_ok(&app, &s, &read).await;
    assert_eq!(reread["data"]["r"]["data"][0]["salary"], json!(5500));

    // The row as first read is stale now: posting it again is a conflict.
    let mut stale = row.clone();
    stale["_rs"] = json!("U");
    let stale = api(&app, &s, &json!({"w": {"ds": "Employees", "data": [stale]}}), &[]).await;
    assert_error(stale, 409, "Conflict").await;

    // Delete with the key and the lastUpdateDate of the write's answer.
    let delete = json!({"d": {"ds": "Employees", "data": [
        {"_rs": "D", "empId": after["empId"], "lastUpdateDate": after["lastUpdateDate"]}]}});
    let deleted = api_ok(&app, &s, &delete).await;
    assert_eq!(deleted["data"]["d"]["data"][0]["empId"], row["empId"]);
    let gone = api_ok(&app, &s, &read).await;
    assert_eq!(gone["data"]["r"]["data"], json!([]));
    let all = json!({"a": {"ds": "Employees", "query": {"limit": 10}}});
    let left = api_ok(&app, &s, &all).await;
    let names: Vec<&str> = left["data"]["a"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Eli"]);
}
