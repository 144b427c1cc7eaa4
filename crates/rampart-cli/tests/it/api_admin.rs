//! User management by administrators over HTTP (F-USERS, F-RBAC, F-TOTP), on both
//! backends: who may use the admin API, and what each action does.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_auth::{Browser, PASSWORD, audited, code, http, login, server, tokens, user};
use crate::api_mfa::{admin_browser, login_with_totp};
use crate::on_both_backends;
use crate::support::TestServer;

/// Every admin endpoint, with a body where it takes one (`{id}` replaced).
fn endpoints(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/admin/users".into(), None),
        (
            Method::POST,
            "/api/v1/admin/users".into(),
            Some(json!({"username": "newbie", "password": PASSWORD})),
        ),
        (Method::GET, format!("/api/v1/admin/users/{id}"), None),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/disable"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/enable"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/unlock"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/mfa/reset"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/roles"),
            Some(json!({"roles": ["user"]})),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/tenants"),
            Some(json!({"tenants": []})),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/attributes"),
            Some(json!({"attributes": {}})),
        ),
        (Method::GET, "/api/v1/admin/invites".into(), None),
        (
            Method::POST,
            "/api/v1/admin/invites".into(),
            Some(json!({})),
        ),
    ]
}

async fn call(
    server: &TestServer,
    browser: &Browser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = browser.request(server, method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

on_both_backends!(
    admin_api_needs_the_admin_role_and_a_second_factor,
    |backend| {
        let server = server(backend, "").await;
        let alice = user(&server, "alice", &["user"]).await;
        // Unauthenticated.
        for (method, path, body) in endpoints(&alice) {
            let response = call(&server, &Browser::default(), method, &path, body).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        // Authenticated without the admin role.
        let (plain, _) = login(&server, "alice").await;
        for (method, path, body) in endpoints(&alice) {
            let response = call(&server, &plain, method, &path, body).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            assert_eq!(code(response).await, "forbidden", "{path}");
        }
        // An admin whose session has not passed MFA.
        let (no_mfa, _) = login(&server, "root").await;
        for (method, path, body) in endpoints(&alice) {
            let response = call(&server, &no_mfa, method, &path, body).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            assert_eq!(code(response).await, "mfa_required", "{path}");
        }
        // An admin's access token from the password grant has not passed MFA either.
        let (access, _) = tokens(&server, "root").await;
        let response = http()
            .get(server.url("/api/v1/admin/users"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(code(response).await, "mfa_required");
        // With the second factor, every endpoint answers.
        let admin = admin_browser(&server).await;
        for (method, path, body) in endpoints(&alice) {
            let response = call(&server, &admin, method.clone(), &path, body).await;
            assert!(
                response.status().is_success(),
                "{method} {path}: {}",
                response.status()
            );
        }
        server.stop().await;
    }
);

on_both_backends!(admin_manages_users, |backend| {
    let server = server(backend, "").await;
    let admin = admin_browser(&server).await;
    let created = call(
        &server,
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({
            "username": "Carol",
            "password": PASSWORD,
            "email": "carol@example.test",
            "display_name": "Carol C.",
            "roles": ["user"],
            "tenants": ["acme"],
            "attributes": {"subscription": "active"}
        })),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let carol: Value = created.json().await.unwrap();
    let id = carol["id"].as_str().unwrap().to_owned();
    assert_eq!(carol["username"], "carol");
    assert_eq!(carol["attributes"]["subscription"], "active");
    for (body, status, expected) in [
        (
            json!({"username": "carol", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            json!({"username": "dave", "roles": ["wizard"]}),
            StatusCode::BAD_REQUEST,
            "unknown_role",
        ),
        (
            json!({"username": "dave", "tenants": ["no spaces"]}),
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
        ),
        (
            json!({"username": "dave", "attributes": {"x": "line\nbreak"}}),
            StatusCode::BAD_REQUEST,
            "invalid_attribute",
        ),
    ] {
        let response = call(
            &server,
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(body),
        )
        .await;
        assert_eq!(response.status(), status);
        assert_eq!(code(response).await, expected);
    }
    // A user without a password (magic link only) can be created.
    let response = call(
        &server,
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"username": "linkonly", "email": "l@example.test"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["has_password"], false);

    let listed: Value = admin
        .get(&server, "/api/v1/admin/users")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["carol", "linkonly", "root"]);
    assert_eq!(
        admin
            .get(&server, "/api/v1/admin/users/not-an-id")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .get(&server, &format!("/api/v1/admin/users/{}", "0".repeat(32)))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Privilege changes end the user's sessions.
    let (session, _) = login(&server, "carol").await;
    assert_eq!(
        session.get(&server, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    let response = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{id}/roles"),
        Some(json!({"roles": ["integrator", "user"]})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["roles"], json!(["integrator", "user"]));
    assert_eq!(
        session.get(&server, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{id}/roles"),
        Some(json!({"roles": ["wizard"]})),
    )
    .await;
    assert_eq!(code(response).await, "unknown_role");
    let body: Value = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{id}/tenants"),
        Some(json!({"tenants": ["acme", "globex"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["tenants"], json!(["acme", "globex"]));
    let body: Value = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{id}/attributes"),
        Some(json!({"attributes": {"subscription": "lapsed", "plan": "pro"}})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["attributes"],
        json!({"plan": "pro", "subscription": "lapsed"})
    );

    // Disable: sessions end and sign-in is refused; enable: sign-in works again.
    let (session, _) = login(&server, "carol").await;
    let response = call(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        session.get(&server, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refused = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(refused).await, "account_disabled");
    call(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{id}/enable"),
        None,
    )
    .await;
    login(&server, "carol").await;

    // An admin cannot disable themselves.
    let me: Value = admin.get(&server, "/api/v1/me").await.json().await.unwrap();
    let root = me["user"]["id"].as_str().unwrap();
    let response = call(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{root}/disable"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(code(response).await, "cannot_disable_self");

    for kind in [
        "admin.user.created",
        "admin.user.updated",
        "admin.user.disabled",
        "admin.user.enabled",
        "session.revoked",
    ] {
        assert!(audited(&server, kind).await >= 1, "{kind}");
    }
    server.stop().await;
});

on_both_backends!(admin_resets_a_lost_second_factor, |backend| {
    let server = server(backend, "").await;
    let alice = user(&server, "alice", &["user"]).await;
    let secret = crate::api_auth::enrol_totp(&server, "alice").await;
    let session = login_with_totp(&server, "alice", &secret).await;
    let admin = admin_browser(&server).await;
    let response = call(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{alice}/mfa/reset"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_enabled"], false);
    assert_eq!(
        session.get(&server, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The password alone signs in now.
    login(&server, "alice").await;
    assert!(audited(&server, "admin.user.mfa_reset").await >= 1);
    server.stop().await;
});
