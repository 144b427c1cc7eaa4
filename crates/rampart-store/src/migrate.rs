//! Versioned, checksummed migrations embedded in the binary (F-MIGRATE).
//!
//! One set per backend, in `migrations/{sqlite,postgres}/NNNN_description.sql`,
//! embedded by `sqlx::migrate!` and recorded by sqlx in `_sqlx_migrations` with a
//! SHA-384 checksum of each file. [`Store::migration_status`] compares the two without
//! writing anything — not even the migrations table — so `rampart migrate --dry-run`
//! and `serve`'s startup check are read-only; [`Store::migrate`] applies what is
//! pending and refuses a drifted schema.
//!
//! A migration file, once released, is never edited: its checksum is part of every
//! database that applied it, and an edit shows up here as drift.

use std::collections::HashMap;

use rampart_core::store::StoreError;
use sqlx::migrate::Migrator;

use crate::connect::{Backend, Store};
use crate::error::on;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The table sqlx records applied migrations in.
const TABLE: &str = "_sqlx_migrations";

/// A migration, by version and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// The version (the file name's numeric prefix).
    pub version: i64,
    /// The description (the rest of the file name).
    pub description: String,
}

/// Why an applied migration does not match this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftReason {
    /// The file applied to the database differs from the one embedded here.
    ChecksumMismatch,
    /// The database has a migration this binary does not know (a newer release ran,
    /// or the file was removed).
    UnknownVersion,
    /// The migration started but did not finish (only possible for migrations that
    /// run outside a transaction); the schema is in an unknown state.
    Failed,
}

/// An applied migration that does not match this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Which migration.
    pub version: i64,
    /// Its description as recorded in the database.
    pub description: String,
    /// What is wrong.
    pub reason: DriftReason,
}

/// The database's schema compared with this binary's migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied, and identical to the embedded file.
    pub applied: Vec<MigrationInfo>,
    /// Embedded but not applied yet, in the order they would run.
    pub pending: Vec<MigrationInfo>,
    /// Applied but not matching this binary.
    pub drifted: Vec<Drift>,
}

impl MigrationStatus {
    /// Nothing pending and nothing drifted: `serve` may start.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.drifted.is_empty()
    }

    /// `Ok` if [`is_current`](Self::is_current), else a [`StoreError::Schema`] that
    /// says what is wrong and what to do.
    pub fn ensure_current(&self) -> Result<(), StoreError> {
        if let Some(first) = self.drifted.first() {
            return Err(StoreError::Schema {
                reason: format!(
                    "{} applied migration(s) do not match this binary (first: {} {}, {}); \
                     restore a backup or run the release that applied them",
                    self.drifted.len(),
                    first.version,
                    first.description,
                    match first.reason {
                        DriftReason::ChecksumMismatch => "its file was changed",
                        DriftReason::UnknownVersion => "unknown to this release",
                        DriftReason::Failed => "it did not complete",
                    }
                ),
            });
        }
        if !self.pending.is_empty() {
            return Err(StoreError::Schema {
                reason: format!(
                    "{} migration(s) pending; run `rampart migrate` (or `rampart migrate \
                     --dry-run` to list them)",
                    self.pending.len()
                ),
            });
        }
        Ok(())
    }
}

impl Store {
    /// Compares the database with the embedded migrations. Read-only: it does not
    /// create the migrations table, take a lock or change anything.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let recorded = if self.migrations_table_exists().await? {
            self.recorded_migrations().await?
        } else {
            Vec::new()
        };
        Ok(compare(self.migrator(), recorded))
    }

    /// Applies every pending migration, each in its own transaction, and returns the
    /// ones it applied. Refuses (changing nothing) if the schema has drifted.
    ///
    /// On PostgreSQL, sqlx holds an advisory lock while migrating, so replicas started
    /// together with `--migrate` apply each migration once.
    pub async fn migrate(&self) -> Result<Vec<MigrationInfo>, StoreError> {
        let before = self.migration_status().await?;
        if !before.drifted.is_empty() {
            before.ensure_current()?;
        }
        let mut conn = self.pool().acquire().await.map_err(on("migration"))?;
        let result = self.migrator().run(&mut *conn).await;
        if result.is_err() {
            // sqlx does not release its advisory lock when a migration fails; a
            // connection returned to the pool would keep holding it and block the next
            // attempt forever. Closing the connection releases it.
            conn.close_on_drop();
        }
        drop(conn);
        result.map_err(|e| StoreError::Schema {
            reason: format!("migration failed: {e}"),
        })?;
        let after = self.migration_status().await?;
        Ok(before
            .pending
            .into_iter()
            .filter(|m| after.applied.contains(m))
            .collect())
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend() {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    /// Whether `_sqlx_migrations` exists, without creating it.
    ///
    /// Catalogs differ per backend, hence the branch. On PostgreSQL `to_regclass`
    /// resolves the name through the `search_path` exactly as sqlx's unqualified
    /// queries will.
    async fn migrations_table_exists(&self) -> Result<bool, StoreError> {
        let query = match self.backend() {
            Backend::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT CASE WHEN to_regclass('_sqlx_migrations') IS NULL THEN 0 ELSE 1 END"
            }
        };
        let count: i64 = sqlx::query_scalar(query)
            .fetch_one(self.pool())
            .await
            .map_err(on("migration status"))?;
        Ok(count > 0)
    }

    async fn recorded_migrations(&self) -> Result<Vec<Recorded>, StoreError> {
        // `success` is BOOLEAN, which sqlx's Any driver cannot read from SQLite; the
        // CASE turns it into an integer on both backends.
        let rows: Vec<(i64, String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT version, description, checksum, CASE WHEN success THEN 1 ELSE 0 END \
             FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(self.pool())
        .await
        .map_err(on(TABLE))?;
        Ok(rows
            .into_iter()
            .map(|(version, description, checksum, success)| Recorded {
                version,
                description,
                checksum,
                success: success != 0,
            })
            .collect())
    }
}

/// A row of `_sqlx_migrations`.
struct Recorded {
    version: i64,
    description: String,
    checksum: Vec<u8>,
    success: bool,
}

fn compare(migrator: &Migrator, recorded: Vec<Recorded>) -> MigrationStatus {
    let embedded: HashMap<i64, &sqlx::migrate::Migration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m))
        .collect();
    let mut status = MigrationStatus::default();
    let mut seen = std::collections::HashSet::new();
    for row in recorded {
        seen.insert(row.version);
        let reason = match embedded.get(&row.version) {
            None => Some(DriftReason::UnknownVersion),
            Some(_) if !row.success => Some(DriftReason::Failed),
            Some(m) if *m.checksum != *row.checksum => Some(DriftReason::ChecksumMismatch),
            Some(_) => None,
        };
        match reason {
            Some(reason) => status.drifted.push(Drift {
                version: row.version,
                description: row.description,
                reason,
            }),
            None => status.applied.push(MigrationInfo {
                version: row.version,
                description: row.description,
            }),
        }
    }
    let mut pending: Vec<MigrationInfo> = embedded
        .values()
        .filter(|m| !seen.contains(&m.version))
        .map(|m| MigrationInfo {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    pending.sort_by_key(|m| m.version);
    status.pending = pending;
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        // One schema history, two dialects: a version missing from one backend is
        // almost certainly a forgotten file.
        let versions = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(versions(&SQLITE), versions(&POSTGRES));
        assert!(!SQLITE.migrations.is_empty());
    }

    #[test]
    fn compare_classifies_rows() {
        let first = SQLITE
            .iter()
            .next()
            .map(|m| (m.version, m.checksum.to_vec()));
        let Some((version, checksum)) = first else {
            return;
        };
        let row = |version, checksum: Vec<u8>, success| Recorded {
            version,
            description: "x".to_owned(),
            checksum,
            success,
        };
        let clean = compare(&SQLITE, vec![row(version, checksum.clone(), true)]);
        assert_eq!(clean.applied.len(), 1);
        assert!(clean.drifted.is_empty());
        assert_eq!(clean.pending.len(), SQLITE.migrations.len() - 1);

        let status = compare(
            &SQLITE,
            vec![row(version, vec![0; 48], true), row(999_999, vec![], true)],
        );
        let reasons: Vec<DriftReason> = status.drifted.iter().map(|d| d.reason).collect();
        assert_eq!(
            reasons,
            [DriftReason::ChecksumMismatch, DriftReason::UnknownVersion]
        );
        assert!(status.ensure_current().is_err());

        let failed = compare(&SQLITE, vec![row(version, checksum, false)]);
        assert_eq!(failed.drifted[0].reason, DriftReason::Failed);
    }
}
