//! How accounts come to exist (F-INIT, F-REGISTER).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/setup` | whether the instance still needs its first admin |
//! | `POST /api/v1/setup` | redeem the one-time setup token: the first admin, signed in |
//! | `POST /api/v1/register` | self-service registration (`auth.registration`), signed in |
//!
//! Both creating endpoints sign the new user in (a session cookie, like a login), so
//! like the login they refuse cross-site requests (login CSRF: a foreign page must
//! not sign a victim's browser into an attacker's account). The setup token is
//! printed by `rampart serve` at first start and written to `<data_dir>/setup-token`;
//! it works once. Before the first admin exists, registration is refused with `409
//! not_initialized`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use rampart_core::ErrorKind;
use rampart_crypto::SecretString;
use rampart_identity::VerifiedIdentity;
use rampart_identity::accounts::{Account, NewAccount};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::account::{AccountBody, context, failed};
use super::auth::{details, rfc3339, session_error};
use crate::error::ApiError;
use crate::extract::{ClientMeta, Json};
use crate::state::AppState;

/// Registration and setup routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup_status, setup))
        .routes(routes!(register))
}

/// `POST /api/v1/setup`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The setup token printed at first start (also in `<data_dir>/setup-token`).
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The admin's username.
    pub username: String,
    /// The admin's password.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// The admin's e-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

/// `POST /api/v1/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Username: 3 to 64 characters from `a-z0-9._-` (stored lower-case).
    pub username: String,
    /// Password: at least `auth.password_min_length` characters, not a common one.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Invite code (required when `auth.registration = "invite_only"`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub invite: Option<SecretString>,
}

/// `GET /api/v1/setup`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupStatus {
    /// `true` until the first admin exists.
    pub needed: bool,
}

/// A new account, signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedUp {
    /// The account.
    pub user: AccountBody,
    /// The new session's CSRF token (send as `X-CSRF-Token`).
    pub csrf_token: String,
    /// When the session ends at the latest (RFC 3339).
    pub expires_at: String,
}

/// Whether the instance still needs its first admin.
#[utoipa::path(
    get,
    path = "/api/v1/setup",
    tag = "registration",
    responses((status = 200, description = "Setup status", body = SetupStatus))
)]
async fn setup_status(State(state): State<AppState>) -> Result<axum::Json<SetupStatus>, ApiError> {
    let initialized = state.accounts.initialized().await.map_err(failed(&state))?;
    Ok(axum::Json(SetupStatus {
        needed: !initialized,
    }))
}

/// Create the first admin with the one-time setup token, and sign them in.
///
/// The admin role requires a second factor, so the new session can enrol TOTP
/// (`POST /api/v1/me/mfa/totp/setup`) but must sign in again with it before using
/// admin endpoints.
#[utoipa::path(
    post,
    path = "/api/v1/setup",
    tag = "registration",
    request_body = Setup,
    responses(
        (status = 201, description = "The first admin, signed in", body = SignedUp,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, description = "`invalid_username`, `invalid_email`, `weak_password`", body = super::ErrorEnvelope),
        (status = 403, description = "`setup_token_invalid`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`already_initialized`", body = super::ErrorEnvelope),
    )
)]
async fn setup(
    State(state): State<AppState>,
    client: ClientMeta,
    headers: HeaderMap,
    Json(body): Json<Setup>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers, &state)?;
    let account = NewAccount {
        username: body.username,
        password: Some(body.password),
        email: body.email,
        ..NewAccount::default()
    };
    let (account, identity) = state
        .accounts
        .setup_first_admin(&body.token, account, &context(&client))
        .await
        .map_err(failed(&state))?;
    signed_in(&state, account, &identity, &client, &headers).await
}

/// Register an account under `auth.registration`, and sign in.
///
/// `open`: anyone (the `user` role, if configured); `invite_only`: with an invite
/// code, whose roles and tenant the account gets; `closed`: refused.
#[utoipa::path(
    post,
    path = "/api/v1/register",
    tag = "registration",
    request_body = Register,
    responses(
        (status = 201, description = "Registered and signed in", body = SignedUp,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, description = "`invalid_username`, `invalid_email`, `invalid_display_name`, `weak_password`", body = super::ErrorEnvelope),
        (status = 403, description = "`registration_closed`, `invite_required`, `invite_invalid`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`username_taken`, `email_taken`, `not_initialized`", body = super::ErrorEnvelope),
    )
)]
async fn register(
    State(state): State<AppState>,
    client: ClientMeta,
    headers: HeaderMap,
    Json(body): Json<Register>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers, &state)?;
    let account = NewAccount {
        username: body.username,
        password: Some(body.password),
        email: body.email,
        display_name: body.display_name,
        ..NewAccount::default()
    };
    let (account, identity) = state
        .accounts
        .register(account, body.invite.as_ref(), &context(&client))
        .await
        .map_err(failed(&state))?;
    signed_in(&state, account, &identity, &client, &headers).await
}

/// `201` with a new session for `identity`.
async fn signed_in(
    state: &AppState,
    account: Account,
    identity: &VerifiedIdentity,
    client: &ClientMeta,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let sessions = state.auth.sessions();
    let presented = sessions
        .cookie()
        .read(headers.get_all(header::COOKIE).iter().map(|v| v.as_bytes()));
    let session = sessions
        .create(identity, details(client), presented.as_ref())
        .await
        .map_err(session_error)?;
    let body = SignedUp {
        user: account.into(),
        csrf_token: session.csrf_token.clone(),
        expires_at: rfc3339(session.expires_at),
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    let cookie = HeaderValue::from_str(&session.set_cookie).map_err(ApiError::internal)?;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// Refuses a request a browser sent from another site: an `Origin` that is not
/// allowed (`public_url`'s origin, `csrf.allowed_origins`), or no `Origin` with
/// `Sec-Fetch-Site: cross-site`. Requests without either (API clients) pass.
fn refuse_cross_site(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let foreign = origin.is_some_and(|origin| {
        !state
            .config
            .csrf_origins()
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    });
    let cross_site =
        origin.is_none() && fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site"));
    if foreign || cross_site {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "csrf_failed",
            "Accounts can only be created from Rampart's own pages or an allowed origin.",
        ));
    }
    Ok(())
}
