//! Connection hygiene (design §4.8, issue 10) over real sockets: a slow head
//! or body is cut off on time, idle keep-alive connections close, at most
//! `max_connections` are served at once, idle sockets do not stop other
//! clients, and the hygiene headers are on every answer.

use std::time::{Duration, Instant};

use tessera::config::{Config, HumanDuration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn short_deadlines(config: &mut Config) {
    config.network.header_timeout = HumanDuration(Duration::from_secs(1));
    config.network.request_timeout = HumanDuration(Duration::from_secs(1));
    config.network.keep_alive_timeout = HumanDuration(Duration::from_secs(2));
}

/// Reads until the server closes the connection (EOF or reset), within
/// `within`; returns what arrived and how long the close took.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open for {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
}

both_backends!(a_half_sent_head_is_dropped_after_header_timeout, config = short_deadlines);
async fn a_half_sent_head_is_dropped_after_header_timeout(app: TestApp) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (got, took) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert_eq!(got, "", "a half head gets no answer, only a close");
    assert!(took >= Duration::from_millis(900), "closed before header_timeout: {took:?}");
}

both_backends!(a_body_that_stops_arriving_gets_408_and_a_close, config = short_deadlines);
async fn a_body_that_stops_arriving_gets_408_and_a_close(app: TestApp) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /v1/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name";
    stream.write_all(head.as_bytes()).await.unwrap();
    let (got, took) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("request_timeout"), "{got}");
    assert!(got.to_ascii_lowercase().contains("x-request-id:"), "{got}");
    assert!(took >= Duration::from_millis(900), "cut off before request_timeout: {took:?}");
}

both_backends!(
    an_idle_keep_alive_connection_closes_after_keep_alive_timeout,
    config = short_deadlines
);
async fn an_idle_keep_alive_connection_closes_after_keep_alive_timeout(app: TestApp) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (got, _) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // Idle is not a slow head: it lives past header_timeout (1 s), to keep_alive_timeout (2 s).
    assert!(took >= Duration::from_millis(1900), "closed before keep_alive_timeout: {took:?}");
}

both_backends!(a_connection_that_sends_nothing_is_closed_too, config = short_deadlines);
async fn a_connection_that_sends_nothing_is_closed_too(app: TestApp) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let (got, _) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert_eq!(got, "");
}

fn two_connections(config: &mut Config) {
    config.network.max_connections = std::num::NonZeroUsize::new(2).unwrap();
}

both_backends!(past_max_connections_a_client_waits_for_a_free_slot, config = two_connections);
async fn past_max_connections_a_client_waits_for_a_free_slot(app: TestApp) {
    let first = TcpStream::connect(app.addr).await.unwrap();
    let _second = TcpStream::connect(app.addr).await.unwrap();
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served while two were open");
    drop(first);
    let (got, _) = read_until_closed(&mut third, Duration::from_secs(8)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

both_backends!(hundreds_of_idle_connections_do_not_stop_other_clients);
async fn hundreds_of_idle_connections_do_not_stop_other_clients(app: TestApp) {
    app.add_user("ada", "cloudio", "pw", &[]).await;
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        if i % 2 == 0 {
            // Half of them start a head and stall.
            stream.write_all(b"POST /v1/api HTTP/1.1\r\n").await.unwrap();
        }
        idle.push(stream);
    }
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        assert_eq!(app.get("/healthz", &[]).await.status(), 200);
        let signed_in = app.sign_in_ok("ada", "pw").await;
        let status = app.status(&signed_in.jwt, &signed_in.csrf).await;
        assert_eq!(status.status(), 200);
    })
    .await;
    assert!(answered.is_ok(), "300 idle connections stopped other clients");
    drop(idle);
}

both_backends!(hygiene_headers_are_on_every_answer);
async fn hygiene_headers_are_on_every_answer(app: TestApp) {
    for (path, api) in [("/healthz", false), ("/", false), ("/v1/status", true), ("/nope", false)] {
        let response = app.get(path, &[("x-api-key", "anything"), ("X-Application", "x")]).await;
        let headers = response.headers();
        let nosniff: Vec<_> = headers.get_all("x-content-type-options").iter().collect();
        assert_eq!(nosniff, ["nosniff"], "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
        let cache = headers.get("cache-control").map(|v| v.to_str().unwrap().to_owned());
        if api {
            assert_eq!(cache.as_deref(), Some("no-store"), "{path}");
        } else {
            assert_ne!(cache.as_deref(), Some("no-store"), "{path}");
        }
    }
    let signed_in = app.sign_in("nobody", "pw").await;
    assert_eq!(signed_in.headers()["cache-control"], "no-store");
}
