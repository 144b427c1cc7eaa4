//! Health endpoints (F-HEALTH).
//!
//! `/healthz` answers `ok` and nothing more: liveness must not leak versions or
//! topology. `/readyz` runs every registered [`ReadinessProbe`] and answers 503 in the
//! envelope, naming the failing dependency, until all of them pass.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rampart_core::ErrorKind;

use crate::error::ApiError;

/// A boxed future returned by probes.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A dependency that must be reachable before Rampart reports ready.
pub trait ReadinessProbe: Send + Sync + 'static {
    /// Short name used in the 503 message: `storage`, `redis`.
    fn name(&self) -> &'static str;
    /// Checks the dependency. The error text is logged, never returned to the client.
    fn check(&self) -> ProbeFuture<'_>;
}

/// The probes, shared by the `/readyz` handler.
#[derive(Clone, Default)]
pub struct Readiness {
    probes: Arc<Vec<Arc<dyn ReadinessProbe>>>,
}

impl Readiness {
    /// Readiness over the given probes.
    pub fn new(probes: Vec<Arc<dyn ReadinessProbe>>) -> Self {
        Self {
            probes: Arc::new(probes),
        }
    }

    /// Runs all probes, each bounded by `timeout`; the first failure is returned.
    pub async fn check(&self, timeout: Duration) -> Result<(), &'static str> {
        for probe in self.probes.iter() {
            match tokio::time::timeout(timeout, probe.check()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(dependency = probe.name(), %error, "readiness check failed");
                    return Err(probe.name());
                }
                Err(_) => {
                    tracing::warn!(dependency = probe.name(), "readiness check timed out");
                    return Err(probe.name());
                }
            }
        }
        Ok(())
    }
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`.
pub async fn readyz(State(readiness): State<Readiness>) -> Response {
    match readiness.check(Duration::from_secs(2)).await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(dependency) => ApiError::new(
            ErrorKind::Unavailable,
            "not_ready",
            format!("Not ready: {dependency} is unreachable."),
        )
        .into_response(),
    }
}
