//! One module per subcommand.

pub mod admin;
pub mod audit;
pub mod doctor;
pub mod init;
pub mod keys;
pub mod migrate;
pub mod secrets;
pub mod serve;
pub mod tokens;
pub mod unavailable;
pub mod users;

use std::collections::BTreeMap;
use std::process::ExitCode;

use rampart_config::{Config, ConfigError, LoadOptions, Mode};

use crate::cli::ConfigArg;

/// Exit codes shared by all commands (doctor adds its own 0/1/2 meaning).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure.
    pub const FAILURE: u8 = 1;
    /// The configuration is invalid or a guardrail refused the start.
    pub const CONFIG: u8 = 2;
    /// The command's feature is not available in this build.
    pub const UNAVAILABLE: u8 = 3;
}

/// The process environment, as the config loader wants it.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Loads the configuration named by `arg` (or `./rampart.toml`, or defaults) with the
/// process environment applied.
pub fn load_config(arg: &ConfigArg, mode_override: Option<Mode>) -> Result<Config, ConfigError> {
    rampart_config::load(&LoadOptions {
        path: arg.config.clone(),
        env: process_env(),
        mode_override,
    })
}

/// Prints a configuration error (every problem with its fix) and returns exit code 2.
pub fn config_failed(error: &ConfigError) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(exit::CONFIG)
}
