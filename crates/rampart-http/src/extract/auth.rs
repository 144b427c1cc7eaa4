//! Authentication as extractors that reject (F-BEARER, F-SESSION, F-CSRF).
//!
//! - [`Authenticated`]: who is calling, or the request is refused: 401
//!   `unauthenticated` (with `WWW-Authenticate: Bearer`, and a cleared session cookie
//!   if the cookie was the refused credential), 400 `query_credentials_refused` for a
//!   credential in the query string, 400 `malformed_authorization`, and 403
//!   `csrf_failed` when a cookie-authenticated unsafe request (POST, PUT, PATCH,
//!   DELETE) lacks a valid `X-CSRF-Token` or an allowed origin (see [`crate::csrf`]).
//!   Bearer-authenticated requests are exempt from CSRF: a browser never attaches an
//!   `Authorization` header on its own.
//! - [`CurrentSession`]: the same, but only a browser session will do (it also yields
//!   the session id, e.g. for the CSRF token endpoint).
//! - [`require`]: may this principal use this permission? 403 `forbidden` or 403
//!   `mfa_required`.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderValue, Method, header};
use rampart_core::ErrorKind;
use rampart_core::identity::{AuthMethod, Permit, Principal, Roles};
use rampart_crypto::token::SessionId;
use rampart_identity::authenticate::{AuthError, Authentication};

use crate::csrf;
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller. Rejects with the errors listed in the module docs.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// A caller authenticated by the session cookie, with the session id.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    /// Who is calling.
    pub principal: Principal,
    /// The session id from the cookie. Never log it.
    pub id: SessionId,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = authenticate(parts, state).await?;
        Ok(Self(auth.principal))
    }
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = authenticate(parts, state).await?;
        match auth.session {
            Some(id) => Ok(Self {
                principal: auth.principal,
                id,
            }),
            None => Err(ApiError::new(
                ErrorKind::Client,
                "session_required",
                "This endpoint is for browser sessions (the session cookie).",
            )),
        }
    }
}

/// Authenticates the request and applies the CSRF rule to cookie sessions.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Authentication, ApiError> {
    let auth = match state.auth.authenticate_request(parts).await {
        Ok(Some(auth)) => auth,
        Ok(None) => return Err(unauthenticated(None)),
        Err(error) => {
            let clear = HeaderValue::from_str(&state.auth.sessions().cookie().clear()).ok();
            return Err(rejection(error, clear));
        }
    };
    if let Some(session) = &auth.session
        && is_unsafe(&parts.method)
    {
        csrf::check(parts, session, state)?;
    }
    Ok(auth)
}

/// May `principal` use `permission`? 403 `mfa_required` if only a role that requires
/// MFA grants it and the session has not passed MFA; 403 `forbidden` otherwise.
pub fn require(roles: &Roles, principal: &Principal, permission: &str) -> Result<(), ApiError> {
    match roles.permits(principal, permission) {
        Permit::Granted => Ok(()),
        Permit::NeedsMfa => Err(ApiError::new(
            ErrorKind::Forbidden,
            "mfa_required",
            "This action needs a session that passed a second factor; sign in again with your second factor.",
        )),
        Permit::Denied => Err(ApiError::new(
            ErrorKind::Forbidden,
            "forbidden",
            "You are not allowed to do this.",
        )),
    }
}

/// POST, PUT, PATCH and DELETE — and any method that is not known to be safe.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// 401 `unauthenticated`, with `WWW-Authenticate: Bearer` (RFC 6750 §3) so API
/// clients know what to send; `error="invalid_token"` when a token was refused.
pub fn unauthenticated(refused: Option<AuthMethod>) -> ApiError {
    let challenge = match refused {
        Some(AuthMethod::AccessToken | AuthMethod::ApiToken) => {
            r#"Bearer realm="rampart", error="invalid_token""#
        }
        _ => r#"Bearer realm="rampart""#,
    };
    ApiError::new(
        ErrorKind::Unauthenticated,
        "unauthenticated",
        "Authentication is required.",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

/// The response for a refused credential. `clear_cookie` is the `Set-Cookie` that
/// removes the session cookie, sent when the cookie was the refused credential.
pub fn rejection(error: AuthError, clear_cookie: Option<HeaderValue>) -> ApiError {
    match error {
        AuthError::QueryCredentials => ApiError::new(
            ErrorKind::Client,
            "query_credentials_refused",
            "Credentials in the URL are refused: send them in the Authorization header (Bearer) or the session cookie.",
        ),
        AuthError::MalformedAuthorization => ApiError::new(
            ErrorKind::Client,
            "malformed_authorization",
            "The Authorization header must be exactly one 'Bearer <token>'.",
        ),
        AuthError::Refused { method, reason } => {
            tracing::debug!(method = method.as_str(), reason, "credential refused");
            let err = unauthenticated(Some(method));
            if method == AuthMethod::Session {
                // Tell the browser to drop a cookie that will never work again.
                match clear_cookie {
                    Some(clear) => err.with_header(header::SET_COOKIE, clear),
                    None => err,
                }
            } else {
                err
            }
        }
        other => {
            let kind = other.kind();
            let code = if kind == ErrorKind::Unavailable {
                "unavailable"
            } else {
                "internal"
            };
            ApiError::new(kind, code, "Authentication is temporarily unavailable.")
                .with_internal(other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_methods() {
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_unsafe(&m));
        }
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_unsafe(&m));
        }
        assert!(is_unsafe(&Method::from_bytes(b"PROPFIND").unwrap()));
    }
}
