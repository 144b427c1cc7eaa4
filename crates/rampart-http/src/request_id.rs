//! Request ids.
//!
//! Every request gets a fresh id, generated here: an id taken from the client would
//! let it forge or collide log lines. The id is in the `X-Request-Id` response header,
//! in every error envelope, in the access log, and forwarded to upstreams.

use http::HeaderValue;

/// The response and upstream header carrying the request id.
pub const HEADER: &str = "x-request-id";

/// The id of the current request, stored in request and response extensions.
///
/// Held as a ready header value: it goes into the response and the upstream request
/// of every request, and cloning it only bumps a reference count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A new random id (UUID v7: sortable, 122 bits of which 74 random, drawn from a
    /// thread-local generator rather than a system call per request).
    pub fn generate() -> Self {
        let mut text = [0u8; uuid::fmt::Simple::LENGTH];
        let text = uuid::Uuid::now_v7().simple().encode_lower(&mut text);
        // Lower-case hex is always a valid header value.
        Self(HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("0")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Built from hex digits only, so always visible ASCII.
        self.0.to_str().unwrap_or("")
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}
