//! Group commit for sign-ins. Every sign-in writes a session row and an
//! audit row; written one statement at a time, a storm of API key sign-ins
//! (thousands a second, design §4.7) spends its time handing statements to
//! the database and, on SQLite, waiting for the write lock. One writer task
//! takes whatever sign-ins are waiting, writes them with one multi-row
//! INSERT per table in one transaction, and only then answers each of them:
//! a sign-in still returns after its session is stored.

use anyhow::{Context, Result, anyhow};
use tokio::sync::{mpsc, oneshot};

use super::{Store, on_pool};
use crate::clock::Micros;

/// The most sign-ins written in one transaction.
const BATCH: usize = 128;

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

struct Job {
    session: NewSession,
    audit: Option<NewAudit>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle sign-in writes through; the writer task ends when it is dropped.
#[derive(Debug)]
pub struct SignIns {
    jobs: mpsc::Sender<Job>,
}

impl SignIns {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store) -> Self {
        let (jobs, queue) = mpsc::channel(4 * BATCH);
        tokio::spawn(write_batches(store, queue));
        Self { jobs }
    }

    /// Stores a new session and its audit entry; returns once they are
    /// committed.
    pub async fn record(&self, session: NewSession, audit: Option<NewAudit>) -> Result<()> {
        let (done, answer) = oneshot::channel();
        let gone = || anyhow!("the sign-in writer has stopped");
        self.jobs.send(Job { session, audit, done }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?.map_err(|e| anyhow!(e)).context("creating a session")
    }
}

async fn write_batches(store: Store, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut jobs, BATCH).await > 0 {
        let result = store.insert_sign_ins(&jobs).await.map_err(|e| format!("{e:#}"));
        for job in jobs.drain(..) {
            let _ = job.done.send(result.clone());
        }
    }
}

impl Store {
    /// Writes the sessions and audit entries of `jobs` in one transaction.
    async fn insert_sign_ins(&self, jobs: &[Job]) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut sessions = sqlx::QueryBuilder::new(
                "INSERT INTO sessions (id, user_id, csrf, api_key_id, created_at, last_used_at) ");
            sessions.push_values(jobs, |mut row, job| {
                let s = &job.session;
                row.push_bind(&s.id_digest).push_bind(s.user_id).push_bind(&s.csrf_digest)
                    .push_bind(s.api_key_id).push_bind(s.created_at).push_bind(s.created_at);
            });
            sessions.build().execute(&mut *tx).await?;
            let audits: Vec<&NewAudit> = jobs.iter().filter_map(|job| job.audit.as_ref()).collect();
            if !audits.is_empty() {
                let mut entries = sqlx::QueryBuilder::new(
                    "INSERT INTO audit (at, event, user_name, client, detail) ");
                entries.push_values(audits, |mut row, a| {
                    row.push_bind(a.at).push_bind(a.event).push_bind(&a.user_name)
                        .push_bind(&a.client).push_bind(&a.detail);
                });
                entries.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
