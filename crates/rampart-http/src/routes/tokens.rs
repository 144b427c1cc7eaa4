//! The signed-in user's API tokens (F-APITOKEN): create (the value is returned once),
//! list (never the value), revoke.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use rampart_core::ErrorKind;
use rampart_core::identity::session::ApiTokenRecord;
use rampart_core::store::Removal;
use rampart_identity::tokens::api::{ApiTokenError, NewApiToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::Json;
use crate::extract::auth::Authenticated;
use crate::routes::ErrorEnvelope;
use crate::routes::auth::rfc3339;
use crate::routes::sessions::account_credential;
use crate::state::AppState;

/// `/api/v1/me/tokens`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name to recognise it by (1 to 100 characters).
    pub name: String,
    /// The permissions it is limited to, e.g. `["integration:invoke"]`; `*` for all
    /// the owner's permissions. Never `admin` unless `api_tokens.allow_admin`.
    pub scopes: Vec<String>,
    /// Lifetime in seconds; `api_tokens.default_ttl` when absent, at most
    /// `api_tokens.max_ttl`.
    pub expires_in_seconds: Option<u64>,
}

/// An API token as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Public id (`tok_…`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Expires, RFC 3339.
    pub expires_at: String,
    /// Last used, RFC 3339 (recorded at most once a minute).
    pub last_used_at: Option<String>,
}

/// A token just created.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token (`rmp_…`). Shown only now: store it safely.
    pub token: String,
    /// The stored part.
    #[serde(flatten)]
    pub info: TokenView,
}

/// The tokens list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Newest first.
    pub tokens: Vec<TokenView>,
}

/// The caller's API tokens.
#[utoipa::path(
    get,
    path = "/api/v1/me/tokens",
    tag = "me",
    responses(
        (status = 200, description = "The caller's API tokens (never their values)", body = TokenList),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`interactive_login_required` for API tokens", body = ErrorEnvelope),
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<TokenList>, ApiError> {
    account_credential(&principal)?;
    let tokens = state
        .auth
        .api_tokens()
        .list(Some(&principal.user_id))
        .await
        .map_err(api_token_error)?
        .into_iter()
        .map(view)
        .collect();
    Ok(axum::Json(TokenList { tokens }))
}

/// Creates an API token for the caller. The value is in this response only.
#[utoipa::path(
    post,
    path = "/api/v1/me/tokens",
    tag = "me",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
        (status = 400, description = "`invalid_token_request` (name, scopes, lifetime) or `admin_scope_refused`", body = ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`csrf_failed`, or `interactive_login_required` for API tokens", body = ErrorEnvelope),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Json(request): Json<CreateTokenRequest>,
) -> Result<Response, ApiError> {
    account_credential(&principal)?;
    let created = state
        .auth
        .api_tokens()
        .create(
            &principal.user_id,
            NewApiToken {
                name: request.name,
                scopes: request.scopes,
                ttl: request.expires_in_seconds.map(Duration::from_secs),
            },
            &principal.username,
        )
        .await
        .map_err(api_token_error)?;
    let body = CreatedToken {
        token: created.token.expose_secret().to_owned(),
        info: view(created.record),
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(
    delete,
    path = "/api/v1/me/tokens/{id}",
    tag = "me",
    params(("id" = String, Path, description = "The token's public id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`csrf_failed`, or `interactive_login_required` for API tokens", body = ErrorEnvelope),
        (status = 404, description = "`not_found`", body = ErrorEnvelope),
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    account_credential(&principal)?;
    let removal = state
        .auth
        .api_tokens()
        .revoke(&id, Some(&principal.user_id), &principal.username)
        .await
        .map_err(api_token_error)?;
    match removal {
        Removal::Removed => Ok(StatusCode::NO_CONTENT),
        Removal::Absent => Err(ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            "You have no API token with this id.",
        )),
    }
}

fn view(record: ApiTokenRecord) -> TokenView {
    TokenView {
        id: record.id,
        name: record.name,
        scopes: record.scopes,
        created_at: rfc3339(record.created_at),
        expires_at: rfc3339(record.expires_at),
        last_used_at: record.last_used_at.map(rfc3339),
    }
}

fn api_token_error(error: ApiTokenError) -> ApiError {
    match &error {
        ApiTokenError::AdminScope => {
            ApiError::new(ErrorKind::Client, "admin_scope_refused", error.to_string())
        }
        e if e.kind() == ErrorKind::Client => ApiError::new(
            ErrorKind::Client,
            "invalid_token_request",
            error.to_string(),
        ),
        _ => {
            let kind = error.kind();
            let code = if kind == ErrorKind::Unavailable {
                "unavailable"
            } else {
                "internal"
            };
            ApiError::new(kind, code, "The token service is temporarily unavailable.")
                .with_internal(error)
        }
    }
}
