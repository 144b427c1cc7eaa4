//! Rampart's JSON API under `/api/v1`, one module per feature.
//!
//! Every route is registered through `utoipa_axum`'s `routes!`, which adds the route
//! and its OpenAPI operation together, so the document at `/api/v1/openapi.json`
//! cannot miss a route. A test (`tests/it/openapi.rs`) also checks that no module
//! registers a plain, undocumented `.route(`.

pub mod account;
pub mod admin;
pub mod auth;
pub mod jwks;
pub mod magic;
pub mod registration;
pub mod sessions;
pub mod signin;
pub mod tokens;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The OpenAPI document's top level; paths are added by the feature modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart API",
        description = "Rampart's JSON API. Errors use the envelope {\"error\":{\"code\",\"message\",\"request_id\"}} documented in docs/API.md."
    ),
    components(schemas(ErrorEnvelope, ErrorBody))
)]
pub struct ApiDoc;

/// The error envelope, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorEnvelope {
    /// The error.
    error: ErrorBody,
}

/// The inside of the error envelope.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Stable code, see docs/API.md.
    code: String,
    /// Human-readable message.
    message: String,
    /// The request id (also in `X-Request-Id`).
    request_id: String,
}

/// Every feature's routes, with their OpenAPI operations.
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(sessions::router())
        .merge(tokens::router())
        .merge(jwks::router())
        .merge(crate::csrf::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(registration::router())
        .merge(magic::router())
        .merge(signin::router())
}

/// The API router (state applied) and the `/api/v1/openapi.json` endpoint serving
/// the document built from the same routes.
pub fn api(state: AppState, extra: OpenApiRouter) -> Router {
    let (router, openapi) = documented()
        .with_state(state)
        .merge(extra)
        .split_for_parts();
    // Rendered once: the document is fixed for the life of the process.
    let body = bytes::Bytes::from(serde_json::to_vec(&openapi).unwrap_or_default());
    router.route(
        "/api/v1/openapi.json",
        get(move || {
            let body = body.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    )
}

/// The OpenAPI document, for tests and tooling.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}
