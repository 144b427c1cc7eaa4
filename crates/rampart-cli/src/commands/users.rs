//! `rampart users list|disable|enable|unlock` (F-USERS, F-LOCKOUT): user management
//! from the command line, for operators with the database and the master key.
//!
//! The commands open the store like the server does and go through the same
//! accounts service, so every change is audited (actor `cli`) and revokes the
//! user's sessions and tokens exactly as the admin API would.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_core::audit::{AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::{Clock, SystemClock};
use rampart_identity::accounts::{AccountError, Accounts, Actor};
use rampart_store::Store;

use crate::bootstrap::{self, Migrations, Sealing};
use crate::cli::{ConfigArg, ConfigOnly, UserArg};
use crate::services;

use super::{config_failed, exit, load_config};

/// The accounts service over the configured database, and what must be closed.
pub(crate) struct Opened {
    /// The service.
    pub accounts: Arc<Accounts>,
    audit: Arc<Auditor>,
    store: Store,
}

impl Opened {
    /// Flushes the audit log and closes the database.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        services::flush_fanout(self.accounts.fanout()).await;
        self.audit
            .shutdown()
            .await
            .context("cannot flush the audit log")?;
        self.store.close().await;
        Ok(())
    }
}

/// Opens the store (schema must be current), unseals the keys — generating them
/// first when `initialize` and the instance is new — and builds the services.
pub(crate) async fn open(
    arg: &ConfigArg,
    initialize: bool,
) -> anyhow::Result<Result<Opened, ExitCode>> {
    let config = match load_config(arg, None) {
        Ok(config) => config,
        Err(error) => return Ok(Err(config_failed(&error))),
    };
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Require).await?;
    let (keys, sealing) = bootstrap::unseal(&config, &store, initialize).await?;
    let keys = Arc::new(keys);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = services::start_audit(&config, &store, &keys, Arc::clone(&clock)).await?;
    if sealing == Sealing::Initialized {
        audit
            .record(AuditEvent::new(EventKind::InstanceInitialized, Outcome::Success).actor("cli"))
            .await?;
    }
    let roles = Arc::new(services::roles(&config));
    let (accounts, _) = services::identity(
        &config,
        &store,
        &keys,
        &audit,
        &clock,
        &roles,
        &services::fanout(&config, services::FanoutRole::Command)?,
    )
    .await?;
    Ok(Ok(Opened {
        accounts,
        audit,
        store,
    }))
}

/// Lists users: username, id, roles, and flags (disabled, MFA, locked).
pub async fn list(args: &ConfigOnly) -> anyhow::Result<ExitCode> {
    let opened = match open(&args.config, false).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let users = opened.accounts.users().await?;
    if users.is_empty() {
        println!("no users");
    }
    for user in &users {
        let account = &user.account;
        let mut flags = Vec::new();
        if account.disabled {
            flags.push("disabled".to_owned());
        }
        if account.mfa_enabled {
            flags.push("mfa".to_owned());
        }
        if let Some(until) = user.locked_until {
            flags.push(format!("locked until {until}"));
        }
        println!(
            "{:<24} {}  roles={}  {}",
            account.username,
            account.id,
            account.roles.join(","),
            flags.join(" ")
        );
    }
    opened.close().await?;
    Ok(ExitCode::from(exit::OK))
}

/// Disables a user: their sessions, refresh tokens and API tokens stop working.
pub async fn disable(args: &UserArg) -> anyhow::Result<ExitCode> {
    change(args, Change::Disable).await
}

/// Re-enables a disabled user.
pub async fn enable(args: &UserArg) -> anyhow::Result<ExitCode> {
    change(args, Change::Enable).await
}

/// Lifts a user's lockout.
pub async fn unlock(args: &UserArg) -> anyhow::Result<ExitCode> {
    change(args, Change::Unlock).await
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Disable,
    Enable,
    Unlock,
}

async fn change(args: &UserArg, change: Change) -> anyhow::Result<ExitCode> {
    let opened = match open(&args.config, false).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let result = apply(&opened.accounts, &args.username, change).await;
    opened.close().await?;
    match result {
        Ok(message) => {
            println!("{message}");
            Ok(ExitCode::from(exit::OK))
        }
        Err(AccountError::NoSuchUser | AccountError::InvalidUsername(_)) => {
            eprintln!("error: no user named {:?}", args.username);
            Ok(ExitCode::from(exit::FAILURE))
        }
        Err(error) => Err(error.into()),
    }
}

async fn apply(
    accounts: &Accounts,
    username: &str,
    change: Change,
) -> Result<String, AccountError> {
    let user = accounts.account_by_username(username).await?;
    let actor = Actor::cli();
    Ok(match change {
        Change::Disable => {
            accounts.set_disabled(&actor, &user.id, true).await?;
            format!("disabled {}", user.username)
        }
        Change::Enable => {
            accounts.set_disabled(&actor, &user.id, false).await?;
            format!("enabled {}", user.username)
        }
        Change::Unlock => {
            accounts.unlock(&actor, &user.id).await?;
            format!("unlocked {}", user.username)
        }
    })
}
