//! `tessera key add | list | revoke` (design §2, §4.7): API keys, straight
//! against the database. The secret is printed once by `add` and never
//! again; only its HMAC under the secret key is stored.

use anyhow::{Result, anyhow, bail};

use super::KeyCommand;
use super::admin::{audit, check_roles, no_such_user};
use crate::auth::api_keys;
use crate::auth::secrets::Secrets;
use crate::clock::{Clock, Micros, iso8601, micros};
use crate::config::{Config, HumanDuration};
use crate::store::Store;
use crate::store::api_keys::NewApiKey;

/// What `key add` made: the key's id and its secret (shown once).
pub struct AddedKey {
    pub id: i64,
    pub secret: String,
}

/// Makes a key for `user` limited to `roles` (all the user's roles if
/// empty), expiring `expires` after `now` if given.
pub async fn add_key(
    store: &Store,
    secrets: &Secrets,
    user: &str,
    name: &str,
    roles: &[String],
    expires_at: Option<Micros>,
    now: Micros,
) -> Result<AddedKey> {
    let row = store.user_by_name(user).await?.ok_or_else(|| no_such_user(user))?;
    let held = store.user_roles(row.id).await?;
    let roles = if roles.is_empty() { held.clone() } else { roles.to_vec() };
    if let Some(role) = roles.iter().find(|role| !held.contains(role)) {
        bail!(
            "user {user} does not hold role {role}, so a key of theirs cannot have it (their roles: {})",
            if held.is_empty() { "none".into() } else { held.join(", ") }
        );
    }
    let secret = api_keys::generate()?;
    let digest = secrets.api_key_digest(&secret);
    let roles_json = serde_json::to_string(&roles)?;
    let key = NewApiKey { user_id: row.id, name, digest: &digest, roles: &roles_json, expires_at };
    let id = store.add_api_key(&key, now).await?;
    Ok(AddedKey { id, secret })
}

pub(super) async fn key(config: Config, command: KeyCommand) -> Result<()> {
    let now = Clock::system().now();
    let store = Store::open(&config.database.0).await?;
    match command {
        KeyCommand::Add { user, name, expires, roles } => {
            check_roles(&config, &roles)?;
            let expires_at = match expires {
                Some(text) => {
                    let after = HumanDuration::parse(&text).map_err(|e| anyhow!(e))?;
                    Some(now.saturating_add(micros(after.0)))
                }
                None => None,
            };
            let secrets = Secrets::load(&config.secrets)?;
            // A key peppered with another secret key would never work.
            crate::auth::tokens::check_sealed(&store, &secrets).await?;
            let name = name.unwrap_or_default();
            let added = add_key(&store, &secrets, &user, &name, &roles, expires_at, now).await?;
            audit(&store, "API key added", &user, &format!("key {}", added.id)).await?;
            eprintln!("API key {} added for {user}; its secret is shown once:", added.id);
            println!("{}", added.secret);
        }
        KeyCommand::List { user } => {
            println!(
                "{:<6} {:<20} {:<20} {:<24} {:<27} {:<27} {:<27} STATUS",
                "ID", "USER", "NAME", "ROLES", "CREATED", "LAST USED", "EXPIRES"
            );
            for key in store.list_api_keys(user.as_deref()).await? {
                let roles: Vec<String> = serde_json::from_str(&key.roles).unwrap_or_default();
                let when = |at: Option<Micros>| at.map_or_else(|| "-".into(), iso8601);
                let status = match (key.revoked_at, key.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= now => "expired",
                    _ => "active",
                };
                println!(
                    "{:<6} {:<20} {:<20} {:<24} {:<27} {:<27} {:<27} {status}",
                    key.id,
                    key.user_name,
                    if key.name.is_empty() { "-" } else { &key.name },
                    roles.join(","),
                    iso8601(key.created_at),
                    when(key.last_used_at),
                    when(key.expires_at),
                );
            }
        }
        KeyCommand::Revoke { key_id } => {
            let (user, ended) = store
                .revoke_api_key(key_id, now)
                .await?
                .ok_or_else(|| anyhow!("API key {key_id} does not exist or is already revoked"))?;
            audit(
                &store,
                "API key revoked",
                &user,
                &format!("key {key_id}; {ended} sessions ended"),
            )
            .await?;
            println!("API key {key_id} of {user} revoked; {ended} sessions ended");
        }
    }
    Ok(())
}
