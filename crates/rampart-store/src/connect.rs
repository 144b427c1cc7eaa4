//! Connecting: [`StoreOptions`] → a pooled [`Store`] over sqlx's `Any` driver.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use rampart_core::store::StoreError;
use rampart_crypto::SecretString;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool};
use sqlx::{AssertSqlSafe, Connection as _, Transaction};

use crate::error::{db_error, on};

/// Which database engine. Chosen at run time; both are always compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite, for a single node.
    Sqlite,
    /// PostgreSQL, shared by replicas (F-HA).
    Postgres,
}

impl Backend {
    /// The backend's name, as in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How to connect. The CLI maps the `[storage]` configuration onto this; the store
/// does not depend on the configuration crate.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Which engine the URL is for; a URL of another scheme is refused.
    pub backend: Backend,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB?sslmode=…`. Secret: it may
    /// hold a password, so it is never logged or put into an error.
    pub url: SecretString,
    /// Largest pool size.
    pub max_connections: NonZeroU32,
    /// Connections kept open.
    pub min_connections: u32,
    /// How long to wait for a pooled connection (also bounds [`Store::ping`]).
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for another connection's lock.
    pub busy_timeout: Duration,
}

impl StoreOptions {
    /// Options with the defaults: up to 10 connections, none kept idle, 5 s acquire
    /// timeout, 5 s SQLite busy timeout.
    pub fn new(backend: Backend, url: SecretString) -> Self {
        Self {
            backend,
            url,
            max_connections: NonZeroU32::MIN.saturating_add(9),
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The `sqlite://` URL for a database file, percent-encoded so any path works.
pub fn sqlite_url(path: &Path) -> Result<SecretString, StoreError> {
    let text = path.to_str().ok_or_else(|| StoreError::Config {
        reason: "the SQLite path is not valid UTF-8".to_owned(),
    })?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(SecretString::new(url))
}

/// A connection pool to the database. Cheap to clone (the pool is shared).
///
/// Implements the storage traits of `rampart_core::store`; wrap a clone in an `Arc`
/// to hand it to a service.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects, checking the URL's scheme against `options.backend`.
    ///
    /// SQLite: the file is created if missing (its directory must exist), switched to
    /// WAL, and every connection gets `busy_timeout`, `foreign_keys=ON` and
    /// `synchronous=NORMAL`. PostgreSQL: the pool sizes and acquire timeout apply.
    /// Fails with [`StoreError::Unavailable`] if the database cannot be reached.
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let mut connect =
            AnyConnectOptions::from_str(options.url.expose_secret()).map_err(|_| {
                StoreError::Config {
                    // sqlx's parse error could quote part of the URL; say only what to fix.
                    reason: "the database URL is malformed".to_owned(),
                }
            })?;
        check_scheme(options.backend, connect.database_url.scheme())?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.get())
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout);
        let pool_options = match options.backend {
            Backend::Sqlite => {
                let has_mode = connect.database_url.query_pairs().any(|(k, _)| k == "mode");
                if !has_mode {
                    // Read-write-create: the first start makes the file.
                    connect
                        .database_url
                        .query_pairs_mut()
                        .append_pair("mode", "rwc");
                }
                enable_wal(&connect, options.busy_timeout).await?;
                let pragmas = SqlitePragmas::new(options.busy_timeout);
                pool_options.after_connect(move |conn, _meta| {
                    Box::pin(async move { pragmas.apply(conn).await })
                })
            }
            Backend::Postgres => pool_options,
        };
        let pool = pool_options
            .connect_with(connect)
            .await
            .map_err(|e| connect_error(e, options.backend))?;
        Ok(Self {
            pool,
            backend: options.backend,
        })
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Readiness (`/readyz`): one `SELECT 1`, bounded by the pool's acquire timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(on("readiness check"))?;
        Ok(())
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The store's own pool, for tests that check per-connection state (pragmas,
    /// search path). Not in production builds.
    #[cfg(feature = "testing")]
    pub fn pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that will write.
    ///
    /// SQLite runs such transactions as `BEGIN IMMEDIATE`: a deferred transaction that
    /// reads and then writes must upgrade its lock, and in WAL mode that upgrade fails
    /// at once with `SQLITE_BUSY(_SNAPSHOT)` when another connection wrote meanwhile —
    /// the busy timeout cannot help, because waiting would not make the snapshot
    /// current. Taking the write lock at `BEGIN` makes writers queue on the busy
    /// timeout instead, which also works across processes (server and CLI), unlike a
    /// mutex in this process. PostgreSQL uses row locks and needs a plain `BEGIN`.
    pub(crate) async fn begin_write(
        &self,
        what: &'static str,
    ) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(on(what))
    }
}

impl fmt::Debug for Store {
    // The pool's own Debug prints its connect options, URL included: never use it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// The per-connection SQLite settings. Pragmas are connection state, so they are set
/// on every new connection rather than once.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas {
    busy_timeout_ms: u64,
}

impl SqlitePragmas {
    fn new(busy_timeout: Duration) -> Self {
        Self {
            busy_timeout_ms: u64::try_from(busy_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    async fn apply(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        // busy_timeout first, so the others wait for locks instead of failing.
        let busy = format!(
            "PRAGMA busy_timeout = {}",
            self.busy_timeout_ms.min(i32::MAX as u64)
        );
        sqlx::raw_sql(AssertSqlSafe(busy))
            .execute(&mut *conn)
            .await?;
        for pragma in [
            // Readers never block the writer and vice versa; persistent in the file,
            // so after the first connection this is a no-op.
            "PRAGMA journal_mode = WAL",
            // SQLite leaves foreign keys off by default for backward compatibility.
            "PRAGMA foreign_keys = ON",
            // In WAL mode NORMAL is durable against application crashes and loses at
            // most the last transactions on power loss, at a fraction of FULL's fsyncs.
            "PRAGMA synchronous = NORMAL",
        ] {
            sqlx::raw_sql(pragma).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// Switches a SQLite database to WAL on one connection, before the pool opens more.
///
/// Entering WAL needs an exclusive lock that the busy timeout does not wait for; done
/// once here, pool connections opening concurrently only find it already set.
async fn enable_wal(connect: &AnyConnectOptions, busy_timeout: Duration) -> Result<(), StoreError> {
    let mut conn = AnyConnection::connect_with(connect)
        .await
        .map_err(|e| connect_error(e, Backend::Sqlite))?;
    let result = SqlitePragmas::new(busy_timeout).apply(&mut conn).await;
    // Close even when a pragma failed; a close error is irrelevant next to it.
    let closed = conn.close().await;
    result.map_err(on("SQLite settings"))?;
    closed.map_err(on("SQLite settings"))
}

fn check_scheme(backend: Backend, scheme: &str) -> Result<(), StoreError> {
    let fits = match backend {
        Backend::Sqlite => scheme == "sqlite",
        Backend::Postgres => matches!(scheme, "postgres" | "postgresql"),
    };
    if fits {
        Ok(())
    } else {
        Err(StoreError::Config {
            reason: format!(
                "storage backend {} needs a {}:// URL",
                backend.name(),
                backend.name()
            ),
        })
    }
}

/// A connection failure. SQLite's `SQLITE_CANTOPEN` (14) almost always means the
/// directory is missing or not writable; say so instead of "unable to open".
fn connect_error(err: sqlx::Error, backend: Backend) -> StoreError {
    if let (Backend::Sqlite, sqlx::Error::Database(db)) = (backend, &err)
        && db.code().as_deref() == Some("14")
    {
        return StoreError::Config {
            reason: "cannot open the SQLite database file: its directory must exist and be \
                     writable by this user"
                .to_owned(),
        };
    }
    match db_error(err, "database connection") {
        // Any failure to connect means the database is unavailable to us, whatever
        // the driver calls it (e.g. authentication is a database error).
        StoreError::Internal { source } => StoreError::Unavailable { source },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sqlite_urls_are_percent_encoded() {
        let url = sqlite_url(Path::new("/tmp/a b/rampart#1.db")).unwrap();
        assert_eq!(url.expose_secret(), "sqlite:///tmp/a%20b/rampart%231.db");
    }

    #[test]
    fn scheme_must_match_the_backend() {
        assert!(check_scheme(Backend::Sqlite, "sqlite").is_ok());
        assert!(check_scheme(Backend::Postgres, "postgresql").is_ok());
        assert!(check_scheme(Backend::Sqlite, "postgres").is_err());
        assert!(check_scheme(Backend::Postgres, "sqlite").is_err());
    }

    #[test]
    fn options_debug_redacts_the_url() {
        let options = StoreOptions::new(
            Backend::Postgres,
            SecretString::from("postgres://u:hunter2@db/x"),
        );
        let text = format!("{options:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(options.max_connections.get(), 10);
    }
}
