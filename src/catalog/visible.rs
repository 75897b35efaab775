//! What a caller may see of the catalog (design §1.5): the datasources its
//! roles grant, with the operations granted and the attributes as it sees
//! them. `GET /v1/datasources` and the signed-in OpenAPI document are both
//! built from [`Catalog::visible`], so they cannot disagree with each other.
//!
//! Today a grant is a set of operations, so a caller sees every attribute of
//! a granted datasource; row filters and attribute lists narrow this view
//! here once grants carry them.

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
    /// order; nothing about the others.
    pub fn visible(&self, principal: &Principal) -> Vec<Visible> {
        self.datasources
            .iter()
            .filter_map(|(name, ds)| {
                let operations: BTreeSet<Operation> = principal
                    .roles
                    .iter()
                    .filter_map(|role| self.roles.get(role)?.get(name))
                    .flatten()
                    .copied()
                    .collect();
                (!operations.is_empty()).then(|| Visible {
                    datasource: Arc::clone(ds),
                    operations,
                    attributes: (0..ds.attributes.len()).collect(),
                })
            })
            .collect()
    }
}
