//! The database: tessera's own tables on SQLite or PostgreSQL behind one
//! narrow interface. The URL's scheme picks the backend. Every statement here
//! is written once in SQL both dialects accept (`$n` placeholders, `ON
//! CONFLICT`, `RETURNING`) and runs on whichever pool is open; times are
//! microseconds since the epoch, stored as BIGINT.

pub mod api_keys;
pub mod audit;
pub mod changes;
mod connections;
pub mod dialect;
pub mod exec;
pub mod idempotency;
mod last_use;
mod limits;
mod readers;
pub mod share;
pub mod sign_ins;
mod signing_keys;
pub mod throttle;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::clock::Micros;
pub use connections::ConnectionLimits;
use connections::postgres_options;
use readers::Readers;
pub use signing_keys::KeyRow;

/// Runs `$body` with `$pool` bound to whichever pool the store holds. The body
/// is compiled once per backend, so one SQL text serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool, _) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A pooled PostgreSQL connection idle for longer than this is pinged
/// before use.
const PING_WHEN_IDLE: Duration = Duration::from_secs(10);

/// WAL pages after which a [`Store::dedicated`] SQLite connection copies the
/// log into the database file, rather than SQLite's 1,000: a sign-in storm
/// dirties ~4 scattered index pages per sign-in, and at 1,000 the writer
/// stopped every few dozen groups to copy and sync 4 MiB. At 10,000 (40 MiB
/// of log) a page rewritten many times is copied once, and a storm of key
/// sign-ins runs ~10% faster (measured, issue 14).
const WRITER_CHECKPOINT_PAGES: &str = "10000";

/// Connections of sqlx's SQLite pool. Each holds its own page cache and
/// its own thread (with a C allocator arena that SQLite's memory fills).
const SQLITE_POOL: u32 = 4;

/// The page cache of each connection of sqlx's SQLite pool, in KiB (as
/// SQLite's negative `cache_size`). Reads of the data path run on the
/// store's own read connections, which keep SQLite's default (2 MiB); what
/// is left here is writes, the gate's session reads and the admin reads,
/// over pages the OS caches anyway. Each connection keeps its own copy of
/// the pages it read, so 8 connections at the default held the sessions
/// table 8 times over: 1.2 KiB of RSS per used session in S9.
const POOL_CACHE: &str = "-256";

/// The page cache of a [`Store::dedicated`] connection: SQLite's default,
/// for the sign-in writer's scattered index pages.
const DEDICATED_CACHE: &str = "-2000";

/// An open database. A SQLite file has read connections of its own beside
/// sqlx's pool (see `readers`); an in-memory one has none.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool, Option<Arc<Readers>>),
    Postgres(PgPool),
}

/// Which SQL dialect a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A user as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub org_uid: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub disabled: bool,
}

/// What creating a user needs.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub org_uid: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a [String],
}

/// A session joined with its user, as the gate needs it. `id` and `csrf`
/// are digests (see `auth::secrets`), never the values a client holds.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub csrf: String,
    pub created_at: Micros,
    pub last_used_at: Micros,
    pub ended_at: Option<Micros>,
    pub user_name: String,
    pub org_uid: String,
    pub disabled: bool,
    /// The roles of the API key the session was opened with (a JSON array),
    /// if it was.
    pub key_roles: Option<String>,
}

/// One audit entry.
#[derive(Clone, Debug)]
pub struct AuditEvent<'a> {
    pub at: Micros,
    pub event: &'a str,
    pub user_name: Option<&'a str>,
    pub client: Option<&'a str>,
    pub detail: &'a str,
}

/// A session joined with its user, then `$rest` (a WHERE clause).
macro_rules! select_sessions {
    ($rest:literal) => {
        concat!(
            "SELECT s.id, s.user_id, s.csrf, s.created_at, s.last_used_at, s.ended_at, ",
            "u.name AS user_name, u.org_uid, u.disabled, k.roles AS key_roles ",
            "FROM sessions s JOIN users u ON u.id = s.user_id ",
            "LEFT JOIN api_keys k ON k.id = s.api_key_id ",
            $rest
        )
    };
}

/// Whether a SQLite `url` names an in-memory database rather than a file.
fn in_memory(url: &str) -> bool {
    let path = sqlite_path(url);
    path.is_empty() || path.starts_with(':') || url.contains("mode=memory")
}

/// The file a SQLite `url` names, as written.
fn sqlite_path(url: &str) -> &str {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    path.split('?').next().unwrap_or_default()
}

/// Creates the SQLite file of `url` readable by its owner only (mode 0600)
/// if it does not exist; SQLite gives its -wal and -shm files the same mode.
fn create_private(url: &str) -> Result<()> {
    if in_memory(url) {
        return Ok(());
    }
    let path = sqlite_path(url);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create SQLite database {path:?}")),
    }
}

impl Store {
    /// Opens (and for SQLite, creates) the database at `url` and applies
    /// any migrations it lacks.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_limited(url, None, crate::config::default_pool_size()).await
    }

    /// [`Store::open`], with every statement bounded by `statement_timeout`
    /// (see `limits` for what that means on each backend) and at most
    /// `pool_size` PostgreSQL connections (SQLite's pool is fixed: a file
    /// costs no server connections).
    pub async fn open_limited(
        url: &str,
        statement_timeout: Option<Duration>,
        pool_size: u32,
    ) -> Result<Self> {
        let store = Self::connect_limited(url, statement_timeout, pool_size).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating it.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_limited(url, None, crate::config::default_pool_size()).await
    }

    async fn connect_limited(
        url: &str,
        statement_timeout: Option<Duration>,
        pool_size: u32,
    ) -> Result<Self> {
        if url.starts_with("sqlite:") {
            create_private(url)?;
            let busy_timeout = statement_timeout.unwrap_or(Duration::from_secs(10));
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("invalid SQLite URL {url:?}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
                .pragma("cache_size", POOL_CACHE);
            let readers = (!in_memory(url)).then(|| {
                let path = options.get_filename().to_owned();
                Arc::new(Readers::new(path, busy_timeout, statement_timeout))
            });
            // A connection to a file cannot hang up: no ping before each use
            // (on SQLite, a round trip to the connection's thread). Reads of
            // the data path do not come here (see `readers`), and writes take
            // SQLite's one write lock in turn, so a few connections serve.
            let pool = limits::sqlite(SqlitePoolOptions::new(), statement_timeout)
                .test_before_acquire(false)
                .max_connections(SQLITE_POOL)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .with_context(|| format!("cannot open SQLite database {url:?}"))?;
            Ok(Self::Sqlite(pool, readers))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let shown = crate::config::redact_url(url);
            let options = limits::postgres(postgres_options(url, "tessera")?, statement_timeout);
            let pool = PgPoolOptions::new()
                .max_connections(pool_size.max(1))
                // A round trip before every statement would double the cost
                // of the short ones; only a connection idle for a while is
                // pinged, since that is the one a restart or a firewall has
                // most likely cut.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PING_WHEN_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(options)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {shown:?}"))?;
            Ok(Self::Postgres(pool))
        } else {
            bail!("unsupported database URL {url:?}: use sqlite://FILE or postgres://USER@HOST/DB")
        }
    }

    /// A store for a task that runs short statements all the time (point
    /// look-ups and inserts by index, bounded by their shape). On SQLite it
    /// has one connection of its own, opened on first use, that does not
    /// wait for the pool and keeps its statement and page caches warm; it
    /// has no `statement_timeout` handler, whose arming at each checkout
    /// costs a round trip to the connection's thread (write-lock waits are
    /// still bounded by `busy_timeout`). What it writes is checkpointed every
    /// [`WRITER_CHECKPOINT_PAGES`]. On PostgreSQL it is this store,
    /// since every connection counts against the server's budget (§4.3).
    pub fn dedicated(&self) -> Self {
        match self {
            Self::Sqlite(pool, readers) => Self::Sqlite(
                SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(1)
                    .connect_lazy_with(
                        (*pool.connect_options())
                            .clone()
                            .pragma("cache_size", DEDICATED_CACHE)
                            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES),
                    ),
                readers.clone(),
            ),
            Self::Postgres(_) => self.clone(),
        }
    }

    /// Which dialect this store speaks.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(..) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded, append-only migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Sqlite(pool, _) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Self::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
        .context("applying database migrations")
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))
            .context("pinging the database")?;
        Ok(())
    }

    /// Connections the pool holds now, in use or idle (for `/metrics`).
    pub fn pool_size(&self) -> u32 {
        on_pool!(self, pool => pool.size())
    }

    /// Most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        on_pool!(self, pool => pool.options().get_max_connections())
    }

    /// Connections the pool holds idle now.
    pub fn pool_idle(&self) -> usize {
        on_pool!(self, pool => pool.num_idle())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    // ---- datasource tables -------------------------------------------------

    /// The columns of a table, or none if it does not exist.
    pub async fn table_columns(&self, table: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = match self {
            Self::Sqlite(pool, _) => {
                sqlx::query_as("SELECT name FROM pragma_table_info($1)")
                    .bind(table)
                    .fetch_all(pool)
                    .await
            }
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT column_name::TEXT FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1",
                )
                .bind(table)
                .fetch_all(pool)
                .await
            }
        }
        .with_context(|| format!("reading the columns of table {table}"))?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// Runs DDL built from the catalog (never from request input).
    pub async fn execute_ddl(&self, sql: &str) -> Result<()> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        on_pool!(self, pool => sqlx::raw_sql(sql).execute(pool).await.map(|r| r.rows_affected()))
            .context("creating a datasource table")?;
        Ok(())
    }

    // ---- users -------------------------------------------------------------

    /// Creates a user (and its org, if new). Fails if the name is taken.
    pub async fn add_user(&self, user: &NewUser<'_>, now: Micros) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO orgs (uid, created_at) VALUES ($1, $2) ON CONFLICT (uid) DO NOTHING")
                .bind(user.org_uid).bind(now).execute(&mut *tx).await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO users (name, org_uid, display_name, email, password_hash, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, $6) ON CONFLICT (name) DO NOTHING RETURNING id")
                .bind(user.name).bind(user.org_uid).bind(user.display_name).bind(user.email)
                .bind(user.password_hash).bind(now)
                .fetch_optional(&mut *tx).await?
                .with_context(|| format!("user {} already exists", user.name))?;
            for role in user.roles {
                sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id).bind(role).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The user with this name, if any.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, org_uid, display_name, email, password_hash, disabled FROM users WHERE name = $1")
            .bind(name).fetch_optional(pool).await)
        .context("loading a user")
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, org_uid, display_name, email, password_hash, disabled FROM users ORDER BY name")
            .fetch_all(pool).await)
        .context("listing users")
    }

    /// Replaces a stored hash with one made with the current parameters,
    /// if the stored hash is still `old` (a concurrent change wins).
    pub async fn rehash_password(&self, user_id: i64, old: &str, new: &str) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(new).bind(user_id).bind(old).execute(pool).await.map(|r| r.rows_affected()))
        .context("re-hashing a password")?;
        Ok(())
    }

    /// Sets a user's password and ends all its sessions, in one transaction.
    /// Returns the number of sessions ended, or `None` for an unknown user.
    pub async fn change_password(
        &self,
        name: &str,
        hash: &str,
        now: Micros,
    ) -> Result<Option<u64>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: Option<(i64,)> = sqlx::query_as("UPDATE users SET password_hash = $1 WHERE name = $2 RETURNING id")
                .bind(hash).bind(name).fetch_optional(&mut *tx).await?;
            let Some((id,)) = id else { return Ok(None) };
            let ended = sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = 'password changed' WHERE user_id = $2 AND ended_at IS NULL")
                .bind(now).bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(Some(ended))
        })
    }

    /// Disables or enables a user; disabling ends all its sessions.
    /// Returns the number of sessions ended, or `None` for an unknown user.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
        now: Micros,
    ) -> Result<Option<u64>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: Option<(i64,)> = sqlx::query_as("UPDATE users SET disabled = $1 WHERE name = $2 RETURNING id")
                .bind(disabled).bind(name).fetch_optional(&mut *tx).await?;
            let Some((id,)) = id else { return Ok(None) };
            let mut ended = 0;
            if disabled {
                ended = sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = 'user disabled' WHERE user_id = $2 AND ended_at IS NULL")
                    .bind(now).bind(id).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(Some(ended))
        })
    }

    /// The roles granted to a user, sorted.
    pub async fn user_roles(&self, user_id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
            .bind(user_id).fetch_all(pool).await)
        .context("loading a user's roles")?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    /// Adds and removes roles of a user in one transaction; returns the
    /// resulting roles, or `None` for an unknown user.
    pub async fn change_roles(
        &self,
        name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Option<Vec<String>>> {
        let Some(user) = self.user_by_name(name).await? else { return Ok(None) };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for role in add {
                sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(user.id).bind(role).execute(&mut *tx).await?;
            }
            for role in remove {
                sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
                    .bind(user.id).bind(role).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            anyhow::Ok(())
        })
        .context("changing a user's roles")?;
        self.user_roles(user.id).await.map(Some)
    }

    // ---- sessions ----------------------------------------------------------

    /// A session with its user, by the digest of its id, if it exists
    /// (live or not).
    pub async fn session(&self, id_digest: &str) -> Result<Option<SessionRow>> {
        on_pool!(self, pool => sqlx::query_as(select_sessions!("WHERE s.id = $1")).bind(id_digest).fetch_optional(pool).await)
            .context("loading a session")
    }

    /// The sessions whose digest starts with `handle` (what `session list`
    /// shows), at most two: one is an answer, two say the handle is too short.
    pub async fn sessions_by_handle(&self, handle: &str) -> Result<Vec<SessionRow>> {
        let pattern = format!("{handle}%");
        on_pool!(self, pool => sqlx::query_as(select_sessions!("WHERE s.id LIKE $1 LIMIT 2"))
            .bind(pattern).fetch_all(pool).await)
        .context("finding a session")
    }

    /// Sessions that have not been ended, newest first, optionally of one user.
    pub async fn open_sessions(&self, user: Option<&str>) -> Result<Vec<SessionRow>> {
        let sql = select_sessions!(
            "WHERE s.ended_at IS NULL AND ($1 IS NULL OR u.name = $1) ORDER BY s.created_at DESC"
        );
        on_pool!(self, pool => sqlx::query_as(sql).bind(user).fetch_all(pool).await)
            .context("listing sessions")
    }

    /// Deletes sessions that ended before `cut`: ended by sign-out or an
    /// admin before it, or by their lifetime (`lifetime`, created before
    /// `cut - lifetime`). Returns how many.
    pub async fn prune_sessions(&self, cut: Micros, lifetime: Micros) -> Result<u64> {
        on_pool!(self, pool => sqlx::query(
            "DELETE FROM sessions WHERE created_at < $1 AND (ended_at < $1 OR created_at < $2)")
            .bind(cut).bind(cut.saturating_sub(lifetime)).execute(pool).await.map(|r| r.rows_affected()))
        .context("pruning ended sessions")
    }

    /// Ends one session; false if it was unknown or already ended.
    pub async fn end_session(&self, id: &str, reason: &str, now: Micros) -> Result<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
            .bind(now).bind(reason).bind(id).execute(pool).await.map(|r| r.rows_affected()))
        .context("ending a session")?;
        Ok(done == 1)
    }

    /// Ends every open session of a user; returns how many, or `None` for an
    /// unknown user.
    pub async fn end_user_sessions(
        &self,
        name: &str,
        reason: &str,
        now: Micros,
    ) -> Result<Option<u64>> {
        let Some(user) = self.user_by_name(name).await? else { return Ok(None) };
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE user_id = $3 AND ended_at IS NULL")
            .bind(now).bind(reason).bind(user.id).execute(pool).await.map(|r| r.rows_affected()))
        .context("ending a user's sessions")?;
        Ok(Some(done))
    }

    // ---- audit -------------------------------------------------------------

    /// Appends one audit entry.
    pub async fn audit(&self, event: &AuditEvent<'_>) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO audit (at, event, user_name, client, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(event.at).bind(event.event).bind(event.user_name).bind(event.client)
            .bind(event.detail).execute(pool).await.map(|r| r.rows_affected()))
        .context("writing the audit log")?;
        Ok(())
    }

    /// Every audit entry as `(event, user_name, client, detail)`, oldest first.
    pub async fn audit_entries(
        &self,
    ) -> Result<Vec<(String, Option<String>, Option<String>, String)>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT event, user_name, client, detail FROM audit ORDER BY id").fetch_all(pool).await)
        .context("reading the audit log")
    }
}
