//! The one error envelope, and the one place where fault kinds become status codes.
//!
//! Handlers return [`ApiError`]. Its `IntoResponse` does not render a body: it puts
//! the error into a response extension, and the edge service
//! ([`crate::edge::Edge`], through [`crate::middleware::render_error`]) renders
//! `{"error":{"code","message","request_id"}}` with the request id and logs the
//! internal cause. Internal text therefore never reaches a client, and every error —
//! including axum's own 404/405 and a caught panic — has the same shape.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use rampart_core::ErrorKind;
use serde::Serialize;

/// The status code for a fault kind. The single mapping in Rampart.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Client => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The stable code and generic message used when a response has an error status but
/// no [`ApiError`] behind it (axum's 405, hyper-level failures, layers).
pub fn default_for_status(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "The request is malformed."),
        401 => ("unauthenticated", "Authentication is required."),
        403 => ("forbidden", "You are not allowed to do this."),
        404 => ("not_found", "Nothing here."),
        405 => ("method_not_allowed", "This method is not allowed here."),
        408 => ("request_timeout", "The request took too long to arrive."),
        409 => ("conflict", "The request conflicts with the current state."),
        413 => ("payload_too_large", "The request body is too large."),
        415 => (
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        422 => ("invalid_body", "The request body is invalid."),
        429 => ("rate_limited", "Too many requests; slow down."),
        431 => ("headers_too_large", "The request headers are too large."),
        502 => ("upstream_error", "The upstream service failed."),
        503 => ("unavailable", "The service is temporarily unavailable."),
        504 => (
            "upstream_timeout",
            "The upstream service did not answer in time.",
        ),
        s if s >= 500 => ("internal", "Something went wrong on our side."),
        _ => ("bad_request", "The request was refused."),
    }
}

/// An error to send to the client in the envelope.
#[derive(Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    headers: Vec<(HeaderName, HeaderValue)>,
    internal: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    /// An error of the given kind with a stable `code` and a client-safe message.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: status_for(kind),
            code,
            message: message.into(),
            headers: Vec::new(),
            internal: None,
        }
    }

    /// 404 for a path Rampart does not serve.
    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, "not_found", "Nothing here.")
    }

    /// 413: the body exceeds the limit (checked while streaming, not only on
    /// `Content-Length`).
    pub fn payload_too_large() -> Self {
        Self::with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    /// 415: a JSON endpoint received another content type.
    pub fn unsupported_media_type() -> Self {
        Self::with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    }

    /// 422: the body is not valid JSON for this endpoint (unknown field, wrong type).
    /// The parser's message describes the client's input, so it is safe to return.
    pub fn invalid_body(detail: impl fmt::Display) -> Self {
        let mut err = Self::with_status(StatusCode::UNPROCESSABLE_ENTITY);
        err.message = format!("The request body is invalid: {detail}").into();
        err
    }

    /// 302 to `location` (sign-in for a browser that asked for a protected page). The
    /// body is still the envelope, for clients that do not follow redirects.
    pub fn found(code: &'static str, message: &'static str, location: HeaderValue) -> Self {
        let mut error = Self::with_status(StatusCode::FOUND);
        error.code = code;
        error.message = Cow::Borrowed(message);
        error.with_header(http::header::LOCATION, location)
    }

    /// 500 with the cause kept for the log only.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::new(
            ErrorKind::Internal,
            "internal",
            "Something went wrong on our side.",
        )
        .with_internal(cause)
    }

    /// Keeps `cause` for the log; the client never sees it.
    pub fn with_internal(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.internal = Some(Arc::new(cause));
        self
    }

    /// Adds a response header (`Retry-After`, `WWW-Authenticate`, …).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A response header this error will carry, if set.
    pub fn header(&self, name: HeaderName) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The status code this error maps to.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    fn with_status(status: StatusCode) -> Self {
        let (code, message) = default_for_status(status);
        Self {
            status,
            code,
            message: Cow::Borrowed(message),
            headers: Vec::new(),
            internal: None,
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("internal", &self.internal.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.status)
    }
}

/// The error a response carries until the envelope middleware renders it.
#[derive(Clone, Debug)]
pub struct PendingError(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        for (name, value) in &self.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        response.extensions_mut().insert(PendingError(self));
        response
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// The error.
    pub error: EnvelopeError<'a>,
}

/// The inside of [`Envelope`].
#[derive(Debug, Serialize)]
pub struct EnvelopeError<'a> {
    /// Stable, documented code (see `docs/API.md`).
    pub code: &'a str,
    /// Human-readable, client-safe explanation.
    pub message: &'a str,
    /// The request id, also in the `X-Request-Id` response header.
    pub request_id: &'a str,
}

impl ApiError {
    /// Renders the envelope body for this error.
    pub fn envelope_json(&self, request_id: &str) -> Vec<u8> {
        render_envelope(self.code, &self.message, request_id)
    }

    /// The internal cause, if any, for logging.
    pub fn internal_cause(&self) -> Option<&(dyn std::error::Error + Send + Sync)> {
        self.internal.as_deref()
    }

    /// The client-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Renders `{"error":{"code","message","request_id"}}`.
pub fn render_envelope(code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let envelope = Envelope {
        error: EnvelopeError {
            code,
            message,
            request_id,
        },
    };
    // Serializing three strings cannot fail; fall back to a fixed body regardless.
    serde_json::to_vec(&envelope).unwrap_or_else(|_| {
        br#"{"error":{"code":"internal","message":"error","request_id":""}}"#.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_faults_are_never_client_errors() {
        assert_eq!(status_for(ErrorKind::Upstream), StatusCode::BAD_GATEWAY);
        assert_eq!(
            status_for(ErrorKind::UpstreamTimeout),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status_for(ErrorKind::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn envelope_has_the_documented_shape() {
        let body = render_envelope("not_found", "Nothing here.", "abc");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"]["code"], "not_found");
        assert_eq!(value["error"]["message"], "Nothing here.");
        assert_eq!(value["error"]["request_id"], "abc");
        assert_eq!(value.as_object().unwrap().len(), 1);
    }

    #[test]
    fn internal_cause_is_not_in_the_message() {
        let err = ApiError::internal(std::io::Error::other("db password=hunter2"));
        assert!(!err.message().contains("hunter2"));
        let body = String::from_utf8(err.envelope_json("r")).unwrap();
        assert!(!body.contains("hunter2"));
    }
}
