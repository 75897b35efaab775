//! The data-change audit trail's table (design §4.6, migration 0015): entries
//! are appended inside the writing request's own transaction, through the
//! data path's door ([`Db`]), and form a SHA-256 hash chain:
//!
//! `entry_hash = SHA-256(prev_hash "\n" canonical)`, where `canonical` is the
//! JSON array `[auditId, auditTime, userName, orgUid, sessionId, datasource,
//! operation, rowKey, oldValues, newValues]` and `prev_hash` is the
//! `entry_hash` of entry `auditId - 1` ([`GENESIS`] for the first). Ids are
//! assigned last + 1 while the appender holds the chain's lock, so they have
//! no gaps and a removed entry shows.

use sea_query::{Expr, ExprTrait, Order, Query};
use sha2::{Digest, Sha256};

use super::dialect::Storage;
use super::exec::{Db, Rows};

/// The predecessor hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const TABLE: &str = "audit_trail";

/// How many entries a walk of the chain reads at once.
pub const PAGE: u64 = 1000;

/// The columns of an entry, in [`Entry`] order after `audit_id`.
const COLUMNS: [&str; 12] = [
    "audit_id",
    "audit_time",
    "user_name",
    "org_uid",
    "session_id",
    "datasource",
    "operation",
    "row_key",
    "old_values",
    "new_values",
    "prev_hash",
    "entry_hash",
];

/// One audit entry's content (what the hash covers besides the id and the
/// predecessor's hash).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// ISO 8601 UTC with microseconds, the request's one instant.
    pub time: String,
    pub user: String,
    pub org: String,
    pub session: String,
    pub datasource: String,
    /// `insert`, `update` or `delete`.
    pub operation: String,
    /// The primary key, a JSON object.
    pub row_key: String,
    /// The changed attributes before, a JSON object (`None` for an insert).
    pub old_values: Option<String>,
    /// The changed attributes after, a JSON object (`None` for a delete).
    pub new_values: Option<String>,
}

/// An entry as stored: its id, content and the two hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    pub entry: Entry,
    pub prev_hash: String,
    pub entry_hash: String,
}

/// The end of the chain a transaction appends to.
#[derive(Clone, Debug)]
pub struct Tail {
    pub id: i64,
    pub hash: String,
}

/// The hash an entry with this id and predecessor must carry.
pub fn entry_hash(id: i64, prev_hash: &str, entry: &Entry) -> String {
    let canonical = serde_json::json!([
        id,
        entry.time,
        entry.user,
        entry.org,
        entry.session,
        entry.datasource,
        entry.operation,
        entry.row_key,
        entry.old_values,
        entry.new_values,
    ]);
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(b"\n");
    digest.update(canonical.to_string().as_bytes());
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

// ORDER BY names the column with its table: PostgreSQL would take a bare
// `audit_id` for the select list's text cast of it, and sort "10" before "9".

/// Takes the chain's lock (PostgreSQL) and reads its last entry: call once
/// per transaction, before the first [`append`].
pub async fn tail(db: &mut Db<'_>) -> Result<Tail, sqlx::Error> {
    let backend = db.backend();
    if let Some(lock) = backend.audit_lock() {
        db.fetch(lock).await?;
    }
    let mut q = Query::select();
    q.expr(backend.read_text(Storage::Integer, Expr::col("audit_id")))
        .column("entry_hash")
        .from(TABLE)
        .order_by((TABLE, "audit_id"), Order::Desc)
        .limit(1);
    let rows = db.fetch(backend.build(&q)).await?;
    if rows.is_empty() {
        return Ok(Tail { id: 0, hash: GENESIS.into() });
    }
    let cells = rows.cells(0, 2)?;
    let id = cells[0].as_deref().and_then(|s| s.parse().ok()).unwrap_or_default();
    let hash = cells[1].as_deref().unwrap_or_default().to_owned();
    Ok(Tail { id, hash })
}

/// Appends `entry` after `tail`, which then points at it.
pub async fn append(db: &mut Db<'_>, tail: &mut Tail, entry: &Entry) -> Result<(), sqlx::Error> {
    let backend = db.backend();
    let id = tail.id + 1;
    let hash = entry_hash(id, &tail.hash, entry);
    let text = |s: &str| Expr::val(s.to_owned());
    let maybe = |s: &Option<String>| match s {
        Some(s) => Expr::val(s.clone()),
        None => backend.null(Storage::Text),
    };
    let mut q = Query::insert();
    q.into_table(TABLE).columns(COLUMNS);
    q.values([
        Expr::val(id),
        backend.cast(text(&entry.time), Storage::DateTime),
        text(&entry.user),
        text(&entry.org),
        text(&entry.session),
        text(&entry.datasource),
        text(&entry.operation),
        text(&entry.row_key),
        maybe(&entry.old_values),
        maybe(&entry.new_values),
        text(&tail.hash),
        text(&hash),
    ])
    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    db.fetch(backend.build(&q)).await?;
    *tail = Tail { id, hash };
    Ok(())
}

/// Which entries [`page`] reads.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Entries with a larger id only.
    pub after: i64,
    pub datasource: Option<String>,
    pub user: Option<String>,
    /// Entries at or after this instant (ISO 8601).
    pub since: Option<String>,
    pub limit: u64,
}

/// Up to `filter.limit` stored entries after `filter.after`, oldest first.
pub async fn page(db: &mut Db<'_>, filter: &Filter) -> Result<Vec<Stored>, sqlx::Error> {
    let backend = db.backend();
    let mut q = Query::select();
    for column in COLUMNS {
        let storage = match column {
            "audit_id" => Storage::Integer,
            "audit_time" => Storage::DateTime,
            _ => Storage::Text,
        };
        q.expr(backend.read_text(storage, Expr::col(column)));
    }
    q.from(TABLE).and_where(Expr::col("audit_id").gt(filter.after));
    if let Some(ds) = &filter.datasource {
        q.and_where(Expr::col("datasource").eq(ds.as_str()));
    }
    if let Some(user) = &filter.user {
        q.and_where(Expr::col("user_name").eq(user.as_str()));
    }
    if let Some(since) = &filter.since {
        let at = backend.cast(Expr::val(since.as_str()), Storage::DateTime);
        q.and_where(Expr::col("audit_time").gte(at));
    }
    q.order_by((TABLE, "audit_id"), Order::Asc).limit(filter.limit);
    let rows = db.fetch(backend.build(&q)).await?;
    (0..rows.len()).map(|r| stored(&rows, r)).collect()
}

fn stored(rows: &Rows, r: usize) -> Result<Stored, sqlx::Error> {
    let cells = rows.cells(r, COLUMNS.len())?;
    let text = |i: usize| cells[i].as_deref().unwrap_or_default().to_owned();
    let maybe = |i: usize| cells[i].as_deref().map(str::to_owned);
    Ok(Stored {
        id: text(0).parse().unwrap_or_default(),
        entry: Entry {
            time: text(1),
            user: text(2),
            org: text(3),
            session: text(4),
            datasource: text(5),
            operation: text(6),
            row_key: text(7),
            old_values: maybe(8),
            new_values: maybe(9),
        },
        prev_hash: text(10),
        entry_hash: text(11),
    })
}

/// What [`check`] found wrong with the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// The entry's content or hash was changed after it was written.
    Altered(i64),
    /// Entries are missing before this one (removed).
    Removed { missing: i64, next: i64 },
    /// The entry does not follow its predecessor (inserted, or its
    /// predecessor replaced).
    Inserted(i64),
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered(id) => {
                write!(f, "audit entry {id} was altered: its content does not match its hash")
            }
            Self::Removed { missing, next } => write!(
                f,
                "audit entry {missing} was removed: the chain jumps from entry {} to entry {next}",
                missing - 1
            ),
            Self::Inserted(id) => write!(
                f,
                "audit entry {id} was inserted or replaced: it does not follow entry {}",
                id - 1
            ),
        }
    }
}

/// Checks one stored entry against the chain so far (`expect` is the id and
/// hash it must follow); on success `expect` moves to it.
pub fn check(expect: &mut Tail, entry: &Stored) -> Result<(), Break> {
    if entry.id > expect.id + 1 {
        return Err(Break::Removed { missing: expect.id + 1, next: entry.id });
    }
    if entry.prev_hash != expect.hash || entry.id <= expect.id {
        return Err(Break::Inserted(entry.id));
    }
    if entry_hash(entry.id, &entry.prev_hash, &entry.entry) != entry.entry_hash {
        return Err(Break::Altered(entry.id));
    }
    *expect = Tail { id: entry.id, hash: entry.entry_hash.clone() };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Stored> {
        let mut tail = Tail { id: 0, hash: GENESIS.into() };
        (1..=n)
            .map(|id| {
                let entry = Entry { user: format!("u{id}"), ..Entry::default() };
                let hash = entry_hash(id, &tail.hash, &entry);
                let stored =
                    Stored { id, entry, prev_hash: tail.hash.clone(), entry_hash: hash.clone() };
                tail = Tail { id, hash };
                stored
            })
            .collect()
    }

    fn verify(entries: &[Stored]) -> Result<(), Break> {
        let mut expect = Tail { id: 0, hash: GENESIS.into() };
        entries.iter().try_for_each(|e| check(&mut expect, e))
    }

    #[test]
    fn a_whole_chain_verifies_and_each_tamper_is_named() {
        let good = chain(4);
        assert_eq!(verify(&good), Ok(()));
        let mut altered = good.clone();
        altered[2].entry.user = "mallory".into();
        assert_eq!(verify(&altered), Err(Break::Altered(3)));
        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(verify(&removed), Err(Break::Removed { missing: 2, next: 3 }));
        let mut inserted = good.clone();
        let mut forged = good[1].clone();
        forged.entry.user = "mallory".into();
        forged.prev_hash = "f".repeat(64);
        forged.entry_hash = entry_hash(2, &forged.prev_hash, &forged.entry);
        inserted[1] = forged;
        assert_eq!(verify(&inserted), Err(Break::Inserted(2)));
    }
}
