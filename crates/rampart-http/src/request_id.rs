//! Request ids.
//!
//! Every request gets a fresh id, generated here: an id taken from the client would
//! let it forge or collide log lines. The id is in the `X-Request-Id` response header,
//! in every error envelope, in the access log, and forwarded to upstreams.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

/// The response and upstream header carrying the request id.
pub const HEADER: &str = "x-request-id";

/// The id of the current request, stored in request and response extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A new random id (UUID v7: sortable, 122 bits of which 74 random).
    pub fn generate() -> Self {
        Self(Arc::from(uuid::Uuid::now_v7().simple().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Middleware: assigns the id, exposes it to inner layers and handlers, and copies it
/// onto the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(HEADER, value);
    }
    response.extensions_mut().insert(id);
    response
}
