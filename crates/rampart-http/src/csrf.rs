//! Cross-site request forgery defence for cookie sessions (F-CSRF).
//!
//! A browser attaches the session cookie to requests that other sites trigger, so an
//! unsafe request (POST, PUT, PATCH, DELETE) authenticated by the cookie is accepted
//! only if **both**:
//!
//! 1. it carries `X-CSRF-Token` equal to the session's synchronizer token
//!    (`GET /api/v1/security/csrf`; an HMAC of the session id under the Session data
//!    key, compared in constant time) — another site cannot read it; and
//! 2. it comes from an allowed origin: `Origin` is one of
//!    [`Config::csrf_origins`](rampart_config::Config::csrf_origins) (the origin of
//!    `public_url` and `csrf.allowed_origins`), or the browser says
//!    `Sec-Fetch-Site: same-origin` (the page is on Rampart's own origin, whatever
//!    `public_url` says; scripts cannot set this header).
//!
//! **Neither an allowed `Origin` nor `Sec-Fetch-Site: same-origin` — in particular
//! neither header at all: refused.** Every browser that sends
//! cookies on cross-site requests also sends one of the two on unsafe requests; a
//! request with neither comes from a non-browser client, which should authenticate
//! with a bearer token instead. `Origin: null` (sandboxed frames, some redirects) is
//! refused too. Bearer-authenticated requests are exempt: a browser never adds an
//! `Authorization` header by itself.

use axum::extract::State;
use http::HeaderMap;
use http::request::Parts;
use rampart_core::ErrorKind;
use rampart_crypto::token::SessionId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::auth::CurrentSession;
use crate::state::AppState;

/// The request header carrying the synchronizer token.
pub const HEADER: &str = "x-csrf-token";

/// Why a request failed the CSRF check (for logs; the client sees one code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No `X-CSRF-Token`, or more than one.
    MissingToken,
    /// The token does not match the session.
    WrongToken,
    /// `Origin` is not an allowed origin (or is `null`).
    ForeignOrigin,
    /// Neither `Origin` nor `Sec-Fetch-Site: same-origin`.
    NoOrigin,
}

impl Failure {
    /// A short description, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing token",
            Self::WrongToken => "wrong token",
            Self::ForeignOrigin => "origin not allowed",
            Self::NoOrigin => "no Origin or Sec-Fetch-Site",
        }
    }
}

/// Applies the rule to a cookie-authenticated unsafe request: 403 `csrf_failed`.
pub fn check(parts: &Parts, session: &SessionId, state: &AppState) -> Result<(), ApiError> {
    let allowed = state.config.csrf_origins();
    verify(&parts.headers, &allowed, |token| {
        state.auth.sessions().csrf_valid(session, token)
    })
    .map_err(|failure| {
        tracing::info!(reason = failure.as_str(), "CSRF check failed");
        ApiError::new(
            ErrorKind::Forbidden,
            "csrf_failed",
            "This request needs the X-CSRF-Token header (GET /api/v1/security/csrf) and must come from an allowed origin.",
        )
    })
}

/// The rule itself, over headers: origin first (cheap, no secret involved), then the
/// token.
pub fn verify(
    headers: &HeaderMap,
    allowed_origins: &[String],
    token_valid: impl FnOnce(&str) -> bool,
) -> Result<(), Failure> {
    check_origin(headers, allowed_origins)?;
    let mut tokens = headers.get_all(HEADER).iter();
    let token = match (tokens.next(), tokens.next()) {
        (Some(token), None) => token.to_str().map_err(|_| Failure::WrongToken)?,
        _ => return Err(Failure::MissingToken),
    };
    if token.is_empty() {
        return Err(Failure::MissingToken);
    }
    if token_valid(token) {
        Ok(())
    } else {
        Err(Failure::WrongToken)
    }
}

/// The origin half of the rule (point 2 above): one `Origin` among
/// `allowed_origins`, or `Sec-Fetch-Site: same-origin`; neither header at all is
/// refused. On its own it guards form posts that carry no session yet — the sign-in
/// forms, where a forged cross-site post would sign the victim's browser into the
/// attacker's account (login CSRF).
pub fn check_origin(headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), Failure> {
    let mut origins = headers.get_all(http::header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (Some(origin), None) => Some(origin.to_str().map_err(|_| Failure::ForeignOrigin)?),
        (Some(_), Some(_)) => return Err(Failure::ForeignOrigin),
        (None, _) => None,
    };
    let origin_allowed = origin.is_some_and(|origin| origin_listed(origin, allowed_origins));
    // Set by the browser itself (a forbidden header name: scripts cannot forge it).
    let same_origin = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("same-origin"));
    if !origin_allowed && !same_origin {
        return Err(if origin.is_some() {
            Failure::ForeignOrigin
        } else {
            Failure::NoOrigin
        });
    }
    Ok(())
}

/// Whether `origin` (an `Origin` header value) is one of `allowed` (exact, ASCII
/// case-insensitive). `null` never is.
pub fn origin_listed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/');
    origin != "null" && allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

/// `GET /api/v1/security/csrf`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(csrf_token))
}

/// The CSRF token of the current session.
#[derive(Debug, Serialize, ToSchema)]
pub struct CsrfToken {
    /// Send it back as `X-CSRF-Token` on POST, PUT, PATCH and DELETE. It changes when
    /// the session id does (login, security changes).
    pub csrf_token: String,
    /// The header name to use.
    pub header: &'static str,
}

/// The synchronizer token for the session cookie's session.
#[utoipa::path(
    get,
    path = "/api/v1/security/csrf",
    tag = "auth",
    responses(
        (status = 200, description = "The session's CSRF token", body = CsrfToken),
        (status = 400, description = "Not a browser session (`session_required`)", body = crate::routes::ErrorEnvelope),
        (status = 401, description = "No valid session (`unauthenticated`)", body = crate::routes::ErrorEnvelope),
    )
)]
async fn csrf_token(
    State(state): State<AppState>,
    session: CurrentSession,
) -> axum::Json<CsrfToken> {
    axum::Json(CsrfToken {
        csrf_token: state.auth.sessions().csrf_token(&session.id),
        header: "X-CSRF-Token",
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn allowed() -> Vec<String> {
        vec!["https://auth.example.com".to_owned()]
    }

    #[test]
    fn token_and_origin_are_both_needed() {
        let ok = |t: &str| t == "good";
        let good = headers(&[("origin", "https://auth.example.com"), (HEADER, "good")]);
        assert_eq!(verify(&good, &allowed(), ok), Ok(()));
        let cases = [
            (
                vec![("origin", "https://auth.example.com")],
                Failure::MissingToken,
            ),
            (
                vec![("origin", "https://auth.example.com"), (HEADER, "bad")],
                Failure::WrongToken,
            ),
            (
                vec![("origin", "https://evil.example"), (HEADER, "good")],
                Failure::ForeignOrigin,
            ),
            (
                vec![("origin", "null"), (HEADER, "good")],
                Failure::ForeignOrigin,
            ),
            (vec![(HEADER, "good")], Failure::NoOrigin),
            (
                vec![("sec-fetch-site", "cross-site"), (HEADER, "good")],
                Failure::NoOrigin,
            ),
            (
                vec![
                    ("origin", "https://auth.example.com"),
                    (HEADER, "good"),
                    (HEADER, "good"),
                ],
                Failure::MissingToken,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                verify(&headers(&pairs), &allowed(), ok),
                Err(expected),
                "{pairs:?}"
            );
        }
        let same_origin = headers(&[("sec-fetch-site", "same-origin"), (HEADER, "good")]);
        assert_eq!(verify(&same_origin, &allowed(), ok), Ok(()));
        // Rampart reached on an origin not configured (no public_url): the browser's
        // own same-origin statement is enough.
        let unlisted = headers(&[
            ("origin", "http://localhost:9171"),
            ("sec-fetch-site", "same-origin"),
            (HEADER, "good"),
        ]);
        assert_eq!(verify(&unlisted, &allowed(), ok), Ok(()));
        let unlisted_cross = headers(&[
            ("origin", "http://localhost:9171"),
            ("sec-fetch-site", "cross-site"),
            (HEADER, "good"),
        ]);
        assert_eq!(
            verify(&unlisted_cross, &allowed(), ok),
            Err(Failure::ForeignOrigin)
        );
    }
}
