//! `rampart audit verify|export` against a log written by a real server.

use rampart_testkit::process::{Rampart, run};

use crate::common::{bin, env, production_config};

async fn serve_once(config: &str) {
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config],
        &env(&[]),
    );
    rampart.listening().await;
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

#[tokio::test]
async fn verify_passes_an_intact_log_and_names_the_first_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let config = production_config(
        dir.path(),
        &format!(
            "[audit]\npath = \"{}\"\ncheckpoint_every = 1\n",
            file.display()
        ),
    );
    let config = config.to_str().unwrap();
    serve_once(config).await;
    serve_once(config).await;

    let (code, stdout, stderr) =
        run(&bin(), &["audit", "verify", "--config", config], &env(&[])).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("intact:"), "{stdout}");

    // Edit the first record in the file: verification names it.
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = text.replacen("\"instance.initialized\"", "\"config.reloaded\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&file, tampered).unwrap();
    let (code, stdout, _) = run(&bin(), &["audit", "verify", "--config", config], &env(&[])).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("first bad record"), "{stdout}");
    assert!(stdout.contains("seq 1"), "{stdout}");
}

#[tokio::test]
async fn verify_detects_a_deleted_database_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "[audit]\ncheckpoint_every = 1\n");
    let config = config.to_str().unwrap();
    serve_once(config).await;
    serve_once(config).await;
    // Delete the first record directly in SQLite.
    let db = dir.path().join("data/rampart.db");
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM audit_records WHERE seq = (SELECT MIN(seq) FROM audit_records)'); c.commit()",
            db.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, stdout, _) = run(&bin(), &["audit", "verify", "--config", config], &env(&[])).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("first bad record"), "{stdout}");
}

#[tokio::test]
async fn export_writes_json_lines_since_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "");
    let config = config.to_str().unwrap();
    serve_once(config).await;
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
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["kind"] == "instance.initialized"),
        "{stdout}"
    );

    let (code, stdout, _) = run(
        &bin(),
        &[
            "audit",
            "export",
            "--since",
            "2999-01-01T00:00:00Z",
            "--config",
            config,
        ],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 0);
    assert!(stdout.trim().is_empty(), "{stdout}");

    let (code, _, stderr) = run(
        &bin(),
        &[
            "audit",
            "export",
            "--since",
            "yesterday",
            "--config",
            config,
        ],
        &env(&[]),
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("RFC 3339"), "{stderr}");
}
