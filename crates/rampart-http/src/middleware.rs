//! What every response passes through: the error envelope, the panic answer and the
//! security headers. The edge service ([`crate::edge::Edge`]) applies them in order:
//! handlers (behind the panic catcher) → error envelope → security headers, so error
//! responses get the headers too and a panic still answers with the envelope.

use std::any::Any;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};

use crate::error::{ApiError, PendingError, default_for_status, render_envelope};
use crate::request_id::RequestId;
use crate::server::HeadRefusal;

/// Marks a response whose status and body come from an upstream: the envelope
/// middleware leaves it alone (an upstream's own 404 page is the upstream's answer).
#[derive(Debug, Clone, Copy)]
pub struct Passthrough;

/// Marks a response whose body is an HTML page for a browser (the sign-in forms of
/// [`crate::routes::signin`]): the envelope middleware keeps the page as the body,
/// whatever the status — a browser that posted a form must see a page, not JSON. An
/// [`ApiError`] the response carries is still logged. Security headers still apply
/// (the page sets its own `Content-Security-Policy`). Only handlers that render
/// HTML set it; every other error keeps the JSON envelope.
#[derive(Debug, Clone, Copy)]
pub struct HtmlPage;

/// The answer to a request whose head the listener refused ([`HeadRefusal`]: over the
/// head limits, or an unacceptable `Transfer-Encoding`): its status, with
/// `Connection: close`, before any handler runs. The edge service renders it in the
/// envelope like every other error.
pub fn refusal_response(refusal: HeadRefusal) -> Response {
    let mut response = refusal.status().into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Turns a response carrying a [`PendingError`] (or an error status without one) into
/// the envelope. Public so that other service stacks (the proxy) share it.
pub fn render_error(mut response: Response, request_id: Option<&RequestId>) -> Response {
    let id = request_id.map(RequestId::as_str).unwrap_or("");
    let html_page = response.extensions().get::<HtmlPage>().is_some();
    if let Some(PendingError(err)) = response.extensions_mut().remove::<PendingError>() {
        log_error(&err, id);
        if html_page {
            return response;
        }
        let body = err.envelope_json(id);
        return with_json_body(response, body);
    }
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<Passthrough>().is_none()
        && !html_page
    {
        let (code, message) = default_for_status(status);
        tracing::debug!(
            request_id = id,
            status = status.as_u16(),
            code,
            "error response"
        );
        return with_json_body(response, render_envelope(code, message, id));
    }
    response
}

fn log_error(err: &ApiError, request_id: &str) {
    let status = err.status().as_u16();
    match err.internal_cause() {
        Some(cause) if status >= 500 => {
            tracing::error!(request_id, status, code = err.code(), error = %cause, "request failed");
        }
        Some(cause) => {
            tracing::debug!(request_id, status, code = err.code(), error = %cause, "request refused");
        }
        None => tracing::debug!(request_id, status, code = err.code(), "request refused"),
    }
}

fn with_json_body(response: Response, body: Vec<u8>) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Handler for `tower_http::catch_panic`: a panic becomes a 500 envelope. The panic
/// message goes to the log only.
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %detail, "handler panicked");
    ApiError::internal(PanicError).into_response()
}

#[derive(Debug, thiserror::Error)]
#[error("a handler panicked (see the preceding log line)")]
struct PanicError;

/// Headers set on every response of Rampart's own endpoints unless the handler set
/// its own (the portal sets a nonce-based CSP, for example).
///
/// API responses are JSON and never need to load anything, so the CSP is the strictest
/// possible; they may carry account data, so nothing is cached.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    ),
    ("cache-control", "no-store"),
];

/// Applies [`SECURITY_HEADERS`] without overriding handler choices, and HSTS when the
/// client reached Rampart over HTTPS (direct TLS, or a trusted proxy's
/// `X-Forwarded-Proto`) — never over plain HTTP, where it would be meaningless or,
/// sent to a client that spoofed the scheme, a denial of service. Proxied responses
/// are left alone: they got the route's header policy in the proxy's `respond()`.
pub fn apply_security_headers(response: &mut Response, https: bool, hsts: Option<&HeaderValue>) {
    if response.extensions().get::<Passthrough>().is_some() {
        return;
    }
    let headers = response.headers_mut();
    if https && let Some(hsts) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(*name) {
            headers.insert(*name, HeaderValue::from_static(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_keep_their_body_and_everything_else_gets_the_envelope() {
        let page = || {
            let mut response = (
                http::StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<p>Wrong password</p>",
            )
                .into_response();
            response.extensions_mut().insert(HtmlPage);
            response
        };
        let kept = render_error(page(), None);
        assert_eq!(kept.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(
            kept.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );

        // A page carrying an ApiError (logged) still keeps its body.
        let mut with_error = page();
        with_error
            .extensions_mut()
            .insert(PendingError(ApiError::internal(std::io::Error::other(
                "db",
            ))));
        let kept = render_error(with_error, None);
        assert_eq!(
            kept.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(kept.extensions().get::<PendingError>().is_none());

        // Without the marker: the envelope, as before.
        let plain = (
            http::StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html")],
            "<p>x</p>",
        )
            .into_response();
        let enveloped = render_error(plain, None);
        assert_eq!(
            enveloped.headers()[header::CONTENT_TYPE],
            "application/json"
        );
    }
}
