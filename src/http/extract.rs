//! Extractors: the signed-in [`Session`], and bodies that fail in our error
//! shape rather than the framework's.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The credential header: `Authorization`, or `Authentication` as the
/// CloudIO docs' header tables name it.
pub fn credential_header(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .or_else(|| headers.get("authentication"))
        .map(|v| v.as_bytes())
}

/// The CSRF token: `?csrf=` as in the docs, or the `X-CSRF-Token` header.
fn csrf_token(parts: &Parts) -> Option<String> {
    let from_query = parts.uri.query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
    });
    from_query.or_else(|| {
        parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned)
    })
}

/// A signed-in caller: a valid Bearer JWT, its session live, and its CSRF
/// token. Every signed-in route takes this.
#[derive(Debug, Clone)]
pub struct Session(pub Caller);

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let csrf = csrf_token(parts);
        let caller =
            state.auth().authenticate(credential_header(&parts.headers), csrf.as_deref()).await?;
        Ok(Self(caller))
    }
}

/// The raw body, with a too-large body reported in our shape.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state).await.map(Self).map_err(body_error)
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge("The request body is too large: send less.".into())
    } else {
        ApiError::Invalid("The request body could not be read.".into())
    }
}
