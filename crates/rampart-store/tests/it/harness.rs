//! The test harness itself: PostgreSQL schemas are dropped even when a test panics.

use rampart_store::Backend;
use rampart_store::testing::{TestDb, postgres_url};

#[tokio::test]
async fn postgres_schema_is_dropped_even_after_a_panic() {
    let (tell, told) = tokio::sync::oneshot::channel::<String>();
    // A local task, so the panic is caught by its JoinHandle (and sqlx's futures need
    // not prove `Send` for every lifetime, which they cannot).
    let local = tokio::task::LocalSet::new();
    let test = local.spawn_local(async move {
        let db = TestDb::new(Backend::Postgres).await.unwrap();
        let pool = db.store().pool_for_tests().clone();
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&pool)
            .await
            .unwrap();
        tell.send(schema).unwrap();
        // Die holding locks inside an open transaction.
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO data_keys (key_id, purpose, wrapped, created_at) VALUES ('k', 'vault', $1, 0)")
            .bind(vec![0u8])
            .execute(&mut *tx)
            .await
            .unwrap();
        panic!("deliberate test failure");
    });
    let joined = local.run_until(test).await.unwrap_err();
    assert!(joined.is_panic());
    let schema = told.await.unwrap();
    assert!(schema.starts_with("t_"), "{schema}");

    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(postgres_url().expose_secret())
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(&schema)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "schema {schema} was left behind");
}

#[tokio::test]
async fn sqlite_databases_are_separate_per_test() {
    let a = TestDb::new(Backend::Sqlite).await.unwrap();
    let b = TestDb::new(Backend::Sqlite).await.unwrap();
    let url = |db: &TestDb| db.options().url.expose_secret().to_owned();
    assert_ne!(url(&a), url(&b));
}
