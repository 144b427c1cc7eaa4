//! Client IP resolution (F-CLIENTIP): forwarded headers are believed only from
//! `server.trusted_proxies`, read right to left to the first untrusted hop; from
//! anyone else they change nothing — not the rate-limit key, not the audit record,
//! not the log line, not what the upstream receives — and the upstream always gets
//! canonical `X-Forwarded-*` and `Forwarded` headers rebuilt by Rampart.

use std::io::Write as _;
use std::process::{Command, Stdio};

use rampart_testkit::process::{Rampart, run};
use rampart_testkit::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_auth::{PASSWORD, http};
use crate::common::{bin, env, production_config};
use crate::gw_routes::{bearer, denials, gateway, gateway_env, get, member, upstream_toml};
use crate::on_both_backends;

/// Rate classes (defining any replaces the defaults): `tight` allows 3 requests per
/// hour per client IP, which a fake clock never refills.
/// Request headers, as name/value pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

const RATE_CLASSES: &str = r#"
[rate_limit.classes.general]
rate = 100000
burst = 100000

[rate_limit.classes.auth]
rate = 100000
burst = 100000

[rate_limit.classes.tight]
rate = 1
per = "1h"
burst = 3
key = "ip"
"#;

fn routes(upstream: &Upstream) -> String {
    format!(
        r#"
{RATE_CLASSES}{}
[[routes]]
name = "p"
path_prefix = "/p"
upstream = "u"
auth = "public"
rate_class = "tight"

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "u"
roles = ["admin"]
"#,
        upstream_toml("u", upstream, "")
    )
}

on_both_backends!(
    spoofed_forwarding_headers_from_an_untrusted_peer_change_nothing,
    |backend| {
        let upstream = Upstream::start().await;
        let server = gateway(backend, &routes(&upstream)).await;
        member(&server, "alice", &["user"], &[], &[]).await;
        let token = bearer(&server, "alice").await;

        let spoofs: &[&[(&str, &str)]] = &[
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-proto", "https"),
            ],
            &[
                ("x-forwarded-for", "not-an-ip, ::1, 10.0.0.1"),
                ("x-real-ip", "198.51.100.2"),
            ],
            &[
                ("forwarded", "for=198.51.100.3;proto=https"),
                ("cf-connecting-ip", "198.51.100.4"),
                ("true-client-ip", "198.51.100.5"),
            ],
        ];
        for headers in spoofs {
            let response = get(&server, "/p/x", headers).await;
            assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
            let seen = upstream.last();
            assert_eq!(
                seen.header("x-forwarded-for"),
                Some("127.0.0.1"),
                "{headers:?}"
            );
            assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
            assert_eq!(
                seen.header("x-forwarded-proto"),
                Some("http"),
                "the scheme claim was believed"
            );
            let forwarded = seen.header("forwarded").unwrap();
            assert!(
                forwarded.starts_with("for=127.0.0.1;proto=http;host=127.0.0.1"),
                "{forwarded}"
            );
            assert!(seen.header("cf-connecting-ip").is_none());
            assert!(seen.header("true-client-ip").is_none());
            assert!(!response.headers().contains_key("strict-transport-security"));
        }
        // The rate limit counts the peer: a fourth spoofed address does not get a fresh
        // budget.
        let limited = get(&server, "/p/x", &[("x-forwarded-for", "198.51.100.99")]).await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.headers().contains_key("retry-after"));
        assert_eq!(upstream.seen().len(), spoofs.len());

        // The audit record names the peer, whatever the headers claim.
        let denied = get(
            &server,
            "/admin/x",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-forwarded-for", "203.0.113.50"),
            ],
        )
        .await;
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        let audit = denials(&server, 1).await;
        assert_eq!(audit[0].client_ip.as_deref(), Some("127.0.0.1"));
        server.stop().await;
    }
);

on_both_backends!(a_trusted_proxy_names_the_client_right_to_left, |backend| {
    let upstream = Upstream::start().await;
    let server = gateway_env(
        backend,
        &routes(&upstream),
        &[("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1/32")],
    )
    .await;
    member(&server, "alice", &["user"], &[], &[]).await;
    let token = bearer(&server, "alice").await;

    // (headers the proxy sends, the client Rampart must resolve, the scheme)
    let cases: &[(Headers, &str, &str)] = &[
        // The client prepended a fake hop; the proxy appended the real address.
        (
            &[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
                ("x-forwarded-proto", "https"),
            ],
            "198.51.100.7",
            "https",
        ),
        // Only 127.0.0.1 is trusted: 10.0.0.9 is the right-most untrusted hop.
        (
            &[("x-forwarded-for", "198.51.100.8, 10.0.0.9")],
            "10.0.0.9",
            "http",
        ),
        // Trusted hops are skipped.
        (
            &[("x-forwarded-for", "198.51.100.10, 127.0.0.1")],
            "198.51.100.10",
            "http",
        ),
        // An unparsable hop ends the walk at the last trusted address: the proxy.
        (
            &[("x-forwarded-for", "198.51.100.11, garbage")],
            "127.0.0.1",
            "http",
        ),
        // RFC 7239, from a proxy that sends only `Forwarded`.
        (
            &[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")],
            "2001:db8::7",
            "https",
        ),
        // A client's own `Forwarded` header that a proxy passed through untouched
        // while appending to X-Forwarded-For is not believed.
        (
            &[
                ("forwarded", "for=6.6.6.6;proto=https"),
                ("x-forwarded-for", "198.51.100.12"),
            ],
            "198.51.100.12",
            "http",
        ),
    ];
    for (headers, client, scheme) in cases {
        let response = get(&server, "/p/x", headers).await;
        assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
        let seen = upstream.last();
        assert_eq!(seen.header("x-forwarded-for"), Some(*client), "{headers:?}");
        assert_eq!(seen.header("x-real-ip"), Some(*client));
        assert_eq!(seen.header("x-forwarded-proto"), Some(*scheme));
        let node = if client.contains(':') {
            format!("\"[{client}]\"")
        } else {
            (*client).to_owned()
        };
        assert_eq!(
            seen.header("forwarded"),
            Some(
                format!(
                    "for={node};proto={scheme};host=127.0.0.1:{}",
                    server.addr.port()
                )
                .as_str()
            ),
        );
        // HSTS follows the trusted proxy's scheme.
        assert_eq!(
            response.headers().contains_key("strict-transport-security"),
            *scheme == "https",
            "{headers:?}"
        );
    }
    // Rate limits count the resolved client: 198.51.100.20 has its own budget of 3.
    for _ in 0..3 {
        let ok = get(&server, "/p/y", &[("x-forwarded-for", "198.51.100.20")]).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let limited = get(&server, "/p/y", &[("x-forwarded-for", "198.51.100.20")]).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = get(&server, "/p/y", &[("x-forwarded-for", "198.51.100.21")]).await;
    assert_eq!(other.status(), StatusCode::OK);

    // And the audit record names it.
    let denied = get(
        &server,
        "/admin/x",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-forwarded-for", "203.0.113.50"),
        ],
    )
    .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let audit = denials(&server, 1).await;
    assert_eq!(audit[0].client_ip.as_deref(), Some("203.0.113.50"));
    server.stop().await;
});

/// `rampart admin create` with the password on standard input.
fn create_admin(config: &str) {
    let mut child = Command::new(bin())
        .args(["admin", "create", "--username", "root", "--config", config])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_binary_logs_and_exports_the_peer_not_the_spoofed_address() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(
        dir.path(),
        &format!(
            "[roles.admin]\npermissions = [\"*\"]\n[roles.user]\npermissions = [\"profile:read\"]\n{}\n[[routes]]\nname = \"members\"\npath_prefix = \"/members\"\nupstream = \"u\"\nroles = [\"user\"]\n",
            upstream_toml("u", &upstream, "")
        ),
    );
    let config = config.to_str().unwrap();
    let (code, out, err) = run(&bin(), &["migrate", "--config", config], &env(&[])).await;
    assert_eq!(code, 0, "{out}{err}");
    create_admin(config);
    let mut rampart = Rampart::spawn(&bin(), &["serve", "--config", config], &env(&[]));
    let addr = rampart.listening().await;
    let token: Value = http()
        .post(format!("http://{addr}/api/v1/auth/token"))
        .json(&json!({"grant_type": "password", "username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let response = http()
        .get(format!("http://{addr}/members/area"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.77")
        .header("forwarded", "for=203.0.113.78")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let line = rampart
        .wait_for_log(|v| v["message"] == "proxied" && v["request_id"] == request_id.as_str())
        .await;
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["status"], 403);
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
    assert!(
        !rampart.all_output().contains("203.0.113.7"),
        "a spoofed address was logged"
    );

    let (code, stdout, stderr) = run(
        &bin(),
        &[
            "audit",
            "export",
            "--since",
            "2000-01-01T00:00:00Z",
            "--config",
            config,
        ],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let denial: Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["kind"] == "policy.denied")
        .unwrap_or_else(|| panic!("no policy.denied record in:\n{stdout}"));
    assert_eq!(denial["client_ip"], "127.0.0.1");
    assert_eq!(denial["target"], "route:members");
    assert_eq!(denial["reason"], "needs one of the roles user");
    assert_eq!(denial["actor"], "root");
    assert_eq!(denial["request_id"], request_id.as_str());
    assert!(!stdout.contains("203.0.113.7"));
}
