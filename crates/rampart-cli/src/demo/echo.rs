//! The demo's built-in upstream: answers every request with a JSON description of
//! what it received — method, path, query, headers (including Rampart's identity
//! headers) and body size — so a newcomer can see exactly what Rampart forwards.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use serde::Serialize;
use tokio::net::TcpListener;

/// What the echo upstream saw.
#[derive(Debug, Serialize)]
pub struct Echo {
    /// Always `rampart-demo-echo`, so the response is recognisable.
    pub service: &'static str,
    /// Request method.
    pub method: String,
    /// Path as received.
    pub path: String,
    /// Raw query, if any.
    pub query: Option<String>,
    /// Headers as received (multi-valued headers joined with ", ").
    pub headers: BTreeMap<String, String>,
    /// Body length in bytes.
    pub body_bytes: usize,
}

/// Starts the echo upstream on `addr` and returns its bound address.
pub async fn start(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().fallback(echo);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "demo echo upstream stopped");
        }
    });
    Ok(bound)
}

async fn echo(request: Request) -> Json<Echo> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    Json(Echo {
        service: "rampart-demo-echo",
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body_bytes: body.len(),
    })
}
