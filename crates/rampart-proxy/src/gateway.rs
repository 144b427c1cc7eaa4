//! The gateway: the proxied request path as named phases.
//!
//! ```text
//! route() → authenticate() → authorize() → rate_limit() → upstream_request()
//!         → send() → respond() → log()
//! ```
//!
//! Each phase is a function with one job. A phase that refuses returns an
//! [`ApiError`]; `log()` runs whatever happened. See `docs/life-of-a-request.md`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Version};
use rampart_config::{Config, RouteAuth};
use rampart_core::ErrorKind;
use rampart_http::client_ip::{self, ClientInfo, TrustedProxies};
use rampart_http::error::ApiError;
use rampart_http::metrics::RouteLabel;
use rampart_http::middleware::Passthrough;
use rampart_http::request_id::RequestId;
use rampart_http::server::{PeerAddr, Transport};

use crate::body::LimitedBody;
use crate::headers;
use crate::normalize::{self, CanonicalPath};
use crate::upstream::{SendError, Upstream, UpstreamSetupError};

/// The gateway, cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Vec<Route>,
    trusted: TrustedProxies,
    own_host: Option<String>,
}

/// A configured route, ready to match.
struct Route {
    name: Arc<str>,
    host: Option<String>,
    prefix: String,
    upstream: Upstream,
    auth: RouteAuth,
    strip_prefix: bool,
    body_limit: u64,
    http2: bool,
}

/// What `authenticate()` established about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
}

/// What `authorize()` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward the request.
    Allow,
    /// Refuse: the caller is known but not allowed.
    Deny(&'static str),
    /// Refuse until the caller authenticates.
    Challenge,
}

/// Facts about the request gathered once and used by every phase.
struct RequestContext {
    request_id: String,
    client: ClientInfo,
    started: Instant,
}

impl Gateway {
    /// Builds the gateway from the configuration: one pooled client per upstream,
    /// routes ordered for matching.
    pub fn new(config: &Config) -> Result<Self, UpstreamSetupError> {
        let mut upstreams = HashMap::new();
        for (name, upstream) in &config.upstreams {
            upstreams.insert(
                name.clone(),
                (Upstream::new(name, upstream)?, upstream.http2),
            );
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            // Config validation guarantees the upstream exists and the prefix is valid.
            let Some((upstream, http2)) = upstreams.get(&route.upstream) else {
                continue;
            };
            let Ok(prefix) = normalize::normalize_prefix(&route.path_prefix) else {
                continue;
            };
            routes.push(Route {
                name: Arc::from(route.name.as_str()),
                host: route.host.clone(),
                prefix,
                upstream: upstream.clone(),
                auth: route.auth,
                strip_prefix: route.strip_prefix,
                body_limit: route.body_limit.unwrap_or(config.server.body_limit),
                http2: *http2,
            });
        }
        // Most specific first: host-bound routes before host-less ones, then longer
        // prefixes before shorter ones. The first match wins.
        routes.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                routes,
                trusted: TrustedProxies::new(config.server.trusted_proxies.clone()),
                own_host: config
                    .public_url
                    .as_ref()
                    .and_then(|url| url.host_str())
                    .map(str::to_ascii_lowercase),
            }),
        })
    }

    /// Whether requests for `host` belong to an application rather than to Rampart:
    /// some route is bound to that host and it is not Rampart's own host. On such
    /// hosts Rampart's own endpoints are not served, so an application's `/api/v1`
    /// is never shadowed.
    pub fn claims_host(&self, host: &str) -> bool {
        if self.inner.own_host.as_deref() == Some(host) {
            return false;
        }
        self.inner
            .routes
            .iter()
            .any(|route| route.host.as_deref() == Some(host))
    }

    /// Handles one request through all phases.
    pub async fn handle(&self, request: Request<Body>) -> Response {
        let context = self.context(&request);
        let (route, result) = match self.route(&request) {
            Ok((route, path)) => (
                Some(Arc::clone(&route.name)),
                self.process(route, path, request, &context).await,
            ),
            Err(error) => (None, Err(error)),
        };
        let route_name = route.as_deref().unwrap_or("-");
        let mut response = match result {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        log(&context, route_name, &response);
        if let Some(route) = route {
            response.extensions_mut().insert(RouteLabel(route));
        }
        response
    }

    async fn process(
        &self,
        route: &Route,
        path: CanonicalPath,
        request: Request<Body>,
        context: &RequestContext,
    ) -> Result<Response, ApiError> {
        let principal = authenticate(&request);
        match authorize(route, &principal) {
            Decision::Allow => {}
            Decision::Deny(reason) => {
                tracing::info!(request_id = context.request_id, route = %route.name, reason, "access denied");
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    "forbidden",
                    "You are not allowed to access this resource.",
                ));
            }
            Decision::Challenge => {
                tracing::info!(request_id = context.request_id, route = %route.name, "authentication required");
                return Err(ApiError::new(
                    ErrorKind::Unauthenticated,
                    "unauthenticated",
                    "Authentication is required.",
                ));
            }
        }
        rate_limit(route, &principal)?;
        let prepared = upstream_request(route, &path, request, context)?;
        let upstream_response = send(route, prepared).await?;
        Ok(respond(upstream_response))
    }

    fn context(&self, request: &Request<Body>) -> RequestContext {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let peer = request
            .extensions()
            .get::<PeerAddr>()
            .map(|peer| peer.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let tls = request.extensions().get::<Transport>() == Some(&Transport::Tls);
        RequestContext {
            request_id,
            client: client_ip::resolve(peer, tls, request.headers(), &self.inner.trusted),
            started: Instant::now(),
        }
    }

    /// Phase `route()`: normalizes the path and finds the route. Deny by default:
    /// no route, no access.
    fn route(&self, request: &Request<Body>) -> Result<(&Route, CanonicalPath), ApiError> {
        let path = normalize::normalize(request.uri().path()).map_err(|error| {
            ApiError::new(
                ErrorKind::Client,
                "invalid_path",
                "The request path is not acceptable.",
            )
            .with_internal(error)
        })?;
        let host = request_host(request);
        let route = self
            .inner
            .routes
            .iter()
            .find(|route| {
                route
                    .host
                    .as_deref()
                    .is_none_or(|h| Some(h) == host.as_deref())
                    && path.starts_with_segment(&route.prefix)
            })
            .ok_or_else(ApiError::not_found)?;
        Ok((route, path))
    }
}

/// The request's host, lower-case, without port: from `Host` (HTTP/1.1) or the URI
/// authority (HTTP/2).
pub fn request_host<B>(request: &Request<B>) -> Option<String> {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    Some(host.to_ascii_lowercase())
}

/// Phase `authenticate()`: establishes who is calling. Identity providers plug in
/// here; until then every caller is anonymous.
fn authenticate(_request: &Request<Body>) -> Principal {
    Principal::Anonymous
}

/// Phase `authorize()`: the route's policy against the principal. Deny by default.
fn authorize(route: &Route, principal: &Principal) -> Decision {
    match (route.auth, principal) {
        (RouteAuth::Public | RouteAuth::Optional, _) => Decision::Allow,
        (RouteAuth::Required, Principal::Anonymous) => Decision::Challenge,
    }
}

/// Phase `rate_limit()`: per-route budgets. No limiter is configured yet, so every
/// request passes.
fn rate_limit(_route: &Route, _principal: &Principal) -> Result<(), ApiError> {
    Ok(())
}

/// Phase `upstream_request()`: rewrites the request for the upstream — canonical path,
/// header hygiene, forwarding headers, body limit.
fn upstream_request(
    route: &Route,
    path: &CanonicalPath,
    request: Request<Body>,
    context: &RequestContext,
) -> Result<(Request<Body>, crate::body::Overflow), ApiError> {
    let (mut parts, body) = request.into_parts();
    if let Some(length) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > route.body_limit
    {
        return Err(ApiError::payload_too_large());
    }
    let forwarded_path = if route.strip_prefix && route.prefix != "/" {
        let rest = &path.as_str()[route.prefix.len()..];
        if rest.is_empty() { "/" } else { rest }
    } else {
        path.as_str()
    };
    let uri = route
        .upstream
        .uri_for(forwarded_path, parts.uri.query())
        .map_err(ApiError::internal)?;
    let websocket = headers::wants_websocket(&parts.headers);
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::strip_client_identity(&mut parts.headers, &[]);
    headers::add_forwarding(
        &mut parts.headers,
        &context.client,
        original_host.as_ref(),
        &context.request_id,
    );
    if let Ok(host) = HeaderValue::from_str(&route.upstream.authority()) {
        parts.headers.insert(header::HOST, host);
    }
    if websocket {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts
            .headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    parts.uri = uri;
    parts.version = if route.http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let (limited, overflow) = LimitedBody::new(body, route.body_limit);
    Ok((Request::from_parts(parts, Body::new(limited)), overflow))
}

/// Phase `send()`: forwards the request and maps failures to 502/504 (or 413 when the
/// client's streamed body overflowed its limit). WebSocket upgrades are spliced.
async fn send(
    route: &Route,
    (mut request, overflow): (Request<Body>, crate::body::Overflow),
) -> Result<Response, ApiError> {
    let client_upgrade = hyper::upgrade::on(&mut request);
    let is_upgrade = request.headers().contains_key(header::UPGRADE);
    let mut response = match route.upstream.send(request).await {
        Ok(response) => response,
        Err(_) if overflow.happened() => return Err(ApiError::payload_too_large()),
        Err(error @ SendError::Timeout { .. }) => {
            return Err(ApiError::new(
                ErrorKind::UpstreamTimeout,
                "upstream_timeout",
                "The upstream service did not answer in time.",
            )
            .with_internal(error));
        }
        Err(error @ SendError::Failed { .. }) => {
            return Err(ApiError::new(
                ErrorKind::Upstream,
                "upstream_error",
                "The upstream service failed.",
            )
            .with_internal(error));
        }
    };
    if is_upgrade && response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::debug!(%error, "websocket upgrade failed");
                    return;
                }
            };
            let mut client = hyper_util::rt::TokioIo::new(client);
            let mut upstream = hyper_util::rt::TokioIo::new(upstream);
            if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(%error, "websocket connection ended");
            }
        });
    }
    Ok(response.map(Body::new))
}

/// Phase `respond()`: hop-by-hop headers out (except for a 101, which needs
/// `Connection`/`Upgrade`), baseline security headers in when the upstream set none,
/// and the response marked as the upstream's own so error envelopes leave it alone.
fn respond(mut response: Response) -> Response {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        headers::strip_hop_by_hop(response.headers_mut());
    }
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response.extensions_mut().insert(Passthrough);
    response
}

/// Phase `log()`: one line per proxied request, whatever the outcome.
fn log(context: &RequestContext, route: &str, response: &Response) {
    tracing::info!(
        target: "rampart::proxy",
        request_id = context.request_id,
        route,
        client_ip = %context.client.ip,
        status = response.status().as_u16(),
        elapsed_ms = context.started.elapsed().as_secs_f64() * 1000.0,
        "proxied"
    );
}

/// Puts the gateway in front of Rampart's own endpoints: requests for an
/// application host go straight to the gateway; everything else goes to `own`, whose
/// fallback is the gateway.
pub fn front(own: axum::Router, gateway: Gateway) -> axum::Router {
    let fallback_gateway = gateway.clone();
    let own = own.fallback(move |request: Request<Body>| {
        let gateway = fallback_gateway.clone();
        async move { gateway.handle(request).await }
    });
    axum::Router::new().fallback_service(tower::service_fn(move |request: Request<Body>| {
        let gateway = gateway.clone();
        let own = own.clone();
        async move {
            let claimed = request_host(&request).is_some_and(|host| gateway.claims_host(&host));
            let response = if claimed {
                gateway.handle(request).await
            } else {
                use tower::ServiceExt as _;
                match own.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    }))
}
