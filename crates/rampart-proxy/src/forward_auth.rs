//! Forward-auth (F-FWDAUTH): `GET /auth/verify`, for nginx `auth_request`, Caddy
//! `forward_auth` and Traefik `ForwardAuth`.
//!
//! The proxy in front asks about the original request, passed in headers:
//! `X-Original-URI` / `X-Original-Method` (nginx) or `X-Forwarded-Uri` /
//! `X-Forwarded-Method` (Traefik, Caddy), with `X-Forwarded-Host`/`Host` and
//! `X-Forwarded-Proto`. Rampart matches the same routes and applies the same
//! authentication and policy as the inline gateway:
//!
//! - allowed: `200` with the identity headers (`X-Rampart-User`, `-Roles`, `-Tenant`,
//!   `-Auth-Method`, `-Assertion` …) for the proxy to copy to the upstream;
//! - not signed in: an API client gets `401`; a browser asking for a page is sent to
//!   the sign-in page with a validated return URL — as `302` for Traefik and Caddy,
//!   and as `401` with a `Location` header for nginx, whose `auth_request` only
//!   understands 2xx/401/403 (the nginx example turns it into the redirect);
//! - refused by policy: `403` (audited).
//!
//! Fails closed: a missing or malformed forwarded URI, an unknown host or path (deny
//! by default), a malformed credential — all refuse.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, StatusCode};
use rampart_core::ErrorKind;
use rampart_http::error::ApiError;
use rampart_http::middleware::Passthrough;

use crate::gateway::Gateway;
use crate::headers::{self, IdentityHeaders};
use crate::normalize;
use crate::policy;

/// `/auth/verify` with its OpenAPI operation, for the API document.
pub fn router(gateway: Gateway) -> utoipa_axum::router::OpenApiRouter {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(verify))
        .with_state(gateway)
}

/// Forward-auth check of the request described by the forwarding headers.
#[utoipa::path(
    get,
    path = "/auth/verify",
    tag = "forward-auth",
    params(
        ("X-Original-URI" = Option<String>, Header, description = "nginx: the original request URI"),
        ("X-Original-Method" = Option<String>, Header, description = "nginx: the original method"),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "Traefik/Caddy: the original request URI"),
        ("X-Forwarded-Method" = Option<String>, Header, description = "Traefik/Caddy: the original method"),
        ("X-Forwarded-Host" = Option<String>, Header, description = "The original host"),
    ),
    responses(
        (status = 200, description = "Allowed; identity in X-Rampart-* response headers"),
        (status = 302, description = "Traefik/Caddy, browser not signed in: to the sign-in page"),
        (status = 401, description = "Not signed in (nginx: with Location for the sign-in redirect)", body = rampart_http::routes::ErrorEnvelope),
        (status = 403, description = "Refused by policy, unknown route, or a malformed forwarded request", body = rampart_http::routes::ErrorEnvelope),
    )
)]
pub async fn verify(
    axum::extract::State(gateway): axum::extract::State<Gateway>,
    request: Request<Body>,
) -> Response {
    gateway.verify(request).await
}

/// Which proxy is asking (decides how a browser is sent to sign in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// nginx `auth_request`: only 2xx/401/403 are understood.
    Nginx,
    /// Traefik / Caddy: the response is passed to the client as is.
    Passthrough,
}

impl Gateway {
    /// Handles a forward-auth request.
    pub async fn verify(&self, request: Request<Body>) -> Response {
        let context = self.context(&request);
        let (parts, _) = request.into_parts();
        let response = match self.verify_parts(parts, &context).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        tracing::info!(
            target: "rampart::forward_auth",
            request_id = context.request_id,
            client_ip = %context.client.ip,
            status = response.status().as_u16(),
            "verified"
        );
        response
    }

    async fn verify_parts(
        &self,
        parts: Parts,
        context: &crate::gateway::RequestContext,
    ) -> Result<Response, ApiError> {
        let malformed = || {
            ApiError::new(
                ErrorKind::Forbidden,
                "invalid_forwarded_request",
                "The forwarded request is missing or malformed.",
            )
        };
        let caller = if parts.headers.contains_key("x-original-uri") {
            Caller::Nginx
        } else {
            Caller::Passthrough
        };
        let original =
            forwarded(&parts, "x-original-uri", "x-forwarded-uri").ok_or_else(malformed)?;
        let original_uri: http::Uri = original.parse().map_err(|_| malformed())?;
        if original_uri.scheme().is_some() || !original.starts_with('/') {
            return Err(malformed());
        }
        let method = forwarded(&parts, "x-original-method", "x-forwarded-method")
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| malformed()))
            .transpose()?
            .unwrap_or(Method::GET);
        let host = parts
            .headers
            .get("x-forwarded-host")
            .or_else(|| parts.headers.get(header::HOST))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(malformed)?;
        let path = normalize::normalize(original_uri.path()).map_err(|_| malformed())?;

        // The request as the client sent it: its method, URI and host, with the
        // credentials (cookie, Authorization) the proxy passed along.
        let mut original_parts = parts;
        original_parts.method = method;
        original_parts.uri = original_uri;
        if let Ok(value) = HeaderValue::from_str(&host) {
            original_parts.headers.insert(header::HOST, value);
        }
        let host_name = crate::gateway::host_without_port(&host);
        let route = self.route_for(host_name.as_deref(), &path).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Forbidden,
                "forbidden",
                "No route allows this request.",
            )
        })?;
        let principal = self.authenticate_route(route, &original_parts).await?;
        match self.decide(route, principal.as_ref(), &original_parts) {
            policy::Decision::Allow { tenant } => {
                let mut response = StatusCode::OK.into_response();
                if let Some(principal) = &principal
                    && self.identity_headers_enabled(route)
                {
                    let assertion = self.assertion(route, principal, tenant.as_deref())?;
                    headers::add_identity(
                        response.headers_mut(),
                        &IdentityHeaders {
                            username: &principal.username,
                            user_id: principal.user_id.as_str(),
                            roles: &principal.roles,
                            tenant: tenant.as_deref(),
                            method: principal.method.as_str(),
                            mfa: principal.mfa,
                            assertion: Some(&assertion),
                        },
                    );
                }
                response.extensions_mut().insert(Passthrough);
                Ok(response)
            }
            policy::Decision::Challenge => {
                let challenge = self.challenge(&original_parts, context);
                Err(match (caller, challenge.status()) {
                    // nginx: keep the 401 but carry the sign-in location for the
                    // `error_page 401` handler to redirect to.
                    (Caller::Nginx, StatusCode::FOUND) => nginx_signin(challenge),
                    _ => challenge,
                })
            }
            policy::Decision::Deny(deny) => {
                Err(self.deny(route, principal.as_ref(), deny, context).await)
            }
        }
    }
}

/// A header from either naming convention, if present and text.
fn forwarded<'a>(parts: &'a Parts, nginx: &str, other: &str) -> Option<&'a str> {
    parts
        .headers
        .get(nginx)
        .or_else(|| parts.headers.get(other))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// The 302 challenge turned into nginx's shape: 401 with the same `Location`.
fn nginx_signin(challenge: ApiError) -> ApiError {
    let location = challenge.header(header::LOCATION).cloned();
    let error = rampart_http::extract::auth::unauthenticated(None);
    match location {
        Some(location) => error.with_header(header::LOCATION, location),
        None => error,
    }
}
