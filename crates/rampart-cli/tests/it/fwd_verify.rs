//! `GET /auth/verify` itself (F-FWDAUTH), called the way Traefik's `ForwardAuth`
//! and Caddy's `forward_auth` call it (`X-Forwarded-Method`, `-Proto`, `-Host`,
//! `-Uri`; a browser that must sign in gets a `302`), and the nginx convention
//! (`X-Original-URI`; `401` with `Location`). In process, on both backends; the
//! test client plays the proxy from 127.0.0.1, which is a trusted proxy here.

use rampart_identity::accounts::NewAccount;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::api_auth::{PASSWORD, audited, code, http, session_set_cookie, tokens, user};
use crate::on_both_backends;
use crate::support::TestServer;

const APP: &str = "app.example.test";

/// Rampart as a forward-auth service for `app.example.test` (`/admin` needs the
/// `admin` role) and, on any host, `/shared`; `alice` has the role `user`.
async fn server(backend: rampart_store::Backend) -> TestServer {
    let server = TestServer::with_config_env(
        backend,
        &format!(
            r#"
[session]
domain = "example.test"

[roles.admin]
permissions = ["*"]

[roles.user]
permissions = ["app:use"]

[upstreams.app]
url = "http://127.0.0.1:9"

[[routes]]
name = "app-admin"
host = "{APP}"
path_prefix = "/admin"
upstream = "app"
roles = ["admin"]

[[routes]]
name = "app"
host = "{APP}"
path_prefix = "/"
upstream = "app"

[[routes]]
name = "shared"
path_prefix = "/shared"
upstream = "app"
"#
        ),
        &[
            ("RAMPART_PUBLIC_URL", "https://auth.example.test"),
            ("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
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
    user(&server, "alice", &["user"]).await;
    server
}

/// A Traefik/Caddy-style verify request for `method host uri`.
fn traefik(server: &TestServer, method: &str, host: &str, uri: &str) -> reqwest::RequestBuilder {
    http()
        .get(server.url("/auth/verify"))
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-for", "198.51.100.7")
}

/// The session cookie of `alice`, signed in through the JSON API.
async fn alice_cookie(server: &TestServer) -> String {
    let response = http()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let line = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Secure-rampart_session="))
        .expect("a domain session cookie")
        .to_owned();
    line.split(';').next().unwrap().to_owned()
}

/// The CSRF token of the session behind `cookie`.
async fn csrf_token(server: &TestServer, cookie: &str) -> String {
    let body: Value = http()
        .get(server.url("/api/v1/security/csrf"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["csrf_token"].as_str().unwrap().to_owned()
}

fn signin_rd(response: &reqwest::Response) -> String {
    let location = response.headers()[LOCATION].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap(),
            url.path()
        ),
        "https://auth.example.test/login",
        "{location}"
    );
    url.query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

on_both_backends!(traefik_and_caddy_conventions, |backend| {
    let server = server(backend).await;

    // A browser asking for a page, not signed in: 302 to sign in, back to the page.
    let response = traefik(&server, "GET", APP, "/reports?q=1&r=%2F")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        signin_rd(&response),
        "https://app.example.test/reports?q=1&r=%2F"
    );

    // An API client: 401 in the envelope, no redirect.
    let response = traefik(&server, "GET", APP, "/api/items")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(LOCATION).is_none());
    assert_eq!(code(response).await, "unauthenticated");

    // A form post (not a page load): 401 too.
    let response = traefik(&server, "POST", APP, "/reports")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Signed in: 200 with the identity for the proxy to copy.
    let cookie = alice_cookie(&server).await;
    let response = traefik(&server, "GET", APP, "/reports")
        .header("cookie", &cookie)
        .header("x-rampart-user", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-rampart-user"], "alice");
    assert_eq!(headers["x-rampart-roles"], "user");
    assert_eq!(headers["x-rampart-auth-method"], "session");
    assert_eq!(headers["x-rampart-mfa"], "false");
    assert!(headers.contains_key("x-rampart-user-id"));
    assert_eq!(
        headers["x-rampart-assertion"]
            .to_str()
            .unwrap()
            .split('.')
            .count(),
        3
    );
    // Nothing of the request is echoed back as identity.
    assert!(session_set_cookie(&response).is_none());

    // A bearer token works the same way (Traefik passes Authorization along).
    let (access, _) = tokens(&server, "alice").await;
    let response = traefik(&server, "GET", APP, "/reports")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-rampart-auth-method"], "access_token");

    // Refused by policy: 403, audited.
    let response = traefik(&server, "GET", APP, "/admin/users")
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "forbidden");
    assert!(audited(&server, "policy.denied").await >= 1);
    server.stop().await;
});

on_both_backends!(nginx_convention_is_401_with_location, |backend| {
    let server = server(backend).await;
    let response = http()
        .get(server.url("/auth/verify"))
        .header("x-original-uri", "/reports?q=1")
        .header("x-original-method", "GET")
        .header("x-forwarded-host", APP)
        .header("x-forwarded-proto", "https")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    // nginx's auth_request understands only 2xx, 401 and 403.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(signin_rd(&response), "https://app.example.test/reports?q=1");
    // An API client: 401 without a Location, so nginx answers 401 as is.
    let response = http()
        .get(server.url("/auth/verify"))
        .header("x-original-uri", "/reports")
        .header("x-forwarded-host", APP)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(LOCATION).is_none());
    server.stop().await;
});

on_both_backends!(open_redirect_payloads_fall_back_to_root, |backend| {
    let server = server(backend).await;
    let page =
        |host: &str, uri: &str| traefik(&server, "GET", host, uri).header("accept", "text/html");
    // A host no allowed origin has (a forged X-Forwarded-Host reaching a host-less
    // route), and user-info tricks: the sign-in link returns to `/`.
    for host in [
        "evil.example",
        "app.example.test.evil.example",
        "evil.example@app.example.test",
        "app.example.test@evil.example",
    ] {
        let response = page(host, "/shared/doc").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{host}");
        assert_eq!(signin_rd(&response), "/", "{host}");
    }
    // Network-path and absolute forms in the URI: either refused outright or kept on
    // the application's own origin — never another host.
    for uri in ["//evil.example/x", "///evil.example/x", "/\\evil.example/x"] {
        let response = page(APP, uri).send().await.unwrap();
        match response.status() {
            StatusCode::FOUND => {
                let rd = signin_rd(&response);
                assert!(
                    rd == "/" || rd.starts_with("https://app.example.test/"),
                    "{uri}: {rd}"
                );
            }
            StatusCode::FORBIDDEN => {}
            other => panic!("{uri}: {other}"),
        }
    }
    server.stop().await;
});

on_both_backends!(malformed_forwarded_requests_fail_closed, |backend| {
    let server = server(backend).await;
    let cookie = alice_cookie(&server).await;
    // Even with a valid session: a request Rampart cannot describe is refused.
    for uri in [
        "",
        "reports",
        "https://evil.example/reports",
        "/reports;jsessionid=1",
        "/a%2Fb",
        "/%252e%252e/admin",
        "/../../admin",
        "/a%00b",
        "/a\\b",
    ] {
        let response = traefik(&server, "GET", APP, uri)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri:?}");
        assert!(response.headers().get("x-rampart-user").is_none());
    }
    // Two descriptions of the request: a client behind Traefik adding nginx's
    // header to have a permitted path judged while the proxy forwards another.
    let response = traefik(&server, "GET", APP, "/admin/users")
        .header("x-original-uri", "/reports")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "invalid_forwarded_request");
    let response = traefik(&server, "POST", APP, "/reports")
        .header("x-original-method", "GET")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = traefik(&server, "GET", APP, "/reports")
        .header("x-forwarded-host", "other.example.test")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "two hosts");
    // The same value under both names (a proxy that sets both) is fine.
    let response = traefik(&server, "GET", APP, "/reports")
        .header("x-original-uri", "/reports")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No forwarded URI at all.
    let response = http()
        .get(server.url("/auth/verify"))
        .header("x-forwarded-host", APP)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(response).await, "invalid_forwarded_request");
    // A method that is no method.
    let response = traefik(&server, "GE T", APP, "/reports")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A host no route serves: deny by default.
    let response = traefik(&server, "GET", "other.example.test", "/reports")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Malformed, unknown or revoked session cookies: refused, never an identity.
    // An API client gets 401; a browser is sent to sign in, the cookie cleared.
    let revoked = alice_cookie(&server).await;
    let response = http()
        .post(server.url("/api/v1/auth/logout"))
        .header("cookie", &revoked)
        .header("origin", "https://auth.example.test")
        .header("x-csrf-token", csrf_token(&server, &revoked).await)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let malformed = ["garbage", "%00", &"A".repeat(43), &"A".repeat(4000)]
        .map(|v| format!("__Secure-rampart_session={v}"));
    for cookie in malformed.iter().chain([&revoked]) {
        let response = traefik(&server, "GET", APP, "/reports")
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie:?}");
        assert!(response.headers().get("x-rampart-user").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated", "{body}");

        let response = traefik(&server, "GET", APP, "/reports")
            .header("cookie", cookie)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{cookie:?}");
        assert!(response.headers().get("x-rampart-user").is_none());
        assert_eq!(signin_rd(&response), "https://app.example.test/reports");
        let cleared = response.headers()["set-cookie"].to_str().unwrap();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }
    server.stop().await;
});
