//! The command line (design §2). Errors go to standard error as one plain
//! sentence; the exit status is 0 on success, 1 on a user error and 2 on bad
//! usage (clap's own code for usage errors).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::auth::credentials::token_header;
use crate::auth::password::Hasher;
use crate::auth::tokens::new_key;
use crate::clock::{Clock, iso8601};
use crate::config::{Config, DatabaseUrl};
use crate::store::{AuditEvent, NewUser, Store};

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "A server that speaks the CloudIO REST API")]
struct Cli {
    /// The config file (default: tessera.toml in the working directory, if present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The database URL (sqlite://FILE or postgres://...); overrides the config file.
    #[arg(long, global = true, value_name = "URL", env = "TESSERA_DATABASE_URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// The address to listen on (overrides `listen` in the config file).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Create a demo account and datasource and print a ready curl line.
        #[arg(long)]
        demo: bool,
    },
    /// Manage service accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// List or revoke sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Manage the JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check that the config file, the catalog and the database agree.
    Check,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a service account.
    Add {
        name: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// A role from the config file's [roles]; may be repeated.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set a new password; ends the user's sessions.
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Disable a user; ends the user's sessions.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Add or remove roles.
    Roles {
        name: String,
        #[arg(long = "add", value_name = "ROLE")]
        add: Vec<String>,
        #[arg(long = "remove", value_name = "ROLE")]
        remove: Vec<String>,
    },
    /// List users.
    List,
}

#[derive(Debug, Args)]
struct PasswordSource {
    /// Read the password from one line of standard input instead of a prompt.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum SessionCommand {
    /// List open sessions.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// End one session, or every session of a user.
    Revoke {
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        session_id: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key; running servers sign with it within seconds.
    Rotate,
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let level = if matches!(cli.command, Command::Serve { .. }) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("tessera: {}", sentence(error));
    ExitCode::from(1)
}

/// The error and its causes as one line.
fn sentence(error: &anyhow::Error) -> String {
    let mut text = format!("{error:#}");
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

fn load_config(cli: &Cli) -> Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path).map_err(|e| anyhow!(e))?,
        None => {
            let default = PathBuf::from("tessera.toml");
            if default.exists() {
                Config::load(&default).map_err(|e| anyhow!(e))?
            } else {
                Config::default()
            }
        }
    };
    if let Some(url) = &cli.database {
        config.database = DatabaseUrl(url.clone());
    }
    Ok(config)
}

async fn run(cli: Cli) -> Result<()> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Serve { listen, demo } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            serve(config, demo, cli.database.is_some()).await
        }
        Command::User(command) => user(config, command).await,
        Command::Session(command) => session(config, command).await,
        Command::Keys(KeysCommand::Rotate) => {
            let store = Store::open(&config.database.0).await?;
            let key = new_key(Clock::system().now())?;
            store.add_key(&key).await?;
            println!(
                "new signing key {}; running servers sign with it within a few seconds",
                key.kid
            );
            Ok(())
        }
        Command::Check => {
            crate::check(&config).await?;
            println!("ok: the config file and the database agree");
            Ok(())
        }
    }
}

/// The demo's datasource and role, added to whatever the config file holds.
const DEMO_CATALOG: &str = r#"
[datasources.Employees]
table = "employees"
[datasources.Employees.attributes]
empId    = { type = "Integer", primary_key = true, generated = true }
name     = { type = "String", required = true }
email    = { type = "Email", column = "email_address", updatable = false }
salary   = { type = "Decimal" }
active   = { type = "YN", default = "Y" }
hireDate = { type = "Date" }

[roles.employees_editor]
Employees = ["query", "insert", "update", "delete"]
"#;

/// The demo's role, granted to `steve`.
const DEMO_ROLE: &str = "employees_editor";

fn add_demo_catalog(config: &mut Config) -> Result<()> {
    let demo = Config::parse(DEMO_CATALOG).map_err(|e| anyhow!(e))?;
    for (name, ds) in demo.datasources {
        config.datasources.entry(name).or_insert(ds);
    }
    for (name, role) in demo.roles {
        config.roles.entry(name).or_insert(role);
    }
    Ok(())
}

async fn serve(mut config: Config, demo: bool, database_given: bool) -> Result<()> {
    if demo {
        if !database_given {
            config.database = DatabaseUrl("sqlite://tessera-demo.db".into());
        }
        add_demo_catalog(&mut config)?;
    }
    let clock = Clock::system();
    let state = crate::start(config.clone(), clock.clone()).await?;
    let listener = match TcpListener::bind(&config.listen).await {
        Ok(listener) => listener,
        // The demo must start anywhere: fall back to a free port.
        Err(_) if demo => TcpListener::bind("127.0.0.1:0").await?,
        Err(e) => bail!("cannot listen on {}: {e}", config.listen),
    };
    let addr = listener.local_addr()?;
    println!("tessera listening on http://{addr}");
    if demo {
        let password = random_password()?;
        demo_account(&state.auth.store, &state.auth.hasher, &password, clock.now()).await?;
        demo_rows(&state, clock.now()).await?;
        println!("demo service account: org cloudio, user steve, password {password} (shown once)");
        println!("sign in with:");
        println!(
            "curl -s -X POST http://{addr}/v1/auth -H 'Authorization: {}' -H 'Content-Type: application/json' -d '{{}}'",
            token_header("steve", &password)
        );
    }
    let _ = std::io::stdout().flush();
    crate::serve(state, listener, shutdown_signal()).await
}

/// Creates the seed's own account, or gives it a new password if it exists.
async fn demo_account(store: &Store, hasher: &Hasher, password: &str, now: i64) -> Result<()> {
    let hash = hasher.hash_blocking(password)?;
    if store.user_by_name("steve").await?.is_some() {
        store.change_password("steve", &hash, now).await?;
        store.change_roles("steve", &[DEMO_ROLE.into()], &[]).await?;
        return Ok(());
    }
    let user = NewUser {
        name: "steve",
        org_uid: "cloudio",
        display_name: "Steve",
        email: "name@cloudio.io",
        password_hash: &hash,
        roles: &[DEMO_ROLE.into()],
    };
    store.add_user(&user, now).await
}

/// The demo's employees, inserted when the table is empty.
const DEMO_ROWS: &str = r#"{"e":{"ds":"Employees","data":[
  {"_rs":"I","name":"Ada Lovelace","email":"ada@cloudio.io","salary":9200.50,"active":"Y","hireDate":"2021-03-01"},
  {"_rs":"I","name":"Grace Hopper","email":"grace@cloudio.io","salary":8700,"active":"Y","hireDate":"2019-11-15"},
  {"_rs":"I","name":"Alan Turing","email":"alan@cloudio.io","salary":8100.25,"active":"N","hireDate":"2020-06-23"},
  {"_rs":"I","name":"Edsger Dijkstra","email":"edsger@cloudio.io","salary":7800,"active":"Y","hireDate":"2022-05-11"},
  {"_rs":"I","name":"Barbara Liskov","email":"barbara@cloudio.io","salary":9900,"active":"Y","hireDate":"2018-11-07"}
]}}"#;

/// Seeds the demo's `Employees` through the same path as `POST /v1/api`,
/// when the table is empty.
async fn demo_rows(state: &crate::http::AppState, now: i64) -> Result<()> {
    let stamp = crate::query::Stamp { user: "steve".into(), now: iso8601(now) };
    let probe = demo_api(state, r#"{"e":{"ds":"Employees","query":{"limit":1}}}"#, &stamp).await?;
    if probe["data"]["e"]["rowsFetched"] == 0 {
        demo_api(state, DEMO_ROWS, &stamp).await?;
    }
    Ok(())
}

async fn demo_api(
    state: &crate::http::AppState,
    body: &str,
    stamp: &crate::query::Stamp,
) -> Result<serde_json::Value> {
    let plan = crate::query::parse_and_plan(body.as_bytes(), &state.catalog, 1000)
        .map_err(|e| anyhow!("demo data: {}", e.message()))?;
    let out = crate::query::execute(&state.auth.store, &plan, stamp)
        .await
        .map_err(|e| anyhow!("demo data: {}", e.message()))?;
    serde_json::from_slice(&out).context("demo data: unreadable answer")
}

fn random_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn read_password(source: &PasswordSource) -> Result<String> {
    let password = if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the password: pass --password-stdin and pipe it in");
        }
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    };
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(password)
}

fn check_roles(config: &Config, roles: &[String]) -> Result<()> {
    for role in roles {
        if !config.roles.contains_key(role) {
            let known: Vec<&str> = config.roles.keys().map(String::as_str).collect();
            bail!(
                "role {role} is not defined in the config file's [roles] (defined: {})",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            );
        }
    }
    Ok(())
}

async fn audit(store: &Store, event: &str, user: &str, detail: &str) -> Result<()> {
    store
        .audit(&AuditEvent {
            at: Clock::system().now(),
            event,
            user_name: Some(user),
            client: Some("cli"),
            detail,
        })
        .await
}

fn no_such_user(name: &str) -> anyhow::Error {
    anyhow!("user {name} does not exist")
}

async fn user(config: Config, command: UserCommand) -> Result<()> {
    let now = Clock::system().now();
    let store = Store::open(&config.database.0).await?;
    match command {
        UserCommand::Add { name, org, display_name, email, roles, password } => {
            check_roles(&config, &roles)?;
            if name.is_empty() || name.contains(':') {
                bail!("a user name must be non-empty and must not contain ':'");
            }
            if store.user_by_name(&name).await?.is_some() {
                bail!("user {name} already exists");
            }
            let password = read_password(&password)?;
            let hash = Hasher::new(&config.password)?.hash_blocking(&password)?;
            let user = NewUser {
                name: &name,
                org_uid: &org,
                display_name: display_name.as_deref().unwrap_or(&name),
                email: email.as_deref().unwrap_or(""),
                password_hash: &hash,
                roles: &roles,
            };
            store.add_user(&user, now).await?;
            audit(&store, "user added", &name, &format!("org {org}")).await?;
            println!("user {name} added to org {org}");
        }
        UserCommand::Passwd { name, password } => {
            if store.user_by_name(&name).await?.is_none() {
                return Err(no_such_user(&name));
            }
            let password = read_password(&password)?;
            let hash = Hasher::new(&config.password)?.hash_blocking(&password)?;
            let ended = store
                .change_password(&name, &hash, now)
                .await?
                .ok_or_else(|| no_such_user(&name))?;
            audit(&store, "password changed", &name, &format!("{ended} sessions ended")).await?;
            println!("password of {name} changed; {ended} sessions ended");
        }
        UserCommand::Disable { name } => {
            let ended =
                store.set_disabled(&name, true, now).await?.ok_or_else(|| no_such_user(&name))?;
            audit(&store, "user disabled", &name, &format!("{ended} sessions ended")).await?;
            println!("user {name} disabled; {ended} sessions ended");
        }
        UserCommand::Enable { name } => {
            store.set_disabled(&name, false, now).await?.ok_or_else(|| no_such_user(&name))?;
            audit(&store, "user enabled", &name, "").await?;
            println!("user {name} enabled");
        }
        UserCommand::Roles { name, add, remove } => {
            check_roles(&config, &add)?;
            let roles = store
                .change_roles(&name, &add, &remove)
                .await?
                .ok_or_else(|| no_such_user(&name))?;
            let detail = format!("added [{}] removed [{}]", add.join(", "), remove.join(", "));
            audit(&store, "roles changed", &name, &detail).await?;
            println!("roles of {name}: {}", roles.join(", "));
        }
        UserCommand::List => {
            println!(
                "{:<20} {:<12} {:<20} {:<24} {:<8} ROLES",
                "NAME", "ORG", "DISPLAY NAME", "EMAIL", "STATUS"
            );
            for user in store.list_users().await? {
                let roles = store.user_roles(user.id).await?;
                let status = if user.disabled { "disabled" } else { "active" };
                println!(
                    "{:<20} {:<12} {:<20} {:<24} {:<8} {}",
                    user.name,
                    user.org_uid,
                    user.display_name,
                    user.email,
                    status,
                    roles.join(",")
                );
            }
        }
    }
    Ok(())
}

async fn session(config: Config, command: SessionCommand) -> Result<()> {
    let now = Clock::system().now();
    let store = Store::open(&config.database.0).await?;
    match command {
        SessionCommand::List { user } => {
            println!("{:<36} {:<20} {:<27} LAST USED", "SESSION", "USER", "CREATED");
            for s in store.open_sessions(user.as_deref()).await? {
                println!(
                    "{:<36} {:<20} {:<27} {}",
                    s.id,
                    s.user_name,
                    iso8601(s.created_at),
                    iso8601(s.last_used_at)
                );
            }
        }
        SessionCommand::Revoke { session_id: Some(id), .. } => {
            let session =
                store.session(&id).await?.ok_or_else(|| anyhow!("session {id} does not exist"))?;
            if !store.end_session(&id, "revoked", now).await? {
                bail!("session {id} has already ended");
            }
            audit(&store, "session revoked", &session.user_name, &id).await?;
            println!("session {id} revoked");
        }
        SessionCommand::Revoke { session_id: None, user } => {
            let name = user.unwrap_or_default();
            let ended = store
                .end_user_sessions(&name, "revoked", now)
                .await?
                .ok_or_else(|| no_such_user(&name))?;
            audit(&store, "sessions revoked", &name, &format!("{ended} sessions")).await?;
            println!("{ended} sessions of {name} revoked");
        }
    }
    Ok(())
}
