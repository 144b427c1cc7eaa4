//! `rampart keys list` and `rampart keys rotate --master`.

use std::process::ExitCode;

use anyhow::Context as _;
use rampart_core::SystemClock;
use rampart_core::keys::DataKeys;
use rampart_crypto::MasterKey;
use rampart_crypto::SecretString;

use crate::bootstrap::{self, Migrations};
use crate::cli::{ConfigOnly, RotateArgs};

use super::{config_failed, exit, load_config};

/// Lists key ids, purposes and dates. Needs no master key and shows no material.
pub async fn list(args: &ConfigOnly) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config, None) {
        Ok(config) => config,
        Err(error) => return Ok(config_failed(&error)),
    };
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Require).await?;
    let keys = DataKeys::list_keys(&store).await?;
    if keys.is_empty() {
        println!("no keys: the instance is not initialized yet");
    } else {
        println!(
            "{:<28} {:<14} {:<22} retired",
            "key id", "purpose", "created"
        );
        for key in keys {
            println!(
                "{:<28} {:<14} {:<22} {}",
                key.id.as_str(),
                key.purpose.label(),
                format_time(key.created_at),
                key.retired_at.map_or_else(|| "-".to_owned(), format_time),
            );
        }
    }
    store.close().await;
    Ok(ExitCode::from(exit::OK))
}

/// Rotates keys. `--master`: re-wraps every data key under the key in
/// `RAMPART_NEW_MASTER_KEY_HEX` (data is not re-encrypted; nobody is logged out).
pub async fn rotate(args: &RotateArgs) -> anyhow::Result<ExitCode> {
    if args.signing {
        return Ok(super::unavailable::run(
            "keys rotate --signing",
            "F-ROTATE with the JWT signing keyring (identity)",
        ));
    }
    let config = match load_config(&args.config, None) {
        Ok(config) => config,
        Err(error) => return Ok(config_failed(&error)),
    };
    let new_hex = std::env::var("RAMPART_NEW_MASTER_KEY_HEX")
        .context("set RAMPART_NEW_MASTER_KEY_HEX to the new master key (64 hex characters)")?;
    let new_master = MasterKey::from_hex(&SecretString::new(new_hex))?;
    if new_master.is_placeholder() {
        anyhow::bail!(
            "the new master key is a placeholder value; generate one with: openssl rand -hex 32"
        );
    }
    let old_master = bootstrap::master_key(&config)?;
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Require).await?;
    let report = DataKeys::rewrap(&store, &old_master, &new_master, &SystemClock).await?;
    println!(
        "re-wrapped {} data keys under the new master key; point RAMPART_MASTER_KEY_PATH or RAMPART_MASTER_KEY_HEX at it and restart",
        report.keys
    );
    store.close().await;
    Ok(ExitCode::from(exit::OK))
}

fn format_time(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}
