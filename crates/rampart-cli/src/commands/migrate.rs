//! `rampart migrate [--dry-run]` (F-MIGRATE).

use std::process::ExitCode;

use crate::bootstrap;
use crate::cli::MigrateArgs;

use super::{config_failed, exit, load_config};

/// Lists pending migrations (`--dry-run`, changes nothing) or applies them.
pub async fn run(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config, None) {
        Ok(config) => config,
        Err(error) => return Ok(config_failed(&error)),
    };
    let store = bootstrap::connect(&config).await?;
    let status = store.migration_status().await?;
    for drift in &status.drifted {
        println!(
            "drifted  {:>4}  {}  ({:?})",
            drift.version, drift.description, drift.reason
        );
    }
    if !status.drifted.is_empty() {
        eprintln!(
            "the database schema has drifted from this binary's migrations; restore a backup or investigate before migrating"
        );
        store.close().await;
        return Ok(ExitCode::from(exit::FAILURE));
    }
    if args.dry_run {
        println!(
            "{} applied, {} pending",
            status.applied.len(),
            status.pending.len()
        );
        for pending in &status.pending {
            println!("pending  {:>4}  {}", pending.version, pending.description);
        }
        store.close().await;
        return Ok(ExitCode::from(exit::OK));
    }
    let applied = store.migrate().await?;
    for migration in &applied {
        println!(
            "applied  {:>4}  {}",
            migration.version, migration.description
        );
    }
    if applied.is_empty() {
        println!("the schema is up to date");
    }
    store.close().await;
    Ok(ExitCode::from(exit::OK))
}
