//! A fresh, migrated database per test, on either backend (feature `testing`).
//!
//! - SQLite: a new file in a temporary directory, deleted with the directory.
//! - PostgreSQL: a new schema `t_<random>` in the database named by
//!   `RAMPART_TEST_POSTGRES_URL` (default [`DEFAULT_POSTGRES_URL`]); the store's
//!   connections select it with `options=-c search_path=…`. The schema is dropped when
//!   the [`TestDb`] is dropped — also when the test panics, because `Drop` runs while
//!   unwinding.
//!
//! An unreachable PostgreSQL is an error, never a skipped test: a suite that silently
//! skips half its backends reports green for code that was never run.

use std::fmt;
use std::time::Duration;

use rampart_crypto::{SecretString, random};
use sqlx::AnyConnection;
use sqlx::any::AnyConnectOptions;
use sqlx::{AssertSqlSafe, Connection as _};

use crate::StoreError;
use crate::connect::{Backend, Store, StoreOptions, sqlite_url};
use crate::error::on;

/// The PostgreSQL URL used when `RAMPART_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The environment variable naming the test PostgreSQL database.
pub const POSTGRES_URL_ENV: &str = "RAMPART_TEST_POSTGRES_URL";

/// Both backends, for tests that loop over them.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A database of its own for one test. Dereferences to nothing: use
/// [`TestDb::store`], [`TestDb::raw_pool`] and [`TestDb::options`].
pub struct TestDb {
    store: Store,
    options: StoreOptions,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Held for its `Drop`, which deletes the directory and the database in it.
    Sqlite { _dir: tempfile::TempDir },
    Postgres {
        admin_url: SecretString,
        schema: String,
    },
}

impl TestDb {
    /// A fresh database on `backend`, with every migration applied.
    pub async fn new(backend: Backend) -> Result<Self, StoreError> {
        let db = Self::unmigrated(backend).await?;
        db.store.migrate().await?;
        Ok(db)
    }

    /// A fresh, empty database on `backend`: no tables at all, not even sqlx's
    /// migrations table. For testing migrations.
    pub async fn unmigrated(backend: Backend) -> Result<Self, StoreError> {
        let (options, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().map_err(|e| StoreError::Config {
                    reason: format!("cannot create a temporary directory: {e}"),
                })?;
                let url = sqlite_url(&dir.path().join("rampart.db"))?;
                (
                    StoreOptions::new(Backend::Sqlite, url),
                    Cleanup::Sqlite { _dir: dir },
                )
            }
            Backend::Postgres => {
                let admin_url = postgres_url();
                let schema = create_schema(&admin_url).await?;
                let url = schema_url(&admin_url, &schema)?;
                (
                    StoreOptions::new(Backend::Postgres, url),
                    Cleanup::Postgres { admin_url, schema },
                )
            }
        };
        let mut options = options;
        // Generous: a loaded CI machine should produce a slow test, not a flaky one.
        options.acquire_timeout = Duration::from_secs(30);
        let store = Store::connect(&options).await?;
        Ok(Self {
            store,
            options,
            cleanup,
        })
    }

    /// The store under test.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The options the store was opened with (to open a second store on the same
    /// database, e.g. to simulate another replica or a restart).
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.options.backend
    }

    /// A plain sqlx pool on the same database, bypassing the store: for tests that
    /// inspect or tamper with rows directly.
    pub async fn raw_pool(&self) -> Result<sqlx::AnyPool, StoreError> {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(self.options.url.expose_secret())
            .await
            .map_err(on("test database"))
    }
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.options.backend)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, schema } = &self.cleanup else {
            return;
        };
        // Drop is synchronous and may run on a Tokio worker (or while unwinding from
        // a panic), where blocking on the test's runtime is impossible. A short-lived
        // thread with its own runtime does the async cleanup and is joined.
        let admin_url = admin_url.clone();
        let schema = schema.clone();
        let joined = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_schema(&admin_url, &schema))
                .map_err(|e| e.to_string())
        })
        .join();
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test schema: {e}"),
            Err(_) => eprintln!("warning: the test schema cleanup thread panicked"),
        }
    }
}

/// The test PostgreSQL URL from the environment, or the default.
pub fn postgres_url() -> SecretString {
    std::env::var(POSTGRES_URL_ENV)
        .map(SecretString::new)
        .unwrap_or_else(|_| SecretString::from(DEFAULT_POSTGRES_URL))
}

async fn admin_connection(admin_url: &SecretString) -> Result<AnyConnection, StoreError> {
    sqlx::any::install_default_drivers();
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        AnyConnection::connect(admin_url.expose_secret()),
    )
    .await
    .map_err(|_| StoreError::Unavailable {
        source: format!("no answer from PostgreSQL at ${POSTGRES_URL_ENV} within 10 s").into(),
    })?;
    connect.map_err(|e| match crate::error::db_error(e, "test PostgreSQL") {
        StoreError::Internal { source } => StoreError::Unavailable { source },
        other => other,
    })
}

async fn create_schema(admin_url: &SecretString) -> Result<String, StoreError> {
    let suffix = random::bytes::<8>().map_err(|e| StoreError::Internal {
        source: Box::new(e),
    })?;
    let schema = format!(
        "t_{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut conn = admin_connection(admin_url).await?;
    // The name is generated here from hex digits, so it is safe to splice into SQL
    // (identifiers cannot be bound as parameters).
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .map_err(on("test schema"))?;
    conn.close().await.map_err(on("test schema"))?;
    Ok(schema)
}

async fn drop_schema(admin_url: &SecretString, schema: &str) -> Result<(), StoreError> {
    let mut conn = admin_connection(admin_url).await?;
    // Connections of a panicked test may still be open, even mid-transaction, and
    // would block DROP SCHEMA on their locks. They are tagged with the schema name as
    // application_name, so exactly they can be ended.
    sqlx::query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(schema)
    .execute(&mut conn)
    .await
    .map_err(on("test schema"))?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut conn)
    .await
    .map_err(on("test schema"))?;
    conn.close().await.map_err(on("test schema"))
}

/// The admin URL with the schema selected and the connections tagged.
fn schema_url(admin_url: &SecretString, schema: &str) -> Result<SecretString, StoreError> {
    let mut options: AnyConnectOptions =
        admin_url
            .expose_secret()
            .parse()
            .map_err(|_| StoreError::Config {
                reason: format!("${POSTGRES_URL_ENV} is not a valid URL"),
            })?;
    options
        .database_url
        .query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"))
        .append_pair("application_name", schema);
    Ok(SecretString::new(options.database_url.to_string()))
}
