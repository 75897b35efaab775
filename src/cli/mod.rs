//! The command line (design §2). Errors go to standard error as one plain
//! sentence; the exit status is 0 on success, 1 on a user error and 2 on bad
//! usage (clap's own code for usage errors).

mod admin;
mod audit;
mod check;
mod demo;
mod explain;
mod keys;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DatabaseUrl};

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
    /// Manage API keys: secrets machines sign in with instead of a password.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Say whether USER may do OPERATION on DATASOURCE, and why.
    Explain {
        user: String,
        datasource: String,
        /// query, insert, update or delete.
        operation: String,
    },
    /// Check or list the data-change audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check that the config file, the catalog and the database agree.
    Check,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chain: exit 0 with the count, or 1 naming the first
    /// entry that was altered, removed or inserted.
    Verify,
    /// Print entries, oldest first.
    List {
        #[arg(long, value_name = "DS")]
        datasource: Option<String>,
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Entries at or after this time (ISO 8601, or a date).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
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
enum KeyCommand {
    /// Make a key for USER and print its secret, once.
    Add {
        user: String,
        /// A label for the key, shown by `key list`.
        #[arg(long)]
        name: Option<String>,
        /// How long the key works, like 30d or 12h; forever if not given.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// A role of the user's the key carries; may be repeated (default: all the user's roles).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key and end every session it opened.
    Revoke { key_id: i64 },
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
            demo::serve(config, demo, cli.database.is_some()).await
        }
        Command::User(command) => admin::user(config, command).await,
        Command::Session(command) => admin::session(config, command).await,
        Command::Keys(KeysCommand::Rotate) => admin::rotate_keys(&config).await,
        Command::Key(command) => keys::key(config, command).await,
        Command::Explain { user, datasource, operation } => {
            explain::explain(&config, &user, &datasource, &operation).await
        }
        Command::Audit(AuditCommand::Verify) => audit::verify(&config).await,
        Command::Audit(AuditCommand::List { datasource, user, since }) => {
            audit::list(&config, datasource, user, since).await
        }
        Command::Check => check::check(&config).await,
    }
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
