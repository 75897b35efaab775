//! `POST /v1/api`: query and post (design §1.4). Parse the body, authorize
//! every alias against the caller's grants, plan, execute in one
//! transaction, render.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{Body, Session};
use crate::clock::iso8601;
use crate::error::ApiError;
use crate::query;

/// `POST /v1/api?csrf=...`: a body keyed by aliases, each a query or a post.
pub async fn api(
    State(state): State<AppState>,
    Session(principal): Session,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let request = query::parse(&body, state.auth.config.max_limit)?;
    let mut sources = Vec::with_capacity(request.aliases.len());
    for alias in &request.aliases {
        let mut granted = None;
        for op in alias.operations() {
            granted = Some(state.catalog.require(&principal, &alias.ds, op)?);
        }
        let ds = granted
            .ok_or_else(|| ApiError::Invalid(format!("Alias {}: nothing to do.", alias.alias)))?;
        sources.push(Arc::clone(ds));
    }
    let plan = query::plan(request, sources)?;
    let stamp =
        query::Stamp { user: principal.user_name.clone(), now: iso8601(state.auth.clock.now()) };
    let body = query::execute(&state.auth.store, &plan, &stamp).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
