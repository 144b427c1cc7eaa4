//! TOTP and recovery codes over HTTP (F-TOTP), on both backends: enrolment, login
//! with a second factor, replay and skew, recovery codes, disabling; and the helpers
//! that sign in with a second factor, shared with the admin tests.

use std::time::Duration;

use rampart_core::Clock as _;
use rampart_crypto::totp::TotpSecret;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_auth::{
    Browser, PASSWORD, audited, code, enrol_totp, http, login, server, session_set_cookie,
    totp_code, user,
};
use crate::on_both_backends;
use crate::support::TestServer;

/// Starts a login for `username`; returns the `mfa_token`.
pub async fn password_step(server: &TestServer, username: &str) -> String {
    let response = Browser::default()
        .request(server, Method::POST, "/api/v1/auth/login")
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(session_set_cookie(&response).is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "mfa_required", "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

/// The second step; returns the raw response.
pub async fn second_step(server: &TestServer, mfa_token: &str, factor: Value) -> reqwest::Response {
    let mut body = json!({"mfa_token": mfa_token});
    for (k, v) in factor.as_object().unwrap() {
        body[k] = v.clone();
    }
    Browser::default()
        .request(server, Method::POST, "/api/v1/auth/login/mfa")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A browser signed in from a response with the session cookie.
pub async fn browser_from(response: reqwest::Response) -> Browser {
    assert_eq!(response.status(), StatusCode::OK);
    let line = session_set_cookie(&response).expect("session cookie");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa"], true, "{body}");
    Browser {
        cookie: Some(line.split(';').next().unwrap().to_owned()),
        csrf: Some(body["csrf_token"].as_str().unwrap().to_owned()),
    }
}

/// Signs `username` in with password and the current TOTP code (moving the clock
/// one step first, so no code is ever a replay).
pub async fn login_with_totp(server: &TestServer, username: &str, secret: &TotpSecret) -> Browser {
    server.clock.advance(Duration::from_secs(30));
    let token = password_step(server, username).await;
    let code = totp_code(secret, server.clock.unix());
    browser_from(second_step(server, &token, json!({"totp_code": code})).await).await
}

/// The admin `root` (created by [`server`]) signed in with a second factor.
pub async fn admin_browser(server: &TestServer) -> Browser {
    let secret = enrol_totp(server, "root").await;
    login_with_totp(server, "root", &secret).await
}

/// Enrols TOTP over the API; returns the secret and the recovery codes, and the
/// browser with its re-issued session cookie.
async fn enrol_over_api(
    server: &TestServer,
    browser: &Browser,
) -> (TotpSecret, Vec<String>, Browser) {
    let setup = browser
        .request(server, Method::POST, "/api/v1/me/mfa/totp/setup")
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), StatusCode::OK);
    let setup: Value = setup.json().await.unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Rampart:alice?"), "{uri}");
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = TotpSecret::from_base32(&setup["secret"].as_str().unwrap().into()).unwrap();
    assert!(uri.contains(setup["secret"].as_str().unwrap()));

    let wrong = browser
        .request(server, Method::POST, "/api/v1/me/mfa/totp/enable")
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .unwrap();
    // (A one-in-a-million chance that 000000 is right; the clock is random.)
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(wrong).await, "invalid_code");
    let enabled = browser
        .request(server, Method::POST, "/api/v1/me/mfa/totp/enable")
        .json(&json!({"code": totp_code(&secret, server.clock.unix())}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    let rotated = session_set_cookie(&enabled).expect("the acting session is re-issued");
    let body: Value = enabled.json().await.unwrap();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let next = Browser {
        cookie: Some(rotated.split(';').next().unwrap().to_owned()),
        csrf: None,
    };
    (secret, codes, next)
}

on_both_backends!(totp_enrolment_over_the_api, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let (secret, _, rotated) = enrol_over_api(&server, &browser).await;
    // The old session id is dead, the re-issued one works.
    assert_eq!(
        browser.get(&server, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let me: Value = rotated
        .get(&server, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["mfa_enabled"], true);
    // Enrolling twice is refused.
    let again = login_with_totp(&server, "alice", &secret).await;
    let response = again
        .request(&server, Method::POST, "/api/v1/me/mfa/totp/setup")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(code(response).await, "totp_already_enabled");
    // The secret is sealed at rest.
    let pool = server.db().raw_pool().await.unwrap();
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT totp_sealed FROM users WHERE username = 'alice'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let raw = secret.expose_secret();
    assert!(!sealed.windows(raw.len()).any(|w| w == raw));
    assert!(audited(&server, "auth.mfa.enabled").await >= 1);
    server.stop().await;
});

on_both_backends!(totp_codes_are_single_use_within_the_skew, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let secret = enrol_totp(&server, "alice").await;
    server.clock.advance(Duration::from_secs(60));
    let now = server.clock.unix();
    // A code from the next step is within the ±1 skew.
    let token = password_step(&server, "alice").await;
    let ahead = totp_code(&secret, now + 30);
    let response = second_step(&server, &token, json!({"totp_code": ahead})).await;
    let signed_in = browser_from(response).await;
    let me: Value = signed_in
        .get(&server, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["auth"]["mfa"], true);
    // The same code again — or an older step's — is a replay.
    for code_value in [ahead, totp_code(&secret, now)] {
        let token = password_step(&server, "alice").await;
        let response = second_step(&server, &token, json!({"totp_code": code_value})).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(code(response).await, "invalid_second_factor");
    }
    // Two steps ahead is outside the skew.
    let token = password_step(&server, "alice").await;
    let response = second_step(
        &server,
        &token,
        json!({"totp_code": totp_code(&secret, now + 60)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A spent mfa_token does not work again, even with a good code.
    server.clock.advance(Duration::from_secs(120));
    let token = password_step(&server, "alice").await;
    let good = totp_code(&secret, server.clock.unix());
    assert_eq!(
        second_step(&server, &token, json!({"totp_code": good.clone()}))
            .await
            .status(),
        StatusCode::OK
    );
    server.clock.advance(Duration::from_secs(30));
    let next = totp_code(&secret, server.clock.unix());
    let response = second_step(&server, &token, json!({"totp_code": next})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(response).await, "mfa_token_invalid");
    assert!(audited(&server, "auth.login.failed").await >= 3);
    server.stop().await;
});

on_both_backends!(recovery_codes_are_single_use_and_renewable, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let (_, codes, _) = enrol_over_api(&server, &browser).await;
    let token = password_step(&server, "alice").await;
    let response = second_step(
        &server,
        &token,
        json!({"recovery_code": codes[0].to_uppercase()}),
    )
    .await;
    let signed_in = browser_from(response).await;
    assert!(audited(&server, "auth.mfa.recovery_used").await >= 1);
    let token = password_step(&server, "alice").await;
    let response = second_step(&server, &token, json!({"recovery_code": codes[0]})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(response).await, "invalid_second_factor");

    // A new set: the old (unused) codes stop working, the new ones work.
    let renewed = signed_in
        .request(&server, Method::POST, "/api/v1/me/mfa/recovery-codes")
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), StatusCode::OK);
    let body: Value = renewed.json().await.unwrap();
    let fresh: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    let token = password_step(&server, "alice").await;
    let response = second_step(&server, &token, json!({"recovery_code": codes[1]})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let token = password_step(&server, "alice").await;
    let response = second_step(&server, &token, json!({"recovery_code": fresh[0]})).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Stored as hashes only.
    let pool = server.db().raw_pool().await.unwrap();
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT code_hash FROM recovery_codes")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 10);
    for code_text in &fresh {
        assert!(hashes.iter().all(|h| h.as_slice() != code_text.as_bytes()));
    }
    assert!(audited(&server, "auth.mfa.recovery_codes_renewed").await >= 1);
    server.stop().await;
});

on_both_backends!(disabling_totp_needs_a_current_code, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let secret = enrol_totp(&server, "alice").await;
    let browser = login_with_totp(&server, "alice", &secret).await;
    for body in [json!({}), json!({"code": "1", "recovery_code": "2"})] {
        let response = browser
            .request(&server, Method::POST, "/api/v1/me/mfa/totp/disable")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let wrong = browser
        .request(&server, Method::POST, "/api/v1/me/mfa/totp/disable")
        .json(&json!({"code": "12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(wrong).await, "invalid_code");
    server.clock.advance(Duration::from_secs(30));
    let response = browser
        .request(&server, Method::POST, "/api/v1/me/mfa/totp/disable")
        .json(&json!({"code": totp_code(&secret, server.clock.unix())}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(session_set_cookie(&response).is_some());
    // The password alone signs in again.
    login(&server, "alice").await;
    assert!(audited(&server, "auth.mfa.disabled").await >= 1);
    server.stop().await;
});

on_both_backends!(second_factor_failures_lock_the_account, |backend| {
    let server = server(backend, "[auth.lockout]\nmax_failures = 3").await;
    user(&server, "alice", &["user"]).await;
    let secret = enrol_totp(&server, "alice").await;
    for _ in 0..3 {
        let token = password_step(&server, "alice").await;
        let response = second_step(&server, &token, json!({"totp_code": "000000"})).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked now: even the password step is refused.
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(response).await, "login_locked");
    server.clock.advance(Duration::from_secs(15 * 60 + 1));
    login_with_totp(&server, "alice", &secret).await;
    server.stop().await;
});
