//! Sessions over HTTP (F-SESSION): listing and revoking, idle and absolute timeouts on
//! the fake clock, a restart keeps them, and security changes revoke or rotate them.

use std::time::Duration;

use rampart_core::identity::UserId;
use rampart_identity::accounts::{Actor, ClientContext};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::api_auth::{
    Browser, PASSWORD, audited, bearer_get, code, login, server, session_set_cookie, tokens, user,
};
use crate::on_both_backends;

async fn whoami(server: &crate::support::TestServer, browser: &Browser) -> StatusCode {
    browser.get(server, "/api/v1/auth/whoami").await.status()
}

on_both_backends!(sessions_are_listed_with_the_current_one_marked, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    user(&server, "bob", &["user"]).await;
    let (laptop, _) = login(&server, "alice").await;
    let (phone, _) = login(&server, "alice").await;
    let (bob, _) = login(&server, "bob").await;
    let list: Value = laptop
        .get(&server, "/api/v1/me/sessions")
        .await
        .json()
        .await
        .unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert!(current["id"].as_str().unwrap().starts_with("ses_"));
    assert_eq!(current["mfa"], false);
    assert!(current["client_ip"].as_str().is_some());
    // No session id leaks into the listing.
    let text = list.to_string();
    for browser in [&laptop, &phone] {
        let id = browser.cookie.as_ref().unwrap().split('=').nth(1).unwrap();
        assert!(!text.contains(id));
    }

    // Bob cannot revoke Alice's session.
    let other_id = other["id"].as_str().unwrap();
    let response = bob
        .request(
            &server,
            Method::DELETE,
            &format!("/api/v1/me/sessions/{other_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(whoami(&server, &phone).await, StatusCode::OK);

    // Alice revokes her phone from the laptop.
    let response = laptop
        .request(
            &server,
            Method::DELETE,
            &format!("/api/v1/me/sessions/{other_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        session_set_cookie(&response).is_none(),
        "not the current session"
    );
    assert_eq!(whoami(&server, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(&server, &laptop).await, StatusCode::OK);
    assert!(audited(&server, "session.revoked").await >= 1);

    // Revoking the current session clears its cookie.
    let current_id = current["id"].as_str().unwrap();
    let response = laptop
        .request(
            &server,
            Method::DELETE,
            &format!("/api/v1/me/sessions/{current_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(session_set_cookie(&response).unwrap().contains("Max-Age=0"));
    assert_eq!(whoami(&server, &laptop).await, StatusCode::UNAUTHORIZED);
    server.stop().await;
});

on_both_backends!(idle_timeout_on_the_clock, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    // Used every 20 minutes, it stays alive (idle timeout 30 minutes)...
    for _ in 0..4 {
        server.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(whoami(&server, &browser).await, StatusCode::OK);
    }
    // ...and it survives a restart in between (last use was persisted).
    let mut server = server;
    server.restart().await;
    server.clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(whoami(&server, &browser).await, StatusCode::OK);
    // Unused for 31 minutes, it ends.
    server.clock.advance(Duration::from_secs(31 * 60));
    let response = browser.get(&server, "/api/v1/auth/whoami").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(session_set_cookie(&response).unwrap().contains("Max-Age=0"));
    server.stop().await;
});

on_both_backends!(absolute_timeout_on_the_clock, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    // Busy all day: every 20 minutes for 11h40.
    for _ in 0..35 {
        server.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(whoami(&server, &browser).await, StatusCode::OK);
    }
    // 12 hours after login it ends, however busy.
    server.clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(whoami(&server, &browser).await, StatusCode::UNAUTHORIZED);
    server.stop().await;
});

on_both_backends!(a_restart_keeps_sessions, |backend| {
    let mut server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let (access, _) = tokens(&server, "alice").await;
    server.restart().await;
    assert_eq!(whoami(&server, &browser).await, StatusCode::OK);
    assert_eq!(
        bearer_get(&server, "/api/v1/auth/whoami", &access)
            .await
            .status(),
        StatusCode::OK,
        "the signing key survives a restart too"
    );
    server.stop().await;
});

on_both_backends!(
    password_change_rotates_the_acting_session_and_ends_the_others,
    |backend| {
        let server = server(backend, "").await;
        let id = UserId::parse(&user(&server, "alice", &["user"]).await).unwrap();
        let (acting, _) = login(&server, "alice").await;
        let (other, _) = login(&server, "alice").await;
        let (access, refresh) = tokens(&server, "alice").await;
        let me: Value = acting
            .get(&server, "/api/v1/auth/whoami")
            .await
            .json()
            .await
            .unwrap();
        let acting_public = me["credential_id"].as_str().unwrap().to_owned();

        let accounts = &server.running().state().accounts;
        let actor = Actor {
            label: "alice".to_owned(),
            user_id: Some(id.clone()),
            session: Some(acting_public.clone()),
            client: Some(ClientContext {
                ip: "127.0.0.1".parse().unwrap(),
                request_id: None,
            }),
        };
        let rotated = accounts
            .change_password(
                &actor,
                &id,
                &PASSWORD.into(),
                &"another long passphrase 77".into(),
            )
            .await
            .unwrap()
            .expect("the acting session is re-issued");
        assert_ne!(rotated.public_id, acting_public);
        assert!(rotated.set_cookie.starts_with("__Host-rampart_session="));
        assert!(rotated.set_cookie.contains("HttpOnly"));

        // The old id of the acting session no longer works; the new one does.
        assert_eq!(whoami(&server, &acting).await, StatusCode::UNAUTHORIZED);
        let fresh = Browser {
            cookie: Some(rotated.set_cookie.split(';').next().unwrap().to_owned()),
            csrf: None,
        };
        assert_eq!(whoami(&server, &fresh).await, StatusCode::OK);
        // Every other credential tied to the password is gone.
        assert_eq!(whoami(&server, &other).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            bearer_get(&server, "/api/v1/auth/whoami", &access)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let response = crate::api_auth::token_request(
            &server,
            serde_json::json!({"grant_type": "refresh_token", "refresh_token": refresh}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(audited(&server, "session.rotated").await >= 1);
        server.stop().await;
    }
);

on_both_backends!(an_admin_change_or_disable_signs_the_user_out, |backend| {
    let server = server(backend, "").await;
    let id = UserId::parse(&user(&server, "alice", &["user"]).await).unwrap();
    let (browser, _) = login(&server, "alice").await;
    let accounts = &server.running().state().accounts;
    accounts
        .set_roles(
            &Actor::cli(),
            &id,
            vec!["user".to_owned(), "integrator".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(whoami(&server, &browser).await, StatusCode::UNAUTHORIZED);

    let (browser, _) = login(&server, "alice").await;
    let (access, _) = tokens(&server, "alice").await;
    accounts
        .set_disabled(&Actor::cli(), &id, true)
        .await
        .unwrap();
    assert_eq!(whoami(&server, &browser).await, StatusCode::UNAUTHORIZED);
    let response = bearer_get(&server, "/api/v1/auth/whoami", &access).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(response).await, "unauthenticated");
    server.stop().await;
});

on_both_backends!(last_seen_writes_are_throttled, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (browser, _) = login(&server, "alice").await;
    let pool = server.db().raw_pool().await.unwrap();
    let stored = || async {
        let seen: i64 = sqlx::query_scalar("SELECT last_seen_at FROM sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        seen
    };
    let at_login = stored().await;
    // Many requests within the interval: no write.
    for _ in 0..5 {
        server.clock.advance(Duration::from_secs(5));
        assert_eq!(whoami(&server, &browser).await, StatusCode::OK);
    }
    assert_eq!(stored().await, at_login);
    // Past the interval (a minute): one write.
    server.clock.advance(Duration::from_secs(40));
    assert_eq!(whoami(&server, &browser).await, StatusCode::OK);
    assert!(stored().await >= at_login + 65);
    server.stop().await;
});
