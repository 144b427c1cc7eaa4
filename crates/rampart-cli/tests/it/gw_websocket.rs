//! WebSocket upgrades through a protected route (F-UPSTREAM), against a real
//! WebSocket echo upstream: authenticated by bearer token or session cookie, frames
//! both ways, identity headers at the upstream; refused without credentials and for
//! a cookie-authenticated handshake from another site (cross-site WebSocket
//! hijacking).

// tungstenite's handshake callback returns its (large) `ErrorResponse` by value.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use rampart_store::Backend;
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::api_auth::login;
use crate::gw_routes::{bearer, gateway, member};
use crate::on_both_backends;

/// A WebSocket server that echoes every message and records each handshake's headers.
struct EchoUpstream {
    addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&handshakes);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let callback = |request: &Request, response: Response| {
                        let headers = request
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect();
                        record.lock().unwrap().push(headers);
                        Ok(response)
                    };
                    let Ok(mut socket) =
                        tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    while let Some(Ok(message)) = socket.next().await {
                        if message.is_close() {
                            return;
                        }
                        let echo = message.is_text() || message.is_binary();
                        if echo && socket.send(message).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            handshakes,
            task,
        }
    }

    fn handshakes(&self) -> Vec<BTreeMap<String, String>> {
        self.handshakes.lock().unwrap().clone()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(echo: &EchoUpstream) -> String {
    format!(
        r#"
[upstreams.chat]
url = "http://{}"

[[routes]]
name = "chat"
path_prefix = "/ws"
upstream = "chat"
auth = "required"
"#,
        echo.addr
    )
}

/// Opens a WebSocket to `addr` at `path` with extra handshake headers.
async fn connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, WsError> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(request, stream)
        .await
        .map(|(socket, _)| socket)
}

/// The HTTP status a refused handshake got.
fn refused_status(result: Result<tokio_tungstenite::WebSocketStream<TcpStream>, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

/// Sends text and binary frames (one of 1 MiB) and expects them echoed.
async fn echo_round_trip(socket: &mut tokio_tungstenite::WebSocketStream<TcpStream>) {
    socket
        .send(Message::text("hello through rampart"))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.to_text().unwrap(), "hello through rampart");
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    socket.send(Message::binary(big.clone())).await.unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_data().as_ref(), big.as_slice());
    for i in 0..20 {
        socket
            .send(Message::text(format!("frame {i}")))
            .await
            .unwrap();
    }
    for i in 0..20 {
        let reply = socket.next().await.unwrap().unwrap();
        assert_eq!(reply.to_text().unwrap(), format!("frame {i}"));
    }
    socket.close(None).await.unwrap();
}

on_both_backends!(websocket_upgrade_through_a_protected_route, |backend| {
    let echo = EchoUpstream::start().await;
    let server = gateway(backend, &config(&echo)).await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;

    // Without credentials: refused before any upstream contact.
    assert_eq!(
        refused_status(connect(server.addr, "/ws/chat", &[]).await),
        401
    );
    assert_eq!(
        refused_status(
            connect(
                server.addr,
                "/ws/chat",
                &[("authorization", "Bearer not-a-token")]
            )
            .await
        ),
        401
    );
    assert!(echo.handshakes().is_empty());

    // With a bearer token: upgraded, spliced both ways.
    let mut socket = connect(
        server.addr,
        "/ws/chat",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-rampart-user", "root"),
        ],
    )
    .await
    .expect("upgrade with a bearer token");
    echo_round_trip(&mut socket).await;
    let handshake = echo.handshakes().pop().unwrap();
    assert_eq!(
        handshake.get("x-rampart-user").map(String::as_str),
        Some("alice")
    );
    assert!(handshake.contains_key("x-rampart-assertion"));
    assert!(
        !handshake.contains_key("authorization"),
        "the bearer token was forwarded"
    );
    assert_eq!(
        handshake.get("upgrade").map(String::as_str),
        Some("websocket")
    );
    assert!(handshake.contains_key("sec-websocket-key"));

    // With the session cookie from the same origin: upgraded; the cookie stays home.
    let (browser, _) = login(&server, "alice").await;
    let cookie = browser.cookie.clone().unwrap();
    let same_origin = format!("http://{}", server.addr);
    let mut socket = connect(
        server.addr,
        "/ws/chat",
        &[("cookie", &cookie), ("origin", &same_origin)],
    )
    .await
    .expect("upgrade with the session cookie");
    echo_round_trip(&mut socket).await;
    let handshake = echo.handshakes().pop().unwrap();
    assert_eq!(
        handshake.get("x-rampart-auth-method").map(String::as_str),
        Some("session")
    );
    assert!(
        !handshake.contains_key("cookie"),
        "the session cookie was forwarded"
    );

    // The same cookie from a page of another site: cross-site WebSocket hijacking.
    let before = echo.handshakes().len();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let status = refused_status(
            connect(
                server.addr,
                "/ws/chat",
                &[("cookie", &cookie), (name, value)],
            )
            .await,
        );
        assert_eq!(status, StatusCode::FORBIDDEN.as_u16(), "{name}: {value}");
    }
    assert_eq!(echo.handshakes().len(), before);
    server.stop().await;
});

#[tokio::test]
async fn websocket_to_a_refused_upstream_is_a_502() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = gateway(
        Backend::Sqlite,
        &format!(
            "[upstreams.gone]\nurl = \"http://127.0.0.1:{port}\"\n\n[[routes]]\nname = \"gone\"\npath_prefix = \"/ws\"\nupstream = \"gone\"\n"
        ),
    )
    .await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;
    let status = refused_status(
        connect(
            server.addr,
            "/ws/x",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await,
    );
    assert_eq!(status, 502);
    server.stop().await;
}
