//! The proxied data path (F-UPSTREAM): bodies stream both ways in bounded memory
//! (measured on the real binary), HTTP/1.1 and HTTP/2 upstreams with pooled
//! connections, connect and read timeouts, hop-by-hop hygiene, upstream failures as
//! 502/504 envelopes, and request-smuggling shapes sent over a raw socket.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use rampart_testkit::client::client;
use rampart_testkit::process::Rampart;
use rampart_testkit::raw::RawConnection;
use rampart_testkit::upstream::{Upstream, generated};
use reqwest::StatusCode;

use crate::common::{bin, env, production_config};
use crate::gw_routes::{bearer, gateway, member, raw_exchange, upstream_toml};
use crate::support::TestServer;

const MIB: u64 = 1024 * 1024;
/// The size streamed each way.
const STREAM_BYTES: u64 = 200 * MIB;
/// Rampart's peak resident memory must stay under this while streaming.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn public_route(upstream: &Upstream, extra_route: &str, extra_upstream: &str) -> String {
    format!(
        "{}\n[[routes]]\nname = \"p\"\npath_prefix = \"/p\"\nupstream = \"u\"\nauth = \"public\"\n{extra_route}\n",
        upstream_toml("u", upstream, extra_upstream)
    )
}

async fn sqlite_server(extra: &str) -> TestServer {
    TestServer::with_config(rampart_store::Backend::Sqlite, extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mib_stream_each_way_in_bounded_memory() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(
        dir.path(),
        &public_route(&upstream, "body_limit = \"1GiB\"", ""),
    );
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(&[]),
    );
    let addr = rampart.listening().await;
    let http = client();
    assert_eq!(
        http.get(format!("http://{addr}/p/warm-up"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let baseline = rampart.memory_kib("VmHWM");

    // Upload: a generated body, never held in memory on either side.
    let started = Instant::now();
    let response = http
        .post(format!("http://{addr}/p/upload"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(generated(STREAM_BYTES)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let upload = started.elapsed();
    let seen = upstream.last();
    assert_eq!(seen.path(), "/p/upload");
    assert_eq!(seen.body_len as u64, STREAM_BYTES);
    assert!(seen.body_complete);
    let after_upload = rampart.memory_kib("VmHWM");

    // Download: the upstream generates, the client counts.
    let started = Instant::now();
    let response = http
        .get(format!("http://{addr}/p/download?download={STREAM_BYTES}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(STREAM_BYTES));
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len() as u64;
    }
    assert_eq!(received, STREAM_BYTES);
    let download = started.elapsed();
    let peak = rampart.memory_kib("VmHWM");

    eprintln!(
        "streaming through the rampart binary (pid {}): {} MiB up in {:.1?} ({:.0} MiB/s), \
         {} MiB down in {:.1?} ({:.0} MiB/s); VmHWM {} KiB before, {} KiB after the upload, \
         {} KiB after the download (limit {} KiB)",
        rampart.pid(),
        STREAM_BYTES / MIB,
        upload,
        STREAM_BYTES as f64 / MIB as f64 / upload.as_secs_f64(),
        STREAM_BYTES / MIB,
        download,
        STREAM_BYTES as f64 / MIB as f64 / download.as_secs_f64(),
        baseline,
        after_upload,
        peak,
        RSS_LIMIT_KIB,
    );
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

#[tokio::test]
async fn http1_and_h2c_upstreams_are_pooled() {
    let h1 = Upstream::start().await;
    let h2 = Upstream::start().await;
    let extra = format!(
        r#"{}{}
[[routes]]
name = "one"
path_prefix = "/one"
upstream = "h1"
auth = "public"

[[routes]]
name = "two"
path_prefix = "/two"
upstream = "h2"
auth = "public"
"#,
        upstream_toml("h1", &h1, ""),
        upstream_toml("h2", &h2, "http2 = true"),
    );
    let server = sqlite_server(&extra).await;
    let http = client();
    for i in 0..5 {
        for prefix in ["one", "two"] {
            let response = http
                .post(server.url(&format!("/{prefix}/{i}")))
                .body(format!("body {i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            // Read to the end: the upstream connection is back in the pool by then.
            response.bytes().await.unwrap();
        }
    }
    // Concurrent requests: HTTP/2 multiplexes them on its one connection.
    let concurrent = futures_util::future::join_all(
        (0..8).map(|i| http.get(server.url(&format!("/two/c{i}"))).send()),
    )
    .await;
    assert!(
        concurrent
            .iter()
            .all(|r| r.as_ref().unwrap().status() == 200)
    );

    let one = h1.seen();
    assert_eq!(one.len(), 5);
    assert!(one.iter().all(|s| s.version == "HTTP/1.1"));
    assert!(one.iter().all(|s| s.body_complete && s.body_len == 6));
    let ports: std::collections::BTreeSet<u16> = one.iter().map(|s| s.peer.port()).collect();
    assert_eq!(
        ports.len(),
        1,
        "sequential HTTP/1.1 requests reuse one pooled connection: {ports:?}"
    );

    let two = h2.seen();
    assert_eq!(two.len(), 13);
    assert!(
        two.iter().all(|s| s.version == "HTTP/2.0"),
        "{:?}",
        two[0].version
    );
    let ports: std::collections::BTreeSet<u16> = two.iter().map(|s| s.peer.port()).collect();
    assert_eq!(
        ports.len(),
        1,
        "HTTP/2 requests share one connection: {ports:?}"
    );
    assert_eq!(two[0].body, b"body 0");
    server.stop().await;
}

/// A port with nothing listening.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener whose accept queue is full and never drained: the kernel drops further
/// SYNs, so a connection attempt hangs until the client gives up — an upstream that
/// does not answer at the TCP level, on loopback.
struct Blackhole {
    port: u16,
    _listener: tokio::net::TcpListener,
    _queued: Vec<tokio::net::TcpStream>,
}

impl Blackhole {
    async fn start() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // Fill the queue until a connection attempt no longer completes.
        loop {
            match tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(stream)) => queued.push(stream),
                _ => break,
            }
            assert!(queued.len() < 16, "the accept queue never filled");
        }
        Self {
            port: addr.port(),
            _listener: listener,
            _queued: queued,
        }
    }
}

#[tokio::test]
async fn upstream_failures_are_502_and_timeouts_504_in_the_envelope() {
    let gated = Upstream::start_gated().await;
    let stalling = Upstream::start().await;
    let refused_port = closed_port().await;
    let blackhole = Blackhole::start().await;
    let extra = format!(
        r#"
[upstreams.refused]
url = "http://127.0.0.1:{refused_port}"

[upstreams.blackhole]
url = "http://127.0.0.1:{blackhole}"
connect_timeout = "300ms"
read_timeout = "10s"

[upstreams.slow]
url = "{gated}"
read_timeout = "300ms"

[upstreams.stalling]
url = "{stalling}"
read_timeout = "300ms"

[[routes]]
name = "refused"
path_prefix = "/refused"
upstream = "refused"
auth = "public"

[[routes]]
name = "blackhole"
path_prefix = "/blackhole"
upstream = "blackhole"
auth = "public"

[[routes]]
name = "slow"
path_prefix = "/slow"
upstream = "slow"
auth = "public"

[[routes]]
name = "stalling"
path_prefix = "/stalling"
upstream = "stalling"
auth = "public"
"#,
        blackhole = blackhole.port,
        gated = gated.url(),
        stalling = stalling.url(),
    );
    let server = sqlite_server(&extra).await;
    let http = client();
    let ms = Duration::from_millis;
    // (path, status, code, answered no sooner than, and sooner than)
    for (path, status, code, at_least, before) in [
        ("/refused/x", 502, "upstream_error", ms(0), ms(5_000)),
        // The connect timeout, not the 10 s read timeout.
        ("/blackhole/x", 504, "upstream_timeout", ms(300), ms(8_000)),
        ("/slow/x", 504, "upstream_timeout", ms(300), ms(8_000)),
    ] {
        let started = Instant::now();
        let response = http.get(server.url(path)).send().await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers().contains_key("x-request-id"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("127.0.0.1"),
            "internals leaked: {message}"
        );
        assert!(elapsed >= at_least, "{path}: {elapsed:?}");
        assert!(elapsed < before, "{path}: {elapsed:?}");
    }
    gated.release(1);

    // An upstream that sends its head and then stalls is cut after read_timeout: the
    // client sees the body end early instead of hanging.
    let started = Instant::now();
    let response = http
        .get(server.url("/stalling/x?stall_body=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "a truncated body must not look complete"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn hop_by_hop_headers_go_and_connection_cannot_remove_ours() {
    let upstream = Upstream::start().await;
    let server = gateway(
        rampart_store::Backend::Sqlite,
        &format!(
            "{}\n[[routes]]\nname = \"app\"\npath_prefix = \"/app\"\nupstream = \"u\"\n",
            upstream_toml("u", &upstream, "")
        ),
    )
    .await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;
    let request = format!(
        "GET /app/x?set_header=connection:x-upstream-private&set_header=x-upstream-private:1\
         &set_header=keep-alive:timeout%3D99&set_header=x-app:kept HTTP/1.1\r\n\
         Host: gw.test\r\n\
         Authorization: Bearer {token}\r\n\
         Connection: keep-alive, X-Forwarded-For, X-Forwarded-Proto, X-Request-Id, X-Real-IP, \
         Forwarded, X-Rampart-User, X-Rampart-Assertion, X-Drop-Me\r\n\
         Keep-Alive: timeout=5\r\n\
         TE: trailers\r\n\
         Trailer: X-Checksum\r\n\
         Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\
         Proxy-Connection: keep-alive\r\n\
         Upgrade: h2c\r\n\
         X-Drop-Me: 1\r\n\
         X-Keep-Me: 1\r\n\
         X-Forwarded-For: 203.0.113.66\r\n\r\n"
    );
    let mut connection = RawConnection::connect(server.addr).await;
    connection.send(request.as_bytes()).await;
    let response = connection.response().await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = upstream.last();
    for gone in [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "transfer-encoding",
        "x-drop-me",
        "authorization",
    ] {
        assert!(
            seen.header(gone).is_none(),
            "{gone} reached the upstream: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.header("x-keep-me"), Some("1"));
    // What Rampart sets survives the client naming it in Connection.
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("forwarded"),
        Some("for=127.0.0.1;proto=http;host=gw.test")
    );
    assert_eq!(seen.header("x-request-id"), response.header("x-request-id"));
    assert_eq!(seen.header("x-rampart-user"), Some("alice"));
    assert!(seen.header("x-rampart-assertion").is_some());
    // And on the way back: the upstream's hop-by-hop and Connection-named headers go.
    assert!(
        response.header("x-upstream-private").is_none(),
        "{:?}",
        response.headers
    );
    assert_ne!(response.header("keep-alive"), Some("timeout=99"));
    assert_eq!(response.header("x-app"), Some("kept"));
    server.stop().await;
}

/// One smuggling shape: the raw request and what must happen.
struct Shape {
    name: &'static str,
    request: &'static str,
    expect: Expect,
}

enum Expect {
    /// Refused with 400 (or the connection closed without an answer); nothing
    /// reaches the upstream.
    Refused,
    /// Refused with 400 after the first chunk: the upstream may have seen the start
    /// of the request, cut off — never a complete one.
    RefusedMidBody,
    /// Accepted as one well-framed request with this body; the connection then
    /// closes, so trailing bytes are never parsed as a second request.
    AcceptedAndClosed(&'static [u8]),
    /// Accepted as one well-framed request with this body.
    Accepted(&'static [u8]),
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "CL.TE: Content-Length says more, chunked says the body ends at once",
        request: "POST /p/clte HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 51\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /p/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n",
        expect: Expect::AcceptedAndClosed(b""),
    },
    Shape {
        name: "TE.CL: chunked first, Content-Length shorter",
        request: "POST /p/tecl HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2b\r\nGET /p/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n\r\n0\r\n\r\n",
        expect: Expect::AcceptedAndClosed(b"GET /p/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n"),
    },
    Shape {
        name: "duplicate identical Content-Length",
        request: "POST /p/dup HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        expect: Expect::Accepted(b"hello"),
    },
    Shape {
        name: "conflicting Content-Length",
        request: "POST /p/conflict HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /p/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "Content-Length list",
        request: "POST /p/list HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5, 5\r\n\r\nhello",
        expect: Expect::Refused,
    },
    Shape {
        name: "signed Content-Length",
        request: "POST /p/signed HTTP/1.1\r\nHost: gw.test\r\nContent-Length: +5\r\n\r\nhello",
        expect: Expect::Refused,
    },
    Shape {
        name: "hex Content-Length",
        request: "POST /p/hex HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0x5\r\n\r\nhello",
        expect: Expect::Refused,
    },
    Shape {
        name: "malformed chunk size",
        request: "POST /p/badsize HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "chunk size overflowing 64 bits",
        request: "POST /p/overflow HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "negative chunk size",
        request: "POST /p/negative HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "chunk data longer than its size",
        request: "POST /p/long HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloGET /p/smuggled HTTP/1.1\r\n\r\n0\r\n\r\n",
        expect: Expect::RefusedMidBody,
    },
    Shape {
        name: "obs-fold continuation line",
        request: "GET /p/fold HTTP/1.1\r\nHost: gw.test\r\nX-Folded: a\r\n b\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "obs-fold hiding Transfer-Encoding",
        request: "POST /p/foldte HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nX-Hide: x\r\n Transfer-Encoding: chunked\r\n\r\nhello",
        expect: Expect::Refused,
    },
    Shape {
        name: "Transfer-Encoding other than chunked",
        request: "POST /p/gzip HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        expect: Expect::Refused,
    },
    Shape {
        name: "Transfer-Encoding list ending in chunked",
        request: "POST /p/gzipchunked HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "chunked twice",
        request: "POST /p/twice HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "chunked, then identity",
        request: "POST /p/identity HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "xchunked",
        request: "POST /p/xchunked HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "space before the colon",
        request: "POST /p/space HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello",
        expect: Expect::Refused,
    },
    Shape {
        name: "Transfer-Encoding in HTTP/1.0",
        request: "POST /p/http10 HTTP/1.0\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        expect: Expect::Refused,
    },
    Shape {
        name: "CR inside a header value",
        request: "GET /p/cr HTTP/1.1\r\nHost: gw.test\r\nX-Split: a\rTransfer-Encoding: chunked\r\n\r\n",
        expect: Expect::Refused,
    },
];

#[tokio::test]
async fn request_smuggling_shapes_never_reach_the_upstream_misframed() {
    let upstream = Upstream::start().await;
    let server = sqlite_server(&public_route(&upstream, "", "")).await;
    // Each shape uses its own path, so what the upstream saw is told apart by path.
    let path_of = |shape: &Shape| shape.request.split(' ').nth(1).unwrap().to_owned();
    let seen_at = |path: &str| {
        upstream
            .seen()
            .into_iter()
            .filter(|s| s.path() == path)
            .collect::<Vec<_>>()
    };
    for shape in SHAPES {
        let name = shape.name;
        let path = path_of(shape);
        let mut connection = RawConnection::connect(server.addr).await;
        connection.send(shape.request.as_bytes()).await;
        let response = connection.response().await;
        match shape.expect {
            Expect::Refused | Expect::RefusedMidBody => {
                if let Some(response) = &response {
                    assert_eq!(response.status, 400, "{name}: {}", response.text());
                }
                assert!(
                    connection.closed().await,
                    "{name}: the connection stayed open"
                );
                if matches!(shape.expect, Expect::Refused) {
                    let seen = seen_at(&path);
                    assert!(seen.is_empty(), "{name}: reached the upstream: {seen:?}");
                }
            }
            Expect::Accepted(body) | Expect::AcceptedAndClosed(body) => {
                let response = response.unwrap_or_else(|| panic!("{name}: no response"));
                assert_eq!(response.status, 200, "{name}: {}", response.text());
                // Nothing after this request is parsed as another one.
                assert!(
                    connection.response().await.is_none(),
                    "{name}: a second response"
                );
                let seen = seen_at(&path);
                assert_eq!(seen.len(), 1, "{name}: {seen:?}");
                let seen = &seen[0];
                assert!(seen.body_complete, "{name}");
                assert_eq!(seen.body, body, "{name}");
                assert!(
                    seen.header("transfer-encoding").is_none()
                        || seen.header("content-length").is_none(),
                    "{name}: both framings sent upstream"
                );
                if let Some(length) = seen.header("content-length") {
                    assert_eq!(length, body.len().to_string(), "{name}");
                }
            }
        }
    }
    // The control: pipelined well-formed requests on one connection are both served.
    let mut connection = RawConnection::connect(server.addr).await;
    connection
        .send(b"POST /p/one HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nabcGET /p/two HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        .await;
    assert_eq!(connection.response().await.unwrap().status, 200);
    assert_eq!(connection.response().await.unwrap().status, 200);
    assert_eq!(seen_at("/p/one").len(), 1);
    assert_eq!(seen_at("/p/two").len(), 1);

    // Whatever the upstream saw of the shapes: never a smuggled request, never a
    // refused request complete, and for a body broken after its first chunk at most
    // a request cut off mid-body.
    let seen = upstream.seen();
    assert!(seen.iter().all(|s| s.path() != "/p/smuggled"), "{seen:?}");
    for shape in SHAPES {
        if matches!(shape.expect, Expect::Refused | Expect::RefusedMidBody) {
            let path = path_of(shape);
            assert!(
                seen.iter()
                    .filter(|s| s.path() == path)
                    .all(|s| !s.body_complete),
                "{}: a complete request reached the upstream",
                shape.name
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_refused_transfer_coding_gets_the_envelope() {
    let upstream = Upstream::start().await;
    let server = sqlite_server(&public_route(&upstream, "", "")).await;
    let response = raw_exchange(
        server.addr,
        b"POST /p/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(response.error_code().as_deref(), Some("bad_request"));
    assert_eq!(response.header("connection"), Some("close"));
    assert!(response.header("x-request-id").is_some());
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    // A malformed first chunk: the envelope too, from the gateway.
    let response = raw_exchange(
        server.addr,
        b"POST /p/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    if let Some(response) = response {
        assert_eq!(response.status, 400);
        assert_eq!(response.error_code().as_deref(), Some("bad_request"));
    }
    assert!(upstream.seen().is_empty());
    // The public client API the tests use elsewhere still works on the same server.
    let ok = client().get(server.url("/p/ok")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    server.stop().await;
}
