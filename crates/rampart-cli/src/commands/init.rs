//! `rampart init --dir DIR` (F-INIT): a production configuration and fresh secrets.
//!
//! Writes `rampart.toml` (commented, production mode, no secret inside it), and the
//! secret files it refers to — master key, JWT signing key, metrics token — each with
//! mode 0600, created exclusively so nothing is ever overwritten. Prints the next steps.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use rampart_crypto::jwt::JwtSigningKey;
use rampart_crypto::master_key::MasterKey;
use rampart_crypto::secret_file;
use zeroize::Zeroize as _;

use crate::bootstrap::{self, Migrations};
use crate::cli::InitArgs;

use super::exit;

/// File names inside the init directory.
pub const CONFIG_FILE: &str = "rampart.toml";
/// The master key file (64 hex characters).
pub const MASTER_KEY_FILE: &str = "master.key";
/// The Ed25519 JWT signing key (PKCS#8 PEM).
pub const SIGNING_KEY_FILE: &str = "jwt-signing-key.pem";
/// The bearer token protecting `/metrics`.
pub const METRICS_TOKEN_FILE: &str = "metrics.token";

/// Creates the directory and its files, then initializes the database: applies the
/// migrations and generates the data keys, sealed with the new master key.
pub async fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let dir = absolute(&args.dir)?;
    prepare_dir(&dir)?;
    let data_dir = dir.join("data");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;

    let master = MasterKey::generate()?;
    let mut master_hex = master.to_hex().expose_secret().to_owned();
    master_hex.push('\n');
    secret_file::write_new(&dir.join(MASTER_KEY_FILE), master_hex.as_bytes())
        .context("cannot write the master key")?;
    zeroize_string(master_hex);

    let signing = JwtSigningKey::generate()?;
    let pem = signing
        .to_pkcs8_pem()
        .map_err(|e| anyhow::anyhow!("cannot encode the signing key: {e}"))?;
    secret_file::write_new(&dir.join(SIGNING_KEY_FILE), pem.expose_secret().as_bytes())
        .context("cannot write the signing key")?;

    let token = rampart_crypto::random::token::<32>()?;
    secret_file::write_new(
        &dir.join(METRICS_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
    )
    .context("cannot write the metrics token")?;
    zeroize_string(token);

    let config_path = dir.join(CONFIG_FILE);
    fs::write(&config_path, production_config(&dir))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    fs::set_permissions(&config_path, fs::Permissions::from_mode(0o640))?;

    // Initialize the instance from the file just written, exactly as serve will read it.
    let config = rampart_config::load(&rampart_config::LoadOptions {
        path: Some(config_path.clone()),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("the generated configuration does not load:\n{e}"))?;
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Apply).await?;
    bootstrap::unseal(&config, &store, true).await?;
    store.close().await;

    println!(
        r#"Initialized {dir}

  {config}   production configuration (commented; no secrets inside)
  {master}       master key, mode 0600 — back it up offline; without it the data is unreadable
  {signing}   Ed25519 JWT signing key, mode 0600 (kid {kid})
  {metrics}     bearer token for /metrics, mode 0600
  data/                data directory, mode 0700: the database is created, migrated, and
                       its data keys are generated and sealed with the master key

Next steps:
  1. Review {config_path}: set public_url, add your [upstreams] and [[routes]],
     and decide on TLS (server.tls) or a TLS-terminating proxy (server.trusted_proxies).
  2. rampart doctor --config {config_path}
  3. rampart serve --config {config_path}
  4. Install deploy/rampart.service (systemd) to run it as a service."#,
        dir = dir.display(),
        config = CONFIG_FILE,
        master = MASTER_KEY_FILE,
        signing = SIGNING_KEY_FILE,
        metrics = METRICS_TOKEN_FILE,
        kid = signing.kid(),
        config_path = config_path.display(),
    );
    Ok(ExitCode::from(exit::OK))
}

fn absolute(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty; choose a new directory (init never overwrites keys)",
                    dir.display()
                );
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display())),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", dir.display())),
    }
}

fn zeroize_string(mut text: String) {
    text.zeroize();
}

/// The commented production configuration written by init.
pub fn production_config(dir: &Path) -> String {
    format!(
        r#"# Rampart configuration, written by `rampart init`.
# Reference: docs/CONFIG.md. Every key can also be set with RAMPART_<SECTION>_<KEY>
# environment variables (e.g. RAMPART_SERVER_LISTEN). Secrets never go in this file:
# they are read from the files below (mode 0600), the environment, a JSON secrets
# file ([secrets] file) or systemd's $CREDENTIALS_DIRECTORY.

mode = "production"

# Where Rampart keeps its state: the SQLite database and its write-ahead log.
data_dir = "{data}"

# The external URL of Rampart (used for links in mails, redirects and origin
# checks). Set it to the https:// address users reach Rampart at.
# public_url = "https://auth.example.com"

# The 32-byte master key (64 hex characters). It wraps every data key; keep a copy
# offline. Alternatively set RAMPART_MASTER_KEY_HEX.
master_key_path = "{dir}/{master}"

[server]
# Loopback by default: put a TLS-terminating reverse proxy in front (deploy/ has
# nginx, Caddy and Traefik examples) and list it in trusted_proxies, or configure
# [server.tls] to terminate TLS here.
listen = "127.0.0.1:9171"
trusted_proxies = []
header_read_timeout = "10s"
request_timeout = "60s"
body_limit = "1MiB"

# [server.tls]
# cert_path = "/etc/rampart/tls/fullchain.pem"
# key_path = "/etc/rampart/tls/privkey.pem"   # mode 0600

[logging]
level = "info"
format = "json"

[storage]
# "sqlite" (embedded, single node) or "postgres" (replicas). For postgres set the
# URL through RAMPART_STORAGE_URL or storage.url_file, with sslmode=require.
backend = "sqlite"

[metrics]
# /metrics on the main listener requires this bearer token.
enabled = true
token_file = "{dir}/{metrics}"

[session]
same_site = "lax"
idle_timeout = "30m"
absolute_timeout = "12h"

[auth]
registration = "invite_only"

[jwt]
access_ttl = "15m"
signing_key_path = "{dir}/{signing}"

# Your applications. Example:
# [upstreams.app]
# url = "http://127.0.0.1:3000"
#
# [[routes]]
# name = "app"
# path_prefix = "/"
# upstream = "app"
# auth = "required"
"#,
        data = dir.join("data").display(),
        dir = dir.display(),
        master = MASTER_KEY_FILE,
        metrics = METRICS_TOKEN_FILE,
        signing = SIGNING_KEY_FILE,
    )
}
