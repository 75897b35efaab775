//! The HTTP/1.1 server loop (design §4.8): hyper's connection builder with a
//! timer, a cap on connections served at once, and the deadlines of
//! `[network]`.
//!
//! hyper enforces a header read timeout, but it runs the same timer while a
//! keep-alive connection waits for its next request, so "idle" and "slow head"
//! cannot have different limits there (hyper #3305, #3828). Each connection
//! therefore keeps a small [`Timeline`] of its own: bytes arriving while no
//! request is in flight start the head's clock (`header_timeout`, then the
//! socket is dropped); a connection with nothing in flight and nothing
//! arriving is closed gracefully after `keep_alive_timeout`. The whole
//! request, body included, is bounded by tower-http's timeout layer
//! (`request_timeout`, answered 408; hyper then closes the connection since
//! the body was not read to its end). hyper's own head timer stays on as a
//! backstop at the longer of the two deadlines.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::NetworkConfig;
use crate::error::ErrorBody;

/// The deadlines one connection lives by.
#[derive(Clone, Copy, Debug)]
struct Limits {
    header: Duration,
    keep_alive: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets every
/// connection finish its request in flight and waits for them all.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    network: &NetworkConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits =
        Limits { header: network.header_timeout.0, keep_alive: network.keep_alive_timeout.0 };
    let slots = u32::try_from(network.max_connections.get()).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // Past `max_connections`, new clients wait in the listener's backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            connection(stream, peer, router, limits, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends: taking them all waits for all.
    let _all = permits.acquire_many(slots).await;
    Ok(())
}

/// An accept error: the peer's own failures are skipped; running out of file
/// descriptors or memory is logged and waited out, as axum's `serve` does.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(error = %e, "cannot accept a connection (raise the file descriptor limit?)");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection, from accept to close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let timeline = Arc::new(Timeline::new());
    let io = TokioIo::new(Watched { stream, timeline: timeline.clone() });
    let service = {
        let timeline = timeline.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = InFlight::begin(timeline.clone());
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header.max(limits.keep_alive))
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut closing = false;
    loop {
        let (at, _) = timeline.next_deadline(limits, closing);
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, peer = %peer, "connection ended");
                }
                return;
            }
            () = tokio::time::sleep_until(at) => {
                // Look again: a read or a request may have moved the deadline.
                let (at, verdict) = timeline.next_deadline(limits, closing);
                if at <= Instant::now() {
                    match verdict {
                        Verdict::Drop => {
                            tracing::debug!(peer = %peer, "request head too slow: connection dropped");
                            return;
                        }
                        Verdict::Close => {
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                        Verdict::Wait => {}
                    }
                }
            }
            () = timeline.changed.notified() => {}
            _ = stopping.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// What a connection's clock says to do at its next deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing due: look again when something changes.
    Wait,
    /// A request head is late: drop the socket.
    Drop,
    /// Idle past `keep_alive_timeout`: close gracefully.
    Close,
}

/// When a connection last changed state, as its reads and its requests report.
struct Timeline {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    in_flight: usize,
    idle_since: Instant,
    head_since: Option<Instant>,
}

impl Timeline {
    fn new() -> Self {
        let state = State { in_flight: 0, idle_since: Instant::now(), head_since: None };
        Self { state: Mutex::new(state), changed: Notify::new() }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }

    /// Bytes arrived: with no request in flight, they start a request head.
    fn read(&self) {
        let started = self.with(|s| {
            let start = s.in_flight == 0 && s.head_since.is_none();
            if start {
                s.head_since = Some(Instant::now());
            }
            start
        });
        if started {
            self.changed.notify_one();
        }
    }

    /// The next deadline and what it means. While a request is in flight the
    /// request timeout bounds it, so the connection only waits.
    fn next_deadline(&self, limits: Limits, closing: bool) -> (Instant, Verdict) {
        let far = Instant::now() + limits.header.max(limits.keep_alive);
        self.with(|s| match (s.in_flight, s.head_since) {
            (0, Some(since)) => (since + limits.header, Verdict::Drop),
            (0, None) if !closing => (s.idle_since + limits.keep_alive, Verdict::Close),
            _ => (far, Verdict::Wait),
        })
    }
}

/// A request between the end of its head and the end of its handler.
struct InFlight(Arc<Timeline>);

impl InFlight {
    fn begin(timeline: Arc<Timeline>) -> Self {
        timeline.with(|s| {
            s.in_flight += 1;
            s.head_since = None;
        });
        timeline.changed.notify_one();
        Self(timeline)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.idle_since = Instant::now();
        });
        self.0.changed.notify_one();
    }
}

/// The socket, reporting each read to the connection's [`Timeline`].
struct Watched {
    stream: TcpStream,
    timeline: Arc<Timeline>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.timeline.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Bounds each request, body included, by `request_timeout` (tower-http's
/// timeout layer), and gives its bare 408 the wire's error body.
pub(crate) fn request_deadline<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limit: Duration,
) -> Router<S> {
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limit,
        ))
        .layer(axum::middleware::map_response(move |response: Response| async move {
            if response.status() != StatusCode::REQUEST_TIMEOUT
                || response.headers().contains_key(header::CONTENT_TYPE)
            {
                return response;
            }
            let body = ErrorBody {
                code: 408,
                status: "ERROR".into(),
                title: "Request Timeout".into(),
                message: format!(
                    "The request was not received and answered within request_timeout ({} ms): send the whole request at once, and page large queries.",
                    limit.as_millis()
                ),
            };
            let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }))
}
