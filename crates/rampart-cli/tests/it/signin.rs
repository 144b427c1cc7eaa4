//! The sign-in page (F-PORTAL): `GET /login`, `POST /login`, `POST /login/mfa`, on
//! both backends, in process. The flow through a real nginx is in `fwd_nginx`.
//!
//! The page answers HTML in every case (errors too), shares the JSON API's login —
//! lockout, audit, session replacement — and refuses cross-site posts.

use rampart_core::Clock as _;
use rampart_identity::accounts::NewAccount;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde_json::{Value, json};

use crate::api_auth::{
    Browser, PASSWORD, audited, code, enrol_totp, http, session_set_cookie, totp_code, user,
};
use crate::fwd_nginx::input_value;
use crate::on_both_backends;
use crate::support::TestServer;

/// Rampart's public origin in these tests.
const PUBLIC: &str = "https://auth.example.test";

/// A server with `public_url`, an application host whose pages may be returned to,
/// a lockout after 3 failures, and an admin `root`.
async fn server(backend: rampart_store::Backend) -> TestServer {
    let server = TestServer::with_config_env(
        backend,
        r#"
[auth.lockout]
max_failures = 3

[roles.admin]
permissions = ["*"]

[roles.user]
permissions = ["app:use"]

[upstreams.app]
url = "http://127.0.0.1:9"

[[routes]]
name = "app"
host = "app.example.test"
path_prefix = "/"
upstream = "app"
"#,
        &[("RAMPART_PUBLIC_URL", PUBLIC)],
    )
    .await;
    server
        .running()
        .state()
        .accounts
        .create_admin_from_cli(
            NewAccount {
                username: "root".to_owned(),
                password: Some(PASSWORD.into()),
                ..NewAccount::default()
            },
            false,
        )
        .await
        .unwrap();
    server
}

/// A form post as a browser on Rampart's page sends it.
fn post(server: &TestServer, path: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    http()
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", PUBLIC)
        .header("sec-fetch-site", "same-origin")
        .body(form(fields))
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

async fn html(response: reqwest::Response) -> String {
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/html; charset=utf-8",
        "every answer is a page"
    );
    response.text().await.unwrap()
}

/// Asserts that at least `n` records of `kind` are in the audit log, once every
/// event recorded so far is written (the log is written in the background).
async fn audited_at_least(server: &TestServer, kind: &str, n: i64) {
    server.running().state().audit.flush().await.unwrap();
    let count = audited(server, kind).await;
    assert!(
        count >= n,
        "{count} {kind} record(s), expected at least {n}"
    );
}

fn cookie_pair(line: &str) -> String {
    line.split(';').next().unwrap().to_owned()
}

on_both_backends!(the_page_is_a_form_with_a_strict_policy, |backend| {
    let server = server(backend).await;
    let response = http()
        .get(server.url("/login?rd=https%3A%2F%2Fapp.example.test%2Fdocs%3Fa%3D1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers[CONTENT_SECURITY_POLICY],
        "default-src 'none'; form-action 'self' https://app.example.test; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let page = html(response).await;
    assert!(
        page.contains("<form method=\"post\" action=\"/login\">"),
        "{page}"
    );
    assert_eq!(
        input_value(&page, "rd").as_deref(),
        Some("https://app.example.test/docs?a=1")
    );
    for forbidden in ["<script", "<style", "style=", "<link", "<img", "<iframe"] {
        assert!(!page.contains(forbidden), "{forbidden} in {page}");
    }
    // Without rd, or with one that is not allowed: back to `/`, and a form-action
    // limited to Rampart itself.
    for query in ["", "?rd=https%3A%2F%2Fevil.example%2F"] {
        let response = http()
            .get(server.url(&format!("/login{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()[CONTENT_SECURITY_POLICY],
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(
            input_value(&html(response).await, "rd").as_deref(),
            Some("/")
        );
    }
    // Reflected markup is escaped, never rendered.
    let response = http()
        .get(server.url("/login?rd=%2F%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .send()
        .await
        .unwrap();
    let page = html(response).await;
    assert!(!page.contains("<script"), "{page}");
    server.stop().await;
});

on_both_backends!(
    signing_in_replaces_the_session_and_returns_to_rd,
    |backend| {
        let server = server(backend).await;
        user(&server, "alice", &["user"]).await;
        // A session from before (signed in through the JSON API).
        let response = http()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let before = cookie_pair(&session_set_cookie(&response).unwrap());

        let response = post(
            &server,
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("rd", "https://app.example.test/docs?a=1"),
            ],
        )
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[LOCATION],
            "https://app.example.test/docs?a=1"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let line = session_set_cookie(&response).expect("the session cookie");
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(line.contains(attribute), "{attribute} missing in {line}");
        }
        let after = Browser {
            cookie: Some(cookie_pair(&line)),
            csrf: None,
        };
        let me: Value = after
            .get(&server, "/api/v1/auth/whoami")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "alice");
        assert_eq!(me["mfa"], false);
        // The presented session ended: the id changes at every sign-in.
        let old = Browser {
            cookie: Some(before),
            csrf: None,
        };
        assert_eq!(
            old.get(&server, "/api/v1/auth/whoami").await.status(),
            StatusCode::UNAUTHORIZED
        );
        audited_at_least(&server, "session.created", 2).await;

        // A same-site path is a fine target too; no rd at all means `/`.
        for (rd, expected) in [(Some("/account"), "/account"), (None, "/")] {
            let mut fields = vec![("username", "alice"), ("password", PASSWORD)];
            if let Some(rd) = rd {
                fields.push(("rd", rd));
            }
            let response = post(&server, "/login", &fields).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(response.headers()[LOCATION], expected);
        }
        server.stop().await;
    }
);

on_both_backends!(failures_are_pages_and_share_the_api_lockout, |backend| {
    let server = server(backend).await;
    user(&server, "alice", &["user"]).await;
    // Unknown user and wrong password: the same page.
    for name in ["alice", "nobody"] {
        let response = post(
            &server,
            "/login",
            &[
                ("username", name),
                ("password", "wrong password here 1"),
                ("rd", "/x"),
            ],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(session_set_cookie(&response).is_none());
        let page = html(response).await;
        assert!(page.contains("Invalid username or password."), "{page}");
        assert_eq!(
            input_value(&page, "rd").as_deref(),
            Some("/x"),
            "rd survives"
        );
        assert_eq!(input_value(&page, "username").as_deref(), Some(name));
    }
    audited_at_least(&server, "auth.login.failed", 2).await;
    // Two failures on the form for alice's address, one on the JSON API: the shared
    // counter locks the client address (and the form, and the API).
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": "wrong password here 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post(
        &server,
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
    assert!(session_set_cookie(&response).is_none());
    let page = html(response).await;
    assert!(page.contains("Too many failed logins"), "{page}");
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        code(response).await,
        "login_locked",
        "the JSON API keeps its envelope"
    );
    server.stop().await;
});

on_both_backends!(cross_site_and_malformed_posts_are_refused, |backend| {
    let server = server(backend).await;
    user(&server, "alice", &["user"]).await;
    let body = form(&[("username", "alice"), ("password", PASSWORD)]);
    let cases: [&[(&str, &str)]; 5] = [
        &[("origin", "https://evil.example")],
        &[("origin", "https://app.example.test")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[],
    ];
    for headers in cases {
        let mut request = http()
            .post(server.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(session_set_cookie(&response).is_none(), "{headers:?}");
        let page = html(response).await;
        assert!(page.contains("Sign-in failed"), "{page}");
    }
    // The browser's own word for a same-origin post is enough (no Origin sent).
    let response = http()
        .post(server.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Not the form: a page too, not JSON.
    for (content_type, body) in [
        (
            "application/json",
            r#"{"username":"alice","password":"x"}"#.to_owned(),
        ),
        (
            "application/x-www-form-urlencoded",
            form(&[("username", "alice"), ("password", "x"), ("remember", "1")]),
        ),
        (
            "application/x-www-form-urlencoded",
            form(&[("username", "alice")]),
        ),
    ] {
        let response = http()
            .post(server.url("/login"))
            .header("content-type", content_type)
            .header("origin", PUBLIC)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        html(response).await;
    }
    // Elsewhere errors keep the JSON envelope.
    let response = http().get(server.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(response).await, "not_found");
    server.stop().await;
});

on_both_backends!(second_factor_through_the_code_form, |backend| {
    let server = server(backend).await;
    user(&server, "bob", &["user"]).await;
    let secret = enrol_totp(&server, "bob").await;
    let rd = "https://app.example.test/secure";
    let response = post(
        &server,
        "/login",
        &[("username", "bob"), ("password", PASSWORD), ("rd", rd)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        session_set_cookie(&response).is_none(),
        "not before the second factor"
    );
    assert_eq!(
        response.headers()[CONTENT_SECURITY_POLICY],
        "default-src 'none'; form-action 'self' https://app.example.test; frame-ancestors 'none'; base-uri 'none'"
    );
    let page = html(response).await;
    assert!(page.contains("action=\"/login/mfa\""), "{page}");
    let token = input_value(&page, "mfa_token").unwrap();
    assert_eq!(input_value(&page, "rd").as_deref(), Some(rd));

    // A wrong code: the code form again, same pending login.
    let response = post(
        &server,
        "/login/mfa",
        &[("mfa_token", &token), ("code", "000000"), ("rd", rd)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = html(response).await;
    assert!(
        page.contains("The code is wrong or was already used."),
        "{page}"
    );
    assert_eq!(
        input_value(&page, "mfa_token").as_deref(),
        Some(token.as_str())
    );

    // A cross-site post of the second step: refused like the first.
    let response = http()
        .post(server.url("/login/mfa"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .body(form(&[("mfa_token", &token), ("code", "123456")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The right code: signed in with MFA, back to rd.
    let code_now = totp_code(&secret, server.clock.unix());
    let response = post(
        &server,
        "/login/mfa",
        &[("mfa_token", &token), ("code", &code_now), ("rd", rd)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], rd);
    let line = session_set_cookie(&response).unwrap();
    let me: Value = Browser {
        cookie: Some(cookie_pair(&line)),
        csrf: None,
    }
    .get(&server, "/api/v1/auth/whoami")
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(me["username"], "bob");
    assert_eq!(me["mfa"], true);

    // The pending login is spent: back to the password form.
    let response = post(
        &server,
        "/login/mfa",
        &[("mfa_token", &token), ("code", &code_now), ("rd", rd)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = html(response).await;
    assert!(page.contains("action=\"/login\""), "{page}");
    assert!(
        page.contains("The login has expired; sign in again."),
        "{page}"
    );
    server.stop().await;
});

on_both_backends!(the_pages_are_in_the_openapi_document, |backend| {
    let server = server(backend).await;
    let document: Value = http()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = &document["paths"];
    assert!(paths["/login"]["get"].is_object(), "{paths}");
    assert!(
        paths["/login"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            .is_object()
    );
    assert!(paths["/login/mfa"]["post"].is_object());
    server.stop().await;
});
