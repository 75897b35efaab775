//! `tessera check`: the config file, the catalog and the database agree, and
//! the connection budget of instances against the PostgreSQL server's
//! `max_connections` (design §4.3).

use anyhow::Result;

use crate::config::Config;
use crate::store::ConnectionLimits;

/// Instances the budget is shown for besides the most that fit.
const EXAMPLE_INSTANCES: i64 = 10;

/// Runs the check and prints what it found.
pub async fn check(config: &Config) -> Result<()> {
    let store = crate::check(config).await?;
    let limits = store.connection_limits().await?;
    for line in budget(config, limits) {
        println!("{line}");
    }
    println!("ok: the config file and the database agree");
    Ok(())
}

/// The connection budget as lines to print.
fn budget(config: &Config, limits: Option<ConnectionLimits>) -> Vec<String> {
    let pool = i64::from(config.database_pool_size);
    let Some(limits) = limits else {
        return vec![
            "connections: SQLite is a file, with no server connections to budget (database_pool_size applies to PostgreSQL)".into(),
        ];
    };
    let per_instance = pool + 1;
    let usable = (limits.max - limits.reserved).max(0);
    // Room for psql, migrations, backups and other clients: a fifth, at least 5.
    let room = (usable / 5).max(5);
    let fit = ((usable - room) / per_instance).max(0);
    let example = EXAMPLE_INSTANCES * per_instance;
    let mut lines = vec![
        format!(
            "connections: {per_instance} per instance (database_pool_size {pool} + 1 change listener)"
        ),
        format!(
            "PostgreSQL: max_connections {}, {} reserved for superusers: {usable} for clients, {} open now",
            limits.max, limits.reserved, limits.in_use
        ),
        format!(
            "instances that fit: {fit} ({} connections), keeping {room} for operators (psql, migrations, backups)",
            fit * per_instance
        ),
        format!(
            "{EXAMPLE_INSTANCES} instances: {example} connections, {} of {usable} left{}",
            usable - example,
            if usable - example < room {
                " (too few: lower database_pool_size or raise max_connections)"
            } else {
                ""
            }
        ),
    ];
    if config.database_listen_url.is_some() {
        lines.push(
            "database_listen_url is set: the pool's connections go through `database` (e.g. PgBouncer, budget them there); each instance's listener takes one connection at database_listen_url".into(),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pool: u32) -> Config {
        Config { database_pool_size: pool, ..Config::default() }
    }

    #[test]
    fn a_stock_postgresql_fits_fifteen_default_instances_on_two_cores() {
        let limits = ConnectionLimits { max: 100, reserved: 3, in_use: 7 };
        let lines = budget(&config(4), Some(limits));
        assert_eq!(
            lines[0],
            "connections: 5 per instance (database_pool_size 4 + 1 change listener)"
        );
        assert!(lines[1].contains("97 for clients, 7 open now"), "{}", lines[1]);
        assert!(
            lines[2].starts_with("instances that fit: 15 (75 connections), keeping 19"),
            "{}",
            lines[2]
        );
        assert_eq!(lines[3], "10 instances: 50 connections, 47 of 97 left");
    }

    #[test]
    fn a_pool_too_large_for_ten_says_so() {
        let limits = ConnectionLimits { max: 100, reserved: 3, in_use: 0 };
        let lines = budget(&config(16), Some(limits));
        assert!(lines[2].starts_with("instances that fit: 4 "), "{}", lines[2]);
        assert!(lines[3].contains("-73 of 97 left (too few"), "{}", lines[3]);
        let tiny = ConnectionLimits { max: 5, reserved: 3, in_use: 0 };
        assert!(budget(&config(4), Some(tiny))[2].starts_with("instances that fit: 0 "));
    }

    #[test]
    fn sqlite_has_no_budget() {
        assert!(budget(&config(4), None)[0].contains("SQLite"));
    }
}
