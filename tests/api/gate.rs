//! The gate of signed-in calls (design §1.2, §1.3, §1.5; issue 3): Bearer
//! JWT plus CSRF token, forged and broken tokens, the session's whole life
//! under an injected clock, and key rotation.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::auth::signin::SignedIn;
use tessera::auth::tokens::{Claims, new_key};
use tessera::clock::iso8601;
use tessera::config::{Config, HumanDuration};

use crate::helpers::*;

/// Signs `steve` (roles `hr_reader`, `zeta`) in.
async fn steve(app: &TestApp) -> SignedIn {
    app.add_user("steve", "cloudio", "s3cret", &["zeta", "hr_reader"]).await;
    app.sign_in_ok("steve", "s3cret").await
}

/// The claims of a real token, typed.
fn claims_of(signed_in: &SignedIn) -> Claims {
    serde_json::from_value(jwt_parts(&signed_in.jwt).1).unwrap()
}

/// Asserts that `jwt` (with the right CSRF token) is refused with 401.
async fn assert_token_refused(app: &TestApp, jwt: &str, csrf: &str, what: &str) {
    let response = app.status(jwt, csrf).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what} was not refused");
    let body = assert_unauthorized(response).await;
    assert!(!body.message.contains(jwt), "the 401 echoes the token");
}

both_backends!(status_works_with_csrf_in_query_or_header_under_both_header_names);
async fn status_works_with_csrf_in_query_or_header_under_both_header_names(app: TestApp) {
    let s = steve(&app).await;
    let bearer = format!("Bearer {}", s.jwt);
    let query = format!("/v1/status?csrf={}", s.csrf);

    let mut bodies = Vec::new();
    for name in ["Authorization", "Authentication"] {
        let by_query = app.get(&query, &[(name, &bearer)]).await;
        let by_header = app.get("/v1/status", &[(name, &bearer), ("X-CSRF-Token", &s.csrf)]).await;
        for (how, response) in [("?csrf=", by_query), ("X-CSRF-Token", by_header)] {
            assert_eq!(response.status(), StatusCode::OK, "{name} with {how}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["sessionId"], s.session_id, "{name} with {how}");
            bodies.push(body);
        }
    }
    let lower = app.get(&query, &[("Authorization", &format!("bearer {}", s.jwt))]).await;
    assert_eq!(lower.status(), StatusCode::OK, "the Bearer scheme is case-insensitive");
}

both_backends!(status_describes_the_callers_session);
async fn status_describes_the_callers_session(app: TestApp) {
    let s = steve(&app).await;
    let claims = claims_of(&s);
    let idle = app.state.config.session.idle_timeout.0;

    let before = app.clock.now();
    let response = app.status(&s.jwt, &s.csrf).await;
    let after = app.clock.now();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
    let text = response.text().await.unwrap();
    assert_eq!(
        keys_in_order(&text),
        ["sessionId", "userName", "orgUid", "roles", "expiresAt", "idleExpiresAt", "status"]
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["sessionId"], s.session_id);
    assert_eq!(body["userName"], "steve");
    assert_eq!(body["orgUid"], "cloudio");
    assert_eq!(body["roles"], json!(["hr_reader", "zeta"]));
    assert_eq!(body["status"], "OK");
    assert_eq!(body["expiresAt"], iso8601(claims.exp * 1_000_000), "expiresAt is the JWT's exp");
    let idle_expires = body["idleExpiresAt"].as_str().unwrap();
    let idle_micros = i64::try_from(idle.as_micros()).unwrap();
    let low = iso8601(before + idle_micros);
    let high = iso8601(after + idle_micros);
    // Same fixed-width format, so text order is time order.
    assert!(
        low.as_str() <= idle_expires && idle_expires <= high.as_str(),
        "idleExpiresAt {idle_expires} not in {low}..={high}"
    );
}

both_backends!(a_call_without_a_bearer_token_is_401);
async fn a_call_without_a_bearer_token_is_401(app: TestApp) {
    let s = steve(&app).await;
    let query = format!("/v1/status?csrf={}", s.csrf);

    // A bare JWT is accepted (design §1.2; tests/api/clients.rs).
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("no header", &[]),
        ("empty Bearer", &[("Authorization", "Bearer ")]),
        ("Token scheme", &[("Authorization", &token("steve", "s3cret"))]),
    ];
    for (case, headers) in cases {
        let response = app.get(&query, headers).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_unauthorized(response).await;
    }
}

both_backends!(garbage_bearer_tokens_are_401);
async fn garbage_bearer_tokens_are_401(app: TestApp) {
    let s = steve(&app).await;
    for garbage in ["x", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9..", &format!("{}x", s.jwt)] {
        assert_token_refused(&app, garbage, &s.csrf, garbage).await;
    }
}

both_backends!(a_token_with_alg_none_is_401);
async fn a_token_with_alg_none_is_401(app: TestApp) {
    let s = steve(&app).await;
    let payload = s.jwt.split('.').nth(1).unwrap();
    let kid = jwt_parts(&s.jwt).0["kid"].clone();

    for head in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": kid}),
        json!({"alg": "None", "kid": kid}),
    ] {
        let unsigned = format!("{}.{payload}.", b64url(head.to_string()));
        assert_token_refused(&app, &unsigned, &s.csrf, &format!("alg none {head}")).await;
    }
}

both_backends!(a_token_with_a_changed_payload_is_401);
async fn a_token_with_a_changed_payload_is_401(app: TestApp) {
    app.add_user("admin", "cloudio", "adm1n", &["hr_admin"]).await;
    let s = steve(&app).await;
    let parts: Vec<&str> = s.jwt.split('.').collect();
    let mut claims = jwt_parts(&s.jwt).1;
    claims["sub"] = json!("admin");
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);

    let forged = format!("{}.{}.{}", parts[0], b64url(claims.to_string()), parts[2]);

    assert_token_refused(&app, &forged, &s.csrf, "a changed payload").await;
}

both_backends!(a_token_without_its_signature_is_401);
async fn a_token_without_its_signature_is_401(app: TestApp) {
    let s = steve(&app).await;
    let (signed, _) = s.jwt.rsplit_once('.').unwrap();

    assert_token_refused(&app, &format!("{signed}."), &s.csrf, "an empty signature").await;
    assert_token_refused(&app, signed, &s.csrf, "two parts").await;
    let zeros = b64url([0u8; 64]);
    assert_token_refused(&app, &format!("{signed}.{zeros}"), &s.csrf, "a zero signature").await;
}

both_backends!(an_hs256_token_keyed_with_the_public_key_is_401);
async fn an_hs256_token_keyed_with_the_public_key_is_401(app: TestApp) {
    let s = steve(&app).await;
    let kid = jwt_parts(&s.jwt).0["kid"].as_str().unwrap().to_owned();
    let jwks = app.jwks().await;
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &x).unwrap();
    let claims = claims_of(&s);

    for (what, secret) in [("raw public key", raw.clone()), ("JWK x text", x.into_bytes())] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut head = Header::new(alg);
            head.kid = Some(kid.clone());
            let forged =
                jsonwebtoken::encode(&head, &claims, &EncodingKey::from_secret(&secret).unwrap())
                    .unwrap();
            assert_token_refused(&app, &forged, &s.csrf, &format!("{alg:?} keyed with {what}"))
                .await;
        }
    }
}

both_backends!(a_token_signed_by_a_key_outside_the_ring_is_401);
async fn a_token_signed_by_a_key_outside_the_ring_is_401(app: TestApp) {
    let s = steve(&app).await;
    let real_kid = jwt_parts(&s.jwt).0["kid"].as_str().unwrap().to_owned();
    let stranger = new_key(app.clock.now(), &app.state.secrets).unwrap();
    let key = EncodingKey::from_ed_der(
        &app.state.secrets.open(&stranger.kid, &stranger.private_der).unwrap(),
    );
    let claims = claims_of(&s);

    for (what, kid) in [
        ("an unknown kid", Some(stranger.kid.clone())),
        ("the real kid but another key", Some(real_kid)),
        ("no kid", None),
    ] {
        let mut head = Header::new(Algorithm::EdDSA);
        head.kid = kid;
        let forged = jsonwebtoken::encode(&head, &claims, &key).unwrap();
        assert_token_refused(&app, &forged, &s.csrf, what).await;
    }
}

both_backends!(properly_signed_tokens_with_bad_claims_are_401);
async fn properly_signed_tokens_with_bad_claims_are_401(app: TestApp) {
    app.add_user("admin", "cloudio", "adm1n", &["hr_admin"]).await;
    let s = steve(&app).await;
    let real = claims_of(&s);
    let now = app.clock.now_secs();
    let keys = &app.state.keys;

    let cases = [
        ("a wrong iss", Claims { iss: "someone-else".into(), ..real.clone() }),
        ("an exp in the past", Claims { exp: now - 1, ..real.clone() }),
        ("an exp of now", Claims { exp: now, ..real.clone() }),
        (
            "an unknown session",
            Claims { session: uuid::Uuid::new_v4().to_string(), ..real.clone() },
        ),
        ("another user's name on this session", Claims { sub: "admin".into(), ..real.clone() }),
    ];
    for (what, claims) in cases {
        let token = keys.sign(&claims).unwrap();
        assert_token_refused(&app, &token, &s.csrf, what).await;
    }
    // The control: the real claims, signed the same way, pass.
    let token = keys.sign(&real).unwrap();
    assert_eq!(app.status(&token, &s.csrf).await.status(), StatusCode::OK);
}

both_backends!(a_missing_or_foreign_csrf_token_is_403);
async fn a_missing_or_foreign_csrf_token_is_403(app: TestApp) {
    let s = steve(&app).await;
    let other = app.sign_in_ok("steve", "s3cret").await;
    let bearer = format!("Bearer {}", s.jwt);
    let random = uuid::Uuid::new_v4().to_string();

    let cases: [(&str, String, Headers); 5] = [
        ("no CSRF token", "/v1/status".into(), &[]),
        ("an empty ?csrf=", "/v1/status?csrf=".into(), &[]),
        ("another session's csrf", format!("/v1/status?csrf={}", other.csrf), &[]),
        ("another session's csrf as header", "/v1/status".into(), &[("X-CSRF-Token", &other.csrf)]),
        ("a random csrf", format!("/v1/status?csrf={random}"), &[]),
    ];
    for (case, path, extra) in cases {
        let mut headers = vec![("Authorization", bearer.as_str())];
        headers.extend_from_slice(extra);
        let response = app.get(&path, &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_eq!(header(&response, "www-authenticate"), None, "{case}");
        assert_error(response, 403, "Access Denied").await;
    }
    // Both sessions still work with their own tokens.
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    assert_eq!(app.status(&other.jwt, &other.csrf).await.status(), StatusCode::OK);
}

both_backends!(sign_out_makes_the_jwt_401_at_once);
async fn sign_out_makes_the_jwt_401_at_once(app: TestApp) {
    let s = steve(&app).await;
    let other = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    let response = app.sign_out(&s.jwt, &s.csrf).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "OK"}));
    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
    assert_unauthorized(app.sign_out(&s.jwt, &s.csrf).await).await;
    let row = app
        .store()
        .session(&app.state.secrets.session_digest(&s.session_id))
        .await
        .unwrap()
        .unwrap();
    assert!(row.ended_at.is_some(), "the session row is ended");
    // The user's other session is untouched.
    assert_eq!(app.status(&other.jwt, &other.csrf).await.status(), StatusCode::OK);
    let entries = app.store().audit_entries().await.unwrap();
    assert!(
        entries
            .iter()
            .any(|(event, user, ..)| event == "sign-out" && user.as_deref() == Some("steve")),
        "sign-out is audited: {entries:?}"
    );
}

both_backends!(sign_out_without_the_csrf_token_is_403_and_ends_nothing);
async fn sign_out_without_the_csrf_token_is_403_and_ends_nothing(app: TestApp) {
    let s = steve(&app).await;

    let response =
        app.post("/v1/signout", &[("Authorization", &format!("Bearer {}", s.jwt))], None).await;

    assert_error(response, 403, "Access Denied").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    let row = app
        .store()
        .session(&app.state.secrets.session_digest(&s.session_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.ended_at, None);
}

both_backends!(ending_the_session_in_the_store_is_refused_within_a_second);
async fn ending_the_session_in_the_store_is_refused_within_a_second(app: TestApp) {
    let s = steve(&app).await;
    let other = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    // As another process (the CLI, another instance) would.
    assert!(app.end_session_elsewhere(&s.session_id).await);

    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    assert_eq!(app.status(&other.jwt, &other.csrf).await.status(), StatusCode::OK);
}

both_backends!(ending_all_of_a_users_sessions_in_the_store_is_refused_within_a_second);
async fn ending_all_of_a_users_sessions_in_the_store_is_refused_within_a_second(app: TestApp) {
    let s = steve(&app).await;
    let second = app.sign_in_ok("steve", "s3cret").await;
    app.add_user("olga", "cloudio", "0lga", &[]).await;
    let olga = app.sign_in_ok("olga", "0lga").await;
    for x in [&s, &second, &olga] {
        assert_eq!(app.status(&x.jwt, &x.csrf).await.status(), StatusCode::OK);
    }

    let ended = app.store().end_user_sessions("steve", "revoked", app.clock.now()).await.unwrap();

    assert_eq!(ended, Some(2));
    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    assert_unauthorized(app.refused_within_a_second(&second.jwt, &second.csrf).await).await;
    assert_eq!(app.status(&olga.jwt, &olga.csrf).await.status(), StatusCode::OK);
}

both_backends!(changing_the_password_in_the_store_is_refused_within_a_second);
async fn changing_the_password_in_the_store_is_refused_within_a_second(app: TestApp) {
    let s = steve(&app).await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    let hash = app.state.hasher.hash_blocking("n3w").unwrap();

    app.store().change_password("steve", &hash, app.clock.now()).await.unwrap();

    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    assert_seed_403(app.sign_in("steve", "s3cret").await).await;
    let fresh = app.sign_in_ok("steve", "n3w").await;
    assert_eq!(app.status(&fresh.jwt, &fresh.csrf).await.status(), StatusCode::OK);
}

both_backends!(disabling_the_user_in_the_store_is_refused_within_a_second);
async fn disabling_the_user_in_the_store_is_refused_within_a_second(app: TestApp) {
    let s = steve(&app).await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    app.store().set_disabled("steve", true, app.clock.now()).await.unwrap();

    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    assert_seed_403(app.sign_in("steve", "s3cret").await).await;

    // Enabling again allows new sign-ins, but does not revive the old session.
    app.store().set_disabled("steve", false, app.clock.now()).await.unwrap();
    let fresh = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(app.status(&fresh.jwt, &fresh.csrf).await.status(), StatusCode::OK);
    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
}

both_backends!(role_changes_in_the_store_reach_a_live_session_within_a_second);
async fn role_changes_in_the_store_reach_a_live_session_within_a_second(app: TestApp) {
    let s = steve(&app).await;
    let roles = |body: &Value| body["roles"].clone();
    let first: Value = app.status(&s.jwt, &s.csrf).await.json().await.unwrap();
    assert_eq!(roles(&first), json!(["hr_reader", "zeta"]));

    app.store().change_roles("steve", &["hr_admin".into()], &["zeta".into()]).await.unwrap();

    let start = Instant::now();
    loop {
        let body: Value = app.status(&s.jwt, &s.csrf).await.json().await.unwrap();
        if roles(&body) == json!(["hr_admin", "hr_reader"]) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "roles still {}", roles(&body));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn short_sessions(config: &mut Config) {
    config.session.idle_timeout = HumanDuration(Duration::from_secs(30 * 60));
    config.session.max_lifetime = HumanDuration(Duration::from_secs(2 * 3600));
}

both_backends!(a_session_in_use_outlives_the_idle_timeout, config = short_sessions);
async fn a_session_in_use_outlives_the_idle_timeout(app: TestApp) {
    let s = steve(&app).await;

    // Used every 29 minutes for 87 minutes: three idle timeouts' worth.
    for round in 1..=3 {
        app.clock.advance(Duration::from_secs(29 * 60));
        let response = app.status(&s.jwt, &s.csrf).await;
        assert_eq!(response.status(), StatusCode::OK, "use {round}, {} minutes in", round * 29);
    }
}

both_backends!(an_idle_session_is_refused_after_the_idle_timeout, config = short_sessions);
async fn an_idle_session_is_refused_after_the_idle_timeout(app: TestApp) {
    let s = steve(&app).await;
    let other = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    assert_eq!(app.status(&other.jwt, &other.csrf).await.status(), StatusCode::OK);

    app.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(app.status(&other.jwt, &other.csrf).await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(60 + 1));

    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
    // The one used a minute ago is still live.
    assert_eq!(app.status(&other.jwt, &other.csrf).await.status(), StatusCode::OK);
}

both_backends!(the_max_lifetime_ends_even_a_busy_session, config = short_sessions);
async fn the_max_lifetime_ends_even_a_busy_session(app: TestApp) {
    let s = steve(&app).await;

    for _ in 0..4 {
        app.clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    }
    // 116 minutes in: the idle end may not lie past the absolute end.
    let body: Value = app.status(&s.jwt, &s.csrf).await.json().await.unwrap();
    assert_eq!(body["idleExpiresAt"], body["expiresAt"], "{body}");
    // 116 minutes in, used 0 minutes ago; 5 more minutes passes the 2 hours.
    app.clock.advance(Duration::from_secs(5 * 60));

    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
    // A new sign-in starts a new lifetime.
    let fresh = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(app.status(&fresh.jwt, &fresh.csrf).await.status(), StatusCode::OK);
}

both_backends!(a_token_is_refused_once_the_clock_passes_its_exp);
async fn a_token_is_refused_once_the_clock_passes_its_exp(app: TestApp) {
    let s = steve(&app).await;
    let max_lifetime = app.state.config.session.max_lifetime.0;

    app.clock.advance(max_lifetime + Duration::from_secs(1));

    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
}

both_backends!(after_key_rotation_old_tokens_verify_and_new_tokens_carry_the_new_kid);
async fn after_key_rotation_old_tokens_verify_and_new_tokens_carry_the_new_kid(app: TestApp) {
    let old = steve(&app).await;
    let old_kid = jwt_parts(&old.jwt).0["kid"].as_str().unwrap().to_owned();

    let key = new_key(app.clock.now() + 1, &app.state.secrets).unwrap();
    app.store().add_key(&key).await.unwrap();
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();

    // The old token was never used before, so this verifies its signature now.
    assert_eq!(app.status(&old.jwt, &old.csrf).await.status(), StatusCode::OK);
    let new = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(jwt_parts(&new.jwt).0["kid"], key.kid);
    assert_ne!(key.kid, old_kid);
    assert_eq!(app.status(&new.jwt, &new.csrf).await.status(), StatusCode::OK);
    let kids: Vec<Value> =
        app.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids, [json!(old_kid), json!(key.kid)]);
}

both_backends!(a_running_server_signs_with_a_key_added_by_another_process_within_seconds);
async fn a_running_server_signs_with_a_key_added_by_another_process_within_seconds(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let key = new_key(app.clock.now() + 1, &app.state.secrets).unwrap();

    app.store().add_key(&key).await.unwrap();

    let start = Instant::now();
    loop {
        let s = app.sign_in_ok("steve", "s3cret").await;
        if jwt_parts(&s.jwt).0["kid"] == key.kid {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "still signing with the old key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(a_retired_key_stops_verifying_once_no_token_it_signed_can_be_live);
async fn a_retired_key_stops_verifying_once_no_token_it_signed_can_be_live(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let old = app.store().keys().await.unwrap().pop().unwrap();
    let key = new_key(app.clock.now() + 1, &app.state.secrets).unwrap();
    app.store().add_key(&key).await.unwrap();
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();
    let max_lifetime = app.state.config.session.max_lifetime.0;

    // Every token the old key signed has expired by now.
    app.clock.advance(max_lifetime + Duration::from_secs(60));
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();

    // A token made with the retired key (say it leaked) for a live session.
    let s = app.sign_in_ok("steve", "s3cret").await;
    let mut head = Header::new(Algorithm::EdDSA);
    head.kid = Some(old.kid.clone());
    let forged = jsonwebtoken::encode(
        &head,
        &claims_of(&s),
        &EncodingKey::from_ed_der(&app.state.secrets.open(&old.kid, &old.private_der).unwrap()),
    )
    .unwrap();
    assert_token_refused(&app, &forged, &s.csrf, "a token signed by a retired key").await;
    let kids: Vec<Value> =
        app.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids, [json!(key.kid)], "the JWKS still lists the retired key {}", old.kid);
}

both_databases!(a_flush_of_more_uses_than_one_statement_carries_moves_each_forward_only);
/// The last uses of many sessions are written in several statements
/// (`store::last_use`); every session moves forward, none moves back.
async fn a_flush_of_more_uses_than_one_statement_carries_moves_each_forward_only(db: TestDb) {
    use tessera::store::NewUser;

    let store = tessera::store::Store::open(&db.url).await.unwrap();
    let user = NewUser {
        name: "many",
        org_uid: "org",
        display_name: "Many",
        email: "many@example.com",
        password_hash: "x",
        roles: &[],
    };
    store.add_user(&user, 1).await.unwrap();
    tamper(
        &store,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1201) \
         INSERT INTO sessions (id, user_id, csrf, created_at, last_used_at) \
         SELECT 's' || i, (SELECT id FROM users WHERE name = 'many'), 'c', 0, \
                CASE WHEN i = 7 THEN 9000 ELSE 1000 END FROM n",
    )
    .await;
    let uses: Vec<(String, i64)> = (1..=1201).map(|i| (format!("s{i}"), 5000)).collect();
    store.touch_sessions(&uses).await.unwrap();
    let moved = "SELECT COUNT(*) FROM sessions WHERE last_used_at = 5000";
    assert_eq!(count(&store, moved).await, 1200);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions WHERE last_used_at = 9000").await, 1);
    store.close().await;
}
