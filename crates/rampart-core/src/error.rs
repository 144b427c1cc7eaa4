//! Who is at fault when something fails.
//!
//! Every library error enum in Rampart can say which [`ErrorKind`] it is. Only the
//! HTTP crate turns kinds into status codes, in one place, so an upstream failure can
//! never be reported as the client's fault (400) or vice versa.

use serde::Serialize;

/// The party at fault, and therefore the class of response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or invalid (400, 413, 415, 422, 431).
    Client,
    /// No valid credentials were presented (401).
    Unauthenticated,
    /// Credentials are valid but not sufficient (403).
    Forbidden,
    /// Nothing here by that name (404).
    NotFound,
    /// The request conflicts with current state (409).
    Conflict,
    /// Too many requests (429).
    RateLimited,
    /// The upstream failed or answered garbage (502).
    Upstream,
    /// The upstream did not answer in time (504).
    UpstreamTimeout,
    /// A dependency (database, Redis) is unavailable (503).
    Unavailable,
    /// Rampart itself failed (500). Details go to the log, never to the client.
    Internal,
}
