//! Identity assertions for upstreams (F-IDHEADERS).
//!
//! Besides the plain `X-Rampart-*` headers, an upstream receives
//! `X-Rampart-Assertion`: a short-lived EdDSA JWT signed by Rampart's keyring, which
//! the upstream verifies against `/.well-known/jwks.json` — so an upstream reachable
//! by other paths than Rampart can still tell a Rampart-vouched request from a forged
//! header. Its audience is `upstream:<name>` and `token_use` is `assertion`: it is
//! never accepted as an access token (wrong audience), and an assertion for one
//! upstream is useless at another.
//!
//! Signing costs about as much as a whole proxied request, so assertions are cached
//! per credential, upstream and tenant and reused for the first half of their
//! lifetime (`jwt.assertion_ttl`, 60 s by default).

use std::sync::Arc;
use std::time::Duration;

use rampart_core::Clock;
use rampart_core::identity::Principal;
use serde::{Deserialize, Serialize};

use super::{SigningKeys, TokenError};
use crate::authenticate::cache::TtlCache;

/// Most assertions kept for reuse.
pub const ASSERTION_CACHE_CAPACITY: usize = 10_000;

/// The claims of an identity assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// Rampart's issuer.
    pub iss: String,
    /// `upstream:<name>`.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The username.
    pub username: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The tenant the request acts in, if the route is tenant-scoped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// How the caller authenticated.
    pub auth_method: String,
    /// Whether a second factor was passed.
    pub mfa: bool,
    /// Always `assertion`.
    pub token_use: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    credential: String,
    audience: Arc<str>,
    tenant: Option<String>,
    security: (Vec<String>, bool),
}

/// Signs and caches identity assertions.
pub struct Assertions {
    signing: Arc<SigningKeys>,
    issuer: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    cache: TtlCache<CacheKey, Arc<str>>,
}

impl Assertions {
    /// Assertions signed by `signing`, valid for `ttl`.
    pub fn new(
        signing: Arc<SigningKeys>,
        issuer: String,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            signing,
            issuer,
            ttl,
            clock,
            cache: TtlCache::new(ASSERTION_CACHE_CAPACITY),
        }
    }

    /// The assertion for `principal` at the upstream named `upstream`.
    pub fn assert(
        &self,
        principal: &Principal,
        upstream: &Arc<str>,
        tenant: Option<&str>,
    ) -> Result<Arc<str>, TokenError> {
        let now = self.clock.unix();
        let key = CacheKey {
            credential: principal
                .credential_id
                .clone()
                .unwrap_or_else(|| format!("{}:{}", principal.method.as_str(), principal.user_id)),
            audience: Arc::clone(upstream),
            tenant: tenant.map(str::to_owned),
            security: (principal.roles.clone(), principal.mfa),
        };
        if let Some(token) = self.cache.get(&key, now) {
            return Ok(token);
        }
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(60).max(2);
        let claims = AssertionClaims {
            iss: self.issuer.clone(),
            aud: format!("upstream:{upstream}"),
            sub: principal.user_id.to_string(),
            username: principal.username.clone(),
            roles: principal.roles.clone(),
            tenant: tenant.map(str::to_owned),
            auth_method: principal.method.as_str().to_owned(),
            mfa: principal.mfa,
            token_use: "assertion".to_owned(),
            iat: now,
            exp: now + ttl,
        };
        let token: Arc<str> = Arc::from(self.signing.keyring().sign(&claims)?);
        // Reused for the first half of its life, so the upstream always receives an
        // assertion with at least half its lifetime left.
        self.cache
            .insert(key, Arc::clone(&token), now + ttl / 2, now);
        Ok(token)
    }
}
