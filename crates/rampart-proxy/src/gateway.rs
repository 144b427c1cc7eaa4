//! The gateway: the proxied request path as named phases.
//!
//! ```text
//! route() → [CORS preflight] → authenticate() → authorize() → rate_limit()
//!         → upstream_request() → send() → respond() → log()
//! ```
//!
//! Each phase is a function with one job. A phase that refuses returns an
//! [`ApiError`]; `log()` runs whatever happened. See `docs/life-of-a-request.md`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, StatusCode, Version};
use rampart_config::{Config, RouteAuth};
use rampart_core::audit::{AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::{AuthMethod, Principal, Roles};
use rampart_core::vault::{SecretName, Vault};
use rampart_core::{Clock, ErrorKind};
use rampart_http::client_ip::{ClientInfo, Scheme, TrustedProxies};
use rampart_http::error::ApiError;
use rampart_http::extract::auth::rejection;
use rampart_http::metrics::RouteLabel;
use rampart_http::middleware::Passthrough;
use rampart_http::ratelimit::{ratelimit_headers, too_many};
use rampart_http::request_id::RequestId;
use rampart_http::return_url::ReturnUrls;
use rampart_identity::authenticate::{Authentication, Authenticator};
use rampart_identity::tokens::assertion::Assertions;
use rampart_ratelimit::{
    Bucket, Class, Classes, ConcurrencyLimiter, ConcurrencyPermit, Decision, Key, Limit,
    RateLimiter,
};

use crate::body::{BodyWatch, IdleTimeout, LimitedBody};
use crate::body_guard::Guarded;
use crate::cors::{Cors, CorsOutcome};
use crate::headers::{self, IdentityHeaders};
use crate::normalize::{self, CanonicalPath};
use crate::policy::{self, Policy};
use crate::respond::HeaderPolicy;
use crate::secrets::SecretCache;
use crate::upstream::{SendError, Upstream, UpstreamSetupError};

/// The services the gateway's phases use.
#[derive(Clone)]
pub struct GatewayDeps {
    /// Credentials → principal.
    pub authenticator: Arc<Authenticator>,
    /// Roles and permissions.
    pub roles: Arc<Roles>,
    /// Secrets for header injection.
    pub vault: Arc<Vault>,
    /// Signed identity assertions for upstreams.
    pub assertions: Arc<Assertions>,
    /// The audit log (policy denials).
    pub audit: Arc<Auditor>,
    /// The rate limiter (route quotas).
    pub limiter: RateLimiter,
    /// The configured rate classes.
    pub classes: Classes,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// The gateway, cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Vec<Route>,
    trusted: TrustedProxies,
    own_host: Option<String>,
    deps: GatewayDeps,
    /// Rampart's own cookies (session, magic-link binding): never forwarded.
    rampart_cookies: Vec<String>,
    signin: Option<url::Url>,
    strip_extra: Vec<HeaderName>,
    secrets: SecretCache,
    return_urls: ReturnUrls,
    request_timeout: Duration,
}

/// A configured route, compiled for matching and enforcement.
pub(crate) struct Route {
    name: Arc<str>,
    host: Option<String>,
    prefix: String,
    upstream: Upstream,
    upstream_name: Arc<str>,
    policy: Policy,
    strip_prefix: bool,
    preserve_host: bool,
    body_limit: u64,
    http2: bool,
    timeout: Option<Duration>,
    class: Option<Class>,
    quota: Option<Bucket>,
    concurrency: Option<ConcurrencyLimiter>,
    inject: Vec<(HeaderName, SecretName)>,
    headers: HeaderPolicy,
    cors: Option<Cors>,
    identity_headers: bool,
}

/// Facts about the request gathered once and used by every phase.
pub(crate) struct RequestContext {
    pub(crate) request_id: RequestId,
    pub(crate) client: ClientInfo,
    pub(crate) started: Instant,
}

/// What `authenticate()` established.
struct Caller {
    principal: Option<Principal>,
    /// Whether the credential was the session cookie (CSRF-relevant).
    by_cookie: bool,
}

/// What `rate_limit()` hands on: headers for the response, and a held concurrency
/// slot released when the response body ends.
struct Admission {
    headers: Vec<(HeaderName, HeaderValue)>,
    permit: Option<ConcurrencyPermit>,
}

impl Gateway {
    /// Builds the gateway: one pooled client per upstream, routes compiled and
    /// ordered for matching.
    pub fn new(config: &Config, deps: GatewayDeps) -> Result<Self, UpstreamSetupError> {
        let mut upstreams = HashMap::new();
        for (name, upstream) in &config.upstreams {
            upstreams.insert(name.clone(), (Upstream::new(name, upstream)?, upstream));
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            // Config validation guarantees the upstream exists and the prefix is valid.
            let Some((upstream, upstream_config)) = upstreams.get(&route.upstream) else {
                continue;
            };
            let Ok(prefix) = normalize::normalize_prefix(&route.path_prefix) else {
                continue;
            };
            let quota = route.quota_per_minute.map(|q| {
                deps.limiter.bucket(
                    &format!("quota:{}", route.name),
                    Limit::new(q, Duration::from_secs(60), q),
                )
            });
            routes.push(Route {
                name: Arc::from(route.name.as_str()),
                host: route.host.clone(),
                prefix,
                upstream: upstream.clone(),
                upstream_name: Arc::from(route.upstream.as_str()),
                policy: Policy {
                    auth: route.auth,
                    roles: route.policy.roles.clone(),
                    permissions: route.policy.permissions.clone(),
                    require_mfa: route.policy.require_mfa,
                    attributes: route.policy.attributes.clone(),
                    tenant: route.policy.tenant.clone(),
                },
                strip_prefix: route.strip_prefix,
                preserve_host: upstream_config.preserve_host,
                body_limit: route.body_limit.unwrap_or(config.server.body_limit),
                http2: upstream_config.http2,
                timeout: route.timeout,
                class: deps.classes.get(&route.rate_class).cloned(),
                quota,
                concurrency: route
                    .concurrency_limit
                    .map(|n| ConcurrencyLimiter::new(n.get())),
                inject: route
                    .inject_headers
                    .iter()
                    .filter_map(|(name, secret)| {
                        Some((
                            HeaderName::from_bytes(name.as_bytes()).ok()?,
                            SecretName::new(secret.clone()).ok()?,
                        ))
                    })
                    .collect(),
                headers: HeaderPolicy::new(&config.headers, &route.headers),
                cors: route.cors.as_ref().map(Cors::new),
                identity_headers: route.identity_headers,
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
        let secrets = SecretCache::new(Arc::clone(&deps.vault));
        // The same origins the sign-in page checks `rd` against.
        let return_urls = ReturnUrls::for_config(config);
        Ok(Self {
            inner: Arc::new(Inner {
                routes,
                trusted: TrustedProxies::new(config.server.trusted_proxies.clone())
                    .with_client_ip_header(
                        config
                            .server
                            .client_ip_header
                            .map(|h| HeaderName::from_static(h.as_str())),
                    ),
                own_host: config
                    .public_url
                    .as_ref()
                    .and_then(|url| url.host_str())
                    .map(str::to_ascii_lowercase),
                rampart_cookies: vec![
                    config.session.cookie_name().into_owned(),
                    format!(
                        "{}{}",
                        config.session.cookie_prefix(),
                        rampart_identity::magic::BINDING_COOKIE_BASE_NAME
                    ),
                ],
                signin: config.signin_url(),
                strip_extra: config
                    .identity
                    .strip_headers
                    .iter()
                    .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                    .collect(),
                secrets,
                return_urls,
                request_timeout: config.server.request_timeout,
                deps,
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
        let (route, mut response) = match self.route(&request) {
            Ok((route, path)) => (
                Some(Arc::clone(&route.name)),
                self.serve_route(route, path, request, &context).await,
            ),
            Err(error) => (None, error.into_response()),
        };
        let route_name = route.as_deref().unwrap_or("-");
        log(&context, route_name, &response);
        if let Some(route) = route {
            response.extensions_mut().insert(RouteLabel(route));
        }
        response
    }

    /// A matched route: CORS preflight, then the phases under the request deadline
    /// (`server.request_timeout`, until the response head). Refusals carry the
    /// route's CORS headers, so a browser script of an allowed origin can read a 401
    /// or 403 instead of seeing an opaque network error.
    async fn serve_route(
        &self,
        route: &Route,
        path: CanonicalPath,
        request: Request<Body>,
        context: &RequestContext,
    ) -> Response {
        let cors_headers = match route
            .cors
            .as_ref()
            .map(|cors| cors.check(request.method(), request.headers()))
        {
            // Browsers send preflights without credentials: answer before
            // authentication.
            Some(CorsOutcome::Preflight(preflight)) => {
                let (mut parts, ()) = preflight.into_parts();
                route.headers.apply(
                    &mut parts.headers,
                    context.client.scheme == Scheme::Https,
                    false,
                );
                let mut response = Response::from_parts(parts, Body::empty());
                response.extensions_mut().insert(Passthrough);
                return response;
            }
            Some(CorsOutcome::Allowed(headers)) => headers,
            Some(CorsOutcome::NotAllowed | CorsOutcome::NotCors) | None => Vec::new(),
        };
        let watch = BodyWatch::default();
        let deadline = self.inner.request_timeout;
        let phases = self.process(route, path, request, context, &watch, cors_headers.clone());
        let result = match tokio::time::timeout(deadline, phases).await {
            Ok(result) => result,
            // The client was still sending its body: its slowness, not the upstream's.
            Err(_) if watch.waiting_for_client() => {
                return StatusCode::REQUEST_TIMEOUT.into_response();
            }
            Err(_) => Err(ApiError::new(
                ErrorKind::UpstreamTimeout,
                "upstream_timeout",
                "The upstream service did not answer in time.",
            )
            .with_internal(RequestDeadline(deadline))),
        };
        match result {
            Ok(response) => response,
            Err(error) => {
                let mut response = error.into_response();
                let headers = response.headers_mut();
                if route.cors.is_some() {
                    headers.append(header::VARY, crate::cors::vary());
                }
                for (name, value) in cors_headers {
                    headers.insert(name, value);
                }
                response
            }
        }
    }

    async fn process(
        &self,
        route: &Route,
        path: CanonicalPath,
        request: Request<Body>,
        context: &RequestContext,
        watch: &BodyWatch,
        cors_headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, ApiError> {
        let (parts, body) = request.into_parts();
        let caller = match self.authenticate(route, &parts).await {
            Ok(caller) => caller,
            // A refused credential (an expired session cookie, typically): a browser
            // asking for a page is sent to sign in — with the cookie-clearing
            // `Set-Cookie` — rather than shown a JSON 401.
            Err(refused) if refused.status() == StatusCode::UNAUTHORIZED => {
                let challenge = self.challenge(&parts, context);
                if challenge.status() != StatusCode::FOUND {
                    return Err(refused);
                }
                return Err(match refused.header(header::SET_COOKIE) {
                    Some(clear) => challenge.with_header(header::SET_COOKIE, clear.clone()),
                    None => challenge,
                });
            }
            Err(error) => return Err(error),
        };
        // A cookie-authenticated WebSocket handshake is a GET, but a page of another
        // site could open it with the victim's cookie (cross-site WebSocket
        // hijacking): it gets the same origin check as an unsafe method.
        if caller.by_cookie
            && (rampart_http::extract::auth::is_unsafe(&parts.method)
                || headers::wants_websocket(&parts.headers))
        {
            cross_site_check(&parts, route.cors.as_ref())?;
        }
        let tenant = match self.decide(route, caller.principal.as_ref(), &parts) {
            policy::Decision::Allow { tenant } => tenant,
            policy::Decision::Challenge => return Err(self.challenge(&parts, context)),
            policy::Decision::Deny(deny) => {
                return Err(self
                    .deny(route, caller.principal.as_ref(), deny, context)
                    .await);
            }
        };
        let admission = rate_limit(route, caller.principal.as_ref(), context).await?;
        let prepared = self
            .upstream_request(
                route,
                &path,
                parts,
                body,
                &caller,
                tenant.as_deref(),
                context,
                watch,
            )
            .await?;
        let response = send(route, prepared, watch).await?;
        Ok(respond(
            route,
            response,
            context,
            caller.principal.is_some(),
            cors_headers,
            admission,
        ))
    }

    pub(crate) fn context(&self, request: &Request<Body>) -> RequestContext {
        // The edge service always assigns one; only in-process tests without it
        // get a fresh id here.
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate);
        let client = request
            .extensions()
            .get::<ClientInfo>()
            .copied()
            .unwrap_or_else(|| rampart_http::edge::client_of(request, &self.inner.trusted));
        RequestContext {
            request_id,
            client,
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
            .route_for(host.as_deref(), &path)
            .ok_or_else(ApiError::not_found)?;
        Ok((route, path))
    }

    /// The first route matching `host` and `path`.
    pub(crate) fn route_for(&self, host: Option<&str>, path: &CanonicalPath) -> Option<&Route> {
        self.inner.routes.iter().find(|route| {
            route.host.as_deref().is_none_or(|h| Some(h) == host)
                && path.starts_with_segment(&route.prefix)
        })
    }

    /// `authenticate()` for forward-auth: the principal only.
    pub(crate) async fn authenticate_route(
        &self,
        route: &Route,
        parts: &Parts,
    ) -> Result<Option<Principal>, ApiError> {
        Ok(self.authenticate(route, parts).await?.principal)
    }

    /// `authorize()`: the route's policy for `principal`.
    pub(crate) fn decide(
        &self,
        route: &Route,
        principal: Option<&Principal>,
        parts: &Parts,
    ) -> policy::Decision {
        route.policy.decide(
            &self.inner.deps.roles,
            principal,
            &parts.headers,
            parts.uri.query(),
        )
    }

    /// Whether the route sends identity headers.
    pub(crate) fn identity_headers_enabled(&self, route: &Route) -> bool {
        route.identity_headers
    }

    /// The signed identity assertion for `principal` at the route's upstream.
    pub(crate) fn assertion(
        &self,
        route: &Route,
        principal: &Principal,
        tenant: Option<&str>,
    ) -> Result<Arc<str>, ApiError> {
        self.inner
            .deps
            .assertions
            .assert(principal, &route.upstream_name, tenant)
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Internal,
                    "internal",
                    "Something went wrong on our side.",
                )
                .with_internal(e)
            })
    }

    /// Phase `authenticate()`: who is calling. Public routes skip it entirely (their
    /// credentials are the application's business); on optional routes a refused
    /// credential means anonymous; on required routes it is refused.
    async fn authenticate(&self, route: &Route, parts: &Parts) -> Result<Caller, ApiError> {
        if route.policy.auth == RouteAuth::Public {
            return Ok(Caller {
                principal: None,
                by_cookie: false,
            });
        }
        match self
            .inner
            .deps
            .authenticator
            .authenticate_request(parts)
            .await
        {
            Ok(Some(Authentication { principal, session })) => Ok(Caller {
                by_cookie: session.is_some(),
                principal: Some(principal),
            }),
            Ok(None) => Ok(Caller {
                principal: None,
                by_cookie: false,
            }),
            Err(error) => {
                let kind = error.kind();
                if route.policy.auth == RouteAuth::Optional && kind == ErrorKind::Unauthenticated {
                    return Ok(Caller {
                        principal: None,
                        by_cookie: false,
                    });
                }
                let clear = HeaderValue::from_str(
                    &self.inner.deps.authenticator.sessions().cookie().clear(),
                )
                .ok();
                Err(rejection(error, clear))
            }
        }
    }

    /// Refuses until the caller signs in: a browser asking for a page is sent to the
    /// sign-in page with a return URL; an API client gets 401.
    pub(crate) fn challenge(&self, parts: &Parts, context: &RequestContext) -> ApiError {
        let wants_page = matches!(parts.method, Method::GET | Method::HEAD)
            && parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"));
        if wants_page
            && let Some(signin) = &self.inner.signin
            && let Some(location) = signin_location(signin, parts, context, &self.inner.return_urls)
        {
            return ApiError::found("signin_required", "Sign in to continue.", location);
        }
        rampart_http::extract::auth::unauthenticated(None)
    }

    pub(crate) async fn deny(
        &self,
        route: &Route,
        principal: Option<&Principal>,
        deny: policy::Deny,
        context: &RequestContext,
    ) -> ApiError {
        tracing::info!(request_id = context.request_id.as_str(), route = %route.name, reason = %deny.reason, "access denied");
        let mut event = AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied)
            .target(format!("route:{}", route.name))
            .client_ip(context.client.ip)
            .request_id(context.request_id.as_str().to_owned())
            .reason(deny.reason.clone());
        if let Some(principal) = principal {
            event = event.actor(principal.username.clone());
        }
        if let Err(error) = self.inner.deps.audit.record(event).await {
            // The request is refused either way; the failure is logged.
            tracing::error!(%error, "could not audit a policy denial");
        }
        let message = match deny.code {
            "mfa_required" => "This resource needs a session that passed a second factor.",
            "tenant_required" => "Name the tenant (X-Tenant-ID) for this resource.",
            "tenant_forbidden" => "You are not a member of that tenant.",
            "tenant_mismatch" => "The request names two different tenants.",
            "tenant_invalid" => "The tenant header is invalid.",
            _ => "You are not allowed to access this resource.",
        };
        ApiError::new(ErrorKind::Forbidden, deny.code, message)
    }

    /// Phase `upstream_request()`: rewrites the request for the upstream — canonical
    /// path, header hygiene, forwarding and identity headers, injected secrets, body
    /// limit.
    #[allow(clippy::too_many_arguments)]
    async fn upstream_request(
        &self,
        route: &Route,
        path: &CanonicalPath,
        mut parts: Parts,
        body: Body,
        caller: &Caller,
        tenant: Option<&str>,
        context: &RequestContext,
        watch: &BodyWatch,
    ) -> Result<Request<Body>, ApiError> {
        if let Some(length) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && length > route.body_limit
        {
            return Err(ApiError::payload_too_large());
        }
        // Chunked framing is parsed by Rampart (HTTP/1.1 only; HTTP/2 frames bodies
        // itself and a `Content-Length` body can only be short).
        let chunked = parts.version <= Version::HTTP_11
            && parts.headers.contains_key(header::TRANSFER_ENCODING);
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
        headers::strip_client_identity(&mut parts.headers, &self.inner.strip_extra);
        // On a tenant-scoped route the tenant header carries the resolved tenant and
        // nothing else: with `source = "claim"` the client's header is not what the
        // policy checked, and an upstream reading it would act in another tenant.
        if let Some(rule) = &route.policy.tenant
            && let Ok(name) = HeaderName::from_bytes(rule.header.as_bytes())
        {
            parts.headers.remove(&name);
            if let Some(value) = tenant.and_then(|t| HeaderValue::from_str(t).ok()) {
                parts.headers.insert(name, value);
            }
        }
        headers::add_forwarding(
            &mut parts.headers,
            &context.client,
            original_host.as_ref(),
            context.request_id.header_value(),
        );
        // Rampart's cookies leave on every route, public ones included (an upstream
        // holding a user's session cookie could act as the user); a bearer token only
        // when Rampart consumed it (on a public route it may be the application's).
        let bearer_consumed = caller.principal.as_ref().is_some_and(|principal| {
            matches!(
                principal.method,
                AuthMethod::AccessToken | AuthMethod::ApiToken
            )
        });
        headers::strip_rampart_credentials(
            &mut parts.headers,
            &self.inner.rampart_cookies,
            bearer_consumed,
        );
        if let Some(principal) = &caller.principal
            && route.identity_headers
        {
            let assertion = self.assertion(route, principal, tenant)?;
            headers::add_identity(
                &mut parts.headers,
                &IdentityHeaders {
                    username: &principal.username,
                    user_id: principal.user_id.as_str(),
                    roles: &principal.roles,
                    tenant,
                    method: principal.method.as_str(),
                    mfa: principal.mfa,
                    assertion: Some(&assertion),
                },
            );
        }
        for (name, secret) in &route.inject {
            let value = self.inner.secrets.get(secret).await.map_err(|error| {
                ApiError::new(
                    ErrorKind::Unavailable,
                    "unavailable",
                    "The service is temporarily unavailable.",
                )
                .with_internal(error)
            })?;
            let mut value = HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                ApiError::new(
                    ErrorKind::Internal,
                    "internal",
                    "Something went wrong on our side.",
                )
            })?;
            value.set_sensitive(true);
            parts.headers.insert(name.clone(), value);
        }
        if !route.preserve_host
            && let Ok(host) = HeaderValue::from_str(&route.upstream.authority())
        {
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
        let limited = LimitedBody::new(body, route.body_limit, watch.clone());
        if !chunked {
            return Ok(Request::from_parts(parts, Body::new(limited)));
        }
        // Nothing is sent upstream before a chunked body has started well: broken
        // framing or an oversized first chunk is refused without an upstream request.
        // (Only chunked bodies wait: an HTTP/2 stream that sends its first frame after
        // the response has begun must not be held back.)
        let body = crate::body::prefetch(limited)
            .await
            .map_err(|error| body_error(watch, error))?;
        Ok(Request::from_parts(parts, Body::new(body)))
    }
}

/// Phase `rate_limit()`: the route's rate class, its per-principal quota, and its
/// per-principal concurrency limit. 429 with `Retry-After` and `RateLimit-*`.
async fn rate_limit(
    route: &Route,
    principal: Option<&Principal>,
    context: &RequestContext,
) -> Result<Admission, ApiError> {
    let user = principal.map(|p| p.user_id.as_str());
    let credential = principal.and_then(|p| p.credential_id.as_deref());
    let mut headers = Vec::new();
    if let Some(class) = &route.class {
        let key = class.key_by.key(context.client.ip, user, credential);
        let decision = class.bucket.check(&key).await;
        headers = ratelimit_headers(&decision);
        if let Decision::Limited { .. } = decision {
            return Err(too_many(&decision));
        }
    }
    if let (Some(quota), Some(user)) = (&route.quota, user) {
        let decision = quota.check(&Key::Name(Arc::from(user))).await;
        if let Decision::Limited { .. } = decision {
            return Err(too_many(&decision));
        }
    }
    let permit = match (&route.concurrency, user) {
        (Some(limiter), Some(user)) => match limiter.try_acquire(&Key::Name(Arc::from(user))) {
            Some(permit) => Some(permit),
            None => {
                return Err(ApiError::new(
                    ErrorKind::RateLimited,
                    "too_many_concurrent_requests",
                    "Too many requests in flight; wait for one to finish.",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
        },
        _ => None,
    };
    Ok(Admission { headers, permit })
}

/// Cookie-authenticated state-changing requests must not come from another site:
/// a forged cross-site form would otherwise act with the victim's session at the
/// upstream. `Sec-Fetch-Site: cross-site` is refused; so is an `Origin` whose host
/// differs from the request's host — unless the route's CORS policy names that exact
/// origin with `allow_credentials`, which is the operator saying that origin may
/// make credentialed requests.
fn cross_site_check(parts: &Parts, cors: Option<&Cors>) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::new(
            ErrorKind::Forbidden,
            "csrf_failed",
            "Cross-site requests with the session cookie are refused.",
        )
    };
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if let (Some(cors), Some(origin)) = (cors, origin)
        && cors.allows_credentialed(origin)
    {
        return Ok(());
    }
    if parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return Err(refuse());
    }
    if let Some(origin) = origin {
        let origin_host = url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        let host = request_host_of(&parts.headers, &parts.uri);
        if origin_host.is_none() || origin_host != host {
            return Err(refuse());
        }
    }
    Ok(())
}

/// The sign-in URL with `rd` set to the request's own URL.
fn signin_location(
    signin: &url::Url,
    parts: &Parts,
    context: &RequestContext,
    return_urls: &ReturnUrls,
) -> Option<HeaderValue> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())?;
    let scheme = match context.client.scheme {
        Scheme::Https => "https",
        Scheme::Http => "http",
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut location = signin.clone();
    let target = return_urls.validate(&format!("{scheme}://{host}{path_and_query}"));
    location.query_pairs_mut().append_pair("rd", &target);
    HeaderValue::from_str(location.as_str()).ok()
}

/// Phase `send()`: forwards the request and maps failures to 502/504 (or 413 when the
/// client's streamed body overflowed its limit). WebSocket upgrades are spliced.
async fn send(
    route: &Route,
    mut request: Request<Body>,
    watch: &BodyWatch,
) -> Result<Response, ApiError> {
    let client_upgrade = hyper::upgrade::on(&mut request);
    let is_upgrade = request.headers().contains_key(header::UPGRADE);
    let sent = match route.timeout {
        Some(limit) => match tokio::time::timeout(limit, route.upstream.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout {
                upstream: Arc::clone(&route.upstream_name),
                timeout: limit,
            }),
        },
        None => route.upstream.send(request).await,
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(error) if watch.overflowed() || watch.client_failed() => {
            return Err(body_error(watch, error));
        }
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
    let idle = route.upstream.read_timeout();
    Ok(response.map(|body| Body::new(IdleTimeout::new(body, idle))))
}

/// The refusal for a request body that failed on its way in: over the limit (413),
/// or broken by the client — malformed chunking, a dropped connection (400).
fn body_error(watch: &BodyWatch, cause: impl std::fmt::Display) -> ApiError {
    if watch.overflowed() {
        return ApiError::payload_too_large();
    }
    ApiError::new(
        ErrorKind::Client,
        "bad_request",
        "The request body is malformed or incomplete.",
    )
    .with_internal(ClientBodyFailed(cause.to_string()))
}

/// The client's request body failed (the cause as text: hyper's error is not `Sync`).
#[derive(Debug, thiserror::Error)]
#[error("the request body failed: {0}")]
struct ClientBodyFailed(String);

/// `server.request_timeout` elapsed before the response head.
#[derive(Debug, thiserror::Error)]
#[error("no response head within server.request_timeout ({0:?})")]
struct RequestDeadline(Duration);

/// Phase `respond()`: hop-by-hop headers out (except for a 101, which needs
/// `Connection`/`Upgrade`), the route's header policy, CORS and rate-limit headers,
/// and the response marked as the upstream's own so error envelopes leave it alone.
fn respond(
    route: &Route,
    response: Response,
    context: &RequestContext,
    authenticated: bool,
    cors_headers: Vec<(HeaderName, HeaderValue)>,
    admission: Admission,
) -> Response {
    let (mut parts, body) = response.into_parts();
    if parts.status != StatusCode::SWITCHING_PROTOCOLS {
        headers::strip_hop_by_hop(&mut parts.headers);
    }
    route.headers.apply(
        &mut parts.headers,
        context.client.scheme == Scheme::Https,
        authenticated,
    );
    if route.cors.is_some() {
        parts.headers.append(header::VARY, crate::cors::vary());
    }
    for (name, value) in cors_headers.into_iter().chain(admission.headers) {
        parts.headers.insert(name, value);
    }
    let body = match admission.permit {
        Some(permit) => Body::new(Guarded::new(body, permit)),
        None => body,
    };
    let mut response = Response::from_parts(parts, body);
    response.extensions_mut().insert(Passthrough);
    response
}

/// Phase `log()`: one line per proxied request, whatever the outcome.
fn log(context: &RequestContext, route: &str, response: &Response) {
    tracing::info!(
        target: "rampart::proxy",
        request_id = context.request_id.as_str(),
        route,
        client_ip = %context.client.ip,
        status = response.status().as_u16(),
        elapsed_ms = context.started.elapsed().as_secs_f64() * 1000.0,
        "proxied"
    );
}

/// The request's host, lower-case, without port: from `Host` (HTTP/1.1) or the URI
/// authority (HTTP/2).
pub fn request_host<B>(request: &Request<B>) -> Option<String> {
    request_host_of(request.headers(), request.uri())
}

fn request_host_of(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    let raw = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    host_without_port(raw)
}

/// `host[:port]` → `host`, lower-case (IPv6 literals keep no brackets).
pub(crate) fn host_without_port(raw: &str) -> Option<String> {
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    Some(host.to_ascii_lowercase())
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
            // `/auth/verify` is always Rampart's own, whatever `Host` the proxy in
            // front keeps: judging it as application traffic would judge the wrong
            // request.
            let claimed = request.uri().path() != "/auth/verify"
                && request_host(&request).is_some_and(|host| gateway.claims_host(&host));
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
