//! `tessera audit verify` and `tessera audit list` (design §2, §4.6): walk
//! the data-change audit trail's hash chain, or print its entries.

use anyhow::{Context, Result, anyhow, bail};

use crate::config::Config;
use crate::store::Store;
use crate::store::audit::{self, Filter, GENESIS, PAGE, Tail};
use crate::store::exec::Work;

/// Checks every entry in id order; an error (exit 1) names the first one
/// that was altered, removed or inserted.
pub async fn verify(config: &Config) -> Result<()> {
    let store = Store::open(&config.database.0).await?;
    let mut expect = Tail { id: 0, hash: GENESIS.into() };
    loop {
        let filter = Filter { after: expect.id, limit: PAGE, ..Filter::default() };
        let page = read(&store, &filter).await?;
        for entry in &page {
            audit::check(&mut expect, entry).map_err(|broken| {
                anyhow!(
                    "the audit trail was tampered with: {broken} ({} entries before it are intact)",
                    expect.id
                )
            })?;
        }
        if (page.len() as u64) < PAGE {
            break;
        }
    }
    println!("ok: {} audit entries checked, the chain is intact", expect.id);
    Ok(())
}

/// Prints the entries that match, oldest first, one per line.
pub async fn list(
    config: &Config,
    datasource: Option<String>,
    user: Option<String>,
    since: Option<String>,
) -> Result<()> {
    let since = match since {
        None => None,
        Some(text) => Some(crate::catalog::values::datetime(&text).ok_or_else(|| {
            anyhow!("--since {text:?} is not a time: give ISO 8601, e.g. 2024-05-01T00:00:00Z")
        })?),
    };
    let store = Store::open(&config.database.0).await?;
    let mut filter = Filter { datasource, user, since, limit: PAGE, ..Filter::default() };
    println!(
        "{:<8} {:<27} {:<16} {:<12} {:<16} {:<7} KEY / OLD → NEW",
        "ID", "TIME", "USER", "ORG", "DATASOURCE", "OP"
    );
    loop {
        let page = read(&store, &filter).await?;
        for e in &page {
            let entry = &e.entry;
            println!(
                "{:<8} {:<27} {:<16} {:<12} {:<16} {:<7} {} {} → {}",
                e.id,
                entry.time,
                entry.user,
                entry.org,
                entry.datasource,
                entry.operation,
                entry.row_key,
                entry.old_values.as_deref().unwrap_or("-"),
                entry.new_values.as_deref().unwrap_or("-"),
            );
        }
        match page.last() {
            Some(last) if page.len() as u64 == PAGE => filter.after = last.id,
            _ => break,
        }
    }
    Ok(())
}

async fn read(store: &Store, filter: &Filter) -> Result<Vec<audit::Stored>> {
    let mut db = store.begin(Work::OneRead).await.context("reading the audit trail")?;
    match audit::page(&mut db, filter).await {
        Ok(page) => Ok(page),
        Err(e) => bail!("reading the audit trail: {e}"),
    }
}
