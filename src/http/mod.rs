//! HTTP only: the router, the extractors and the handlers. Everything below
//! this module is free of axum.

mod api;
pub mod client_addr;
mod extract;
mod handlers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::error::ApiError;

pub use extract::AppJson;

/// Everything the handlers need. Cloned per request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
pub struct Shared {
    pub auth: Auth,
    pub catalog: Arc<Catalog>,
}

impl AppState {
    /// The state of a server with this auth service and catalog.
    pub fn new(auth: Auth, catalog: Catalog) -> Self {
        Self(Arc::new(Shared { auth, catalog: Arc::new(catalog) }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let max_body = state.auth.config.max_body.0;
    Router::new()
        .route("/v1/auth", post(handlers::sign_in))
        .route("/v1/api", post(api::api))
        .route("/v1/signout", post(handlers::sign_out))
        .route("/v1/status", get(handlers::status))
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(Arc::new(max_body), refuse_large_bodies))
        .with_state(state)
}

/// Refuses a declared body larger than `max_body` before reading any of it;
/// bodies without a length are cut off by `DefaultBodyLimit` as they stream.
async fn refuse_large_bodies(
    State(max): State<Arc<usize>>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > *max as u64) {
        return too_large(*max).into_response();
    }
    next.run(request).await
}

pub(crate) fn too_large(max: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "The request body is larger than the limit of {max} bytes: send less."
    ))
}

async fn not_found() -> ApiError {
    ApiError::NotFound(
        "No such endpoint. This server has POST /v1/auth, POST /v1/api, GET /v1/status, POST /v1/signout, GET /.well-known/jwks.json, GET /healthz and GET /readyz."
            .into(),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("This endpoint does not accept that HTTP method.".into())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, _) = self.status_and_title();
        if code >= 500 {
            // The one place a failure's cause is logged; the body says nothing of it.
            let cause = match &self {
                Self::Internal(e) | Self::Unavailable(e) => format!("{e:#}"),
                _ => String::new(),
            };
            tracing::error!(status = code, error = %cause, "request failed");
        }
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

/// The peer's address, as axum's `ConnectInfo` gives it.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;
