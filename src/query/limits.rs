//! The limits of one `POST /v1/api` body, in one place: the parser and the
//! binder both enforce them, and docs/api.md lists them.

/// Most aliases in one body.
pub const MAX_ALIASES: usize = 64;
/// Most post rows in one body (all aliases together).
pub const MAX_ROWS: usize = 1000;
/// Deepest nesting of filter groups.
pub const MAX_DEPTH: usize = 16;
/// Most filter nodes (groups and conditions) in one query.
pub const MAX_FILTER_NODES: usize = 256;
/// Most values in one filter list (`in`, `hasAny`, ...).
pub const MAX_LIST: usize = 1000;
/// Most values one query's filter may bind.
pub const MAX_FILTER_VALUES: usize = 5000;
/// The largest `offset`.
pub const MAX_OFFSET: u64 = i64::MAX as u64;
/// Most entries of one `aggregateList`.
pub const MAX_AGGREGATES: usize = 64;
/// Most codes in one `groupByAttributeCodeList`.
pub const MAX_GROUP_BY: usize = 64;
/// The largest answer body, in bytes; past it the request is refused and
/// the client is told to page.
pub const MAX_ANSWER: usize = 16 << 20;
