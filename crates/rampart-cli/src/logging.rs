//! Structured logs (F-LOGS): `tracing` with the level and format from the config.
//!
//! Secrets never reach this layer: they are `SecretString`s whose `Debug` and
//! `Display` print `[redacted]`, and request logs omit query strings.

use rampart_config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process; later calls (tests
/// that start several servers) keep the first subscriber.
pub fn init(config: &LoggingConfig) {
    let filter =
        EnvFilter::try_new(config.level.as_str()).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if result.is_err() {
        tracing::debug!("a log subscriber was already installed");
    }
}
