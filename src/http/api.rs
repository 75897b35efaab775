//! `POST /v1/api`: query and post (design §1.4), through the one pipeline
//! of [`crate::query`].

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{Body, Session};
use crate::error::ApiError;
use crate::query;

/// `POST /v1/api?csrf=...`: a body keyed by aliases, each a query or a post.
pub async fn api(
    State(state): State<AppState>,
    Session(caller): Session,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let body = query::run(state.query_env(), &caller, &body, state.clock.now()).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
