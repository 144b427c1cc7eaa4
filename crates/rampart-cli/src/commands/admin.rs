//! The first administrator (F-INIT): `rampart admin create`, and the one-time setup
//! token that `rampart serve` issues while the instance has no administrator.
//!
//! `admin create` reads the password from standard input (one trailing newline is
//! removed; it is never echoed or logged). It creates the first admin; once an admin
//! exists it refuses, unless `--force` is given, which adds another admin — the
//! break-glass path when every admin has lost their second factor (whoever runs it
//! already holds the database and the master key). Both cases are audited.
//!
//! The setup token is shown once: printed to standard output by `serve` and written
//! to `<data_dir>/setup-token` (mode 0600) — never to the log. Every start without an
//! administrator issues a fresh token (the old one stops working); once the first
//! admin exists the file is removed.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rampart_config::Config;
use rampart_crypto::SecretString;
use rampart_identity::accounts::{AccountError, Accounts, NewAccount, SetupToken};

use crate::cli::AdminCreateArgs;

use super::exit;

/// The setup token file's name in the data directory.
pub const SETUP_TOKEN_FILE: &str = "setup-token";

/// A setup token issued at start, and the file it was written to (if it could be).
#[derive(Debug)]
pub struct IssuedSetupToken {
    /// The token.
    pub token: SetupToken,
    /// `<data_dir>/setup-token`, unless writing it failed.
    pub file: Option<PathBuf>,
}

/// Longest password read from standard input, in bytes (the hasher's own limit is
/// 1024; more is refused there with a clear message).
const MAX_STDIN: u64 = 4096;

/// `rampart admin create --username U [--email E] [--force]`.
pub async fn create(args: &AdminCreateArgs) -> anyhow::Result<ExitCode> {
    let password = read_password()?;
    if password.is_empty() {
        anyhow::bail!("refusing an empty password (pipe it on standard input)");
    }
    let opened = match super::users::open(&args.config, true).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let account = NewAccount {
        username: args.username.clone(),
        password: Some(password),
        email: args.email.clone(),
        ..NewAccount::default()
    };
    let result = opened
        .accounts
        .create_admin_from_cli(account, args.force)
        .await;
    opened.close().await?;
    match result {
        Ok(account) => {
            println!(
                "created admin {} ({}); sign in and enrol a second factor: the admin role requires one",
                account.username, account.id
            );
            Ok(ExitCode::from(exit::OK))
        }
        Err(AccountError::AlreadyInitialized) => {
            eprintln!(
                "error: this instance already has an administrator; use --force to add another"
            );
            Ok(ExitCode::from(exit::FAILURE))
        }
        Err(
            error @ (AccountError::InvalidUsername(_)
            | AccountError::InvalidEmail
            | AccountError::WeakPassword(_)
            | AccountError::UsernameTaken
            | AccountError::EmailTaken),
        ) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(exit::FAILURE))
        }
        Err(error) => Err(error.into()),
    }
}

/// At start: while the instance has no administrator, issues a setup token and
/// writes it to `<data_dir>/setup-token` (0600); once one exists, removes a leftover
/// file. Returns the token for `serve` to print, with the file if it could be
/// written (a read-only data directory only costs the copy on disk: standard output
/// still shows the token).
pub async fn prepare_setup_token(
    config: &Config,
    accounts: &Accounts,
) -> anyhow::Result<Option<IssuedSetupToken>> {
    let path = config.data_dir.join(SETUP_TOKEN_FILE);
    match accounts.issue_setup_token().await? {
        Some(token) => match write_token_file(&config.data_dir, &path, &token.token) {
            Ok(()) => Ok(Some(IssuedSetupToken {
                token,
                file: Some(path),
            })),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot write the setup token file; it is printed to standard output only");
                Ok(Some(IssuedSetupToken { token, file: None }))
            }
        },
        None => {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove the used setup token file");
                }
            }
            Ok(None)
        }
    }
}

/// The operator's instructions with the token, for standard output.
pub fn setup_token_message(issued: &IssuedSetupToken) -> String {
    let token = &issued.token;
    let path = issued.file.as_deref();
    let until = token
        .expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let copy = path
        .map(|p| format!("; also in {}", p.display()))
        .unwrap_or_default();
    format!(
        "\nThis instance has no administrator yet. Create the first one with this one-time setup token\n\
         (valid until {until}{copy}):\n\n    {token}\n\n\
         POST it to /api/v1/setup as {{\"token\", \"username\", \"password\"}}, or run\n\
         `rampart admin create --username NAME` with the password on standard input.\n",
        token = token.token.expose_secret(),
    )
}

fn write_token_file(dir: &Path, path: &Path, token: &SecretString) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    // Replace rather than rewrite, so an old file with looser permissions is gone.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", path.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(token.expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

fn read_password() -> anyhow::Result<SecretString> {
    let mut buffer = String::new();
    std::io::stdin()
        .take(MAX_STDIN)
        .read_to_string(&mut buffer)
        .context("cannot read the password from standard input")?;
    let trimmed = buffer.strip_suffix('\n').unwrap_or(&buffer);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned();
    zeroize::Zeroize::zeroize(&mut buffer);
    Ok(SecretString::new(trimmed))
}
