//! `rampart serve`: guardrails refuse production starts, the master key rules, and
//! graceful shutdown.

use rampart_testkit::client::client;
use rampart_testkit::process::{Rampart, run};
use rampart_testkit::upstream::Upstream;

use crate::common::{bin, env, production_config, write};

#[tokio::test]
async fn production_refuses_an_exposed_listener_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "");
    let (code, _, stderr) = run(
        &bin(),
        &["serve", "--config", config.to_str().unwrap()],
        &env(&[("RAMPART_SERVER_LISTEN", "0.0.0.0:0")]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("[listen.exposed]"), "{stderr}");
    assert!(stderr.contains("fix:"), "{stderr}");
}

#[tokio::test]
async fn production_without_a_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"production\"\ndata_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let (code, _, stderr) = run(
        &bin(),
        &["serve", "--config", config.to_str().unwrap()],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("[master_key.missing]"), "{stderr}");
}

#[tokio::test]
async fn an_open_master_key_file_is_refused_with_the_chmod_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "");
    let key = dir.path().join("master.key");
    write(&key, &crate::common::random_hex(32), 0o644);
    let (code, _, stderr) = run(
        &bin(),
        &["serve", "--config", config.to_str().unwrap()],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", key.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn malformed_master_keys_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    for (value, expect) in [
        ("abcdef", "64 hex characters"),
        (&"zz".repeat(32)[..], "hex"),
    ] {
        let (code, _, stderr) = run(
            &bin(),
            &["serve"],
            &env(&[
                ("RAMPART_MODE", "production"),
                (
                    "RAMPART_DATA_DIR",
                    dir.path().join("data").to_str().unwrap(),
                ),
                ("RAMPART_SERVER_LISTEN", "127.0.0.1:0"),
                ("RAMPART_MASTER_KEY_HEX", value),
            ]),
        )
        .await;
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert!(!stderr.contains(value), "the key was echoed: {stderr}");
    }
}

#[tokio::test]
async fn an_invalid_config_names_key_value_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "[session]\nidle_timeout = \"ten minutes\"\n");
    let (code, _, stderr) = run(
        &bin(),
        &["serve", "--config", config.to_str().unwrap()],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("session.idle_timeout"), "{stderr}");
    assert!(stderr.contains("ten minutes"), "{stderr}");
    assert!(stderr.contains("fix"), "{stderr}");
}

#[tokio::test]
async fn dev_mode_warns_about_the_development_key_on_every_start() {
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let mut rampart = Rampart::spawn(
            &bin(),
            &["serve"],
            &env(&[
                ("RAMPART_MODE", "dev"),
                ("RAMPART_DATA_DIR", dir.path().to_str().unwrap()),
                ("RAMPART_SERVER_LISTEN", "127.0.0.1:0"),
            ]),
        );
        rampart.listening().await;
        let warning = rampart
            .wait_for_log(|v| v["check"] == "master_key.missing")
            .await;
        assert_eq!(warning["level"], "WARN");
        rampart.terminate();
        assert!(rampart.wait().await.success());
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let upstream = Upstream::start_gated().await;
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(
        dir.path(),
        &format!(
            "[upstreams.slow]\nurl = \"{}\"\n\n[[routes]]\nname = \"slow\"\npath_prefix = \"/slow\"\nupstream = \"slow\"\nauth = \"public\"\n",
            upstream.url()
        ),
    );
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(&[]),
    );
    let addr = rampart.listening().await;

    let in_flight = tokio::spawn(async move {
        client()
            .get(format!("http://{addr}/slow/work"))
            .send()
            .await
            .unwrap()
    });
    upstream.wait_for_requests(1).await;
    rampart.terminate();
    rampart
        .wait_for_log(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        })
        .await;
    // Draining: the listener is closed, so new connections are refused...
    assert!(
        client()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    // ...while the request in flight completes normally.
    upstream.release(1);
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"upstream":"ok"}"#);
    let status = rampart.wait().await;
    assert_eq!(status.code(), Some(0));
}
