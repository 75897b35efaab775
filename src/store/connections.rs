//! Connections to PostgreSQL: how they are named, and the server's limits
//! that `tessera check` budgets them against (design §4.3).

use std::str::FromStr;

use anyhow::{Context, Result};
use sqlx::postgres::PgConnectOptions;

use super::Store;

/// A PostgreSQL server's connection limits, for `tessera check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `max_connections`.
    pub max: i64,
    /// Kept for superusers (`superuser_reserved_connections`, plus
    /// `reserved_connections` where the server has it).
    pub reserved: i64,
    /// Client connections open now, all databases.
    pub in_use: i64,
}

/// The connect options of a PostgreSQL URL, named `application_name` in
/// `pg_stat_activity` unless the URL names itself.
pub(super) fn postgres_options(url: &str, application_name: &str) -> Result<PgConnectOptions> {
    let shown = crate::config::redact_url(url);
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("invalid PostgreSQL URL {shown:?}"))?;
    Ok(match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(application_name),
    })
}

impl Store {
    /// The server's connection limits (PostgreSQL; `None` on SQLite).
    pub async fn connection_limits(&self) -> Result<Option<ConnectionLimits>> {
        let Self::Postgres(pool) = self else { return Ok(None) };
        let (max, reserved, in_use): (i64, i64, i64) = sqlx::query_as(
            "SELECT current_setting('max_connections')::BIGINT, \
             current_setting('superuser_reserved_connections')::BIGINT \
             + COALESCE(current_setting('reserved_connections', TRUE)::BIGINT, 0), \
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
        )
        .fetch_one(pool)
        .await
        .context("reading max_connections")?;
        Ok(Some(ConnectionLimits { max, reserved, in_use }))
    }
}
