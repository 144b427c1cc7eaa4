//! Rate limiting of Rampart's own endpoints, and the 429 shape shared with the proxy.
//!
//! Sign-in, second-factor, recovery-code, token, registration and magic-link
//! endpoints are in the `auth` class (5/s, burst 10 per client IP by default); every
//! other endpoint is in `general`. The buckets are the same ones the gateway uses, so
//! a client has one budget per class wherever it sends requests. Own endpoints are
//! keyed by client address: the limit applies before authentication.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName, HeaderValue};
use rampart_core::ErrorKind;
use rampart_ratelimit::{Classes, Decision};

use crate::client_ip::ClientInfo;
use crate::error::ApiError;

/// Endpoints in the `auth` class: everything that checks a password, a code or a
/// one-time token.
pub const AUTH_CLASS_PATHS: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/login/mfa",
    "/api/v1/auth/token",
    "/api/v1/auth/magic-link",
    "/api/v1/auth/magic-link/consume",
    "/api/v1/setup",
    "/api/v1/register",
    "/api/v1/me/password",
    "/api/v1/me/mfa/totp/enable",
    "/api/v1/me/mfa/totp/disable",
    "/api/v1/me/mfa/recovery-codes",
    "/auth/magic-link",
    "/login",
    "/login/mfa",
];

/// The rate class of one of Rampart's own paths.
pub fn class_of(path: &str) -> &'static str {
    if AUTH_CLASS_PATHS.contains(&path) {
        rampart_config::AUTH_RATE_CLASS
    } else {
        rampart_config::GENERAL_RATE_CLASS
    }
}

/// Middleware for Rampart's own endpoints: the path's class, keyed by client IP.
pub async fn limit_own(State(classes): State<Classes>, request: Request, next: Next) -> Response {
    let Some(class) = classes.get(class_of(request.uri().path())) else {
        return next.run(request).await;
    };
    let Some(client) = request.extensions().get::<ClientInfo>().copied() else {
        // The edge middleware always runs first in the served stack.
        return next.run(request).await;
    };
    let decision = class
        .bucket
        .check(&class.key_by.key(client.ip, None, None))
        .await;
    if !decision.is_allowed() {
        return too_many(&decision).into_response();
    }
    let mut response = next.run(request).await;
    for (name, value) in ratelimit_headers(&decision) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (IETF draft
/// httpapi-ratelimit-headers), in seconds rounded up.
pub fn ratelimit_headers(decision: &Decision) -> Vec<(HeaderName, HeaderValue)> {
    let (limit, remaining, reset) = match *decision {
        Decision::Allowed {
            limit,
            remaining,
            reset,
        } => (limit, remaining, reset),
        Decision::Limited { limit, reset, .. } => (limit, 0, reset),
    };
    vec![
        (
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(limit),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(remaining),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(ceil_secs(reset)),
        ),
    ]
}

/// 429 in the envelope with `Retry-After` and the `RateLimit-*` headers.
pub fn too_many(decision: &Decision) -> ApiError {
    let retry_after = match decision {
        Decision::Limited { retry_after, .. } => ceil_secs(*retry_after).max(1),
        Decision::Allowed { .. } => 1,
    };
    let mut error = ApiError::new(
        ErrorKind::RateLimited,
        "rate_limited",
        "Too many requests; slow down.",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after));
    for (name, value) in ratelimit_headers(decision) {
        error = error.with_header(name, value);
    }
    error
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_paths_are_in_the_auth_class() {
        assert_eq!(class_of("/api/v1/auth/login"), "auth");
        assert_eq!(class_of("/api/v1/auth/login/mfa"), "auth");
        assert_eq!(class_of("/api/v1/auth/magic-link"), "auth");
        assert_eq!(class_of("/api/v1/me"), "general");
    }

    #[test]
    fn limited_decisions_carry_retry_after_rounded_up() {
        let decision = Decision::Limited {
            limit: 10,
            retry_after: Duration::from_millis(200),
            reset: Duration::from_millis(2200),
        };
        let response = too_many(&decision).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["ratelimit-limit"], "10");
        assert_eq!(response.headers()["ratelimit-remaining"], "0");
        assert_eq!(response.headers()["ratelimit-reset"], "3");
    }
}
