//! The audit entry of one written row (design §4.6): who, when, which row,
//! and the old and new values of the attributes that changed, as JSON
//! objects typed as the API renders them. Entries are appended to the hash
//! chain in the request's own transaction (`store::audit`), so a row and its
//! entry commit or roll back together.

use super::plan::Stamp;
use super::render::{write_cell, write_str};
use crate::catalog::Datasource;
pub use crate::store::audit::tail;
use crate::store::audit::{self, Entry, Tail};
use crate::store::exec::{Cell, Db};

/// What a written row was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Insert,
    Update,
    Delete,
}

/// The entry for one row written by `stamp`'s caller: `old` is every
/// attribute before (update, delete), `new` every attribute after (insert,
/// update), both in attribute order. WHO attributes and the org are left
/// out of the values: the entry says who, when and which org itself.
pub fn entry(
    ds: &Datasource,
    stamp: &Stamp,
    change: Change,
    old: Option<&[Cell<'_>]>,
    new: Option<&[Cell<'_>]>,
) -> Entry {
    let keyed = new.or(old).unwrap_or_default();
    let keys: Vec<usize> =
        (0..ds.attributes.len()).filter(|&i| ds.attributes[i].primary_key).collect();
    let plain = |i: &usize| ds.attributes[*i].who.is_none() && Some(*i) != ds.org;
    fn cell<'a>(cells: Option<&'a [Cell<'_>]>, i: usize) -> Option<&'a str> {
        cells.and_then(|c| c.get(i)).and_then(|c| c.as_deref())
    }
    let changed: Vec<usize> = (0..ds.attributes.len())
        .filter(plain)
        .filter(|&i| match change {
            Change::Insert => cell(new, i).is_some(),
            Change::Delete => cell(old, i).is_some(),
            Change::Update => cell(old, i) != cell(new, i),
        })
        .collect();
    let values = |cells: Option<&[Cell<'_>]>| cells.map(|c| object(ds, &changed, c));
    Entry {
        time: stamp.now.clone(),
        user: stamp.user.clone(),
        org: stamp.org.clone(),
        session: stamp.session.clone(),
        datasource: ds.name.clone(),
        operation: match change {
            Change::Insert => "insert",
            Change::Update => "update",
            Change::Delete => "delete",
        }
        .into(),
        row_key: object(ds, &keys, keyed),
        old_values: values(old),
        new_values: values(new),
    }
}

/// `{"code": value, ...}` of the attributes `columns` of a row.
fn object(ds: &Datasource, columns: &[usize], cells: &[Cell<'_>]) -> String {
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    for (n, &i) in columns.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let attr = &ds.attributes[i];
        write_str(&mut out, &attr.code);
        out.push(b':');
        write_cell(&mut out, attr.kind, cells.get(i).and_then(|c| c.as_deref()));
    }
    out.push(b'}');
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `entry` to the chain; if the transaction has not yet taken the
/// chain's lock and read its end into `tail`, this does it first.
pub async fn record(
    db: &mut Db<'_>,
    tail: &mut Option<Tail>,
    entry: &Entry,
) -> Result<(), sqlx::Error> {
    let tail = match tail {
        Some(tail) => tail,
        None => tail.insert(audit::tail(db).await?),
    };
    audit::append(db, tail, entry).await
}
