//! Tokens for API clients: EdDSA access tokens (F-JWT), rotating refresh tokens
//! (F-REFRESH) and static API tokens (F-APITOKEN, [`api`]).
//!
//! # Access tokens
//!
//! JWTs signed by the active key of the [`SigningKeys`] keyring, `jwt.access_ttl`
//! (15 minutes) long, with `iss`, `aud`, `sub`, `exp`, `iat`, `nbf`, `jti`, the refresh
//! family id `sid`, `mfa` and the user's security version `sv`. Verification is the
//! crypto crate's fixed sequence (EdDSA only, no `jku`/`x5u`/`jwk`, kid must be in the
//! keyring) against a [`Validation`] from `[jwt]`, then: the family must not be
//! revoked (logout, reuse) and — in the authenticator — the user must be enabled with
//! a security version no newer than `sv`.
//!
//! Hot path: a verified token is cached by the SHA-256 of its text (at most
//! [`VERIFIED_CACHE_CAPACITY`] entries, each until the token's own `exp` + leeway), so
//! a token is signature-verified once, not on every request. Revoking a family evicts
//! its tokens from this process's cache at once and is published, so other replicas
//! evict within 1 s ([`crate::fanout`]); family states are cached for at most
//! [`FAMILY_CACHE_TTL_SECS`] (1 s while the fan-out is down).
//!
//! # Refresh tokens
//!
//! Opaque 256-bit ([`RefreshToken`]), `jwt.refresh_ttl` (30 days), stored as SHA-256,
//! grouped in a family per login, rotated on every use. The spend is one conditional
//! update in the store, so concurrent presenters cannot fork the family: exactly one
//! spends it, and the others — if within `jwt.refresh_reuse_leeway` — receive the
//! **same** successor, which the spender stored sealed (Session data key, bound to the
//! spent token's hash) for just that window. A spent token presented after the leeway
//! is theft or a replay: the whole family is revoked and `token.reuse_detected` is
//! audited.

pub mod api;
pub mod assertion;
mod keyring;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::Duration;

use rampart_config::JwtConfig;
use rampart_core::audit::{AuditError, AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::session::{RefreshFamily, RefreshRecord, Spend, Successor, TokenStore};
use rampart_core::identity::{UserDirectory, UserId};
use rampart_core::keys::{DataKeys, KeyPurpose};
use rampart_core::store::{Removal, StoreError};
use rampart_core::{Clock, ErrorKind};
use rampart_crypto::envelope;
use rampart_crypto::jwt::{JwtError, Validation};
use rampart_crypto::random::RandomError;
use rampart_crypto::token::{RefreshToken, hash_token};
use rampart_crypto::{KeyId, SecretString};
use serde::{Deserialize, Serialize};

pub use keyring::{FORCED_RELOAD_INTERVAL, KeyInfo, REFRESH_INTERVAL, Rotation, SigningKeys};

use crate::authenticate::cache::TtlCache;
use crate::fanout::{Fanout, Invalidation};
use crate::sessions::{ClientDetails, method_name, public_id};
use crate::verified::VerifiedIdentity;

/// Most verified access tokens kept in memory.
pub const VERIFIED_CACHE_CAPACITY: usize = 10_000;

/// How long a refresh family's state (active or revoked) is trusted from memory.
pub const FAMILY_CACHE_TTL_SECS: i64 = 10;

/// Domain separation for sealed refresh successors.
const SUCCESSOR_AAD_LABEL: &[u8] = b"rampart-refresh-successor-v1:";

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The presented token is not acceptable (bad signature, expired, revoked,
    /// unknown, the user is disabled or changed since). The reason is for logs only.
    #[error("the token was refused: {0}")]
    Refused(&'static str),
    /// A spent refresh token was presented again after the leeway: its family was
    /// revoked.
    #[error("a spent refresh token was presented again; its family was revoked")]
    ReuseDetected,
    /// Another process rotated the signing key at the same time.
    #[error("the signing key was rotated concurrently; nothing was changed, retry")]
    ConcurrentRotation,
    /// Signing or a key operation failed.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record, so the action was not taken.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Stored key material is unusable.
    #[error("token keys: {0}")]
    Internal(&'static str),
}

impl TokenError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Refused(_) | Self::ReuseDetected => ErrorKind::Unauthenticated,
            Self::ConcurrentRotation => ErrorKind::Conflict,
            Self::Store(e) => e.kind(),
            Self::Audit(e) => e.kind(),
            Self::Jwt(_) | Self::Random(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The claims of a Rampart access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (`jwt.issuer`).
    pub iss: String,
    /// Audience (`jwt.audience`).
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// The refresh family (login) the token belongs to.
    pub sid: String,
    /// Whether the login passed a second factor.
    pub mfa: bool,
    /// The user's security version at issue.
    pub sv: i64,
}

/// An access token and its refresh token, as the token endpoint returns them.
pub struct TokenPair {
    /// The signed JWT.
    pub access_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// The family (`sid`).
    pub family_id: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("family_id", &self.family_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Access and refresh tokens.
pub struct Tokens {
    signing: Arc<SigningKeys>,
    store: Arc<dyn TokenStore>,
    keys: Arc<DataKeys>,
    clock: Arc<dyn Clock>,
    audit: Arc<Auditor>,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
    reuse_leeway: Duration,
    verified: TtlCache<[u8; 32], AccessClaims>,
    families: TtlCache<String, bool>,
    fanout: Arc<Fanout>,
}

impl Tokens {
    /// The service for `[jwt]`.
    pub fn new(
        config: &JwtConfig,
        signing: Arc<SigningKeys>,
        store: Arc<dyn TokenStore>,
        keys: Arc<DataKeys>,
        clock: Arc<dyn Clock>,
        audit: Arc<Auditor>,
    ) -> Self {
        let leeway = u32::try_from(config.leeway.as_secs()).unwrap_or(u32::MAX);
        Self {
            signing,
            store,
            keys,
            clock,
            audit,
            validation: Validation::new(config.issuer.clone(), config.audience.clone())
                .with_leeway(leeway),
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            reuse_leeway: config.refresh_reuse_leeway,
            verified: TtlCache::new(VERIFIED_CACHE_CAPACITY),
            families: TtlCache::new(VERIFIED_CACHE_CAPACITY),
            fanout: Fanout::local(),
        }
    }

    /// Publishes revocations through `fanout` and takes cache lifetimes from it.
    #[must_use]
    pub fn with_fanout(mut self, fanout: Arc<Fanout>) -> Self {
        self.fanout = fanout;
        self
    }

    /// The keyring.
    pub fn signing(&self) -> &Arc<SigningKeys> {
        &self.signing
    }

    /// What tokens must say (`iss`, `aud`, leeway).
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// The JWKS document: the active key and the rotated-out keys still in grace.
    pub fn jwks(&self) -> serde_json::Value {
        self.signing.keyring().jwks(self.clock.unix())
    }

    /// Issues a new pair (a new family) for a completed login. Audits `token.issued`.
    pub async fn issue(
        &self,
        identity: &VerifiedIdentity,
        client: ClientDetails<'_>,
    ) -> Result<TokenPair, TokenError> {
        let now = self.clock.now();
        let family = RefreshFamily {
            id: public_id("fam")?,
            user_id: identity.user_id().clone(),
            created_at: now,
            mfa: identity.mfa(),
            security_version: identity.security_version(),
            revoked_at: None,
        };
        let refresh = RefreshToken::generate()?;
        let first = RefreshRecord {
            token_hash: refresh.hash(),
            family_id: family.id.clone(),
            created_at: now,
            expires_at: now + self.refresh_ttl,
            spent_at: None,
            successor_sealed: None,
        };
        self.store.insert_family(&family, &first).await?;
        let pair = self.pair(&family, refresh)?;
        self.record(
            AuditEvent::new(EventKind::TokenIssued, Outcome::Success)
                .actor(identity.username())
                .target(family.id.clone())
                .detail("user_id", identity.user_id().as_str())
                .detail("method", method_name(identity))
                .detail("mfa", identity.mfa().to_string()),
            client,
        )
        .await?;
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair (see the module documentation).
    /// `directory` supplies the user's current state: a disabled user, or one whose
    /// security version moved past the family's, gets nothing and the family is
    /// revoked.
    pub async fn refresh(
        &self,
        presented: &RefreshToken,
        directory: &dyn UserDirectory,
        client: ClientDetails<'_>,
    ) -> Result<TokenPair, TokenError> {
        let now = self.clock.now();
        let hash = presented.hash();
        let successor = RefreshToken::generate()?;
        let sealed = envelope::seal(
            self.keys.active(KeyPurpose::Session),
            &successor_aad(&hash),
            successor.expose_secret().as_bytes(),
        )
        .map_err(|_| TokenError::Internal("sealing the refresh successor failed"))?;
        let spend = self
            .store
            .spend_refresh(
                &hash,
                now,
                &Successor {
                    token_hash: successor.hash(),
                    expires_at: now + self.refresh_ttl,
                    sealed,
                    forget_before: now - self.reuse_leeway,
                },
            )
            .await?;
        let (family, token, concurrent) = match spend {
            Spend::Spent { family } => (family, successor, false),
            Spend::AlreadySpent {
                family,
                spent_at,
                successor_sealed,
            } => {
                let within = now - spent_at <= self.reuse_leeway;
                match (within, successor_sealed) {
                    (true, Some(sealed)) => (family, self.open_successor(&hash, &sealed)?, true),
                    _ => {
                        self.reuse_detected(&family, client).await?;
                        return Err(TokenError::ReuseDetected);
                    }
                }
            }
            Spend::Revoked => return Err(TokenError::Refused("refresh family revoked")),
            Spend::Expired => return Err(TokenError::Refused("refresh token expired")),
            Spend::Unknown => return Err(TokenError::Refused("unknown refresh token")),
        };
        let snapshot = directory.snapshot(&family.user_id).await?;
        let acceptable = snapshot
            .as_ref()
            .is_some_and(|s| !s.disabled && s.security_version <= family.security_version);
        if !acceptable {
            self.revoke_family(&family.id, "system", "the user was disabled or changed")
                .await?;
            return Err(TokenError::Refused("user disabled or changed"));
        }
        let pair = self.pair(&family, token)?;
        let username = snapshot.map(|s| s.username).unwrap_or_default();
        self.record(
            AuditEvent::new(EventKind::TokenRefreshed, Outcome::Success)
                .actor(username)
                .target(family.id.clone())
                .detail("user_id", family.user_id.as_str())
                .detail("concurrent", concurrent.to_string()),
            client,
        )
        .await?;
        Ok(pair)
    }

    /// Verifies an access token: signature and claims (once per token, then from
    /// memory), and that its family is not revoked. An unknown kid reloads the keyring
    /// (rate-limited) and retries once, so tokens signed by another replica's new key
    /// verify.
    pub async fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let now = self.clock.unix();
        let key = hash_token(token);
        let claims = match self.verified.get(&key, now) {
            Some(claims) => claims,
            None => {
                let claims = match self.verify_signature(token, now) {
                    Err(JwtError::UnknownKid) if self.signing.reload_for_unknown_kid().await? => {
                        self.verify_signature(token, now)
                    }
                    other => other,
                }
                .map_err(refused)?;
                // Until the token expires, but never longer than a token Rampart
                // issues lives, so a long-lived token (minted with a stolen key) is
                // re-verified — and refused once its key is retired.
                let ttl = i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX);
                let until = claims
                    .exp
                    .saturating_add(i64::from(self.validation.leeway_secs))
                    .min(now.saturating_add(ttl));
                self.verified.insert(key, claims.clone(), until, now);
                claims
            }
        };
        if !self.family_active(&claims.sid).await? {
            self.verified.remove(&key);
            return Err(TokenError::Refused("token family revoked"));
        }
        Ok(claims)
    }

    /// Revokes a family (logout, reuse, security change): its refresh tokens and
    /// access tokens stop working. Audits `token.revoked` if it was active.
    pub async fn revoke_family(
        &self,
        family_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Removal, TokenError> {
        let removal = self
            .store
            .revoke_family(family_id, self.clock.now())
            .await?;
        self.forget_family(family_id);
        if removal == Removal::Removed {
            self.audit
                .record(
                    AuditEvent::new(EventKind::TokenRevoked, Outcome::Success)
                        .actor(actor)
                        .target(family_id)
                        .reason(reason),
                )
                .await?;
        }
        Ok(removal)
    }

    /// Revokes every family of `user`; returns how many were active.
    pub async fn revoke_families_of(
        &self,
        user: &UserId,
        actor: &str,
        reason: &str,
    ) -> Result<usize, TokenError> {
        let ids = self
            .store
            .revoke_families_of(user, self.clock.now())
            .await?;
        let sub = user.as_str().to_owned();
        self.verified.remove_where(|_, c| c.sub == sub);
        for id in &ids {
            self.forget_family(id);
            self.audit
                .record(
                    AuditEvent::new(EventKind::TokenRevoked, Outcome::Success)
                        .actor(actor)
                        .target(id.clone())
                        .reason(reason)
                        .detail("user_id", user.as_str()),
                )
                .await?;
        }
        Ok(ids.len())
    }

    /// Deletes expired refresh tokens and empty families, and forgets sealed
    /// successors whose reuse leeway is over.
    pub async fn purge(&self) -> Result<u64, TokenError> {
        let now = self.clock.now();
        Ok(self
            .store
            .purge_refresh(now, now - self.reuse_leeway)
            .await?)
    }

    fn verify_signature(&self, token: &str, now: i64) -> Result<AccessClaims, JwtError> {
        self.signing
            .keyring()
            .verify::<AccessClaims>(token, &self.validation, now)
    }

    async fn family_active(&self, family_id: &str) -> Result<bool, TokenError> {
        let now = self.clock.unix();
        let key = family_id.to_owned();
        if let Some(active) = self.families.get(&key, now) {
            return Ok(active);
        }
        let ticket = self.fanout.ticket();
        let active = self
            .store
            .family(family_id)
            .await?
            .is_some_and(|f| f.revoked_at.is_none());
        let until = if active {
            self.fanout.expiry(ticket, now, FAMILY_CACHE_TTL_SECS)
        } else {
            // Revocation is final: no other process can make it active again.
            now + FAMILY_CACHE_TTL_SECS
        };
        self.families.insert(key, active, until, now);
        Ok(active)
    }

    fn forget_family(&self, family_id: &str) {
        let now = self.clock.unix();
        // Remember the revocation locally for longer than any token it covers lives.
        let until =
            now.saturating_add(i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX));
        self.families.insert(
            family_id.to_owned(),
            false,
            until.max(now + FAMILY_CACHE_TTL_SECS),
            now,
        );
        self.verified.remove_where(|_, c| c.sid == family_id);
        self.fanout.publish(Invalidation::Family {
            family: family_id.to_owned(),
        });
    }

    /// Forgets the cached state of family `family_id` and its verified tokens
    /// (another process revoked it); the next use reads the store.
    pub(crate) fn evict_family(&self, family_id: &str) {
        self.families.remove(&family_id.to_owned());
        self.verified.remove_where(|_, c| c.sid == family_id);
    }

    /// Forgets every cached family state. Verified signatures stay: they do not
    /// change, and every use still checks the family and the user.
    pub(crate) fn evict_all(&self) {
        self.families.clear();
    }

    fn pair(&self, family: &RefreshFamily, refresh: RefreshToken) -> Result<TokenPair, TokenError> {
        let now = self.clock.unix();
        let ttl = i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = AccessClaims {
            iss: self.validation.issuer.clone(),
            aud: self.validation.audience.clone(),
            sub: family.user_id.as_str().to_owned(),
            exp: now.saturating_add(ttl),
            iat: now,
            nbf: now,
            jti: rampart_crypto::random::token::<16>()?,
            sid: family.id.clone(),
            mfa: family.mfa,
            sv: family.security_version,
        };
        let access = self.signing.keyring().sign(&claims)?;
        Ok(TokenPair {
            access_token: SecretString::new(access),
            expires_in: self.access_ttl.as_secs(),
            refresh_token: refresh,
            family_id: family.id.clone(),
        })
    }

    fn open_successor(
        &self,
        spent_hash: &[u8; 32],
        sealed: &[u8],
    ) -> Result<RefreshToken, TokenError> {
        let key_id = envelope::key_id(sealed)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .ok_or(TokenError::Internal("sealed successor has no key id"))?;
        let key = self
            .keys
            .for_purpose(KeyPurpose::Session, &key_id)
            .ok_or(TokenError::Internal("successor sealed by an unknown key"))?;
        let plain = envelope::open(key, &successor_aad(spent_hash), sealed)
            .map_err(|_| TokenError::Internal("sealed successor does not open"))?;
        let text = std::str::from_utf8(plain.expose_secret())
            .map_err(|_| TokenError::Internal("sealed successor is not text"))?;
        RefreshToken::parse(text).map_err(|_| TokenError::Internal("sealed successor is malformed"))
    }

    async fn reuse_detected(
        &self,
        family: &RefreshFamily,
        client: ClientDetails<'_>,
    ) -> Result<(), TokenError> {
        self.store
            .revoke_family(&family.id, self.clock.now())
            .await?;
        self.forget_family(&family.id);
        self.record(
            AuditEvent::new(EventKind::TokenReuseDetected, Outcome::Denied)
                .actor(family.user_id.as_str())
                .target(family.id.clone())
                .reason("a spent refresh token was presented again; the family was revoked")
                .detail("user_id", family.user_id.as_str()),
            client,
        )
        .await?;
        Ok(())
    }

    async fn record(
        &self,
        mut event: AuditEvent,
        client: ClientDetails<'_>,
    ) -> Result<(), TokenError> {
        event = event.client_ip(client.ip);
        if let Some(request_id) = client.request_id {
            event = event.request_id(request_id);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}

fn successor_aad(spent_hash: &[u8; 32]) -> Vec<u8> {
    let mut aad = SUCCESSOR_AAD_LABEL.to_vec();
    aad.extend_from_slice(spent_hash);
    aad
}

fn refused(error: JwtError) -> TokenError {
    tracing::debug!(%error, "access token refused");
    TokenError::Refused("access token invalid")
}
