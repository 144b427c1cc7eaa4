//! The sign-in page (F-PORTAL): the browser half of forward-auth.
//!
//! | route | what |
//! |---|---|
//! | `GET /login?rd=…` | the form: username (or e-mail) and password |
//! | `POST /login` | the password step; signed in → `303` to `rd`; a second factor enrolled → the code form |
//! | `POST /login/mfa` | the second step: a TOTP or recovery code with the pending login → `303` to `rd` |
//!
//! The gateway and `/auth/verify` send a browser that is not signed in here, with `rd`
//! set to the page it asked for (`forward_auth.signin_url`, by default
//! `<public_url>/login`).
//!
//! - **The same login as the JSON API.** The forms call
//!   [`Accounts::login_password`](rampart_identity::accounts::Accounts::login_password)
//!   and `login_second_factor` — lockout, the dummy hash for unknown users and the
//!   audit records are theirs — and the session is created by the same function as
//!   `POST /api/v1/auth/login` (the presented session cookie is revoked: the id
//!   always changes at sign-in).
//! - **`rd` is validated twice**, with the [`ReturnUrls`] the gateway uses: when the
//!   page is rendered and when the form comes back (the browser carries it in a
//!   hidden field, where anyone can edit it). An open-redirect payload becomes `/`.
//! - **Login CSRF.** A forged cross-site post would sign the victim's browser into
//!   the attacker's account. Posts must carry an allowed `Origin` or
//!   `Sec-Fetch-Site: same-origin` ([`csrf::check_origin`]); anything else — including
//!   neither header — is `403 csrf_failed`. API clients use the JSON API instead.
//! - **The pages load and run nothing.** No script, no style, no remote content, so
//!   the policy needs no nonce: `default-src 'none'; form-action 'self' [rd's origin];
//!   frame-ancestors 'none'; base-uri 'none'`. `form-action` names `rd`'s origin
//!   because browsers apply it to the redirect that follows the post. Every value
//!   placed in a page is HTML-escaped. `Referrer-Policy: same-origin`: with
//!   `no-referrer`, browsers send `Origin: null` on the form's own post.
//! - **Every answer is a page**, errors included, with the JSON API's status and
//!   stable code: the response carries [`HtmlPage`], so the envelope middleware keeps
//!   the page (and still logs an internal cause).

use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use rampart_core::ErrorKind;
use rampart_crypto::SecretString;
use rampart_identity::VerifiedIdentity;
use rampart_identity::accounts::{Code, LoginError, LoginStep};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{context, login_error, new_session};
use crate::csrf;
use crate::error::ApiError;
use crate::extract::ClientMeta;
use crate::middleware::HtmlPage;
use crate::return_url::{ReturnUrls, target_origin};
use crate::state::AppState;

/// The page and the password form's action.
pub const SIGNIN_PATH: &str = "/login";
/// The second-factor form's action.
pub const SECOND_FACTOR_PATH: &str = "/login/mfa";

/// The sign-in page and its two form posts.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page, sign_in))
        .routes(routes!(second_factor))
}

/// `POST /login` (form-urlencoded).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInForm {
    /// Username or e-mail address.
    pub username: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Where to go once signed in (validated again; anything not allowed becomes `/`).
    #[serde(default)]
    pub rd: Option<String>,
}

/// `POST /login/mfa` (form-urlencoded).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorForm {
    /// The pending login, from the hidden field of the code form.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// A 6-digit TOTP code or a recovery code (`xxxx-xxxx-xxxx-xxxx`).
    #[schema(value_type = String)]
    pub code: SecretString,
    /// Where to go once signed in (validated again).
    #[serde(default)]
    pub rd: Option<String>,
}

/// The sign-in form.
#[utoipa::path(
    get,
    path = "/login",
    tag = "sign-in",
    params(("rd" = Option<String>, Query, description = "Where to go once signed in: a path on Rampart's host or a URL on an allowed origin; anything else becomes `/`")),
    responses(
        (status = 200, description = "The form (no script; `Content-Security-Policy: default-src 'none'; form-action 'self' …`)", content_type = "text/html", body = String),
    )
)]
async fn page(State(state): State<AppState>, uri: Uri) -> Response {
    let target = ReturnTarget::new(&state, query_rd(uri.query()).as_deref());
    password_page(&target, "", None)
}

/// The password step of the sign-in page.
#[utoipa::path(
    post,
    path = "/login",
    tag = "sign-in",
    request_body(content = SignInForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A second factor is needed: the code form", content_type = "text/html", body = String),
        (status = 303, description = "Signed in: to the validated `rd`",
            headers(("Location" = String, description = "The validated `rd`"), ("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "`invalid_credentials`: the form again, with the message", content_type = "text/html", body = String),
        (status = 403, description = "`account_disabled`, or `csrf_failed` for a post from another site", content_type = "text/html", body = String),
        (status = 422, description = "`invalid_body`: not the form", content_type = "text/html", body = String),
        (status = 429, description = "`login_locked` (with `Retry-After`)", content_type = "text/html", body = String),
    )
)]
async fn sign_in(State(state): State<AppState>, client: ClientMeta, request: Request) -> Response {
    let headers = request.headers().clone();
    if let Err(refused) = same_origin(&headers, &state) {
        return error_page(refused, &client);
    }
    let form: SignInForm = match read_form(request).await {
        Ok(form) => form,
        Err(error) => return error_page(error, &client),
    };
    let target = ReturnTarget::new(&state, form.rd.as_deref());
    let step = state
        .accounts
        .login_password(&form.username, &form.password, &context(&client))
        .await;
    match step {
        Ok(LoginStep::Complete(identity)) => {
            signed_in(&state, &identity, &client, &headers, &target).await
        }
        Ok(LoginStep::SecondFactor(pending)) => code_page(pending.token(), &target, None),
        Err(error) => password_page(
            &target,
            &form.username,
            Some(login_error(error, state.clock.now())),
        ),
    }
}

/// The second-factor step of the sign-in page.
#[utoipa::path(
    post,
    path = "/login/mfa",
    tag = "sign-in",
    request_body(content = SecondFactorForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in (the session passed MFA): to the validated `rd`",
            headers(("Location" = String, description = "The validated `rd`"), ("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "`invalid_second_factor` (the code form again) or `mfa_token_invalid` (the password form again)", content_type = "text/html", body = String),
        (status = 403, description = "`csrf_failed`: a post from another site", content_type = "text/html", body = String),
        (status = 422, description = "`invalid_body`: not the form", content_type = "text/html", body = String),
        (status = 429, description = "`login_locked` (with `Retry-After`)", content_type = "text/html", body = String),
    )
)]
async fn second_factor(
    State(state): State<AppState>,
    client: ClientMeta,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    if let Err(refused) = same_origin(&headers, &state) {
        return error_page(refused, &client);
    }
    let form: SecondFactorForm = match read_form(request).await {
        Ok(form) => form,
        Err(error) => return error_page(error, &client),
    };
    let target = ReturnTarget::new(&state, form.rd.as_deref());
    let result = state
        .accounts
        .login_second_factor(&form.mfa_token, classify(&form.code), &context(&client))
        .await;
    match result {
        Ok(identity) => signed_in(&state, &identity, &client, &headers, &target).await,
        // The pending login is gone (expired, used, too many wrong codes, the
        // account changed): start over.
        Err(error @ LoginError::PendingLoginInvalid) => {
            password_page(&target, "", Some(login_error(error, state.clock.now())))
        }
        // A wrong code or a lockout: the pending login stays valid until it expires
        // or runs out of attempts.
        Err(error @ (LoginError::InvalidSecondFactor | LoginError::Locked { .. })) => code_page(
            &form.mfa_token,
            &target,
            Some(login_error(error, state.clock.now())),
        ),
        Err(error) => error_page(login_error(error, state.clock.now()), &client),
    }
}

/// Where the browser goes once signed in: a validated return URL.
struct ReturnTarget {
    /// The validated target (`/` when the candidate was not allowed).
    url: String,
    /// Its origin when it is on another host (for `form-action`).
    origin: Option<String>,
}

impl ReturnTarget {
    fn new(state: &AppState, candidate: Option<&str>) -> Self {
        let url = match candidate {
            // The origins are a handful of parsed URLs: rebuilding them per request
            // keeps the page free of state of its own.
            Some(candidate) => ReturnUrls::for_config(&state.config).validate(candidate),
            None => "/".to_owned(),
        };
        let origin = target_origin(&url);
        Self { url, origin }
    }

    /// The `Location` of the final redirect (`/` if the target is not a valid header
    /// value — a path with raw non-ASCII characters).
    fn location(&self) -> HeaderValue {
        HeaderValue::from_str(&self.url).unwrap_or_else(|_| HeaderValue::from_static("/"))
    }
}

/// `rd` from the page's query (the first one, if repeated).
fn query_rd(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "rd")
        .map(|(_, value)| value.into_owned())
}

/// Login CSRF: the post must come from a page of an allowed origin.
fn same_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    csrf::check_origin(headers, &state.config.csrf_origins()).map_err(|failure| {
        tracing::info!(reason = failure.as_str(), "sign-in form refused (CSRF)");
        ApiError::new(
            ErrorKind::Forbidden,
            "csrf_failed",
            "Sign-in is only accepted from Rampart's own sign-in page.",
        )
    })
}

/// The form body; any other body is `422 invalid_body` (`413` if too large).
async fn read_form<T: DeserializeOwned>(request: Request) -> Result<T, ApiError> {
    Form::<T>::from_request(request, &())
        .await
        .map(|Form(form)| form)
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::invalid_body(
                    "expected the sign-in form (application/x-www-form-urlencoded)",
                )
            }
        })
}

/// Six digits are a TOTP code; anything else is tried as a recovery code (those are
/// 16 characters, so the two never overlap).
fn classify(code: &SecretString) -> Code {
    let compact: String = code
        .expose_secret()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
        Code::Totp(SecretString::new(compact))
    } else {
        Code::Recovery(SecretString::new(code.expose_secret().to_owned()))
    }
}

/// Creates the session and sends the browser to the target: `303`, so the browser
/// follows with a `GET`.
async fn signed_in(
    state: &AppState,
    identity: &VerifiedIdentity,
    client: &ClientMeta,
    headers: &HeaderMap,
    target: &ReturnTarget,
) -> Response {
    let session = match new_session(state, identity, client, headers).await {
        Ok(session) => session,
        Err(error) => return error_page(error, client),
    };
    let Ok(cookie) = HeaderValue::from_str(&session.set_cookie) else {
        return error_page(
            ApiError::internal(std::io::Error::other(
                "session cookie is not a header value",
            )),
            client,
        );
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, target.location());
    headers.insert(header::SET_COOKIE, cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The password form, with the refusal of the previous attempt if any.
fn password_page(target: &ReturnTarget, username: &str, refusal: Option<ApiError>) -> Response {
    let main = format!(
        "<h1>Sign in</h1>\n\
         {alert}\
         <form method=\"post\" action=\"{SIGNIN_PATH}\">\n\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\">\n\
         <p><label for=\"username\">Username or email</label><br>\n\
         <input id=\"username\" name=\"username\" value=\"{username}\" type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus></p>\n\
         <p><label for=\"password\">Password</label><br>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n\
         </form>\n",
        alert = alert(refusal.as_ref()),
        rd = escape(&target.url),
        username = escape(username),
    );
    respond(document("Sign in", &main), Some(target), refusal)
}

/// The second-factor form for a pending login.
fn code_page(token: &SecretString, target: &ReturnTarget, refusal: Option<ApiError>) -> Response {
    let restart = format!(
        "{SIGNIN_PATH}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("rd", &target.url)
            .finish()
    );
    let main = format!(
        "<h1>Two-step verification</h1>\n\
         <p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>\n\
         {alert}\
         <form method=\"post\" action=\"{SECOND_FACTOR_PATH}\">\n\
         <input type=\"hidden\" name=\"mfa_token\" value=\"{token}\">\n\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\">\n\
         <p><label for=\"code\">Code</label><br>\n\
         <input id=\"code\" name=\"code\" type=\"text\" autocomplete=\"one-time-code\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus></p>\n\
         <p><button type=\"submit\">Verify</button></p>\n\
         </form>\n\
         <p><a href=\"{restart}\">Start again</a></p>\n",
        alert = alert(refusal.as_ref()),
        token = escape(token.expose_secret()),
        rd = escape(&target.url),
        restart = escape(&restart),
    );
    respond(
        document("Two-step verification", &main),
        Some(target),
        refusal,
    )
}

/// A refusal that has no form to show again (a cross-site post, a malformed body, a
/// failure on our side).
fn error_page(error: ApiError, client: &ClientMeta) -> Response {
    let request_id = client.request_id.as_deref().unwrap_or("");
    let main = format!(
        "<h1>Sign-in failed</h1>\n\
         {alert}\
         <p>Request id: <code>{id}</code></p>\n\
         <p><a href=\"{SIGNIN_PATH}\">Start again</a></p>\n",
        alert = alert(Some(&error)),
        id = escape(request_id),
    );
    respond(document("Sign-in failed", &main), None, Some(error))
}

/// The page as the response: the refusal's status and headers (`Retry-After`…) and
/// its error kept for the log, the page's own headers, and the [`HtmlPage`] marker.
/// `form_target` is `None` for a page without a form.
fn respond(
    html: String,
    form_target: Option<&ReturnTarget>,
    refusal: Option<ApiError>,
) -> Response {
    let mut response = match refusal {
        Some(error) => error.into_response(),
        None => StatusCode::OK.into_response(),
    };
    *response.body_mut() = Body::from(html);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(form_target)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // The code form holds the pending login; no page here is worth a cache entry.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    response.extensions_mut().insert(HtmlPage);
    response
}

/// Nothing loads, nothing runs, nobody frames the page; a form may post only to
/// Rampart, and the redirect after it only to the target's origin.
fn content_security_policy(form_target: Option<&ReturnTarget>) -> String {
    let form_action = match form_target {
        None => "'none'".to_owned(),
        Some(ReturnTarget {
            origin: Some(origin),
            ..
        }) => format!("'self' {origin}"),
        Some(_) => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

fn alert(refusal: Option<&ApiError>) -> String {
    match refusal {
        Some(error) => format!(
            "<p role=\"alert\"><strong>{}</strong></p>\n",
            escape(&sentence(error.message()))
        ),
        None => String::new(),
    }
}

fn document(title: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{title}</title>\n\
         </head>\n\
         <body>\n\
         <main>\n\
         {main}\
         </main>\n\
         </body>\n\
         </html>\n"
    )
}

/// `message` with a capital first letter and a final full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> ReturnTarget {
        ReturnTarget {
            url: url.to_owned(),
            origin: target_origin(url),
        }
    }

    #[test]
    fn everything_placed_in_a_page_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
        let response = password_page(&target("/\"><script>alert(1)</script>"), "<b>", None);
        let html = body_text(response);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("value=\"&lt;b&gt;\""));
    }

    #[test]
    fn pages_have_no_script_no_style_and_a_strict_policy() {
        let response = password_page(&target("https://app.example.com/x"), "", None);
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; form-action 'self' https://app.example.com; frame-ancestors 'none'; base-uri 'none'"
        );
        assert!(response.extensions().get::<HtmlPage>().is_some());
        let html = body_text(response);
        assert!(!html.contains("<script"));
        assert!(!html.contains("style"));
        let handlers = html
            .split(" on")
            .skip(1)
            .filter(|rest| {
                let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
                rest[name.len()..].starts_with('=')
            })
            .count();
        assert_eq!(handlers, 0, "no event handler attributes: {html}");

        let local = password_page(&target("/account"), "", None);
        assert_eq!(
            local.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
    }

    #[test]
    fn refusals_keep_their_status_headers_and_error() {
        let locked = ApiError::new(
            ErrorKind::RateLimited,
            "login_locked",
            "too many failed logins",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("60"));
        let response = password_page(&target("/"), "alice", Some(locked));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
        assert!(
            response
                .extensions()
                .get::<crate::error::PendingError>()
                .is_some(),
            "the error travels on for the log"
        );
        let html = body_text(response);
        assert!(html.contains("Too many failed logins."), "{html}");
    }

    #[test]
    fn six_digits_are_totp_everything_else_a_recovery_code() {
        assert!(matches!(classify(&"123456".into()), Code::Totp(_)));
        assert!(matches!(classify(&" 123 456 ".into()), Code::Totp(_)));
        assert!(matches!(
            classify(&"abcd-efgh-2345-6789".into()),
            Code::Recovery(_)
        ));
        assert!(matches!(classify(&"1234567".into()), Code::Recovery(_)));
    }

    #[test]
    fn rd_comes_from_the_query() {
        assert_eq!(
            query_rd(Some(
                "x=1&rd=https%3A%2F%2Fapp.example.com%2F%3Fa%3D1&rd=/other"
            ))
            .as_deref(),
            Some("https://app.example.com/?a=1")
        );
        assert_eq!(query_rd(Some("x=1")), None);
        assert_eq!(query_rd(None), None);
    }

    fn body_text(response: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
