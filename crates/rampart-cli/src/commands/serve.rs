//! `rampart serve`.

use std::process::ExitCode;

use rampart_http::tls::TlsError;
use rampart_proxy::upstream::UpstreamSetupError;

use crate::cli::ServeArgs;
use crate::run::{self, StartRefused, TlsReload};
use crate::signals::{SignalAction, Signals};

use super::{config_failed, exit, load_config};

/// Loads the configuration, starts the server, and runs until SIGTERM/SIGINT, then
/// drains in-flight requests and exits 0. SIGHUP reloads the TLS certificate; a
/// failed reload is logged and audited and the server keeps running on the old one.
pub async fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config, None) {
        Ok(config) => config,
        Err(error) => return Ok(config_failed(&error)),
    };
    crate::logging::init(&config.logging);
    let mut signals = Signals::install()?;
    let options = run::StartOptions {
        migrate: args.migrate,
        listener: None,
        clock: None,
    };
    let mut running = match run::start(config, options).await {
        Ok(running) => running,
        Err(error) => {
            if let Some(refused) = error.downcast_ref::<StartRefused>() {
                eprintln!("{refused}:");
                for check in &refused.failures {
                    eprintln!(
                        "  - [{}] {}\n    fix: {}",
                        check.id, check.finding, check.fix
                    );
                }
                return Ok(ExitCode::from(exit::CONFIG));
            }
            if error.downcast_ref::<TlsError>().is_some()
                || error.downcast_ref::<UpstreamSetupError>().is_some()
            {
                // A certificate, key or CA file that cannot be used is a configuration
                // problem like any other: exit 2, so a supervisor does not restart
                // into the same failure.
                eprintln!("error: {error:#}");
                return Ok(ExitCode::from(exit::CONFIG));
            }
            return Err(error);
        }
    };
    if let Some(issued) = running.take_setup_token() {
        // Standard output, not the log: logs are shipped and kept, the token is a
        // credential for the first admin account.
        println!("{}", super::admin::setup_token_message(&issued));
    }
    loop {
        match signals.next().await {
            SignalAction::Shutdown => break,
            SignalAction::Reload => match running.reload_tls().await {
                Ok(TlsReload::Reloaded { fingerprint }) => {
                    tracing::info!(%fingerprint, "reloaded TLS certificate");
                }
                Ok(TlsReload::NotConfigured) => {
                    tracing::info!("SIGHUP: no [server.tls], nothing to reload");
                }
                Err(error) => {
                    tracing::error!(%error, "TLS reload failed; keeping the current certificate");
                }
            },
        }
    }
    running.shutdown();
    running.wait().await?;
    tracing::info!("stopped");
    Ok(ExitCode::from(exit::OK))
}
