//! Secret sources, their precedence, file modes and redaction.

use rampart_config::{Mode, SecretOrigin, Status, from_toml_str, guardrails};
use rampart_crypto::master_key::MasterKeyKind;

use crate::{KEY_HEX, PEPPER, env, load_env_err, open_file, problem, secret_file, toml_path};

#[test]
fn inline_beats_file_beats_secrets_file_beats_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    secret_file(&creds, "metrics.token", "from-credentials-0123456789abcdef");
    secret_file(&creds, "redis.url", "redis://from-credentials:6379");
    secret_file(&creds, "storage.url", "sqlite://from-credentials.db");
    let json = secret_file(
        dir.path(),
        "secrets.json",
        r#"{"metrics.token": "from-secrets-file-0123456789abcdef", "redis.url": "redis://from-secrets-file:6379", "storage.url": "sqlite://from-secrets-file.db"}"#,
    );
    let token_file = secret_file(dir.path(), "token", "from-token-file-0123456789abcdef\n");
    let text = format!(
        r#"
        [secrets]
        file = {json}
        [metrics]
        token_file = {token}
        [storage]
        url = "sqlite://inline.db"
        "#,
        json = toml_path(&json),
        token = toml_path(&token_file),
    );
    let vars = env(&[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())]);
    let config = from_toml_str(&text, &vars).unwrap();

    let storage = config.storage.url.as_ref().unwrap();
    assert_eq!(storage.value.expose_secret(), "sqlite://inline.db");
    assert_eq!(storage.origin, SecretOrigin::Inline { in_file: false });

    let token = config.metrics.token.as_ref().unwrap();
    assert_eq!(
        token.value.expose_secret(),
        "from-token-file-0123456789abcdef"
    );
    assert_eq!(token.origin, SecretOrigin::File(token_file.clone()));

    let redis = config.redis.as_ref().unwrap();
    assert_eq!(
        redis.url.value.expose_secret(),
        "redis://from-secrets-file:6379"
    );
    assert_eq!(redis.url.origin, SecretOrigin::SecretsFile(json.clone()));

    // Only in the credentials directory, but SMTP is not configured: the password
    // without a host is a problem, which shows the credential was found.
    secret_file(&creds, "email.smtp.password", "from-credentials-password");
    let err = from_toml_str("", &vars).unwrap_err();
    assert!(
        problem(&err, "email.smtp.host")
            .message
            .contains("credentials are set")
    );

    let config = from_toml_str("[email.smtp]\nhost = \"smtp.example.com\"\nusername = \"rampart\"\n[email]\nfrom = \"r@example.com\"\n", &vars).unwrap();
    let password = config
        .email
        .smtp
        .as_ref()
        .unwrap()
        .password
        .as_ref()
        .unwrap();
    assert_eq!(
        password.origin,
        SecretOrigin::Credentials(creds.join("email.smtp.password"))
    );
    assert_eq!(
        config.storage.url.unwrap().origin,
        SecretOrigin::Credentials(creds.join("storage.url"))
    );
}

#[test]
fn env_file_companion_is_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(
        dir.path(),
        "db",
        "postgres://rampart:Xk29fmQ1pz@db/rampart\n",
    );
    let config = from_toml_str(
        "[storage]\nbackend = \"postgres\"\n",
        &env(&[("RAMPART_STORAGE_URL_FILE", path.to_str().unwrap())]),
    )
    .unwrap();
    let url = config.storage.url.as_ref().unwrap();
    assert_eq!(url.origin, SecretOrigin::File(path.clone()));
    assert_eq!(
        url.value.expose_secret(),
        "postgres://rampart:Xk29fmQ1pz@db/rampart"
    );
    assert!(
        config
            .secret_files()
            .contains(&("storage.url_file".to_owned(), path))
    );
}

#[test]
fn value_and_file_together_is_an_error() {
    let err = load_env_err(
        "[redis]\nurl = \"redis://a:6379\"\n",
        &[("RAMPART_REDIS_URL_FILE", "/run/secrets/redis")],
    );
    let p = problem(&err, "redis.url");
    assert!(p.message.contains("both"));
    assert_eq!(p.fix, "keep one: remove redis.url or redis.url_file");
}

#[test]
fn open_secret_file_is_refused_with_the_chmod_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = open_file(dir.path(), "token", "s3cret-token-value-0123456789abcdef");
    let err = from_toml_str(
        &format!("[metrics]\ntoken_file = {}\n", toml_path(&path)),
        &Default::default(),
    )
    .unwrap_err();
    let p = problem(&err, "metrics.token_file");
    assert!(p.message.contains("mode 0644"), "{}", p.message);
    assert_eq!(p.fix, format!("chmod 600 {}", path.display()));
    assert!(!err.to_string().contains("s3cret"));
}

#[test]
fn secrets_file_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let open = open_file(dir.path(), "open.json", "{}");
    let err = from_toml_str(
        &format!("[secrets]\nfile = {}\n", toml_path(&open)),
        &Default::default(),
    )
    .unwrap_err();
    assert!(problem(&err, "secrets.file").fix.starts_with("chmod 600"));

    let unknown = secret_file(
        dir.path(),
        "unknown.json",
        r#"{"storage.uri": "x", "metrics.token": "y"}"#,
    );
    let err = from_toml_str(
        &format!("[secrets]\nfile = {}\n", toml_path(&unknown)),
        &Default::default(),
    )
    .unwrap_err();
    let p = problem(&err, "secrets.file");
    assert!(
        p.message
            .contains("unknown secret name \"storage.uri\"; did you mean \"storage.url\"?"),
        "{}",
        p.message
    );

    let nested = secret_file(
        dir.path(),
        "nested.json",
        r#"{"storage": {"url": "hunter2"}}"#,
    );
    let err = from_toml_str(
        &format!("[secrets]\nfile = {}\n", toml_path(&nested)),
        &Default::default(),
    )
    .unwrap_err();
    let p = problem(&err, "secrets.file");
    assert!(p.message.contains("flat JSON object"), "{}", p.message);
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn master_key_from_file_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = secret_file(dir.path(), "good.key", &format!("{KEY_HEX}\n"));
    let config = from_toml_str(
        &format!("master_key_path = {}\n", toml_path(&good)),
        &Default::default(),
    )
    .unwrap();
    let key = config.master_key().unwrap();
    assert_eq!(key.kind(), MasterKeyKind::Operator);
    assert_eq!(
        config.master_key.as_ref().unwrap().origin,
        SecretOrigin::File(good.clone())
    );
    assert!(
        config
            .secret_files()
            .contains(&("master_key_path".to_owned(), good))
    );

    let short = secret_file(dir.path(), "short.key", "abcdef");
    let err = from_toml_str(
        &format!("master_key_path = {}\n", toml_path(&short)),
        &Default::default(),
    )
    .unwrap_err();
    let p = problem(&err, "master_key_path");
    assert!(p.message.contains("64 hex characters"), "{}", p.message);
    assert!(p.fix.contains("openssl rand -hex 32"));
    assert!(!err.to_string().contains("abcdef"));

    let not_hex = secret_file(dir.path(), "nothex.key", &"zz".repeat(32));
    let err = from_toml_str(
        &format!("master_key_path = {}\n", toml_path(&not_hex)),
        &Default::default(),
    )
    .unwrap_err();
    assert!(problem(&err, "master_key_path").message.contains("hex"));

    let open = open_file(dir.path(), "open.key", KEY_HEX);
    let err = from_toml_str(
        &format!("master_key_path = {}\n", toml_path(&open)),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        problem(&err, "master_key_path").fix,
        format!("chmod 600 {}", open.display())
    );

    let err = load_env_err("", &[("RAMPART_MASTER_KEY_HEX", "1234")]);
    let p = problem(&err, "master_key_hex");
    assert_eq!(p.value.as_deref(), Some("[redacted]"));
    assert!(p.fix.contains("RAMPART_MASTER_KEY_HEX"));
}

#[test]
fn dev_mode_falls_back_to_the_development_key() {
    let config = from_toml_str("mode = \"dev\"", &Default::default()).unwrap();
    assert_eq!(config.mode, Mode::Dev);
    assert!(config.master_key.is_none());
    assert_eq!(
        config.master_key().unwrap().kind(),
        MasterKeyKind::Development
    );
    let production = from_toml_str("", &Default::default()).unwrap();
    assert!(production.master_key().is_none());
}

#[test]
fn master_key_inline_in_the_file_loads_but_fails_the_guardrail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.toml");
    std::fs::write(&path, format!("master_key_hex = \"{KEY_HEX}\"\n")).unwrap();
    let config = rampart_config::load(&rampart_config::LoadOptions {
        path: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        config.master_key.as_ref().unwrap().origin,
        SecretOrigin::Inline { in_file: true }
    );
    let check = guardrails(&config)
        .into_iter()
        .find(|c| c.id == "master_key.inline")
        .unwrap();
    assert_eq!(check.status, Status::Fail);
}

#[test]
fn secret_key_files_are_mode_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let cert = open_file(dir.path(), "cert.pem", "cert");
    let key = open_file(dir.path(), "key.pem", "key");
    let err = from_toml_str(
        &format!(
            "[server.tls]\ncert_path = {}\nkey_path = {}\n[jwt]\nsigning_key_path = {}\n",
            toml_path(&cert),
            toml_path(&key),
            toml_path(&dir.path().join("absent.pem")),
        ),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        problem(&err, "server.tls.key_path").fix,
        format!("chmod 600 {}", key.display())
    );
    assert!(
        problem(&err, "jwt.signing_key_path")
            .fix
            .contains("create the file")
    );
    assert!(
        !err.has_problem_at("server.tls.cert_path"),
        "certificates are public"
    );
}

#[test]
fn debug_of_a_config_reveals_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    secret_file(
        &creds,
        "email.smtp.password",
        "smtp-password-from-credentials",
    );
    secret_file(&creds, "auth.password.pepper", PEPPER);
    let json = secret_file(
        dir.path(),
        "secrets.json",
        r#"{"redis.url": "redis://:redis-pass-from-json@cache:6379"}"#,
    );
    let key_file = secret_file(dir.path(), "master.key", KEY_HEX);
    let tls_key = secret_file(dir.path(), "tls.key", "tls-private-key");
    let cert = secret_file(dir.path(), "tls.crt", "cert");
    let text = format!(
        r#"
        master_key_path = {key}
        [secrets]
        file = {json}
        [server.tls]
        cert_path = {cert}
        key_path = {tls_key}
        [metrics]
        token = "metrics-token-inline-0123456789abcdef"
        [email]
        from = "r@example.com"
        [email.smtp]
        host = "smtp.example.com"
        username = "rampart"
        "#,
        key = toml_path(&key_file),
        json = toml_path(&json),
        cert = toml_path(&cert),
        tls_key = toml_path(&tls_key),
    );
    let vars = env(&[
        ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()),
        ("RAMPART_STORAGE_URL", "sqlite://env-secret-db-path.db"),
    ]);
    let config = from_toml_str(&text, &vars).unwrap();
    assert_eq!(
        config.secret_origins().len(),
        6,
        "every secret kind is present"
    );
    let debug = format!("{config:?}");
    for secret in [
        KEY_HEX,
        "smtp-password-from-credentials",
        "redis-pass-from-json",
        "metrics-token-inline",
        "env-secret-db-path",
        PEPPER,
    ] {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
    }
    // The raw key bytes do not appear either (e.g. as a byte array).
    let key_bytes = format!("{:?}", config.master_key().unwrap().expose_secret());
    assert!(!debug.contains(&key_bytes));
    assert!(debug.contains("[redacted]"));
    let labels: Vec<String> = config.secret_files().into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        labels,
        ["master_key_path", "secrets.file", "server.tls.key_path"]
    );
}
