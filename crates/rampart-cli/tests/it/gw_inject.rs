//! Vault secrets injected into upstream requests (F-INJECT): the upstream gets the
//! key; no response, log line (at trace level, every crate) or error ever shows it;
//! a missing secret fails closed with 503 and sends nothing upstream.

use rampart_core::vault::SecretName;
use rampart_crypto::SecretString;
use rampart_testkit::client::client;
use rampart_testkit::process::{Rampart, run};
use rampart_testkit::upstream::Upstream;
use reqwest::StatusCode;

use crate::common::{bin, env, production_config, random_hex, write};
use crate::gw_routes::{error_code, gateway, get, upstream_toml};
use crate::on_both_backends;
use crate::support::TestServer;

fn routes(h1: &Upstream, h2: &Upstream) -> String {
    format!(
        r#"{}{}
[[routes]]
name = "weather"
path_prefix = "/weather"
upstream = "weather"
auth = "public"
inject_headers = {{ "X-Api-Key" = "vault:third_party" }}

[[routes]]
name = "maps"
path_prefix = "/maps"
upstream = "maps"
auth = "public"
inject_headers = {{ "X-Api-Key" = "vault:third_party", "X-Other-Key" = "vault:other" }}

[[routes]]
name = "unset"
path_prefix = "/unset"
upstream = "weather"
auth = "public"
inject_headers = {{ "X-Api-Key" = "vault:never_stored" }}
"#,
        upstream_toml("weather", h1, ""),
        upstream_toml("maps", h2, "http2 = true"),
    )
}

/// Everything a client received, as text: status, every header, the body.
async fn everything(response: reqwest::Response) -> String {
    let mut text = format!("{}\n", response.status());
    for (name, value) in response.headers() {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push_str(&response.text().await.unwrap_or_default());
    text
}

async fn store(server: &TestServer, name: &str, value: &str) {
    server
        .running()
        .state()
        .vault
        .set(
            &SecretName::new(name).unwrap(),
            &SecretString::new(value.to_owned()),
        )
        .await
        .unwrap();
}

on_both_backends!(
    injected_secrets_reach_the_upstream_and_nothing_else,
    |backend| {
        let h1 = Upstream::start().await;
        let h2 = Upstream::start().await;
        let server = gateway(backend, &routes(&h1, &h2)).await;
        let key = format!("key-{}", random_hex(16));
        let other = format!("other-{}", random_hex(16));
        store(&server, "third_party", &key).await;
        store(&server, "other", &other).await;

        // The client cannot supply, replace or delete the injected header.
        for path in ["/weather/today", "/maps/tile"] {
            let response = get(
                &server,
                path,
                &[
                    ("x-api-key", "client-chosen"),
                    ("connection", "x-api-key, x-other-key"),
                ],
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let text = everything(response).await;
            assert!(
                !text.contains(&key) && !text.contains(&other),
                "{path}: {text}"
            );
        }
        assert_eq!(h1.last().header("x-api-key"), Some(key.as_str()));
        assert_eq!(h2.last().header("x-api-key"), Some(key.as_str()));
        assert_eq!(h2.last().header("x-other-key"), Some(other.as_str()));
        assert_eq!(h2.last().version, "HTTP/2.0");

        // A secret that is not stored: refused, closed, and nothing sent upstream.
        let before = h1.seen().len();
        let response = get(&server, "/unset/x", &[]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_code(response).await, "unavailable");
        assert_eq!(h1.seen().len(), before);

        // A value that cannot be a header (a line break): refused without echoing it.
        let broken = format!("line-{}\r\nX-Injected: 1", random_hex(8));
        store(&server, "never_stored", &broken).await;
        let response = get(&server, "/unset/x", &[]).await;
        assert!(response.status().is_server_error(), "{}", response.status());
        let text = everything(response).await;
        assert!(!text.contains(&broken[..13]), "{text}");
        assert_eq!(h1.seen().len(), before);
        server.stop().await;
    }
);

#[tokio::test]
async fn an_injected_secret_never_reaches_the_logs_at_trace_level() {
    let h1 = Upstream::start().await;
    let h2 = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), &routes(&h1, &h2));
    let config = config.to_str().unwrap();
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config],
        &env(&[("RAMPART_LOGGING_LEVEL", "trace")]),
    );
    let addr = rampart.listening().await;

    // Stored with the CLI while the server runs, from files (never argv or env).
    let key = format!("key-{}", random_hex(16));
    let other = format!("other-{}", random_hex(16));
    let mut cli_output = String::new();
    for (name, value) in [("third_party", &key), ("other", &other)] {
        let file = dir.path().join(format!("{name}.secret"));
        write(&file, value, 0o600);
        let (code, stdout, stderr) = run(
            &bin(),
            &[
                "secrets",
                "set",
                name,
                "--file",
                file.to_str().unwrap(),
                "--config",
                config,
            ],
            &env(&[("RAMPART_LOGGING_LEVEL", "trace")]),
        )
        .await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        cli_output.push_str(&stdout);
        cli_output.push_str(&stderr);
    }

    let http = client();
    let mut responses = String::new();
    for path in ["/weather/a", "/maps/b", "/weather/c?x=1", "/unset/d"] {
        let response = http
            .get(format!("http://{addr}{path}"))
            .header("connection", "x-api-key")
            .send()
            .await
            .unwrap();
        responses.push_str(&everything(response).await);
    }
    assert_eq!(h1.seen().len(), 2);
    assert!(
        h1.seen()
            .iter()
            .all(|s| s.header("x-api-key") == Some(key.as_str()))
    );
    assert_eq!(h2.last().header("x-other-key"), Some(other.as_str()));
    assert!(responses.contains("503"), "{responses}");
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));

    let output = rampart.all_output();
    let targets: std::collections::BTreeSet<String> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "TRACE")
        .filter_map(|v| {
            v["target"]
                .as_str()
                .map(|t| t.split("::").next().unwrap_or(t).to_owned())
        })
        .collect();
    eprintln!("trace-level log targets: {targets:?}");
    // The HTTP client stack logged at trace level for both upstreams (HTTP/1.1 and
    // HTTP/2), so its output was there to leak the header.
    for target in ["h2", "hyper_util"] {
        assert!(
            targets.contains(target),
            "no trace output from {target}: {targets:?}"
        );
    }
    for (name, secret) in [("third_party", &key), ("other", &other)] {
        assert!(
            !output.contains(secret.as_str()),
            "{name} appears in the server's logs"
        );
        assert!(
            !responses.contains(secret.as_str()),
            "{name} appears in a response"
        );
        assert!(
            !cli_output.contains(secret.as_str()),
            "{name} appears in the CLI's output"
        );
    }
}
