//! `rampart tokens create|list|revoke` and `rampart keys rotate --signing`, run as the
//! real binary against a production config (F-APITOKEN, F-ROTATE).

use std::io::Write as _;
use std::process::{Command, Stdio};

use rampart_testkit::process::{Rampart, run};
use reqwest::StatusCode;
use serde_json::Value;

use crate::api_auth::http;
use crate::common::{bin, env, production_config};

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
        .write_all(b"correct horse battery staple 42\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn rampart(args: &[&str]) -> (i32, String, String) {
    run(&bin(), args, &env(&[])).await
}

#[tokio::test]
async fn tokens_create_list_revoke_and_signing_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(
        dir.path(),
        "[roles.admin]\npermissions = [\"*\"]\n[roles.user]\npermissions = [\"reports:read\"]\n",
    );
    let config = config.to_str().unwrap();
    let (code, out, err) = rampart(&["migrate", "--config", config]).await;
    assert_eq!(code, 0, "{out}{err}");
    create_admin(config);

    // Create: the token is the last line of standard output, and only there.
    let (code, out, err) = rampart(&[
        "tokens",
        "create",
        "--user",
        "root",
        "--name",
        "ci",
        "--scopes",
        "reports:read",
        "--expires-in",
        "30d",
        "--config",
        config,
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("rmp_") && token.len() == 47, "{out}");
    assert!(!err.contains(&token));
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("tok_"))
        .unwrap()
        .to_owned();

    // The admin scope is refused; an unknown user is an error.
    let (code, _, err) = rampart(&[
        "tokens", "create", "--user", "root", "--name", "x", "--scopes", "admin", "--config",
        config,
    ])
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("admin"), "{err}");
    let (code, _, err) = rampart(&[
        "tokens",
        "create",
        "--user",
        "nobody",
        "--name",
        "x",
        "--scopes",
        "reports:read",
        "--config",
        config,
    ])
    .await;
    assert_eq!(code, 1, "{err}");

    // The token works against a server on the same database.
    let mut server = Rampart::spawn(&bin(), &["serve", "--config", config], &env(&[]));
    let addr = server.listening().await;
    let response = http()
        .get(format!("http://{addr}/api/v1/auth/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], "root");
    assert_eq!(me["method"], "api_token");
    let jwks_before: Value = http()
        .get(format!("http://{addr}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.terminate();
    assert_eq!(server.wait().await.code(), Some(0));

    // List shows it, never the value.
    let (code, out, _) = rampart(&["tokens", "list", "--config", config]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&id), "{out}");
    assert!(out.contains("user=root"), "{out}");
    assert!(!out.contains(&token[4..]), "{out}");

    // Revoke; again is an error.
    let (code, out, _) = rampart(&["tokens", "revoke", &id, "--config", config]).await;
    assert_eq!(code, 0, "{out}");
    let (code, _, _) = rampart(&["tokens", "revoke", &id, "--config", config]).await;
    assert_eq!(code, 1);
    let (_, out, _) = rampart(&["tokens", "list", "--config", config]).await;
    assert!(out.contains("no API tokens"), "{out}");

    // Signing key rotation: a new active key, the previous one kept for its grace.
    let old_kid = jwks_before["keys"][0]["kid"].as_str().unwrap().to_owned();
    let (code, out, err) = rampart(&["keys", "rotate", "--signing", "--config", config]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&old_kid), "{out}");
    let mut server = Rampart::spawn(&bin(), &["serve", "--config", config], &env(&[]));
    let addr = server.listening().await;
    let jwks: Value = http()
        .get(format!("http://{addr}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&old_kid.as_str()));
    server.terminate();
    assert_eq!(server.wait().await.code(), Some(0));
}
