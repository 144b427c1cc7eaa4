//! Edge facts resolved once per request: who the client is (address and scheme,
//! through trusted proxies only) — stored as a request extension that every later
//! layer, handler and proxy phase reads, so the answer cannot differ between the rate
//! limiter, the audit log and the upstream's `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::client_ip::{self, ClientInfo, TrustedProxies};
use crate::server::{PeerAddr, Transport};

/// What the edge middleware needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct EdgeSettings {
    /// Whose forwarded headers are believed.
    pub trusted: TrustedProxies,
    /// The `Strict-Transport-Security` value, sent only on HTTPS; `None` disables it.
    pub hsts: Option<http::HeaderValue>,
}

/// Middleware: resolves the [`ClientInfo`] and stores it in the request extensions.
pub async fn resolve_client(
    State(settings): State<Arc<EdgeSettings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let info = client_of(&request, &settings.trusted);
    request.extensions_mut().insert(info);
    next.run(request).await
}

/// Resolves the client of `request` (peer address, TLS, forwarded headers from
/// trusted proxies).
pub fn client_of<B>(request: &http::Request<B>, trusted: &TrustedProxies) -> ClientInfo {
    // The listener always sets the peer; only in-process tests without a listener
    // fall back to the unspecified address.
    let peer = request
        .extensions()
        .get::<PeerAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    let tls = request.extensions().get::<Transport>() == Some(&Transport::Tls);
    client_ip::resolve(peer, tls, request.headers(), trusted)
}
