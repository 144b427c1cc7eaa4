//! Accounts at rest (F-USERS, F-PASSWORD, F-LOCKOUT, F-REGISTER, F-TOTP): what is
//! stored about a user, and the storage traits the accounts service needs.
//!
//! Nothing here is plaintext PII. E-mail addresses and display names arrive already
//! sealed (AES-256-GCM under the PII data key, the user id bound as associated data)
//! and e-mail lookups go through a keyed blind index; TOTP secrets are sealed under
//! the TOTP data key. Passwords are Argon2id PHC strings; recovery codes, invite
//! codes, setup tokens and pending-login tokens are stored as SHA-256 hashes only.
//! The service that seals, hashes and decides is `rampart_identity::accounts`;
//! `rampart-store` implements [`AccountStore`] in the `0200_accounts.sql` migrations.
//!
//! Every write that must not race is one conditional statement or one write
//! transaction in the store: a recovery code, an invite or the setup token is spent
//! exactly once, a TOTP step is accepted once across replicas, and failure counters
//! are updated under a row lock.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use rampart_crypto::BlindIndex;
use time::OffsetDateTime;

use super::UserId;
use crate::store::{Removal, StoreError};

/// Shortest username, in characters.
pub const USERNAME_MIN_LEN: usize = 3;
/// Longest username, in characters.
pub const USERNAME_MAX_LEN: usize = 64;
/// Length of every stored token hash (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash of a token (recovery code, invite code, setup token, pending
/// login), as stored. The token itself is never stored.
pub type TokenHash = [u8; HASH_LEN];

/// A username: 3 to 64 characters from `a-z`, `0-9`, `.`, `_`, `-`, stored in lower
/// case so `Alice` and `alice` are one account.
///
/// The small alphabet keeps usernames safe in identity headers, logs and URLs, and
/// rules out look-alike (homograph) names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

/// The text is not a valid username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a username is {USERNAME_MIN_LEN} to {USERNAME_MAX_LEN} characters from a-z, 0-9, '.', '_', '-'"
)]
pub struct InvalidUsername;

impl Username {
    /// Normalizes (ASCII lower case, surrounding whitespace removed) and validates.
    pub fn parse(text: &str) -> Result<Self, InvalidUsername> {
        let name = text.trim().to_ascii_lowercase();
        let valid = (USERNAME_MIN_LEN..=USERNAME_MAX_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidUsername)
        }
    }

    /// The username as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's TOTP enrolment, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The secret, sealed under the TOTP data key (envelope with key id).
    pub sealed_secret: Vec<u8>,
    /// `false` while enrolment awaits its first code; only enabled TOTP is asked for
    /// at login.
    pub enabled: bool,
    /// The last time step accepted; codes for it and earlier steps are refused.
    pub last_used_step: Option<i64>,
}

impl fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRecord")
            .field("sealed_secret", &"[sealed]")
            .field("enabled", &self.enabled)
            .field("last_used_step", &self.last_used_step)
            .finish()
    }
}

/// A user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub id: UserId,
    /// Unique, normalized.
    pub username: Username,
    /// The e-mail address sealed under the PII key; `None` when the user has none.
    pub email_sealed: Option<Vec<u8>>,
    /// The blind index of the normalized address (unique); set exactly when
    /// `email_sealed` is.
    pub email_index: Option<BlindIndex>,
    /// The display name sealed under the PII key.
    pub display_name_sealed: Option<Vec<u8>>,
    /// The password's Argon2 PHC string; `None` for users who sign in by magic link
    /// only.
    pub password_hash: Option<String>,
    /// Role names (from `[roles]`).
    pub roles: Vec<String>,
    /// Tenant ids.
    pub tenants: Vec<String>,
    /// Attributes such as `subscription = "active"`.
    pub attributes: BTreeMap<String, String>,
    /// A disabled user cannot sign in; their sessions and tokens stop working.
    pub disabled: bool,
    /// See [`super::UserSnapshot::security_version`].
    pub security_version: i64,
    /// TOTP enrolment, if any (pending or enabled).
    pub totp: Option<TotpRecord>,
    /// When the user was created.
    pub created_at: OffsetDateTime,
    /// When the record last changed.
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for UserRecord {
    // Sealed fields and the hash are omitted: the hash is an offline-cracking target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("has_email", &self.email_sealed.is_some())
            .field("has_password", &self.password_hash.is_some())
            .field("roles", &self.roles)
            .field("tenants", &self.tenants)
            .field("disabled", &self.disabled)
            .field("security_version", &self.security_version)
            .field("totp", &self.totp)
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    /// The snapshot authentication needs.
    pub fn snapshot(&self) -> super::UserSnapshot {
        super::UserSnapshot {
            id: self.id.clone(),
            username: self.username.as_str().to_owned(),
            roles: self.roles.clone(),
            tenants: self.tenants.clone(),
            attributes: self.attributes.clone(),
            disabled: self.disabled,
            security_version: self.security_version,
        }
    }

    /// Whether a second factor is asked for at login.
    pub fn totp_enabled(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.enabled)
    }
}

/// By what right a user is being created. The store checks it in the same
/// transaction as the insert, so a token or invite is spent exactly once and only
/// together with the account it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The first admin, with the one-time setup token (hash): refused unless the
    /// token matches, is unexpired and the instance has no first admin yet.
    SetupToken(TokenHash),
    /// The first admin from the command line (`rampart admin create`), which has the
    /// database and the master key already: refused once a first admin exists.
    FirstAdmin,
    /// An additional account after initialization (open registration, an admin, or
    /// `rampart admin create --force`): refused before the first admin exists.
    Initialized,
    /// Registration with an invite (hash): refused unless the invite is unused and
    /// unexpired; the invite is marked used by this user.
    Invite(TokenHash),
}

/// What [`UserStore::create_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// The user exists now.
    Created,
    /// The username is taken.
    UsernameTaken,
    /// The e-mail address (its blind index) is taken.
    EmailTaken,
    /// [`Admission::Initialized`] or [`Admission::Invite`] before the first admin.
    NotInitialized,
    /// [`Admission::SetupToken`] or [`Admission::FirstAdmin`] after the first admin.
    AlreadyInitialized,
    /// The setup token is unknown, expired or used.
    SetupTokenRefused,
    /// The invite is unknown, expired or used.
    InviteRefused,
}

/// A sealed PII field to set or clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange<T> {
    /// Leave it as it is.
    Keep,
    /// Replace it.
    Set(T),
    /// Remove it.
    Clear,
}

/// A change of the user's own profile. Not security-relevant: the security version
/// is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    /// The e-mail address: sealed form and blind index.
    pub email: FieldChange<(Vec<u8>, BlindIndex)>,
    /// The display name, sealed.
    pub display_name: FieldChange<Vec<u8>>,
    /// When.
    pub at: OffsetDateTime,
}

/// A security-relevant change. Each one increments the security version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityChange {
    /// New roles.
    Roles(Vec<String>),
    /// New tenants.
    Tenants(Vec<String>),
    /// New attributes.
    Attributes(BTreeMap<String, String>),
    /// Disabled (`true`) or enabled again.
    Disabled(bool),
    /// A new password hash (or none: magic link only).
    Password(Option<String>),
    /// TOTP enabled at `step` (the step of the code that proved enrolment) with a
    /// fresh set of recovery codes (hashes) replacing any old ones.
    TotpEnabled {
        /// The accepted step.
        step: i64,
        /// The recovery codes' hashes.
        recovery_codes: Vec<TokenHash>,
    },
    /// TOTP removed (disabled by the user or reset by an admin), recovery codes
    /// deleted.
    TotpRemoved,
}

/// What the store reports after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Applied; the user's security version is now this.
    Applied {
        /// The new (or unchanged, for profile changes) version.
        security_version: i64,
    },
    /// No such user.
    NoSuchUser,
    /// The e-mail address is taken by another user.
    EmailTaken,
    /// The user is not in the state the change needs (enabling TOTP without a
    /// pending enrolment, starting an enrolment while TOTP is enabled).
    WrongState,
}

/// A stored recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodeRecord {
    /// SHA-256 of the normalized code.
    pub code_hash: TokenHash,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it was used; a used code is refused.
    pub used_at: Option<OffsetDateTime>,
}

/// Whether a conditional "spend" found something unspent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// It was unspent and is now spent, by this call.
    Now,
    /// Unknown, or already spent.
    Refused,
}

/// An invitation to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// A public id (listing, audit); not the code.
    pub id: String,
    /// SHA-256 of the code.
    pub code_hash: TokenHash,
    /// Roles the new user gets.
    pub roles: Vec<String>,
    /// The tenant the new user joins, if any.
    pub tenant: Option<String>,
    /// The admin who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: OffsetDateTime,
    /// The invite stops working then.
    pub expires_at: OffsetDateTime,
    /// When it was used, and by whom.
    pub used: Option<(OffsetDateTime, UserId)>,
}

/// A login that passed the password and waits for the second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLoginRecord {
    /// SHA-256 of the opaque `mfa_token` handed to the client.
    pub token_hash: TokenHash,
    /// The user who passed the first factor.
    pub user_id: UserId,
    /// The user's security version then; a change since (password reset, MFA reset,
    /// disable) voids the pending login.
    pub security_version: i64,
    /// The client address that passed the first factor.
    pub client_ip: IpAddr,
    /// When.
    pub created_at: OffsetDateTime,
    /// It stops working then.
    pub expires_at: OffsetDateTime,
    /// Wrong second factors presented so far.
    pub failures: u32,
}

/// What failed logins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockoutSubject {
    /// An existing account.
    Account(UserId),
    /// A login name that matches no account. Counted and locked exactly like an
    /// account, so lockout behaviour does not reveal which accounts exist; keyed by
    /// the blind index of the typed name so the table holds no attacker-typed text.
    UnknownAccount(BlindIndex),
    /// A client address.
    ClientIp(IpAddr),
}

impl LockoutSubject {
    /// The stored `(scope, subject)` pair.
    pub fn key(&self) -> (&'static str, String) {
        match self {
            Self::Account(id) => ("account", id.as_str().to_owned()),
            Self::UnknownAccount(index) => ("account", format!("unknown:{}", index.to_hex())),
            Self::ClientIp(ip) => ("ip", canonical_ip(*ip).to_string()),
        }
    }
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address, so one client cannot get
/// two budgets by switching notation.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// `[auth.lockout]`: `max_failures` failures within `window` lock for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that trigger a lockout (at least 1).
    pub max_failures: u32,
    /// The span failures are counted in, from the first failure of the span.
    pub window: Duration,
    /// How long a lockout lasts.
    pub duration: Duration,
}

/// One subject's failure counter, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounter {
    /// Failures in the current window.
    pub failures: u32,
    /// When the current window began (its first failure).
    pub window_started_at: OffsetDateTime,
    /// Locked until then, if locked.
    pub locked_until: Option<OffsetDateTime>,
}

impl FailureCounter {
    /// Whether the subject is locked at `now`.
    pub fn locked_at(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.locked_until.filter(|until| *until > now)
    }
}

impl LockoutPolicy {
    /// The counter after one more failure at `now`.
    ///
    /// A fixed window starts at the first failure; a failure after the window (or
    /// after an expired lockout) starts a new one at 1. The failure that reaches
    /// `max_failures` sets `locked_until = now + duration`. A failure while locked
    /// (which callers do not normally record) changes nothing.
    pub fn after_failure(
        &self,
        previous: Option<FailureCounter>,
        now: OffsetDateTime,
    ) -> FailureCounter {
        let fresh = FailureCounter {
            failures: 1,
            window_started_at: now,
            locked_until: None,
        };
        let mut counter = match previous {
            Some(p) if p.locked_at(now).is_some() => return p,
            Some(p) if p.locked_until.is_some() => fresh,
            Some(p) if now - p.window_started_at >= self.window => fresh,
            Some(p) => FailureCounter {
                failures: p.failures.saturating_add(1),
                ..p
            },
            None => fresh,
        };
        if counter.failures >= self.max_failures.max(1) {
            counter.locked_until = Some(now + self.duration);
        }
        counter
    }

    /// When a counter can be forgotten: its window is over and it is not locked.
    pub fn stale_before(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.window.max(self.duration)
    }
}

/// The result of [`LockoutStore::record_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureTally {
    /// The counter after this failure.
    pub counter: FailureCounter,
    /// This failure started the lockout (audit it once).
    pub newly_locked: bool,
}

/// Users, their credentials and enrolments.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts `user` if `admission` allows it, in one transaction with spending the
    /// setup token or invite. Anything but [`Admitted::Created`] writes nothing.
    async fn create_user(
        &self,
        user: &UserRecord,
        admission: &Admission,
        at: OffsetDateTime,
    ) -> Result<Admitted, StoreError>;

    /// The user, or `None`.
    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError>;

    /// The user with this (normalized) username.
    async fn user_by_username(&self, username: &Username)
    -> Result<Option<UserRecord>, StoreError>;

    /// The user whose e-mail has this blind index.
    async fn user_by_email_index(
        &self,
        index: &BlindIndex,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Every user, by username.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Whether the first admin exists (the instance's accounts are initialized).
    async fn accounts_initialized(&self) -> Result<bool, StoreError>;

    /// Changes the profile. The security version is unchanged.
    async fn change_profile(
        &self,
        id: &UserId,
        change: &ProfileChange,
    ) -> Result<Changed, StoreError>;

    /// Applies a security-relevant change and increments the security version, in
    /// one statement (or transaction, for TOTP with recovery codes).
    async fn change_security(
        &self,
        id: &UserId,
        change: &SecurityChange,
        at: OffsetDateTime,
    ) -> Result<Changed, StoreError>;

    /// Replaces the hash after a transparent re-hash, only if the stored hash is
    /// still `old` (a concurrent password change wins). Not security-relevant.
    async fn rehash_password(
        &self,
        id: &UserId,
        old: &str,
        new: &str,
        at: OffsetDateTime,
    ) -> Result<Spent, StoreError>;

    /// Stores a new, not yet enabled TOTP secret (enrolment started), replacing a
    /// pending one. Refused ([`Changed::WrongState`]) when TOTP is already enabled.
    async fn begin_totp(
        &self,
        id: &UserId,
        sealed_secret: &[u8],
        at: OffsetDateTime,
    ) -> Result<Changed, StoreError>;

    /// Records `step` as the last accepted TOTP step if it is later than the stored
    /// one, in one conditional statement: of two uses of one code, one wins.
    async fn use_totp_step(&self, id: &UserId, step: i64) -> Result<Spent, StoreError>;

    /// Replaces every recovery code of the user.
    async fn replace_recovery_codes(
        &self,
        id: &UserId,
        hashes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Marks the unused code with this hash used, in one conditional statement.
    async fn use_recovery_code(
        &self,
        id: &UserId,
        hash: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Spent, StoreError>;

    /// The user's recovery codes.
    async fn recovery_codes(&self, id: &UserId) -> Result<Vec<RecoveryCodeRecord>, StoreError>;
}

/// Failed-login counters and lockouts (per account and per client address). In the
/// database so replicas share them.
#[async_trait]
pub trait LockoutStore: Send + Sync {
    /// The subject's counter, or `None`.
    async fn failure_counter(
        &self,
        subject: &LockoutSubject,
    ) -> Result<Option<FailureCounter>, StoreError>;

    /// Counts one failure under a row lock ([`LockoutPolicy::after_failure`]).
    async fn record_failure(
        &self,
        subject: &LockoutSubject,
        policy: &LockoutPolicy,
        at: OffsetDateTime,
    ) -> Result<FailureTally, StoreError>;

    /// Forgets the subject's failures and lockout (successful login, admin unlock).
    async fn clear_failures(&self, subject: &LockoutSubject) -> Result<Removal, StoreError>;

    /// Deletes unlocked counters whose window began before `before`.
    async fn purge_failures(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Invites and the first-admin setup token.
#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    /// Stores a new invite.
    async fn insert_invite(&self, invite: &InviteRecord) -> Result<(), StoreError>;

    /// The invite with this code hash.
    async fn invite_by_hash(&self, hash: &TokenHash) -> Result<Option<InviteRecord>, StoreError>;

    /// Every invite, newest first.
    async fn invites(&self) -> Result<Vec<InviteRecord>, StoreError>;

    /// Replaces the setup token (hash and expiry), unless the first admin exists.
    /// Returns [`Spent::Refused`] (and stores nothing) after initialization.
    async fn replace_setup_token(
        &self,
        hash: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<Spent, StoreError>;
}

/// Logins waiting for their second factor.
#[async_trait]
pub trait PendingLoginStore: Send + Sync {
    /// Stores a pending login.
    async fn insert_pending_login(&self, login: &PendingLoginRecord) -> Result<(), StoreError>;

    /// The unexpired pending login with this token hash.
    async fn pending_login(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingLoginRecord>, StoreError>;

    /// Counts a wrong second factor; at `max_failures` the pending login is deleted.
    /// Returns the failures so far.
    async fn pending_login_failed(
        &self,
        hash: &TokenHash,
        max_failures: u32,
    ) -> Result<u32, StoreError>;

    /// Deletes the unexpired pending login, in one statement: of two completions
    /// with the same token, one gets [`Spent::Now`].
    async fn consume_pending_login(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Spent, StoreError>;

    /// Deletes pending logins that expired before `before`.
    async fn purge_pending_logins(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Everything the accounts service stores. Implemented for every type that
/// implements the parts.
pub trait AccountStore: UserStore + LockoutStore + EnrollmentStore + PendingLoginStore {}

impl<T: UserStore + LockoutStore + EnrollmentStore + PendingLoginStore> AccountStore for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalized_and_validated() {
        assert_eq!(
            Username::parse(" Alice.B-2_ ").unwrap().as_str(),
            "alice.b-2_"
        );
        for bad in [
            "",
            "ab",
            "al ice",
            "alice@x",
            "ålice",
            "a/b",
            &"a".repeat(65),
        ] {
            assert_eq!(Username::parse(bad), Err(InvalidUsername), "{bad:?}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 3,
            window: Duration::from_secs(900),
            duration: Duration::from_secs(600),
        }
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn lockout_at_exactly_max_failures_and_expiry() {
        let p = policy();
        let c1 = p.after_failure(None, at(0));
        assert_eq!((c1.failures, c1.locked_until), (1, None));
        let c2 = p.after_failure(Some(c1), at(10));
        assert_eq!((c2.failures, c2.locked_until), (2, None));
        let c3 = p.after_failure(Some(c2), at(20));
        assert_eq!(c3.failures, 3);
        assert_eq!(c3.locked_until, Some(at(620)));
        assert_eq!(c3.locked_at(at(619)), Some(at(620)));
        assert_eq!(c3.locked_at(at(620)), None);
        // While locked nothing changes; after expiry counting starts over.
        assert_eq!(p.after_failure(Some(c3), at(30)), c3);
        let after = p.after_failure(Some(c3), at(700));
        assert_eq!((after.failures, after.locked_until), (1, None));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let p = policy();
        let c = p.after_failure(None, at(0));
        let c = p.after_failure(Some(c), at(899));
        assert_eq!(c.failures, 2);
        let c = p.after_failure(Some(c), at(900));
        assert_eq!((c.failures, c.window_started_at), (1, at(900)));
    }

    #[test]
    fn subjects_have_distinct_keys_and_mapped_ips_collapse() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            LockoutSubject::ClientIp(v4).key(),
            LockoutSubject::ClientIp(mapped).key()
        );
        let id = UserId::generate();
        let (scope, subject) = LockoutSubject::Account(id.clone()).key();
        assert_eq!((scope, subject.as_str()), ("account", id.as_str()));
        let unknown = LockoutSubject::UnknownAccount(BlindIndex::from_bytes([7; 32])).key();
        assert!(unknown.1.starts_with("unknown:"));
    }
}
