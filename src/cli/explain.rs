//! `tessera explain USER DATASOURCE OPERATION` (design §2, §4.5): whether
//! the call would be allowed, which roles grant it, the row filter that
//! would apply (session values shown as `$user`, `$org`, `$session`) and the
//! attributes the user would see. It asks the same `authorize` as every
//! request, so it cannot tell a different story.

use anyhow::{Result, bail};

use crate::app::load_catalog;
use crate::auth::Principal;
use crate::config::{Config, Operation};
use crate::store::Store;

/// Prints the explanation; an error (exit 1) when the call is not allowed.
pub async fn explain(config: &Config, user: &str, datasource: &str, operation: &str) -> Result<()> {
    let op: Operation = operation.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let catalog = load_catalog(config)?;
    let store = Store::open(&config.database.0).await?;
    let Some(row) = store.user_by_name(user).await? else { bail!("user {user} does not exist") };
    let roles = store.user_roles(row.id).await?;
    let principal = Principal {
        session_id: "$session".into(),
        user_id: row.id,
        user_name: user.to_owned(),
        org_uid: row.org_uid.clone(),
        roles: roles.clone(),
    };
    println!("user: {user} (org {}, roles: {})", row.org_uid, list(&roles));
    if row.disabled {
        println!("denied: the user is disabled and cannot sign in");
        bail!("{user} may not {op} {datasource}");
    }
    let grant = match catalog.authorize(&principal, datasource, &[op]) {
        Ok(grant) => grant,
        Err(e) => {
            println!("denied: {}", e.message());
            bail!("{user} may not {op} {datasource}");
        }
    };
    let Some(rule) = grant.rule(op) else { bail!("no rule for {op}") };
    println!("allowed: {user} may {op} {datasource}");
    println!("granted by: {}", list(&rule.roles));
    let mut rows = Vec::new();
    if let (Some(org), Some(i)) = (&grant.org, grant.ds.org) {
        rows.push(format!("{} is $org ({org})", grant.ds.attributes[i].code));
    }
    match &rule.filters {
        None => {}
        Some(filters) => {
            let each: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
            rows.push(format!("any of: {}", each.join(" | ")));
        }
    }
    if rows.is_empty() {
        println!("rows: every row");
    } else {
        println!("rows: {}", rows.join(", and "));
    }
    let seen: Vec<String> = (0..grant.ds.attributes.len())
        .filter(|&i| grant.sees(op, i))
        .map(|i| grant.ds.attributes[i].code.clone())
        .collect();
    println!("attributes: {}", seen.join(", "));
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}
