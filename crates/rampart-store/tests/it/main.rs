#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Storage integration tests. Every test runs twice, on SQLite and on PostgreSQL
//! (`RAMPART_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`);
//! an unreachable PostgreSQL fails the PostgreSQL half.

use rampart_core::FakeClock;
use rampart_crypto::MasterKey;
use rampart_store::Backend;
use rampart_store::testing::TestDb;

/// For each `async fn name(backend: Backend)` listed, declares a module `name` with
/// two tests, `sqlite` and `postgres`, so a failure names its backend and the per-
/// backend counts are visible to the test runner.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(rampart_store::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(rampart_store::Backend::Postgres).await;
            }
        }
    )+};
}

mod accounts;
mod audit;
mod connect;
mod harness;
mod keys;
mod magic;
mod migrate;
mod sessions;
mod vault;

/// A fresh, migrated database, or a failed test.
async fn fresh(backend: Backend) -> TestDb {
    TestDb::new(backend)
        .await
        .unwrap_or_else(|e| panic!("cannot set up a {backend:?} test database: {e:?}"))
}

/// A fixed point in time for tests (2023-11-14T22:13:20Z).
fn clock() -> FakeClock {
    FakeClock::at_unix(1_700_000_000)
}

/// A fresh random operator master key.
fn master() -> MasterKey {
    MasterKey::generate().unwrap()
}
