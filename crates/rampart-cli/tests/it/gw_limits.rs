//! Limits (F-LIMITS): body limits on streamed (chunked) bodies, header size and count
//! (431 in the envelope), slowloris clients cut at `header_read_timeout` while others
//! are served, the request deadline, and the connection cap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_store::Backend;
use rampart_testkit::client::client;
use rampart_testkit::raw::{self, RawConnection};
use rampart_testkit::upstream::Upstream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::gw_routes::{raw_exchange, upstream_toml};
use crate::support::TestServer;

fn public_route(upstream: &Upstream, route_extra: &str) -> String {
    format!(
        "{}\n[[routes]]\nname = \"p\"\npath_prefix = \"/p\"\nupstream = \"u\"\nauth = \"public\"\n{route_extra}\n",
        upstream_toml("u", upstream, "")
    )
}

async fn server(extra: &str, vars: &[(&str, &str)]) -> TestServer {
    TestServer::with_config_env(Backend::Sqlite, extra, vars).await
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_get_413_before_they_are_read() {
    let upstream = Upstream::start().await;
    let server = server(&public_route(&upstream, "body_limit = \"64KiB\""), &[]).await;
    const TOTAL: u64 = 64 * 1024 * 1024;
    const CHUNK: usize = 16 * 1024;

    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    let sender = tokio::spawn(async move {
        let head = "POST /p/upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n";
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{CHUNK:x}\r\n{}\r\n", "x".repeat(CHUNK));
        while counter.load(Ordering::SeqCst) < TOTAL {
            if writer.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            counter.fetch_add(CHUNK as u64, Ordering::SeqCst);
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    let status_line = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buffer[..n]),
            }
            if response.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&response)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
    .await
    .expect("no answer while the body was still being sent");
    let sent_when_answered = written.load(Ordering::SeqCst);
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line:?}");
    assert!(
        sent_when_answered < TOTAL,
        "413 came only after the whole body ({sent_when_answered} bytes)"
    );
    sender.abort();
    // The upstream received the body cut off at the limit, never the whole of it.
    upstream.wait_for_requests(1).await;
    let seen = upstream.last();
    assert!(!seen.body_complete, "{seen:?}");
    assert!(seen.body_len <= 64 * 1024, "{}", seen.body_len);
    eprintln!(
        "chunked upload over a 64 KiB limit: 413 after {} KiB sent by the client; the upstream got {} bytes, cut",
        sent_when_answered / 1024,
        seen.body_len
    );

    // A declared Content-Length over the limit is refused before any upstream contact.
    let before = upstream.seen().len();
    let response = raw_exchange(
        server.addr,
        b"POST /p/declared HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1048576\r\n\r\nabc",
    )
    .await
    .unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(response.error_code().as_deref(), Some("payload_too_large"));
    // A first chunk already over the limit never opens an upstream request either.
    let big = format!(
        "POST /p/first HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        70 * 1024,
        "y".repeat(70 * 1024)
    );
    let response = raw_exchange(server.addr, big.as_bytes()).await.unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(upstream.seen().len(), before);
    // Within the limit, chunked or not, it passes whole.
    let ok = client()
        .post(server.url("/p/small"))
        .body(reqwest::Body::wrap_stream(
            rampart_testkit::upstream::generated(60 * 1024),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let seen = upstream.last();
    assert!(seen.body_complete && seen.body_len == 60 * 1024);
    server.stop().await;
}

#[tokio::test]
async fn oversized_heads_get_431_in_the_envelope() {
    let upstream = Upstream::start().await;
    let server = server(
        &public_route(&upstream, ""),
        &[
            ("RAMPART_SERVER_MAX_HEADERS", "20"),
            ("RAMPART_SERVER_MAX_HEADER_BYTES", "4KiB"),
        ],
    )
    .await;
    let many = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let large = |bytes: usize| format!("X-Large: {}\r\n", "a".repeat(bytes));
    // Over the configured limits: refused in the envelope, on the gateway and on
    // Rampart's own endpoints alike.
    for (target, extra) in [
        ("/p/x", many(25)),
        ("/p/x", large(5 * 1024)),
        ("/healthz", many(25)),
        ("/api/v1/auth/whoami", large(5 * 1024)),
    ] {
        let response = raw_exchange(server.addr, &raw::get(target, "gw.test", &extra))
            .await
            .unwrap();
        assert_eq!(response.status, 431, "{target}");
        assert_eq!(
            response.error_code().as_deref(),
            Some("headers_too_large"),
            "{target}"
        );
        assert!(response.header("x-request-id").is_some());
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("connection"), Some("close"));
    }
    // Past twice the limits the HTTP parser stops reading and answers 431 itself,
    // without a body (documented in docs/life-of-a-request.md).
    for extra in [many(100), large(20 * 1024)] {
        let response = raw_exchange(server.addr, &raw::get("/p/x", "gw.test", &extra))
            .await
            .unwrap();
        assert_eq!(response.status, 431);
    }
    // Within the limits: served.
    let response = raw_exchange(server.addr, &raw::get("/p/x", "gw.test", &many(15)))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(upstream.seen().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_at_the_header_timeout_while_others_are_served() {
    let upstream = Upstream::start().await;
    let server = server(
        &public_route(&upstream, ""),
        &[("RAMPART_SERVER_HEADER_READ_TIMEOUT", "1s")],
    )
    .await;
    let addr = server.addr;
    // The attacker: a request head trickled one byte every 100 ms (6 s in all).
    let slow = tokio::spawn(async move {
        let head =
            b"GET /p/slow HTTP/1.1\r\nHost: gw.test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        for byte in head {
            ticks.tick().await;
            if stream.write_all(&[*byte]).await.is_err() {
                return (started.elapsed(), false);
            }
            // The server may have closed already: a read returns at once then.
            let mut probe = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
                Ok(Ok(0) | Err(_)) => return (started.elapsed(), false),
                Ok(Ok(_)) => return (started.elapsed(), true),
                Err(_) => {}
            }
        }
        (started.elapsed(), true)
    });
    // Everyone else meanwhile: served at once.
    let http = client();
    for i in 0..10 {
        let started = Instant::now();
        let response = http
            .get(format!("http://{addr}/p/fast{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // Served at once (the bound is loose for a loaded CI machine; the slow
        // client needs 6 s to finish its head).
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let (cut_after, answered) = slow.await.unwrap();
    assert!(!answered, "the slow client was answered");
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(5),
        "cut after {cut_after:?}"
    );
    eprintln!(
        "slowloris client (1 byte / 100 ms) cut after {cut_after:.1?} with header_read_timeout = 1s"
    );
    assert!(upstream.seen().iter().all(|s| s.path() != "/p/slow"));
    assert_eq!(upstream.seen().len(), 10);
    server.stop().await;
}

#[tokio::test]
async fn the_request_deadline_covers_slow_upstreams_and_slow_bodies() {
    let gated = Upstream::start_gated().await;
    let server = server(
        &public_route(&gated, ""),
        &[("RAMPART_SERVER_REQUEST_TIMEOUT", "1s")],
    )
    .await;
    // The upstream never answers (its own read_timeout is the default 60 s).
    let started = Instant::now();
    let response = client().get(server.url("/p/slow")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");

    // A complete body and a silent upstream: still the upstream's fault.
    let response = client()
        .post(server.url("/p/slow-with-body"))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);

    // The client announces 100 bytes and sends 10: its slowness, so 408.
    let mut connection = RawConnection::connect(server.addr).await;
    connection
        .send(b"POST /p/body HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100\r\n\r\n0123456789")
        .await;
    let started = Instant::now();
    let response = connection.response().await.unwrap();
    assert_eq!(response.status, 408);
    assert_eq!(response.error_code().as_deref(), Some("request_timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));
    gated.release(10);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_over_the_cap_waits_for_a_free_slot() {
    let gated = Upstream::start_gated().await;
    let server = server(
        &public_route(&gated, ""),
        &[("RAMPART_SERVER_MAX_CONNECTIONS", "1")],
    )
    .await;
    // The one slot: a request held in flight by the upstream.
    let mut first = RawConnection::connect(server.addr).await;
    first.send(&raw::get("/p/first", "gw.test", "")).await;
    gated.wait_for_requests(1).await;
    // A second connection is accepted by the kernel but not served...
    let mut second = RawConnection::connect(server.addr).await;
    second.send(&raw::get("/p/second", "gw.test", "")).await;
    assert!(
        second
            .response_within(Duration::from_millis(500))
            .await
            .is_err(),
        "a connection over the cap was served"
    );
    assert_eq!(gated.seen().len(), 1);
    // ...until the first connection ends: then it is.
    gated.release(2);
    assert_eq!(first.response().await.unwrap().status, 200);
    assert!(first.closed().await);
    let response = second.response().await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(gated.seen().len(), 2);
    assert_eq!(gated.last().path(), "/p/second");
    server.stop().await;
}
