//! What a caller may see of the catalog (design §1.5): the datasources its
//! roles grant, with the operations granted and the attributes as it sees
//! them. `GET /v1/datasources` and the signed-in OpenAPI document are both
//! built from [`Catalog::visible`], so they cannot disagree with each other.
//!
//! The view comes from the same [`Catalog::authorize`] as every request, so
//! an attribute list on a grant narrows it here too.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Attribute, Catalog, Datasource};
use crate::auth::Principal;
use crate::config::Operation;

/// One datasource as one caller may use it.
#[derive(Clone, Debug)]
pub struct Visible {
    pub datasource: Arc<Datasource>,
    /// The operations the caller's roles grant together (never empty).
    pub operations: BTreeSet<Operation>,
    /// Indexes into `datasource.attributes` of what the caller may see, in
    /// catalog order.
    attributes: Vec<usize>,
}

impl Visible {
    /// The datasource's name.
    pub fn name(&self) -> &str {
        &self.datasource.name
    }

    /// The attributes the caller sees, in catalog order (WHO last).
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().map(|&i| &self.datasource.attributes[i])
    }
}

impl Catalog {
    /// Every datasource that one of `principal`'s roles grants, in name
    /// order, with the attributes the caller sees under one operation or
    /// another; nothing about the others.
    pub fn visible(&self, principal: &Principal) -> Vec<Visible> {
        self.datasources
            .keys()
            .filter_map(|name| {
                let grant = self.authorize(principal, name, &[]).ok()?;
                let ops: Vec<Operation> = grant.operations.iter().copied().collect();
                let grant = self.authorize(principal, name, &ops).ok()?;
                let attributes = (0..grant.ds.attributes.len())
                    .filter(|&i| ops.iter().any(|&op| grant.sees(op, i)))
                    .collect();
                Some(Visible { datasource: grant.ds, operations: grant.operations, attributes })
            })
            .collect()
    }
}
