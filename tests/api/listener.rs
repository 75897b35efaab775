//! The change listener that lets the gate answer from memory (design §4.3):
//! while it hears its own heartbeat the gate does not re-read sessions and a
//! revocation arrives by notice; cut off, the gate falls back to re-reading
//! and a revocation is still refused within a second. `tessera check` prints
//! the connection budget.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::Connection;
use tessera::auth::signin::SignedIn;
use tessera::config::{Config, DatabaseUrl, HumanDuration};

use crate::cli::check;
use crate::helpers::*;

/// Waits up to `within` for the listener's health to be `healthy`.
async fn wait_for_health(server: &Server, healthy: bool, within: Duration) {
    let start = Instant::now();
    while server.state.gate.listener.healthy(server.clock.now()) != healthy {
        assert!(start.elapsed() < within, "the listener is not healthy={healthy} after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls `GET /v1/status` `times` times, 50 ms apart, each a 200; returns how
/// many sessions the gate read meanwhile.
async fn reads_during_calls(server: &Server, s: &SignedIn, times: usize) -> u64 {
    let before = server.state.gate.reads();
    for _ in 0..times {
        assert_eq!(server.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.state.gate.reads() - before
}

/// The gauge and counter of the listener in `/metrics`.
async fn listener_metrics(server: &Server) -> (String, String) {
    let text = server.get("/metrics", &[]).await.text().await.unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_owned()
    };
    (line("tessera_change_listener_healthy "), line("tessera_gate_session_reads_total "))
}

both_backends!(a_healthy_listener_answers_from_memory_and_revokes_by_notice);
async fn a_healthy_listener_answers_from_memory_and_revokes_by_notice(app: TestApp) {
    app.add_user("steve", "cloudio", "pw", &[]).await;
    let s = app.sign_in_ok("steve", "pw").await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    if app.db.backend == Backend::Sqlite {
        // No listener: today's re-read every 200 ms, within the second.
        assert!(!app.state.gate.listener.healthy(app.clock.now()));
        assert!(reads_during_calls(&app, &s, 15).await >= 2, "SQLite must keep re-reading");
        assert_eq!(listener_metrics(&app).await.0, "tessera_change_listener_healthy 0");
    } else {
        wait_for_health(&app, true, Duration::from_secs(5)).await;
        assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
        // 750 ms of calls: past FRESH and STALE, and not one read.
        assert_eq!(reads_during_calls(&app, &s, 15).await, 0, "a healthy gate re-read");
        let (healthy, reads) = listener_metrics(&app).await;
        assert_eq!(healthy, "tessera_change_listener_healthy 1");
        assert!(reads.ends_with(&format!(" {}", app.state.gate.reads())), "{reads}");
    }

    // Ended behind the server's back: only the notice (or the re-read) tells.
    assert!(app.end_session_elsewhere(&s.session_id).await);
    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;
}

/// A role of its own for the listener, so that a test can stop it from
/// connecting while the pool goes on.
struct ListenerRole {
    admin: String,
    name: String,
}

impl ListenerRole {
    async fn create(admin: &str) -> Self {
        let name = format!("tessera_listener_{}", uuid::Uuid::new_v4().simple());
        let role = Self { admin: admin.to_owned(), name };
        role.sql(&format!("CREATE ROLE {} LOGIN", role.name)).await;
        role
    }

    async fn sql(&self, sql: &str) -> u64 {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await;
        conn.close().await.unwrap();
        done.unwrap().rows_affected()
    }

    /// `url` with its user replaced by this role.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}@{host}", self.name)
    }

    /// Ends the role's connections (the listener's).
    async fn terminate(&self) -> u64 {
        self.sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = '{}' AND application_name = 'tessera-listener'",
            self.name
        ))
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_cut_off_falls_back_to_re_reading_and_still_revokes_within_a_second() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let admin = std::env::var(POSTGRES_ENV).unwrap();
    let role = ListenerRole::create(&admin).await;
    let mut config = test_config();
    config.database_listen_url = Some(DatabaseUrl(role.url(&db.url)));
    let app = TestApp::spawn(db, config).await;
    app.add_user("steve", "cloudio", "pw", &[]).await;
    let s = app.sign_in_ok("steve", "pw").await;
    wait_for_health(&app, true, Duration::from_secs(5)).await;
    assert_eq!(app.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    assert_eq!(reads_during_calls(&app, &s, 6).await, 0, "a healthy gate re-read");

    // Cut off, and kept off: the role may no longer log in.
    role.sql(&format!("ALTER ROLE {} NOLOGIN", role.name)).await;
    assert_eq!(role.terminate().await, 1, "one listener connection, named tessera-listener");
    wait_for_health(&app, false, Duration::from_secs(1)).await;
    assert!(reads_during_calls(&app, &s, 10).await >= 2, "the fallback does not re-read");
    assert_eq!(listener_metrics(&app).await.0, "tessera_change_listener_healthy 0");

    assert!(app.end_session_elsewhere(&s.session_id).await);
    assert_unauthorized(app.refused_within_a_second(&s.jwt, &s.csrf).await).await;

    // Let back in, it hears its heartbeat again and the gate trusts it.
    role.sql(&format!("ALTER ROLE {} LOGIN", role.name)).await;
    wait_for_health(&app, true, Duration::from_secs(5)).await;
    let again = app.sign_in_ok("steve", "pw").await;
    assert_eq!(app.status(&again.jwt, &again.csrf).await.status(), StatusCode::OK);
    assert_eq!(reads_during_calls(&app, &again, 6).await, 0, "a recovered gate re-read");

    drop(app);
    role.sql(&format!("ALTER ROLE {} NOLOGIN", role.name)).await;
    role.terminate().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while role.terminate().await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {}", role.name)))
        .execute(&mut conn)
        .await;
}

fn half_hour_idle(config: &mut Config) {
    config.session.idle_timeout = HumanDuration(Duration::from_secs(30 * 60));
}

both_backends!(a_session_used_on_another_instance_is_not_idle_here, config = half_hour_idle);
async fn a_session_used_on_another_instance_is_not_idle_here(a: TestApp) {
    let b = a.another_instance().await;
    a.add_user("steve", "cloudio", "pw", &[]).await;
    let s = a.sign_in_ok("steve", "pw").await;
    assert_eq!(a.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    // Used only on B for 40 minutes: A's own memory says idle.
    for _ in 0..2 {
        a.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(b.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);
    }
    b.state.flush_uses_now().await;
    assert_eq!(a.status(&s.jwt, &s.csrf).await.status(), StatusCode::OK);

    // Unused anywhere for the idle timeout: refused on both.
    a.clock.advance(Duration::from_secs(30 * 60 + 1));
    assert_unauthorized(a.status(&s.jwt, &s.csrf).await).await;
    assert_unauthorized(b.status(&s.jwt, &s.csrf).await).await;
}

both_databases!(check_prints_the_connection_budget);
async fn check_prints_the_connection_budget(db: TestDb) {
    let config = db.dir.path().join("budget.toml");
    std::fs::write(&config, "database_pool_size = 6\n").unwrap();
    let ran = check(db.dir.path(), &config, &db.url).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    if db.backend == Backend::Sqlite {
        assert!(ran.stdout.contains("connections: SQLite is a file"), "{}", ran.stdout);
        return;
    }
    assert!(
        ran.stdout
            .contains("connections: 7 per instance (database_pool_size 6 + 1 change listener)"),
        "{}",
        ran.stdout
    );
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (max, reserved): (String, String) = sqlx::query_as(
        "SELECT current_setting('max_connections'), current_setting('superuser_reserved_connections')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let usable: i64 = max.parse::<i64>().unwrap() - reserved.parse::<i64>().unwrap();
    let room = (usable / 5).max(5);
    let fit = (usable - room) / 7;
    let line = format!(
        "instances that fit: {fit} ({} connections), keeping {room} for operators",
        fit * 7
    );
    assert!(ran.stdout.contains(&line), "{line} not in {}", ran.stdout);
    assert!(
        ran.stdout.contains(&format!("PostgreSQL: max_connections {max}, {reserved} reserved"))
    );
    assert!(ran.stdout.ends_with("ok: the config file and the database agree\n"), "{}", ran.stdout);
}
