//! Sessions and tokens as stored (F-SESSION, F-JWT, F-REFRESH, F-APITOKEN), the
//! storage traits that hold them, and [`SessionRevoker`], the hook the accounts
//! service calls after every security-relevant change.
//!
//! No credential is ever stored: session ids, refresh tokens and API tokens are kept as
//! their SHA-256 (`rampart_crypto::token::hash_token`), and each record has a separate
//! random *public id* that is safe to list, log, audit and put in a URL. The services
//! that issue and check these credentials live in `rampart-identity`
//! (`sessions`, `tokens`, `authenticate`).
//!
//! # Revocation on security changes
//!
//! Every credential records the user's `security_version` at issue; authentication
//! refuses a session, refresh token or access token whose version is older than the
//! user's current one. The accounts service bumps the version on every security change
//! and then calls [`SessionRevoker::on_security_change`], which
//!
//! - deletes the user's other sessions and every refresh-token family (so they are
//!   gone from listings and from every cache in this process at once, and from other
//!   replicas' short-lived caches within seconds — the version check already refuses
//!   them everywhere);
//! - re-issues the *acting* session, if the change was made from one of the user's own
//!   sessions, under a fresh id and the new version, and returns it as a
//!   [`RotatedSession`] whose `Set-Cookie` value the handler must send in its response
//!   (session fixation defence: a privilege change never keeps an old id alive);
//! - revokes the user's API tokens when the change disables or deletes the account
//!   ([`Change::revokes_api_tokens`]); otherwise API tokens, which are scoped
//!   and never admin unless configured, survive password and role changes so that
//!   automation does not break on a routine password change.

use std::fmt;

use async_trait::async_trait;
use rampart_crypto::token::SessionId;
use time::OffsetDateTime;

use super::UserId;
use crate::store::{Removal, StoreError};

/// Length of a credential hash (SHA-256).
pub const CREDENTIAL_HASH_LEN: usize = 32;

/// SHA-256 of a credential: the only form in which a session id, refresh token or API
/// token is stored.
pub type CredentialHash = [u8; CREDENTIAL_HASH_LEN];

/// A browser session as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Random public id (`ses_…`): listed, revoked by, audited. Not a credential.
    pub public_id: String,
    /// SHA-256 of the session id in the cookie.
    pub id_hash: CredentialHash,
    /// The user.
    pub user_id: UserId,
    /// When the session was created (login).
    pub created_at: OffsetDateTime,
    /// When the session was last used (written at most once per throttle interval).
    pub last_seen_at: OffsetDateTime,
    /// Absolute end: `created_at + session.absolute_timeout`, whatever the use.
    pub expires_at: OffsetDateTime,
    /// Whether the login passed a second factor.
    pub mfa: bool,
    /// The user's security version at login (or at the last rotation).
    pub security_version: i64,
    /// The browser's `User-Agent` at login, cut to a bounded length.
    pub user_agent: Option<String>,
    /// The client address at login.
    pub client_ip: Option<String>,
}

impl fmt::Debug for SessionRecord {
    // The hash is not the credential, but it is the lookup key: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("public_id", &self.public_id)
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("mfa", &self.mfa)
            .field("security_version", &self.security_version)
            .finish_non_exhaustive()
    }
}

/// A refresh-token family: every token descended from one login. Reuse of a spent
/// member revokes the whole family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Random public id (`fam_…`), also the `sid` claim of the family's access tokens.
    pub id: String,
    /// The user.
    pub user_id: UserId,
    /// When the family was created (the login).
    pub created_at: OffsetDateTime,
    /// Whether the login passed a second factor.
    pub mfa: bool,
    /// The user's security version at login.
    pub security_version: i64,
    /// When the family was revoked (logout, reuse, security change), if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// One refresh token as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub token_hash: CredentialHash,
    /// Its family.
    pub family_id: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
    /// When it was exchanged, if it was.
    pub spent_at: Option<OffsetDateTime>,
    /// The successor handed out when it was spent, sealed under the Session data key
    /// (AAD binds this token's hash). Kept only for `jwt.refresh_reuse_leeway`, so
    /// parallel requests presenting this token all get the same successor.
    pub successor_sealed: Option<Vec<u8>>,
}

impl fmt::Debug for RefreshRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRecord")
            .field("family_id", &self.family_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("spent_at", &self.spent_at)
            .field("successor_sealed", &self.successor_sealed.is_some())
            .finish_non_exhaustive()
    }
}

/// The token that replaces a spent refresh token.
#[derive(Clone, PartialEq, Eq)]
pub struct Successor {
    /// SHA-256 of the new token.
    pub token_hash: CredentialHash,
    /// When the new token stops being accepted.
    pub expires_at: OffsetDateTime,
    /// The new token, sealed (AAD binds the spent token's hash), stored on the spent
    /// token for concurrent presenters.
    pub sealed: Vec<u8>,
    /// Sealed successors of tokens spent before this are cleared.
    pub forget_before: OffsetDateTime,
}

impl fmt::Debug for Successor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Successor")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The outcome of trying to spend a refresh token (see [`TokenStore::spend_refresh`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spend {
    /// This call spent the token: the successor was stored in the same transaction.
    Spent {
        /// The token's family.
        family: RefreshFamily,
    },
    /// The token had already been spent (by a concurrent request or earlier).
    AlreadySpent {
        /// The token's family.
        family: RefreshFamily,
        /// When it was spent.
        spent_at: OffsetDateTime,
        /// The sealed successor, if still kept.
        successor_sealed: Option<Vec<u8>>,
    },
    /// The family is revoked.
    Revoked,
    /// The token has expired.
    Expired,
    /// No such token.
    Unknown,
}

/// A static API token as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Random public id (`tok_…`).
    pub id: String,
    /// SHA-256 of the token.
    pub token_hash: CredentialHash,
    /// The owner.
    pub user_id: UserId,
    /// A name to recognise it by.
    pub name: String,
    /// The permissions it is limited to.
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// When it was last used (written at most once per throttle interval).
    pub last_used_at: Option<OffsetDateTime>,
}

impl fmt::Debug for ApiTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokenRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A JWT signing key as stored: the public key in the clear, the private key sealed
/// under the JwtSigning data key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    /// The PKCS#8 private key, sealed (AAD binds the kid).
    pub sealed_private: Vec<u8>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it stopped signing (`None` for the active key).
    pub retired_at: Option<OffsetDateTime>,
    /// Until when tokens it signed are accepted (`None` for the active key).
    pub valid_until: Option<OffsetDateTime>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// Browser sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn insert_session(&self, record: &SessionRecord) -> Result<(), StoreError>;

    /// The session whose id hashes to `hash`, or `None`.
    async fn session_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Records use of a session.
    async fn touch_session(&self, public_id: &str, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The user's sessions that have not reached their absolute end at `now`, newest
    /// first.
    async fn sessions_of(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Deletes one session of `user` (a session of another user is [`Removal::Absent`]).
    async fn delete_session(&self, user: &UserId, public_id: &str) -> Result<Removal, StoreError>;

    /// Deletes every session of `user` except `keep`; returns the deleted public ids.
    async fn delete_sessions_of(
        &self,
        user: &UserId,
        keep: Option<&str>,
    ) -> Result<Vec<String>, StoreError>;

    /// Replaces session `old` of `user` by `new` atomically (rotation): afterwards the
    /// old id no longer authenticates. [`StoreError::NotFound`] if `old` is gone.
    async fn replace_session(
        &self,
        user: &UserId,
        old: &str,
        new: &SessionRecord,
    ) -> Result<(), StoreError>;

    /// Deletes sessions past their absolute end; returns how many.
    async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Refresh tokens and API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new family with its first token.
    async fn insert_family(
        &self,
        family: &RefreshFamily,
        first: &RefreshRecord,
    ) -> Result<(), StoreError>;

    /// The family `id`, or `None`.
    async fn family(&self, id: &str) -> Result<Option<RefreshFamily>, StoreError>;

    /// Spends the token hashing to `hash` and stores `successor` in the same family,
    /// in one write transaction whose first statement is the conditional update
    /// `SET spent_at … WHERE spent_at IS NULL` (and unexpired, family not revoked): of
    /// any number of concurrent callers presenting the same token exactly one gets
    /// [`Spend::Spent`]; the others wait for its commit and see [`Spend::AlreadySpent`]
    /// with the sealed successor it stored. Sealed successors of the family's tokens
    /// spent before `successor.forget_before` are cleared on the way.
    async fn spend_refresh(
        &self,
        hash: &CredentialHash,
        now: OffsetDateTime,
        successor: &Successor,
    ) -> Result<Spend, StoreError>;

    /// Marks the family revoked and clears its sealed successors. Returns whether it
    /// was active.
    async fn revoke_family(&self, id: &str, at: OffsetDateTime) -> Result<Removal, StoreError>;

    /// Revokes every active family of `user`; returns their ids.
    async fn revoke_families_of(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError>;

    /// Deletes refresh tokens expired at `now` and families left without tokens, and
    /// clears the sealed successors of tokens spent before `forget_before` (the reuse
    /// leeway is over for them); returns how many tokens were deleted.
    async fn purge_refresh(
        &self,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Stores a new API token.
    async fn insert_api_token(&self, record: &ApiTokenRecord) -> Result<(), StoreError>;

    /// The API token hashing to `hash`, or `None`.
    async fn api_token_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiTokenRecord>, StoreError>;

    /// The API tokens of `user`, or of everybody when `None`, newest first.
    async fn api_tokens(&self, user: Option<&UserId>) -> Result<Vec<ApiTokenRecord>, StoreError>;

    /// Records use of an API token.
    async fn touch_api_token(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Deletes API token `id`, only if it belongs to `user` when one is given. Returns
    /// the deleted record's hash (to evict caches).
    async fn delete_api_token(
        &self,
        id: &str,
        user: Option<&UserId>,
    ) -> Result<Option<CredentialHash>, StoreError>;

    /// Deletes every API token of `user`; returns their hashes.
    async fn delete_api_tokens_of(&self, user: &UserId) -> Result<Vec<CredentialHash>, StoreError>;
}

/// The JWT signing keyring.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every stored key, active and retired, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Stores the first key. [`StoreError::Conflict`] if any key exists already
    /// (another replica created one first).
    async fn insert_first_signing_key(&self, record: &SigningKeyRecord) -> Result<(), StoreError>;

    /// Retires the active key `old_kid` (setting its `retired_at` and `valid_until`)
    /// and stores `new` as the active key, atomically; deletes keys whose
    /// `valid_until` is before `prune_before`. [`StoreError::Conflict`] if `old_kid` is
    /// no longer the active key (a concurrent rotation).
    async fn rotate_signing_key(
        &self,
        old_kid: &str,
        retired_at: OffsetDateTime,
        valid_until: OffsetDateTime,
        new: &SigningKeyRecord,
        prune_before: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// What changed about a user's security. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The password was changed (by the user) or reset.
    PasswordChanged,
    /// Roles, tenants or attributes changed.
    PrivilegesChanged,
    /// A second factor was enrolled, removed or reset, or recovery codes replaced.
    MfaChanged,
    /// The account was disabled.
    Disabled,
    /// The account was deleted.
    Deleted,
    /// The user asked to sign out everywhere.
    SignOutEverywhere,
}

impl ChangeKind {
    /// Stable name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordChanged => "password_changed",
            Self::PrivilegesChanged => "privileges_changed",
            Self::MfaChanged => "mfa_changed",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
            Self::SignOutEverywhere => "sign_out_everywhere",
        }
    }
}

/// A security change, as reported by the accounts service *after* it stored the
/// user's new `security_version` (the store-level change is
/// [`super::account::SecurityChange`]; this is what the credentials need to know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The user's security version after the change.
    pub security_version: i64,
    /// The public id of the session the change was made from
    /// (`Principal::credential_id` of a session principal), when the user changed
    /// their own account from a browser session: that session is re-issued under a
    /// fresh id instead of being revoked. `None` for admin actions, API/CLI changes,
    /// or changes that must sign the user out entirely.
    pub acting_session: Option<String>,
    /// Who made the change, for the audit record (`alice`, `admin:bob`, `cli`).
    pub actor: String,
}

impl Change {
    /// Whether this change also revokes the user's API tokens: only disabling or
    /// deleting the account does (see the module documentation).
    pub fn revokes_api_tokens(&self) -> bool {
        matches!(self.kind, ChangeKind::Disabled | ChangeKind::Deleted)
    }

    /// Whether the acting session may be kept (re-issued). A disabled or deleted
    /// user keeps nothing.
    pub fn keeps_acting_session(&self) -> bool {
        !matches!(self.kind, ChangeKind::Disabled | ChangeKind::Deleted)
    }
}

/// The acting session after a security change, under a fresh id.
pub struct RotatedSession {
    /// The new session id (the cookie value).
    pub id: SessionId,
    /// The new public id.
    pub public_id: String,
    /// The complete `Set-Cookie` header value to send in the response.
    pub set_cookie: String,
}

impl fmt::Debug for RotatedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatedSession")
            .field("public_id", &self.public_id)
            .finish_non_exhaustive()
    }
}

/// What [`SessionRevoker::on_security_change`] did.
#[derive(Debug, Default)]
pub struct Revocation {
    /// Sessions deleted.
    pub sessions: usize,
    /// Refresh-token families revoked.
    pub families: usize,
    /// API tokens deleted.
    pub api_tokens: usize,
    /// The acting session, re-issued: send `set_cookie` in the response.
    pub rotated: Option<RotatedSession>,
}

/// Why revocation failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The store failed. The security version was already bumped, so the old
    /// credentials are refused anyway; only their rows remain.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record.
    #[error("the audit log is not accepting events")]
    Audit,
    /// No randomness for the new session id.
    #[error("no randomness for a new session id")]
    Random,
}

impl RevokeError {
    /// Who is at fault.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Audit => crate::ErrorKind::Unavailable,
            Self::Random => crate::ErrorKind::Internal,
        }
    }
}

/// Revokes or rotates a user's credentials after a security change. Implemented by
/// `rampart_identity::sessions::CredentialRevoker`; the accounts service receives it
/// as `Arc<dyn SessionRevoker>` and calls it after every change that bumps the
/// user's security version.
#[async_trait]
pub trait SessionRevoker: Send + Sync {
    /// Applies `change` to `user`'s credentials. Audits `session.revoked` /
    /// `token.revoked` / `api_token.revoked` as it goes.
    async fn on_security_change(
        &self,
        user: &UserId,
        change: &Change,
    ) -> Result<Revocation, RevokeError>;
}
