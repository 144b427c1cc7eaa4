//! Every error uses the one envelope: 404, 405, 413, 415, 422, and a caught panic.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use rampart_http::app::{ApiLimits, layered, not_found, own_routes, with_api_limits};
use rampart_http::extract::Json;
use rampart_http::health::Readiness;
use serde::Deserialize;
use tower::ServiceExt as _;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Greeting {
    #[allow(dead_code)]
    name: String,
}

async fn greet(Json(_): Json<Greeting>) -> &'static str {
    "hi"
}

#[allow(clippy::panic)]
async fn boom() -> &'static str {
    panic!("secret detail: hunter2")
}

fn app() -> Router {
    let routes = Router::new()
        .route("/greet", post(greet))
        .route("/boom", get(boom))
        .merge(own_routes(Readiness::default()));
    let routes = with_api_limits(
        routes,
        ApiLimits {
            body_limit: 64,
            request_timeout: Duration::from_secs(5),
        },
    );
    layered(routes.fallback(not_found), Default::default())
}

async fn send(request: Request<Body>) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

fn assert_envelope(json: &serde_json::Value, headers: &http::HeaderMap, code: &str) {
    let error = &json["error"];
    assert_eq!(error["code"], code, "{json}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    let request_id = error["request_id"].as_str().unwrap();
    assert!(!request_id.is_empty());
    assert_eq!(headers["x-request-id"], request_id);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

fn json_post(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn unknown_path_is_404_envelope() {
    let (status, headers, json) = send(Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&json, &headers, "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_envelope() {
    let (status, headers, json) = send(Request::get("/greet").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&json, &headers, "method_not_allowed");
}

#[tokio::test]
async fn oversized_body_is_413_envelope() {
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100));
    let (status, headers, json) = send(json_post("/greet", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_envelope(&json, &headers, "payload_too_large");
}

#[tokio::test]
async fn chunked_oversized_body_is_413_envelope() {
    // No Content-Length: the limit must hold while streaming.
    let chunks = futures_util::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789"))),
    );
    let request = Request::post("/greet")
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let (status, headers, json) = send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_envelope(&json, &headers, "payload_too_large");
}

#[tokio::test]
async fn wrong_content_type_is_415_envelope() {
    let request = Request::post("/greet")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"name":"a"}"#))
        .unwrap();
    let (status, headers, json) = send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_envelope(&json, &headers, "unsupported_media_type");
}

#[tokio::test]
async fn unknown_field_is_422_envelope() {
    let (status, headers, json) = send(json_post("/greet", r#"{"name":"a","admin":true}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&json, &headers, "invalid_body");
    assert!(json["error"]["message"].as_str().unwrap().contains("admin"));
}

#[tokio::test]
async fn malformed_json_is_422_envelope() {
    let (status, headers, json) = send(json_post("/greet", r#"{"name":"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&json, &headers, "invalid_body");
}

#[tokio::test]
async fn panic_is_500_envelope_without_detail() {
    let (status, headers, json) = send(Request::get("/boom").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_envelope(&json, &headers, "internal");
    assert!(!json.to_string().contains("hunter2"));
}

#[tokio::test]
async fn healthz_says_only_ok() {
    let response = app()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
}

#[tokio::test]
async fn every_response_has_a_distinct_request_id() {
    let a = app()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let b = app()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
}
