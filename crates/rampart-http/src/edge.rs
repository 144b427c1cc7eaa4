//! The edge: what happens to every request and response, in one service.
//!
//! On the way in it assigns the request id and resolves who the client is (address
//! and scheme, through trusted proxies only), both stored as request extensions that
//! every handler and proxy phase reads — so the answer cannot differ between the rate
//! limiter, the audit log and the upstream's `X-Forwarded-For`. On the way out it
//! renders errors in the envelope, adds the security headers, counts the request,
//! writes the access-log line and stamps `X-Request-Id`.
//!
//! It is one service rather than a stack of middleware because it runs on every
//! proxied request: one boxed future per request instead of one per layer.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use http::Method;
use tower::{Layer, Service};

use crate::client_ip::{self, ClientInfo, Scheme, TrustedProxies};
use crate::metrics::{self, RouteLabel};
use crate::middleware;
use crate::request_id::{self, RequestId};
use crate::server::{HeadRefusal, PeerAddr, Transport};

/// What the edge middleware needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct EdgeSettings {
    /// Whose forwarded headers are believed.
    pub trusted: TrustedProxies,
    /// The `Strict-Transport-Security` value, sent only on HTTPS; `None` disables it.
    pub hsts: Option<http::HeaderValue>,
}

/// The [`Layer`] of [`Edge`], applied outermost by [`crate::app::layered`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    settings: Arc<EdgeSettings>,
}

impl EdgeLayer {
    /// The edge with these settings.
    pub fn new(settings: EdgeSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// The edge service (see the module documentation).
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    settings: Arc<EdgeSettings>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The service that was polled ready is the one to call; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = Arc::clone(&self.settings);
        Box::pin(async move {
            let id = RequestId::generate();
            let client = client_of(&request, &settings.trusted);
            request.extensions_mut().insert(id.clone());
            request.extensions_mut().insert(client);
            let access = AccessLine::start(&request);
            let refusal = request.extensions().get::<HeadRefusal>().copied();
            let response = match refusal {
                Some(refusal) => middleware::refusal_response(refusal),
                None => match inner.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            };
            let mut response = middleware::render_error(response, Some(&id));
            middleware::apply_security_headers(
                &mut response,
                client.scheme == Scheme::Https,
                settings.hsts.as_ref(),
            );
            metrics::record_request(
                response.extensions().get::<RouteLabel>(),
                response.status().as_u16(),
                access.started.elapsed(),
            );
            access.finish(&id, &response);
            response
                .headers_mut()
                .insert(request_id::HEADER, id.header_value().clone());
            response.extensions_mut().insert(id);
            Ok(response)
        })
    }
}

/// One access-log line per request, always, whatever the outcome. The request's
/// method and path are copied only when the line will be written.
///
/// The query string is never logged: it is where careless clients put tokens.
struct AccessLine {
    started: Instant,
    request: Option<(Method, String)>,
}

impl AccessLine {
    fn start(request: &Request) -> Self {
        let enabled = tracing::enabled!(target: "rampart::access", tracing::Level::INFO);
        Self {
            started: Instant::now(),
            request: enabled.then(|| (request.method().clone(), request.uri().path().to_owned())),
        }
    }

    fn finish(&self, id: &RequestId, response: &Response) {
        if let Some((method, path)) = &self.request {
            tracing::info!(
                target: "rampart::access",
                request_id = id.as_str(),
                method = %method,
                path,
                status = response.status().as_u16(),
                elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }
    }
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
