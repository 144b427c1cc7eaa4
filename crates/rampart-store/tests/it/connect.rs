//! Connecting, per-connection settings, readiness and error classification.

use std::time::Duration;

use rampart_core::ErrorKind;
use rampart_crypto::SecretString;
use rampart_store::{Backend, Store, StoreError, StoreOptions, sqlite_url};

use crate::fresh;

on_both_backends!(
    ping_answers,
    connection_settings_apply,
    second_store_sees_the_same_data
);

async fn ping_answers(backend: Backend) {
    let db = fresh(backend).await;
    db.store().ping().await.unwrap();
    assert_eq!(db.store().backend(), backend);
}

async fn connection_settings_apply(backend: Backend) {
    let db = fresh(backend).await;
    let pool = db.store().pool_for_tests();
    match backend {
        Backend::Sqlite => {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(fk, 1);
            // NORMAL = 1.
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(sync, 1);
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(busy, 5_000);
        }
        Backend::Postgres => {
            // The test harness isolates each test in its own schema.
            let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(pool)
                .await
                .unwrap();
            assert!(schema.starts_with("t_"), "{schema}");
        }
    }
}

async fn second_store_sees_the_same_data(backend: Backend) {
    let db = fresh(backend).await;
    let other = Store::connect(db.options()).await.unwrap();
    assert!(other.migration_status().await.unwrap().is_current());
    other.close().await;
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("no/such/dir/rampart.db")).unwrap();
    let err = Store::connect(&StoreOptions::new(Backend::Sqlite, url))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("directory must exist"), "{err}");
}

#[tokio::test]
async fn sqlite_creates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = Store::connect(&StoreOptions::new(
        Backend::Sqlite,
        sqlite_url(&path).unwrap(),
    ))
    .await
    .unwrap();
    store.ping().await.unwrap();
    assert!(path.exists());
}

#[tokio::test]
async fn a_url_of_the_wrong_scheme_is_refused() {
    let options = StoreOptions::new(Backend::Postgres, SecretString::from("sqlite:///tmp/x.db"));
    let err = Store::connect(&options).await.unwrap_err();
    assert!(matches!(err, StoreError::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_the_password_stays_secret() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let mut options = StoreOptions::new(
        Backend::Postgres,
        SecretString::from("postgres://rampart:hunter2-secret@127.0.0.1:1/rampart"),
    );
    options.acquire_timeout = Duration::from_secs(2);
    let err = Store::connect(&options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn store_debug_hides_the_url() {
    let db = fresh(Backend::Postgres).await;
    let text = format!("{:?} {:?}", db.store(), db.options());
    assert!(!text.contains("postgres://"), "{text}");
    assert!(!text.contains("search_path"), "{text}");
}
