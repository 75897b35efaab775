//! The harness: a fresh database per test (SQLite or PostgreSQL), the real
//! server started in-process through `tessera::start` / `tessera::serve` on
//! `127.0.0.1:0`, and typed helpers to talk to it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use indexmap::IndexMap;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tempfile::TempDir;
use tessera::app::AppState;
use tessera::auth::signin::SignedIn;
use tessera::clock::Clock;
use tessera::config::{Config, DatabaseUrl, PasswordConfig};
use tessera::error::ErrorBody;
use tessera::store::{NewUser, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The environment variable that turns the PostgreSQL variants on.
pub const POSTGRES_ENV: &str = "TESSERA_TEST_POSTGRES_URL";

/// Why a PostgreSQL variant cannot run without its URL.
pub const POSTGRES_SKIP: &str = "set TESSERA_TEST_POSTGRES_URL to run the PostgreSQL variant";

/// The seed's 403 body, byte for byte.
pub const SEED_403: &str = r#"{"code":403,"status":"ERROR","title":"Access Denied","message":"Access Denied - Invalid username and/or password!"}"#;

/// The seed's 200 fields, in the seed's order.
pub const SEED_FIELDS: [&str; 8] =
    ["orgUid", "sessionId", "userName", "displayName", "emailAddress", "csrf", "jwt", "status"];

/// Raw request headers: `(name, value)` pairs.
pub type Headers<'a> = &'a [(&'a str, &'a str)];

/// Which database a test runs on: the library's own.
pub use tessera::store::Backend;

/// Generates `mod NAME { sqlite, postgres }` tests that run `async fn
/// NAME(app: TestApp)` on a server with each backend. `config = F` runs
/// `fn F(&mut Config)` on the cheap test config first.
macro_rules! both_backends {
    ($name:ident) => {
        both_backends!(@tests $name, $crate::helpers::no_changes);
    };
    ($name:ident, config = $configure:ident) => {
        both_backends!(@tests $name, super::$configure);
    };
    (@tests $name:ident, $configure:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                let backend = $crate::helpers::Backend::Sqlite;
                $crate::helpers::run(backend, $configure, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                let backend = $crate::helpers::Backend::Postgres;
                $crate::helpers::run(backend, $configure, super::$name).await;
            }
        }
    };
}

/// Generates `mod NAME { sqlite, postgres }` tests that run `async fn
/// NAME(db: TestDb)` on a fresh, empty database of each backend (for tests
/// that start the server themselves).
macro_rules! both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                if let Some(db) =
                    $crate::helpers::TestDb::new($crate::helpers::Backend::Sqlite).await
                {
                    super::$name(db).await;
                }
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if let Some(db) =
                    $crate::helpers::TestDb::new($crate::helpers::Backend::Postgres).await
                {
                    super::$name(db).await;
                }
            }
        }
    };
}

/// Puts the datasources and roles of the catalog `text` into `config`.
pub fn use_catalog(config: &mut Config, text: &str) {
    let parsed = Config::parse(text).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

/// The default for `both_backends!`: the cheap test config as it is.
pub fn no_changes(_: &mut Config) {}

/// Runs one test body against a fresh server, or prints the skip line for
/// a PostgreSQL variant without a server to run on.
pub async fn run<F, Fut>(backend: Backend, configure: fn(&mut Config), test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await else { return };
    let mut config = test_config();
    configure(&mut config);
    let app = TestApp::spawn(db, config).await;
    test(app).await;
}

/// The config every test starts from: defaults, with cheap argon2 parameters.
pub fn test_config() -> Config {
    Config { password: cheap_password(), ..Config::default() }
}

/// Argon2id parameters that make a hash take about a millisecond.
pub fn cheap_password() -> PasswordConfig {
    PasswordConfig { memory_kib: 256, iterations: 1, parallelism: 1 }
}

// ---- databases -------------------------------------------------------------

/// A fresh database and a scratch directory, both gone when dropped.
pub struct TestDb {
    pub backend: Backend,
    /// The URL the server (and the CLI) connect to.
    pub url: String,
    /// Scratch space: the SQLite file, config files, scripts.
    pub dir: TempDir,
    /// For PostgreSQL: the server's admin URL and the database to drop.
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` (after printing the skip line) for
    /// PostgreSQL when `TESSERA_TEST_POSTGRES_URL` is not set.
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                Some(Self { backend, url, dir, postgres: None })
            }
            Backend::Postgres => {
                let Ok(admin) = std::env::var(POSTGRES_ENV) else {
                    tessera::testing::skip(POSTGRES_SKIP);
                    return None;
                };
                let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let url = with_database(&admin, &name);
                Some(Self { backend, url, dir, postgres: Some((admin, name)) })
            }
        }
    }

    /// The secret key file of this test's servers and CLI runs: in the
    /// scratch directory, where `tessera` run there finds it by default.
    pub fn key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("tessera.key")
    }

    /// For SQLite: whether the database files on disk (main file and WAL)
    /// hold `needle` anywhere, in any page.
    pub fn sqlite_files_contain(&self, needle: &[u8]) -> bool {
        ["t.db", "t.db-wal", "t.db-shm"].iter().any(|file| {
            std::fs::read(self.dir.path().join(file))
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else { return };
        // Drop needs its own runtime: the test's may be shutting down.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let host = rest.split_once('/').map_or(rest, |(host, _)| host);
    format!("{scheme}://{host}/{name}{query}")
}

// ---- the server ------------------------------------------------------------

/// A test's server over its own fresh database. It derefs to [`Server`],
/// which has the request helpers.
pub struct TestApp {
    pub server: Server,
    /// Declared last: dropped after the server was told to stop.
    pub db: TestDb,
}

impl std::ops::Deref for TestApp {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// One running server process (in-process) and what a test needs to drive
/// and inspect it.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    /// The server's clock: `advance` moves time for the server too.
    pub clock: Clock,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A reqwest client that never goes through a proxy from the environment.
pub fn client() -> reqwest::Client {
    client_from(None)
}

/// A client whose connections come from `local` (e.g. `127.0.0.2`), so the
/// server sees another client address.
pub fn client_from(local: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(local)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

impl TestApp {
    /// Starts the real server on `127.0.0.1:0` over `db` with `config`.
    pub async fn spawn(db: TestDb, mut config: Config) -> Self {
        config.database = DatabaseUrl(db.url.clone());
        config.secrets.key_file = db.key_file();
        let server = Server::start(config, Clock::system()).await;
        Self { server, db }
    }

    /// Starts another server on the same database and config, sharing this
    /// one's clock: a second instance, as in design §4.3.
    pub async fn another_instance(&self) -> Server {
        Server::start(self.state.config.clone(), self.clock.clone()).await
    }
}

impl Server {
    /// Starts a server with `config` (its database included) and `clock`.
    pub async fn start(config: Config, clock: Clock) -> Self {
        let state = tessera::start(config, clock.clone()).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(tessera::serve(state.clone(), listener, async move {
            let _ = stop.await;
        }));
        Self {
            base: format!("http://{addr}"),
            addr,
            state,
            clock,
            client: client(),
            shutdown: Some(shutdown),
        }
    }

    /// Ends a session straight in the database, as another process (the
    /// CLI, another instance) would; whether a live one was ended.
    pub async fn end_session_elsewhere(&self, session_id: &str) -> bool {
        let digest = self.state.secrets.session_digest(session_id);
        self.store().end_session(&digest, "revoked", self.clock.now()).await.unwrap()
    }

    /// The short handle `tessera session list` shows for a session.
    pub fn session_handle(&self, session_id: &str) -> String {
        let digest = self.state.secrets.session_digest(session_id);
        tessera::auth::secrets::handle(&digest).to_owned()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a user directly in the store, hashed with the server's hasher.
    pub async fn add_user(&self, name: &str, org: &str, password: &str, roles: &[&str]) {
        let hash = self.state.hasher.hash_blocking(password).unwrap();
        self.add_user_with_hash(name, org, &hash, roles).await;
    }

    /// Creates a user with a given password hash.
    pub async fn add_user_with_hash(&self, name: &str, org: &str, hash: &str, roles: &[&str]) {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let display_name = format!("{name} display");
        let email = format!("{name}@{org}.example");
        let user = NewUser {
            name,
            org_uid: org,
            display_name: &display_name,
            email: &email,
            password_hash: hash,
            roles: &roles,
        };
        self.store().add_user(&user, self.clock.now()).await.unwrap();
    }

    /// A request with raw headers and body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let mut request = self.client.request(method, self.url(path)).headers(map);
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        request.send().await.unwrap()
    }

    /// `POST path` with raw headers and body.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
        self.request(Method::POST, path, headers, body).await
    }

    /// `GET path` with raw headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request(Method::GET, path, headers, None).await
    }

    /// `POST /v1/auth` as the seed's sample does it.
    pub async fn sign_in(&self, user: &str, password: &str) -> Response {
        let token = token(user, password);
        self.post(
            "/v1/auth",
            &[("Authorization", &token), ("Content-Type", "application/json")],
            Some("{}"),
        )
        .await
    }

    /// Signs in and asserts a 200.
    pub async fn sign_in_ok(&self, user: &str, password: &str) -> SignedIn {
        let response = self.sign_in(user, password).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "sign-in of {user} failed: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// `GET /v1/status` with `Authorization: Bearer` and `?csrf=`.
    pub async fn status(&self, jwt: &str, csrf: &str) -> Response {
        let path = format!("/v1/status?csrf={csrf}");
        self.get(&path, &[("Authorization", &format!("Bearer {jwt}"))]).await
    }

    /// `POST /v1/signout` with `Authorization: Bearer` and `X-CSRF-Token`.
    pub async fn sign_out(&self, jwt: &str, csrf: &str) -> Response {
        let bearer = format!("Bearer {jwt}");
        self.post("/v1/signout", &[("Authorization", &bearer), ("X-CSRF-Token", csrf)], None).await
    }

    /// Calls `GET /v1/status` until it is refused, for at most one second,
    /// and returns the refusal. Panics if the session still works after 1 s.
    pub async fn refused_within_a_second(&self, jwt: &str, csrf: &str) -> Response {
        let start = Instant::now();
        loop {
            let response = self.status(jwt, csrf).await;
            if response.status() != StatusCode::OK {
                return response;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "the session still works {:?} after it was ended",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /.well-known/jwks.json`, asserting a 200.
    pub async fn jwks(&self) -> Value {
        let response = self.get("/.well-known/jwks.json", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Every value of every column of every table, as bytes, with its
    /// `table.column`: what "anywhere in the database" means.
    pub async fn every_cell(&self) -> Vec<(String, Vec<u8>)> {
        let mut cells = Vec::new();
        match self.store() {
            Store::Sqlite(pool, _) => {
                let columns: Vec<(String, String)> = sqlx::query_as(
                    "SELECT m.name, p.name FROM sqlite_master m \
                     JOIN pragma_table_info(m.name) p WHERE m.type = 'table'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for (table, column) in columns {
                    let sql = format!("SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\"");
                    let rows: Vec<(Option<Vec<u8>>,)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap();
                    for (value,) in rows {
                        cells.push((format!("{table}.{column}"), value.unwrap_or_default()));
                    }
                }
            }
            Store::Postgres(pool) => {
                let columns: Vec<(String, String)> = sqlx::query_as(
                    "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
                     WHERE table_schema = 'public'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for (table, column) in columns {
                    let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"");
                    let rows: Vec<(Option<String>,)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap();
                    for (value,) in rows {
                        cells.push((format!("{table}.{column}"), value.unwrap_or_default().into()));
                    }
                }
            }
        }
        cells
    }
}

// ---- wire helpers ------------------------------------------------------------

/// The seed's credential header value: `Token base64(user:password)`.
pub use tessera::auth::credentials::token_header as token;

/// Runs one statement on the database behind the server's back.
pub async fn tamper(store: &Store, sql: &'static str) {
    match store {
        Store::Sqlite(pool, _) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .unwrap();
}

/// The number one `SELECT COUNT(*) …` statement returns.
pub async fn count(store: &Store, sql: &'static str) -> i64 {
    match store {
        Store::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap()
}

/// A JWT's header and claims, decoded without verifying anything.
pub fn jwt_parts(jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {jwt}");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    (decode(parts[0]), decode(parts[1]))
}

/// base64url without padding, as JWTs use it.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JSON object's keys in the order the body has them.
pub fn keys_in_order(text: &str) -> Vec<String> {
    let map: IndexMap<String, Value> =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON object ({e}): {text}"));
    map.into_keys().collect()
}

/// Asserts an error response: its status, the one error shape with exactly
/// its four keys in order, `code` equal to the status, and `title`.
pub async fn assert_error(response: Response, code: u16, title: &str) -> ErrorBody {
    let status = response.status().as_u16();
    let content_type = header(&response, "content-type");
    let text = response.text().await.unwrap();
    assert_eq!(status, code, "unexpected status; body: {text}");
    assert_eq!(content_type.as_deref(), Some("application/json"), "body: {text}");
    assert_eq!(keys_in_order(&text), ["code", "status", "title", "message"], "body: {text}");
    let body: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(body.code, code);
    assert_eq!(body.status, "ERROR");
    assert_eq!(body.title, title, "body: {text}");
    assert!(!body.message.is_empty());
    body
}

/// Asserts a 401 with `WWW-Authenticate: Bearer` in the error shape.
pub async fn assert_unauthorized(response: Response) -> ErrorBody {
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer"),
        "a 401 must carry WWW-Authenticate: Bearer (status {})",
        response.status()
    );
    assert_error(response, 401, "Unauthorized").await
}

/// Asserts the seed's 403 body, byte for byte.
pub async fn assert_seed_403(response: Response) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(std::str::from_utf8(&bytes).unwrap(), SEED_403);
}

/// A header's value as text.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// Whether `haystack` holds `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- the built binary -------------------------------------------------------

/// The `tessera` binary that cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A `tessera` command with a clean environment: run in `dir`, no proxy,
/// no database URL or log filter from the caller's environment.
pub fn tessera_command(dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .current_dir(dir)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_SECRET_KEY")
        .env_remove("RUST_LOG")
        .env("NO_PROXY", "*")
        .env("no_proxy", "*");
    command
}

/// What a finished command said.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tessera ARGS` in `dir` with `stdin` piped in, off the async workers.
pub async fn run_tessera(dir: &Path, args: &[&str], stdin: &str) -> Ran {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = tessera_command(dir);
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        // A command that exits early may not read its input: ignore EPIPE.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let output = child.wait_with_output().unwrap();
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}
