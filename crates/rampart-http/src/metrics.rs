//! Prometheus metrics (F-METRICS).
//!
//! One process-wide recorder; every feature adds its counters through the `metrics`
//! macros and they appear at `/metrics`. The endpoint is served either on its own
//! loopback listener or on the main listener behind a bearer token (the config
//! guardrails refuse an open `/metrics` on a non-loopback address).

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rampart_core::ErrorKind;
use rampart_crypto::SecretString;

use crate::error::ApiError;

/// Request counter: `route`, `status` labels.
pub const REQUESTS_TOTAL: &str = "rampart_http_requests_total";
/// Request latency histogram in seconds: `route` label.
pub const REQUEST_DURATION: &str = "rampart_http_request_duration_seconds";

/// The route label of a response, set by whoever handled it (the proxy sets the
/// route's name). Rampart's own endpoints use their matched path.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub std::sync::Arc<str>);

/// A handle to the process-wide recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// The recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsError(String);

impl Metrics {
    /// Installs the recorder once per process and returns a handle to it; later calls
    /// return the same handle (tests start several servers in one process).
    pub fn install() -> Result<Self, MetricsError> {
        static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            let upkeep = handle.clone();
            // Histograms are drained into their buckets by upkeep; a plain thread keeps
            // it independent of any one runtime.
            std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(handle)
        });
        match handle {
            Ok(handle) => Ok(Self {
                handle: handle.clone(),
            }),
            Err(error) => Err(MetricsError(error.clone())),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

#[derive(Clone)]
struct Endpoint {
    metrics: Metrics,
    token: Option<SecretString>,
}

/// The `/metrics` route. With a `token`, requests need `Authorization: Bearer <token>`
/// (compared in constant time).
pub fn router(metrics: Metrics, token: Option<SecretString>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Endpoint { metrics, token })
}

async fn scrape(State(endpoint): State<Endpoint>, request: Request) -> Response {
    if let Some(expected) = &endpoint.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !expected.ct_eq(presented.as_bytes()) {
            return ApiError::new(
                ErrorKind::Unauthenticated,
                "unauthenticated",
                "A valid metrics token is required.",
            )
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        endpoint.metrics.render(),
    )
        .into_response()
}

/// Counts one request by route and status and records its latency (called by the
/// edge service for every response). Labels are shared strings: counting allocates
/// nothing per request.
pub fn record_request(route: Option<&RouteLabel>, status: u16, elapsed: Duration) {
    static UNMATCHED: OnceLock<std::sync::Arc<str>> = OnceLock::new();
    let route = route.map_or_else(
        || std::sync::Arc::clone(UNMATCHED.get_or_init(|| std::sync::Arc::from("unmatched"))),
        |r| std::sync::Arc::clone(&r.0),
    );
    let status = status_label(status);
    metrics::counter!(REQUESTS_TOTAL, "route" => std::sync::Arc::clone(&route), "status" => status)
        .increment(1);
    metrics::histogram!(REQUEST_DURATION, "route" => route).record(elapsed.as_secs_f64());
}

/// Route-layer middleware for Rampart's own endpoints: labels the response with the
/// matched path template (`/api/v1/users/{id}`), never the raw path, so label
/// cardinality stays bounded.
pub async fn label_matched_path(request: Request, next: Next) -> Response {
    let label = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| RouteLabel(std::sync::Arc::from(m.as_str())));
    let mut response = next.run(request).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    response
}

/// Static labels for status codes, so counting does not allocate for them.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        101 => "101",
        301 => "301",
        302 => "302",
        303 => "303",
        304 => "304",
        307 => "307",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 200 => "1xx",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
