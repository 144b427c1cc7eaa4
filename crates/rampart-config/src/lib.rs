//! Rampart's configuration.
//!
//! Loading is a pipeline, and every stage adds to one list of problems so an invalid
//! config is reported in full, once:
//!
//! 1. TOML syntax ([`toml`]); a syntax error stops here, pointing at the line.
//! 2. `RAMPART_*` environment variables override keys ([`env_var_for`]).
//! 3. The tree is checked against the JSON schema of the raw config: every unknown
//!    key (with a suggestion), wrong type, bad enum value and missing required key.
//! 4. serde builds the raw config (`deny_unknown_fields` everywhere, defaults).
//! 5. Validation parses durations, sizes, CIDRs, URLs and addresses, resolves secrets
//!    from their sources and checks the rules between keys, producing a [`Config`]
//!    in which invalid states cannot be expressed.
//!
//! Guardrails ([`guardrails`], [`file_checks`]) are separate: they judge a valid
//! config for production readiness, and `serve` refuses to start when one fails.
//!
//! The process environment is never read here: callers pass it in
//! [`LoadOptions::env`], which keeps tests hermetic.

mod config;
mod env;
mod error;
mod guard;
mod raw;
mod reference;
mod schema;
mod schema_check;
mod secrets;
mod suggest;
mod units;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use config::{
    AUTH_RATE_CLASS, ApiTokensConfig, AuditConfig, AuthConfig, ClientIdentity, ClientIpHeader,
    Config, CorsConfig, CorsOrigin, CrossOriginOpenerPolicy, CrossOriginResourcePolicy, CsrfConfig,
    DevConfig, EmailConfig, EmailTransport, ForwardAuthConfig, FrameOptions, GENERAL_RATE_CLASS,
    HeaderOverrides, HeadersConfig, Hsts, IdentityConfig, JwtConfig, LockoutConfig, LogFilter,
    LogFormat, LoggingConfig, MagicLinkConfig, MasterKeySource, MetricsConfig, Mode,
    PasswordConfig, RateClass, RateKey, RateLimitBackend, RateLimitConfig, RateLimitFallback,
    RedisConfig, ReferrerPolicy, Registration, ResolvedSecret, RoleConfig, RouteAuth, RouteConfig,
    RoutePolicy, SameSite, SecretOrigin, SecretsConfig, ServerConfig, SessionConfig, SmtpConfig,
    SmtpTls, StorageBackend, StorageConfig, TenantRule, TenantSource, TlsConfig, TlsVersion,
    TotpConfig, UpstreamConfig, UpstreamMode,
};
pub use env::{ENV_PREFIX, RESERVED_ENV_VARS, env_var_for};
pub use error::{ConfigError, Problem, REDACTED};
pub use guard::{
    CHECK_IDS, Check, MIN_TOKEN_CHARS, PLACEHOLDER_SECRETS, Status, file_checks, guardrails,
    is_placeholder_secret, refuses_start,
};
pub use reference::{KeyDoc, key_reference, reference_markdown};
pub use schema::json_schema;
pub use secrets::CREDENTIALS_DIRECTORY_VAR;

use crate::error::Problems;
use crate::raw::RawConfig;

/// The config file read when no path is given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "./rampart.toml";

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The config file. `None` reads [`DEFAULT_CONFIG_PATH`] if it exists, else starts
    /// from the defaults (plus the environment).
    pub path: Option<PathBuf>,
    /// The environment: `RAMPART_*` overrides and `CREDENTIALS_DIRECTORY`. Pass
    /// `std::env::vars().collect()` in the binary; other variables are ignored.
    pub env: BTreeMap<String, String>,
    /// Forces the mode regardless of file and environment (`rampart demo` forces dev).
    pub mode_override: Option<Mode>,
}

/// Loads and validates the configuration.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let path = match &opts.path {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.is_file()),
    };
    let text = match &path {
        Some(path) => read_config_file(path)?,
        None => String::new(),
    };
    run(&text, path, &opts.env, opts.mode_override)
}

/// Validates configuration text, as if it were a config file; for tests and tools.
pub fn from_toml_str(text: &str, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
    run(text, None, env, None)
}

fn run(
    text: &str,
    source: Option<PathBuf>,
    env: &BTreeMap<String, String>,
    mode_override: Option<Mode>,
) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let mut table = match toml::from_str::<toml::Table>(text) {
        Ok(table) => table,
        Err(err) => {
            problems.push(
                "",
                None,
                syntax_message(text, source.as_deref(), &err),
                SYNTAX_FIX,
            );
            return Err(problems.into_error());
        }
    };
    let env_origins = env::apply(&mut table, env, &mut problems);
    if let Some(mode) = mode_override {
        let name = match mode {
            Mode::Dev => "dev",
            Mode::Production => "production",
        };
        table.insert("mode".to_owned(), toml::Value::String(name.to_owned()));
    }
    schema_check::check(&mut table, &mut problems);
    let raw: RawConfig = match table.try_into() {
        Ok(raw) => raw,
        Err(err) => {
            // The schema check should make this unreachable; if it is reached, the
            // schema and the raw types disagree, which is a bug in Rampart.
            problems.push(
                "",
                None,
                format!(
                    "internal error: the checked configuration did not deserialize: {}",
                    err.message()
                ),
                "report this as a bug in Rampart",
            );
            return Err(problems.into_error());
        }
    };
    let provenance = validate::Provenance {
        source,
        env,
        env_origins,
    };
    let config = validate::validate(raw, provenance, &mut problems);
    problems.finish(config)
}

const SYNTAX_FIX: &str = "correct the TOML on that line: strings need double quotes, tables are written [name], each key appears once";

/// A syntax error with its line and column. Only the parser's short message is used:
/// its full rendering quotes the offending line, which may hold a secret.
fn syntax_message(text: &str, source: Option<&Path>, err: &toml::de::Error) -> String {
    let place = err.span().map(|span| {
        let before = text.get(..span.start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(" at line {line}, column {column}")
    });
    let file = source
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default();
    format!(
        "TOML syntax error{file}{}: {}",
        place.unwrap_or_default(),
        err.message().trim()
    )
}

fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|err| {
        let mut problems = Problems::default();
        problems.push(
            "",
            None,
            format!("cannot read the config file {}: {err}", path.display()),
            "check the path given with --config or RAMPART_CONFIG",
        );
        problems.into_error()
    })
}
