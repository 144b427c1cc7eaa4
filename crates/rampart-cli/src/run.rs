//! Wiring: from a validated [`Config`] to a running server.
//!
//! Used by `rampart serve`, `rampart demo` and the test kit, so tests exercise exactly
//! what production runs.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_config::{Check, Config, Mode, Status};
use rampart_core::audit::{AuditEvent, EventKind, Outcome};
use rampart_core::{Clock, SystemClock};
use rampart_http::app::{self, ApiLimits};
use rampart_http::health::{ProbeFuture, Readiness, ReadinessProbe};
use rampart_http::metrics::Metrics;
use rampart_http::routes;
use rampart_http::server::{self, Limits, TlsHandle};
use rampart_http::state::AppState;
use rampart_http::tls::{self as http_tls, MinVersion};
use rampart_proxy::Gateway;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bootstrap::{self, Sealing};
use crate::services;

/// The start was refused by production guardrails.
#[derive(Debug, thiserror::Error)]
#[error("refusing to start: {} guardrail check(s) failed", .failures.len())]
pub struct StartRefused {
    /// The failing checks, each with its fix.
    pub failures: Vec<Check>,
}

/// How to start.
#[derive(Default)]
pub struct StartOptions {
    /// Apply pending migrations (`serve --migrate`); dev mode always does.
    pub migrate: bool,
    /// Serve on this already-bound listener instead of `server.listen`.
    pub listener: Option<TcpListener>,
    /// The clock; tests pass a `FakeClock`. Defaults to the system clock.
    pub clock: Option<Arc<dyn Clock>>,
}

/// A started server.
pub struct Running {
    /// The bound address of the main listener.
    pub addr: SocketAddr,
    /// The bound address of the separate metrics listener, if configured.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    tls: Option<TlsHandle>,
    config: Arc<Config>,
    store: rampart_store::Store,
    state: AppState,
    /// The first-admin setup token issued at this start, until `serve` prints it.
    setup_token: Option<crate::commands::admin::IssuedSetupToken>,
}

impl Running {
    /// Begins graceful shutdown: stop accepting, drain in-flight requests.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped, flushes the audit log (with a final
    /// checkpoint), then closes the database.
    pub async fn wait(self) -> anyhow::Result<()> {
        for task in self.tasks {
            task.await.context("server task failed")??;
        }
        self.state
            .audit
            .shutdown()
            .await
            .context("cannot flush the audit log")?;
        self.store.close().await;
        Ok(())
    }

    /// The first-admin setup token issued at this start (and the file it was written
    /// to), handed out once: `serve` prints it to standard output, never to the log.
    pub fn take_setup_token(&mut self) -> Option<crate::commands::admin::IssuedSetupToken> {
        self.setup_token.take()
    }

    /// The application state (services), for in-process tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Reloads the TLS certificate and key from disk (SIGHUP). New connections get
    /// the new certificate; established connections keep the one they were made with
    /// and are not interrupted. On any error — unreadable or empty files, an open key
    /// file, a key that does not belong to the certificate (a reload that caught the
    /// files half-replaced) — the current certificate stays in use. Every attempt is
    /// audited as `config.reloaded`.
    pub async fn reload_tls(&self) -> Result<TlsReload, http_tls::TlsError> {
        let (Some(handle), Some(tls)) = (&self.tls, &self.config.server.tls) else {
            return Ok(TlsReload::NotConfigured);
        };
        let loaded = http_tls::server_config(&tls.cert_path, &tls.key_path, min_version(tls));
        let event = match &loaded {
            Ok(loaded) => AuditEvent::new(EventKind::ConfigReloaded, Outcome::Success)
                .detail("fingerprint", loaded.fingerprint.clone()),
            Err(error) => AuditEvent::new(EventKind::ConfigReloaded, Outcome::Failure)
                .reason(error.to_string()),
        };
        let event = event
            .actor("rampart")
            .target("server.tls")
            .detail("trigger", "SIGHUP");
        let result = loaded.map(|loaded| {
            handle.replace(loaded.config);
            TlsReload::Reloaded {
                fingerprint: loaded.fingerprint,
            }
        });
        if let Err(error) = self.state.audit.record(event).await {
            tracing::error!(%error, "cannot audit the TLS reload");
        }
        result
    }
}

/// What a TLS reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsReload {
    /// New connections are served the certificate with this SHA-256 fingerprint.
    Reloaded {
        /// Colon-separated hex, as `openssl x509 -noout -fingerprint -sha256` prints it.
        fingerprint: String,
    },
    /// There is no `[server.tls]`: nothing to reload.
    NotConfigured,
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

/// Starts the server described by `config`.
pub async fn start(config: Config, options: StartOptions) -> anyhow::Result<Running> {
    // The whole effective configuration, secrets included as `[redacted]`: useful when
    // debugging a deployment, and a standing test that redaction holds.
    tracing::trace!(config = ?config, "effective configuration");
    enforce_guardrails(&config)?;
    let config = Arc::new(config);

    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(
        &store,
        bootstrap::serve_migrations(&config, options.migrate),
    )
    .await?;
    let (keys, sealing) = bootstrap::unseal(&config, &store, true).await?;
    let keys = Arc::new(keys);
    let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let audit = services::start_audit(&config, &store, &keys, Arc::clone(&clock)).await?;
    if sealing == Sealing::Initialized {
        tracing::info!("instance initialized: data keys generated and sealed with the master key");
        audit
            .record(
                AuditEvent::new(EventKind::InstanceInitialized, Outcome::Success).actor("rampart"),
            )
            .await?;
    }
    let state = services::app_state(Arc::clone(&config), &store, keys, audit, clock).await?;
    let setup_token = crate::commands::admin::prepare_setup_token(&config, &state.accounts).await?;

    let gateway =
        Gateway::new(&config, services::gateway_deps(&state)).context("cannot set up upstreams")?;
    let mut probes: Vec<Arc<dyn ReadinessProbe>> = vec![Arc::new(StorageProbe(store.clone()))];
    if let Some(redis) = &config.redis {
        let ping = rampart_redis::Ping::new(&redis.url.value, redis.response_timeout)
            .context("invalid Redis URL")?;
        probes.push(Arc::new(RedisProbe(ping)));
    }
    let forward_auth = if config.forward_auth.enabled {
        rampart_proxy::forward_auth::router(gateway.clone())
    } else {
        utoipa_axum::router::OpenApiRouter::new()
    };
    let mut own =
        app::own_routes(Readiness::new(probes)).merge(routes::api(state.clone(), forward_auth));
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut metrics_addr = None;
    if config.metrics.enabled {
        let metrics = Metrics::install()?;
        let token = config.metrics.token.as_ref().map(|t| t.value.clone());
        let endpoint = rampart_http::metrics::router(metrics, token);
        match config.metrics.listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?;
                metrics_addr = Some(listener.local_addr()?);
                let stop = shutdown.clone();
                tasks.push(tokio::spawn(server::serve(
                    listener,
                    app::layered(
                        endpoint.fallback(app::not_found),
                        services::edge_settings(&config),
                    ),
                    None,
                    limits(&config),
                    async move { stop.cancelled().await },
                )));
            }
            None => own = own.merge(endpoint),
        }
    }
    let own = app::with_api_limits(
        own,
        ApiLimits {
            body_limit: usize::try_from(config.server.body_limit).unwrap_or(usize::MAX),
            request_timeout: config.server.request_timeout,
        },
    );
    let own = own.layer(axum::middleware::from_fn_with_state(
        state.classes.clone(),
        rampart_http::ratelimit::limit_own,
    ));
    let router = app::layered(
        rampart_proxy::front(own, gateway),
        services::edge_settings(&config),
    );

    let tls = match &config.server.tls {
        Some(tls) => {
            let loaded = http_tls::server_config(&tls.cert_path, &tls.key_path, min_version(tls))
                .context("cannot set up TLS")?;
            tracing::info!(fingerprint = %loaded.fingerprint, "serving TLS certificate");
            Some(TlsHandle::new(loaded.config))
        }
        None => None,
    };
    let listener = match options.listener {
        Some(listener) => listener,
        None => TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?,
    };
    let addr = listener.local_addr()?;
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(server::serve(
        listener,
        router,
        tls.clone(),
        limits(&config),
        async move { stop.cancelled().await },
    )));
    tracing::info!(
        %addr,
        metrics = ?metrics_addr,
        mode = ?config.mode,
        tls = config.server.tls.is_some(),
        routes = config.routes.len(),
        "rampart is listening"
    );
    Ok(Running {
        addr,
        metrics_addr,
        shutdown,
        tasks,
        tls,
        config,
        store,
        state,
        setup_token,
    })
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_connections: usize::try_from(config.server.max_connections.get()).unwrap_or(usize::MAX),
        header_read_timeout: config.server.header_read_timeout,
        keep_alive_timeout: config.server.keep_alive_timeout,
        max_headers: config.server.max_headers.get(),
        max_header_bytes: usize::try_from(config.server.max_header_bytes).unwrap_or(usize::MAX),
        shutdown_grace: config.server.shutdown_grace,
    }
}

/// `/readyz` dependency: Redis answers. Rate limiting would fall back to local
/// limiters without it, but revocations would no longer reach this replica at once
/// and budgets would no longer be shared: the replica is degraded, so it says so and
/// the load balancer can prefer healthy ones (see docs/HA.md).
struct RedisProbe(rampart_redis::Ping);

impl ReadinessProbe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.0.ping().await.map_err(|e| e.to_string()) })
    }
}

/// `/readyz` dependency: the database answers.
struct StorageProbe(rampart_store::Store);

impl ReadinessProbe for StorageProbe {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.0.ping().await.map_err(|e| e.to_string()) })
    }
}

fn min_version(tls: &rampart_config::TlsConfig) -> MinVersion {
    match tls.min_version {
        rampart_config::TlsVersion::V1_2 => MinVersion::Tls12,
        rampart_config::TlsVersion::V1_3 => MinVersion::Tls13,
    }
}
