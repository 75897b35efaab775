//! `POST /v1/api`: query and post (design §1.4), through the one pipeline
//! of [`crate::query`], at most once per `Idempotency-Key` (see
//! [`super::idempotency`]).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{Body, Session};
use super::idempotency;
use crate::error::ApiError;
use crate::query;

/// `POST /v1/api?csrf=...`: a body keyed by aliases, each a query or a post.
pub async fn api(
    State(state): State<AppState>,
    Session(caller): Session,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let run = query::run(state.query_env(), &caller, &body, state.clock.now());
    match idempotency::key(&headers)? {
        Some(key) => idempotency::once(&state, &caller.user_name, &key, &body, run).await,
        None => Ok(([(header::CONTENT_TYPE, "application/json")], run.await?).into_response()),
    }
}
