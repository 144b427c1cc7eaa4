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
//! Fails closed: a missing or malformed forwarded URI, two different ones (a client
//! adding the other convention's header), an unknown host or path (deny by
//! default), a malformed credential — all refuse. A browser whose session cookie
//! is refused (expired, revoked, malformed) is sent to sign in like one without a
//! cookie, with the `Set-Cookie` that clears it.

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
            request_id = context.request_id.as_str(),
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
        let original = forwarded(&parts, &["x-original-uri", "x-forwarded-uri"])
            .map_err(|_| malformed())?
            .ok_or_else(malformed)?;
        let original_uri: http::Uri = original.parse().map_err(|_| malformed())?;
        if original_uri.scheme().is_some() || !original.starts_with('/') {
            return Err(malformed());
        }
        let method = forwarded(&parts, &["x-original-method", "x-forwarded-method"])
            .map_err(|_| malformed())?
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| malformed()))
            .transpose()?
            .unwrap_or(Method::GET);
        let host = match forwarded(&parts, &["x-forwarded-host"]).map_err(|_| malformed())? {
            Some(host) => host,
            None => parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(malformed)?,
        }
        .to_owned();
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
        let principal = match self.authenticate_route(route, &original_parts).await {
            Ok(principal) => principal,
            Err(refused) => {
                return Err(self.refused_cookie(refused, &original_parts, context, caller));
            }
        };
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

    /// A refused session cookie (expired, revoked, malformed) on a browser's page
    /// request: the browser is sent to sign in, with the `Set-Cookie` that clears the
    /// cookie — still no access, and signing in replaces the session. A bare 401
    /// would strand it: behind nginx, the clearing `Set-Cookie` of a 401 never
    /// reaches the browser, which would present the dead cookie again and again.
    /// Anything else (API clients, refused bearer tokens) keeps the refusal.
    fn refused_cookie(
        &self,
        refused: ApiError,
        parts: &Parts,
        context: &crate::gateway::RequestContext,
        caller: Caller,
    ) -> ApiError {
        let Some(clear) = refused.header(header::SET_COOKIE).cloned() else {
            return refused;
        };
        let challenge = self.challenge(parts, context);
        if challenge.status() != StatusCode::FOUND {
            return refused;
        }
        let challenge = challenge.with_header(header::SET_COOKIE, clear);
        match caller {
            Caller::Nginx => nginx_signin(challenge),
            Caller::Passthrough => challenge,
        }
    }
}

/// A description of the original request, under any of `names` (both naming
/// conventions), if present and not empty.
///
/// The proxy sets the headers of its own convention, replacing what the client
/// sent under those names — but passes the client's other headers along. A client
/// behind Traefik that adds `X-Original-URI: /public` would otherwise have Rampart
/// judge `/public` while Traefik forwards the real URI. So two different values —
/// under both names, or one name repeated — mean someone besides the proxy spoke:
/// refused as ambiguous. The same value twice (a proxy that sets both) is fine.
fn forwarded<'a>(parts: &'a Parts, names: &[&str]) -> Result<Option<&'a str>, Ambiguous> {
    let mut found: Option<&str> = None;
    for name in names {
        for value in parts.headers.get_all(*name) {
            let value = value.to_str().map_err(|_| Ambiguous)?;
            if value.is_empty() {
                continue;
            }
            match found {
                Some(seen) if seen != value => return Err(Ambiguous),
                _ => found = Some(value),
            }
        }
    }
    Ok(found)
}

/// Two different descriptions of the original request, or one that is not text
/// (see [`forwarded`]).
#[derive(Debug)]
struct Ambiguous;

/// The 302 challenge turned into nginx's shape: 401 with the same `Location` (and
/// the `Set-Cookie` clearing a refused session cookie, if any).
fn nginx_signin(challenge: ApiError) -> ApiError {
    let mut error = rampart_http::extract::auth::unauthenticated(None);
    for name in [header::LOCATION, header::SET_COOKIE] {
        if let Some(value) = challenge.header(name.clone()) {
            error = error.with_header(name, value.clone());
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(pairs: &[(&'static str, &'static str)]) -> Parts {
        let mut request = Request::builder().uri("/auth/verify");
        for (name, value) in pairs {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    const URI: &[&str] = &["x-original-uri", "x-forwarded-uri"];

    #[test]
    fn one_description_of_the_request_is_taken() {
        assert_eq!(
            forwarded(&parts(&[("x-original-uri", "/a")]), URI).unwrap(),
            Some("/a")
        );
        assert_eq!(
            forwarded(&parts(&[("x-forwarded-uri", "/b")]), URI).unwrap(),
            Some("/b")
        );
        assert_eq!(forwarded(&parts(&[]), URI).unwrap(), None);
        assert_eq!(
            forwarded(&parts(&[("x-forwarded-uri", "")]), URI).unwrap(),
            None
        );
        // A proxy that sets both conventions to the same value.
        let both = parts(&[("x-original-uri", "/a"), ("x-forwarded-uri", "/a")]);
        assert_eq!(forwarded(&both, URI).unwrap(), Some("/a"));
    }

    #[test]
    fn two_different_descriptions_are_refused() {
        // A client behind Traefik adding nginx's header, or behind nginx adding
        // Traefik's: Rampart would judge one URI while the proxy forwards another.
        let injected = parts(&[("x-forwarded-uri", "/admin"), ("x-original-uri", "/public")]);
        assert!(forwarded(&injected, URI).is_err());
        let repeated = parts(&[
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-host", "evil.example"),
        ]);
        assert!(forwarded(&repeated, &["x-forwarded-host"]).is_err());
    }
}
