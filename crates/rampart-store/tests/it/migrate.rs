//! F-MIGRATE: status without side effects, applying, and drift detection.

use rampart_store::testing::TestDb;
use rampart_store::{Backend, DriftReason, StoreError};

on_both_backends!(
    dry_run_changes_nothing,
    migrate_applies_pending_once,
    edited_migration_is_drift,
    unknown_applied_version_is_drift,
);

async fn unmigrated(backend: Backend) -> TestDb {
    TestDb::unmigrated(backend).await.unwrap()
}

async fn dry_run_changes_nothing(backend: Backend) {
    let db = unmigrated(backend).await;
    let status = db.store().migration_status().await.unwrap();
    assert!(status.applied.is_empty());
    assert!(status.drifted.is_empty());
    assert!(!status.pending.is_empty());
    assert!(!status.is_current());
    let versions: Vec<i64> = status.pending.iter().map(|m| m.version).collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(
        versions, sorted,
        "pending migrations are listed in run order"
    );
    let err = status.ensure_current().unwrap_err();
    assert!(err.to_string().contains("rampart migrate"), "{err}");

    // Not even sqlx's bookkeeping table may exist after a dry run.
    let raw = db.raw_pool().await.unwrap();
    let probe = sqlx::query("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&raw)
        .await;
    assert!(probe.is_err(), "the dry run created the migrations table");
    let probe = sqlx::query("SELECT count(*) FROM instance")
        .fetch_one(&raw)
        .await;
    assert!(probe.is_err(), "the dry run created a table");
}

async fn migrate_applies_pending_once(backend: Backend) {
    let db = unmigrated(backend).await;
    let pending = db.store().migration_status().await.unwrap().pending;
    let applied = db.store().migrate().await.unwrap();
    assert_eq!(applied, pending);
    let status = db.store().migration_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert_eq!(status.applied, pending);
    status.ensure_current().unwrap();
    assert!(db.store().migrate().await.unwrap().is_empty());
}

async fn edited_migration_is_drift(backend: Backend) {
    let db = unmigrated(backend).await;
    db.store().migrate().await.unwrap();
    let raw = db.raw_pool().await.unwrap();
    // As if the first migration file had been edited after it was applied.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
        .bind(vec![0u8; 48])
        .execute(&raw)
        .await
        .unwrap();
    let status = db.store().migration_status().await.unwrap();
    assert_eq!(status.drifted.len(), 1, "{status:?}");
    assert_eq!(status.drifted[0].version, 1);
    assert_eq!(status.drifted[0].reason, DriftReason::ChecksumMismatch);
    assert!(!status.is_current());
    let err = db.store().migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Schema { .. }), "{err:?}");
    assert!(err.to_string().contains("do not match"), "{err}");
}

async fn unknown_applied_version_is_drift(backend: Backend) {
    let db = unmigrated(backend).await;
    db.store().migrate().await.unwrap();
    let raw = db.raw_pool().await.unwrap();
    // As if a newer release had migrated this database.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999999, 'from the future', TRUE, $1, 0)",
    )
    .bind(vec![1u8; 48])
    .execute(&raw)
    .await
    .unwrap();
    let status = db.store().migration_status().await.unwrap();
    assert_eq!(status.drifted.len(), 1, "{status:?}");
    assert_eq!(status.drifted[0].reason, DriftReason::UnknownVersion);
    assert_eq!(status.drifted[0].description, "from the future");
    assert!(db.store().migrate().await.is_err());
}
