//! Gateway routing (F-ROUTES, F-IDHEADERS): host and path-prefix matching after
//! normalization, deny by default, audited policy denials, and identity headers that
//! no client can forge — plus the helpers the other `gw_*` modules share.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rampart_identity::accounts::{Actor, NewAccount};
use rampart_testkit::raw::{self, RawResponse};
use rampart_testkit::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::Value;

use crate::api_auth::{PASSWORD, http, tokens};
use crate::on_both_backends;
use crate::support::TestServer;

/// `[upstreams.<name>]` pointing at `upstream`, plus `extra` keys.
pub fn upstream_toml(name: &str, upstream: &Upstream, extra: &str) -> String {
    format!(
        "\n[upstreams.{name}]\nurl = \"{}\"\n{extra}\n",
        upstream.url()
    )
}

/// A gateway test server: the identity test config (roles `admin`, `user`,
/// `integrator`; an initialized instance) plus `extra`.
pub async fn gateway(backend: rampart_store::Backend, extra: &str) -> TestServer {
    crate::api_auth::server(backend, extra).await
}

/// Like [`gateway`], with `RAMPART_*` variables (for `[server]` keys: the base config
/// already has that table).
pub async fn gateway_env(
    backend: rampart_store::Backend,
    extra: &str,
    vars: &[(&str, &str)],
) -> TestServer {
    let server = TestServer::with_config_env(backend, &crate::api_auth::config(extra), vars).await;
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

/// Creates a user with roles, tenants and attributes; returns its id.
pub async fn member(
    server: &TestServer,
    username: &str,
    roles: &[&str],
    tenants: &[&str],
    attributes: &[(&str, &str)],
) -> String {
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
                tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..NewAccount::default()
            },
        )
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned()
}

/// An access token for `username` (password grant).
pub async fn bearer(server: &TestServer, username: &str) -> String {
    tokens(server, username).await.0
}

/// A GET through the gateway with `headers`.
pub async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http().get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Sends raw bytes to the server and reads one response.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<RawResponse> {
    raw::exchange(addr, bytes).await
}

/// A policy denial as the audit table holds it.
#[derive(Debug, Clone)]
pub struct Denial {
    /// `route:<name>`.
    pub target: String,
    /// The reason.
    pub reason: String,
    /// The username, if authenticated.
    pub actor: Option<String>,
    /// The client IP the gateway resolved.
    pub client_ip: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
}

/// `target, reason, actor, client_ip, request_id` of an audit record.
type DenialRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The `policy.denied` records, in order, once every event recorded so far has been
/// written (the audit writer is flushed first: a denial is recorded before its
/// response is sent). At least `n` are expected.
pub async fn denials(server: &TestServer, n: usize) -> Vec<Denial> {
    server.running().state().audit.flush().await.unwrap();
    let pool = server.db().raw_pool().await.unwrap();
    let rows: Vec<DenialRow> = sqlx::query_as(
        "SELECT target, reason, actor, client_ip, request_id FROM audit_records \
             WHERE kind = 'policy.denied' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        rows.len() >= n,
        "{} denials audited, expected at least {n}",
        rows.len()
    );
    rows.into_iter()
        .map(|(target, reason, actor, client_ip, request_id)| Denial {
            target,
            reason,
            actor,
            client_ip,
            request_id,
        })
        .collect()
}

/// The envelope's error code.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Which upstream (`app` or `svc`) and the path and query it must see.
type Target<'a> = (&'a str, &'a str);

#[tokio::test]
async fn routes_match_host_and_path_prefix_on_segment_boundaries() {
    let app = Upstream::start().await;
    let svc = Upstream::start().await;
    let extra = format!(
        r#"{}{}
[[routes]]
name = "app"
host = "app.example.test"
upstream = "app"
auth = "public"

[[routes]]
name = "svc"
path_prefix = "/svc/"
upstream = "svc"
auth = "public"

[[routes]]
name = "health"
path_prefix = "/health"
upstream = "svc"
auth = "public"
"#,
        upstream_toml("app", &app, ""),
        upstream_toml("svc", &svc, ""),
    );
    let server = TestServer::with_config(rampart_store::Backend::Sqlite, &extra).await;
    let addr = server.addr;
    // (Host, raw target) → which upstream and which path it must see; None: 404.
    let cases: &[(&str, &str, Option<Target>)] = &[
        (
            "app.example.test",
            "/anything?x=1",
            Some(("app", "/anything?x=1")),
        ),
        ("APP.Example.Test:8443", "/y", Some(("app", "/y"))),
        // The application host owns every path, Rampart's own included.
        ("app.example.test", "/healthz", Some(("app", "/healthz"))),
        ("other.test", "/svc", Some(("svc", "/svc"))),
        (
            "other.test",
            "/svc/v1/items",
            Some(("svc", "/svc/v1/items")),
        ),
        ("other.test", "/SVC/v1", Some(("svc", "/SVC/v1"))),
        ("other.test", "/./svc/../svc//v1", Some(("svc", "/svc/v1"))),
        ("other.test", "/svcx", None),
        ("other.test", "/sv", None),
        ("other.test", "/health", Some(("svc", "/health"))),
        ("other.test", "/health/live", Some(("svc", "/health/live"))),
        ("other.test", "/healthz-admin", None),
        ("other.test", "/health-admin", None),
        ("other.test", "/nothing/here", None),
        ("other.test", "/", None),
    ];
    for (host, target, expected) in cases {
        let before = (app.seen().len(), svc.seen().len());
        let response = raw_exchange(addr, &raw::get(target, host, ""))
            .await
            .unwrap();
        match expected {
            Some((which, path)) => {
                assert_eq!(response.status, 200, "{host} {target}: {}", response.text());
                let upstream = if *which == "app" { &app } else { &svc };
                let seen = upstream.last();
                assert_eq!(seen.uri, *path, "{host} {target}");
            }
            None => {
                assert_eq!(response.status, 404, "{host} {target}");
                assert_eq!(response.error_code().as_deref(), Some("not_found"));
            }
        }
        if expected.is_none() {
            assert_eq!(
                (app.seen().len(), svc.seen().len()),
                before,
                "{host} {target} reached an upstream"
            );
        }
    }
    // Rampart's own endpoints stay Rampart's on hosts no route claims.
    let own = raw_exchange(addr, &raw::get("/healthz", "other.test", ""))
        .await
        .unwrap();
    assert_eq!(own.status, 200);
    assert!(svc.seen().iter().all(|s| s.path() != "/healthz"));
    server.stop().await;
}

#[tokio::test]
async fn without_a_matching_route_nothing_is_forwarded() {
    let upstream = Upstream::start().await;
    let extra = format!(
        "{}\n[[routes]]\nname = \"only\"\nhost = \"only.example.test\"\nupstream = \"u\"\nauth = \"public\"\n",
        upstream_toml("u", &upstream, "")
    );
    let server = TestServer::with_config(rampart_store::Backend::Sqlite, &extra).await;
    for (host, target) in [
        ("elsewhere.test", "/"),
        ("elsewhere.test", "/app"),
        ("only.example.test.evil.test", "/"),
        ("evil-only.example.test", "/"),
    ] {
        let response = raw_exchange(server.addr, &raw::get(target, host, ""))
            .await
            .unwrap();
        assert_eq!(response.status, 404, "{host}{target}");
        assert_eq!(response.error_code().as_deref(), Some("not_found"));
        assert!(response.header("x-request-id").is_some());
    }
    assert!(upstream.seen().is_empty());
    server.stop().await;
}

on_both_backends!(every_policy_denial_is_audited_with_its_reason, |backend| {
    let upstream = Upstream::start().await;
    let extra = format!(
        r#"{}
[[routes]]
name = "admin-area"
path_prefix = "/admin"
upstream = "u"
roles = ["admin"]

[[routes]]
name = "reports"
path_prefix = "/reports"
upstream = "u"
permissions = ["integration:invoke"]

[[routes]]
name = "paid"
path_prefix = "/paid"
upstream = "u"
attributes = {{ subscription = "active" }}
"#,
        upstream_toml("u", &upstream, "")
    );
    let server = gateway(backend, &extra).await;
    member(
        &server,
        "alice",
        &["user"],
        &[],
        &[("subscription", "lapsed")],
    )
    .await;
    let token = bearer(&server, "alice").await;
    let auth = format!("Bearer {token}");
    let mut request_ids = Vec::new();
    for (path, code) in [
        ("/admin/users", "forbidden"),
        ("/reports/q1", "forbidden"),
        ("/paid/feature", "forbidden"),
    ] {
        let response = get(&server, path, &[("authorization", &auth)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        request_ids.push(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        assert_eq!(error_code(response).await, code);
    }
    // Anonymous on a required route is a challenge (401), not a policy denial.
    let anonymous = get(&server, "/admin/users", &[]).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        upstream.seen().is_empty(),
        "a denied request reached the upstream"
    );

    let denials = denials(&server, 3).await;
    assert_eq!(denials.len(), 3, "{denials:?}");
    let expected = [
        ("route:admin-area", "needs one of the roles admin"),
        ("route:reports", "missing permission integration:invoke"),
        ("route:paid", "attribute subscription must be active"),
    ];
    for ((denial, (target, reason)), request_id) in denials.iter().zip(expected).zip(&request_ids) {
        assert_eq!(denial.target, target);
        assert_eq!(denial.reason, reason);
        assert_eq!(denial.actor.as_deref(), Some("alice"));
        assert_eq!(denial.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(denial.request_id.as_deref(), Some(request_id.as_str()));
    }
    server.stop().await;
});

on_both_backends!(client_identity_headers_never_reach_any_route, |backend| {
    let upstream = Upstream::start().await;
    let extra = format!(
        r#"{}
[identity]
strip_headers = ["x-remote-user", "remote-user"]

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "u"
auth = "public"

[[routes]]
name = "optional"
path_prefix = "/optional"
upstream = "u"
auth = "optional"

[[routes]]
name = "private"
path_prefix = "/private"
upstream = "u"
"#,
        upstream_toml("u", &upstream, "")
    );
    let server = gateway(backend, &extra).await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;
    let auth = format!("Bearer {token}");
    let forged: &[(&str, &str)] = &[
        ("x-rampart-user", "root"),
        ("X-Rampart-Roles", "admin"),
        ("x-rampart-user-id", "usr_forged"),
        ("x-rampart-tenant", "globex"),
        ("x-rampart-mfa", "true"),
        ("x-rampart-assertion", "forged.jwt.value"),
        ("x-rampart-anything", "1"),
        ("x-remote-user", "root"),
        ("remote-user", "root"),
    ];
    let forged_values: BTreeMap<&str, &str> = forged.iter().copied().collect();
    for (path, authenticated) in [
        ("/public/a", false),
        ("/public/a", true),
        ("/optional/a", false),
        ("/optional/a", true),
        ("/private/a", true),
    ] {
        let mut headers = forged.to_vec();
        if authenticated {
            headers.push(("authorization", &auth));
        }
        let response = get(&server, path, &headers).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let seen = upstream.last();
        assert!(seen.header("x-remote-user").is_none(), "{path}");
        assert!(seen.header("remote-user").is_none(), "{path}");
        assert!(seen.header("x-rampart-anything").is_none(), "{path}");
        for (name, value) in &seen.headers {
            if let Some(forged) = forged_values.get(name.as_str()) {
                assert_ne!(value, forged, "{path}: forged {name} reached the upstream");
            }
        }
        // Identity headers exist only where Rampart authenticated the caller; a public
        // route authenticates nobody, even a caller that sent a token.
        let identified = authenticated && !path.starts_with("/public");
        assert_eq!(
            seen.header("x-rampart-user").is_some(),
            identified,
            "{path}"
        );
        if identified {
            assert_eq!(seen.header("x-rampart-user"), Some("alice"));
        } else {
            assert!(
                seen.headers.keys().all(|k| !k.starts_with("x-rampart-")),
                "{path}: {:?}",
                seen.headers
            );
        }
    }

    // Rampart's own cookies never leave for an upstream, whatever the route: a
    // public route's application would otherwise hold the user's session.
    let (browser, _) = crate::api_auth::login(&server, "alice").await;
    let session = browser.cookie.unwrap();
    let cookie = format!("theme=dark; {session}; __Host-rampart_magic=binding; lang=en");
    for path in ["/public/a", "/optional/a", "/private/a"] {
        let response = get(&server, path, &[("cookie", &cookie)]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            upstream.last().header("cookie"),
            Some("theme=dark; lang=en"),
            "{path}"
        );
    }
    server.stop().await;
});
