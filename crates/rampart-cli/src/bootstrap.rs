//! Opening the state: database, schema, and the key hierarchy.
//!
//! Shared by `serve` and by the commands that work on the database directly
//! (`migrate`, `keys`, `secrets`, `audit`), so every entry point applies the same
//! rules: production never migrates on its own, never accepts a drifted schema, and
//! never unseals data sealed with the public development key.

use std::os::unix::fs::DirBuilderExt as _;

use anyhow::{Context as _, bail};
use rampart_config::{Config, Mode, StorageBackend};
use rampart_core::keys::{DataKeys, DevSealPolicy, KeyError};
use rampart_core::{Clock, SystemClock};
use rampart_crypto::MasterKey;
use rampart_store::{Backend, Store, StoreOptions};

/// What to do when the schema is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (dev mode, `serve --migrate`, `rampart migrate`).
    Apply,
    /// Refuse to continue (production default).
    Require,
}

/// The store options for the configured database.
pub fn store_options(config: &Config) -> anyhow::Result<StoreOptions> {
    let backend = match config.storage.backend {
        StorageBackend::Sqlite => Backend::Sqlite,
        StorageBackend::Postgres => Backend::Postgres,
    };
    let url = match &config.storage.url {
        Some(url) => url.value.clone(),
        None => rampart_store::sqlite_url(&config.data_dir.join("rampart.db"))?,
    };
    Ok(StoreOptions {
        backend,
        url,
        max_connections: config.storage.max_connections,
        min_connections: config.storage.min_connections,
        acquire_timeout: config.storage.acquire_timeout,
        busy_timeout: config.storage.busy_timeout,
    })
}

/// Connects to the configured database, creating the data directory (mode 0700) for
/// SQLite.
pub async fn connect(config: &Config) -> anyhow::Result<Store> {
    if config.storage.backend == StorageBackend::Sqlite && config.storage.url.is_none() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
    }
    let options = store_options(config)?;
    Store::connect(&options)
        .await
        .context("cannot open the database")
}

/// Brings the schema up to date or refuses, per `migrations`. A drifted schema (an
/// applied migration whose checksum differs, or one this binary does not know) is
/// always refused.
pub async fn ensure_schema(store: &Store, migrations: Migrations) -> anyhow::Result<()> {
    let status = store.migration_status().await?;
    if !status.drifted.is_empty() {
        status.ensure_current()?;
    }
    if status.pending.is_empty() {
        return Ok(());
    }
    match migrations {
        Migrations::Apply => {
            let applied = store.migrate().await?;
            for migration in &applied {
                tracing::info!(version = migration.version, description = %migration.description, "applied migration");
            }
            Ok(())
        }
        Migrations::Require => {
            status.ensure_current()?;
            Ok(())
        }
    }
}

/// The migration policy for `serve`: dev mode migrates on its own; production only
/// with `--migrate`.
pub fn serve_migrations(config: &Config, migrate_flag: bool) -> Migrations {
    if migrate_flag || config.mode == Mode::Dev {
        Migrations::Apply
    } else {
        Migrations::Require
    }
}

/// The master key, or the reason there is none.
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    match config.master_key() {
        Some(key) => Ok(key),
        None => bail!(
            "no master key: set RAMPART_MASTER_KEY_PATH (a file with 64 hex characters, mode 0600) or RAMPART_MASTER_KEY_HEX"
        ),
    }
}

/// Whether the instance already existed or was created now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// The data keys were unsealed.
    Unsealed,
    /// The instance was initialized now: fresh data keys were generated and sealed.
    Initialized,
}

/// Unseals the data keys; initializes the instance when `initialize` and nothing
/// exists yet. Production refuses a store sealed with the development key.
pub async fn unseal(
    config: &Config,
    store: &Store,
    initialize: bool,
) -> anyhow::Result<(DataKeys, Sealing)> {
    let master = master_key(config)?;
    let policy = match config.mode {
        Mode::Dev => DevSealPolicy::Allow,
        Mode::Production => DevSealPolicy::Refuse,
    };
    match DataKeys::unseal(store, &master, policy).await {
        Ok(keys) => Ok((keys, Sealing::Unsealed)),
        Err(KeyError::NotInitialized) if initialize => {
            let clock = SystemClock;
            let keys = match DataKeys::initialize(store, &master, &clock as &dyn Clock).await {
                Ok(keys) => keys,
                // Another replica initialized first: use its keys.
                Err(KeyError::AlreadyInitialized) => {
                    DataKeys::unseal(store, &master, policy).await?
                }
                Err(error) => return Err(error.into()),
            };
            Ok((keys, Sealing::Initialized))
        }
        Err(KeyError::NotInitialized) => {
            bail!(
                "this instance is not initialized yet: start `rampart serve` once to generate its keys"
            )
        }
        Err(error) => Err(error.into()),
    }
}
