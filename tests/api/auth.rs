//! `POST /v1/auth` (design §1.1, issue 2): the seed's 200 and 403 bodies,
//! the credential header in all its accepted forms, malformed requests, the
//! other public endpoints, the audit table and what the database holds.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera::auth::password::Hasher;
use tessera::config::{ByteSize, Config, PasswordConfig};

use crate::helpers::*;

both_backends!(sign_in_returns_exactly_the_seed_fields_in_order);
async fn sign_in_returns_exactly_the_seed_fields_in_order(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;

    let response = app.sign_in("steve", "s3cret").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
    let text = response.text().await.unwrap();
    assert_eq!(keys_in_order(&text), SEED_FIELDS);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["orgUid"], "cloudio");
    assert_eq!(body["userName"], "steve");
    assert_eq!(body["displayName"], "steve display");
    assert_eq!(body["emailAddress"], "steve@cloudio.example");
    assert_eq!(body["status"], "OK");
    for field in ["sessionId", "csrf", "jwt"] {
        assert!(body[field].as_str().is_some_and(|s| !s.is_empty()), "{field}: {text}");
    }
}

both_backends!(session_id_and_csrf_are_random_uuids_and_the_jwt_claims_match_the_body);
async fn session_id_and_csrf_are_random_uuids_and_the_jwt_claims_match_the_body(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let before = app.clock.now_secs();

    let first = app.sign_in_ok("steve", "s3cret").await;
    let second = app.sign_in_ok("steve", "s3cret").await;
    let after = app.clock.now_secs();

    for id in [&first.session_id, &first.csrf] {
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(uuid.get_version_num(), 4, "{id} is not a random (v4) UUID");
        assert_eq!(&uuid.hyphenated().to_string(), id, "{id} is not in hyphenated lowercase form");
    }
    assert_ne!(first.session_id, first.csrf);
    assert_ne!(first.session_id, second.session_id);
    assert_ne!(first.csrf, second.csrf);

    let (head, claims) = jwt_parts(&first.jwt);
    assert_eq!(head["alg"], "EdDSA");
    let kid = head["kid"].as_str().expect("the JWT header has a kid");
    assert_eq!(Some(kid.to_owned()), app.state.keys.signing_kid());
    assert_eq!(claims["session"], first.session_id);
    assert_eq!(claims["csrf"], first.csrf);
    assert_eq!(claims["org_uid"], "cloudio");
    assert_eq!(claims["sub"], "steve");
    assert_eq!(claims["iss"], "tessera");
    let iat = claims["iat"].as_i64().unwrap();
    assert!((before..=after).contains(&iat), "iat {iat} not in {before}..={after}");
    let max_lifetime = app.state.config.session.max_lifetime.0.as_secs() as i64;
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + max_lifetime);
    let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["csrf", "exp", "iat", "iss", "org_uid", "session", "sub"]);
}

both_backends!(jwks_serves_the_ed25519_key_that_verifies_the_jwt);
async fn jwks_serves_the_ed25519_key_that_verifies_the_jwt(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let signed_in = app.sign_in_ok("steve", "s3cret").await;
    let (head, _) = jwt_parts(&signed_in.jwt);

    let jwks = app.jwks().await;

    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["kid"], head["kid"]);
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key["x"].as_str().unwrap(),
    )
    .unwrap();
    let public = VerifyingKey::from_bytes(&x.try_into().expect("32 bytes")).unwrap();
    let (signed, signature) = signed_in.jwt.rsplit_once('.').unwrap();
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .unwrap();
    let signature = Signature::from_slice(&signature).unwrap();
    public.verify(signed.as_bytes(), &signature).expect("the JWKS key verifies the JWT offline");
}

both_backends!(the_authentication_header_name_is_accepted_too);
async fn the_authentication_header_name_is_accepted_too(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;

    let response = app
        .post(
            "/v1/auth",
            &[("Authentication", &token("steve", "s3cret")), ("Content-Type", "application/json")],
            Some("{}"),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["userName"], "steve");
}

both_backends!(the_token_scheme_is_case_insensitive);
async fn the_token_scheme_is_case_insensitive(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let encoded = token("steve", "s3cret").trim_start_matches("Token ").to_owned();

    for scheme in ["token", "TOKEN", "ToKeN"] {
        let value = format!("{scheme} {encoded}");
        let response = app.post("/v1/auth", &[("Authorization", &value)], Some("{}")).await;
        assert_eq!(response.status(), StatusCode::OK, "scheme {scheme}");
    }
}

both_backends!(the_password_is_everything_after_the_first_colon);
async fn the_password_is_everything_after_the_first_colon(app: TestApp) {
    app.add_user("steve", "cloudio", "a:b::c:", &[]).await;

    let signed_in = app.sign_in_ok("steve", "a:b::c:").await;

    assert_eq!(signed_in.user_name, "steve");
    assert_seed_403(app.sign_in("steve", "a:b::c").await).await;
    assert_seed_403(app.sign_in("steve", "a").await).await;
}

both_backends!(utf8_user_names_and_passwords_sign_in);
async fn utf8_user_names_and_passwords_sign_in(app: TestApp) {
    app.add_user("jürgen", "bücher", "pässwörd€ 🔑", &[]).await;

    let signed_in = app.sign_in_ok("jürgen", "pässwörd€ 🔑").await;

    assert_eq!(signed_in.user_name, "jürgen");
    assert_eq!(signed_in.org_uid, "bücher");
    assert_eq!(jwt_parts(&signed_in.jwt).1["sub"], "jürgen");
    assert_seed_403(app.sign_in("jürgen", "passwörd€ 🔑").await).await;
}

both_backends!(an_empty_body_and_an_empty_object_are_accepted);
async fn an_empty_body_and_an_empty_object_are_accepted(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let auth = token("steve", "s3cret");

    let cases: [(&str, Headers, Option<&str>); 4] = [
        ("no body", &[("Authorization", &auth)], None),
        ("empty body", &[("Authorization", &auth), ("Content-Type", "application/json")], Some("")),
        ("{}", &[("Authorization", &auth), ("Content-Type", "application/json")], Some("{}")),
        ("{} with spaces", &[("Authorization", &auth)], Some(" { } \n")),
    ];
    for (case, headers, body) in cases {
        let response = app.post("/v1/auth", headers, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{case}");
    }
}

both_backends!(a_body_that_is_not_a_json_object_is_400);
async fn a_body_that_is_not_a_json_object_is_400(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let auth = token("steve", "s3cret");

    for body in ["[]", "\"x\"", "garbage", "{", "null", "1", "{}{}"] {
        let response = app
            .post(
                "/v1/auth",
                &[("Authorization", &auth), ("Content-Type", "application/json")],
                Some(body),
            )
            .await;
        assert_error(response, 400, "Invalid Request").await;
    }
}

both_backends!(wrong_password_unknown_user_and_disabled_user_get_the_same_seed_403_bytes);
async fn wrong_password_unknown_user_and_disabled_user_get_the_same_seed_403_bytes(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.add_user("olga", "cloudio", "s3cret", &[]).await;
    app.store().set_disabled("olga", true, app.clock.now()).await.unwrap();
    let long_name = "x".repeat(300);

    let cases = [
        ("wrong password", "steve", "S3CRET"),
        ("empty password", "steve", ""),
        ("unknown user", "nobody", "s3cret"),
        ("user name differs in case", "Steve", "s3cret"),
        ("disabled user, right password", "olga", "s3cret"),
        ("very long unknown user", long_name.as_str(), "s3cret"),
    ];
    for (case, user, password) in cases {
        let response = app.sign_in(user, password).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
        let bytes = response.bytes().await.unwrap();
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), SEED_403, "{case}");
    }
    let sessions = app.store().open_sessions(None).await.unwrap();
    assert!(sessions.is_empty(), "a failed sign-in opened a session: {sessions:?}");
}

both_backends!(malformed_credential_headers_are_400_invalid_request);
async fn malformed_credential_headers_are_400_invalid_request(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let no_colon = format!("Token {}", base64_std("steve-s3cret"));

    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("no header", &[]),
        ("Bearer scheme", &[("Authorization", "Bearer c3RldmU6czNjcmV0")]),
        ("Basic scheme", &[("Authorization", "Basic c3RldmU6czNjcmV0")]),
        ("scheme without credentials", &[("Authorization", "Token")]),
        ("not base64", &[("Authorization", "Token !!not*base64!!")]),
        ("no colon", &[("Authorization", &no_colon)]),
    ];
    for (case, headers) in cases {
        let response = app.post("/v1/auth", headers, Some("{}")).await;
        let body = assert_error(response, 400, "Invalid Request").await;
        assert!(!body.message.contains("s3cret"), "{case}: the message echoes the password");
        assert!(
            body.message.contains("username:password"),
            "{case}: the message must say what the header looks like: {}",
            body.message
        );
    }
}

fn small_body_limit(config: &mut Config) {
    config.max_body = ByteSize(64);
}

both_backends!(a_body_over_max_body_is_413, config = small_body_limit);
async fn a_body_over_max_body_is_413(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let auth = token("steve", "s3cret");
    let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(200));

    let response = app
        .post(
            "/v1/auth",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            Some(&large),
        )
        .await;
    assert_error(response, 413, "Payload Too Large").await;

    // Without a Content-Length the limit applies while the body streams in.
    let (status_line, body) = raw_chunked_post(&app, "/v1/auth", &auth, &large).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert_eq!(keys_in_order(&body), ["code", "status", "title", "message"], "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["title"], "Payload Too Large");

    // A body within the limit still signs in.
    let response = app
        .post(
            "/v1/auth",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            Some("{}"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Sends `body` with `Transfer-Encoding: chunked` over a plain socket and
/// returns the response's status line and body.
async fn raw_chunked_post(app: &TestApp, path: &str, auth: &str, body: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        app.addr,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, rest) = response.split_once("\r\n\r\n").unwrap();
    let status_line = head.lines().next().unwrap().to_owned();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status_line, body)
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = text.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
}

fn base64_std(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
}

both_backends!(unknown_routes_are_404_and_wrong_methods_are_405_in_the_error_shape);
async fn unknown_routes_are_404_and_wrong_methods_are_405_in_the_error_shape(app: TestApp) {
    for (method, path) in
        [(Method::GET, "/v1/nothing"), (Method::POST, "/nothing"), (Method::GET, "/v1")]
    {
        let response = app.request(method, path, &[], None).await;
        assert_error(response, 404, "Not Found").await;
    }
    for (method, path) in [
        (Method::GET, "/v1/auth"),
        (Method::PUT, "/v1/auth"),
        (Method::POST, "/v1/status"),
        (Method::GET, "/v1/signout"),
        (Method::DELETE, "/healthz"),
        (Method::POST, "/"),
    ] {
        let response = app.request(method.clone(), path, &[], None).await;
        assert_error(response, 405, "Method Not Allowed").await;
    }
}

both_backends!(healthz_and_readyz_say_ok);
async fn healthz_and_readyz_say_ok(app: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "OK"}), "{path}");
    }
}

both_backends!(every_sign_in_success_and_failure_is_audited_with_user_and_address);
async fn every_sign_in_success_and_failure_is_audited_with_user_and_address(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.add_user("olga", "cloudio", "s3cret", &[]).await;
    app.store().set_disabled("olga", true, app.clock.now()).await.unwrap();

    app.sign_in_ok("steve", "s3cret").await;
    app.sign_in("steve", "wrong").await;
    app.sign_in("nobody", "s3cret").await;
    app.sign_in("olga", "s3cret").await;

    let entries = app.store().audit_entries().await.unwrap();
    let local = Some("127.0.0.1".to_owned());
    let row = |event: &str, user: &str, detail: &str| {
        (event.to_owned(), Some(user.to_owned()), local.clone(), detail.to_owned())
    };
    assert_eq!(
        entries,
        [
            row("sign-in", "steve", ""),
            row("sign-in failed", "steve", "wrong password"),
            row("sign-in failed", "nobody", "unknown user"),
            row("sign-in failed", "olga", "user disabled"),
        ]
    );
}

both_backends!(no_table_holds_a_clear_password_a_jwt_or_a_csrf_token_outside_its_session);
async fn no_table_holds_a_clear_password_a_jwt_or_a_csrf_token_outside_its_session(app: TestApp) {
    let password = "Unguessable-Pa55word-7f3a";
    app.add_user("steve", "cloudio", password, &[]).await;
    let signed_in = app.sign_in_ok("steve", password).await;
    app.sign_in("steve", "Wrong-Pa55word-91c2").await;
    app.sign_in("nobody", password).await;
    assert_eq!(app.status(&signed_in.jwt, &signed_in.csrf).await.status(), StatusCode::OK);
    assert_eq!(app.sign_out(&signed_in.jwt, &signed_in.csrf).await.status(), StatusCode::OK);

    let cells = app.every_cell().await;
    assert!(cells.iter().any(|(column, _)| column == "audit.event"), "the scan sees the tables");
    let signature = signed_in.jwt.rsplit('.').next().unwrap();
    for (column, value) in &cells {
        for (what, secret) in [
            ("the password", password),
            ("a wrong password", "Wrong-Pa55word-91c2"),
            ("the JWT", signed_in.jwt.as_str()),
            ("the JWT's signature", signature),
        ] {
            assert!(!contains(value, secret.as_bytes()), "{column} holds {what}");
        }
        // The session row keeps its CSRF token to compare with; nothing else may.
        if column != "sessions.csrf" {
            assert!(!contains(value, signed_in.csrf.as_bytes()), "{column} holds the CSRF token");
        }
    }
    if app.db.backend == Backend::Sqlite {
        assert!(!app.db.sqlite_files_contain(password.as_bytes()), "the SQLite file holds it");
    }
}

both_backends!(a_hash_made_with_other_parameters_is_replaced_at_the_next_sign_in);
async fn a_hash_made_with_other_parameters_is_replaced_at_the_next_sign_in(app: TestApp) {
    let old = Hasher::new(&PasswordConfig { memory_kib: 128, iterations: 2, parallelism: 1 })
        .unwrap()
        .hash_blocking("s3cret")
        .unwrap();
    app.add_user_with_hash("steve", "cloudio", &old, &[]).await;

    app.sign_in_ok("steve", "s3cret").await;

    let stored = app.store().user_by_name("steve").await.unwrap().unwrap().password_hash;
    assert_ne!(stored, old);
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(
        stored.contains("m=256,t=1,p=1"),
        "not re-hashed with the config's parameters: {stored}"
    );
    assert!(!stored.contains("s3cret"));

    // The new hash works, and is not replaced again.
    app.sign_in_ok("steve", "s3cret").await;
    let again = app.store().user_by_name("steve").await.unwrap().unwrap().password_hash;
    assert_eq!(again, stored);
}

both_backends!(a_wrong_password_does_not_rehash);
async fn a_wrong_password_does_not_rehash(app: TestApp) {
    let old = Hasher::new(&PasswordConfig { memory_kib: 128, iterations: 2, parallelism: 1 })
        .unwrap()
        .hash_blocking("s3cret")
        .unwrap();
    app.add_user_with_hash("steve", "cloudio", &old, &[]).await;

    assert_seed_403(app.sign_in("steve", "wrong").await).await;

    let stored = app.store().user_by_name("steve").await.unwrap().unwrap().password_hash;
    assert_eq!(stored, old);
}
