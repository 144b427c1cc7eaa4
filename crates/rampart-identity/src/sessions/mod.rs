//! Browser sessions (F-SESSION) and their CSRF tokens (F-CSRF).
//!
//! A session is an opaque 256-bit id ([`SessionId`]) in the cookie named by
//! `session.cookie_name` (`__Host-rampart_session` by default: `HttpOnly`, `Secure`,
//! `SameSite` per config, `Path=/`, host-only). The database keeps only its SHA-256,
//! next to a random public id (`ses_…`) used for listing and revocation, the user,
//! creation, last use, absolute end, MFA flag, security version, user agent and
//! client address — so a restart or another replica keeps the session.
//!
//! Timeouts are read on the [`Clock`]: a session ends `session.idle_timeout` after
//! its last use and `session.absolute_timeout` after login, whichever comes first.
//!
//! Hot path: validated sessions are cached in memory (keyed by the id's hash, at most
//! [`SESSION_CACHE_CAPACITY`] entries, each for at most [`SESSION_CACHE_TTL_SECS`]
//! from the database read — using a session does not extend it); a revocation in
//! this process evicts at once, and is published so other replicas evict within 1 s
//! ([`crate::fanout`]; without Redis there are no other replicas). "Last
//! seen" is kept exact in memory and written to the database at most once per
//! [`Sessions::touch_interval`] per session, so a busy session does not cost a write
//! per request; after a restart the idle clock may therefore restart up to that
//! interval early.
//!
//! The id is rotated on every login (a session cookie presented to the login endpoint
//! is revoked: session fixation) and on every security change made from the session
//! ([`CredentialRevoker`], [`Sessions::rotate`]).
//!
//! CSRF tokens are HMAC-SHA256 of the session id under the Session data key: bound to
//! the session, nothing extra stored, a new token after every rotation.

mod cookie;
mod revoker;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rampart_config::SessionConfig;
use rampart_core::audit::{AuditError, AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::session::{
    CredentialHash, RotatedSession, SessionRecord, SessionStore,
};
use rampart_core::keys::{DataKeys, KeyPurpose};
use rampart_core::store::{Removal, StoreError};
use rampart_core::{Clock, ErrorKind};
use rampart_crypto::ct_eq;
use rampart_crypto::random::{self, RandomError};
use rampart_crypto::token::SessionId;
use sha2::Sha256;
use time::OffsetDateTime;

pub use cookie::CookieSettings;
pub use revoker::CredentialRevoker;

use crate::authenticate::cache::TtlCache;
use crate::fanout::{Fanout, Invalidation};
use crate::verified::VerifiedIdentity;

/// Most sessions kept in the in-memory cache.
pub const SESSION_CACHE_CAPACITY: usize = 10_000;

/// How long a validated session is trusted from memory before it is read again.
pub const SESSION_CACHE_TTL_SECS: i64 = 10;

/// Longest stored `User-Agent`, in bytes.
const MAX_USER_AGENT_LEN: usize = 256;

/// Domain separation for the CSRF HMAC.
const CSRF_LABEL: &[u8] = b"rampart-csrf-v1:";

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record, so the action was not taken.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// No randomness for a session id.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl SessionError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Audit(e) => e.kind(),
            Self::Random(_) => ErrorKind::Internal,
        }
    }
}

/// A session just created: the cookie to set.
pub struct NewSession {
    /// The session id (the cookie's value). Never log it.
    pub id: SessionId,
    /// The public id.
    pub public_id: String,
    /// The complete `Set-Cookie` header value.
    pub set_cookie: String,
    /// The CSRF token for this session (also from `GET /api/v1/security/csrf`).
    pub csrf_token: String,
    /// When the session ends at the latest.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("public_id", &self.public_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a presented session id turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// A live session (its last use was just recorded).
    Active(SessionRecord),
    /// No such session (never existed, revoked, or purged).
    Unknown,
    /// Unused for longer than `session.idle_timeout`; it was deleted.
    IdleTimeout,
    /// Past `session.absolute_timeout`; it was deleted.
    Expired,
}

/// Client details recorded with a new session.
#[derive(Debug, Clone, Copy)]
pub struct ClientDetails<'a> {
    /// The client address (as resolved through trusted proxies).
    pub ip: IpAddr,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<&'a str>,
    /// The request id, for the audit record.
    pub request_id: Option<&'a str>,
}

/// The session service.
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    keys: Arc<DataKeys>,
    clock: Arc<dyn Clock>,
    audit: Arc<Auditor>,
    cookie: CookieSettings,
    idle: Duration,
    absolute: Duration,
    cache: TtlCache<CredentialHash, Cached>,
    fanout: Arc<Fanout>,
}

#[derive(Clone)]
struct Cached {
    record: SessionRecord,
    /// The last-seen time last written to the store.
    written: OffsetDateTime,
    /// When the entry expires (Unix seconds): fixed at the database read.
    until: i64,
}

impl Sessions {
    /// The service for `[session]`.
    pub fn new(
        config: &SessionConfig,
        store: Arc<dyn SessionStore>,
        keys: Arc<DataKeys>,
        clock: Arc<dyn Clock>,
        audit: Arc<Auditor>,
    ) -> Self {
        Self {
            store,
            keys,
            clock,
            audit,
            cookie: CookieSettings::from_config(config),
            idle: config.idle_timeout,
            absolute: config.absolute_timeout,
            cache: TtlCache::new(SESSION_CACHE_CAPACITY),
            fanout: Fanout::local(),
        }
    }

    /// Publishes revocations through `fanout` and takes cache lifetimes from it.
    #[must_use]
    pub fn with_fanout(mut self, fanout: Arc<Fanout>) -> Self {
        self.fanout = fanout;
        self
    }

    /// How the cookie is written and read.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    /// How often "last seen" is written per session: a tenth of the idle timeout,
    /// at most a minute.
    pub fn touch_interval(&self) -> Duration {
        (self.idle / 10).min(Duration::from_secs(60))
    }

    /// Creates a session for a completed login, revoking `replaces` (the session
    /// cookie the browser presented at login, if any) so a login never keeps an id
    /// that existed before it. Audits `session.created`.
    pub async fn create(
        &self,
        identity: &VerifiedIdentity,
        client: ClientDetails<'_>,
        replaces: Option<&SessionId>,
    ) -> Result<NewSession, SessionError> {
        if let Some(old) = replaces {
            self.revoke_presented(old, client).await?;
        }
        let now = self.now();
        let id = SessionId::generate()?;
        let record = SessionRecord {
            public_id: public_id("ses")?,
            id_hash: id.hash(),
            user_id: identity.user_id().clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.absolute,
            mfa: identity.mfa(),
            security_version: identity.security_version(),
            user_agent: client.user_agent.map(bounded_user_agent),
            client_ip: Some(client.ip.to_string()),
        };
        self.store.insert_session(&record).await?;
        let mut event = AuditEvent::new(EventKind::SessionCreated, Outcome::Success)
            .actor(identity.username())
            .target(record.public_id.clone())
            .client_ip(client.ip)
            .detail("user_id", identity.user_id().as_str())
            .detail("method", method_name(identity))
            .detail("mfa", identity.mfa().to_string());
        if let Some(request_id) = client.request_id {
            event = event.request_id(request_id);
        }
        self.audit.record(event).await?;
        Ok(self.issued(id, &record))
    }

    /// Checks a presented session id: unknown, idle, expired, or active (and then
    /// records the use, throttled). An ended session is deleted.
    pub async fn validate(&self, id: &SessionId) -> Result<SessionState, SessionError> {
        let hash = id.hash();
        let now = self.now();
        let now_unix = now.unix_timestamp();
        let ticket = self.fanout.ticket();
        let cached = match self.cache.get(&hash, now_unix) {
            Some(cached) => cached,
            None => match self.store.session_by_hash(&hash).await? {
                Some(record) => Cached {
                    written: record.last_seen_at,
                    until: i64::MAX,
                    record,
                },
                None => return Ok(SessionState::Unknown),
            },
        };
        let record = &cached.record;
        if now >= record.expires_at {
            self.forget(record).await?;
            return Ok(SessionState::Expired);
        }
        if now - record.last_seen_at >= self.idle {
            self.forget(record).await?;
            return Ok(SessionState::IdleTimeout);
        }
        let mut fresh = cached.clone();
        fresh.record.last_seen_at = now;
        if now - cached.written >= self.touch_interval() {
            self.store.touch_session(&record.public_id, now).await?;
            fresh.written = now;
        }
        // Never past the lifetime fixed at the read (a busy session is still re-read),
        // and short if an invalidation raced this validation.
        fresh.until = self
            .fanout
            .expiry(ticket, now_unix, SESSION_CACHE_TTL_SECS)
            .min(cached.until)
            .min(record.expires_at.unix_timestamp());
        self.cache
            .insert(hash, fresh.clone(), fresh.until, now_unix);
        Ok(SessionState::Active(fresh.record))
    }

    /// The user's live sessions, newest first.
    pub async fn list(&self, user: &UserId) -> Result<Vec<SessionRecord>, SessionError> {
        let now = self.now();
        let idle = self.idle;
        Ok(self
            .store
            .sessions_of(user, now)
            .await?
            .into_iter()
            .filter(|s| now - s.last_seen_at < idle)
            .collect())
    }

    /// Revokes one of `user`'s sessions by public id. Audits `session.revoked`.
    pub async fn revoke(
        &self,
        user: &UserId,
        public_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Removal, SessionError> {
        let removal = self.store.delete_session(user, public_id).await?;
        self.cache
            .remove_where(|_, c| c.record.public_id == public_id);
        self.publish_session(user, public_id);
        if removal == Removal::Removed {
            self.audit
                .record(
                    AuditEvent::new(EventKind::SessionRevoked, Outcome::Success)
                        .actor(actor)
                        .target(public_id)
                        .reason(reason)
                        .detail("user_id", user.as_str()),
                )
                .await?;
        }
        Ok(removal)
    }

    /// Revokes every session of `user` except `keep`; returns how many. Audits one
    /// `session.revoked` per session.
    pub async fn revoke_all(
        &self,
        user: &UserId,
        keep: Option<&str>,
        actor: &str,
        reason: &str,
    ) -> Result<usize, SessionError> {
        let ids = self.store.delete_sessions_of(user, keep).await?;
        self.cache.remove_where(|_, c| {
            c.record.user_id == *user && Some(c.record.public_id.as_str()) != keep
        });
        self.fanout.publish(Invalidation::SessionsOf {
            user: user.as_str().to_owned(),
            keep: keep.map(str::to_owned),
        });
        for id in &ids {
            self.audit
                .record(
                    AuditEvent::new(EventKind::SessionRevoked, Outcome::Success)
                        .actor(actor)
                        .target(id.clone())
                        .reason(reason)
                        .detail("user_id", user.as_str()),
                )
                .await?;
        }
        Ok(ids.len())
    }

    /// Re-issues session `public_id` of `user` under a fresh id and the user's new
    /// security version, keeping its login time, absolute end and MFA flag; the old
    /// id stops working at once. `None` if the session is gone. Audits
    /// `session.rotated`.
    pub async fn rotate(
        &self,
        user: &UserId,
        public_id: &str,
        security_version: i64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<RotatedSession>, SessionError> {
        let now = self.now();
        let Some(old) = self
            .store
            .sessions_of(user, now)
            .await?
            .into_iter()
            .find(|s| s.public_id == public_id)
        else {
            return Ok(None);
        };
        let id = SessionId::generate()?;
        let record = SessionRecord {
            public_id: public_id_new()?,
            id_hash: id.hash(),
            last_seen_at: now,
            security_version,
            ..old.clone()
        };
        match self.store.replace_session(user, public_id, &record).await {
            Ok(()) => {}
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        self.cache
            .remove_where(|_, c| c.record.public_id == public_id);
        self.publish_session(user, public_id);
        self.audit
            .record(
                AuditEvent::new(EventKind::SessionRotated, Outcome::Success)
                    .actor(actor)
                    .target(record.public_id.clone())
                    .reason(reason)
                    .detail("previous", public_id)
                    .detail("user_id", user.as_str()),
            )
            .await?;
        let issued = self.issued(id, &record);
        Ok(Some(RotatedSession {
            id: issued.id,
            public_id: issued.public_id,
            set_cookie: issued.set_cookie,
        }))
    }

    /// The CSRF token of a session: HMAC-SHA256(Session data key, label ‖ id),
    /// base64url. Deterministic, so nothing is stored; changes when the id rotates.
    pub fn csrf_token(&self, id: &SessionId) -> String {
        URL_SAFE_NO_PAD.encode(self.csrf_mac(id))
    }

    /// Whether `presented` is the CSRF token of session `id` (constant time).
    pub fn csrf_valid(&self, id: &SessionId, presented: &str) -> bool {
        let Ok(decoded) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
            return false;
        };
        ct_eq(&self.csrf_mac(id), &decoded)
    }

    /// Deletes sessions past their absolute end.
    pub async fn purge(&self) -> Result<u64, SessionError> {
        Ok(self.store.purge_sessions(self.now()).await?)
    }

    fn csrf_mac(&self, id: &SessionId) -> [u8; 32] {
        let key = self.keys.active(KeyPurpose::Session);
        // RFC 2104 §2: a key shorter than the block is zero-padded, so keying with the
        // padded 64-byte block is HMAC with the 32-byte key, via the infallible
        // constructor.
        let mut block = zeroize::Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(key.key.expose_secret());
        let mut mac = <Hmac<Sha256>>::new(&(*block).into());
        mac.update(CSRF_LABEL);
        mac.update(id.expose_secret().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn issued(&self, id: SessionId, record: &SessionRecord) -> NewSession {
        let remaining = record.expires_at - self.now();
        let max_age = Duration::try_from(remaining).unwrap_or(Duration::ZERO);
        NewSession {
            set_cookie: self.cookie.set(&id, max_age),
            csrf_token: self.csrf_token(&id),
            public_id: record.public_id.clone(),
            expires_at: record.expires_at,
            id,
        }
    }

    /// Revokes the session a browser presented at login, whoever it belongs to.
    async fn revoke_presented(
        &self,
        id: &SessionId,
        client: ClientDetails<'_>,
    ) -> Result<(), SessionError> {
        let hash = id.hash();
        self.cache.remove(&hash);
        let Some(record) = self.store.session_by_hash(&hash).await? else {
            return Ok(());
        };
        let removal = self
            .store
            .delete_session(&record.user_id, &record.public_id)
            .await?;
        self.publish_session(&record.user_id, &record.public_id);
        if removal == Removal::Removed {
            let mut event = AuditEvent::new(EventKind::SessionRevoked, Outcome::Success)
                .actor(record.user_id.as_str())
                .target(record.public_id.clone())
                .client_ip(client.ip)
                .reason("replaced by a new login")
                .detail("user_id", record.user_id.as_str());
            if let Some(request_id) = client.request_id {
                event = event.request_id(request_id);
            }
            self.audit.record(event).await?;
        }
        Ok(())
    }

    /// Deletes an ended session (not audited: expiry is not an action).
    async fn forget(&self, record: &SessionRecord) -> Result<(), SessionError> {
        self.cache.remove(&record.id_hash);
        self.store
            .delete_session(&record.user_id, &record.public_id)
            .await?;
        Ok(())
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn publish_session(&self, user: &UserId, public_id: &str) {
        self.fanout.publish(Invalidation::Session {
            user: user.as_str().to_owned(),
            session: public_id.to_owned(),
        });
    }

    /// Forgets the cached session `public_id` (another process revoked or rotated it).
    pub(crate) fn evict(&self, public_id: &str) {
        self.cache
            .remove_where(|_, c| c.record.public_id == public_id);
    }

    /// Forgets the cached sessions of `user` except `keep`.
    pub(crate) fn evict_user(&self, user: &str, keep: Option<&str>) {
        self.cache.remove_where(|_, c| {
            c.record.user_id.as_str() == user && Some(c.record.public_id.as_str()) != keep
        });
    }

    /// Forgets every cached session.
    pub(crate) fn evict_all(&self) {
        self.cache.clear();
    }
}

/// A new random public id with `prefix` (`ses`, `fam`, `tok`): 128 bits, so ids are
/// unguessable even though they are not credentials.
pub(crate) fn public_id(prefix: &str) -> Result<String, RandomError> {
    Ok(format!("{prefix}_{}", random::token::<16>()?))
}

fn public_id_new() -> Result<String, RandomError> {
    public_id("ses")
}

fn bounded_user_agent(ua: &str) -> String {
    let mut end = ua.len().min(MAX_USER_AGENT_LEN);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].chars().filter(|c| !c.is_control()).collect()
}

/// The login method's stable (serde) name, for audit records.
pub(crate) fn method_name(identity: &VerifiedIdentity) -> String {
    serde_json::to_value(identity.method())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
