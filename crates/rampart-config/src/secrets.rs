//! Where secrets come from, in order of precedence.
//!
//! For a secret key `X` (`storage.url`):
//!
//! 1. the value itself, in the TOML file or its `RAMPART_*` variable;
//! 2. the file named by the companion key `X_file` (`storage.url_file`;
//!    `master_key_path` for the master key), read only if mode 0600 and owned by
//!    Rampart's user or root;
//! 3. the JSON secrets file (`secrets.file`), a flat object keyed by dotted names;
//! 4. `$CREDENTIALS_DIRECTORY/X`, where systemd's `LoadCredential=` puts secrets.
//!
//! Setting both `X` and `X_file` is an error: two sources for one secret means one of
//! them is stale, and guessing which would be wrong half the time. Values never
//! appear in problems; paths do, since they are not secret and are needed for the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rampart_crypto::SecretString;
use rampart_crypto::master_key::{MasterKey, MasterKeyError};
use rampart_crypto::secret_file::{self, SecretFileError};

use crate::config::{MasterKeySource, ResolvedSecret, SecretOrigin};
use crate::env::EnvOrigins;
use crate::error::{Problems, REDACTED, quote};
use crate::suggest::did_you_mean;

/// The environment variable systemd sets to the directory of `LoadCredential=` files.
pub const CREDENTIALS_DIRECTORY_VAR: &str = "CREDENTIALS_DIRECTORY";

/// A secret key and the key that names a file holding it.
pub(crate) struct SecretKey {
    /// Dotted name, also its name in the secrets file and the credentials directory.
    pub name: &'static str,
    /// Dotted name of the file companion.
    pub companion: &'static str,
}

/// Every secret key of the configuration.
pub(crate) const SECRET_KEYS: &[SecretKey] = &[
    SecretKey {
        name: "master_key_hex",
        companion: "master_key_path",
    },
    SecretKey {
        name: "storage.url",
        companion: "storage.url_file",
    },
    SecretKey {
        name: "redis.url",
        companion: "redis.url_file",
    },
    SecretKey {
        name: "metrics.token",
        companion: "metrics.token_file",
    },
    SecretKey {
        name: "email.smtp.password",
        companion: "email.smtp.password_file",
    },
    SecretKey {
        name: "auth.password.pepper",
        companion: "auth.password.pepper_file",
    },
];

/// Whether the key at `path` holds a secret value (whose value must not be shown).
pub(crate) fn is_secret_path(path: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.name == path)
}

/// The file companion of a secret key.
pub(crate) fn companion_of(name: &str) -> Option<&'static str> {
    SECRET_KEYS
        .iter()
        .find(|k| k.name == name)
        .map(|k| k.companion)
}

/// The secret sources other than the TOML tree itself.
pub(crate) struct Sources {
    in_file: bool,
    env_origins: EnvOrigins,
    secrets_file: Option<(PathBuf, BTreeMap<String, SecretString>)>,
    credentials_dir: Option<PathBuf>,
}

impl Sources {
    /// Reads the secrets file (if any) and notes the credentials directory.
    pub(crate) fn new(
        secrets_file: Option<&Path>,
        env: &BTreeMap<String, String>,
        env_origins: EnvOrigins,
        in_file: bool,
        problems: &mut Problems,
    ) -> Self {
        let secrets_file = secrets_file.and_then(|path| {
            read_secrets_file(path, problems).map(|entries| (path.to_owned(), entries))
        });
        let credentials_dir = env
            .get(CREDENTIALS_DIRECTORY_VAR)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        Self {
            in_file,
            env_origins,
            secrets_file,
            credentials_dir,
        }
    }

    /// Resolves secret `name` from its inline value, its file companion, the secrets
    /// file and the credentials directory, in that order. An empty inline value
    /// counts as unset.
    pub(crate) fn resolve(
        &self,
        name: &str,
        inline: Option<SecretString>,
        file: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<ResolvedSecret> {
        let companion = companion_of(name).unwrap_or(name);
        let inline = inline.filter(|v| !v.is_empty());
        match (inline, file) {
            (Some(_), Some(path)) => {
                problems.push(
                    name,
                    Some(REDACTED.to_owned()),
                    format!(
                        "set both inline and through {companion} = {}",
                        quote(&path.display().to_string())
                    ),
                    format!("keep one: remove {name} or {companion}"),
                );
                None
            }
            (Some(value), None) => {
                let origin = match self.env_origins.get(name) {
                    Some(var) => SecretOrigin::Env { var: var.clone() },
                    None => SecretOrigin::Inline {
                        in_file: self.in_file,
                    },
                };
                Some(ResolvedSecret { value, origin })
            }
            (None, Some(path)) => {
                let value = read_file(companion, path, secret_file::read_string, problems)?;
                Some(ResolvedSecret {
                    value,
                    origin: SecretOrigin::File(path.to_owned()),
                })
            }
            (None, None) => self.lookup_stores(name, problems),
        }
    }

    /// Resolves and parses the master key (`master_key_hex` / `master_key_path`).
    pub(crate) fn master_key(
        &self,
        inline: Option<SecretString>,
        file: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<MasterKeySource> {
        let resolved = self.resolve("master_key_hex", inline, file, problems)?;
        match MasterKey::from_hex(&resolved.value) {
            Ok(key) => Some(MasterKeySource {
                key,
                origin: resolved.origin,
            }),
            Err(err) => {
                let message = match &err {
                    MasterKeyError::WrongLength { expected, found } => format!(
                        "the master key must be {expected} hex characters (32 bytes), found {found}"
                    ),
                    MasterKeyError::NotHex => {
                        "the master key must be hex characters (0-9, a-f)".to_owned()
                    }
                    MasterKeyError::File(file_err) => describe_file_error(file_err).0,
                };
                let (key, value, place) = match &resolved.origin {
                    SecretOrigin::File(path) => (
                        "master_key_path",
                        quote(&path.display().to_string()),
                        format!("write it to {}", path.display()),
                    ),
                    other => (
                        "master_key_hex",
                        REDACTED.to_owned(),
                        format!("set it in {}", origin_place(other)),
                    ),
                };
                problems.push(
                    key,
                    Some(value),
                    message,
                    format!("generate a key with `openssl rand -hex 32` and {place}"),
                );
                None
            }
        }
    }

    fn lookup_stores(&self, name: &str, problems: &mut Problems) -> Option<ResolvedSecret> {
        if let Some((path, entries)) = &self.secrets_file
            && let Some(value) = entries.get(name)
        {
            if value.is_empty() {
                problems.push(
                    "secrets.file",
                    Some(quote(&path.display().to_string())),
                    format!("the entry \"{name}\" is empty"),
                    format!("give \"{name}\" a value or remove the entry"),
                );
                return None;
            }
            return Some(ResolvedSecret {
                value: value.clone(),
                origin: SecretOrigin::SecretsFile(path.clone()),
            });
        }
        let dir = self.credentials_dir.as_ref()?;
        let path = dir.join(name);
        if !path.exists() {
            return None;
        }
        // systemd makes the directory private to the service and sets the file
        // modes itself, so the 0600/owner check does not apply here.
        let value = read_file(name, &path, secret_file::read_managed_string, problems)?;
        Some(ResolvedSecret {
            value,
            origin: SecretOrigin::Credentials(path),
        })
    }
}

/// Checks mode and owner of a secret file that another component reads (TLS key,
/// client keys, signing key), so a bad file stops the load rather than a request.
pub(crate) fn check_secret_file(key: &str, path: &Path, problems: &mut Problems) {
    if let Err(err) = secret_file::check_permissions(path) {
        let (message, fix) = describe_file_error(&err);
        problems.push(key, Some(quote(&path.display().to_string())), message, fix);
    }
}

/// A secret file error as a message and the command that fixes it.
pub(crate) fn describe_file_error(err: &SecretFileError) -> (String, String) {
    match err {
        SecretFileError::Io { path, source } => {
            let fix = match source.kind() {
                std::io::ErrorKind::NotFound => "create the file or correct the path".to_owned(),
                std::io::ErrorKind::PermissionDenied => format!(
                    "let the user running Rampart read it: chown <that user> {p} && chmod 600 {p}",
                    p = path.display()
                ),
                _ => "check the path".to_owned(),
            };
            (format!("cannot read {}: {source}", path.display()), fix)
        }
        SecretFileError::TooOpen { path, mode } => (
            format!(
                "{} has mode {mode:04o}, which lets other users read it",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        ),
        SecretFileError::WrongOwner {
            path,
            owner,
            running,
        } => (
            format!(
                "{} is owned by uid {owner}, not by the user running Rampart (uid {running}) or root",
                path.display()
            ),
            format!("chown {running} {}", path.display()),
        ),
        SecretFileError::NotAFile { path } => (
            format!("{} is not a regular file", path.display()),
            "point the key at a regular file".to_owned(),
        ),
        SecretFileError::TooLarge { path } => (
            format!(
                "{} is larger than {} bytes",
                path.display(),
                secret_file::MAX_SECRET_FILE_BYTES
            ),
            "check the path: a secret file holds one key, token or URL".to_owned(),
        ),
        SecretFileError::NotUtf8 { path } => (
            format!("{} is not UTF-8 text", path.display()),
            "write the secret as text".to_owned(),
        ),
    }
}

fn read_file(
    key: &str,
    path: &Path,
    read: fn(&Path) -> Result<SecretString, SecretFileError>,
    problems: &mut Problems,
) -> Option<SecretString> {
    match read(path) {
        Ok(value) if value.is_empty() => {
            problems.push(
                key,
                Some(quote(&path.display().to_string())),
                "the file is empty",
                "write the secret into it",
            );
            None
        }
        Ok(value) => Some(value),
        Err(err) => {
            let (message, fix) = describe_file_error(&err);
            problems.push(key, Some(quote(&path.display().to_string())), message, fix);
            None
        }
    }
}

/// Reads the JSON secrets file: one flat object of strings keyed by secret names.
fn read_secrets_file(
    path: &Path,
    problems: &mut Problems,
) -> Option<BTreeMap<String, SecretString>> {
    let shown = quote(&path.display().to_string());
    let text = match secret_file::read_string(path) {
        Ok(text) => text,
        Err(err) => {
            let (message, fix) = describe_file_error(&err);
            problems.push("secrets.file", Some(shown), message, fix);
            return None;
        }
    };
    // serde_json's messages can quote the offending value; only the position is
    // reported, since the value may be a secret.
    let entries: BTreeMap<String, SecretString> = match serde_json::from_str(text.expose_secret()) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(
                "secrets.file",
                Some(shown),
                format!(
                    "not a flat JSON object of strings (error at line {}, column {})",
                    err.line(),
                    err.column()
                ),
                "write it as {\"storage.url\": \"...\", \"metrics.token\": \"...\"}",
            );
            return None;
        }
    };
    let names = || SECRET_KEYS.iter().map(|k| k.name);
    let mut ok = true;
    for name in entries.keys() {
        if !names().any(|n| n == name) {
            ok = false;
            problems.push(
                "secrets.file",
                Some(shown.clone()),
                format!(
                    "unknown secret name \"{name}\"{}",
                    did_you_mean(name, names())
                ),
                format!(
                    "use only these names: {}",
                    names().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    ok.then_some(entries)
}

/// Where an origin's value is set, for a fix text.
fn origin_place(origin: &SecretOrigin) -> String {
    match origin {
        SecretOrigin::Inline { .. } => "the environment or a file instead of the config".to_owned(),
        SecretOrigin::Env { var } => var.clone(),
        SecretOrigin::File(path)
        | SecretOrigin::SecretsFile(path)
        | SecretOrigin::Credentials(path) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_key_and_companion_is_in_the_schema() {
        let paths: Vec<String> = crate::key_reference().into_iter().map(|k| k.path).collect();
        for key in SECRET_KEYS {
            assert!(paths.iter().any(|p| p == key.name), "{}", key.name);
            assert!(
                paths.iter().any(|p| p == key.companion),
                "{}",
                key.companion
            );
        }
    }
}
