//! Building the services behind [`AppState`] from the configuration, the store and
//! the unsealed keys. Each feature's service is constructed here, in one place.

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use rampart_config::{Config, Mode};
use rampart_config::{RateKey, RateLimitBackend};
use rampart_core::Clock;
use rampart_core::audit::{AuditOptions, Auditor, CheckpointSigner};
use rampart_core::identity::{RoleDefinition, Roles};
use rampart_core::keys::DataKeys;
use rampart_core::vault::Vault;
use rampart_http::client_ip::TrustedProxies;
use rampart_http::edge::EdgeSettings;
use rampart_http::state::{AppInner, AppState};
use rampart_identity::accounts::{self, Accounts, AccountsDeps, AccountsSettings};
use rampart_identity::authenticate::Authenticator;
use rampart_identity::fanout::{Fanout, Targets, Transport};
use rampart_identity::magic::{MagicLinkAccounts, MagicLinkDeps, MagicLinkSettings, MagicLinks};
use rampart_identity::mail::Mailer;
use rampart_identity::sessions::{CredentialRevoker, Sessions};
use rampart_identity::tokens::api::ApiTokens;
use rampart_identity::tokens::assertion::Assertions;
use rampart_identity::tokens::{SigningKeys, Tokens};
use rampart_proxy::GatewayDeps;
use rampart_ratelimit::{Classes, KeyBy, Limit, RateLimiter};
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

/// Whether a process listens on the fan-out channel (servers) or only publishes
/// (maintenance commands, which hold no caches worth keeping coherent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutRole {
    /// Publish and subscribe.
    Server,
    /// Publish only.
    Command,
}

/// The revocation fan-out (F-HA, `rampart_identity::fanout`): with `[redis]`, a hub
/// whose messages travel on the channel `<redis.key_prefix>:invalidate`
/// (`rampart_redis::Fanout`); without Redis, a local hub and nothing changes.
pub fn fanout(config: &Config, role: FanoutRole) -> anyhow::Result<Arc<Fanout>> {
    let Some(redis) = &config.redis else {
        return Ok(Fanout::local());
    };
    let hub = Fanout::shared();
    let settings = rampart_redis::FanoutSettings {
        channel: format!("{}:invalidate", redis.key_prefix),
        connect_timeout: redis.connect_timeout,
        response_timeout: redis.response_timeout,
        resync: hub.resync_payload(),
    };
    let transport = match role {
        FanoutRole::Server => rampart_redis::Fanout::start(
            &redis.url.value,
            &settings,
            Arc::new(HubListener(Arc::downgrade(&hub))),
        ),
        FanoutRole::Command => rampart_redis::Fanout::publisher(&redis.url.value, &settings),
    }
    .context("cannot set up the revocation fan-out ([redis])")?;
    hub.set_transport(Arc::new(RedisTransport(transport)));
    if role == FanoutRole::Server {
        tracing::info!(
            channel = %settings.channel,
            "revocation fan-out on Redis; cached credentials live at most 1 s until subscribed"
        );
    }
    Ok(hub)
}

/// Before a maintenance command exits: waits (at most 5 s) until its invalidations
/// have reached Redis, so running servers evict at once; warns if they have not (the
/// servers then see the change within their cache lifetime).
pub async fn flush_fanout(fanout: &Fanout) {
    if !fanout.flush(Duration::from_secs(5)).await {
        tracing::warn!(
            "could not publish the change on the revocation fan-out; running servers see it within their cache lifetime (at most 10 s)"
        );
    }
}

/// Carries the hub's messages on Redis.
struct RedisTransport(rampart_redis::Fanout);

#[async_trait::async_trait]
impl Transport for RedisTransport {
    fn send(&self, payload: Vec<u8>) {
        self.0.publish(payload);
    }

    async fn flush(&self, within: Duration) -> bool {
        self.0.flush(within).await
    }
}

/// Hands what arrives on Redis to the hub (weakly: the hub owns the transport).
struct HubListener(Weak<Fanout>);

impl rampart_redis::Listener for HubListener {
    fn subscribed(&self) {
        if let Some(hub) = self.0.upgrade() {
            hub.subscribed();
        }
    }

    fn message(&self, payload: &[u8]) {
        if let Some(hub) = self.0.upgrade() {
            hub.receive(payload);
        }
    }

    fn lost(&self) {
        if let Some(hub) = self.0.upgrade() {
            hub.lost();
        }
    }
}

/// The identity services: sessions, tokens, API tokens, accounts (which revoke
/// credentials through the sessions service) and the authenticator over all of them,
/// publishing invalidations through `fanout` and evicting what it receives. Starts
/// the keyring's background refresh.
pub async fn identity(
    config: &Config,
    store: &Store,
    keys: &Arc<DataKeys>,
    audit: &Arc<Auditor>,
    clock: &Arc<dyn Clock>,
    roles: &Arc<Roles>,
    fanout: &Arc<Fanout>,
) -> anyhow::Result<(Arc<Accounts>, Arc<Authenticator>)> {
    let shared = Arc::new(store.clone());
    let sessions = Arc::new(
        Sessions::new(
            &config.session,
            shared.clone(),
            Arc::clone(keys),
            Arc::clone(clock),
            Arc::clone(audit),
        )
        .with_fanout(Arc::clone(fanout)),
    );
    let signing = Arc::new(
        SigningKeys::open(
            &config.jwt,
            shared.clone(),
            Arc::clone(keys),
            Arc::clone(clock),
        )
        .await
        .context("cannot open the JWT signing keyring")?,
    );
    signing.spawn_refresh();
    let tokens = Arc::new(
        Tokens::new(
            &config.jwt,
            signing,
            shared.clone(),
            Arc::clone(keys),
            Arc::clone(clock),
            Arc::clone(audit),
        )
        .with_fanout(Arc::clone(fanout)),
    );
    let api_tokens = Arc::new(
        ApiTokens::new(
            &config.api_tokens,
            shared.clone(),
            Arc::clone(clock),
            Arc::clone(audit),
        )
        .with_fanout(Arc::clone(fanout)),
    );
    let revoker = Arc::new(CredentialRevoker::new(
        Arc::clone(&sessions),
        Arc::clone(&tokens),
        Arc::clone(&api_tokens),
    ));
    let accounts = Arc::new(
        Accounts::new(
            AccountsDeps {
                store: shared,
                keys: Arc::clone(keys),
                clock: Arc::clone(clock),
                audit: Arc::clone(audit),
                roles: Arc::clone(roles),
                revoker,
            },
            accounts::password_hasher(config).context("invalid [auth.password] settings")?,
            AccountsSettings::from_config(config),
        )
        .with_fanout(Arc::clone(fanout)),
    );
    fanout.attach(Targets {
        sessions: Arc::downgrade(&sessions),
        tokens: Arc::downgrade(&tokens),
        api_tokens: Arc::downgrade(&api_tokens),
        accounts: Arc::downgrade(&accounts),
    });
    let mut authenticator = Authenticator::new(
        sessions,
        tokens,
        api_tokens,
        accounts.clone(),
        config.auth.danger_accept_query_tokens && config.mode == Mode::Dev,
    );
    if config.mode == Mode::Dev
        && let Some(user) = &config.dev.simulate_user
    {
        authenticator = authenticator.with_simulated_user(user.clone(), accounts.clone());
    }
    let authenticator = Arc::new(authenticator);
    authenticator.spawn_housekeeping(std::time::Duration::from_secs(600));
    Ok((accounts, authenticator))
}

/// Everything handlers need.
pub async fn app_state(
    config: Arc<Config>,
    store: &Store,
    keys: Arc<DataKeys>,
    audit: Arc<Auditor>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    let vault = Arc::new(Vault::new(
        Arc::new(store.clone()),
        Arc::clone(&keys),
        Arc::clone(&clock),
    ));
    let roles = Arc::new(roles(&config));
    let fanout = fanout(&config, FanoutRole::Server)?;
    let (accounts, auth) = identity(&config, store, &keys, &audit, &clock, &roles, &fanout).await?;
    let magic = magic_links(&config, store, &accounts, &audit, &clock)?;
    let limiter = rate_limiter(&config, Arc::clone(&clock)).await?;
    let classes = rate_classes(&config, &limiter);
    let assertions = Arc::new(Assertions::new(
        Arc::clone(auth.tokens().signing()),
        config.jwt.issuer.clone(),
        config.jwt.assertion_ttl,
        Arc::clone(&clock),
    ));
    Ok(AppState::new(AppInner {
        roles,
        config,
        clock,
        audit,
        keys,
        vault,
        accounts,
        auth,
        magic,
        limiter,
        classes,
        assertions,
    }))
}

/// The rate limiter for `[rate_limit]`: memory, or Redis with the local fallback.
pub async fn rate_limiter(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<RateLimiter> {
    match (config.rate_limit.backend, &config.redis) {
        (RateLimitBackend::Redis, Some(redis)) => Ok(RateLimiter::redis(
            &redis.url.value,
            redis.connect_timeout,
            redis.response_timeout,
            &redis.key_prefix,
            clock,
        )
        .await?),
        _ => Ok(RateLimiter::memory(clock)),
    }
}

/// One shared bucket per configured rate class. With rate limiting disabled there
/// are none, and nothing is limited (doctor warns).
pub fn rate_classes(config: &Config, limiter: &RateLimiter) -> Classes {
    if !config.rate_limit.enabled {
        return Classes::default();
    }
    Classes::new(
        limiter,
        config.rate_limit.classes.iter().map(|(name, class)| {
            let key_by = match class.key {
                RateKey::Ip => KeyBy::Ip,
                RateKey::Principal => KeyBy::Principal,
                RateKey::Token => KeyBy::Token,
            };
            (
                name.as_str(),
                Limit::new(class.rate, class.per, class.burst),
                key_by,
            )
        }),
    )
}

/// The gateway's services, from the application state.
pub fn gateway_deps(state: &AppState) -> GatewayDeps {
    GatewayDeps {
        authenticator: Arc::clone(&state.auth),
        roles: Arc::clone(&state.roles),
        vault: Arc::clone(&state.vault),
        assertions: Arc::clone(&state.assertions),
        audit: Arc::clone(&state.audit),
        limiter: state.limiter.clone(),
        classes: state.classes.clone(),
        clock: Arc::clone(&state.clock),
    }
}

/// The edge settings (client resolution, HSTS) for the middleware stack.
pub fn edge_settings(config: &Config) -> EdgeSettings {
    EdgeSettings {
        trusted: TrustedProxies::new(config.server.trusted_proxies.clone()).with_client_ip_header(
            config
                .server
                .client_ip_header
                .map(|h| http::HeaderName::from_static(h.as_str())),
        ),
        hsts: config
            .headers
            .hsts
            .as_ref()
            .and_then(|h| http::HeaderValue::from_str(&h.header_value()).ok()),
    }
}

/// The mailer (`[email]`) and the magic-link service over it. Refuses the outbox
/// transport in production (as the `email.outbox` guardrail does).
pub fn magic_links(
    config: &Config,
    store: &Store,
    accounts: &Arc<Accounts>,
    audit: &Arc<Auditor>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<MagicLinks>> {
    let mailer = Mailer::from_config(&config.email, config.mode, Arc::clone(clock))
        .context("cannot set up outgoing mail ([email])")?;
    tracing::info!(transport = mailer.transport_name(), "outgoing mail");
    Ok(Arc::new(MagicLinks::start(
        MagicLinkDeps {
            store: Arc::new(store.clone()),
            accounts: Arc::clone(accounts) as Arc<dyn MagicLinkAccounts>,
            mailer: Arc::new(mailer),
            audit: Arc::clone(audit),
            clock: Arc::clone(clock),
        },
        MagicLinkSettings::from_config(config),
    )))
}
