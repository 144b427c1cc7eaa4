//! The application state shared by every handler.
//!
//! One struct, built once at start by the binary (`rampart-cli`'s `services`
//! module) and cloned cheaply into handlers. Features add their service here as a
//! field; handlers take `State<AppState>` and use what they need.

use std::ops::Deref;
use std::sync::Arc;

use rampart_config::Config;
use rampart_core::Clock;
use rampart_core::audit::Auditor;
use rampart_core::identity::Roles;
use rampart_core::keys::DataKeys;
use rampart_core::vault::Vault;

/// Everything handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl AppState {
    /// Wraps the services.
    pub fn new(inner: AppInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct AppInner {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The audit log.
    pub audit: Arc<Auditor>,
    /// Roles and permissions.
    pub roles: Arc<Roles>,
    /// The unsealed data keys.
    pub keys: Arc<DataKeys>,
    /// The secrets vault.
    pub vault: Arc<Vault>,
    /// Users, passwords, MFA, the login state machine (`rampart_identity::accounts`).
    pub accounts: Arc<rampart_identity::accounts::Accounts>,
    /// Request authentication, and through it sessions, access/refresh tokens and API
    /// tokens (`rampart_identity::{authenticate, sessions, tokens}`).
    pub auth: Arc<rampart_identity::authenticate::Authenticator>,
    /// Email magic links (`rampart_identity::magic`).
    pub magic: Arc<rampart_identity::magic::MagicLinks>,
    /// The rate limiter (memory or Redis with local fallback).
    pub limiter: rampart_ratelimit::RateLimiter,
    /// The configured rate classes, shared by own endpoints and the gateway.
    pub classes: rampart_ratelimit::Classes,
    /// Signed identity assertions for upstreams and forward-auth.
    pub assertions: Arc<rampart_identity::tokens::assertion::Assertions>,
}
