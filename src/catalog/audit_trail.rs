//! The system datasource `AuditTrail` (design §4.6): the data-change audit
//! table seen through the ordinary pipeline, so a role granted
//! `AuditTrail = ["query"]` reads it with filters, sort, paging and counts,
//! scoped to its org like any org-scoped datasource. It is read-only: a grant
//! of any other operation is refused when the config loads, and a post is 403.

use std::collections::HashMap;

use super::{AttrType, Attribute, Datasource, ORG_UID};

/// The name clients use.
pub const AUDIT_TRAIL: &str = "AuditTrail";

/// The table the trail lives in (migration 0015).
pub const AUDIT_TABLE: &str = "audit_trail";

/// The datasource over the audit table: every attribute read-only, no WHO
/// attributes (the entry's own `userName` and `auditTime` say who and when).
pub fn datasource() -> Datasource {
    let attributes: Vec<Attribute> = [
        ("auditId", "audit_id", AttrType::Integer),
        ("auditTime", "audit_time", AttrType::DateTime),
        ("userName", "user_name", AttrType::UserId),
        (ORG_UID, "org_uid", AttrType::String),
        ("datasource", "datasource", AttrType::String),
        ("operation", "operation", AttrType::String),
        ("rowKey", "row_key", AttrType::String),
        ("oldValues", "old_values", AttrType::String),
        ("newValues", "new_values", AttrType::String),
    ]
    .into_iter()
    .map(|(code, column, kind)| Attribute {
        code: code.into(),
        column: column.into(),
        kind,
        primary_key: code == "auditId",
        generated: false,
        required: false,
        updatable: false,
        default: None,
        who: None,
    })
    .collect();
    let by_code =
        attributes.iter().enumerate().map(|(i, a)| (a.code.clone(), i)).collect::<HashMap<_, _>>();
    let org = attributes.iter().position(|a| a.code == ORG_UID);
    Datasource {
        name: AUDIT_TRAIL.into(),
        table: AUDIT_TABLE.into(),
        attributes,
        org,
        audit: false,
        indexes: Vec::new(),
        by_code,
    }
}
