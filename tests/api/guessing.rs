//! Sign-in under attack (design §1.1, §4.2, issue 11), through a trusted
//! proxy simulated with `X-Forwarded-For` from 127.0.0.1: locks per (user,
//! address), per user and per address; IPv6 per /64; no lock-out of the
//! real client; concurrent right passwords all pass; refusals cost no hash
//! and a bounded amount of database.

use std::time::Instant;

use reqwest::{Response, StatusCode};
use tessera::config::Config;
use tessera::store::Store;

use crate::helpers::*;

/// 127.0.0.1 is the proxy: its `X-Forwarded-For` is believed.
fn behind_a_proxy(config: &mut Config) {
    config.network.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// Behind the proxy, with a per-user limit small enough to reach.
fn behind_a_proxy_three_user_failures(config: &mut Config) {
    behind_a_proxy(config);
    config.throttle.user_failures = 3;
}

/// Behind the proxy, with a per-address limit small enough to reach.
fn behind_a_proxy_three_address_failures(config: &mut Config) {
    behind_a_proxy(config);
    config.throttle.ip_failures = 3;
}

/// No trusted proxy, a small per-address limit.
fn three_address_failures(config: &mut Config) {
    config.throttle.ip_failures = 3;
}

/// `POST /v1/auth` through the proxy for a client at `address`.
async fn sign_in_from(server: &Server, address: &str, user: &str, password: &str) -> Response {
    let token = token(user, password);
    server
        .post("/v1/auth", &[("Authorization", &token), ("X-Forwarded-For", address)], Some("{}"))
        .await
}

async fn assert_too_many(response: Response) {
    assert!(header(&response, "retry-after").is_some(), "a 429 carries Retry-After");
    assert_error(response, 429, "Too Many Requests").await;
}

const ATTACKER: &str = "203.0.113.66";
const STEVE_HOME: &str = "198.51.100.7";

both_backends!(an_address_guessing_steve_locks_only_itself_out_of_steve, config = behind_a_proxy);
async fn an_address_guessing_steve_locks_only_itself_out_of_steve(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.add_user("olga", "cloudio", "0lga", &[]).await;
    for _ in 0..5 {
        assert_seed_403(sign_in_from(&app, ATTACKER, "steve", "guess").await).await;
    }
    assert_too_many(sign_in_from(&app, ATTACKER, "steve", "s3cret").await).await;

    // steve from elsewhere signs in; the attacker may still try other names.
    assert_eq!(sign_in_from(&app, STEVE_HOME, "steve", "s3cret").await.status(), StatusCode::OK);
    assert_eq!(sign_in_from(&app, ATTACKER, "olga", "0lga").await.status(), StatusCode::OK);
    // A success elsewhere does not unlock the attacker.
    assert_too_many(sign_in_from(&app, ATTACKER, "steve", "s3cret").await).await;

    // The audit names the client behind the proxy, never the proxy.
    let entries = app.store().audit_entries().await.unwrap();
    let clients: Vec<_> = entries.iter().filter_map(|(_, _, client, _)| client.clone()).collect();
    assert!(clients.iter().all(|c| c == ATTACKER || c == STEVE_HOME), "{clients:?}");
    let failed = entries.iter().filter(|(e, ..)| e == "sign-in failed").count();
    assert_eq!(failed, 5);
}

both_backends!(
    steve_is_locked_everywhere_only_once_many_addresses_reach_user_failures,
    config = behind_a_proxy_three_user_failures
);
async fn steve_is_locked_everywhere_only_once_many_addresses_reach_user_failures(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for n in 1..=2 {
        let address = format!("203.0.113.{n}");
        assert_seed_403(sign_in_from(&app, &address, "steve", "guess").await).await;
    }
    // Two failures of three: steve signs in, and that success resets nothing
    // but its own pair, so the third failure still locks the user.
    assert_eq!(sign_in_from(&app, STEVE_HOME, "steve", "s3cret").await.status(), StatusCode::OK);
    assert_seed_403(sign_in_from(&app, "203.0.113.3", "steve", "guess").await).await;
    assert_too_many(sign_in_from(&app, STEVE_HOME, "steve", "s3cret").await).await;
}

both_backends!(
    fifty_five_wrong_guesses_from_one_address_lock_that_address_only,
    config = behind_a_proxy
);
async fn fifty_five_wrong_guesses_from_one_address_lock_that_address_only(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let mut statuses = Vec::new();
    for n in 0..55 {
        let response = sign_in_from(&app, ATTACKER, &format!("name{n}"), "guess").await;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses[..50].iter().all(|s| *s == 403), "the first 50 are checked: {statuses:?}");
    assert!(statuses[50..].iter().all(|s| *s == 429), "then the address waits: {statuses:?}");

    assert_too_many(sign_in_from(&app, ATTACKER, "steve", "s3cret").await).await;
    assert_eq!(sign_in_from(&app, STEVE_HOME, "steve", "s3cret").await.status(), StatusCode::OK);
}

both_backends!(
    addresses_in_one_ipv6_64_share_a_counter,
    config = behind_a_proxy_three_address_failures
);
async fn addresses_in_one_ipv6_64_share_a_counter(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for (n, address) in
        ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"].iter().enumerate()
    {
        assert_seed_403(sign_in_from(&app, address, &format!("name{n}"), "guess").await).await;
    }
    assert_too_many(sign_in_from(&app, "2001:db8:1:2:abcd::9", "steve", "s3cret").await).await;
    // The next /64 is another counter.
    assert_eq!(
        sign_in_from(&app, "2001:db8:1:3::1", "steve", "s3cret").await.status(),
        StatusCode::OK
    );
    // The audit keeps the whole address.
    let entries = app.store().audit_entries().await.unwrap();
    assert!(entries.iter().any(|(_, _, c, _)| c.as_deref() == Some("2001:db8:1:2:ffff::3")));
}

both_backends!(without_trusted_proxies_x_forwarded_for_is_ignored, config = three_address_failures);
async fn without_trusted_proxies_x_forwarded_for_is_ignored(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for n in 1..=3 {
        let spoofed = format!("203.0.113.{n}");
        assert_seed_403(sign_in_from(&app, &spoofed, &format!("name{n}"), "guess").await).await;
    }
    // Every attempt counted against the TCP peer, whatever the header said.
    assert_too_many(sign_in_from(&app, "198.51.100.99", "steve", "s3cret").await).await;
    let entries = app.store().audit_entries().await.unwrap();
    assert!(entries.iter().all(|(_, _, c, _)| c.as_deref() == Some("127.0.0.1")), "{entries:?}");
}

both_backends!(a_trusted_proxy_may_speak_rfc_7239_forwarded, config = behind_a_proxy);
async fn a_trusted_proxy_may_speak_rfc_7239_forwarded(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let token = token("steve", "guess");
    let forwarded = r#"for=192.0.2.1, for="[2001:db8:cafe::17]:4711";proto=https"#;
    let response = app
        .post("/v1/auth", &[("Authorization", &token), ("Forwarded", forwarded)], Some("{}"))
        .await;
    assert_seed_403(response).await;
    let entries = app.store().audit_entries().await.unwrap();
    assert_eq!(entries[0].2.as_deref(), Some("2001:db8:cafe::17"));
}

/// Signs `steve` in `n` times at once, spread over `servers`, and returns
/// every status.
async fn concurrent_sign_ins(servers: &[&Server], n: usize) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let server = servers[i % servers.len()];
            let request = server
                .client
                .post(server.url("/v1/auth"))
                .header("Authorization", token("steve", "s3cret"))
                .body("{}");
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

both_backends!(thirty_two_concurrent_right_passwords_all_sign_in);
async fn thirty_two_concurrent_right_passwords_all_sign_in(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let statuses = concurrent_sign_ins(&[&app], 32).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert_eq!(app.store().open_sessions(Some("steve")).await.unwrap().len(), 32);
}

both_backends!(thirty_two_concurrent_right_passwords_on_two_instances_all_sign_in);
async fn thirty_two_concurrent_right_passwords_on_two_instances_all_sign_in(app: TestApp) {
    let other = app.another_instance().await;
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let statuses = concurrent_sign_ins(&[&app, &other], 32).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert_eq!(app.store().open_sessions(Some("steve")).await.unwrap().len(), 32);
}

/// The database's size in bytes: SQLite's files, or PostgreSQL's own count.
async fn database_bytes(app: &TestApp) -> u64 {
    match app.store() {
        Store::Sqlite(..) => ["t.db", "t.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(app.db.dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum(),
        Store::Postgres(pool) => {
            let (n,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
                .fetch_one(pool)
                .await
                .unwrap();
            n as u64
        }
    }
}

both_backends!(names_that_cannot_exist_get_the_seed_403_at_once_and_cost_a_bounded_audit);
async fn names_that_cannot_exist_get_the_seed_403_at_once_and_cost_a_bounded_audit(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for bad in ["nul\0byte", "steve\nINFO signed in user=admin", "tab\tname"] {
        assert_seed_403(app.sign_in(bad, "guess").await).await;
    }
    let huge = "x".repeat(300_000);
    let started = Instant::now();
    assert_seed_403(app.sign_in(&huge, "guess").await).await;
    println!("a 300 KB user name: 403 in {:?}", started.elapsed());

    let before = database_bytes(&app).await;
    for _ in 0..100 {
        assert_seed_403(app.sign_in(&huge, "guess").await).await;
    }
    let grown = database_bytes(&app).await.saturating_sub(before);
    println!("100 more: the database grew by {grown} bytes");
    assert!(grown < 2 << 20, "100 refused 300 KB names grew the database by {grown} bytes");

    // Counted, not stored: no counter, no row per attempt, no name.
    assert_eq!(app.store().audit_count("sign-in refused").await.unwrap(), 104);
    let entries = app.store().audit_entries().await.unwrap();
    assert!(entries.len() <= 6, "{} audit rows for 104 refusals", entries.len());
    assert!(entries.iter().all(|(_, user, ..)| user.is_none()), "{entries:?}");
    let cells = app.every_cell().await;
    assert!(
        !cells.iter().any(|(_, v)| contains(v, &huge.as_bytes()[..1000])),
        "the name is stored"
    );
    assert!(!cells.iter().any(|(column, _)| column.starts_with("sign_in_failures")));
    // steve is not affected.
    app.sign_in_ok("steve", "s3cret").await;
}

/// Marks `key` as holding `pending` checks that began at `at`, as an
/// instance that died mid-check leaves it.
async fn hold(app: &TestApp, key: &str, pending: i64, at: i64) {
    let sql = "INSERT INTO sign_in_failures \
               (key, failures, last_at, locked_until, pending, pending_at, threshold) \
               VALUES ($1, 0, 0, 0, $2, $3, 5)";
    match app.store() {
        Store::Sqlite(pool, _) => {
            sqlx::query(sql).bind(key).bind(pending).bind(at).execute(pool).await.unwrap();
        }
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(key).bind(pending).bind(at).execute(pool).await.unwrap();
        }
    }
}

both_backends!(checks_held_by_a_dead_instance_delay_sign_in_at_most_until_their_lease_ends);
async fn checks_held_by_a_dead_instance_delay_sign_in_at_most_until_their_lease_ends(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    hold(&app, "ua:127.0.0.1|steve", 5, app.clock.now()).await;

    // The whole budget looks busy: the attempt waits its bounded time, then 503.
    let response = app.sign_in("steve", "s3cret").await;
    assert_eq!(header(&response, "retry-after").as_deref(), Some("1"));
    assert_error(response, 503, "Service Unavailable").await;

    // 30 s after the last reservation, the dead instance's places are free.
    app.clock.advance(std::time::Duration::from_secs(31));
    app.sign_in_ok("steve", "s3cret").await;
}
