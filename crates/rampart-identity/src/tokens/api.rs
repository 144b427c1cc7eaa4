//! Static API tokens (F-APITOKEN): `rmp_` + 256 random bits, stored as SHA-256, with
//! a name, scopes (the permissions the token is limited to), an expiry and a
//! last-used time.
//!
//! A token acts for its owner, limited to its scopes: `Roles::permits` grants a
//! permission only if both the owner's roles and the token's scopes include it, and
//! never `admin` or `*` unless `api_tokens.allow_admin` — so a token cannot be created
//! with the `admin` scope either unless that is set. The value is shown once, at
//! creation.
//!
//! Hot path: a used token is cached by its hash (at most [`API_TOKEN_CACHE_CAPACITY`]
//! entries, each for at most [`API_TOKEN_CACHE_TTL_SECS`] from the database read);
//! revocation in this process evicts it at once and is published, so other replicas
//! evict within 1 s ([`crate::fanout`]). The last-used time is written at most
//! once per [`LAST_USED_INTERVAL`] per token.

use std::sync::Arc;
use std::time::Duration;

use rampart_config::ApiTokensConfig;
use rampart_core::audit::{AuditError, AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::roles::{ADMIN, ALL};
use rampart_core::identity::session::{ApiTokenRecord, CredentialHash, TokenStore};
use rampart_core::store::{Removal, StoreError};
use rampart_core::{Clock, ErrorKind};
use rampart_crypto::random::RandomError;
use rampart_crypto::token::ApiToken;
use time::OffsetDateTime;

use crate::authenticate::cache::TtlCache;
use crate::fanout::{Fanout, Invalidation};
use crate::sessions::public_id;

/// Most API tokens kept in memory.
pub const API_TOKEN_CACHE_CAPACITY: usize = 10_000;

/// How long a looked-up API token is trusted from memory.
pub const API_TOKEN_CACHE_TTL_SECS: i64 = 10;

/// Least time between two writes of a token's last-used time.
pub const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// Longest token name, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// Most scopes on one token.
pub const MAX_SCOPES: usize = 32;

/// Why an API token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    /// The name is empty, too long, or has control characters.
    #[error("a token name is 1 to {MAX_NAME_LEN} printable characters")]
    InvalidName,
    /// No scopes, too many, or one that is not a permission.
    #[error(
        "scopes are 1 to {MAX_SCOPES} permissions such as \"users:read\" or \"*\" (lower-case a-z, 0-9, _ and -, joined by ':')"
    )]
    InvalidScopes,
    /// The admin scope without `api_tokens.allow_admin`.
    #[error("API tokens cannot carry the admin permission (api_tokens.allow_admin is false)")]
    AdminScope,
    /// A lifetime over `api_tokens.max_ttl`, or zero.
    #[error("the lifetime must be between 1 second and api_tokens.max_ttl ({max}s)")]
    InvalidLifetime {
        /// The longest allowed lifetime in seconds.
        max: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record, so the action was not taken.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl ApiTokenError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName
            | Self::InvalidScopes
            | Self::AdminScope
            | Self::InvalidLifetime { .. } => ErrorKind::Client,
            Self::Store(e) => e.kind(),
            Self::Audit(e) => e.kind(),
            Self::Random(_) => ErrorKind::Internal,
        }
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// A name to recognise it by.
    pub name: String,
    /// The permissions it is limited to.
    pub scopes: Vec<String>,
    /// Its lifetime; `api_tokens.default_ttl` when `None`.
    pub ttl: Option<Duration>,
}

/// A token just created: the value (show it once) and the record.
#[derive(Debug)]
pub struct CreatedApiToken {
    /// The token. Never log it.
    pub token: ApiToken,
    /// What was stored.
    pub record: ApiTokenRecord,
}

/// The API token service.
pub struct ApiTokens {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    audit: Arc<Auditor>,
    config: ApiTokensConfig,
    cache: TtlCache<CredentialHash, Cached>,
    fanout: Arc<Fanout>,
}

#[derive(Clone)]
struct Cached {
    record: ApiTokenRecord,
    /// When last-used was last written.
    written: Option<OffsetDateTime>,
    /// When the entry expires (Unix seconds): fixed at the database read.
    until: i64,
}

impl ApiTokens {
    /// The service for `[api_tokens]`.
    pub fn new(
        config: &ApiTokensConfig,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        audit: Arc<Auditor>,
    ) -> Self {
        Self {
            store,
            clock,
            audit,
            config: config.clone(),
            cache: TtlCache::new(API_TOKEN_CACHE_CAPACITY),
            fanout: Fanout::local(),
        }
    }

    /// Publishes revocations through `fanout` and takes cache lifetimes from it.
    #[must_use]
    pub fn with_fanout(mut self, fanout: Arc<Fanout>) -> Self {
        self.fanout = fanout;
        self
    }

    /// Creates a token for `owner`. Audits `api_token.created` (never the value).
    pub async fn create(
        &self,
        owner: &UserId,
        request: NewApiToken,
        actor: &str,
    ) -> Result<CreatedApiToken, ApiTokenError> {
        let name = request.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(ApiTokenError::InvalidName);
        }
        let scopes = check_scopes(&request.scopes)?;
        if !self.config.allow_admin && scopes.iter().any(|s| s == ADMIN) {
            return Err(ApiTokenError::AdminScope);
        }
        let ttl = request.ttl.unwrap_or(self.config.default_ttl);
        if ttl.is_zero() || ttl > self.config.max_ttl {
            return Err(ApiTokenError::InvalidLifetime {
                max: self.config.max_ttl.as_secs(),
            });
        }
        let now = self.clock.now();
        let token = ApiToken::generate()?;
        let record = ApiTokenRecord {
            id: public_id("tok")?,
            token_hash: token.hash(),
            user_id: owner.clone(),
            name,
            scopes,
            created_at: now,
            expires_at: now + ttl,
            last_used_at: None,
        };
        self.store.insert_api_token(&record).await?;
        self.audit
            .record(
                AuditEvent::new(EventKind::ApiTokenCreated, Outcome::Success)
                    .actor(actor)
                    .target(record.id.clone())
                    .detail("user_id", owner.as_str())
                    .detail("name", record.name.clone())
                    .detail("scopes", record.scopes.join(" "))
                    .detail("expires_at", record.expires_at.unix_timestamp().to_string()),
            )
            .await?;
        Ok(CreatedApiToken { token, record })
    }

    /// The tokens of `user`, or everybody's (CLI), newest first.
    pub async fn list(&self, user: Option<&UserId>) -> Result<Vec<ApiTokenRecord>, ApiTokenError> {
        Ok(self.store.api_tokens(user).await?)
    }

    /// Revokes token `id`; with `user`, only if it is theirs. Audits
    /// `api_token.revoked`.
    pub async fn revoke(
        &self,
        id: &str,
        user: Option<&UserId>,
        actor: &str,
    ) -> Result<Removal, ApiTokenError> {
        let Some(hash) = self.store.delete_api_token(id, user).await? else {
            return Ok(Removal::Absent);
        };
        self.cache.remove(&hash);
        self.fanout.publish(Invalidation::ApiToken {
            token: id.to_owned(),
        });
        self.audit
            .record(
                AuditEvent::new(EventKind::ApiTokenRevoked, Outcome::Success)
                    .actor(actor)
                    .target(id),
            )
            .await?;
        Ok(Removal::Removed)
    }

    /// Revokes every token of `user`; returns how many.
    pub async fn revoke_all_of(
        &self,
        user: &UserId,
        actor: &str,
        reason: &str,
    ) -> Result<usize, ApiTokenError> {
        let hashes = self.store.delete_api_tokens_of(user).await?;
        for hash in &hashes {
            self.cache.remove(hash);
        }
        self.fanout.publish(Invalidation::ApiTokensOf {
            user: user.as_str().to_owned(),
        });
        if !hashes.is_empty() {
            self.audit
                .record(
                    AuditEvent::new(EventKind::ApiTokenRevoked, Outcome::Success)
                        .actor(actor)
                        .target(user.as_str())
                        .reason(reason)
                        .detail("count", hashes.len().to_string()),
                )
                .await?;
        }
        Ok(hashes.len())
    }

    /// The live record of a presented token, or `None` if unknown or expired. Records
    /// the use (throttled).
    pub async fn authenticate(
        &self,
        token: &ApiToken,
    ) -> Result<Option<ApiTokenRecord>, ApiTokenError> {
        let hash = token.hash();
        let now = self.clock.now();
        let now_unix = now.unix_timestamp();
        let ticket = self.fanout.ticket();
        let cached = match self.cache.get(&hash, now_unix) {
            Some(cached) => cached,
            None => match self.store.api_token_by_hash(&hash).await? {
                Some(record) => Cached {
                    written: record.last_used_at,
                    until: i64::MAX,
                    record,
                },
                None => return Ok(None),
            },
        };
        if now >= cached.record.expires_at {
            self.cache.remove(&hash);
            return Ok(None);
        }
        let mut fresh = cached.clone();
        fresh.record.last_used_at = Some(now);
        let due = cached
            .written
            .is_none_or(|at| now - at >= LAST_USED_INTERVAL);
        if due {
            self.store.touch_api_token(&cached.record.id, now).await?;
            fresh.written = Some(now);
        }
        // Never past the lifetime fixed at the read (a busy token is still re-read),
        // and short if an invalidation raced this use.
        fresh.until = self
            .fanout
            .expiry(ticket, now_unix, API_TOKEN_CACHE_TTL_SECS)
            .min(cached.until)
            .min(cached.record.expires_at.unix_timestamp());
        self.cache
            .insert(hash, fresh.clone(), fresh.until, now_unix);
        Ok(Some(fresh.record))
    }

    /// Forgets the cached token `id` (another process revoked it).
    pub(crate) fn evict(&self, id: &str) {
        self.cache.remove_where(|_, c| c.record.id == id);
    }

    /// Forgets the cached tokens of `user`.
    pub(crate) fn evict_user(&self, user: &str) {
        self.cache
            .remove_where(|_, c| c.record.user_id.as_str() == user);
    }

    /// Forgets every cached token.
    pub(crate) fn evict_all(&self) {
        self.cache.clear();
    }
}

/// Validates and de-duplicates scopes (same grammar as role permissions).
fn check_scopes(scopes: &[String]) -> Result<Vec<String>, ApiTokenError> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        let scope = scope.trim();
        let valid = scope == ALL
            || scope.split(':').all(|word| {
                !word.is_empty()
                    && word.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    })
            });
        if !valid {
            return Err(ApiTokenError::InvalidScopes);
        }
        if !out.iter().any(|s| s == scope) {
            out.push(scope.to_owned());
        }
    }
    if out.is_empty() || out.len() > MAX_SCOPES {
        return Err(ApiTokenError::InvalidScopes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn scopes_follow_the_permission_grammar() {
        assert_eq!(
            check_scopes(&s(&["users:read", " users:read", "*"])).unwrap(),
            s(&["users:read", "*"])
        );
        for bad in [
            &[][..],
            &["Users:read"],
            &["users:*"],
            &["a b"],
            &[""],
            &["a:"],
        ] {
            assert!(check_scopes(&s(bad)).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("p{i}")).collect();
        assert!(check_scopes(&many).is_err());
    }
}
