//! `rampart demo` starts, prints URLs that answer, and proxies to its echo upstream.

use rampart_testkit::client::client;
use rampart_testkit::process::Rampart;

use crate::common::{bin, env};

#[tokio::test]
async fn demo_prints_working_urls_and_proxies_to_the_echo_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Rampart::spawn(
        &bin(),
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        &env(&[]),
    );
    let line = demo.wait_for_stdout("/echo/hello").await;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let echo: serde_json::Value = client()
        .get(&url)
        .header("x-rampart-user", "forged-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["service"], "rampart-demo-echo");
    assert_eq!(echo["path"], "/echo/hello");
    assert!(echo["headers"]["x-request-id"].is_string());
    assert!(
        echo["headers"].get("x-rampart-user").is_none(),
        "client identity header reached the upstream"
    );
    demo.terminate();
    assert_eq!(demo.wait().await.code(), Some(0));
}
