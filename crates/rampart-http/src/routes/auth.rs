//! Signing in and out (F-PASSWORD, F-TOTP, F-SESSION, F-JWT, F-REFRESH).
//!
//! - `POST /api/v1/auth/login` — the password step. Without a second factor the
//!   login completes: a session is created and its cookie set (any session cookie
//!   the browser presented is revoked first: the id always changes at login). With
//!   TOTP enrolled the answer is `{"status":"mfa_required","mfa_token":…}`.
//! - `POST /api/v1/auth/login/mfa` — the second step, with the `mfa_token` and a TOTP
//!   or recovery code.
//! - `POST /api/v1/auth/logout` — ends the session (cookie) or the refresh-token
//!   family (access token) that authenticated the request.
//! - `POST /api/v1/auth/token` — for CLI and API clients: grant `password` (with
//!   `totp_code` or `recovery_code` when the account has a second factor) or
//!   `refresh_token`; answers `{access_token, token_type, expires_in,
//!   refresh_token}`.
//!
//! Login is protected against login CSRF: a browser request whose `Origin` is not an
//! allowed origin (unless the browser says `Sec-Fetch-Site: same-origin`), or that
//! says `Sec-Fetch-Site: cross-site`/`same-site` from an unlisted origin, is refused
//! with `csrf_failed`; clients that send neither header (CLI, scripts) are let
//! through, since they are not a victim's browser.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use rampart_core::ErrorKind;
use rampart_core::audit::{AuditEvent, EventKind, Outcome};
use rampart_core::identity::AuthMethod;
use rampart_crypto::SecretString;
use rampart_crypto::token::RefreshToken;
use rampart_identity::VerifiedIdentity;
use rampart_identity::accounts::{ClientContext, Code, LoginError, LoginStep};
use rampart_identity::sessions::{ClientDetails, NewSession, SessionError};
use rampart_identity::tokens::{TokenError, TokenPair};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::csrf;
use crate::error::ApiError;
use crate::extract::auth::{Authenticated, require};
use crate::extract::{ClientMeta, Json};
use crate::routes::ErrorEnvelope;
use crate::state::AppState;

/// The sign-in, sign-out and token endpoints.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(login_mfa))
        .routes(routes!(logout))
        .routes(routes!(token))
        .routes(routes!(whoami))
        .routes(routes!(permission))
}

/// The password step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or e-mail address.
    pub username: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// The second-factor step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfaRequest {
    /// The `mfa_token` from the password step.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// A 6-digit TOTP code (or give `recovery_code`).
    #[schema(value_type = Option<String>)]
    pub totp_code: Option<SecretString>,
    /// A recovery code (or give `totp_code`).
    #[schema(value_type = Option<String>)]
    pub recovery_code: Option<SecretString>,
}

/// The outcome of a login step.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// `ok` (signed in; the session cookie is set) or `mfa_required`.
    pub status: &'static str,
    /// With `mfa_required`: send it to `/api/v1/auth/login/mfa` with a code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// With `ok`: the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<LoginUser>,
    /// With `ok`: whether the session passed a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
    /// With `ok`: the new session's CSRF token (send as `X-CSRF-Token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// When the session (`ok`) or the `mfa_token` (`mfa_required`) expires, RFC 3339.
    pub expires_at: String,
}

/// Who signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginUser {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
}

/// A token request (`grant_type` `password` or `refresh_token`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `password` or `refresh_token`.
    pub grant_type: GrantType,
    /// `password` grant: username or e-mail address.
    pub username: Option<String>,
    /// `password` grant: the password.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// `password` grant, accounts with TOTP: the current code.
    #[schema(value_type = Option<String>)]
    pub totp_code: Option<SecretString>,
    /// `password` grant, accounts with TOTP: a recovery code instead.
    #[schema(value_type = Option<String>)]
    pub recovery_code: Option<SecretString>,
    /// `refresh_token` grant: the refresh token.
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

/// The grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// Username and password (and second factor).
    Password,
    /// A refresh token.
    RefreshToken,
}

/// Tokens for an API client.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// EdDSA JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque, single-use: exchange it for the next pair before it expires.
    pub refresh_token: String,
}

/// Who the caller is, as authentication sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// User id.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// `session`, `access_token`, `api_token` or `simulated`.
    pub method: &'static str,
    /// Whether the session or token passed a second factor.
    pub mfa: bool,
    /// Roles.
    pub roles: Vec<String>,
    /// Tenants.
    pub tenants: Vec<String>,
    /// API tokens: the scopes.
    pub scopes: Option<Vec<String>>,
    /// The public id of the session, refresh family or API token.
    pub credential_id: Option<String>,
}

/// A granted permission.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionGranted {
    /// The permission asked about.
    pub permission: String,
    /// Always true (a refusal is a 403).
    pub granted: bool,
}

/// The authenticated caller.
#[utoipa::path(
    get,
    path = "/api/v1/auth/whoami",
    tag = "auth",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 400, description = "`query_credentials_refused` or `malformed_authorization`", body = ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
    )
)]
async fn whoami(Authenticated(principal): Authenticated) -> axum::Json<WhoAmI> {
    axum::Json(WhoAmI {
        user_id: principal.user_id.as_str().to_owned(),
        username: principal.username,
        method: principal.method.as_str(),
        mfa: principal.mfa,
        roles: principal.roles,
        tenants: principal.tenants,
        scopes: principal.scopes,
        credential_id: principal.credential_id,
    })
}

/// Whether the caller may use a permission (roles, MFA, and an API token's scopes
/// all apply): 200 if granted, else 403 `forbidden` or `mfa_required`.
#[utoipa::path(
    get,
    path = "/api/v1/auth/permissions/{permission}",
    tag = "auth",
    params(("permission" = String, Path, description = "A permission, e.g. `admin` or `users:read`")),
    responses(
        (status = 200, description = "Granted", body = PermissionGranted),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`, or `mfa_required` when only a role that requires MFA grants it", body = ErrorEnvelope),
    )
)]
async fn permission(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    axum::extract::Path(permission): axum::extract::Path<String>,
) -> Result<axum::Json<PermissionGranted>, ApiError> {
    require(&state.roles, &principal, &permission)?;
    Ok(axum::Json(PermissionGranted {
        permission,
        granted: true,
    }))
}

/// Password step of the browser login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in (`status: ok`, session cookie set) or a second factor is needed (`status: mfa_required`)", body = LoginResponse),
        (status = 401, description = "`invalid_credentials` (unknown user and wrong password are not told apart)", body = ErrorEnvelope),
        (status = 403, description = "`account_disabled`, or `csrf_failed` for a cross-site login", body = ErrorEnvelope),
        (status = 429, description = "`login_locked`", body = ErrorEnvelope),
    )
)]
async fn login(
    State(state): State<AppState>,
    client: ClientMeta,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers, &state)?;
    let step = state
        .accounts
        .login_password(&request.username, &request.password, &context(&client))
        .await
        .map_err(|e| login_error(e, state.clock.now()))?;
    match step {
        LoginStep::Complete(identity) => start_session(&state, &identity, &client, &headers).await,
        LoginStep::SecondFactor(pending) => Ok(axum::Json(LoginResponse {
            status: "mfa_required",
            mfa_token: Some(pending.token().expose_secret().to_owned()),
            user: None,
            mfa: None,
            csrf_token: None,
            expires_at: rfc3339(pending.expires_at()),
        })
        .into_response()),
    }
}

/// Second-factor step of the browser login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/mfa",
    tag = "auth",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Signed in; session cookie set", body = LoginResponse),
        (status = 400, description = "`invalid_request`: give exactly one of totp_code and recovery_code", body = ErrorEnvelope),
        (status = 401, description = "`invalid_second_factor` or `mfa_token_invalid`", body = ErrorEnvelope),
        (status = 429, description = "`login_locked`", body = ErrorEnvelope),
    )
)]
async fn login_mfa(
    State(state): State<AppState>,
    client: ClientMeta,
    headers: HeaderMap,
    Json(request): Json<LoginMfaRequest>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers, &state)?;
    let code = second_factor(request.totp_code, request.recovery_code)?
        .ok_or_else(|| invalid_request("Give totp_code or recovery_code."))?;
    let identity = state
        .accounts
        .login_second_factor(&request.mfa_token, code, &context(&client))
        .await
        .map_err(|e| login_error(e, state.clock.now()))?;
    start_session(&state, &identity, &client, &headers).await
}

/// Signs out: ends the session (cookie; the cookie is cleared) or the refresh-token
/// family of the access token (its refresh tokens and access tokens stop working).
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "Signed out"),
        (status = 400, description = "`not_a_login`: API tokens are revoked with DELETE /api/v1/me/tokens/{id}", body = ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = ErrorEnvelope),
        (status = 403, description = "`csrf_failed`", body = ErrorEnvelope),
    )
)]
async fn logout(
    State(state): State<AppState>,
    client: ClientMeta,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    let credential = principal.credential_id.clone().unwrap_or_default();
    let mut response = StatusCode::NO_CONTENT.into_response();
    match principal.method {
        AuthMethod::Session => {
            state
                .auth
                .sessions()
                .revoke(
                    &principal.user_id,
                    &credential,
                    &principal.username,
                    "logout",
                )
                .await
                .map_err(session_error)?;
            if let Ok(clear) = HeaderValue::from_str(&state.auth.sessions().cookie().clear()) {
                response.headers_mut().insert(header::SET_COOKIE, clear);
            }
        }
        AuthMethod::AccessToken => {
            state
                .auth
                .tokens()
                .revoke_family(&credential, &principal.username, "logout")
                .await
                .map_err(token_error)?;
        }
        AuthMethod::ApiToken => {
            return Err(ApiError::new(
                ErrorKind::Client,
                "not_a_login",
                "An API token is not a login; revoke it with DELETE /api/v1/me/tokens/{id}.",
            ));
        }
        AuthMethod::Simulated => {}
    }
    let mut event = AuditEvent::new(EventKind::AuthLogout, Outcome::Success)
        .actor(principal.username.clone())
        .target(credential)
        .client_ip(client.ip())
        .detail("user_id", principal.user_id.as_str())
        .detail("method", principal.method.as_str());
    if let Some(id) = &client.request_id {
        event = event.request_id(id.clone());
    }
    state.audit.record(event).await.map_err(|e| {
        ApiError::new(e.kind(), "unavailable", "The audit log is unavailable.").with_internal(e)
    })?;
    Ok(response)
}

/// The token endpoint for CLI and API clients.
#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A new access and refresh token", body = TokenResponse),
        (status = 400, description = "`invalid_request`", body = ErrorEnvelope),
        (status = 401, description = "`invalid_credentials`, `invalid_second_factor` or `invalid_grant` (refresh token unknown, expired, revoked or reused — reuse revokes the whole family)", body = ErrorEnvelope),
        (status = 403, description = "`mfa_required`: the account has a second factor; send totp_code or recovery_code", body = ErrorEnvelope),
        (status = 429, description = "`login_locked`", body = ErrorEnvelope),
    )
)]
async fn token(
    State(state): State<AppState>,
    client: ClientMeta,
    Json(request): Json<TokenRequest>,
) -> Result<Response, ApiError> {
    let details = details(&client);
    let pair = match request.grant_type {
        GrantType::Password => {
            if request.refresh_token.is_some() {
                return Err(invalid_request(
                    "refresh_token is not part of the password grant.",
                ));
            }
            let (Some(username), Some(password)) = (&request.username, &request.password) else {
                return Err(invalid_request(
                    "The password grant needs username and password.",
                ));
            };
            let code = second_factor(request.totp_code, request.recovery_code)?;
            let ctx = context(&client);
            let identity = match state
                .accounts
                .login_password(username, password, &ctx)
                .await
                .map_err(|e| login_error(e, state.clock.now()))?
            {
                LoginStep::Complete(identity) => identity,
                LoginStep::SecondFactor(pending) => {
                    let Some(code) = code else {
                        return Err(ApiError::new(
                            ErrorKind::Forbidden,
                            "mfa_required",
                            "This account has a second factor: send totp_code or recovery_code.",
                        ));
                    };
                    state
                        .accounts
                        .login_second_factor(pending.token(), code, &ctx)
                        .await
                        .map_err(|e| login_error(e, state.clock.now()))?
                }
            };
            state
                .auth
                .tokens()
                .issue(&identity, details)
                .await
                .map_err(token_error)?
        }
        GrantType::RefreshToken => {
            if request.username.is_some()
                || request.password.is_some()
                || request.totp_code.is_some()
                || request.recovery_code.is_some()
            {
                return Err(invalid_request(
                    "The refresh_token grant takes only refresh_token.",
                ));
            }
            let Some(presented) = &request.refresh_token else {
                return Err(invalid_request(
                    "The refresh_token grant needs refresh_token.",
                ));
            };
            let presented =
                RefreshToken::parse(presented.expose_secret()).map_err(|_| invalid_grant())?;
            state
                .auth
                .tokens()
                .refresh(&presented, state.auth.directory().as_ref(), details)
                .await
                .map_err(token_error)?
        }
    };
    Ok(token_response(&pair))
}

/// `Cache-Control: no-store` on every response carrying tokens (RFC 6749 §5.1).
fn token_response(pair: &TokenPair) -> Response {
    let mut response = axum::Json(TokenResponse {
        access_token: pair.access_token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token.expose_secret().to_owned(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn start_session(
    state: &AppState,
    identity: &VerifiedIdentity,
    client: &ClientMeta,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let session = new_session(state, identity, client, headers).await?;
    let mut response = axum::Json(LoginResponse {
        status: "ok",
        mfa_token: None,
        user: Some(LoginUser {
            id: identity.user_id().as_str().to_owned(),
            username: identity.username().to_owned(),
        }),
        mfa: Some(identity.mfa()),
        csrf_token: Some(session.csrf_token.clone()),
        expires_at: rfc3339(session.expires_at),
    })
    .into_response();
    let cookie = HeaderValue::from_str(&session.set_cookie)
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Creates the session of a completed sign-in (JSON API and sign-in page alike). The
/// session cookie the browser presented, if any, is revoked: the id always changes
/// at sign-in (session fixation).
pub(crate) async fn new_session(
    state: &AppState,
    identity: &VerifiedIdentity,
    client: &ClientMeta,
    headers: &HeaderMap,
) -> Result<NewSession, ApiError> {
    let cookies = headers.get_all(header::COOKIE);
    let presented = state
        .auth
        .sessions()
        .cookie()
        .read(cookies.iter().map(|v| v.as_bytes()));
    state
        .auth
        .sessions()
        .create(identity, details(client), presented.as_ref())
        .await
        .map_err(session_error)
}

/// Login CSRF: a browser posting the login form from another site is refused.
fn refuse_cross_site(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let allowed =
        origin.is_some_and(|origin| csrf::origin_listed(origin, &state.config.csrf_origins()));
    let same_origin = fetch_site.as_deref() == Some("same-origin");
    let foreign_origin = origin.is_some() && !allowed && !same_origin;
    let cross_site = matches!(fetch_site.as_deref(), Some("cross-site" | "same-site")) && !allowed;
    if foreign_origin || cross_site {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "csrf_failed",
            "Sign-in is only accepted from Rampart's own pages or an allowed origin.",
        ));
    }
    Ok(())
}

fn second_factor(
    totp: Option<SecretString>,
    recovery: Option<SecretString>,
) -> Result<Option<Code>, ApiError> {
    match (totp, recovery) {
        (Some(_), Some(_)) => Err(invalid_request(
            "Give totp_code or recovery_code, not both.",
        )),
        (Some(totp), None) => Ok(Some(Code::Totp(totp))),
        (None, Some(recovery)) => Ok(Some(Code::Recovery(recovery))),
        (None, None) => Ok(None),
    }
}

/// The client, for the login state machine (lockout by address, audit).
pub(crate) fn context(client: &ClientMeta) -> ClientContext {
    ClientContext {
        ip: client.ip(),
        request_id: client.request_id.clone(),
    }
}

/// Client details for the session and token services.
pub(crate) fn details(client: &ClientMeta) -> ClientDetails<'_> {
    ClientDetails {
        ip: client.ip(),
        user_agent: client.user_agent.as_deref(),
        request_id: client.request_id.as_deref(),
    }
}

fn invalid_request(message: &'static str) -> ApiError {
    ApiError::new(ErrorKind::Client, "invalid_request", message)
}

fn invalid_grant() -> ApiError {
    ApiError::new(
        ErrorKind::Unauthenticated,
        "invalid_grant",
        "The refresh token is invalid, expired or revoked; sign in again.",
    )
}

/// A refused login step as an API error: the stable code, a client-safe message,
/// `Retry-After` while locked out; internal causes are kept for the log only.
pub(crate) fn login_error(error: LoginError, now: time::OffsetDateTime) -> ApiError {
    let retry_after = match &error {
        LoginError::Locked { until } => Some((*until - now).whole_seconds().max(1)),
        _ => None,
    };
    let message = match error.kind() {
        ErrorKind::Internal => "Something went wrong on our side.".to_owned(),
        ErrorKind::Unavailable => "The service is temporarily unavailable.".to_owned(),
        _ => error.to_string(),
    };
    let mut api = ApiError::new(error.kind(), error.code(), message);
    if let Some(secs) = retry_after
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        api = api.with_header(header::RETRY_AFTER, value);
    }
    if matches!(error.kind(), ErrorKind::Internal | ErrorKind::Unavailable) {
        api = api.with_internal(error);
    }
    api
}

pub(crate) fn session_error(error: SessionError) -> ApiError {
    let kind = error.kind();
    let code = if kind == ErrorKind::Unavailable {
        "unavailable"
    } else {
        "internal"
    };
    ApiError::new(
        kind,
        code,
        "The session service is temporarily unavailable.",
    )
    .with_internal(error)
}

pub(crate) fn token_error(error: TokenError) -> ApiError {
    match error.kind() {
        ErrorKind::Unauthenticated => {
            tracing::info!(%error, "token request refused");
            invalid_grant()
        }
        kind => {
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

/// A time as RFC 3339 text.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
