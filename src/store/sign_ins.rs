//! Sign-ins in groups. An API key sign-in reads its key, then writes a
//! session row and an audit row; done one statement at a time, a storm of
//! them (thousands a second, design §4.7) spends its time handing statements
//! to the database (on SQLite, to the connection's own thread) and waiting
//! for the write lock. So two tasks each take whatever is waiting and do it
//! together: one reads every waiting key with one statement, the other
//! writes every waiting sign-in with one multi-row INSERT per table in one
//! transaction. Each caller is answered only then: a key is still read after
//! its request arrived, and a sign-in still returns after its session is
//! stored.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

use anyhow::{Context, Result, anyhow};
use tokio::sync::{mpsc, oneshot};

use super::Store;
use super::api_keys::KeyForSignIn;
use crate::clock::Micros;

/// The most jobs one group holds.
const GROUP: usize = 128;

/// A session to store, by the digests of its id and CSRF token.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id_digest: String,
    pub user_id: i64,
    pub csrf_digest: String,
    pub api_key_id: Option<i64>,
    pub created_at: Micros,
}

/// An audit entry to store with it.
#[derive(Clone, Debug)]
pub struct NewAudit {
    pub at: Micros,
    pub event: &'static str,
    pub user_name: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

/// One sign-in to write.
struct SignIn {
    session: NewSession,
    audit: NewAudit,
}

/// What a group's work returns: one answer per job, in the jobs' order.
type Work<'a, R> = Pin<Box<dyn Future<Output = Result<Vec<R>>> + Send + 'a>>;

/// Where a job's answer goes.
type Answer<R> = oneshot::Sender<Result<R, String>>;

/// A task doing the jobs sent to it in groups; it ends when dropped.
struct Grouped<J, R> {
    jobs: mpsc::Sender<(J, Answer<R>)>,
}

impl<J: Send + 'static, R: Send + 'static> Grouped<J, R> {
    fn start(store: Store, work: for<'a> fn(&'a Store, &'a [J]) -> Work<'a, R>) -> Self {
        let (jobs, mut queue) = mpsc::channel(4 * GROUP);
        tokio::spawn(async move {
            let mut waiting = Vec::with_capacity(GROUP);
            while queue.recv_many(&mut waiting, GROUP).await > 0 {
                let (group, answers): (Vec<J>, Vec<Answer<R>>) = waiting.drain(..).unzip();
                match work(&store, &group).await {
                    Ok(results) => {
                        for (answer, result) in answers.into_iter().zip(results) {
                            let _ = answer.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        for answer in answers {
                            let _ = answer.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self { jobs }
    }

    /// Does `job` with whatever else is waiting; returns its answer.
    async fn run(&self, job: J) -> Result<R> {
        let (answer, answered) = oneshot::channel();
        let gone = || anyhow!("the sign-in tasks have stopped");
        self.jobs.send((job, answer)).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?.map_err(|e| anyhow!(e))
    }
}

/// The handle sign-in reads keys and writes sessions through.
pub struct SignIns {
    keys: Grouped<String, Option<KeyForSignIn>>,
    writes: Grouped<SignIn, ()>,
    /// The stores the two tasks use.
    stores: [Store; 2],
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIns")
    }
}

impl SignIns {
    /// Starts the two tasks on the current runtime, each with a connection
    /// of its own on SQLite (see [`Store::dedicated`]).
    pub fn start(store: &Store) -> Self {
        let stores = [store.dedicated(), store.dedicated()];
        Self {
            keys: Grouped::start(stores[0].clone(), |store, digests| {
                Box::pin(store.api_keys_by_digest(digests))
            }),
            writes: Grouped::start(stores[1].clone(), |store, sign_ins| {
                Box::pin(async move {
                    store.insert_sign_ins(sign_ins).await?;
                    Ok(vec![(); sign_ins.len()])
                })
            }),
            stores,
        }
    }

    /// Closes the tasks' connections (the ones of their own, on SQLite).
    pub async fn close(&self) {
        for store in &self.stores {
            store.close().await;
        }
    }

    /// The key with this digest and its user, if any.
    pub async fn key(&self, digest: String) -> Result<Option<KeyForSignIn>> {
        self.keys.run(digest).await.context("looking up an API key")
    }

    /// Stores a new session and its audit entry; returns once they are
    /// committed.
    pub async fn record(&self, session: NewSession, audit: NewAudit) -> Result<()> {
        self.writes.run(SignIn { session, audit }).await.context("creating a session")
    }
}

impl Store {
    /// The keys with these digests and their users, one answer per digest.
    /// The digests travel bound: an array on PostgreSQL, a JSON array on
    /// SQLite.
    async fn api_keys_by_digest(&self, digests: &[String]) -> Result<Vec<Option<KeyForSignIn>>> {
        macro_rules! select {
            ($among:literal) => {
                concat!(
                    "SELECT k.id, k.digest, k.roles, k.expires_at, k.revoked_at, ",
                    "u.id AS user_id, u.name AS user_name, u.org_uid, u.display_name, u.email, u.disabled ",
                    "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.digest IN ",
                    $among
                )
            };
        }
        let found: Vec<KeyForSignIn> = match self {
            Self::Postgres(pool) => {
                sqlx::query_as(select!("(SELECT unnest($1::text[]))"))
                    .bind(digests)
                    .fetch_all(pool)
                    .await?
            }
            Self::Sqlite(pool, _) => {
                let json = serde_json::to_string(digests).context("encoding key digests")?;
                sqlx::query_as(select!("(SELECT value FROM json_each($1))"))
                    .bind(json)
                    .fetch_all(pool)
                    .await?
            }
        };
        let by_digest: HashMap<&str, &KeyForSignIn> =
            found.iter().map(|key| (key.digest.as_str(), key)).collect();
        Ok(digests.iter().map(|d| by_digest.get(d.as_str()).map(|&key| key.clone())).collect())
    }

    /// Writes the sessions and audit entries of `jobs`, and moves the last
    /// use of their API keys forward (never back) to the group's newest
    /// sign-in, in one transaction: a sign-in writes nothing on its own,
    /// which on SQLite would wait for the group's write lock. On SQLite the
    /// whole transaction is one command to the connection's thread rather
    /// than one per statement (each a wait for the thread and then for the
    /// runtime, a few hundred microseconds under load).
    async fn insert_sign_ins(&self, jobs: &[SignIn]) -> Result<()> {
        let keys: BTreeSet<i64> = jobs.iter().filter_map(|job| job.session.api_key_id).collect();
        let newest = jobs.iter().map(|job| job.session.created_at).max();
        macro_rules! sessions {
            ($sql:ident) => {
                $sql.push("INSERT INTO sessions (id, user_id, csrf, api_key_id, created_at, last_used_at) ")
                    .push_values(jobs, |mut row, job| {
                        let s = &job.session;
                        row.push_bind(&s.id_digest).push_bind(s.user_id).push_bind(&s.csrf_digest)
                            .push_bind(s.api_key_id).push_bind(s.created_at).push_bind(s.created_at);
                    })
            };
        }
        macro_rules! audits {
            ($sql:ident) => {
                $sql.push("INSERT INTO audit (at, event, user_name, client, detail) ").push_values(
                    jobs,
                    |mut row, job| {
                        let a = &job.audit;
                        row.push_bind(a.at)
                            .push_bind(a.event)
                            .push_bind(&a.user_name)
                            .push_bind(&a.client)
                            .push_bind(&a.detail);
                    },
                )
            };
        }
        macro_rules! key_uses {
            ($sql:ident) => {{
                $sql.push("UPDATE api_keys SET last_used_at = ")
                    .push_bind(newest)
                    .push(" WHERE (last_used_at IS NULL OR last_used_at < ")
                    .push_bind(newest)
                    .push(") AND id IN (");
                let mut ids = $sql.separated(", ");
                for id in &keys {
                    ids.push_bind(*id);
                }
                $sql.push(")")
            }};
        }
        match self {
            Self::Sqlite(pool, _) => {
                let mut sql = sqlx::QueryBuilder::new("BEGIN IMMEDIATE; ");
                sessions!(sql);
                sql.push("; ");
                audits!(sql);
                if !keys.is_empty() {
                    sql.push("; ");
                    key_uses!(sql);
                }
                sql.push("; COMMIT");
                let mut conn = pool.acquire().await?;
                if let Err(e) = sql.build().execute(&mut *conn).await {
                    // Closing the connection undoes whatever part of it ran.
                    conn.close_on_drop();
                    return Err(e.into());
                }
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let mut sql = sqlx::QueryBuilder::new("");
                sessions!(sql).build().execute(&mut *tx).await?;
                sql.reset();
                audits!(sql).build().execute(&mut *tx).await?;
                if !keys.is_empty() {
                    sql.reset();
                    key_uses!(sql).build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
