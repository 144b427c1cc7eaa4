//! `GET /.well-known/jwks.json` (F-JWT): the public keys that verify Rampart's access
//! tokens — the active key and rotated-out keys still within their grace period.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The JWKS endpoint.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    /// Ed25519 public keys: `{"kty":"OKP","crv":"Ed25519","x","kid","alg":"EdDSA","use":"sig"}`.
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// The public keys for Rampart's access tokens. Cache for at most a minute: a key
/// rotation publishes the new key here at once, and a verifier that meets an unknown
/// `kid` should fetch this again.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    responses((status = 200, description = "The JSON Web Key Set", body = Jwks))
)]
async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = axum::Json(state.auth.tokens().jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
