//! `GET /v1/datasources` (design §1.5): the datasources the caller may use,
//! each with its operations and its attributes as the caller sees them.
//! Nothing about the others.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::extract::Session;
use crate::catalog::Visible;
use crate::config::Operation;

/// The body of `GET /v1/datasources`.
#[derive(Debug, Serialize)]
pub struct DatasourcesBody {
    pub datasources: Vec<DatasourceBody>,
    pub status: &'static str,
}

/// One datasource the caller may use.
#[derive(Debug, Serialize)]
pub struct DatasourceBody {
    pub name: String,
    /// `query`, `insert`, `update`, `delete`: those granted.
    pub operations: Vec<String>,
    pub attributes: Vec<AttributeBody>,
}

/// One attribute, as the caller sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeBody {
    pub code: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub primary_key: bool,
    pub required: bool,
    pub updatable: bool,
}

impl From<&Visible> for DatasourceBody {
    fn from(ds: &Visible) -> Self {
        Self {
            name: ds.name().to_owned(),
            operations: ds.operations.iter().map(Operation::to_string).collect(),
            attributes: ds
                .attributes()
                .map(|a| AttributeBody {
                    code: a.code.clone(),
                    kind: a.kind.name(),
                    primary_key: a.primary_key,
                    required: a.required,
                    updatable: a.updatable,
                })
                .collect(),
        }
    }
}

/// `GET /v1/datasources`.
pub async fn datasources(
    State(state): State<AppState>,
    Session(principal): Session,
) -> Json<DatasourcesBody> {
    let datasources = state.catalog.visible(&principal).iter().map(DatasourceBody::from).collect();
    Json(DatasourcesBody { datasources, status: "OK" })
}
