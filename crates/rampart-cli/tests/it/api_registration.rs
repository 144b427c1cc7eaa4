//! The first admin and registration over HTTP (F-INIT, F-REGISTER), on both
//! backends: the one-time setup token, `open` / `invite_only` / `closed`, invites.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_auth::{PASSWORD, audited, code, config, http, server, session_set_cookie};
use crate::api_mfa::admin_browser;
use crate::on_both_backends;
use crate::support::TestServer;

/// The setup token the server wrote to `<data_dir>/setup-token`.
fn setup_token(server: &TestServer) -> Option<String> {
    let path = server.running().state().config.data_dir.join("setup-token");
    let text = std::fs::read_to_string(&path).ok()?;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the setup token file must be private");
    Some(text.trim().to_owned())
}

async fn post(server: &TestServer, path: &str, body: Value) -> reqwest::Response {
    http()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn register(server: &TestServer, body: Value) -> reqwest::Response {
    post(server, "/api/v1/register", body).await
}

on_both_backends!(setup_token_creates_the_first_admin_once, |backend| {
    let mut server =
        TestServer::with_config(backend, &config("[auth]\nregistration = \"open\"")).await;
    let status: Value = http()
        .get(server.url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["needed"], true);
    // Before the first admin, nobody can register, even with registration open.
    let response = register(&server, json!({"username": "early", "password": PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(code(response).await, "not_initialized");

    let token = setup_token(&server).expect("a setup token at first start");
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    let wrong = post(
        &server,
        "/api/v1/setup",
        json!({"token": "x".repeat(43), "username": "root", "password": PASSWORD}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(wrong).await, "setup_token_invalid");
    let weak = post(
        &server,
        "/api/v1/setup",
        json!({"token": token, "username": "root", "password": "1qaz2wsx3edc"}),
    )
    .await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(weak).await, "weak_password");

    let created = post(
        &server,
        "/api/v1/setup",
        json!({"token": token, "username": "Root", "password": PASSWORD, "email": "root@example.test"}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(session_set_cookie(&created).is_some());
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["user"]["username"], "root");
    assert_eq!(body["user"]["roles"], json!(["admin"]));
    assert_eq!(body["user"]["email"], "root@example.test");
    assert!(body["csrf_token"].as_str().is_some());

    // The token works once.
    let again = post(
        &server,
        "/api/v1/setup",
        json!({"token": token, "username": "root2", "password": PASSWORD}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(code(again).await, "already_initialized");
    let status: Value = http()
        .get(server.url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["needed"], false);
    assert!(audited(&server, "setup.token_issued").await >= 1);
    assert!(audited(&server, "admin.user.created").await >= 1);

    // Registration is open now; a restart issues no new token and removes the file.
    let response = register(&server, json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.restart().await;
    assert_eq!(setup_token(&server), None);
    server.stop().await;
});

on_both_backends!(
    an_expired_setup_token_is_refused_and_a_restart_issues_a_new_one,
    |backend| {
        let mut server = TestServer::with_config(backend, &config("")).await;
        let first = setup_token(&server).unwrap();
        server.clock.advance(Duration::from_secs(3601));
        let response = post(
            &server,
            "/api/v1/setup",
            json!({"token": first, "username": "root", "password": PASSWORD}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "setup_token_invalid");
        server.restart().await;
        let second = setup_token(&server).unwrap();
        assert_ne!(first, second);
        let response = post(
            &server,
            "/api/v1/setup",
            json!({"token": second, "username": "root", "password": PASSWORD}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        server.stop().await;
    }
);

on_both_backends!(open_registration, |backend| {
    let server = server(backend, "[auth]\nregistration = \"open\"").await;
    let response = register(
        &server,
        json!({"username": "Alice", "password": PASSWORD, "email": "alice@example.test", "display_name": "Alice A."}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(session_set_cookie(&response).is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["roles"], json!(["user"]));
    assert_eq!(body["user"]["display_name"], "Alice A.");
    for (body, expected) in [
        (
            json!({"username": "alice", "password": PASSWORD}),
            "username_taken",
        ),
        (
            json!({"username": "bob", "password": PASSWORD, "email": "ALICE@example.test"}),
            "email_taken",
        ),
        (
            json!({"username": "b", "password": PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "bob", "password": "short"}),
            "weak_password",
        ),
        (
            json!({"username": "bob", "password": PASSWORD, "email": "nope"}),
            "invalid_email",
        ),
    ] {
        let response = register(&server, body).await;
        assert!(response.status().is_client_error());
        assert_eq!(code(response).await, expected);
    }
    // Unknown fields are refused; roles cannot be chosen by the registrant.
    let response = register(
        &server,
        json!({"username": "mallory", "password": PASSWORD, "roles": ["admin"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A cross-site page cannot sign a browser up.
    let response = http()
        .post(server.url("/api/v1/register"))
        .header("origin", "https://evil.example")
        .json(&json!({"username": "victim", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "csrf_failed");
    assert!(audited(&server, "account.registered").await >= 1);
    server.stop().await;
});

on_both_backends!(
    invite_only_registration_with_single_use_expiring_invites,
    |backend| {
        let server = server(
            backend,
            "[auth]\nregistration = \"invite_only\"\ninvite_ttl = \"1h\"",
        )
        .await;
        let response = register(&server, json!({"username": "alice", "password": PASSWORD})).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "invite_required");

        let admin = admin_browser(&server).await;
        let unknown_role = admin
            .request(&server, reqwest::Method::POST, "/api/v1/admin/invites")
            .json(&json!({"roles": ["wizard"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown_role.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(unknown_role).await, "unknown_role");
        let created = admin
            .request(&server, reqwest::Method::POST, "/api/v1/admin/invites")
            .json(&json!({"roles": ["integrator"], "tenant": "acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let invite: Value = created.json().await.unwrap();
        let invite_code = invite["code"].as_str().unwrap().to_owned();
        assert!(invite["id"].as_str().unwrap().starts_with("inv_"));

        let response = register(
            &server,
            json!({"username": "alice", "password": PASSWORD, "invite": "not-a-real-invite"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "invite_invalid");
        let response = register(
            &server,
            json!({"username": "alice", "password": PASSWORD, "invite": invite_code}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["roles"], json!(["integrator"]));
        assert_eq!(body["user"]["tenants"], json!(["acme"]));
        // Single use.
        let response = register(
            &server,
            json!({"username": "bob", "password": PASSWORD, "invite": invite_code}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "invite_invalid");
        // The listing shows who used it, never the code.
        let listed: Value = admin
            .get(&server, "/api/v1/admin/invites")
            .await
            .json()
            .await
            .unwrap();
        let first = &listed["invites"][0];
        assert_eq!(first["used_by"], body["user"]["id"]);
        assert!(first.get("code").is_none());
        // The database holds the hash only.
        let pool = server.db().raw_pool().await.unwrap();
        let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT code_hash FROM invites")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(
            hashes
                .iter()
                .all(|h| h.as_slice() != invite_code.as_bytes())
        );

        // Expiry.
        let late: Value = admin
            .request(&server, reqwest::Method::POST, "/api/v1/admin/invites")
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        server.clock.advance(Duration::from_secs(3601));
        let response = register(
            &server,
            json!({"username": "carol", "password": PASSWORD, "invite": late["code"]}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "invite_invalid");
        assert!(audited(&server, "admin.invite.created").await >= 2);
        server.stop().await;
    }
);

on_both_backends!(closed_registration_is_refused, |backend| {
    let server = server(backend, "[auth]\nregistration = \"closed\"").await;
    for body in [
        json!({"username": "alice", "password": PASSWORD}),
        json!({"username": "alice", "password": PASSWORD, "invite": "whatever"}),
    ] {
        let response = register(&server, body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "registration_closed");
    }
    server.stop().await;
});

on_both_backends!(openapi_documents_the_account_endpoints, |backend| {
    let server = TestServer::start(backend).await;
    let document: Value = http()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/setup", &["get", "post"][..]),
        ("/api/v1/register", &["post"]),
        ("/api/v1/me", &["get", "patch"]),
        ("/api/v1/me/password", &["post"]),
        ("/api/v1/me/mfa/totp/setup", &["post"]),
        ("/api/v1/me/mfa/totp/enable", &["post"]),
        ("/api/v1/me/mfa/totp/disable", &["post"]),
        ("/api/v1/me/mfa/recovery-codes", &["post"]),
        ("/api/v1/admin/users", &["get", "post"]),
        ("/api/v1/admin/users/{id}", &["get"]),
        ("/api/v1/admin/users/{id}/disable", &["post"]),
        ("/api/v1/admin/users/{id}/enable", &["post"]),
        ("/api/v1/admin/users/{id}/unlock", &["post"]),
        ("/api/v1/admin/users/{id}/mfa/reset", &["post"]),
        ("/api/v1/admin/users/{id}/roles", &["put"]),
        ("/api/v1/admin/users/{id}/tenants", &["put"]),
        ("/api/v1/admin/users/{id}/attributes", &["put"]),
        ("/api/v1/admin/invites", &["get", "post"]),
    ] {
        let operations = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        for method in methods {
            assert!(operations.get(*method).is_some(), "{method} {path}");
        }
    }
    // Request bodies refuse unknown fields in the schema too.
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["Register"]["additionalProperties"], false);
    server.stop().await;
});
