//! With every kind of secret source configured and logging at `trace`, no secret
//! value — nor a credential presented by a client — appears anywhere in the output.

use rampart_testkit::client::client;
use rampart_testkit::process::Rampart;

use crate::common::{bin, env, random_hex, write};

#[tokio::test]
async fn no_secret_value_reaches_the_logs_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    // 1. Master key from a key file (RAMPART_MASTER_KEY_PATH).
    let master = random_hex(32);
    let master_path = dir.path().join("master.key");
    write(&master_path, &master, 0o600);
    // 2. Metrics token from an environment variable.
    let metrics_token = random_hex(24);
    // 3. SQLite URL from a `_FILE` companion (the file name is the secret marker).
    let db_marker = random_hex(12);
    let url_path = dir.path().join("storage.url");
    write(
        &url_path,
        &format!("sqlite://{}/{db_marker}.db", data.display()),
        0o600,
    );
    // 4. Redis URL (with a password) from the JSON secrets file.
    let redis_password = random_hex(16);
    let secrets_path = dir.path().join("secrets.json");
    write(
        &secrets_path,
        &format!(r#"{{"redis.url": "redis://:{redis_password}@127.0.0.1:6379"}}"#),
        0o600,
    );
    // 5. SMTP password from systemd's $CREDENTIALS_DIRECTORY.
    let smtp_password = random_hex(16);
    let credentials = dir.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    write(
        &credentials.join("email.smtp.password"),
        &smtp_password,
        0o400,
    );

    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            r#"mode = "production"
data_dir = "{data}"

[server]
listen = "127.0.0.1:0"

[secrets]
file = "{secrets}"

[storage]
url_file = "{url}"

[email]
from = "Rampart <rampart@example.org>"

[email.smtp]
host = "127.0.0.1"
username = "rampart"
"#,
            data = data.display(),
            secrets = secrets_path.display(),
            url = url_path.display(),
        ),
    )
    .unwrap();

    let mut rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(&[
            ("RAMPART_LOGGING_LEVEL", "trace"),
            ("RAMPART_MASTER_KEY_PATH", master_path.to_str().unwrap()),
            ("RAMPART_METRICS_TOKEN", &metrics_token),
            ("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap()),
        ]),
    );
    let addr = rampart.listening().await;

    // Credentials presented by clients must not be logged either.
    let bearer = random_hex(20);
    let cookie = random_hex(20);
    let query_token = random_hex(20);
    let http = client();
    for path in ["/healthz", "/readyz", "/nope", "/api/v1/anything"] {
        let _ = http
            .get(format!("http://{addr}{path}?access_token={query_token}"))
            .header("authorization", format!("Bearer {bearer}"))
            .header("cookie", format!("__Host-rampart_session={cookie}"))
            .send()
            .await
            .unwrap();
    }
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));

    let output = rampart.all_output();
    assert!(
        output
            .lines()
            .any(|l| l.contains("\"level\":\"TRACE\"") && l.contains("effective configuration")),
        "trace logging was not active"
    );
    for (name, secret) in [
        ("master key", &master),
        ("metrics token", &metrics_token),
        ("storage url", &db_marker),
        ("redis password", &redis_password),
        ("smtp password", &smtp_password),
        ("bearer token", &bearer),
        ("session cookie", &cookie),
        ("query token", &query_token),
    ] {
        assert!(
            !output.contains(secret.as_str()),
            "the {name} appears in the logs"
        );
    }
}
