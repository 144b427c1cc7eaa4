//! Magic links (F-MAGIC): ask for a sign-in link by email, open it, use it.
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/auth/magic-link` | `{email}` → always `202 {"status":"accepted"}` and the binding cookie |
//! | `GET /auth/magic-link?code=…` | a minimal page whose form posts the code (mail scanners that prefetch links consume nothing) |
//! | `POST /api/v1/auth/magic-link/consume` | `code` (form from that page, or JSON `{code}`) + binding cookie → a session |
//!
//! The request answer is identical — status, body, headers — for a known address, an
//! unknown one, a disabled account and disabled magic links, and the handler does the
//! same work in every case (it only queues the job; see
//! [`rampart_identity::magic`]).
//!
//! CSRF: the consume form is a top-level `POST` that carries no session, so it needs
//! no synchronizer token. It is protected by the binding cookie (`SameSite=Strict`,
//! only the browser that asked for the link has it, so a forged post from another
//! site cannot use a link bound to someone else — no login CSRF), and by an origin
//! check: a form post must come with an allowed `Origin` (the `public_url` origin or
//! `csrf.allowed_origins`) or, without `Origin`, `Sec-Fetch-Site: same-origin`. A JSON
//! post (API clients) cannot be sent cross-site without a CORS preflight; a foreign
//! `Origin` is refused there too.
//!
//! Every refusal of a link — unknown, used, expired, another browser, malformed,
//! disabled account, magic links off — is the same `400 invalid_link`.

use axum::Form;
use axum::extract::{FromRequest, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use rampart_core::ErrorKind;
use rampart_identity::magic::{Binding, MAX_EMAIL_LEN, MagicCode, MagicContext, MagicLinkError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{details, session_error};
use crate::error::ApiError;
use crate::extract::{ClientMeta, Json};
use crate::state::AppState;

/// The consume endpoint, also the form's action.
const CONSUME_PATH: &str = "/api/v1/auth/magic-link/consume";

/// The page's policy: nothing loads, nothing runs, the form may only post to
/// Rampart itself, and no one may frame it.
const PAGE_CSP: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Magic-link routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link))
        .routes(routes!(link_page))
        .routes(routes!(consume_link))
}

/// `POST /api/v1/auth/magic-link` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MagicLinkRequest {
    /// The address of the account.
    email: String,
}

/// `202` body of `POST /api/v1/auth/magic-link`: always the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct MagicLinkAccepted {
    /// Always `accepted`.
    status: &'static str,
}

/// `POST /api/v1/auth/magic-link/consume` body (JSON or form).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeMagicLink {
    /// The `code` from the link.
    code: String,
}

/// `200` body of a JSON consume.
#[derive(Debug, Serialize, ToSchema)]
pub struct MagicLinkAuthenticated {
    /// Always `authenticated`.
    status: &'static str,
}

/// The link page's query.
#[derive(Debug, Deserialize)]
struct PageQuery {
    code: Option<String>,
}

/// Ask for a sign-in link.
///
/// The answer is the same whether or not an account has this address: `202`, the
/// same body, and a binding cookie (`__Host-rampart_magic` by default, kept if the
/// browser already has one) that the link will require. If the address belongs to
/// an enabled account, a single-use link valid for `magic_link.ttl` is mailed to it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/magic-link",
    tag = "auth",
    request_body = MagicLinkRequest,
    responses(
        (status = 202, description = "Accepted; a link is mailed if the address belongs to an enabled account", body = MagicLinkAccepted,
            headers(("Set-Cookie" = String, description = "The binding cookie the link requires"))),
        (status = 415, description = "Not JSON", body = super::ErrorEnvelope),
        (status = 422, description = "Invalid body or not an email address", body = super::ErrorEnvelope),
    )
)]
async fn request_link(
    State(state): State<AppState>,
    client: ClientMeta,
    headers: HeaderMap,
    Json(body): Json<MagicLinkRequest>,
) -> Result<Response, ApiError> {
    let email = body.email.trim();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN || !email.contains('@') {
        return Err(ApiError::invalid_body("email is not an email address"));
    }
    let cookie = state.magic.cookie();
    let binding = match cookie.binding(cookie_headers(&headers)) {
        Some(binding) => binding,
        None => Binding::generate().map_err(ApiError::internal)?,
    };
    state.magic.request(email, &binding, context(&client));
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(MagicLinkAccepted { status: "accepted" }),
    )
        .into_response();
    append_cookie(&mut response, &cookie.set(&binding))?;
    Ok(response)
}

/// The page a mailed link opens.
///
/// Opening it consumes nothing (mail scanners prefetch links): it shows a form that
/// posts the code to `POST /api/v1/auth/magic-link/consume`. No script, no remote
/// content; `Content-Security-Policy: default-src 'none'; form-action 'self'`.
#[utoipa::path(
    get,
    path = "/auth/magic-link",
    tag = "auth",
    params(("code" = String, Query, description = "The code from the mailed link")),
    responses(
        (status = 200, description = "The sign-in form", content_type = "text/html", body = String),
        (status = 400, description = "`invalid_link`: the code is missing or malformed", body = super::ErrorEnvelope),
    )
)]
async fn link_page(Query(query): Query<PageQuery>) -> Result<Response, ApiError> {
    let code = query
        .code
        .as_deref()
        .and_then(MagicCode::parse)
        .ok_or_else(invalid_link)?;
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page(&code),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    // The URL holds the code: no referrer to other sites, no caching, no indexing.
    // `same-origin`, not `no-referrer`: with `no-referrer` browsers send `Origin: null`
    // on the page's own form post, which the origin check must refuse.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    Ok(response)
}

/// Sign in with a link.
///
/// Accepts the form of the link page (`application/x-www-form-urlencoded`, answered
/// with `303` to `/`) and JSON `{code}` from API clients (answered with
/// `{"status":"authenticated"}`). Requires the binding cookie set when the link was
/// asked for. Sets the session cookie and clears the binding cookie. Every refusal
/// of the link is `400 invalid_link`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/magic-link/consume",
    tag = "auth",
    request_body(content(
        (ConsumeMagicLink = "application/json"),
        (ConsumeMagicLink = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in (JSON request)", body = MagicLinkAuthenticated,
            headers(("Set-Cookie" = String, description = "The session cookie; the binding cookie is cleared"))),
        (status = 303, description = "Signed in (form request); redirects to `/`",
            headers(("Set-Cookie" = String, description = "The session cookie; the binding cookie is cleared"))),
        (status = 400, description = "`invalid_link`: unknown, used, expired, or asked for in another browser", body = super::ErrorEnvelope),
        (status = 403, description = "`csrf_failed`: the form was not posted from Rampart's origin", body = super::ErrorEnvelope),
        (status = 415, description = "Neither JSON nor a form", body = super::ErrorEnvelope),
        (status = 422, description = "Invalid body", body = super::ErrorEnvelope),
    )
)]
async fn consume_link(
    State(state): State<AppState>,
    client: ClientMeta,
    headers: HeaderMap,
    body: ConsumeBody,
) -> Result<Response, ApiError> {
    let allowed = state.config.csrf_origins();
    if !origin_allowed(&headers, &allowed, body.kind) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "csrf_failed",
            "The request did not come from an allowed origin.",
        ));
    }
    let cookie = state.magic.cookie();
    let binding = cookie.read(cookie_headers(&headers));
    let identity = state
        .magic
        .consume(&body.code, binding.as_deref(), &context(&client))
        .await
        .map_err(|e| match e {
            MagicLinkError::InvalidLink => invalid_link(),
            other => service_error(other),
        })?;
    // A session cookie the browser already had is revoked: a sign-in never keeps an
    // id that existed before it (session fixation).
    let sessions = state.auth.sessions();
    let presented = sessions.cookie().read(cookie_headers(&headers));
    let session = sessions
        .create(&identity, details(&client), presented.as_ref())
        .await
        .map_err(session_error)?;
    let mut response = match body.kind {
        BodyKind::Form => (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
        BodyKind::Json => axum::Json(MagicLinkAuthenticated {
            status: "authenticated",
        })
        .into_response(),
    };
    append_cookie(&mut response, &session.set_cookie)?;
    append_cookie(&mut response, &cookie.clear())?;
    Ok(response)
}

/// `400 invalid_link`: the one refusal for every reason a link does not work.
fn invalid_link() -> ApiError {
    ApiError::new(
        ErrorKind::Client,
        "invalid_link",
        "This sign-in link is invalid or has expired. Ask for a new one.",
    )
}

/// A failure of the flow itself (storage, accounts, audit): `503 unavailable` or
/// `500 internal`, the cause kept for the log.
fn service_error(error: MagicLinkError) -> ApiError {
    let kind = error.kind();
    let code = if kind == ErrorKind::Unavailable {
        "unavailable"
    } else {
        "internal"
    };
    ApiError::new(kind, code, "Signing in by link is temporarily unavailable.").with_internal(error)
}

/// How the consume body arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// The link page's form: a browser navigation.
    Form,
    /// An API client.
    Json,
}

/// The consume body, from either content type.
struct ConsumeBody {
    kind: BodyKind,
    code: String,
}

impl<S: Send + Sync> FromRequest<S> for ConsumeBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                let Form(body) = Form::<ConsumeMagicLink>::from_request(req, state)
                    .await
                    .map_err(|rejection| {
                        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            ApiError::payload_too_large()
                        } else {
                            ApiError::invalid_body("expected the form field `code`")
                        }
                    })?;
                Ok(Self {
                    kind: BodyKind::Form,
                    code: body.code,
                })
            }
            _ => {
                let Json(body) = Json::<ConsumeMagicLink>::from_request(req, state).await?;
                Ok(Self {
                    kind: BodyKind::Json,
                    code: body.code,
                })
            }
        }
    }
}

/// Whether the request may be a same-origin form post (see the module docs). The
/// origin rule is the one of [`crate::csrf`]: one `Origin`, in the allowed list
/// (`null` never is); without `Origin`, `Sec-Fetch-Site: same-origin`.
fn origin_allowed(headers: &HeaderMap, allowed: &[String], kind: BodyKind) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(origin), None) => origin
            .to_str()
            .is_ok_and(|origin| crate::csrf::origin_listed(origin, allowed)),
        (Some(_), Some(_)) => false,
        (None, _) => {
            let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
            match kind {
                // Browsers send `Origin` on every form POST, `Sec-Fetch-Site` covers
                // the rest; with neither it is no browser navigation we can vouch for.
                BodyKind::Form => site.is_some_and(|v| v.eq_ignore_ascii_case("same-origin")),
                // Cross-site JSON needs a CORS preflight, which Rampart does not grant;
                // API clients send neither header.
                BodyKind::Json => site.is_none_or(|v| !v.eq_ignore_ascii_case("cross-site")),
            }
        }
    }
}

fn cookie_headers(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
}

fn append_cookie(response: &mut Response, value: &str) -> Result<(), ApiError> {
    let value = HeaderValue::from_str(value).map_err(ApiError::internal)?;
    response.headers_mut().append(header::SET_COOKIE, value);
    Ok(())
}

/// The requester, for the audit log.
fn context(client: &ClientMeta) -> MagicContext {
    MagicContext {
        client_ip: Some(client.ip()),
        request_id: client.request_id.clone(),
    }
}

/// The link page: one form, no script, no remote content.
fn page(code: &MagicCode) -> String {
    // The code is 43 base64url characters (checked by `MagicCode::parse`), so it
    // needs no escaping; it is placed only in an attribute value.
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>Sign in</title>\n\
         </head>\n\
         <body>\n\
         <main>\n\
         <h1>Sign in</h1>\n\
         <p>Continue to sign in with the link from your email.</p>\n\
         <form method=\"post\" action=\"{CONSUME_PATH}\">\n\
         <input type=\"hidden\" name=\"code\" value=\"{code}\">\n\
         <button type=\"submit\">Sign in</button>\n\
         </form>\n\
         <p>This works only in the browser where you asked for the link.</p>\n\
         </main>\n\
         </body>\n\
         </html>\n",
        code = code.expose_secret(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn form_posts_need_an_allowed_origin() {
        let allowed = vec!["https://auth.example.com".to_owned()];
        let ok = [
            headers(&[("origin", "https://auth.example.com")]),
            headers(&[("origin", "https://AUTH.example.com")]),
            headers(&[("sec-fetch-site", "same-origin")]),
        ];
        for h in &ok {
            assert!(origin_allowed(h, &allowed, BodyKind::Form), "{h:?}");
        }
        let refused = [
            headers(&[]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "none")]),
        ];
        for h in &refused {
            assert!(!origin_allowed(h, &allowed, BodyKind::Form), "{h:?}");
        }
    }

    #[test]
    fn json_posts_refuse_foreign_origins_only() {
        let allowed = vec!["https://auth.example.com".to_owned()];
        assert!(origin_allowed(&headers(&[]), &allowed, BodyKind::Json));
        assert!(!origin_allowed(
            &headers(&[("origin", "https://evil.example")]),
            &allowed,
            BodyKind::Json
        ));
        assert!(!origin_allowed(
            &headers(&[("sec-fetch-site", "cross-site")]),
            &allowed,
            BodyKind::Json
        ));
    }

    #[test]
    fn page_has_a_form_and_no_script() {
        let code = MagicCode::generate().unwrap();
        let html = page(&code);
        assert!(html.contains(&format!("value=\"{}\"", code.expose_secret())));
        assert!(html.contains("action=\"/api/v1/auth/magic-link/consume\""));
        assert!(!html.contains("<script"));
        assert!(!html.contains("style"));
        assert!(!html.contains("http"));
    }
}
