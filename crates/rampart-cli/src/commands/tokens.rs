//! `rampart tokens create|list|revoke` (F-APITOKEN): API tokens from the command
//! line, for operators with the database and the master key.
//!
//! The commands go through the same API token service as `/api/v1/me/tokens`, so
//! the same rules hold (scopes, never `admin` unless `api_tokens.allow_admin`, at most
//! `api_tokens.max_ttl`) and every change is audited with actor `cli`. The token
//! value is printed once, on its own line on standard output, so it can be captured
//! (`TOKEN=$(rampart tokens create … | tail -n1)`); nothing else ever shows it.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_core::audit::Auditor;
use rampart_core::store::Removal;
use rampart_core::{Clock, SystemClock};
use rampart_identity::accounts::{AccountError, Accounts};
use rampart_identity::authenticate::Authenticator;
use rampart_identity::tokens::api::{ApiTokenError, NewApiToken};
use rampart_store::Store;

use crate::bootstrap::{self, Migrations};
use crate::cli::{ConfigArg, ConfigOnly, TokenCreateArgs, TokenRevokeArgs};
use crate::services;

use super::{config_failed, exit, load_config};

/// The services over the configured database, and what must be closed.
struct Opened {
    accounts: Arc<Accounts>,
    auth: Arc<Authenticator>,
    audit: Arc<Auditor>,
    store: Store,
}

impl Opened {
    async fn close(self) -> anyhow::Result<()> {
        services::flush_fanout(self.accounts.fanout()).await;
        self.audit
            .shutdown()
            .await
            .context("cannot flush the audit log")?;
        self.store.close().await;
        Ok(())
    }
}

async fn open(arg: &ConfigArg) -> anyhow::Result<Result<Opened, ExitCode>> {
    let config = match load_config(arg, None) {
        Ok(config) => config,
        Err(error) => return Ok(Err(config_failed(&error))),
    };
    let store = bootstrap::connect(&config).await?;
    bootstrap::ensure_schema(&store, Migrations::Require).await?;
    let (keys, _) = bootstrap::unseal(&config, &store, false).await?;
    let keys = Arc::new(keys);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = services::start_audit(&config, &store, &keys, Arc::clone(&clock)).await?;
    let roles = Arc::new(services::roles(&config));
    let (accounts, auth) = services::identity(
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
        auth,
        audit,
        store,
    }))
}

/// Creates a token for `--user` and prints it once.
pub async fn create(args: &TokenCreateArgs) -> anyhow::Result<ExitCode> {
    let ttl = match &args.expires_in {
        Some(text) => Some(
            humantime::parse_duration(text)
                .with_context(|| format!("--expires-in {text:?} is not a duration such as 90d"))?,
        ),
        None => None,
    };
    let opened = match open(&args.config).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let owner = match opened.accounts.account_by_username(&args.user).await {
        Ok(account) => account,
        Err(AccountError::NoSuchUser | AccountError::InvalidUsername(_)) => {
            opened.close().await?;
            eprintln!("error: no user named {:?}", args.user);
            return Ok(ExitCode::from(exit::FAILURE));
        }
        Err(error) => return Err(error.into()),
    };
    let result = opened
        .auth
        .api_tokens()
        .create(
            &owner.id,
            NewApiToken {
                name: args.name.clone(),
                scopes: args.scopes.clone(),
                ttl,
            },
            "cli",
        )
        .await;
    opened.close().await?;
    match result {
        Ok(created) => {
            let record = &created.record;
            println!(
                "created API token {} for {} (scopes {}, expires {}); it is shown only now:",
                record.id,
                owner.username,
                record.scopes.join(","),
                format_time(record.expires_at),
            );
            println!("{}", created.token.expose_secret());
            Ok(ExitCode::from(exit::OK))
        }
        Err(
            error @ (ApiTokenError::InvalidName
            | ApiTokenError::InvalidScopes
            | ApiTokenError::AdminScope
            | ApiTokenError::InvalidLifetime { .. }),
        ) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(exit::FAILURE))
        }
        Err(error) => Err(error.into()),
    }
}

/// Lists every API token: id, owner, name, scopes, expiry, last use — never the
/// token.
pub async fn list(args: &ConfigOnly) -> anyhow::Result<ExitCode> {
    let opened = match open(&args.config).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let tokens = opened.auth.api_tokens().list(None).await;
    let mut owners = std::collections::BTreeMap::new();
    if let Ok(tokens) = &tokens {
        for token in tokens {
            if !owners.contains_key(&token.user_id) {
                let name = opened
                    .accounts
                    .account(&token.user_id)
                    .await
                    .map_or_else(|_| token.user_id.to_string(), |a| a.username);
                owners.insert(token.user_id.clone(), name);
            }
        }
    }
    opened.close().await?;
    let tokens = tokens?;
    if tokens.is_empty() {
        println!("no API tokens");
    }
    for token in tokens {
        println!(
            "{}  user={}  name={:?}  scopes={}  expires={}  last_used={}",
            token.id,
            owners.get(&token.user_id).map_or("?", String::as_str),
            token.name,
            token.scopes.join(","),
            format_time(token.expires_at),
            token
                .last_used_at
                .map_or_else(|| "never".to_owned(), format_time),
        );
    }
    Ok(ExitCode::from(exit::OK))
}

/// Revokes a token by id.
pub async fn revoke(args: &TokenRevokeArgs) -> anyhow::Result<ExitCode> {
    let opened = match open(&args.config).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let result = opened.auth.api_tokens().revoke(&args.id, None, "cli").await;
    opened.close().await?;
    match result? {
        Removal::Removed => {
            println!("revoked {}", args.id);
            Ok(ExitCode::from(exit::OK))
        }
        Removal::Absent => {
            eprintln!("error: no API token with id {:?}", args.id);
            Ok(ExitCode::from(exit::FAILURE))
        }
    }
}

fn format_time(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}
