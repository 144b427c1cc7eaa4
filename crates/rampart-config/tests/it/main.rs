//! Integration tests of rampart-config: one module per feature.

// clippy's allow-*-in-tests covers #[test] functions only; the shared helpers below
// are test code too, and a failed unwrap is how they report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod docs;
mod env;
mod errors;
mod gateway;
mod guard;
mod identity;
mod properties;
mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rampart_config::{Config, ConfigError, from_toml_str};

/// A strong, non-placeholder master key for tests.
pub const KEY_HEX: &str = "4f1c9a7e2b3d8c6a0e5f7b9d1c3a5e7f9b2d4c6e8a0f1b3d5c7e9a2b4d6f8c0e";

/// A strong metrics token for tests.
pub const TOKEN: &str = "mT9x2QvL7pZs4KwR8nYb3JdF6hGc1VeA";

/// A strong password pepper for tests.
pub const PEPPER: &str = "Vq8Lw3Nz6Rb1Ts9Kx4Hm7Pc2Fd5Gj0Ya";

/// An environment map from pairs.
pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Loads TOML text with an empty environment.
pub fn load(text: &str) -> Result<Config, ConfigError> {
    from_toml_str(text, &BTreeMap::new())
}

/// Loads TOML text that must be refused.
pub fn load_err(text: &str) -> ConfigError {
    match load(text) {
        Ok(_) => panic!("expected the config to be refused:\n{text}"),
        Err(err) => err,
    }
}

/// Loads TOML text and variables that must be refused.
pub fn load_env_err(text: &str, vars: &[(&str, &str)]) -> ConfigError {
    match from_toml_str(text, &env(vars)) {
        Ok(_) => panic!("expected the config to be refused"),
        Err(err) => err,
    }
}

/// The problem at `key`, or a panic listing all problems.
pub fn problem<'a>(err: &'a ConfigError, key: &str) -> &'a rampart_config::Problem {
    err.problems()
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("no problem at {key}; got:\n{err}"))
}

/// Writes a private (0600) file.
pub fn secret_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    rampart_crypto::secret_file::write_new(&path, content.as_bytes()).unwrap();
    path
}

/// Writes a world-readable (0644) file.
pub fn open_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// TOML string literal for a path.
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}
