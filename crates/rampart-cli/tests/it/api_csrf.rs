//! CSRF for cookie sessions (F-CSRF): unsafe requests need the session's token and an
//! allowed origin; safe methods and bearer requests are exempt.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_auth::{ORIGIN, code, http, login, server, tokens, user};
use crate::on_both_backends;
use crate::support::TestServer;

/// `POST /api/v1/me/tokens` (an unsafe, cookie-authenticated request) with the given
/// cookie and headers.
async fn post(server: &TestServer, cookie: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http()
        .post(server.url("/api/v1/me/tokens"))
        .header("cookie", cookie)
        .json(&json!({"name": "ci", "scopes": ["reports:read"]}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

on_both_backends!(unsafe_cookie_requests_need_token_and_origin, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let cookie = browser.cookie.clone().unwrap();
    let token = browser.csrf.clone().unwrap();

    // The token endpoint returns the same token the login did.
    let body: Value = browser
        .get(&server, "/api/v1/security/csrf")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["csrf_token"], token.as_str());

    let refused = [
        ("missing token", vec![("origin", ORIGIN)]),
        (
            "wrong token",
            vec![("origin", ORIGIN), ("x-csrf-token", "d3Jvbmc")],
        ),
        (
            "foreign origin",
            vec![("origin", "https://evil.example"), ("x-csrf-token", &token)],
        ),
        (
            "null origin",
            vec![("origin", "null"), ("x-csrf-token", &token)],
        ),
        ("no origin at all", vec![("x-csrf-token", &token)]),
        (
            "cross-site fetch",
            vec![("sec-fetch-site", "cross-site"), ("x-csrf-token", &token)],
        ),
    ];
    for (case, headers) in refused {
        let response = post(&server, &cookie, &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_eq!(code(response).await, "csrf_failed", "{case}");
    }
    // The token of another session does not fit this one.
    let (other, _) = login(&server, "alice").await;
    let response = post(
        &server,
        &cookie,
        &[
            ("origin", ORIGIN),
            ("x-csrf-token", other.csrf.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "token of another session"
    );

    // Allowed: the right token from the allowed origin, or from the same origin.
    let response = post(
        &server,
        &cookie,
        &[("origin", ORIGIN), ("x-csrf-token", &token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = post(
        &server,
        &cookie,
        &[("sec-fetch-site", "same-origin"), ("x-csrf-token", &token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
});

on_both_backends!(safe_methods_and_bearer_requests_are_exempt, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    // GET with the cookie, no token, no origin.
    let response = http()
        .get(server.url("/api/v1/me/sessions"))
        .header("cookie", browser.cookie.as_deref().unwrap())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // POST with a bearer token, no CSRF token, foreign origin.
    let (access, _) = tokens(&server, "alice").await;
    let response = http()
        .post(server.url("/api/v1/me/tokens"))
        .bearer_auth(&access)
        .header("origin", "https://evil.example")
        .json(&json!({"name": "ci", "scopes": ["reports:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The CSRF endpoint is for sessions only.
    let response = http()
        .get(server.url("/api/v1/security/csrf"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = browser
        .request(&server, Method::GET, "/api/v1/security/csrf")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
});
