//! `rampart init` writes a production setup that `serve` starts unchanged and that
//! `doctor` passes except for deployment decisions; doctor's exit codes and JSON.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use rampart_testkit::client::client;
use rampart_testkit::process::{Rampart, run};

use crate::common::{bin, env};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn init(dir: &Path) -> String {
    let (code, stdout, stderr) =
        run(&bin(), &["init", "--dir", dir.to_str().unwrap()], &env(&[])).await;
    assert_eq!(code, 0, "{stderr}");
    stdout
}

async fn doctor_json(config: &Path, extra_env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let (code, stdout, stderr) = run(
        &bin(),
        &["doctor", "--json", "--config", config.to_str().unwrap()],
        &env(extra_env),
    )
    .await;
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (code, report)
}

#[tokio::test]
async fn init_writes_private_secret_files_and_prints_next_steps() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("etc-rampart");
    let stdout = init(&dir).await;
    assert!(stdout.contains("Next steps"), "{stdout}");
    for secret in ["master.key", "jwt-signing-key.pem", "metrics.token"] {
        assert_eq!(mode(&dir.join(secret)), 0o600, "{secret}");
    }
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("data")), 0o700);
    let config = std::fs::read_to_string(dir.join("rampart.toml")).unwrap();
    assert!(config.contains("mode = \"production\""));
    assert!(
        config.lines().filter(|l| l.starts_with('#')).count() > 10,
        "config is commented"
    );
    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert!(!config.contains(key.trim()), "no secret inside the config");
    let pem = std::fs::read_to_string(dir.join("jwt-signing-key.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[tokio::test]
async fn init_refuses_a_non_empty_directory() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("something"), "x").unwrap();
    let (code, _, stderr) = run(
        &bin(),
        &["init", "--dir", root.path().to_str().unwrap()],
        &env(&[]),
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("not empty"), "{stderr}");
}

#[tokio::test]
async fn serve_starts_with_the_init_config_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rampart");
    init(&dir).await;
    let config = dir.join("rampart.toml");
    // No environment overrides at all: the file as written by init (it listens on
    // 127.0.0.1:9171; this is the only test that uses that port).
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--config", config.to_str().unwrap()],
        &Default::default(),
    );
    let addr = rampart.listening().await;
    assert_eq!(addr.to_string(), "127.0.0.1:9171");
    let response = client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

#[tokio::test]
async fn doctor_on_the_init_config_warns_only_about_deployment_decisions() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rampart");
    init(&dir).await;
    let (code, report) = doctor_json(&dir.join("rampart.toml"), &[]).await;
    assert_eq!(code, 1, "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    let not_passing: Vec<&str> = checks
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(not_passing, ["tls.none"], "{report:#}");
    for check in checks {
        assert!(check["finding"].as_str().is_some_and(|f| !f.is_empty()));
        assert!(check["fix"].is_string());
    }
    // Every secret file is checked.
    let files: Vec<&str> = checks
        .iter()
        .filter(|c| c["id"] == "file.permissions")
        .map(|c| c["finding"].as_str().unwrap())
        .collect();
    for name in ["master.key", "jwt-signing-key.pem", "metrics.token"] {
        assert!(
            files.iter().any(|f| f.contains(name)),
            "{name} not checked: {files:?}"
        );
    }
}

#[tokio::test]
async fn doctor_passes_when_the_deployment_decision_is_made() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rampart");
    init(&dir).await;
    let (code, report) = doctor_json(
        &dir.join("rampart.toml"),
        &[("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1/32")],
    )
    .await;
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["summary"]["warn"], 0);
}

#[tokio::test]
async fn doctor_fails_an_open_secret_file_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rampart");
    init(&dir).await;
    let token = dir.join("metrics.token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = doctor_json(&dir.join("rampart.toml"), &[]).await;
    assert_eq!(code, 2, "{report:#}");
    let text = report.to_string();
    assert!(
        text.contains(&format!("chmod 600 {}", token.display())),
        "{report:#}"
    );
}

#[tokio::test]
async fn doctor_text_report_and_failure_exit_code() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rampart");
    init(&dir).await;
    let config = dir.join("rampart.toml");
    let (code, stdout, _) = run(
        &bin(),
        &["doctor", "--config", config.to_str().unwrap()],
        &env(&[("RAMPART_AUTH_DANGER_ACCEPT_QUERY_TOKENS", "true")]),
    )
    .await;
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("FAIL  auth.query_tokens"), "{stdout}");
    assert!(stdout.contains("fix:"), "{stdout}");
}
