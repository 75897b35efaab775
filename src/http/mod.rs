//! HTTP only: the router, the extractors and the handlers. Everything below
//! this module is free of axum.

mod api;
pub mod client_addr;
mod compression;
mod cors;
mod datasources;
mod extract;
mod handlers;
mod idempotency;
pub mod metrics;
mod openapi;
mod openapi_schemas;
mod playground;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use crate::app::AppState;
use crate::error::ApiError;

pub use openapi::document as openapi_document;

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body.0;
    let metrics_here = state.config.network.metrics_listen.is_none();
    let router = Router::new()
        .route("/v1/auth", post(handlers::sign_in))
        .route("/v1/api", post(api::api))
        .route("/v1/signout", post(handlers::sign_out))
        .route("/v1/status", get(handlers::status))
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/v1/datasources", get(datasources::datasources))
        .route("/v1/openapi.json", get(openapi::openapi))
        .route("/", get(playground::page))
        .route("/playground", get(playground::page))
        .route("/playground.js", get(playground::script))
        .route("/playground.css", get(playground::style))
        .route("/playground.svg", get(playground::icon));
    let router =
        if metrics_here { router.route("/metrics", get(metrics::metrics)) } else { router };
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(Arc::new(max_body), refuse_large_bodies))
        .layer(compression::layer());
    let router = server::request_deadline(router, state.config.network.request_timeout.0);
    cors::apply(router, &state.config.network)
        .layer(middleware::from_fn(request_span))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// The router of the `metrics_listen` address: `GET /metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The header that names a request in the logs and in the answer.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client's request id if it is sane (1 to 64 of `A-Z a-z 0-9 . _ -`),
/// else a new one.
fn request_id(request: &Request) -> HeaderValue {
    let sane = |v: &&HeaderValue| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    };
    match request.headers().get(&REQUEST_ID).filter(sane) {
        Some(id) => id.clone(),
        None => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(HeaderValue::from_static("-")),
    }
}

/// Runs each request inside one span (method, matched route, request id;
/// then status and latency), so every log line of a request, a 5xx's cause
/// included, says where it happened. The answer carries `X-Request-Id` and
/// `X-Content-Type-Options: nosniff`; answers of `/v1/*` carry
/// `Cache-Control: no-store` (design §1.2).
async fn request_span(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = Instant::now();
    let api = request.uri().path().starts_with("/v1/");
    let id = request_id(&request);
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = route.as_deref().unwrap_or("-"),
        id = id.to_str().unwrap_or("-"),
        status = tracing::field::Empty,
        latency_us = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    span.record("latency_us", started.elapsed().as_micros() as u64);
    span.in_scope(|| tracing::debug!("answered"));
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID.clone(), id);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
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
        "No such endpoint. This server has POST /v1/auth, POST /v1/api, GET /v1/status, POST /v1/signout, GET /v1/datasources, GET /v1/openapi.json, GET /.well-known/jwks.json, GET /healthz, GET /readyz and the Playground at GET /; /v1/openapi.json describes them all."
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
            Self::Unavailable(_) | Self::Busy(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

/// The peer's address, as axum's `ConnectInfo` gives it.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;
