//! A programmable upstream that records every request it receives.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::sync::{Notify, Semaphore};

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query as received.
    pub uri: String,
    /// Headers (lower-case names; repeated headers joined with ", ").
    pub headers: BTreeMap<String, String>,
    /// Body length.
    pub body_len: usize,
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    arrived: Arc<Notify>,
    gate: Option<Arc<Semaphore>>,
}

/// The running upstream.
pub struct Upstream {
    /// Its address.
    pub addr: SocketAddr,
    shared: Shared,
}

impl Upstream {
    /// An upstream answering 200 with a small JSON body at once.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// An upstream whose handlers wait until [`Upstream::release`] is called: lets a
    /// test hold a request in flight without sleeping.
    pub async fn start_gated() -> Self {
        Self::start_with(Some(Arc::new(Semaphore::new(0)))).await
    }

    async fn start_with(gate: Option<Arc<Semaphore>>) -> Self {
        let shared = Shared {
            gate,
            ..Shared::default()
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + crate::process::WAIT;
        loop {
            let notified = self.shared.arrived.notified();
            if self.shared.seen.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::timeout_at(deadline, notified)
                .await
                .expect("timed out waiting for upstream requests");
        }
    }

    /// Lets `n` gated requests complete.
    pub fn release(&self, n: usize) {
        if let Some(gate) = &self.shared.gate {
            gate.add_permits(n);
        }
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    shared.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers,
        body_len: body.len(),
    });
    shared.arrived.notify_waiters();
    if let Some(gate) = &shared.gate {
        let _permit = gate.acquire().await;
    }
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(r#"{"upstream":"ok"}"#))
        .unwrap()
}
