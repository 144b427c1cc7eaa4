//! The signed-in account, passwords and lockout over HTTP (F-USERS, F-PASSWORD,
//! F-LOCKOUT), on both backends: profile, PII sealed at rest, password change, the
//! unknown-user hash, lockout per account and per client address.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_auth::{
    Browser, PASSWORD, audited, code, config, http, login, server, session_set_cookie, user,
};
use crate::api_mfa::admin_browser;
use crate::on_both_backends;
use crate::support::TestServer;

/// `email_sealed, email_index, display_name_sealed, roles, tenants, attributes`.
type UserRow = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    String,
    String,
    String,
);

const EMAIL: &str = "Alice.Liddell@Example.test";
const DISPLAY_NAME: &str = "Alice Pleasance Liddell";

on_both_backends!(me_and_pii_sealed_at_rest, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let response = browser
        .request(&server, Method::PATCH, "/api/v1/me")
        .json(&json!({"email": EMAIL, "display_name": DISPLAY_NAME}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = browser
        .get(&server, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["username"], "alice");
    assert_eq!(me["user"]["email"], EMAIL);
    assert_eq!(me["user"]["display_name"], DISPLAY_NAME);
    assert_eq!(me["user"]["roles"], json!(["user"]));
    assert_eq!(me["user"]["mfa_enabled"], false);
    assert_eq!(me["auth"]["method"], "session");
    assert!(me["user"].get("password_hash").is_none());

    // The raw rows hold neither the address nor the name, in any column or case.
    let pool = server.db().raw_pool().await.unwrap();
    let rows: Vec<UserRow> = sqlx::query_as(
        "SELECT email_sealed, email_index, display_name_sealed, roles, tenants, attributes \
         FROM users",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let needles: Vec<Vec<u8>> = [EMAIL, DISPLAY_NAME, "liddell", "Liddell", "example.test"]
        .iter()
        .flat_map(|n| [n.as_bytes().to_vec(), n.to_lowercase().into_bytes()])
        .collect();
    for (email, index, name, roles, tenants, attributes) in &rows {
        let columns: Vec<&[u8]> = [email.as_deref(), index.as_deref(), name.as_deref()]
            .into_iter()
            .flatten()
            .chain([roles.as_bytes(), tenants.as_bytes(), attributes.as_bytes()])
            .collect();
        for column in columns {
            for needle in &needles {
                assert!(
                    !column.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "plaintext PII in a users row"
                );
            }
        }
    }
    // Sealed means an envelope that names its key, not the plaintext's length only.
    let alice = rows.iter().find(|r| r.0.is_some()).unwrap();
    assert!(alice.0.as_ref().unwrap().len() > EMAIL.len());
    assert_eq!(alice.1.as_ref().unwrap().len(), 32);

    // Lookup by e-mail works through the blind index, case-insensitively.
    let found = server
        .running()
        .state()
        .accounts
        .find_by_email("alice.liddell@EXAMPLE.test")
        .await
        .unwrap();
    assert_eq!(found.unwrap().as_str(), me["user"]["id"].as_str().unwrap());
    // Sign in by e-mail.
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": EMAIL.to_uppercase(), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
});

on_both_backends!(profile_changes_are_validated, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    user(&server, "bob", &["user"]).await;
    let (alice, _) = login(&server, "alice").await;
    let (bob, _) = login(&server, "bob").await;
    let set = |browser: &Browser, body: Value| {
        let request = browser
            .request(&server, Method::PATCH, "/api/v1/me")
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        set(&alice, json!({"email": "a@example.test"}))
            .await
            .status(),
        StatusCode::OK
    );
    let taken = set(&bob, json!({"email": "A@EXAMPLE.TEST"})).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_eq!(code(taken).await, "email_taken");
    for (body, expected) in [
        (json!({"email": "not an address"}), "invalid_email"),
        (json!({"display_name": "a\u{7}b"}), "invalid_display_name"),
    ] {
        let response = set(&bob, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(response).await, expected);
    }
    let unknown = set(&bob, json!({"username": "root"})).await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // "" clears; the address is free for bob then.
    let cleared: Value = set(&alice, json!({"email": ""}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["email"], Value::Null);
    assert_eq!(
        set(&bob, json!({"email": "a@example.test"})).await.status(),
        StatusCode::OK
    );
    // Without the CSRF token a cookie request is refused.
    let no_csrf = Browser {
        cookie: bob.cookie.clone(),
        csrf: None,
    };
    assert_eq!(
        set(&no_csrf, json!({"display_name": "Bob"})).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(audited(&server, "account.profile_updated").await >= 3);
    server.stop().await;
});

on_both_backends!(password_change_ends_other_sessions, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (here, _) = login(&server, "alice").await;
    let (elsewhere, _) = login(&server, "alice").await;
    let change = |current: &str, new: &str| {
        let request = here
            .request(&server, Method::POST, "/api/v1/me/password")
            .json(&json!({"current_password": current, "new_password": new}));
        async move { request.send().await.unwrap() }
    };
    let wrong = change("not my password at all", "a brand new passphrase 7").await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(wrong).await, "wrong_password");
    for weak in ["short", "1qaz2wsx3edc"] {
        let response = change(PASSWORD, weak).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(response).await, "weak_password");
    }
    let done = change(PASSWORD, "a brand new passphrase 7").await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let rotated = session_set_cookie(&done).expect("the acting session is re-issued");
    let rotated = Browser {
        cookie: Some(rotated.split(';').next().unwrap().to_owned()),
        csrf: None,
    };
    assert_eq!(
        rotated.get(&server, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        elsewhere.get(&server, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        here.get(&server, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Old password refused, new one accepted.
    for (password, status) in [
        (PASSWORD, StatusCode::UNAUTHORIZED),
        ("a brand new passphrase 7", StatusCode::OK),
    ] {
        let response = http()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "alice", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    assert!(audited(&server, "account.password_changed").await >= 1);
    server.stop().await;
});

on_both_backends!(
    unknown_user_and_wrong_password_are_identical_and_both_hash,
    |backend| {
        let server = server(backend, "").await;
        user(&server, "alice", &["user"]).await;
        let accounts = &server.running().state().accounts;
        let mut answers = Vec::new();
        for name in ["alice", "nobody-at-all", "someone@example.test", "x"] {
            let before = accounts.password_stats();
            let response = http()
                .post(server.url("/api/v1/auth/login"))
                .json(&json!({"username": name, "password": "wrong password here 1"}))
                .send()
                .await
                .unwrap();
            let after = accounts.password_stats();
            // Exactly one full Argon2 computation per attempt: a real verification for
            // alice, the dummy one for everyone else.
            let real = after.verifications - before.verifications;
            let dummy = after.dummy_verifications - before.dummy_verifications;
            assert_eq!(real + dummy, 1, "{name}");
            assert_eq!(dummy, u64::from(name != "alice"), "{name}");
            let status = response.status();
            let mut body: Value = response.json().await.unwrap();
            body["error"]["request_id"] = Value::Null;
            answers.push((status, body));
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
        assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
        assert_eq!(answers[0].1["error"]["code"], "invalid_credentials");
        server.stop().await;
    }
);

/// A server that believes `X-Forwarded-For` from loopback, so tests choose client
/// addresses; 3 failures lock for 10 minutes.
async fn lockout_server(backend: rampart_store::Backend) -> TestServer {
    let server = TestServer::with_config_env(
        backend,
        &config("[auth.lockout]\nmax_failures = 3\nwindow = \"15m\"\nduration = \"10m\""),
        &[("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    server
        .running()
        .state()
        .accounts
        .create_admin_from_cli(
            rampart_identity::accounts::NewAccount {
                username: "root".to_owned(),
                password: Some(PASSWORD.into()),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    server
}

async fn attempt(server: &TestServer, from: &str, name: &str, password: &str) -> reqwest::Response {
    http()
        .post(server.url("/api/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
}

on_both_backends!(account_lockout_after_exactly_max_failures, |backend| {
    let server = lockout_server(backend).await;
    let alice = user(&server, "alice", &["user"]).await;
    // Each failure from another address: only the account counter grows.
    for i in 0..3 {
        let response = attempt(
            &server,
            &format!("198.51.100.{i}"),
            "alice",
            "wrong password!!",
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "failure {i}");
        assert_eq!(code(response).await, "invalid_credentials");
    }
    // Locked: the right password is refused, with Retry-After.
    let locked = attempt(&server, "203.0.113.9", "alice", PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(code(locked).await, "login_locked");
    // A name without an account locks the same way: `login_locked` reveals nothing.
    for i in 0..3 {
        let response = attempt(
            &server,
            &format!("198.51.100.{}", 10 + i),
            "ghost",
            PASSWORD,
        )
        .await;
        assert_eq!(code(response).await, "invalid_credentials");
    }
    assert_eq!(
        code(attempt(&server, "203.0.113.9", "ghost", PASSWORD).await).await,
        "login_locked"
    );
    // After the lockout's duration, the right password works.
    server.clock.advance(Duration::from_secs(601));
    assert_eq!(
        attempt(&server, "203.0.113.9", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    // Two failures, then success: the counter starts over.
    for i in 0..2 {
        attempt(
            &server,
            &format!("198.51.100.{}", 20 + i),
            "alice",
            "nope nope nope",
        )
        .await;
    }
    assert_eq!(
        attempt(&server, "203.0.113.9", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    for i in 0..2 {
        attempt(
            &server,
            &format!("198.51.100.{}", 30 + i),
            "alice",
            "nope nope nope",
        )
        .await;
    }
    assert_eq!(
        attempt(&server, "203.0.113.9", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // An admin can lift a lockout.
    for i in 0..3 {
        attempt(
            &server,
            &format!("198.51.100.{}", 40 + i),
            "alice",
            "nope nope nope",
        )
        .await;
    }
    let listed: Value = {
        let admin = admin_browser(&server).await;
        let user: Value = admin
            .get(&server, &format!("/api/v1/admin/users/{alice}"))
            .await
            .json()
            .await
            .unwrap();
        assert!(user["locked_until"].as_str().is_some(), "{user}");
        let unlocked = admin
            .request(
                &server,
                Method::POST,
                &format!("/api/v1/admin/users/{alice}/unlock"),
            )
            .header("x-forwarded-for", "192.0.2.200")
            .send()
            .await
            .unwrap();
        assert_eq!(unlocked.status(), StatusCode::OK);
        unlocked.json().await.unwrap()
    };
    assert_eq!(listed["locked_until"], Value::Null);
    assert_eq!(
        attempt(&server, "203.0.113.9", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert!(audited(&server, "auth.lockout").await >= 3);
    assert!(audited(&server, "auth.unlocked").await >= 1);
    assert!(audited(&server, "auth.login.failed").await >= 10);
    server.stop().await;
});

on_both_backends!(client_address_lockout, |backend| {
    let server = lockout_server(backend).await;
    user(&server, "alice", &["user"]).await;
    // One address guessing three different names is locked for every name.
    for name in ["guess-one", "guess-two", "guess-three"] {
        let response = attempt(&server, "198.51.100.66", name, "password guess 1").await;
        assert_eq!(code(response).await, "invalid_credentials");
    }
    let locked = attempt(&server, "198.51.100.66", "alice", PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(locked).await, "login_locked");
    // Other addresses are unaffected; a successful login does not reset the address.
    assert_eq!(
        attempt(&server, "198.51.100.67", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        attempt(&server, "198.51.100.66", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    server.clock.advance(Duration::from_secs(601));
    assert_eq!(
        attempt(&server, "198.51.100.66", "alice", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    server.stop().await;
});
