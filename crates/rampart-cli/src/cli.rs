//! The command-line interface (F-CLI): every subcommand and its options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Rampart: identity, sessions, access control, rate limiting and audit in front of
/// any self-hosted web service — configured, not coded.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file (TOML) [default: ./rampart.toml if it exists]. Every key can
    /// also be set with RAMPART_<SECTION>_<KEY> environment variables; see
    /// docs/CONFIG.md.
    #[arg(long, short = 'c', env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Rampart's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: Rampart's API, forward-auth endpoint and the proxied routes.
    Serve(ServeArgs),
    /// Write a commented production configuration, a master key and signing key into
    /// a new directory, and print the next steps.
    Init(InitArgs),
    /// Check a configuration and its deployment against the hardening checklist.
    /// Exit code 0: all pass; 1: warnings; 2: failures.
    Doctor(DoctorArgs),
    /// Apply pending database migrations (or list them with --dry-run).
    Migrate(MigrateArgs),
    /// Take a consistent online snapshot of the SQLite database with a checksum file.
    /// Not available in this build yet (F-BACKUP): it says so and exits with code 3.
    Backup(BackupArgs),
    /// Restore a snapshot taken by `rampart backup` after verifying its checksum.
    /// Not available in this build yet (F-BACKUP): it says so and exits with code 3.
    Restore(RestoreArgs),
    /// Inspect and rotate keys (data keys, signing keys, master key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage vault secrets (stored encrypted; reads are masked).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Verify and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Instance administration (first admin account).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Start a self-contained demo: dev mode, data in a fresh directory, a built-in echo
    /// upstream and a proxied route to it. Prints the URLs to try.
    Demo(DemoArgs),
}

/// `rampart serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Apply pending migrations before starting (production never migrates on its own).
    #[arg(long)]
    pub migrate: bool,
}

/// `rampart init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create (must not exist or be empty).
    #[arg(long)]
    pub dir: PathBuf,
}

/// `rampart doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// List pending migrations and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `rampart backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Snapshot file to write; `<FILE>.sha256` is written beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// `rampart restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Snapshot file written by `rampart backup`.
    #[arg(long)]
    pub from: PathBuf,
}

/// `rampart keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List key ids, purposes and dates (never key material).
    List(ConfigOnly),
    /// Rotate the signing key (--signing) or re-wrap data keys under a new master key
    /// (--master), without downtime and without logging anyone out.
    Rotate(RotateArgs),
}

/// Arguments for commands that need only the configuration.
#[derive(Debug, Args)]
pub struct ConfigOnly {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `rampart keys rotate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["signing", "master"])))]
pub struct RotateArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Rotate the JWT signing key; the previous key stays valid for the token lifetime.
    #[arg(long)]
    pub signing: bool,
    /// Re-wrap every data key under the master key given in RAMPART_NEW_MASTER_KEY_HEX.
    #[arg(long)]
    pub master: bool,
}

/// `rampart users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    List(ConfigOnly),
    /// Disable a user (their sessions and tokens stop working).
    Disable(UserArg),
    /// Re-enable a disabled user.
    Enable(UserArg),
    /// Clear a lockout.
    Unlock(UserArg),
}

/// A user named on the command line.
#[derive(Debug, Args)]
pub struct UserArg {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Username.
    pub username: String,
}

/// `rampart tokens …`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user; the token is printed once.
    Create(TokenCreateArgs),
    /// List API tokens (ids, names, scopes, expiry, last use — never the token).
    List(ConfigOnly),
    /// Revoke an API token by id.
    Revoke(TokenRevokeArgs),
}

/// `rampart tokens create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Owner of the token.
    #[arg(long)]
    pub user: String,
    /// A name to recognise the token by.
    #[arg(long)]
    pub name: String,
    /// Scopes (permissions) granted, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Lifetime, e.g. 90d.
    #[arg(long)]
    pub expires_in: Option<String>,
}

/// `rampart tokens revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Token id as shown by `rampart tokens list`.
    pub id: String,
}

/// `rampart secrets …`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret, read from stdin or --file.
    Set(SecretSetArgs),
    /// List secrets with masked values.
    List(ConfigOnly),
    /// Remove a secret.
    Rm(SecretNameArg),
}

/// `rampart secrets set`.
#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Secret name, e.g. third_party.
    pub name: String,
    /// Read the value from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// A secret named on the command line.
#[derive(Debug, Args)]
pub struct SecretNameArg {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Secret name.
    pub name: String,
}

/// `rampart audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain and signed checkpoints; names the first bad record.
    Verify(AuditVerifyArgs),
    /// Export records as JSON lines.
    Export(AuditExportArgs),
}

/// `rampart audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Verify this JSON-lines file (an audit file or an export) on its own instead of
    /// the configured sinks.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// With --file: trust checkpoints signed by this Ed25519 public key (hex) instead
    /// of the instance's audit keys; needs no master key (offline verification).
    #[arg(long, requires = "file")]
    pub public_key: Option<String>,
}

/// `rampart audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only records at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `rampart admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the first admin account (prompts for the password on stdin).
    Create(AdminCreateArgs),
}

/// `rampart admin create`.
#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Username of the admin.
    #[arg(long)]
    pub username: String,
    /// Email of the admin.
    #[arg(long)]
    pub email: Option<String>,
    /// Add an admin even though the instance already has one (break-glass, audited).
    #[arg(long)]
    pub force: bool,
}

/// `rampart demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data directory for the demo (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address for Rampart to listen on.
    #[arg(long, default_value = "127.0.0.1:9171")]
    pub listen: std::net::SocketAddr,
}
