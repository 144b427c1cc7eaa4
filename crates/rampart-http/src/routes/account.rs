//! The signed-in account (F-USERS, F-PASSWORD, F-TOTP).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/me` | the account and how this request authenticated |
//! | `PATCH /api/v1/me` | change e-mail and/or display name |
//! | `POST /api/v1/me/password` | change the password (current + new); other sessions end |
//! | `POST /api/v1/me/mfa/totp/setup` | start TOTP enrolment: otpauth URI, secret, QR code (SVG) |
//! | `POST /api/v1/me/mfa/totp/enable` | finish it with a code; 10 recovery codes, shown once |
//! | `POST /api/v1/me/mfa/totp/disable` | turn TOTP off with a current code or a recovery code |
//! | `POST /api/v1/me/mfa/recovery-codes` | a new set of recovery codes; the old ones stop working |
//!
//! Handlers are thin: authentication is the [`Authenticated`] extractor, the work is
//! [`rampart_identity::accounts::Accounts`]. Changing credentials (password, second
//! factor) needs an interactive sign-in — a session or an access token — never an
//! API token, so a leaked automation token cannot take the account over. Changes that
//! bump the security version re-issue the acting session: the response then carries
//! the new session cookie.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderValue};
use rampart_core::ErrorKind;
use rampart_core::identity::session::RotatedSession;
use rampart_core::identity::{AuthMethod, Principal};
use rampart_crypto::SecretString;
use rampart_identity::accounts::{
    Account, AccountError, Actor, ClientContext, Code, ManagedAccount, ProfileUpdate,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::rfc3339;
use crate::error::ApiError;
use crate::extract::auth::Authenticated;
use crate::extract::{ClientMeta, Json};
use crate::state::AppState;

/// Account routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(totp_setup))
        .routes(routes!(totp_enable))
        .routes(routes!(totp_disable))
        .routes(routes!(renew_recovery_codes))
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBody {
    /// The user id (32 hex characters).
    pub id: String,
    /// Username (lower case).
    pub username: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Tenant ids.
    pub tenants: Vec<String>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Whether TOTP is enabled.
    pub mfa_enabled: bool,
    /// Whether the account has a password (else it signs in by magic link only).
    pub has_password: bool,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
}

impl From<Account> for AccountBody {
    fn from(a: Account) -> Self {
        Self {
            id: a.id.as_str().to_owned(),
            username: a.username,
            email: a.email,
            display_name: a.display_name,
            roles: a.roles,
            tenants: a.tenants,
            attributes: a.attributes,
            disabled: a.disabled,
            mfa_enabled: a.mfa_enabled,
            has_password: a.has_password,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// A user as an admin sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagedAccountBody {
    /// The user.
    #[serde(flatten)]
    pub account: AccountBody,
    /// Locked out after failed logins until then (RFC 3339), if locked now.
    pub locked_until: Option<String>,
}

impl From<ManagedAccount> for ManagedAccountBody {
    fn from(m: ManagedAccount) -> Self {
        Self {
            account: m.account.into(),
            locked_until: m.locked_until.map(rfc3339),
        }
    }
}

/// `GET /api/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeBody {
    /// The account.
    pub user: AccountBody,
    /// How this request authenticated.
    pub auth: AuthBody,
}

/// How a request authenticated.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthBody {
    /// `session`, `access_token`, `api_token` or `simulated`.
    pub method: String,
    /// Whether this session or token passed a second factor.
    pub mfa: bool,
    /// Whether a role of the user requires a second factor this session has not
    /// passed (sign in again with it, or enrol one).
    pub mfa_pending: bool,
}

/// `PATCH /api/v1/me`. An absent (or `null`) field is left alone; `""` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// New e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// New display name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/me/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password (any string for an account without one).
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// The new password: at least `auth.password_min_length` characters, not a
    /// common password.
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

/// `POST /api/v1/me/mfa/totp/setup` answer. Holds the secret: show it once.
#[derive(Serialize, ToSchema)]
pub struct TotpSetupBody {
    /// `otpauth://totp/…` for authenticator apps.
    pub otpauth_uri: String,
    /// The base32 secret, for typing in.
    pub secret: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

/// `POST /api/v1/me/mfa/totp/enable`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableTotp {
    /// The current code from the authenticator app.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// `POST /api/v1/me/mfa/totp/disable`: exactly one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotp {
    /// A current TOTP code.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub code: Option<SecretString>,
    /// An unused recovery code.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub recovery_code: Option<SecretString>,
}

/// Recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    /// Each works once instead of a TOTP code. Store them safely.
    pub recovery_codes: Vec<String>,
}

/// The signed-in account.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    responses(
        (status = 200, description = "The account", body = MeBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
    )
)]
async fn me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<MeBody>, ApiError> {
    let account = state
        .accounts
        .account(&principal.user_id)
        .await
        .map_err(failed(&state))?;
    Ok(axum::Json(MeBody {
        user: account.into(),
        auth: AuthBody {
            method: principal.method.as_str().to_owned(),
            mfa: principal.mfa,
            mfa_pending: state.roles.mfa_pending(&principal),
        },
    }))
}

/// Change the e-mail address and/or display name.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "account",
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The changed account", body = AccountBody),
        (status = 400, description = "`invalid_email`, `invalid_display_name`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`email_taken`", body = super::ErrorEnvelope),
        (status = 422, description = "Invalid body", body = super::ErrorEnvelope),
    )
)]
async fn update_me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Json(body): Json<UpdateMe>,
) -> Result<axum::Json<AccountBody>, ApiError> {
    let actor = actor(&principal, &client);
    let update = ProfileUpdate {
        email: body.email,
        display_name: body.display_name,
    };
    let account = state
        .accounts
        .update_profile(&actor, &principal.user_id, &update)
        .await
        .map_err(failed(&state))?;
    Ok(axum::Json(account.into()))
}

/// Change the password.
///
/// Every other session and refresh token of the user ends; the acting session is
/// re-issued (the response sets the new cookie). A wrong current password counts
/// toward the account's lockout.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "account",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed", headers(("Set-Cookie" = String, description = "The re-issued session cookie, for a session"))),
        (status = 400, description = "`weak_password`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`wrong_password`, `interactive_login_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 429, description = "`locked`", body = super::ErrorEnvelope),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Json(body): Json<ChangePassword>,
) -> Result<Response, ApiError> {
    interactive(&principal)?;
    let rotated = state
        .accounts
        .change_password(
            &actor(&principal, &client),
            &principal.user_id,
            &body.current_password,
            &body.new_password,
        )
        .await
        .map_err(failed(&state))?;
    with_rotated(StatusCode::NO_CONTENT.into_response(), rotated)
}

/// Start TOTP enrolment.
///
/// Returns a new secret (replacing an unfinished enrolment); TOTP is not on until
/// `POST /api/v1/me/mfa/totp/enable` confirms a code.
#[utoipa::path(
    post,
    path = "/api/v1/me/mfa/totp/setup",
    tag = "account",
    responses(
        (status = 200, description = "The enrolment", body = TotpSetupBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`interactive_login_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`totp_already_enabled`", body = super::ErrorEnvelope),
    )
)]
async fn totp_setup(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<TotpSetupBody>, ApiError> {
    interactive(&principal)?;
    let enrollment = state
        .accounts
        .totp_setup(&principal.user_id)
        .await
        .map_err(failed(&state))?;
    Ok(axum::Json(TotpSetupBody {
        otpauth_uri: enrollment.otpauth_uri.expose_secret().to_owned(),
        secret: enrollment.secret.expose_secret().to_owned(),
        qr_svg: enrollment.qr_svg.expose_secret().to_owned(),
    }))
}

/// Finish TOTP enrolment with a current code.
///
/// TOTP is on from now; the answer holds 10 recovery codes, shown only this once.
/// Other sessions end; the acting session is re-issued.
#[utoipa::path(
    post,
    path = "/api/v1/me/mfa/totp/enable",
    tag = "account",
    request_body = EnableTotp,
    responses(
        (status = 200, description = "Enabled", body = RecoveryCodesBody, headers(("Set-Cookie" = String, description = "The re-issued session cookie, for a session"))),
        (status = 400, description = "`invalid_code`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`interactive_login_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`totp_not_started`, `totp_already_enabled`", body = super::ErrorEnvelope),
    )
)]
async fn totp_enable(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Json(body): Json<EnableTotp>,
) -> Result<Response, ApiError> {
    interactive(&principal)?;
    let enabled = state
        .accounts
        .totp_enable(&actor(&principal, &client), &principal.user_id, &body.code)
        .await
        .map_err(failed(&state))?;
    let body = RecoveryCodesBody {
        recovery_codes: enabled
            .recovery_codes
            .iter()
            .map(|c| c.expose_secret().to_owned())
            .collect(),
    };
    with_rotated(axum::Json(body).into_response(), enabled.rotated)
}

/// Turn TOTP off, with a current TOTP code or an unused recovery code.
///
/// Wrong codes count toward the account's lockout. Other sessions end; the acting
/// session is re-issued.
#[utoipa::path(
    post,
    path = "/api/v1/me/mfa/totp/disable",
    tag = "account",
    request_body = DisableTotp,
    responses(
        (status = 204, description = "Disabled", headers(("Set-Cookie" = String, description = "The re-issued session cookie, for a session"))),
        (status = 400, description = "`invalid_code`, `bad_request` (not exactly one code)", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`interactive_login_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`totp_not_enabled`", body = super::ErrorEnvelope),
        (status = 429, description = "`locked`", body = super::ErrorEnvelope),
    )
)]
async fn totp_disable(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Json(body): Json<DisableTotp>,
) -> Result<Response, ApiError> {
    interactive(&principal)?;
    let code = match (body.code, body.recovery_code) {
        (Some(code), None) => Code::Totp(code),
        (None, Some(code)) => Code::Recovery(code),
        _ => {
            return Err(ApiError::new(
                ErrorKind::Client,
                "bad_request",
                "Send exactly one of `code` and `recovery_code`.",
            ));
        }
    };
    let rotated = state
        .accounts
        .totp_disable(&actor(&principal, &client), &principal.user_id, &code)
        .await
        .map_err(failed(&state))?;
    with_rotated(StatusCode::NO_CONTENT.into_response(), rotated)
}

/// Replace the recovery codes.
///
/// The old codes stop working. Needs a session that passed the second factor.
#[utoipa::path(
    post,
    path = "/api/v1/me/mfa/recovery-codes",
    tag = "account",
    responses(
        (status = 200, description = "The new codes, shown once", body = RecoveryCodesBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`mfa_required`, `interactive_login_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`totp_not_enabled`", body = super::ErrorEnvelope),
    )
)]
async fn renew_recovery_codes(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
) -> Result<axum::Json<RecoveryCodesBody>, ApiError> {
    interactive(&principal)?;
    let codes = state
        .accounts
        .renew_recovery_codes(
            &actor(&principal, &client),
            &principal.user_id,
            principal.mfa,
        )
        .await
        .map_err(failed(&state))?;
    Ok(axum::Json(RecoveryCodesBody {
        recovery_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
    }))
}

/// The actor for the audit log and session rotation.
pub(crate) fn actor(principal: &Principal, client: &ClientMeta) -> Actor {
    Actor::principal(principal, context(client))
}

/// The client as the accounts service sees it.
pub(crate) fn context(client: &ClientMeta) -> ClientContext {
    ClientContext {
        ip: client.ip(),
        request_id: client.request_id.clone(),
    }
}

/// Refuses API tokens: credentials change only from an interactive sign-in.
fn interactive(principal: &Principal) -> Result<(), ApiError> {
    if principal.method == AuthMethod::ApiToken {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "interactive_login_required",
            "API tokens cannot change credentials; sign in.",
        ));
    }
    Ok(())
}

/// Adds the re-issued session cookie, if any.
pub(crate) fn with_rotated(
    mut response: Response,
    rotated: Option<RotatedSession>,
) -> Result<Response, ApiError> {
    if let Some(rotated) = rotated {
        let value = HeaderValue::from_str(&rotated.set_cookie).map_err(ApiError::internal)?;
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The one mapping from [`AccountError`] to the envelope: the client-safe message
/// for client faults, a generic one (cause logged) otherwise, and `Retry-After` for
/// a lockout.
pub(crate) fn account_error(e: AccountError, now: OffsetDateTime) -> ApiError {
    let kind = e.kind();
    match kind {
        ErrorKind::Internal | ErrorKind::Unavailable => {
            let message = if kind == ErrorKind::Unavailable {
                "The service is temporarily unavailable."
            } else {
                "Something went wrong on our side."
            };
            ApiError::new(kind, e.code(), message).with_internal(e)
        }
        _ => {
            let retry_after = match &e {
                AccountError::Locked { until } => Some((*until - now).whole_seconds().max(1)),
                _ => None,
            };
            let err = ApiError::new(kind, e.code(), e.to_string());
            match retry_after.map(|secs| HeaderValue::from_str(&secs.to_string())) {
                Some(Ok(value)) => err.with_header(header::RETRY_AFTER, value),
                _ => err,
            }
        }
    }
}

/// [`account_error`] at the state's current time, for `map_err`.
pub(crate) fn failed(state: &AppState) -> impl Fn(AccountError) -> ApiError + '_ {
    move |e| account_error(e, state.clock.now())
}
