//! Response security headers (F-HEADERS): the `[headers]` set on every response —
//! proxied, Rampart's own, errors of both — HSTS only on HTTPS (direct TLS, or a
//! trusted proxy's `X-Forwarded-Proto`, never an untrusted peer's), `no-store` on
//! authenticated responses, and per-route `set`/`remove`.

use std::net::SocketAddr;

use rampart_store::Backend;
use rampart_testkit::client::install_crypto_provider;
use rampart_testkit::upstream::Upstream;
use reqwest::header::HeaderMap;

use crate::gw_routes::{bearer, gateway_env, member, upstream_toml};
use crate::support::TestServer;
use crate::tls_direct::{Ca, Purpose};

/// Present on every response, whoever produced it.
const ALWAYS: &[&str] = &[
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "content-security-policy",
    "x-request-id",
];

const HSTS: &str = "max-age=34560000; includeSubDomains";

fn config(upstream: &Upstream) -> String {
    format!(
        r#"
[headers]
frame_options = "SAMEORIGIN"
referrer_policy = "same-origin"
permissions_policy = "camera=(), fullscreen=(self)"
content_security_policy = "default-src 'self'"
hsts_max_age = "400d"
{}
[upstreams.gone]
url = "http://127.0.0.1:9"

[[routes]]
name = "app"
path_prefix = "/app"
upstream = "u"
auth = "public"

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "u"

[[routes]]
name = "custom"
path_prefix = "/custom"
upstream = "u"
auth = "public"

[routes.headers]
set = {{ "Content-Security-Policy" = "default-src 'none'; img-src 'self'", "Cache-Control" = "private, max-age=5" }}
remove = ["x-powered-by"]

[[routes]]
name = "gone"
path_prefix = "/gone"
upstream = "gone"
auth = "public"
"#,
        upstream_toml("u", upstream, "")
    )
}

/// What to request, and who answers.
struct Probe {
    path: &'static str,
    status: u16,
    /// Proxied (the route's policy) or Rampart's own voice.
    proxied: bool,
    authenticated: bool,
}

const PROBES: &[Probe] = &[
    Probe {
        path: "/app/page?set_header=x-powered-by:PHP",
        status: 200,
        proxied: true,
        authenticated: false,
    },
    Probe {
        path: "/app/fail?status=500",
        status: 500,
        proxied: true,
        authenticated: false,
    },
    Probe {
        path: "/app/page?set_header=x-frame-options:ALLOWALL&set_header=connection:x-frame-options",
        status: 200,
        proxied: true,
        authenticated: false,
    },
    Probe {
        path: "/private/page?set_header=cache-control:public,max-age=600",
        status: 200,
        proxied: true,
        authenticated: true,
    },
    Probe {
        path: "/private/page",
        status: 401,
        proxied: false,
        authenticated: false,
    },
    Probe {
        path: "/nothing",
        status: 404,
        proxied: false,
        authenticated: false,
    },
    Probe {
        path: "/gone/x",
        status: 502,
        proxied: false,
        authenticated: false,
    },
    Probe {
        path: "/app/%2e%2e%2fadmin",
        status: 400,
        proxied: false,
        authenticated: false,
    },
    Probe {
        path: "/healthz",
        status: 200,
        proxied: false,
        authenticated: false,
    },
    Probe {
        path: "/api/v1/auth/whoami",
        status: 401,
        proxied: false,
        authenticated: false,
    },
    Probe {
        path: "/api/v1/auth/whoami",
        status: 200,
        proxied: false,
        authenticated: true,
    },
];

/// Requests every probe through `client` at `base` with `extra` headers and checks
/// the header set; `hsts`: whether HSTS must be present (else absent).
async fn check_all(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    extra: &[(&str, &str)],
    hsts: bool,
) {
    for probe in PROBES {
        let mut request = client.get(format!("{base}{}", probe.path));
        if probe.authenticated {
            request = request.bearer_auth(token);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let path = probe.path;
        assert_eq!(response.status().as_u16(), probe.status, "{path}");
        let headers = response.headers();
        for name in ALWAYS {
            assert!(
                headers.contains_key(*name),
                "{path}: {name} missing in {headers:?}"
            );
        }
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(
            headers
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            hsts.then_some(HSTS),
            "{path}"
        );
        if probe.proxied {
            // The configured values.
            assert_eq!(headers["x-frame-options"], "SAMEORIGIN", "{path}");
            assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
            assert_eq!(
                headers["permissions-policy"],
                "camera=(), fullscreen=(self)"
            );
            assert_eq!(
                headers["content-security-policy"], "default-src 'self'",
                "{path}"
            );
        } else {
            // Rampart's own voice (JSON, never framed, loads nothing).
            assert_eq!(headers["x-frame-options"], "DENY", "{path}");
            assert!(
                headers["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .starts_with("default-src 'none'"),
                "{path}"
            );
        }
        if probe.authenticated || !probe.proxied {
            assert_eq!(headers["cache-control"], "no-store", "{path}: {headers:?}");
        }
    }
}

async fn server(upstream: &Upstream, vars: &[(&str, &str)]) -> (TestServer, String) {
    let server = gateway_env(Backend::Sqlite, &config(upstream), vars).await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;
    (server, token)
}

fn plain_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_response_carries_the_header_set_and_hsts_never_over_plain_http() {
    let upstream = Upstream::start().await;
    let (server, token) = server(&upstream, &[]).await;
    let client = plain_client();
    let base = server.url("");
    check_all(&client, &base, &token, &[], false).await;
    // An untrusted peer claiming HTTPS changes nothing.
    check_all(
        &client,
        &base,
        &token,
        &[("x-forwarded-proto", "https")],
        false,
    )
    .await;
    check_all(
        &client,
        &base,
        &token,
        &[("forwarded", "for=1.2.3.4;proto=https")],
        false,
    )
    .await;

    // The upstream's own values stay where the route sets none; authenticated
    // responses are never cacheable by shared caches.
    let public = client
        .get(server.url("/app/x?set_header=cache-control:public,max-age=600&set_header=x-powered-by:PHP&set_header=content-security-policy:default-src%20https:"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.headers()["cache-control"], "public,max-age=600");
    assert_eq!(public.headers()["x-powered-by"], "PHP");
    assert_eq!(
        public.headers()["content-security-policy"],
        "default-src https:"
    );
    let private = client
        .get(server.url("/private/x?set_header=cache-control:public,max-age=600"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(private.headers()["cache-control"], "no-store");

    // Per-route overrides: set replaces the upstream's value and the default; remove
    // drops the upstream's header.
    let custom = client
        .get(server.url("/custom/x?set_header=x-powered-by:PHP&set_header=content-security-policy:default-src%20*"))
        .send()
        .await
        .unwrap();
    let headers: &HeaderMap = custom.headers();
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; img-src 'self'"
    );
    assert_eq!(headers["cache-control"], "private, max-age=5");
    assert!(!headers.contains_key("x-powered-by"));
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    server.stop().await;
}

#[tokio::test]
async fn hsts_on_https_from_a_trusted_proxy() {
    let upstream = Upstream::start().await;
    let (server, token) = server(
        &upstream,
        &[("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1/32")],
    )
    .await;
    let client = plain_client();
    let base = server.url("");
    check_all(
        &client,
        &base,
        &token,
        &[("x-forwarded-proto", "https")],
        true,
    )
    .await;
    check_all(
        &client,
        &base,
        &token,
        &[("x-forwarded-proto", "http")],
        false,
    )
    .await;
    check_all(&client, &base, &token, &[], false).await;
    server.stop().await;
}

#[tokio::test]
async fn hsts_on_direct_tls() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("gw-headers test CA");
    let (cert, key) = ca
        .issue(&["localhost"], 1, Purpose::Server)
        .write(dir.path(), "server");
    let server = gateway_env(
        Backend::Sqlite,
        &config(&upstream),
        &[
            ("RAMPART_SERVER_TLS_CERT_PATH", cert.to_str().unwrap()),
            ("RAMPART_SERVER_TLS_KEY_PATH", key.to_str().unwrap()),
        ],
    )
    .await;
    member(&server, "alice", &["user"], &[], &[]).await;
    install_crypto_provider();
    let addr: SocketAddr = server.addr;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", addr.port());
    let token: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&serde_json::json!({
            "grant_type": "password",
            "username": "alice",
            "password": crate::api_auth::PASSWORD,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    check_all(&client, &base, &token, &[], true).await;
    // A spoofed downgrade claim from an untrusted peer changes nothing either.
    check_all(
        &client,
        &base,
        &token,
        &[("x-forwarded-proto", "http")],
        true,
    )
    .await;
    server.stop().await;
}
