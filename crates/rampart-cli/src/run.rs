//! Wiring: from a validated [`Config`] to a running server.
//!
//! Used by `rampart serve`, `rampart demo` and the test kit, so tests exercise exactly
//! what production runs.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_config::{Check, Config, Mode, Status};
use rampart_http::app::{self, ApiLimits};
use rampart_http::health::{Readiness, ReadinessProbe};
use rampart_http::server::{self, Limits, TlsHandle};
use rampart_http::tls::{self as http_tls, MinVersion};
use rampart_proxy::Gateway;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The start was refused by production guardrails.
#[derive(Debug, thiserror::Error)]
#[error("refusing to start: {} guardrail check(s) failed", .failures.len())]
pub struct StartRefused {
    /// The failing checks, each with its fix.
    pub failures: Vec<Check>,
}

/// A started server.
pub struct Running {
    /// The bound address of the main listener.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    tls: Option<TlsHandle>,
    config: Arc<Config>,
}

impl Running {
    /// Begins graceful shutdown: stop accepting, drain in-flight requests.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")??;
        Ok(())
    }

    /// Reloads the TLS certificate and key from disk (SIGHUP). On error the old
    /// certificate stays in use.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        let (Some(handle), Some(tls)) = (&self.tls, &self.config.server.tls) else {
            return Ok(());
        };
        let config = http_tls::server_config(&tls.cert_path, &tls.key_path, min_version(tls))?;
        handle.replace(config);
        Ok(())
    }
}

/// Runs the guardrails and refuses a production start on any failure; logs every
/// warning. Dev mode logs the development master key warning on every start.
pub fn enforce_guardrails(config: &Config) -> Result<(), StartRefused> {
    let mut checks = rampart_config::guardrails(config);
    checks.extend(rampart_config::file_checks(config));
    for check in &checks {
        match check.status {
            Status::Warn => {
                tracing::warn!(check = check.id, fix = %check.fix, "{}", check.finding);
            }
            Status::Fail => {
                tracing::error!(check = check.id, fix = %check.fix, "{}", check.finding);
            }
            Status::Pass => {}
        }
    }
    if config.mode == Mode::Production && rampart_config::refuses_start(&checks) {
        return Err(StartRefused {
            failures: checks
                .into_iter()
                .filter(|c| c.status == Status::Fail)
                .collect(),
        });
    }
    Ok(())
}

/// Starts the server described by `config` on its configured listener, or on
/// `listener` when given (tests and the demo bind first to learn the port).
pub async fn start(config: Config, listener: Option<TcpListener>) -> anyhow::Result<Running> {
    // The whole effective configuration, secrets included as `[redacted]`: useful when
    // debugging a deployment, and a standing test that redaction holds.
    tracing::trace!(config = ?config, "effective configuration");
    enforce_guardrails(&config)?;
    if config.master_key().is_none() {
        anyhow::bail!("no master key: set RAMPART_MASTER_KEY_HEX or RAMPART_MASTER_KEY_PATH");
    }
    let config = Arc::new(config);
    let gateway = Gateway::new(&config).context("cannot set up upstreams")?;
    let probes: Vec<Arc<dyn ReadinessProbe>> = Vec::new();
    let own = app::with_api_limits(
        app::own_routes(Readiness::new(probes)),
        ApiLimits {
            body_limit: usize::try_from(config.server.body_limit).unwrap_or(usize::MAX),
            request_timeout: config.server.request_timeout,
        },
    );
    let router = app::layered(rampart_proxy::front(own, gateway));

    let tls = match &config.server.tls {
        Some(tls) => Some(TlsHandle::new(
            http_tls::server_config(&tls.cert_path, &tls.key_path, min_version(tls))
                .context("cannot set up TLS")?,
        )),
        None => None,
    };
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?,
    };
    let addr = listener.local_addr()?;
    let limits = Limits {
        max_connections: usize::try_from(config.server.max_connections.get()).unwrap_or(usize::MAX),
        header_read_timeout: config.server.header_read_timeout,
        keep_alive_timeout: config.server.keep_alive_timeout,
        max_headers: config.server.max_headers.get(),
        max_header_bytes: usize::try_from(config.server.max_header_bytes).unwrap_or(usize::MAX),
        shutdown_grace: config.server.shutdown_grace,
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(server::serve(
        listener,
        router,
        tls.clone(),
        limits,
        async move { stop.cancelled().await },
    ));
    tracing::info!(
        %addr,
        mode = ?config.mode,
        tls = config.server.tls.is_some(),
        routes = config.routes.len(),
        "rampart is listening"
    );
    Ok(Running {
        addr,
        shutdown,
        task,
        tls,
        config,
    })
}

fn min_version(tls: &rampart_config::TlsConfig) -> MinVersion {
    match tls.min_version {
        rampart_config::TlsVersion::V1_2 => MinVersion::Tls12,
        rampart_config::TlsVersion::V1_3 => MinVersion::Tls13,
    }
}
