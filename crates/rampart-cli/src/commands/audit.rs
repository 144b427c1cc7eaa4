//! `rampart audit verify` and `rampart audit export` (F-AUDIT).

use std::process::ExitCode;

use anyhow::Context as _;
use rampart_core::audit::{
    self, Start, Verification, VerifyOptions, export_file, export_store, trusted_keys, verify_file,
    verify_sinks,
};
use rampart_crypto::signing::PublicKey;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt as _;

use crate::bootstrap::{self, Migrations};
use crate::cli::{AuditExportArgs, AuditVerifyArgs};

use super::{config_failed, exit, load_config};

/// Verifies the hash chain and signed checkpoints. Exit 0 when intact; 1 naming the
/// first bad record otherwise.
pub async fn verify(args: &AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let verification = match (&args.file, &args.public_key) {
        (Some(file), Some(hex)) => {
            let key = PublicKey::from_hex(hex).context("--public-key must be 64 hex characters")?;
            let options = VerifyOptions {
                keys: vec![key],
                start: Start::Anywhere,
            };
            verify_file(file, &options).await?
        }
        _ => {
            let config = match load_config(&args.config, None) {
                Ok(config) => config,
                Err(error) => return Ok(config_failed(&error)),
            };
            let store = bootstrap::connect(&config).await?;
            bootstrap::ensure_schema(&store, Migrations::Require).await?;
            let (keys, _) = bootstrap::unseal(&config, &store, false).await?;
            let trusted = trusted_keys(&store, &keys).await?;
            let verification = match &args.file {
                Some(file) => {
                    let options = VerifyOptions {
                        keys: trusted,
                        start: Start::Anywhere,
                    };
                    verify_file(file, &options).await?
                }
                None => {
                    verify_sinks(
                        &store,
                        config.audit.database,
                        config.audit.path.as_deref(),
                        &VerifyOptions::new(trusted),
                    )
                    .await?
                }
            };
            store.close().await;
            verification
        }
    };
    match verification {
        Verification::Intact(report) => {
            println!(
                "intact: {} records, {} checkpoints, last record {}, last checkpoint {}",
                report.records,
                report.checkpoints,
                report
                    .head
                    .map_or_else(|| "-".to_owned(), |h| h.seq.to_string()),
                report
                    .last_checkpoint
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            );
            if report.unsigned > 0 {
                println!(
                    "note: the last {} record(s) are chained but not yet covered by a signed checkpoint",
                    report.unsigned
                );
            }
            Ok(ExitCode::from(exit::OK))
        }
        Verification::Broken(finding) => {
            println!("TAMPERED: first bad record: {finding}");
            Ok(ExitCode::from(exit::FAILURE))
        }
    }
}

/// Exports records (and the checkpoints among them) as JSON lines.
pub async fn export(args: &AuditExportArgs) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        Some(text) => OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .with_context(|| {
            format!("--since {text:?} is not an RFC 3339 time such as 2026-01-31T00:00:00Z")
        })?,
        None => OffsetDateTime::UNIX_EPOCH,
    };
    let config = match load_config(&args.config, None) {
        Ok(config) => config,
        Err(error) => return Ok(config_failed(&error)),
    };
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &args.out {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let summary = if config.audit.database {
        let store = bootstrap::connect(&config).await?;
        bootstrap::ensure_schema(&store, Migrations::Require).await?;
        let summary = export_store(&store, since, &mut out).await?;
        store.close().await;
        summary
    } else {
        let path = config
            .audit
            .path
            .as_ref()
            .ok_or(audit::AuditError::NoSink)?;
        export_file(path, since, &mut out).await?
    };
    out.flush().await?;
    eprintln!(
        "exported {} records and {} checkpoints",
        summary.records, summary.checkpoints
    );
    Ok(ExitCode::from(exit::OK))
}
