//! Storage through the binary: migrations policy, the key hierarchy's seals, keys
//! list, the vault commands, and `/readyz` following the database.

use rampart_store::Backend;
use rampart_store::testing::TestDb;
use rampart_testkit::client::client;
use rampart_testkit::process::{Rampart, run};
use rampart_testkit::tcp_proxy::TcpProxy;

use crate::common::{bin, env, production_config, random_hex, write};

fn config_arg(path: &std::path::Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn production_refuses_a_schema_that_is_behind_unless_told_to_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(dir.path(), ""));
    let (code, _, stderr) = run(&bin(), &["serve", "--config", &config], &env(&[])).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("migration(s) pending"), "{stderr}");
    assert!(stderr.contains("rampart migrate"), "{stderr}");

    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", &config],
        &env(&[]),
    );
    rampart.listening().await;
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

#[tokio::test]
async fn migrate_dry_run_lists_pending_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(dir.path(), ""));
    let (code, stdout, stderr) = run(
        &bin(),
        &["migrate", "--dry-run", "--config", &config],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("0 applied"), "{stdout}");
    let pending = stdout.lines().filter(|l| l.starts_with("pending")).count();
    assert!(pending >= 2, "{stdout}");
    // Nothing changed: the same dry run reports the same.
    let (_, again, _) = run(
        &bin(),
        &["migrate", "--dry-run", "--config", &config],
        &env(&[]),
    )
    .await;
    assert_eq!(again, stdout);

    let (code, applied, stderr) = run(&bin(), &["migrate", "--config", &config], &env(&[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        applied.lines().filter(|l| l.starts_with("applied")).count(),
        pending
    );
    let (_, after, _) = run(
        &bin(),
        &["migrate", "--dry-run", "--config", &config],
        &env(&[]),
    )
    .await;
    assert!(
        after.contains(&format!("{pending} applied, 0 pending")),
        "{after}"
    );
}

#[tokio::test]
async fn production_refuses_a_store_sealed_with_the_development_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A dev start seals the new instance with the public development key.
    let mut dev = Rampart::spawn(
        &bin(),
        &["serve"],
        &env(&[
            ("RAMPART_MODE", "dev"),
            ("RAMPART_DATA_DIR", data.to_str().unwrap()),
            ("RAMPART_SERVER_LISTEN", "127.0.0.1:0"),
        ]),
    );
    dev.listening().await;
    dev.terminate();
    assert_eq!(dev.wait().await.code(), Some(0));

    let config = config_arg(&production_config(dir.path(), ""));
    let (code, _, stderr) = run(&bin(), &["serve", "--config", &config], &env(&[])).await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("sealed with the public development master key"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_wrong_master_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(dir.path(), ""));
    let (code, _, stderr) = run(&bin(), &["migrate", "--config", &config], &env(&[])).await;
    assert_eq!(code, 0, "{stderr}");
    let mut rampart = Rampart::spawn(&bin(), &["serve", "--config", &config], &env(&[]));
    rampart.listening().await;
    rampart.terminate();
    rampart.wait().await;

    write(&dir.path().join("master.key"), &random_hex(32), 0o600);
    let (code, _, stderr) = run(&bin(), &["serve", "--config", &config], &env(&[])).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("master key does not match"), "{stderr}");
}

#[tokio::test]
async fn keys_list_shows_ids_purposes_and_dates_never_material() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(dir.path(), ""));
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", &config],
        &env(&[]),
    );
    rampart.listening().await;
    rampart.terminate();
    rampart.wait().await;

    let (code, stdout, stderr) =
        run(&bin(), &["keys", "list", "--config", &config], &env(&[])).await;
    assert_eq!(code, 0, "{stderr}");
    for purpose in ["pii", "vault", "totp", "audit"] {
        assert!(stdout.contains(purpose), "{purpose} missing:\n{stdout}");
    }
    // Rows: id, purpose, an RFC 3339 date; no long hex or base64 material.
    for line in stdout.lines().skip(1) {
        assert!(
            line.contains("T") && line.contains('Z') || line.contains("+00:00"),
            "{line}"
        );
        assert!(
            line.split_whitespace().all(|w| w.len() < 40),
            "looks like key material: {line}"
        );
    }
}

#[tokio::test]
async fn vault_commands_store_encrypted_and_show_only_masks() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(dir.path(), ""));
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", &config],
        &env(&[]),
    );
    rampart.listening().await;
    rampart.terminate();
    rampart.wait().await;

    let value = format!("sk_live_{}", random_hex(16));
    let value_file = dir.path().join("value");
    write(&value_file, &format!("{value}\n"), 0o600);
    let (code, stdout, stderr) = run(
        &bin(),
        &[
            "secrets",
            "set",
            "third_party",
            "--file",
            value_file.to_str().unwrap(),
            "--config",
            &config,
        ],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains(&value), "the value was echoed: {stdout}");

    let (code, stdout, _) = run(&bin(), &["secrets", "list", "--config", &config], &env(&[])).await;
    assert_eq!(code, 0);
    let tail = &value[value.len() - 4..];
    assert!(stdout.contains(&format!("••••{tail}")), "{stdout}");
    assert!(!stdout.contains(&value[..12]), "{stdout}");

    // The raw database file holds no plaintext.
    let raw = std::fs::read(dir.path().join("data/rampart.db")).unwrap();
    assert!(
        !raw.windows(value.len()).any(|w| w == value.as_bytes()),
        "plaintext found in the database file"
    );

    let (code, _, _) = run(
        &bin(),
        &["secrets", "rm", "third_party", "--config", &config],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 0);
    let (_, stdout, _) = run(&bin(), &["secrets", "list", "--config", &config], &env(&[])).await;
    assert!(stdout.contains("no secrets"), "{stdout}");
}

#[tokio::test]
async fn readyz_follows_the_database_and_names_it_when_unreachable() {
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let url = db.options().url.expose_secret().to_owned();
    let target = "127.0.0.1:5432".parse().unwrap();
    let mut proxy = TcpProxy::start(target).await;
    let proxied_url = url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
    assert_ne!(proxied_url, url, "test URL must point at 127.0.0.1:5432");

    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(
        dir.path(),
        "[storage]\nbackend = \"postgres\"\nacquire_timeout = \"1s\"\nmin_connections = 0\n",
    ));
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", &config],
        &env(&[("RAMPART_STORAGE_URL", &proxied_url)]),
    );
    let addr = rampart.listening().await;
    let http = client();
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    proxy.cut();
    let down = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storage")
    );
    assert!(
        !body.to_string().contains(&proxy.addr.to_string()),
        "internal address leaked"
    );

    // Once the database is reachable again the pool reconnects; readiness is a
    // condition to poll for, bounded in time.
    proxy.restore().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let back = http
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        if back.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became ready again: {}",
            rampart.stderr().join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

#[tokio::test]
async fn readyz_names_redis_when_it_is_configured_and_unreachable() {
    let mut redis = rampart_testkit::redis_server::RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_arg(&production_config(dir.path(), ""));
    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", &config],
        &env(&[("RAMPART_REDIS_URL", &redis.url())]),
    );
    let addr = rampart.listening().await;
    let http = client();
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    redis.kill();
    let down = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("redis"),
        "{body}"
    );

    redis.restart().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let back = http
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        if back.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became ready again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}
