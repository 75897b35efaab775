//! CORS for browsers on the origins of `[network] cors_origins` (design
//! §1.2), with tower-http's `CorsLayer`. A request from a listed origin (any
//! origin with `"*"`) goes through the layer: a preflight is answered with
//! the methods and headers clients send, an actual request gets
//! `Access-Control-Allow-Origin` and the exposed headers. A request from any
//! other origin, or with no `Origin`, passes by the layer untouched, so it
//! carries no CORS header at all (a preflight from it is then an `OPTIONS`
//! that the API does not serve: 405).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::NetworkConfig;

/// The request headers CloudIO clients send (design §1.2).
const ALLOWED_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    HeaderName::from_static("authentication"),
    HeaderName::from_static("x-csrf-token"),
    header::CONTENT_TYPE,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("x-application"),
    HeaderName::from_static("x-api-key"),
];

/// The response headers a browser script may read besides the simple ones.
const EXPOSED_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-request-id"),
    header::RETRY_AFTER,
    HeaderName::from_static("idempotency-replayed"),
];

/// How long a browser may keep a preflight answer (browsers cap it lower).
const MAX_AGE: Duration = Duration::from_secs(600);

/// The origins and the layer that answers them.
struct Cors {
    /// `None` for `"*"`: every origin.
    origins: Option<Vec<HeaderValue>>,
    layer: CorsLayer,
}

impl Cors {
    fn allows(&self, origin: &HeaderValue) -> bool {
        self.origins.as_ref().is_none_or(|list| list.contains(origin))
    }
}

/// `router` with CORS for the configured origins; as it is when there are
/// none. Generic over the router's state, so it can sit at any place in the
/// layer stack.
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    network: &NetworkConfig,
) -> Router<S> {
    let Some(cors) = build(&network.cors_origins) else { return router };
    router.layer(middleware::from_fn_with_state(Arc::new(cors), cors_middleware))
}

fn build(configured: &[String]) -> Option<Cors> {
    if configured.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(MAX_AGE);
    if configured.iter().any(|origin| origin == "*") {
        return Some(Cors { origins: None, layer: layer.allow_origin(AllowOrigin::any()) });
    }
    // Config parsing made each entry a visible-ASCII origin; one that still
    // is not a header value could never match a browser's `Origin` anyway.
    let origins: Vec<HeaderValue> =
        configured.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let layer = layer.allow_origin(AllowOrigin::list(origins.clone()));
    Some(Cors { origins: Some(origins), layer })
}

async fn cors_middleware(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let listed = request.headers().get(header::ORIGIN).is_some_and(|o| cors.allows(o));
    if !listed {
        let mut response = next.run(request).await;
        if cors.origins.is_some() {
            // The answer differs by origin: caches must keep them apart.
            response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
        }
        return response;
    }
    match cors.layer.layer(next).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
