//! The `tessera` binary (design §2): user, session and key management
//! against the database a running server uses, exit codes, and `serve
//! --demo` printing a `curl` line that signs in.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::config::Config;

use crate::helpers::*;

/// The config file the CLI tests pass with `--config`: cheap hashing, one
/// datasource, and the roles a user may be given.
const CONFIG: &str = r#"
[password]
memory_kib = 256
iterations = 1
parallelism = 1

[datasources.Employees]
table = "employees"
[datasources.Employees.attributes]
empId = { type = "Integer", primary_key = true, generated = true }
name  = { type = "String", required = true }

[roles.hr_reader]
Employees = ["query"]
[roles.hr_admin]
Employees = ["query", "insert", "update", "delete"]
"#;

/// The server side of the CLI tests runs with the same config file.
pub(crate) fn cli_config(config: &mut Config) {
    let file = Config::parse(CONFIG).unwrap();
    config.password = file.password;
    config.datasources = file.datasources;
    config.roles = file.roles;
}

/// Writes the config file into the test's scratch directory.
pub(crate) fn config_file(db: &TestDb) -> PathBuf {
    let path = db.dir.path().join("tessera.test.toml");
    std::fs::write(&path, CONFIG).unwrap();
    path
}

/// Runs `tessera ARGS --config FILE --database URL` against the app's database.
pub(crate) async fn tessera(app: &TestApp, args: &[&str], stdin: &str) -> Ran {
    let config = config_file(&app.db);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap(), "--database", &app.db.url]);
    run_tessera(app.db.dir.path(), &all, stdin).await
}

/// Runs `tessera check --config CONFIG --database URL` in `dir`.
pub(crate) async fn check(dir: &Path, config: &Path, url: &str) -> Ran {
    run_tessera(dir, &["check", "--config", config.to_str().unwrap(), "--database", url], "").await
}

/// Asserts exit status 0 and returns standard output.
pub(crate) fn ok(ran: Ran) -> String {
    assert_eq!(ran.code, 0, "expected success: {ran:?}");
    ran.stdout
}

/// Asserts a user error: exit status 1 and one sentence on standard error.
pub(crate) fn user_error(ran: &Ran) -> &str {
    assert_eq!(ran.code, 1, "expected a user error: {ran:?}");
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", ran.stderr);
    lines[0]
}

both_backends!(user_add_creates_an_account_that_signs_in_with_its_roles, config = cli_config);
async fn user_add_creates_an_account_that_signs_in_with_its_roles(app: TestApp) {
    let ran = tessera(
        &app,
        &[
            "user",
            "add",
            "alice",
            "--org",
            "acme",
            "--display-name",
            "Alice Liddell",
            "--email",
            "alice@acme.io",
            "--role",
            "hr_reader",
            "--role",
            "hr_admin",
            "--password-stdin",
        ],
        "s3cret: with spaces\n",
    )
    .await;
    assert!(!ran.stdout.contains("s3cret") && !ran.stderr.contains("s3cret"), "{ran:?}");
    ok(ran);

    let response = app.sign_in("alice", "s3cret: with spaces").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert_eq!(keys_in_order(&text), SEED_FIELDS);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["orgUid"], "acme");
    assert_eq!(body["userName"], "alice");
    assert_eq!(body["displayName"], "Alice Liddell");
    assert_eq!(body["emailAddress"], "alice@acme.io");
    let (jwt, csrf) = (body["jwt"].as_str().unwrap(), body["csrf"].as_str().unwrap());
    let status: Value = app.status(jwt, csrf).await.json().await.unwrap();
    assert_eq!(status["roles"], json!(["hr_admin", "hr_reader"]));

    let stored = app.store().user_by_name("alice").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains("s3cret"));

    let list = ok(tessera(&app, &["user", "list"], "").await);
    let line = list.lines().find(|l| l.starts_with("alice ")).expect("alice is listed");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[1], "acme", "{line}");
    assert!(words.contains(&"active"), "{line}");
    assert!(line.contains("hr_admin,hr_reader"), "{line}");
}

both_backends!(
    user_add_with_an_unknown_role_exits_1_with_one_line_and_adds_nobody,
    config = cli_config
);
async fn user_add_with_an_unknown_role_exits_1_with_one_line_and_adds_nobody(app: TestApp) {
    let ran = tessera(
        &app,
        &["user", "add", "alice", "--org", "acme", "--role", "astronaut", "--password-stdin"],
        "s3cret\n",
    )
    .await;

    let line = user_error(&ran);
    assert!(line.contains("astronaut"), "the message names the role: {line}");
    assert!(app.store().user_by_name("alice").await.unwrap().is_none());
}

both_backends!(user_errors_exit_1_with_one_sentence, config = cli_config);
async fn user_errors_exit_1_with_one_sentence(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &[]).await;

    let cases: [(&[&str], &str, &str); 6] = [
        (&["user", "add", "alice", "--org", "acme", "--password-stdin"], "pw\n", "alice"),
        (&["user", "passwd", "nobody", "--password-stdin"], "pw\n", "nobody"),
        (&["user", "disable", "nobody"], "", "nobody"),
        (&["user", "roles", "alice", "--add", "astronaut"], "", "astronaut"),
        (&["session", "revoke", "no-such-session"], "", "no-such-session"),
        (&["user", "add", "bob", "--org", "acme", "--password-stdin"], "\n", "password"),
    ];
    for (args, stdin, named) in cases {
        let ran = tessera(&app, args, stdin).await;
        let line = user_error(&ran);
        assert!(line.contains(named), "{args:?}: the message names {named}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 6] = [
        &["user", "add", "alice", "--password-stdin"],
        &["user", "add", "--org", "acme"],
        &["session", "revoke"],
        &["user", "roles"],
        &["launch"],
        &["user", "list", "--frobnicate"],
    ];
    for args in cases {
        let ran = run_tessera(dir.path(), args, "").await;
        assert_eq!(ran.code, 2, "{args:?}: {ran:?}");
        assert!(!ran.stderr.is_empty(), "{args:?} explains itself on stderr");
        assert!(ran.stdout.is_empty(), "{args:?}: {ran:?}");
    }
}

both_backends!(global_options_work_before_and_after_the_command, config = cli_config);
async fn global_options_work_before_and_after_the_command(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &[]).await;
    let config = config_file(&app.db);
    let config = config.to_str().unwrap();
    let url = app.db.url.as_str();
    let dir = app.db.dir.path();

    let before =
        run_tessera(dir, &["--config", config, "--database", url, "user", "list"], "").await;
    let between =
        run_tessera(dir, &["--database", url, "user", "--config", config, "list"], "").await;
    let after =
        run_tessera(dir, &["user", "list", "--config", config, "--database", url], "").await;

    for ran in [before, between, after] {
        assert!(ok(ran).lines().any(|l| l.starts_with("alice ")));
    }
}

both_backends!(the_database_url_may_come_from_the_environment, config = cli_config);
async fn the_database_url_may_come_from_the_environment(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &[]).await;
    let config = config_file(&app.db);

    let url = app.db.url.clone();
    let dir = app.db.dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        tessera_command(&dir)
            .args(["user", "list", "--config", config.to_str().unwrap()])
            .env("TESSERA_DATABASE_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8(output.stdout).unwrap().lines().any(|l| l.starts_with("alice ")));
}

both_backends!(
    user_passwd_ends_sessions_on_the_running_server_within_a_second,
    config = cli_config
);
async fn user_passwd_ends_sessions_on_the_running_server_within_a_second(app: TestApp) {
    app.add_user("alice", "acme", "old-pw", &[]).await;
    let s = app.sign_in_ok("alice", "old-pw").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    ok(tessera(&app, &["user", "passwd", "alice", "--password-stdin"], "new-pw\n").await);

    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    assert_seed_403(app.sign_in("alice", "old-pw").await).await;
    app.sign_in_ok("alice", "new-pw").await;
    let entries = app.store().audit_entries().await.unwrap();
    assert!(entries.iter().any(|(event, user, ..)| {
        event == "password changed" && user.as_deref() == Some("alice")
    }));
}

both_backends!(user_disable_ends_sessions_and_sign_ins_until_enable, config = cli_config);
async fn user_disable_ends_sessions_and_sign_ins_until_enable(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &[]).await;
    let s = app.sign_in_ok("alice", "s3cret").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    ok(tessera(&app, &["user", "disable", "alice"], "").await);

    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
    assert_seed_403(app.sign_in("alice", "s3cret").await).await;
    let list = ok(tessera(&app, &["user", "list"], "").await);
    let line = list.lines().find(|l| l.starts_with("alice ")).unwrap();
    assert!(line.split_whitespace().any(|w| w == "disabled"), "{line}");

    ok(tessera(&app, &["user", "enable", "alice"], "").await);

    app.sign_in_ok("alice", "s3cret").await;
    assert_unauthorized(app.status(&s.jwt, &s.csrf).await).await;
}

both_backends!(user_roles_add_and_remove_reach_a_live_session_within_a_second, config = cli_config);
async fn user_roles_add_and_remove_reach_a_live_session_within_a_second(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &["hr_reader"]).await;
    let s = app.sign_in_ok("alice", "s3cret").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    let out = tessera(
        &app,
        &["user", "roles", "alice", "--add", "hr_admin", "--remove", "hr_reader"],
        "",
    )
    .await;
    ok(out);

    let start = Instant::now();
    loop {
        let body: Value = app.status(&s.jwt, &s.csrf).await.json().await.unwrap();
        if body["roles"] == json!(["hr_admin"]) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "roles still {}", body["roles"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let user = app.store().user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(app.store().user_roles(user.id).await.unwrap(), ["hr_admin"]);
}

both_backends!(session_list_and_revoke_by_id_and_by_user, config = cli_config);
async fn session_list_and_revoke_by_id_and_by_user(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &[]).await;
    app.add_user("bob", "acme", "b0b", &[]).await;
    let a1 = app.sign_in_ok("alice", "s3cret").await;
    let a2 = app.sign_in_ok("alice", "s3cret").await;
    let b = app.sign_in_ok("bob", "b0b").await;
    for s in [&a1, &a2, &b] {
        assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    }

    // The list shows a short handle of each session's digest, never its id.
    let listed = ok(tessera(&app, &["session", "list"], "").await);
    for s in [&a1, &a2, &b] {
        let handle = app.session_handle(&s.session_id);
        assert!(listed.contains(&handle), "{handle} not in {listed}");
        assert!(!listed.contains(&s.session_id), "session list shows a session id: {listed}");
    }
    let only_bob = ok(tessera(&app, &["session", "list", "--user", "bob"], "").await);
    assert!(only_bob.contains(&app.session_handle(&b.session_id)));
    assert!(!only_bob.contains(&app.session_handle(&a1.session_id)));
    assert!(!listed.contains(&a1.csrf), "session list shows no CSRF token");

    // Revoked by the id sign-in returned...
    ok(tessera(&app, &["session", "revoke", &a1.session_id], "").await);
    assert_unauthorized(app.refused_within_a_second(&a1.jwt, &a1.csrf).await).await;
    assert_eq!(app.status(&a2.jwt, &a2.csrf).await.status(), StatusCode::OK);
    let again = tessera(&app, &["session", "revoke", &a1.session_id], "").await;
    user_error(&again);
    // ...or by the handle the list shows.
    let handle = app.session_handle(&a2.session_id);
    ok(tessera(&app, &["session", "revoke", &handle], "").await);
    assert_unauthorized(app.refused_within_a_second(&a2.jwt, &a2.csrf).await).await;
    user_error(&tessera(&app, &["session", "revoke", "not-a-handle"], "").await);

    let a3 = app.sign_in_ok("alice", "s3cret").await;
    ok(tessera(&app, &["session", "revoke", "--user", "alice"], "").await);
    assert_unauthorized(app.refused_within_a_second(&a3.jwt, &a3.csrf).await).await;
    assert_eq!(app.status(&b.jwt, &b.csrf).await.status(), StatusCode::OK);
    let listed = ok(tessera(&app, &["session", "list"], "").await);
    assert!(!listed.contains(&app.session_handle(&a3.session_id)), "{listed}");
    assert!(listed.contains(&app.session_handle(&b.session_id)), "{listed}");
}

both_backends!(keys_rotate_reaches_the_running_server_within_seconds, config = cli_config);
async fn keys_rotate_reaches_the_running_server_within_seconds(app: TestApp) {
    app.add_user("alice", "acme", "s3cret", &[]).await;
    let old = app.sign_in_ok("alice", "s3cret").await;
    let old_kid = jwt_parts(&old.jwt).0["kid"].as_str().unwrap().to_owned();

    let out = ok(tessera(&app, &["keys", "rotate"], "").await);

    let new_kid = app.store().keys().await.unwrap().last().unwrap().kid.clone();
    assert_ne!(new_kid, old_kid);
    assert!(out.contains(&new_kid), "the output names the new key: {out}");
    let start = Instant::now();
    loop {
        let s = app.sign_in_ok("alice", "s3cret").await;
        if jwt_parts(&s.jwt).0["kid"] == new_kid {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "still signing with the old key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.status(&old.jwt, &old.csrf).await.status(), StatusCode::OK);
    let kids: Vec<Value> =
        app.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids, [json!(old_kid), json!(new_kid)]);
}

both_databases!(check_succeeds_on_a_fresh_database);
async fn check_succeeds_on_a_fresh_database(db: TestDb) {
    let config = config_file(&db);

    let ran = check(db.dir.path(), &config, &db.url).await;

    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(!ran.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_with_a_bad_config_file_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 3\n").unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());

    let ran = check(dir.path(), &config, &url).await;

    let line = user_error(&ran);
    assert!(line.contains("listen_port"), "{line}");
}

/// Kills and reaps the child when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `tessera serve --demo`.
struct Demo {
    child: KillOnDrop,
    /// The `curl` line it printed (signing in with the password).
    curl: String,
    /// The second `curl` line (signing in with the demo API key).
    key_curl: String,
    /// Everything it printed before the `curl` line.
    printed: Vec<String>,
    /// Its log (standard error), collected as it comes.
    log: Arc<Mutex<String>>,
}

impl Demo {
    /// Stops the server and returns its whole log.
    fn stop(mut self) -> String {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        // The collector ends at EOF, which follows the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.log) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.log.lock().unwrap().clone()
    }
}

/// Starts `tessera serve --demo` and waits for its `curl` line.
fn start_demo(dir: &Path, url: &str) -> Demo {
    let mut child = tessera_command(dir)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--database", url])
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    let log = Arc::new(Mutex::new(String::new()));
    let collector = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = collector.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) if line.starts_with("curl ") => {
                let key_curl = loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match received.recv_timeout(left) {
                        Ok(next) if next.starts_with("curl ") => break next,
                        Ok(next) => printed.push(next),
                        Err(e) => panic!("no key curl line from serve --demo ({e}): {printed:?}"),
                    }
                };
                return Demo { child, curl: line, key_curl, printed, log };
            }
            Ok(line) => printed.push(line),
            Err(e) => panic!("no curl line from serve --demo ({e}); it printed {printed:?}"),
        }
    }
}

/// Runs a shell line, with no proxy in the way.
fn shell(line: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .output()
        .unwrap()
}

both_databases!(serve_demo_prints_a_curl_line_that_signs_in_as_steve);
async fn serve_demo_prints_a_curl_line_that_signs_in_as_steve(db: TestDb) {
    let dir = db.dir.path().to_owned();
    let url = db.url.clone();

    let (demo, body, code, by_key) = tokio::task::spawn_blocking(move || {
        let demo = start_demo(&dir, &url);
        // The exact line, then the same line asked for its status code only.
        let body = shell(&demo.curl);
        let code = shell(&format!("{} -o /dev/null -w '%{{http_code}}'", demo.curl));
        let by_key = shell(&demo.key_curl);
        (demo, body, code, by_key)
    })
    .await
    .unwrap();

    // The second line signs in as steve with the demo API key.
    let by_key = String::from_utf8(by_key.stdout).unwrap();
    assert_eq!(keys_in_order(&by_key), SEED_FIELDS, "{by_key}");
    assert!(by_key.contains(r#""userName":"steve""#), "{by_key}");
    let key_secret = demo.key_curl.split('\'').find(|p| p.starts_with("Authorization: ")).unwrap();
    let key_secret = key_secret.trim_start_matches("Authorization: Token ").to_owned();

    assert!(body.status.success(), "{body:?}");
    let text = String::from_utf8(body.stdout).unwrap();
    assert!(text.contains(r#""userName":"steve""#), "{text}");
    assert_eq!(keys_in_order(&text), SEED_FIELDS);
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["orgUid"], "cloudio");
    assert_eq!(json["displayName"], "Steve");
    assert_eq!(json["emailAddress"], "name@cloudio.io");
    assert_eq!(json["status"], "OK");
    assert_eq!(String::from_utf8(code.stdout).unwrap(), "200");

    // Use the session and fail a sign-in, then read the server's log.
    let base = demo.curl.split_whitespace().find(|w| w.starts_with("http://")).unwrap();
    let base = base.trim_end_matches("/v1/auth").to_owned();
    let (jwt, csrf) = (json["jwt"].as_str().unwrap(), json["csrf"].as_str().unwrap());
    let client = client();
    let status =
        client.get(format!("{base}/v1/status?csrf={csrf}")).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    // The demo's Employees datasource has rows that steve may query.
    let employees = client
        .post(format!("{base}/v1/api?csrf={csrf}"))
        .bearer_auth(jwt)
        .body(r#"{"e":{"ds":"Employees","query":{"sort":{"name":1},"limit":50}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(employees.status(), StatusCode::OK);
    let employees: serde_json::Value = employees.json().await.unwrap();
    let rows = employees["data"]["e"]["data"].as_array().unwrap();
    assert!(rows.len() >= 3, "the demo ships a few rows: {employees}");
    assert_eq!(rows[0]["name"], "Ada Lovelace");
    let wrong = client
        .post(format!("{base}/v1/auth"))
        .header("Authorization", token("steve", "Wrong-Pa55word-91c2"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let password = demo
        .printed
        .iter()
        .find_map(|line| line.split(" password ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo prints steve's password")
        .to_owned();
    assert_eq!(demo.curl.matches(&base64_std(&format!("steve:{password}"))).count(), 1);
    let log = tokio::task::spawn_blocking(move || demo.stop()).await.unwrap();

    assert!(log.contains("sign"), "the log records sign-ins: {log}");
    for (what, secret) in [
        ("the password", password.as_str()),
        ("a wrong password", "Wrong-Pa55word-91c2"),
        ("the JWT", jwt),
        ("the JWT's signature", jwt.rsplit('.').next().unwrap()),
        ("the CSRF token", csrf),
        ("the session id", json["sessionId"].as_str().unwrap()),
        ("the API key credential", key_secret.as_str()),
        ("the API key secret", &tessera_key_secret(&key_secret)),
    ] {
        assert!(!log.contains(secret), "the server log holds {what}");
    }
}

/// The `tsk_` secret inside a `base64(steve:tsk_…)` credential.
fn tessera_key_secret(credential: &str) -> String {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, credential);
    let text = String::from_utf8(bytes.unwrap()).unwrap();
    let secret = text.split_once(':').unwrap().1.to_owned();
    assert!(secret.starts_with("tsk_"), "{secret}");
    secret
}

fn base64_std(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
}

both_databases!(sigterm_finishes_the_request_in_flight_then_exits_0);
async fn sigterm_finishes_the_request_in_flight_then_exits_0(db: TestDb) {
    let mut demo = start_demo(db.dir.path(), &db.url);
    let base = demo.curl.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let auth = demo.curl.split('\'').find(|part| part.starts_with("Authorization: ")).unwrap();
    let auth = auth.trim_start_matches("Authorization: ").to_owned();
    // A sign-in at the demo's real argon2id cost is in flight when SIGTERM comes.
    let in_flight = tokio::spawn(async move {
        client().post(base).header("Authorization", auth).body("{}").send().await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = demo.child.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let response = in_flight.await.unwrap().expect("the request in flight gets its answer");
    assert_eq!(response.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = demo.child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

both_databases!(check_names_a_column_an_existing_table_lacks);
async fn check_names_a_column_an_existing_table_lacks(db: TestDb) {
    let store = tessera::store::Store::connect(&db.url).await.unwrap();
    store.execute_ddl("CREATE TABLE employees (emp_id BIGINT PRIMARY KEY)").await.unwrap();
    store.close().await;
    let line = user_error(&check(db.dir.path(), &config_file(&db), &db.url).await).to_owned();
    assert!(
        line.contains("table employees lacks column name (attribute name of datasource Employees)"),
        "{line}"
    );
}
