//! An in-process Rampart for API tests: the same `run::start` that `rampart serve`
//! uses, on a fresh database of either backend, with a fake clock.

// Helpers shared by many test modules; not every module uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rampart_cli::run::{self, Running, StartOptions};
use rampart_core::FakeClock;
use rampart_store::Backend;
use rampart_store::testing::TestDb;

use crate::common::random_hex;

/// Runs a test body once per backend, naming the backend on failure.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: rampart_store::Backend) $body

            #[tokio::test]
            async fn sqlite() {
                run(rampart_store::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                run(rampart_store::Backend::Postgres).await;
            }
        }
    };
}

/// A running server and everything it needs to keep running.
pub struct TestServer {
    /// The listener's address.
    pub addr: SocketAddr,
    /// The clock every service reads; tests move it.
    pub clock: FakeClock,
    /// The configuration text it was started with (for restarts).
    pub toml: String,
    /// The environment it was started with (for restarts).
    pub env: BTreeMap<String, String>,
    running: Option<Running>,
    db: TestDb,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A production-mode server with default settings on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::with_config(backend, "").await
    }

    /// A production-mode server with `extra` TOML appended to the base config.
    pub async fn with_config(backend: Backend, extra: &str) -> Self {
        Self::with_config_env(backend, extra, &[]).await
    }

    /// Like [`Self::with_config`], with extra `RAMPART_*` environment overrides — for
    /// top-level keys such as `public_url`, which `extra` (appended after a table
    /// header) cannot set.
    pub async fn with_config_env(backend: Backend, extra: &str, vars: &[(&str, &str)]) -> Self {
        let db = TestDb::unmigrated(backend).await.expect("test database");
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            r#"mode = "production"
data_dir = "{data}"

[server]
listen = "127.0.0.1:0"

[metrics]
enabled = false

[storage]
backend = "{backend}"
{extra}
"#,
            data = dir.path().display(),
            backend = backend.name(),
        );
        let mut env = BTreeMap::new();
        env.insert("RAMPART_MASTER_KEY_HEX".to_owned(), random_hex(32));
        env.insert(
            "RAMPART_STORAGE_URL".to_owned(),
            db.options().url.expose_secret().to_owned(),
        );
        // The fake clock does not move unless a test moves it, so the default budgets
        // (auth: burst 10 per IP) would never refill: tests that are not about rate
        // limiting get budgets they cannot exhaust. Tests about rate limiting
        // configure `[rate_limit]` themselves.
        if !extra.contains("[rate_limit") {
            for class in ["AUTH", "GENERAL"] {
                env.insert(
                    format!("RAMPART_RATE_LIMIT_CLASSES_{class}_RATE"),
                    "1000000".to_owned(),
                );
                env.insert(
                    format!("RAMPART_RATE_LIMIT_CLASSES_{class}_BURST"),
                    "1000000".to_owned(),
                );
            }
        }
        for (name, value) in vars {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let clock = FakeClock::at_unix(now);
        let running = Self::launch(&toml, &env, &clock).await;
        Self {
            addr: running.addr,
            clock,
            toml,
            env,
            running: Some(running),
            db,
            _dir: dir,
        }
    }

    async fn launch(toml: &str, env: &BTreeMap<String, String>, clock: &FakeClock) -> Running {
        let config = rampart_config::from_toml_str(toml, env).unwrap_or_else(|e| panic!("{e}"));
        run::start(
            config,
            StartOptions {
                migrate: true,
                listener: None,
                clock: Some(Arc::new(clock.clone())),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("start failed: {e:#}"))
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The running server's services.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("server is running")
    }

    /// The database under the server.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// Stops the server (draining, flushing the audit log) and starts it again on the
    /// same database, configuration and clock: what a process restart does.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
            running.wait().await.unwrap();
        }
        let running = Self::launch(&self.toml, &self.env, &self.clock).await;
        self.addr = running.addr;
        self.running = Some(running);
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
            running.wait().await.unwrap();
        }
    }
}
