//! Assembling the application: Rampart's own endpoints and the middleware stack.
//!
//! [`own_routes`] holds Rampart's endpoints; the binary adds the proxy as the fallback
//! and wraps the whole with [`layered`]. Tests build the same app through the same
//! functions and drive it with `tower::ServiceExt::oneshot`.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use http::StatusCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::edge::{EdgeLayer, EdgeSettings};
use crate::health::{self, Readiness};
use crate::middleware;

/// Limits applied to Rampart's own endpoints.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Maximum request body, enforced while reading.
    pub body_limit: usize,
    /// Maximum time a handler may take.
    pub request_timeout: Duration,
}

/// Rampart's own endpoints that need no storage: health and readiness.
pub fn own_routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(readiness)
}

/// Applies the per-endpoint limits (body size, handler time) to Rampart's own routes,
/// and labels their responses with the matched path for metrics. Call it once all own
/// routes are merged. Not applied to the proxy, which streams and has per-route limits.
pub fn with_api_limits(router: Router, limits: ApiLimits) -> Router {
    router
        .route_layer(axum::middleware::from_fn(
            crate::metrics::label_matched_path,
        ))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        // A handler that overruns is our failure, not the client's: 503, not 408.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
}

/// Wraps `router` (own routes plus the proxy fallback) in what every
/// response passes through: the panic catcher, then the edge service (request id,
/// client, envelope, security headers, metrics, access log).
pub fn layered(router: Router, edge: EdgeSettings) -> Router {
    router
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(EdgeLayer::new(edge))
}

/// The fallback for paths nothing serves: 404 in the envelope.
pub async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::not_found()
}
