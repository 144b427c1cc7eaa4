//! Building the services behind [`AppState`] from the configuration, the store and
//! the unsealed keys. Each feature's service is constructed here, in one place.

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;

use anyhow::Context as _;
use rampart_config::Config;
use rampart_core::Clock;
use rampart_core::audit::{AuditOptions, Auditor, CheckpointSigner};
use rampart_core::identity::{RoleDefinition, Roles};
use rampart_core::keys::DataKeys;
use rampart_core::vault::Vault;
use rampart_http::state::{AppInner, AppState};
use rampart_store::Store;

/// The audit options for the configured `[audit]` section.
pub fn audit_options(config: &Config) -> AuditOptions {
    AuditOptions {
        database: config.audit.database,
        path: config.audit.path.clone(),
        queue_capacity: config.audit.queue_capacity,
        checkpoint_every: NonZeroU64::new(u64::from(config.audit.checkpoint_every.get()))
            .unwrap_or(NonZeroU64::MIN),
        checkpoint_interval: config.audit.checkpoint_interval,
        max_batch: NonZeroUsize::new(500).unwrap_or(NonZeroUsize::MIN),
        ..AuditOptions::default()
    }
}

/// Starts the audit writer (recovering the chain head from the sinks).
pub async fn start_audit(
    config: &Config,
    store: &Store,
    keys: &DataKeys,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<Auditor>> {
    let auditor = Auditor::start(
        Arc::new(store.clone()),
        audit_options(config),
        CheckpointSigner::from_data_keys(keys),
        clock,
    )
    .await
    .context("cannot start the audit log")?;
    Ok(Arc::new(auditor))
}

/// The configured roles (`[roles]`, or the defaults `admin` and `user`).
pub fn roles(config: &Config) -> Roles {
    let roles = config
        .roles
        .iter()
        .map(|(name, role)| {
            (
                name.clone(),
                RoleDefinition {
                    permissions: role.permissions.clone(),
                    require_mfa: role.require_mfa,
                },
            )
        })
        .collect();
    Roles::new(roles, config.api_tokens.allow_admin)
}

/// Everything handlers need.
pub fn app_state(
    config: Arc<Config>,
    store: &Store,
    keys: Arc<DataKeys>,
    audit: Arc<Auditor>,
    clock: Arc<dyn Clock>,
) -> AppState {
    let vault = Arc::new(Vault::new(
        Arc::new(store.clone()),
        Arc::clone(&keys),
        Arc::clone(&clock),
    ));
    AppState::new(AppInner {
        roles: Arc::new(roles(&config)),
        config,
        clock,
        audit,
        keys,
        vault,
    })
}
