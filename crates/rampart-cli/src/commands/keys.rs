//! `rampart keys list`, `rampart keys rotate --signing` and `rampart keys rotate
//! --master`.

use std::process::ExitCode;

use anyhow::Context as _;
use std::sync::Arc;

use rampart_core::audit::{AuditEvent, EventKind, Outcome};
use rampart_core::keys::DataKeys;
use rampart_core::{Clock, SystemClock};
use rampart_crypto::MasterKey;
use rampart_crypto::SecretString;
use rampart_identity::tokens::SigningKeys;

use crate::bootstrap::{self, Migrations};
use crate::cli::{ConfigOnly, RotateArgs};
use crate::services;

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
        return rotate_signing(args).await;
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

/// `--signing`: a new active JWT signing key; the previous one keeps verifying for
/// `jwt.rotation_grace` (at least the access-token lifetime), so nobody is logged out.
/// Running servers verify it at once (an unknown kid reloads the keyring) and sign
/// with it at once when Redis is configured (the rotation is published on the
/// fan-out), else within the keyring refresh interval. Audited as `key.rotated`.
async fn rotate_signing(args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config, None) {
        Ok(config) => config,
        Err(error) => return Ok(config_failed(&error)),
    };
    if config.jwt.danger_ephemeral_keys {
        anyhow::bail!(
            "jwt.danger_ephemeral_keys is set: the signing key lives in the server's memory and changes at every start; there is no stored keyring to rotate"
        );
    }
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Require).await?;
    let (keys, _) = bootstrap::unseal(&config, &store, false).await?;
    let keys = Arc::new(keys);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = services::start_audit(&config, &store, &keys, Arc::clone(&clock)).await?;
    let signing = SigningKeys::open(
        &config.jwt,
        Arc::new(store.clone()),
        Arc::clone(&keys),
        Arc::clone(&clock),
    )
    .await
    .context("cannot open the JWT signing keyring")?;
    let rotation = signing.rotate().await;
    if rotation.is_ok() {
        // Running servers reload the keyring at once (and sign with the new key)
        // instead of within the refresh interval.
        let fanout = services::fanout(&config, services::FanoutRole::Command)?;
        fanout.publish(rampart_identity::fanout::Invalidation::SigningKeys);
        services::flush_fanout(&fanout).await;
    }
    let recorded = match &rotation {
        Ok(rotation) => {
            audit
                .record(
                    AuditEvent::new(EventKind::KeyRotated, Outcome::Success)
                        .actor("cli")
                        .target(rotation.active_kid.clone())
                        .detail("purpose", "jwt-signing")
                        .detail("previous", rotation.previous_kid.clone())
                        .detail(
                            "previous_valid_until",
                            format_time(rotation.previous_valid_until),
                        ),
                )
                .await
        }
        Err(_) => Ok(()),
    };
    audit
        .shutdown()
        .await
        .context("cannot flush the audit log")?;
    store.close().await;
    let rotation = rotation.context("rotating the signing key failed")?;
    recorded?;
    println!(
        "new signing key {} is active; tokens signed by {} stay valid until {}. Running servers pick the new key up {}.",
        rotation.active_kid,
        rotation.previous_kid,
        format_time(rotation.previous_valid_until),
        if config.redis.is_some() {
            "now (published on the revocation fan-out)".to_owned()
        } else {
            format!(
                "within {}s",
                rampart_identity::tokens::REFRESH_INTERVAL.as_secs()
            )
        },
    );
    Ok(ExitCode::from(exit::OK))
}

fn format_time(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}
