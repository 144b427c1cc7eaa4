//! `/metrics`: behind a bearer token on the main listener, or on its own listener;
//! requests counted by route and status with a latency histogram.

use rampart_testkit::client::client;
use rampart_testkit::process::Rampart;
use rampart_testkit::upstream::Upstream;

use crate::common::{bin, env, production_config, random_hex};

#[tokio::test]
async fn metrics_on_the_main_listener_require_the_token() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = random_hex(24);
    let config = production_config(
        dir.path(),
        &format!(
            "[upstreams.app]\nurl = \"{}\"\n\n[[routes]]\nname = \"app\"\npath_prefix = \"/app\"\nupstream = \"app\"\nauth = \"public\"\n",
            upstream.url()
        ),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[metrics]\nenabled = false\n", "");
    std::fs::write(&config, text).unwrap();
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(&[("RAMPART_METRICS_TOKEN", &token)]),
    );
    let addr = rampart.listening().await;
    let http = client();
    http.get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    http.get(format!("http://{addr}/app/x"))
        .send()
        .await
        .unwrap();
    http.get(format!("http://{addr}/nothing-here"))
        .send()
        .await
        .unwrap();

    let refused = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = http
        .get(format!("http://{addr}/metrics"))
        .bearer_auth("wrong-token-wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let scrape = http
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    let body = scrape.text().await.unwrap();
    assert!(
        body.contains(r#"rampart_http_requests_total{route="/healthz",status="200"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"rampart_http_requests_total{route="app",status="200"} 1"#),
        "{body}"
    );
    assert!(body.contains(r#"route="unmatched",status="404""#), "{body}");
    assert!(
        body.contains("rampart_http_request_duration_seconds_bucket"),
        "{body}"
    );
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

#[tokio::test]
async fn metrics_on_a_separate_loopback_listener() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[metrics]\nenabled = false\n",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    std::fs::write(&config, text).unwrap();
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(&[]),
    );
    let addr = rampart.listening().await;
    let http = client();
    // Not on the main listener...
    let main = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    // ...but on its own.
    let scrape = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape
            .text()
            .await
            .unwrap()
            .contains("rampart_http_requests_total")
    );
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}
