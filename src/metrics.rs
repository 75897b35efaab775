//! One server's Prometheus metrics (design §1.5): a registry that lives in
//! the application state, never in a process global, so several servers
//! in one process (the tests) count apart. No label holds a user name, a
//! token or an address: routes are templates, methods a fixed set.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use prometheus_text::CONTENT_TYPE;

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The gauges' values, read when `/metrics` is scraped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    pub hash_queue: usize,
    pub gate_entries: usize,
    pub pool_size: usize,
    pub pool_idle: usize,
    /// Whether the change listener is proven alive (design §4.3).
    pub listener_healthy: bool,
    /// Sessions the gate has read from the database so far.
    pub gate_reads: u64,
}

/// One server's metrics: the registry and handles to what it holds.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    sign_ins: Family<OutcomeLabels, Counter>,
    hash_queue: Gauge,
    gate_entries: Gauge,
    pool_size: Gauge,
    pool_idle: Gauge,
    listener_healthy: Gauge,
    /// Caught up with the gate's own count at each render, one at a time.
    gate_reads: std::sync::Mutex<Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric of the README's "Observability"
    /// section, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by matched route, method and status",
            requests.clone(),
        );
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by matched route",
            latency.clone(),
        );
        let sign_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Sign-ins at POST /v1/auth by outcome: ok, denied, throttled, error",
            sign_ins.clone(),
        );
        // Every outcome shows from the start, at zero.
        for outcome in ["ok", "denied", "throttled", "error"] {
            let _ = sign_ins.get_or_create_owned(&OutcomeLabels { outcome });
        }
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let hash_queue = gauge(
            &mut registry,
            "password_hash_queue_depth",
            "Password checks waiting for a hashing thread",
        );
        let gate_entries =
            gauge(&mut registry, "gate_cache_entries", "Verified tokens the gate remembers");
        let pool_size =
            gauge(&mut registry, "db_pool_connections", "Database connections held, busy or idle");
        let pool_idle =
            gauge(&mut registry, "db_pool_idle_connections", "Database connections held idle");
        let listener_healthy = gauge(
            &mut registry,
            "change_listener_healthy",
            "1 while the change listener hears its own heartbeat (the gate answers from memory), else 0",
        );
        let gate_reads = Counter::default();
        registry.register(
            "gate_session_reads",
            "Sessions the gate read from the database (first use, notice, fallback re-read, idle check)",
            gate_reads.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            sign_ins,
            hash_queue,
            gate_entries,
            pool_size,
            pool_idle,
            listener_healthy,
            gate_reads: std::sync::Mutex::new(gate_reads),
        }
    }

    /// Counts one answered request; `method` is a bounded label.
    pub fn observe(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let labels = RequestLabels { route: route.to_owned(), method, status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&RouteLabels { route: labels.route }).observe(seconds);
        if route == "/v1/auth" && method == "POST" {
            self.sign_ins.get_or_create(&OutcomeLabels { outcome: sign_in_outcome(status) }).inc();
        }
    }

    /// The text exposition, with the gauges as read now.
    pub fn render(&self, now: Gauges) -> Result<String, std::fmt::Error> {
        self.hash_queue.set(to_i64(now.hash_queue));
        self.gate_entries.set(to_i64(now.gate_entries));
        self.pool_size.set(to_i64(now.pool_size));
        self.pool_idle.set(to_i64(now.pool_idle));
        self.listener_healthy.set(i64::from(now.listener_healthy));
        // The gate counts; the counter catches up with it here.
        if let Ok(reads) = self.gate_reads.lock() {
            reads.inc_by(now.gate_reads.saturating_sub(reads.get()));
        }
        let mut text = String::with_capacity(4096);
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The outcome of a sign-in from its status: 2xx `ok`, 429 `throttled`,
/// other 4xx `denied` (wrong credentials, a malformed header or body), 5xx
/// `error` (the database or the hashing queue could not serve it).
fn sign_in_outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        429 => "throttled",
        500.. => "error",
        _ => "denied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_statuses_map_to_outcomes() {
        assert_eq!(sign_in_outcome(200), "ok");
        assert_eq!(sign_in_outcome(403), "denied");
        assert_eq!(sign_in_outcome(400), "denied");
        assert_eq!(sign_in_outcome(429), "throttled");
        assert_eq!(sign_in_outcome(503), "error");
        assert_eq!(sign_in_outcome(500), "error");
    }

    #[test]
    fn counters_are_encoded_by_route_method_and_status() {
        let metrics = Metrics::new();
        metrics.observe("/v1/auth", "POST", 403, 0.02);
        metrics.observe("/v1/auth", "POST", 403, 0.02);
        let text = metrics.render(Gauges::default()).unwrap();
        assert!(
            text.contains(
                "tessera_http_requests_total{route=\"/v1/auth\",method=\"POST\",status=\"403\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("tessera_sign_ins_total{outcome=\"denied\"} 2"), "{text}");
        assert!(text.contains("tessera_sign_ins_total{outcome=\"ok\"} 0"), "{text}");
        assert!(text.contains("tessera_http_request_duration_seconds_count{route=\"/v1/auth\"} 2"));
    }
}
