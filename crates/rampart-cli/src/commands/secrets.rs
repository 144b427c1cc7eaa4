//! `rampart secrets set|list|rm` (F-VAULT): named secrets, stored encrypted, shown
//! only masked.

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_core::SystemClock;
use rampart_core::vault::{SecretName, Vault};
use rampart_crypto::SecretString;

use crate::bootstrap::{self, Migrations};
use crate::cli::{ConfigArg, ConfigOnly, SecretNameArg, SecretSetArgs};

use super::{config_failed, exit, load_config};

async fn open_vault(
    arg: &ConfigArg,
) -> anyhow::Result<Result<(Vault, rampart_store::Store), ExitCode>> {
    let config = match load_config(arg, None) {
        Ok(config) => config,
        Err(error) => return Ok(Err(config_failed(&error))),
    };
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Require).await?;
    let (keys, _) = bootstrap::unseal(&config, &store, false).await?;
    let vault = Vault::new(
        Arc::new(store.clone()),
        Arc::new(keys),
        Arc::new(SystemClock),
    );
    Ok(Ok((vault, store)))
}

/// Stores a secret read from `--file` or standard input (one trailing newline is
/// removed). The value is never echoed.
pub async fn set(args: &SecretSetArgs) -> anyhow::Result<ExitCode> {
    let name = SecretName::new(args.name.clone())?;
    let value = match &args.file {
        Some(path) => rampart_crypto::secret_file::read_string(path)?,
        None => {
            let mut buffer = String::new();
            std::io::stdin()
                .take(rampart_core::vault::MAX_VALUE_LEN as u64 + 2)
                .read_to_string(&mut buffer)
                .context("cannot read the secret from standard input")?;
            let trimmed = buffer.strip_suffix('\n').unwrap_or(&buffer);
            let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned();
            zeroize::Zeroize::zeroize(&mut buffer);
            SecretString::new(trimmed)
        }
    };
    if value.is_empty() {
        anyhow::bail!("refusing to store an empty secret");
    }
    let (vault, store) = match open_vault(&args.config).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    vault.set(&name, &value).await?;
    println!("stored {} ({})", name.as_str(), value.masked(4));
    store.close().await;
    Ok(ExitCode::from(exit::OK))
}

/// Lists secrets with masked values.
pub async fn list(args: &ConfigOnly) -> anyhow::Result<ExitCode> {
    let (vault, store) = match open_vault(&args.config).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let secrets = vault.list().await?;
    if secrets.is_empty() {
        println!("no secrets");
    }
    for secret in secrets {
        println!("{:<40} {}", secret.name.as_str(), secret.masked);
    }
    store.close().await;
    Ok(ExitCode::from(exit::OK))
}

/// Removes a secret.
pub async fn remove(args: &SecretNameArg) -> anyhow::Result<ExitCode> {
    let name = SecretName::new(args.name.clone())?;
    let (vault, store) = match open_vault(&args.config).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    vault.remove(&name).await?;
    println!("removed {}", name.as_str());
    store.close().await;
    Ok(ExitCode::from(exit::OK))
}
