//! Rampart's HTTP layer.
//!
//! The axum application (Rampart's own endpoints), the middleware every response
//! passes through (request id, error envelope, security headers, access log), the
//! strict JSON extractor, health endpoints, and the listener that enforces
//! connection-level limits and drains on shutdown.
//!
//! This crate is the only place where an [`rampart_core::ErrorKind`] becomes an HTTP
//! status code (see [`error`]).

pub mod app;
pub mod client_ip;
pub mod csrf;
pub mod edge;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod ratelimit;
pub mod request_id;
pub mod return_url;
pub mod routes;
pub mod server;
pub mod state;
pub mod tls;

pub use error::ApiError;
pub use request_id::RequestId;
pub use state::AppState;
