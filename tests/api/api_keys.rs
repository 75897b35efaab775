//! API keys and secrets at rest (design §1.1, §2 `key …`, §4.7): a key made
//! with the CLI signs in through the seed's endpoint with exactly its roles,
//! stops at expiry and revocation everywhere, never shows again; the
//! database alone holds no secret, session id, CSRF token or usable
//! signing key.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tessera::auth::secrets::Secrets;
use tessera::store::Store;

use crate::cli::{cli_config, config_file, ok, tessera, user_error};
use crate::helpers::*;

/// `tessera key add ARGS…`: the secret it printed.
async fn key_add(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["key", "add"];
    all.extend(args);
    let out = ok(tessera(app, &all, "").await);
    let secret = out.trim().to_owned();
    assert!(secret.starts_with("tsk_") && secret.len() == 42, "not a key secret: {out:?}");
    secret
}

/// `GET /v1/status` as JSON, asserting a 200.
async fn status_json(server: &Server, jwt: &str, csrf: &str) -> Value {
    let response = server.status(jwt, csrf).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The key id `key list` shows on the line of the key named `name`.
fn listed_id(listed: &str, name: &str) -> String {
    let line = listed.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{listed}"));
    line.split_whitespace().next().unwrap().to_owned()
}

both_backends!(a_key_signs_in_with_its_roles_until_revoked, config = cli_config);
async fn a_key_signs_in_with_its_roles_until_revoked(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_admin", "hr_reader"]).await;
    let secret = key_add(&app, &["steve", "--name", "ci-runner", "--role", "hr_reader"]).await;

    // The seed's request and the seed's 200, fields in order.
    let response = app.sign_in("steve", &secret).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert_eq!(keys_in_order(&text), SEED_FIELDS);
    let s: tessera::auth::signin::SignedIn = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (s.user_name.as_str(), s.org_uid.as_str(), s.status.as_str()),
        ("steve", "cloudio", "OK")
    );
    let status = status_json(&app, &s.jwt, &s.csrf).await;
    assert_eq!(status["roles"], serde_json::json!(["hr_reader"]), "{status}");
    // A password sign-in still has all the user's roles.
    let p = app.sign_in_ok("steve", "s3cret").await;
    assert_eq!(status_json(&app, &p.jwt, &p.csrf).await["roles"].as_array().unwrap().len(), 2);

    // Listed with its name, roles and last use; never the secret.
    let listed = ok(tessera(&app, &["key", "list"], "").await);
    assert!(listed.contains("ci-runner") && listed.contains("hr_reader"), "{listed}");
    assert!(!listed.contains(&secret) && !listed.contains(&secret[4..20]), "{listed}");
    let line = listed.lines().find(|l| l.contains("ci-runner")).unwrap();
    assert!(
        line.contains("active") && line.matches('Z').count() == 2,
        "created and last used: {line}"
    );
    let id = listed_id(&listed, "ci-runner");

    ok(tessera(&app, &["key", "revoke", &id], "").await);
    assert_seed_403(app.sign_in("steve", &secret).await).await;
    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    // The password session was not opened with the key: it lives on.
    assert_eq!(app.status(&p.jwt, &p.csrf).await.status(), StatusCode::OK);
    let listed = ok(tessera(&app, &["key", "list", "--user", "steve"], "").await);
    assert!(listed.contains("revoked"), "{listed}");
    user_error(&tessera(&app, &["key", "revoke", &id], "").await);
}

both_backends!(a_mistyped_key_is_refused_without_a_database_look_up, config = cli_config);
async fn a_mistyped_key_is_refused_without_a_database_look_up(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    let secret = key_add(&app, &["steve"]).await;
    let mut typo = secret.clone().into_bytes();
    typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    assert_seed_403(app.sign_in("steve", &typo).await).await;

    // With the database gone, a mistyped key is still the seed's 403 (it
    // never reached the database), while a well-formed key cannot be checked.
    app.store().close().await;
    app.state.sign_ins.close().await;
    assert_seed_403(app.sign_in("steve", &typo).await).await;
    let checked = app.sign_in("steve", &secret).await;
    assert!(checked.status().is_server_error(), "a well-formed key is looked up: {checked:?}");
}

both_backends!(a_key_of_another_user_or_unknown_is_the_seeds_403, config = cli_config);
async fn a_key_of_another_user_or_unknown_is_the_seeds_403(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    app.add_user("mallory", "cloudio", "m4llory", &["hr_reader"]).await;
    let steves = key_add(&app, &["steve"]).await;
    assert_seed_403(app.sign_in("mallory", &steves).await).await;
    assert_seed_403(app.sign_in("nobody", &steves).await).await;
    let unknown = tessera::auth::api_keys::generate().unwrap();
    assert_seed_403(app.sign_in("steve", &unknown).await).await;
    // The right user still signs in with it.
    app.sign_in_ok("steve", &steves).await;
    // A disabled user's key stops too.
    ok(tessera(&app, &["user", "disable", "steve"], "").await);
    assert_seed_403(app.sign_in("steve", &steves).await).await;
}

both_backends!(a_keys_roles_are_a_subset_and_narrow_with_the_user, config = cli_config);
async fn a_keys_roles_are_a_subset_and_narrow_with_the_user(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    // A role the user does not hold cannot go on a key.
    let refused = tessera(&app, &["key", "add", "steve", "--role", "hr_admin"], "").await;
    assert!(user_error(&refused).contains("does not hold role hr_admin"), "{refused:?}");
    user_error(&tessera(&app, &["key", "add", "steve", "--role", "no_such_role"], "").await);
    user_error(&tessera(&app, &["key", "add", "nobody"], "").await);

    // With no --role the key carries the user's roles at `key add`.
    ok(tessera(&app, &["user", "roles", "steve", "--add", "hr_admin"], "").await);
    let both = key_add(&app, &["steve"]).await;
    let reader = key_add(&app, &["steve", "--role", "hr_reader"]).await;
    let s = app.sign_in_ok("steve", &both).await;
    let roles = status_json(&app, &s.jwt, &s.csrf).await["roles"].clone();
    assert_eq!(roles, serde_json::json!(["hr_admin", "hr_reader"]));

    // A role taken from the user is gone from its keys' sessions, new and old.
    ok(tessera(&app, &["user", "roles", "steve", "--remove", "hr_reader"], "").await);
    let r = app.sign_in_ok("steve", &reader).await;
    assert_eq!(status_json(&app, &r.jwt, &r.csrf).await["roles"], serde_json::json!([]));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let roles = status_json(&app, &s.jwt, &s.csrf).await["roles"].clone();
        if roles == serde_json::json!(["hr_admin"]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {roles}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(a_key_stops_at_its_expiry_and_ends_its_sessions, config = cli_config);
async fn a_key_stops_at_its_expiry_and_ends_its_sessions(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    let secret = key_add(&app, &["steve", "--expires", "1h", "--name", "short"]).await;
    let s = app.sign_in_ok("steve", &secret).await;
    // The session ends with the key, not 12 hours after sign-in.
    let expires =
        status_json(&app, &s.jwt, &s.csrf).await["expiresAt"].as_str().unwrap().to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap().timestamp_micros();
    assert!(expires <= app.clock.now() + 3_600_000_000, "session outlives its key: {expires}");

    for _ in 0..2 {
        // Used every 25 minutes, so the idle timeout (30m) does not end it.
        app.clock.advance(Duration::from_secs(25 * 60));
        app.sign_in_ok("steve", &secret).await;
        assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    }

    app.clock.advance(Duration::from_secs(11 * 60));
    assert_seed_403(app.sign_in("steve", &secret).await).await;
    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
    let listed = ok(tessera(&app, &["key", "list"], "").await);
    assert!(listed.lines().any(|l| l.contains("short")), "{listed}");
}

both_backends!(a_key_revoked_is_refused_on_every_instance_within_a_second, config = cli_config);
async fn a_key_revoked_is_refused_on_every_instance_within_a_second(app: TestApp) {
    let other = app.another_instance().await;
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    let secret = key_add(&app, &["steve", "--name", "fleet"]).await;
    let here = app.sign_in_ok("steve", &secret).await;
    let there = other.sign_in_ok("steve", &secret).await;
    for server in [&app.server, &other] {
        for s in [&here, &there] {
            assert_eq!(server.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
        }
    }
    let id = listed_id(&ok(tessera(&app, &["key", "list"], "").await), "fleet");
    let ran = ok(tessera(&app, &["key", "revoke", &id], "").await);
    assert!(ran.contains("2 sessions ended"), "{ran}");
    for server in [&app.server, &other] {
        for s in [&here, &there] {
            assert_unauthorized(server.refused_within_a_second(&s.jwt, &s.csrf).await).await;
        }
        assert_seed_403(server.sign_in("steve", &secret).await).await;
    }
}

fn two_failures(config: &mut tessera::config::Config) {
    cli_config(config);
    config.throttle.user_address_failures = 2;
    config.throttle.ip_failures = 2;
}

both_backends!(a_storm_of_right_keys_is_not_throttled_but_wrong_keys_count, config = two_failures);
async fn a_storm_of_right_keys_is_not_throttled_but_wrong_keys_count(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    let secret = key_add(&app, &["steve"]).await;
    let mut storm = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (client, url, auth) =
            (app.client.clone(), app.url("/v1/auth"), token("steve", &secret));
        storm.spawn(async move {
            client.post(url).header("Authorization", auth).body("{}").send().await.unwrap().status()
        });
    }
    while let Some(status) = storm.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let wrong = tessera::auth::api_keys::generate().unwrap();
    assert_seed_403(app.sign_in("steve", &wrong).await).await;
    assert_seed_403(app.sign_in("steve", &wrong).await).await;
    let locked = app.sign_in("steve", &wrong).await;
    assert_error(locked, 429, "Too Many Requests").await;
    // The right key is still let in: it cannot have been guessed.
    app.sign_in_ok("steve", &secret).await;
}

both_backends!(no_secret_session_id_csrf_or_signing_key_is_in_the_database, config = cli_config);
async fn no_secret_session_id_csrf_or_signing_key_is_in_the_database(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    let secret = key_add(&app, &["steve"]).await;
    let by_key = app.sign_in_ok("steve", &secret).await;
    let by_password = app.sign_in_ok("steve", "s3cret").await;
    for s in [&by_key, &by_password] {
        assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    }
    let signing = &app.store().keys().await.unwrap()[0];
    let private = app.state.secrets.open(&signing.kid, &signing.private_der).unwrap();
    let key_file = std::fs::read(app.db.key_file()).unwrap();
    let mut needles: Vec<(&str, Vec<u8>)> = vec![
        ("the key secret", secret.clone().into_bytes()),
        ("the key's random part", secret.as_bytes()[4..36].to_vec()),
        // PKCS#8 of Ed25519: a 16-byte header, then the 32-byte seed.
        ("the private signing key", private[16..48].to_vec()),
        ("the secret key", key_file),
    ];
    for s in [&by_key, &by_password] {
        needles.push(("a session id", s.session_id.clone().into_bytes()));
        needles.push(("a CSRF token", s.csrf.clone().into_bytes()));
        needles.push(("a session id without dashes", s.session_id.replace('-', "").into_bytes()));
    }
    let cells = app.every_cell().await;
    for (what, needle) in &needles {
        for (cell, value) in &cells {
            assert!(!contains(value, needle), "{cell} holds {what}");
        }
        if app.db.backend == Backend::Sqlite {
            assert!(!app.db.sqlite_files_contain(needle), "the SQLite files hold {what}");
        }
    }
}

both_databases!(a_database_copy_with_another_secret_key_cannot_sign);
async fn a_database_copy_with_another_secret_key_cannot_sign(db: TestDb) {
    let app = TestApp::spawn(db, test_config()).await;
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.sign_in_ok("steve", "s3cret").await;

    // Another secret key: the server does not start, so nothing is signed.
    let mut config = app.state.config.clone();
    config.secrets.key_file = app.db.dir.path().join("other.key");
    let error = format!("{:#}", tessera::start(config, app.clock.clone()).await.err().unwrap());
    assert!(error.contains("cannot be opened with the secret key in use"), "{error}");
    assert!(!error.contains("s3cret"));

    // `tessera check` says so in one sentence; with the right key, it passes.
    let config_path = config_file(&app.db);
    let url = app.db.url.clone();
    let check = |key: &str| {
        let args = ["check", "--config", config_path.to_str().unwrap(), "--database", &url];
        let mut command = tessera_command(app.db.dir.path());
        command.args(args).env(tessera::auth::secrets::ENV, key);
        command.output().unwrap()
    };
    let other = check(&"11".repeat(32));
    assert_eq!(other.status.code(), Some(1));
    let said = String::from_utf8(other.stderr).unwrap();
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("cannot be opened with the secret key in use"), "{said}");
    let own = std::fs::read(app.db.key_file()).unwrap();
    let own_hex: String = own.iter().map(|b| format!("{b:02x}")).collect();
    let right = check(&own_hex);
    assert_eq!(right.status.code(), Some(0), "{}", String::from_utf8_lossy(&right.stderr));
}

both_backends!(signing_keys_stored_before_sealing_are_sealed_at_start);
async fn signing_keys_stored_before_sealing_are_sealed_at_start(app: TestApp) {
    // A key as the previous version stored it: plain PKCS#8.
    let mut old = tessera::auth::tokens::new_key(app.clock.now() + 1, &app.state.secrets).unwrap();
    let plain = app.state.secrets.open(&old.kid, &old.private_der).unwrap();
    old.private_der = plain.clone();
    app.store().add_key(&old).await.unwrap();
    let stored = |store: Store, kid: String| async move {
        store.keys().await.unwrap().into_iter().find(|k| k.kid == kid).unwrap().private_der
    };

    // A start (here, another instance; on PostgreSQL the running one too,
    // told of the new key) seals it in place, and it signs.
    let other = app.another_instance().await;
    let sealed = stored(app.store().clone(), old.kid.clone()).await;
    assert!(Secrets::is_sealed(&sealed));
    assert_eq!(app.state.secrets.open(&old.kid, &sealed).unwrap(), plain);
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let s = other.sign_in_ok("steve", "s3cret").await;
    assert_eq!(jwt_parts(&s.jwt).0["kid"], old.kid.as_str());
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_sqlite_files_and_the_key_file_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = db.dir.path().to_owned();
    let app = TestApp::spawn(db, test_config()).await;
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.sign_in_ok("steve", "s3cret").await;
    for file in ["t.db", "t.db-wal", "t.db-shm", "tessera.key"] {
        let mode = std::fs::metadata(dir.join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}

both_backends!(a_sign_in_whose_audit_entry_fails_stores_no_session, config = cli_config);
async fn a_sign_in_whose_audit_entry_fails_stores_no_session(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &["hr_reader"]).await;
    let secret = key_add(&app, &["steve"]).await;
    let sessions = "SELECT COUNT(*) FROM sessions";
    let before = count(app.store(), sessions).await;
    // The audit table refuses every row from now on.
    let (refuse, allow): (&[&'static str], _) = match app.db.backend {
        Backend::Sqlite => (
            &["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit \
               BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
            "DROP TRIGGER refuse_audit",
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            ],
            "DROP TRIGGER refuse_audit ON audit",
        ),
    };
    for sql in refuse {
        tamper(app.store(), sql).await;
    }
    // The session is written first, in the same transaction: undone.
    for password in [secret.as_str(), "s3cret"] {
        let response = app.sign_in("steve", password).await;
        assert!(response.status().is_server_error(), "{response:?}");
    }
    assert_eq!(count(app.store(), sessions).await, before, "a session without its audit entry");
    tamper(app.store(), allow).await;
    // The writer goes on, on a fresh connection where it closed its own.
    assert_eq!(app.sign_in("steve", &secret).await.status(), StatusCode::OK);
    assert_eq!(count(app.store(), sessions).await, before + 1);
}

both_backends!(key_sign_ins_at_once_each_get_a_session_of_their_own_user, config = cli_config);
async fn key_sign_ins_at_once_each_get_a_session_of_their_own_user(app: TestApp) {
    // Key sign-ins waiting together are looked up and stored together: each
    // answer must still be its own.
    let mut bots = Vec::new();
    for i in 0..6 {
        let (name, org) = (format!("bot{i}"), if i % 2 == 0 { "cloudio" } else { "acme" });
        app.add_user(&name, org, "pw", &["hr_reader"]).await;
        let secret = key_add(&app, &[&name]).await;
        bots.push((name, org, secret));
    }
    let unknown = tessera::auth::api_keys::generate().unwrap();
    let mut calls: Vec<(String, String, Option<&str>)> = Vec::new();
    for _ in 0..4 {
        for (name, org, secret) in &bots {
            calls.push((name.clone(), secret.clone(), Some(org)));
        }
        // Another user's key, and a key nobody has.
        calls.push((bots[0].0.clone(), bots[1].2.clone(), None));
        calls.push((bots[2].0.clone(), unknown.clone(), None));
    }
    let mut storm = tokio::task::JoinSet::new();
    for (name, secret, org) in calls {
        let (client, url, auth) = (app.client.clone(), app.url("/v1/auth"), token(&name, &secret));
        let org = org.map(str::to_owned);
        storm.spawn(async move {
            let response = client.post(url).header("Authorization", auth).body("{}").send().await;
            (name, org, response.unwrap())
        });
    }
    let mut signed_in = 0;
    while let Some(done) = storm.join_next().await {
        let (name, org, response) = done.unwrap();
        let Some(org) = org else {
            assert_seed_403(response).await;
            continue;
        };
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["userName"].as_str(), body["orgUid"].as_str()),
            (Some(&*name), Some(&*org))
        );
        let (jwt, csrf) = (body["jwt"].as_str().unwrap(), body["csrf"].as_str().unwrap());
        assert_eq!(status_json(&app, jwt, csrf).await["userName"], name.as_str());
        signed_in += 1;
    }
    assert_eq!(signed_in, 24);
}
