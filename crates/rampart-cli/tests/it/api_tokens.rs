//! API tokens over HTTP (F-APITOKEN): created once, stored hashed, limited to their
//! scopes, never admin unless configured, expiring, revocable, with a last-used time.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_auth::{Browser, bearer_get, code, http, login, server, user};
use crate::on_both_backends;
use crate::support::TestServer;

async fn create(server: &TestServer, browser: &Browser, body: Value) -> reqwest::Response {
    browser
        .request(server, Method::POST, "/api/v1/me/tokens")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn created(server: &TestServer, browser: &Browser, body: Value) -> (String, String) {
    let response = create(server, browser, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    (
        body["token"].as_str().unwrap().to_owned(),
        body["id"].as_str().unwrap().to_owned(),
    )
}

async fn permitted(server: &TestServer, token: &str, permission: &str) -> StatusCode {
    bearer_get(
        server,
        &format!("/api/v1/auth/permissions/{permission}"),
        token,
    )
    .await
    .status()
}

on_both_backends!(tokens_are_shown_once_stored_hashed_and_scoped, |backend| {
    let server = server(backend, "").await;
    user(&server, "carol", &["integrator"]).await;
    let (browser, _) = login(&server, "carol").await;
    let (token, id) = created(
        &server,
        &browser,
        json!({"name": "ci pipeline", "scopes": ["integration:invoke"]}),
    )
    .await;
    assert!(token.starts_with("rmp_") && token.len() == 47, "{token}");
    assert!(id.starts_with("tok_"));

    // The list never shows the value.
    let list: Value = browser
        .get(&server, "/api/v1/me/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&token[4..]));
    assert_eq!(list["tokens"][0]["last_used_at"], Value::Null);
    // Nor does the database.
    let pool = server.db().raw_pool().await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains("rmp_"));

    // The token authenticates, as an API token, limited to its scopes.
    let me: Value = bearer_get(&server, "/api/v1/auth/whoami", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["method"], "api_token");
    assert_eq!(me["scopes"], json!(["integration:invoke"]));
    assert_eq!(
        permitted(&server, &token, "integration:invoke").await,
        StatusCode::OK
    );
    // The role grants reports:read, the token's scopes do not.
    assert_eq!(
        permitted(&server, &token, "reports:read").await,
        StatusCode::FORBIDDEN
    );
    // A scope the role does not grant gives nothing either.
    let (wide, _) = created(&server, &browser, json!({"name": "wide", "scopes": ["*"]})).await;
    assert_eq!(
        permitted(&server, &wide, "reports:read").await,
        StatusCode::OK
    );
    assert_eq!(
        permitted(&server, &wide, "users:delete").await,
        StatusCode::FORBIDDEN
    );

    // Last use is recorded.
    let list: Value = browser
        .get(&server, "/api/v1/me/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["last_used_at"].is_string()),
        "{list}"
    );

    // An API token cannot manage tokens or sessions.
    for path in ["/api/v1/me/tokens", "/api/v1/me/sessions"] {
        let response = bearer_get(&server, path, &token).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let response = http()
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(crate::api_auth::audited(&server, "api_token.created").await >= 1);
    server.stop().await;
});

on_both_backends!(tokens_expire_and_are_revoked, |backend| {
    let server = server(backend, "").await;
    user(&server, "carol", &["integrator"]).await;
    let (browser, _) = login(&server, "carol").await;
    let (short, _) = created(
        &server,
        &browser,
        json!({"name": "short", "scopes": ["reports:read"], "expires_in_seconds": 60}),
    )
    .await;
    let (long, long_id) = created(
        &server,
        &browser,
        json!({"name": "long", "scopes": ["reports:read"]}),
    )
    .await;
    assert_eq!(
        permitted(&server, &short, "reports:read").await,
        StatusCode::OK
    );
    server.clock.advance(Duration::from_secs(61));
    let response = bearer_get(&server, "/api/v1/auth/whoami", &short).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        permitted(&server, &long, "reports:read").await,
        StatusCode::OK
    );

    // Revocation takes effect at once (the cache is evicted).
    let response = browser
        .request(
            &server,
            Method::DELETE,
            &format!("/api/v1/me/tokens/{long_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        bearer_get(&server, "/api/v1/auth/whoami", &long)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Again: 404.
    let response = browser
        .request(
            &server,
            Method::DELETE,
            &format!("/api/v1/me/tokens/{long_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(crate::api_auth::audited(&server, "api_token.revoked").await >= 1);

    // Lifetimes over api_tokens.max_ttl (365d) and malformed requests are refused.
    for body in [
        json!({"name": "x", "scopes": ["reports:read"], "expires_in_seconds": 366 * 86_400}),
        json!({"name": "x", "scopes": ["reports:read"], "expires_in_seconds": 0}),
        json!({"name": "", "scopes": ["reports:read"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["Reports:Read"]}),
    ] {
        let response = create(&server, &browser, body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(response).await, "invalid_token_request", "{body}");
    }
    // A disabled owner's tokens stop working (and are revoked).
    let (token, _) = created(
        &server,
        &browser,
        json!({"name": "ci", "scopes": ["reports:read"]}),
    )
    .await;
    let accounts = &server.running().state().accounts;
    let id = accounts.account_by_username("carol").await.unwrap().id;
    accounts
        .set_disabled(&rampart_identity::accounts::Actor::cli(), &id, true)
        .await
        .unwrap();
    assert_eq!(
        bearer_get(&server, "/api/v1/auth/whoami", &token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
});

on_both_backends!(api_tokens_are_never_admin_unless_configured, |backend| {
    let server = server(backend, "").await;
    // root is the admin (role admin: "*", MFA required).
    let (browser, _) = login(&server, "root").await;
    let response = create(&server, &browser, json!({"name": "x", "scopes": ["admin"]})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(response).await, "admin_scope_refused");
    // A "*" token of an admin holds every permission but admin.
    let (token, _) = created(&server, &browser, json!({"name": "all", "scopes": ["*"]})).await;
    let response = bearer_get(&server, "/api/v1/auth/permissions/admin", &token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "forbidden");
    server.stop().await;
});

on_both_backends!(allow_admin_lets_tokens_carry_admin, |backend| {
    let server = server(backend, "\n[api_tokens]\nallow_admin = true\n").await;
    let (browser, _) = login(&server, "root").await;
    let (token, _) = created(
        &server,
        &browser,
        json!({"name": "ops", "scopes": ["admin"]}),
    )
    .await;
    // Allowed now, but the admin role still requires MFA, which a token never passed.
    let response = bearer_get(&server, "/api/v1/auth/permissions/admin", &token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "mfa_required");
    server.stop().await;
});
