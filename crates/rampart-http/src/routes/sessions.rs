//! The signed-in user's sessions (F-SESSION): list them (the current one marked) and
//! revoke any of them.
//!
//! Only a session or an access token may manage sessions: an API token is a scoped
//! credential for automation, not a stand-in for the account (403
//! `interactive_login_required`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use rampart_core::ErrorKind;
use rampart_core::identity::{AuthMethod, Principal};
use rampart_core::store::Removal;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::auth::Authenticated;
use crate::routes::ErrorEnvelope;
use crate::routes::auth::{rfc3339, session_error};
use crate::state::AppState;

/// `/api/v1/me/sessions`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
}

/// One session, as its user sees it (never the session id itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Public id (`ses_…`), for revocation.
    pub id: String,
    /// Whether this is the session making the request.
    pub current: bool,
    /// Sign-in time, RFC 3339.
    pub created_at: String,
    /// Last use, RFC 3339 (recorded at most once a minute).
    pub last_seen_at: String,
    /// When it ends at the latest, RFC 3339.
    pub expires_at: String,
    /// Whether the sign-in passed a second factor.
    pub mfa: bool,
    /// The browser at sign-in.
    pub user_agent: Option<String>,
    /// The client address at sign-in.
    pub client_ip: Option<String>,
}

/// The sessions list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionView>,
}

/// The caller's live sessions.
#[utoipa::path(
    get,
    path = "/api/v1/me/sessions",
    tag = "me",
    responses(
        (status = 200, description = "The caller's sessions, newest first", body = SessionList),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`interactive_login_required` for API tokens", body = ErrorEnvelope),
    )
)]
async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<SessionList>, ApiError> {
    account_credential(&principal)?;
    let current = current_session(&principal);
    let sessions = state
        .auth
        .sessions()
        .list(&principal.user_id)
        .await
        .map_err(session_error)?
        .into_iter()
        .map(|s| SessionView {
            current: current == Some(s.public_id.as_str()),
            id: s.public_id,
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at),
            mfa: s.mfa,
            user_agent: s.user_agent,
            client_ip: s.client_ip,
        })
        .collect();
    Ok(axum::Json(SessionList { sessions }))
}

/// Revokes one of the caller's sessions (signing that browser out). Revoking the
/// current session also clears its cookie.
#[utoipa::path(
    delete,
    path = "/api/v1/me/sessions/{id}",
    tag = "me",
    params(("id" = String, Path, description = "The session's public id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`csrf_failed`, or `interactive_login_required` for API tokens", body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such session of the caller", body = ErrorEnvelope),
    )
)]
async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    account_credential(&principal)?;
    let removal = state
        .auth
        .sessions()
        .revoke(
            &principal.user_id,
            &id,
            &principal.username,
            "revoked by its user",
        )
        .await
        .map_err(session_error)?;
    if removal == Removal::Absent {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            "You have no session with this id.",
        ));
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if current_session(&principal) == Some(id.as_str())
        && let Ok(clear) = HeaderValue::from_str(&state.auth.sessions().cookie().clear())
    {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    Ok(response)
}

/// Refuses API tokens on account self-management endpoints.
pub(crate) fn account_credential(principal: &Principal) -> Result<(), ApiError> {
    if principal.method == AuthMethod::ApiToken {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "interactive_login_required",
            "API tokens cannot manage the account's sessions or tokens; sign in instead.",
        ));
    }
    Ok(())
}

fn current_session(principal: &Principal) -> Option<&str> {
    (principal.method == AuthMethod::Session)
        .then_some(principal.credential_id.as_deref())
        .flatten()
}
