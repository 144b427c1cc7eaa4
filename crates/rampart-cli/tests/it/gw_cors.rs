//! CORS per route (F-CORS): an exact-origin allowlist (no suffix, prefix, scheme or
//! port confusion; `null` never), preflights answered before authentication and
//! never forwarded, `Vary: Origin`, credentials only for named origins — and those
//! named origins may send cookie-authenticated requests, which are otherwise
//! refused as cross-site.

use rampart_store::Backend;
use rampart_testkit::upstream::Upstream;
use reqwest::{Method, StatusCode};

use crate::api_auth::{http, login};
use crate::gw_routes::{bearer, error_code, gateway, member, upstream_toml};
use crate::support::TestServer;

const APP: &str = "https://app.example.test";
const TAURI: &str = "tauri://localhost";

/// Origins that resemble an allowed one and must not be treated as it.
const LOOKALIKES: &[&str] = &[
    "https://evil-app.example.test",
    "https://app.example.test.evil.test",
    "https://evilapp.example.test",
    "http://app.example.test",
    "https://app.example.test:8443",
    "https://app.example.test/",
    "https://app.example.test%60.evil.test",
    "tauri://localhost.evil.test",
    "https://localhost",
    "null",
    "",
];

fn config(upstream: &Upstream) -> String {
    format!(
        r#"{}
[[routes]]
name = "data"
path_prefix = "/data"
upstream = "u"

[routes.cors]
allow_origins = ["{APP}", "{TAURI}"]
allow_credentials = true
allow_methods = ["GET", "POST"]
allow_headers = ["content-type", "authorization", "x-csrf-token"]
expose_headers = ["x-total"]
max_age = "5m"

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "u"
auth = "public"

[routes.cors]
allow_origins = ["*"]
"#,
        upstream_toml("u", upstream, "")
    )
}

async fn preflight(
    server: &TestServer,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    let mut request = http()
        .request(Method::OPTIONS, server.url(path))
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers);
    if !origin.is_empty() {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

fn varies_on_origin(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}

#[tokio::test]
async fn preflights_are_answered_before_authentication_for_exact_origins_only() {
    let upstream = Upstream::start().await;
    let server = gateway(Backend::Sqlite, &config(&upstream)).await;
    for origin in [APP, TAURI] {
        let response = preflight(
            &server,
            "/data/items",
            origin,
            "POST",
            "Content-Type, Authorization",
        )
        .await;
        // No credentials on a preflight, and none needed: not a 401.
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{origin}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        assert_eq!(headers["access-control-allow-credentials"], "true");
        assert_eq!(headers["access-control-allow-methods"], "GET, POST");
        assert_eq!(
            headers["access-control-allow-headers"],
            "content-type, authorization, x-csrf-token"
        );
        assert_eq!(headers["access-control-max-age"], "300");
        assert!(varies_on_origin(&response));
        // The preflight is Rampart's answer and carries the security headers.
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(response.headers().contains_key("x-frame-options"));
    }
    for origin in LOOKALIKES {
        let response = preflight(&server, "/data/items", origin, "POST", "content-type").await;
        // Without an Origin it is no preflight at all: an OPTIONS request like any
        // other, which needs authentication here.
        let expected = if origin.is_empty() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::NO_CONTENT
        };
        assert_eq!(response.status(), expected, "{origin}");
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin} was allowed"
        );
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-credentials")
        );
    }
    // A method or a header outside the lists: no grant.
    for (method, headers) in [("DELETE", "content-type"), ("POST", "x-evil"), ("PUT", "")] {
        let response = preflight(&server, "/data/items", APP, method, headers).await;
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{method} {headers}"
        );
    }
    // The wildcard route: any origin, without credentials — but never `null`.
    let response = preflight(&server, "/open/x", "https://anyone.example", "GET", "").await;
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    let response = preflight(&server, "/open/x", "null", "GET", "").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert!(upstream.seen().is_empty(), "a preflight was forwarded");
    server.stop().await;
}

#[tokio::test]
async fn actual_requests_get_cors_headers_for_allowed_origins_only() {
    let upstream = Upstream::start().await;
    let server = gateway(Backend::Sqlite, &config(&upstream)).await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;

    let response = http()
        .get(server.url("/data/items?set_header=x-total:7"))
        .header("origin", APP)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    assert_eq!(
        response.headers()["access-control-expose-headers"],
        "x-total"
    );
    assert!(varies_on_origin(&response));

    // Another origin: the request is served (CORS is the browser's check), but the
    // response carries no grant, so a browser withholds it from the script.
    for origin in LOOKALIKES.iter().filter(|o| !o.is_empty()) {
        let response = http()
            .get(server.url("/data/items"))
            .header("origin", *origin)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin}"
        );
        assert!(varies_on_origin(&response), "{origin}");
    }
    // No Origin: no CORS headers, still Vary (a cache must not reuse it for one).
    let response = http()
        .get(server.url("/data/items"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert!(varies_on_origin(&response));

    // Rampart's refusals carry the grant too, so the page can read its 401.
    let response = http()
        .get(server.url("/data/items"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    assert!(varies_on_origin(&response));
    let response = http()
        .get(server.url("/data/items"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    server.stop().await;
}

#[tokio::test]
async fn cookie_requests_from_a_credentialed_origin_pass_and_others_are_cross_site() {
    let upstream = Upstream::start().await;
    let server = gateway(Backend::Sqlite, &config(&upstream)).await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let (browser, _) = login(&server, "alice").await;
    let cookie = browser.cookie.unwrap();
    let post = |origin: &'static str, site: &'static str| {
        http()
            .post(server.url("/data/items"))
            .header("cookie", &cookie)
            .header("origin", origin)
            .header("sec-fetch-site", site)
            .body("{}")
            .send()
    };
    let allowed = post(APP, "same-site").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.headers()["access-control-allow-origin"], APP);
    assert_eq!(upstream.last().header("x-rampart-user"), Some("alice"));
    let before = upstream.seen().len();
    for origin in [
        "https://evil.example",
        "https://app.example.test.evil.test",
        "null",
    ] {
        let refused = post(origin, "cross-site").await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(error_code(refused).await, "csrf_failed");
    }
    assert_eq!(upstream.seen().len(), before);
    server.stop().await;
}
