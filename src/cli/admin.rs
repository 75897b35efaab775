//! The administration commands (design §2): users, sessions and signing
//! keys, straight against the database.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, anyhow, bail};

use super::{PasswordSource, SessionCommand, UserCommand};
use crate::auth::password::Hasher;
use crate::auth::secrets::{self, Secrets};
use crate::auth::tokens::new_key;
use crate::clock::{Clock, iso8601};
use crate::config::Config;
use crate::store::{AuditEvent, NewUser, Store};

/// `tessera keys rotate`.
pub async fn rotate_keys(config: &Config) -> Result<()> {
    let store = Store::open(&config.database.0).await?;
    let secrets = Secrets::load(&config.secrets)?;
    crate::auth::tokens::check_sealed(&store, &secrets).await?;
    let key = new_key(Clock::system().now(), &secrets)?;
    store.add_key(&key).await?;
    println!("new signing key {}; running servers sign with it within a few seconds", key.kid);
    Ok(())
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

pub(super) fn check_roles(config: &Config, roles: &[String]) -> Result<()> {
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

pub(super) async fn audit(store: &Store, event: &str, user: &str, detail: &str) -> Result<()> {
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

pub(super) fn no_such_user(name: &str) -> anyhow::Error {
    anyhow!("user {name} does not exist")
}

pub async fn user(config: Config, command: UserCommand) -> Result<()> {
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

/// The stored digest and user of the session `id`: a session id as sign-in
/// returned it (a UUID), or a handle as `session list` shows it.
async fn find_session(store: &Store, config: &Config, id: &str) -> Result<(String, String)> {
    let missing = || anyhow!("session {id} does not exist");
    if uuid::Uuid::try_parse(id).is_ok() {
        let digest = Secrets::load(&config.secrets)?.session_digest(id);
        let row = store.session(&digest).await?.ok_or_else(missing)?;
        return Ok((row.id, row.user_name));
    }
    if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{id:?} is neither a session id nor a handle: give the sessionId from sign-in, \
             or the SESSION column of `tessera session list`"
        );
    }
    let mut found = store.sessions_by_handle(&id.to_ascii_lowercase()).await?;
    match (found.pop(), found.pop()) {
        (Some(row), None) => Ok((row.id, row.user_name)),
        (Some(_), Some(_)) => bail!("handle {id} names more than one session: give more of it"),
        (None, _) => Err(missing()),
    }
}

pub async fn session(config: Config, command: SessionCommand) -> Result<()> {
    let now = Clock::system().now();
    let store = Store::open(&config.database.0).await?;
    match command {
        SessionCommand::List { user } => {
            println!("{:<12} {:<20} {:<27} LAST USED", "SESSION", "USER", "CREATED");
            for s in store.open_sessions(user.as_deref()).await? {
                println!(
                    "{:<12} {:<20} {:<27} {}",
                    secrets::handle(&s.id),
                    s.user_name,
                    iso8601(s.created_at),
                    iso8601(s.last_used_at)
                );
            }
        }
        SessionCommand::Revoke { session_id: Some(id), .. } => {
            let (digest, user) = find_session(&store, &config, &id).await?;
            let handle = secrets::handle(&digest);
            if !store.end_session(&digest, "revoked", now).await? {
                bail!("session {id} has already ended");
            }
            audit(&store, "session revoked", &user, handle).await?;
            println!("session {handle} revoked");
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
