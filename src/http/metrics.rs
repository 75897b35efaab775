//! `GET /metrics` (design §1.5): requests by matched route, method and
//! status, a latency histogram by route, sign-ins by outcome, and gauges read
//! at scrape time (hashing queue, gate cache, database pool), in the
//! Prometheus text format (0.0.4).
//!
//! The registry lives in the application state, not in a process global, so
//! several servers in one process (as the tests run them) count apart.
//! Labels hold only route templates, methods, status codes and outcomes:
//! never a user name, a token or an address.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::metrics::{CONTENT_TYPE, Gauges, UNMATCHED};

/// A method as a label: the standard ones by name, anything else `other`,
/// so a client cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Middleware: counts every request under its route template (never its
/// concrete path) and times it.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let status = response.status().as_u16();
    state.metrics.observe(route, method_label(&method), status, started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = Gauges {
        hash_queue: state.hasher.queue_depth(),
        gate_entries: state.gate.len(),
        pool_size: state.store.pool_size() as usize,
        pool_idle: state.store.pool_idle(),
        listener_healthy: state.gate.listener.healthy(state.clock.now()),
        gate_reads: state.gate.reads(),
    };
    let text = state
        .metrics
        .render(now)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("could not encode the metrics")))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::GET), "GET");
    }
}
