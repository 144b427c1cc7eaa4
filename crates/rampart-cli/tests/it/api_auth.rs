//! Sign-in, sign-out and the token endpoint over HTTP (F-PASSWORD, F-SESSION, F-JWT,
//! F-REFRESH, F-BEARER), on both backends, plus the helpers the other identity test
//! modules share (`api_sessions`, `api_csrf`, `api_tokens`, `api_jwt`).
//!
//! The servers run in production mode, so the session cookie is `Secure` and a cookie
//! store would not send it back over `http://`: cookies are read from `Set-Cookie`
//! and sent in `Cookie` by hand, with the `Origin` and `X-CSRF-Token` a browser page
//! of the allowed origin would send.

use std::time::Duration;

use rampart_core::Clock as _;
use rampart_crypto::totp::{Totp, TotpAlgorithm, TotpSecret};
use rampart_identity::accounts::{Actor, NewAccount};
use rampart_testkit::client::install_crypto_provider;
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestServer;

/// The origin browser requests come from in these tests (`csrf.allowed_origins`).
pub const ORIGIN: &str = "https://app.example.test";
/// The session cookie's name with the default production flags.
pub const COOKIE: &str = "__Host-rampart_session";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// The extra config of every identity test server.
pub fn config(extra: &str) -> String {
    format!(
        r#"
[csrf]
allowed_origins = ["{ORIGIN}"]

[roles.admin]
permissions = ["*"]

[roles.user]
permissions = ["profile:read"]

[roles.integrator]
permissions = ["integration:invoke", "reports:read"]
{extra}"#
    )
}

/// A server with the identity test config and an initialized instance (admin `root`).
pub async fn server(backend: rampart_store::Backend, extra: &str) -> TestServer {
    let server = TestServer::with_config(backend, &config(extra)).await;
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

/// Creates a user with [`PASSWORD`] and `roles`; returns the user id.
pub async fn user(server: &TestServer, username: &str, roles: &[&str]) -> String {
    server
        .running()
        .state()
        .accounts
        .create_user(
            &Actor::cli(),
            NewAccount {
                username: username.to_owned(),
                password: Some(PASSWORD.into()),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                ..NewAccount::default()
            },
        )
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned()
}

/// Enrols TOTP for `username`; returns the secret to compute codes with.
pub async fn enrol_totp(server: &TestServer, username: &str) -> TotpSecret {
    let accounts = &server.running().state().accounts;
    let id = accounts.account_by_username(username).await.unwrap().id;
    let enrollment = accounts.totp_setup(&id).await.unwrap();
    let secret = TotpSecret::from_base32(&enrollment.secret).unwrap();
    // A code of the previous step, so the login that follows (current step) is not a
    // replay of the enrolment code.
    let code = totp_code(&secret, server.clock.unix() - 30);
    accounts
        .totp_enable(&Actor::cli(), &id, &code.as_str().into())
        .await
        .unwrap();
    secret
}

/// The TOTP code at `unix`.
pub fn totp_code(secret: &TotpSecret, unix: i64) -> String {
    Totp::new(secret, TotpAlgorithm::Sha1, 6)
        .unwrap()
        .code_at(unix)
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// A client without a cookie store.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A browser: its session cookie and CSRF token, sent by hand.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// `name=value` of the session cookie.
    pub cookie: Option<String>,
    /// The CSRF token from the login response.
    pub csrf: Option<String>,
}

impl Browser {
    /// A request with the cookie and, for unsafe methods, `Origin` and
    /// `X-CSRF-Token`.
    pub fn request(
        &self,
        server: &TestServer,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let unsafe_method = !matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
        let mut request = http().request(method, server.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if unsafe_method {
            request = request.header("origin", ORIGIN);
            if let Some(csrf) = &self.csrf {
                request = request.header("x-csrf-token", csrf);
            }
        }
        request
    }

    /// GET with the cookie.
    pub async fn get(&self, server: &TestServer, path: &str) -> reqwest::Response {
        self.request(server, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }
}

/// Signs in with username and password (no second factor); returns the browser and
/// the full `Set-Cookie` line.
pub async fn login(server: &TestServer, username: &str) -> (Browser, String) {
    login_as(server, username, &Browser::default()).await
}

/// Signs in presenting `before`'s cookie (if any).
pub async fn login_as(server: &TestServer, username: &str, before: &Browser) -> (Browser, String) {
    let response = before
        .request(server, reqwest::Method::POST, "/api/v1/auth/login")
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let line = session_set_cookie(&response).expect("session cookie");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    let browser = Browser {
        cookie: Some(line.split(';').next().unwrap().to_owned()),
        csrf: Some(body["csrf_token"].as_str().unwrap().to_owned()),
    };
    (browser, line)
}

/// The `Set-Cookie` line of the session cookie, if any.
pub fn session_set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{COOKIE}=")))
        .map(str::to_owned)
}

/// `POST /api/v1/auth/token` with `body`.
pub async fn token_request(server: &TestServer, body: Value) -> reqwest::Response {
    http()
        .post(server.url("/api/v1/auth/token"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A token pair by the password grant: `(access_token, refresh_token)`.
pub async fn tokens(server: &TestServer, username: &str) -> (String, String) {
    let response = token_request(
        server,
        json!({"grant_type": "password", "username": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// `GET path` with a bearer token.
pub async fn bearer_get(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The error code of an error response.
pub async fn code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits (up to 5 s) until the audit log holds an event of `kind`; returns how many.
/// How many audit records of `kind` exist once every event recorded so far has been
/// written (the writer is flushed first: no polling).
pub async fn audited(server: &TestServer, kind: &str) -> i64 {
    server.running().state().audit.flush().await.unwrap();
    let pool = server.db().raw_pool().await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM audit_records WHERE kind = $1")
        .bind(kind)
        .fetch_one(&pool)
        .await
        .unwrap()
}

on_both_backends!(login_sets_a_hardened_host_cookie, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, line) = login(&server, "alice").await;
    let attributes: Vec<&str> = line.split("; ").collect();
    let value = attributes[0]
        .strip_prefix("__Host-rampart_session=")
        .unwrap();
    assert_eq!(value.len(), 43, "256-bit id in base64url");
    for expected in [
        "Path=/",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Max-Age=43200",
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing in {line}"
        );
    }
    assert!(!line.contains("Domain"), "{line}");
    let me: Value = browser
        .get(&server, "/api/v1/auth/whoami")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["method"], "session");
    assert_eq!(me["mfa"], false);
    assert!(me["credential_id"].as_str().unwrap().starts_with("ses_"));
    assert!(audited(&server, "session.created").await >= 1);
    // The database holds the hash, never the id.
    let pool = server.db().raw_pool().await.unwrap();
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    assert_ne!(hashes[0], value.as_bytes());
    server.stop().await;
});

on_both_backends!(wrong_password_and_unknown_user_answer_alike, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    for name in ["alice", "nobody"] {
        let response = http()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": name, "password": "wrong password here 1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(session_set_cookie(&response).is_none());
        assert_eq!(code(response).await, "invalid_credentials");
    }
    // Unknown fields are refused.
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD, "remember": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
});

on_both_backends!(login_from_a_foreign_origin_is_refused, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "csrf_failed");
    server.stop().await;
});

on_both_backends!(two_step_login_with_totp, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let secret = enrol_totp(&server, "alice").await;
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        session_set_cookie(&response).is_none(),
        "no session before the second factor"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "mfa_required");
    let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
    // Both codes at once are refused.
    let response = http()
        .post(server.url("/api/v1/auth/login/mfa"))
        .json(&json!({"mfa_token": mfa_token, "totp_code": "000000", "recovery_code": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = http()
        .post(server.url("/api/v1/auth/login/mfa"))
        .json(&json!({
            "mfa_token": mfa_token,
            "totp_code": totp_code(&secret, server.clock.unix()),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_set_cookie(&response).unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa"], true);
    let browser = Browser {
        cookie: Some(cookie.split(';').next().unwrap().to_owned()),
        csrf: None,
    };
    let me: Value = browser
        .get(&server, "/api/v1/auth/whoami")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa"], true);
    server.stop().await;
});

on_both_backends!(login_replaces_the_presented_session, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (first, first_line) = login(&server, "alice").await;
    let (second, second_line) = login_as(&server, "alice", &first).await;
    assert_ne!(first_line, second_line, "a new id at every login");
    let response = first.get(&server, "/api/v1/auth/whoami").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The refused cookie is cleared.
    let cleared = session_set_cookie(&response).unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        second.get(&server, "/api/v1/auth/whoami").await.status(),
        StatusCode::OK
    );
    server.stop().await;
});

on_both_backends!(logout_ends_the_session, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let response = browser
        .request(&server, reqwest::Method::POST, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(session_set_cookie(&response).unwrap().contains("Max-Age=0"));
    assert_eq!(
        browser.get(&server, "/api/v1/auth/whoami").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(audited(&server, "auth.logout").await >= 1);
    assert!(audited(&server, "session.revoked").await >= 1);
    server.stop().await;
});

on_both_backends!(token_endpoint_password_grant, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let response = token_request(
        &server,
        json!({"grant_type": "password", "username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3);
    let me: Value = bearer_get(&server, "/api/v1/auth/whoami", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["method"], "access_token");
    assert_eq!(me["username"], "alice");
    assert!(audited(&server, "token.issued").await >= 1);
    // Wrong password; malformed requests.
    let response = token_request(
        &server,
        json!({"grant_type": "password", "username": "alice", "password": "nope nope nope 1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for body in [
        json!({"grant_type": "password", "username": "alice"}),
        json!({"grant_type": "refresh_token"}),
        json!({"grant_type": "refresh_token", "refresh_token": "x", "username": "alice"}),
    ] {
        assert_eq!(
            token_request(&server, body).await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        token_request(&server, json!({"grant_type": "client_credentials"}))
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    server.stop().await;
});

on_both_backends!(password_grant_needs_the_second_factor, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let secret = enrol_totp(&server, "alice").await;
    let response = token_request(
        &server,
        json!({"grant_type": "password", "username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "mfa_required");
    let response = token_request(
        &server,
        json!({
            "grant_type": "password", "username": "alice", "password": PASSWORD,
            "totp_code": totp_code(&secret, server.clock.unix()),
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let me: Value = bearer_get(
        &server,
        "/api/v1/auth/whoami",
        body["access_token"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(me["mfa"], true);
    server.stop().await;
});

on_both_backends!(refresh_rotates_and_reuse_revokes_the_family, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (_, first) = tokens(&server, "alice").await;
    let refresh = |token: &str| {
        let token = token.to_owned();
        let server = &server;
        async move {
            token_request(
                server,
                json!({"grant_type": "refresh_token", "refresh_token": token}),
            )
            .await
        }
    };
    let response = refresh(&first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    let second_access = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "rotated on use");
    assert!(audited(&server, "token.refreshed").await >= 1);

    // The spent token again, after the leeway: theft. The family is revoked.
    server.clock.advance(Duration::from_secs(6));
    let response = refresh(&first).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(response).await, "invalid_grant");
    assert_eq!(audited(&server, "token.reuse_detected").await, 1);
    // Everything of the family is dead: the successor and its access token.
    assert_eq!(refresh(&second).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bearer_get(&server, "/api/v1/auth/whoami", &second_access)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Garbage and unknown tokens.
    assert_eq!(refresh("garbage").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&"A".repeat(43)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
});

on_both_backends!(
    concurrent_refreshes_within_the_leeway_get_one_successor,
    |backend| {
        let server = server(backend, "").await;
        user(&server, "alice", &["user"]).await;
        let (_, first) = tokens(&server, "alice").await;
        let requests = (0..8).map(|_| {
            token_request(
                &server,
                json!({"grant_type": "refresh_token", "refresh_token": first}),
            )
        });
        let responses = futures_util::future::join_all(requests).await;
        let mut successors = Vec::new();
        for response in responses {
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            successors.push(body["refresh_token"].as_str().unwrap().to_owned());
        }
        successors.dedup();
        assert_eq!(
            successors.len(),
            1,
            "every presenter got the same successor"
        );
        assert_eq!(audited(&server, "token.reuse_detected").await, 0);
        // The family was not forked: exactly the spent token and one successor.
        let pool = server.db().raw_pool().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 2);
        // The successor works.
        let response = token_request(
            &server,
            json!({"grant_type": "refresh_token", "refresh_token": successors[0]}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        server.stop().await;
    }
);

on_both_backends!(logout_with_an_access_token_revokes_its_family, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (access, refresh) = tokens(&server, "alice").await;
    let response = http()
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "bearer requests need no CSRF token"
    );
    assert_eq!(
        bearer_get(&server, "/api/v1/auth/whoami", &access)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let response = token_request(
        &server,
        json!({"grant_type": "refresh_token", "refresh_token": refresh}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(audited(&server, "token.revoked").await >= 1);
    server.stop().await;
});

on_both_backends!(query_string_credentials_are_refused, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (access, _) = tokens(&server, "alice").await;
    let api_token = "rmp_".to_owned() + &"A".repeat(43);
    for query in [
        format!("access_token={access}"),
        "token=x".to_owned(),
        "api_key=x".to_owned(),
        "apikey=x".to_owned(),
        "jwt=x".to_owned(),
        "bearer=x".to_owned(),
        "auth=x".to_owned(),
        "Authorization=x".to_owned(),
        "session=x".to_owned(),
        "access%5Ftoken=x".to_owned(),
        format!("q={api_token}"),
    ] {
        let response = bearer_get(&server, &format!("/api/v1/auth/whoami?{query}"), &access).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(code(response).await, "query_credentials_refused", "{query}");
    }
    // Ordinary parameters are fine.
    assert_eq!(
        bearer_get(&server, "/api/v1/auth/whoami?page=2", &access)
            .await
            .status(),
        StatusCode::OK
    );
    server.stop().await;
});

on_both_backends!(no_credential_is_401_with_a_bearer_challenge, |backend| {
    let server = server(backend, "").await;
    let response = http()
        .get(server.url("/api/v1/auth/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(code(response).await, "unauthenticated");
    for header in ["Basic YWxpY2U6eA==", "Bearer", "Bearer a b"] {
        let response = http()
            .get(server.url("/api/v1/auth/whoami"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{header}");
    }
    server.stop().await;
});

on_both_backends!(dev_mode_simulated_user_and_query_tokens, |backend| {
    let server = TestServer::with_config_env(
        backend,
        &config("\n[auth]\ndanger_accept_query_tokens = true\n"),
        &[
            ("RAMPART_MODE", "dev"),
            ("RAMPART_DEV_SIMULATE_USER", "alice"),
        ],
    )
    .await;
    let accounts = &server.running().state().accounts;
    accounts
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
    user(&server, "alice", &["user"]).await;
    // No credential at all: the simulated user.
    let me: Value = http()
        .get(server.url("/api/v1/auth/whoami"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["method"], "simulated");
    assert_eq!(me["username"], "alice");
    // A real credential still wins.
    let (access, _) = tokens(&server, "root").await;
    let me: Value = bearer_get(&server, "/api/v1/auth/whoami", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "root");
    // Dev only: ?access_token= is accepted; other credential parameters are not.
    let me: Value = http()
        .get(server.url(&format!("/api/v1/auth/whoami?access_token={access}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["method"], "access_token");
    let response = http()
        .get(server.url("/api/v1/auth/whoami?api_key=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
});
