//! Accounts (F-USERS, F-PASSWORD, F-LOCKOUT, F-REGISTER, F-TOTP): users and their
//! credentials, from the login state machine to the admin's user management.
//!
//! | module | what |
//! |---|---|
//! | [`login`] | the login state machine: password, then the second factor |
//! | `enroll` | first-admin setup token, registration (open / invite-only / closed), invites |
//! | `mfa` | TOTP enrolment, recovery codes |
//! | `admin` | user management: create, disable, unlock, reset MFA, roles, tenants, attributes |
//! | `passwords` | Argon2id on a bounded blocking pool |
//! | `lockout` | failure counters and lockouts per account and client address |
//! | `pii` | sealing e-mail, display name and TOTP secret; the e-mail blind index |
//!
//! [`Accounts`] is the service. It implements [`UserDirectory`] for authentication
//! with a short-lived snapshot cache ([`SNAPSHOT_TTL_SECS`]) that every change made
//! here invalidates and publishes, so other replicas evict within 1 s
//! ([`crate::fanout`]); credentials issued before a security change are then refused
//! everywhere through the security version.
//!
//! Every security event is audited, and a refused audit write fails the action
//! ("fail closed"): a login whose success cannot be audited produces no identity; a
//! change is stored first and then audited, so if the audit log refuses, the change
//! stands but the caller gets an error and the operator a log line.

pub mod login;

mod admin;
mod enroll;
mod lockout;
mod mfa;
mod passwords;
mod pii;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rampart_config::{Config, Registration};
use rampart_core::audit::{AuditError, AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::account::{
    AccountStore, Changed, FieldChange, LockoutPolicy, ProfileChange, SecurityChange, UserRecord,
    Username,
};
use rampart_core::identity::session::{
    Change, ChangeKind, RevokeError, RotatedSession, SessionRevoker,
};
use rampart_core::identity::{Principal, Roles, UserDirectory, UserId, UserSnapshot};
use rampart_core::keys::DataKeys;
use rampart_core::store::StoreError;
use rampart_core::{Clock, ErrorKind};
use rampart_crypto::password::{
    Argon2Limits, PasswordConfig, PasswordError, PasswordHasher, PasswordPolicyError, Pepper,
    Verification, check_new_password,
};
use rampart_crypto::random::RandomError;
use rampart_crypto::{SecretBytes, SecretString};
use time::OffsetDateTime;

pub use admin::{ManagedAccount, Updated};
pub use enroll::{Invite, NewAccount, NewInvite, SetupToken};
pub use login::{Code, LoginError, LoginStep, PendingLogin};
pub use mfa::{EnabledTotp, TotpEnrollment};
pub use passwords::{PasswordStats, PoolError};
pub use pii::{MAX_DISPLAY_NAME_CHARS, MAX_EMAIL_LEN, SealError};

use crate::authenticate::cache::TtlCache;
use crate::fanout::{Fanout, Invalidation};
use lockout::Lockout;
use passwords::PasswordPool;
use pii::{Field, Sealer};

/// How long a user snapshot is served from memory before it is read again.
pub const SNAPSHOT_TTL_SECS: i64 = 5;
/// Most snapshots kept in memory.
pub const SNAPSHOT_CACHE_CAPACITY: usize = 10_000;
/// How long a login may wait for its second factor.
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(5 * 60);
/// Wrong second factors accepted per pending login before it is void (each also
/// counts toward the account's lockout).
pub const PENDING_LOGIN_MAX_FAILURES: u32 = 5;
/// The pepper's id in PHC strings (`keyid=p1`).
pub const PEPPER_ID: &str = "p1";
/// Most attributes per user.
pub const MAX_ATTRIBUTES: usize = 32;
/// Longest attribute value, in characters.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 256;
/// Most tenants per user.
pub const MAX_TENANTS: usize = 64;

/// The settings of the accounts service, from `[auth]`, `[totp]` and `[roles]`.
#[derive(Debug, Clone)]
pub struct AccountsSettings {
    /// Who may register.
    pub registration: Registration,
    /// Shortest new password, in characters.
    pub password_min_chars: usize,
    /// Most Argon2 computations at once.
    pub max_concurrent_hashes: NonZeroUsize,
    /// Lockout after failed logins.
    pub lockout: LockoutPolicy,
    /// How long an invite is valid.
    pub invite_ttl: Duration,
    /// How long the first-admin setup token is valid.
    pub setup_token_ttl: Duration,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// TOTP steps accepted either side of the current one.
    pub totp_skew: u8,
    /// The role the first admin gets: `admin` when configured, else the first role
    /// granting `*` or `admin`.
    pub admin_role: Option<String>,
    /// The role a self-registered user gets without an invite: `user` when
    /// configured.
    pub default_role: Option<String>,
}

impl AccountsSettings {
    /// The settings for `config`.
    pub fn from_config(config: &Config) -> Self {
        let admin_role = if config.roles.contains_key("admin") {
            Some("admin".to_owned())
        } else {
            config
                .roles
                .iter()
                .find(|(_, role)| role.is_admin_equivalent())
                .map(|(name, _)| name.clone())
        };
        Self {
            registration: config.auth.registration,
            password_min_chars: config.auth.password_min_length,
            max_concurrent_hashes: config.auth.max_concurrent_hashes,
            lockout: LockoutPolicy {
                max_failures: config.auth.lockout.max_failures.get(),
                window: config.auth.lockout.window,
                duration: config.auth.lockout.duration,
            },
            invite_ttl: config.auth.invite_ttl,
            setup_token_ttl: config.auth.setup_token_ttl,
            totp_issuer: config.totp.issuer.clone(),
            totp_skew: config.totp.skew,
            admin_role,
            default_role: config.roles.contains_key("user").then(|| "user".to_owned()),
        }
    }
}

/// The password hasher for `[auth.password]` (Argon2id cost and pepper).
pub fn password_hasher(config: &Config) -> Result<PasswordHasher, PasswordError> {
    let pepper = match &config.auth.password.pepper {
        Some(secret) => Some(Pepper::new(
            PEPPER_ID,
            SecretBytes::from_slice(secret.value.expose_secret().as_bytes()),
        )?),
        None => None,
    };
    PasswordHasher::new(PasswordConfig {
        params: config.auth.password.argon2_params(),
        limits: Argon2Limits::default(),
        pepper,
        retired_peppers: Vec::new(),
    })
}

/// The client making a request, as far as accounts care: its address (as resolved
/// through trusted proxies — lockouts count per address) and the request id (for the
/// audit record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The client address.
    pub ip: IpAddr,
    /// The request id.
    pub request_id: Option<String>,
}

/// Who performs a change, for the audit record and for session rotation.
#[derive(Debug, Clone)]
pub struct Actor {
    /// What the audit log names: a username, or `cli`.
    pub label: String,
    /// The acting user, if a user acts.
    pub user_id: Option<UserId>,
    /// The public id of the session the change is made from, if any: when a user
    /// changes their own account from a browser, that session is re-issued under a
    /// fresh id instead of revoked.
    pub session: Option<String>,
    /// The client.
    pub client: Option<ClientContext>,
}

impl Actor {
    /// An authenticated caller of the API.
    pub fn principal(principal: &Principal, client: ClientContext) -> Self {
        let session = (principal.method == rampart_core::identity::AuthMethod::Session)
            .then(|| principal.credential_id.clone())
            .flatten();
        Self {
            label: principal.username.clone(),
            user_id: Some(principal.user_id.clone()),
            session,
            client: Some(client),
        }
    }

    /// The command line (`rampart users …`, `rampart admin create`).
    pub fn cli() -> Self {
        Self {
            label: "cli".to_owned(),
            user_id: None,
            session: None,
            client: None,
        }
    }

    /// An audit event naming this actor.
    pub(crate) fn event(&self, kind: EventKind, outcome: Outcome) -> AuditEvent {
        let event = match &self.client {
            Some(client) => client.event(kind, outcome),
            None => AuditEvent::new(kind, outcome),
        };
        event.actor(self.label.clone())
    }

    /// The session-revocation change for `target`.
    fn change(&self, target: &UserId, kind: ChangeKind, security_version: i64) -> Change {
        let own = self.user_id.as_ref() == Some(target);
        Change {
            kind,
            security_version,
            acting_session: if own { self.session.clone() } else { None },
            actor: if own || self.user_id.is_none() {
                self.label.clone()
            } else {
                format!("admin:{}", self.label)
            },
        }
    }
}

/// A user as the API shows it: PII opened, no credential material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Tenants.
    pub tenants: Vec<String>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Disabled.
    pub disabled: bool,
    /// Whether TOTP is enabled.
    pub mfa_enabled: bool,
    /// Whether the user has a password (else magic link only).
    pub has_password: bool,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A profile change requested by the user. `None` leaves a field alone; an empty
/// string clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// New e-mail address.
    pub email: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
}

/// Why an account operation failed. [`AccountError::code`] is the stable API code;
/// the `Display` text is safe to show to the client for every kind but
/// [`ErrorKind::Internal`]/[`ErrorKind::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username is malformed.
    #[error(transparent)]
    InvalidUsername(#[from] rampart_core::identity::account::InvalidUsername),
    /// The e-mail address is malformed.
    #[error("the e-mail address is invalid")]
    InvalidEmail,
    /// The display name is empty, too long or has control characters.
    #[error(
        "a display name is 1 to {MAX_DISPLAY_NAME_CHARS} characters without control characters"
    )]
    InvalidDisplayName,
    /// The new password breaks the policy.
    #[error(transparent)]
    WeakPassword(#[from] PasswordPolicyError),
    /// A password is required here.
    #[error("a password is required")]
    PasswordRequired,
    /// The current password is wrong (password change, MFA changes).
    #[error("the current password is wrong")]
    WrongPassword,
    /// A role that `[roles]` does not define.
    #[error("unknown role; roles must be defined in [roles]")]
    UnknownRole,
    /// A tenant id is malformed.
    #[error(
        "a tenant id is 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '-'; at most {MAX_TENANTS} tenants"
    )]
    InvalidTenant,
    /// An attribute name or value is malformed.
    #[error(
        "attribute names are 1 to 64 characters from a-z, 0-9, '.', '_', '-'; values at most {MAX_ATTRIBUTE_VALUE_CHARS} characters without control characters; at most {MAX_ATTRIBUTES} attributes"
    )]
    InvalidAttribute,
    /// The username is taken.
    #[error("the username is taken")]
    UsernameTaken,
    /// The e-mail address is taken.
    #[error("the e-mail address is taken")]
    EmailTaken,
    /// No such user.
    #[error("no such user")]
    NoSuchUser,
    /// An admin tried to disable their own account.
    #[error("you cannot disable your own account")]
    CannotDisableSelf,
    /// No account can be created before the first admin exists.
    #[error(
        "this instance has no administrator yet; create one with the setup token or `rampart admin create`"
    )]
    NotInitialized,
    /// The first admin exists already.
    #[error("this instance already has an administrator")]
    AlreadyInitialized,
    /// The setup token is wrong, expired or used.
    #[error("the setup token is invalid, expired or already used")]
    SetupTokenInvalid,
    /// No role grants the admin permission, so there is no role for a first admin.
    #[error("no role grants the admin permission; define [roles.admin]")]
    NoAdminRole,
    /// `auth.registration = "closed"`.
    #[error("registration is closed")]
    RegistrationClosed,
    /// `auth.registration = "invite_only"` and no invite was given.
    #[error("registration needs an invite")]
    InviteRequired,
    /// The invite is wrong, expired or used.
    #[error("the invite is invalid, expired or already used")]
    InviteInvalid,
    /// TOTP is enabled already.
    #[error("TOTP is already enabled")]
    TotpAlreadyEnabled,
    /// No TOTP enrolment is pending.
    #[error("start the TOTP setup first")]
    TotpNotStarted,
    /// TOTP is not enabled.
    #[error("TOTP is not enabled")]
    TotpNotEnabled,
    /// The TOTP or recovery code is wrong (or a replay).
    #[error("the code is wrong or was already used")]
    InvalidCode,
    /// The session has not passed a second factor.
    #[error("this needs a session that passed the second factor")]
    MfaRequired,
    /// Too many failures: the account is locked for now.
    #[error("too many failed attempts; try again later")]
    Locked {
        /// Until when.
        until: OffsetDateTime,
    },
    /// Sealing or opening PII failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Hashing failed.
    #[error(transparent)]
    Password(#[from] PoolError),
    /// TOTP or QR code generation failed.
    #[error("could not build the TOTP enrolment: {0}")]
    Totp(String),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Revoking the user's other credentials failed.
    #[error(transparent)]
    Revoke(#[from] RevokeError),
}

impl AccountError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidUsername(_)
            | Self::InvalidEmail
            | Self::InvalidDisplayName
            | Self::WeakPassword(_)
            | Self::PasswordRequired
            | Self::UnknownRole
            | Self::InvalidTenant
            | Self::InvalidAttribute
            | Self::InvalidCode => ErrorKind::Client,
            Self::WrongPassword => ErrorKind::Forbidden,
            Self::UsernameTaken
            | Self::EmailTaken
            | Self::NotInitialized
            | Self::AlreadyInitialized
            | Self::TotpAlreadyEnabled
            | Self::TotpNotStarted
            | Self::TotpNotEnabled
            | Self::CannotDisableSelf => ErrorKind::Conflict,
            Self::NoSuchUser => ErrorKind::NotFound,
            Self::SetupTokenInvalid
            | Self::RegistrationClosed
            | Self::InviteRequired
            | Self::InviteInvalid
            | Self::MfaRequired => ErrorKind::Forbidden,
            Self::Locked { .. } => ErrorKind::RateLimited,
            Self::NoAdminRole | Self::Seal(_) | Self::Totp(_) | Self::Random(_) => {
                ErrorKind::Internal
            }
            Self::Password(PoolError::Unavailable) => ErrorKind::Unavailable,
            Self::Password(PoolError::Password(_)) => ErrorKind::Internal,
            Self::Store(e) => e.kind(),
            Self::Audit(e) => e.kind(),
            Self::Revoke(e) => e.kind(),
        }
    }

    /// The stable code for the API (documented in `docs/API.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUsername(_) => "invalid_username",
            Self::InvalidEmail => "invalid_email",
            Self::InvalidDisplayName => "invalid_display_name",
            Self::WeakPassword(_) => "weak_password",
            Self::PasswordRequired => "password_required",
            Self::WrongPassword => "wrong_password",
            Self::UnknownRole => "unknown_role",
            Self::InvalidTenant => "invalid_tenant",
            Self::InvalidAttribute => "invalid_attribute",
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
            Self::NoSuchUser => "not_found",
            Self::CannotDisableSelf => "cannot_disable_self",
            Self::NotInitialized => "not_initialized",
            Self::AlreadyInitialized => "already_initialized",
            Self::SetupTokenInvalid => "setup_token_invalid",
            Self::RegistrationClosed => "registration_closed",
            Self::InviteRequired => "invite_required",
            Self::InviteInvalid => "invite_invalid",
            Self::TotpAlreadyEnabled => "totp_already_enabled",
            Self::TotpNotStarted => "totp_not_started",
            Self::TotpNotEnabled => "totp_not_enabled",
            Self::InvalidCode => "invalid_code",
            Self::MfaRequired => "mfa_required",
            Self::Locked { .. } => "locked",
            Self::Password(PoolError::Unavailable) => "unavailable",
            Self::Store(StoreError::Unavailable { .. }) => "unavailable",
            Self::Audit(_) => "unavailable",
            Self::NoAdminRole
            | Self::Seal(_)
            | Self::Password(_)
            | Self::Totp(_)
            | Self::Random(_)
            | Self::Store(_)
            | Self::Revoke(_) => "internal",
        }
    }
}

/// The accounts service. Cheap to share as `Arc<Accounts>`.
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    clock: Arc<dyn Clock>,
    audit: Arc<Auditor>,
    roles: Arc<Roles>,
    revoker: Arc<dyn SessionRevoker>,
    sealer: Sealer,
    passwords: PasswordPool,
    lockout: Lockout,
    settings: AccountsSettings,
    snapshots: TtlCache<UserId, UserSnapshot>,
    fanout: Arc<Fanout>,
}

/// What [`Accounts::new`] needs besides its settings.
pub struct AccountsDeps {
    /// Storage.
    pub store: Arc<dyn AccountStore>,
    /// The unsealed data keys (PII, blind index, TOTP).
    pub keys: Arc<DataKeys>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The audit log.
    pub audit: Arc<Auditor>,
    /// The configured roles.
    pub roles: Arc<Roles>,
    /// Revokes credentials after security changes (the sessions service).
    pub revoker: Arc<dyn SessionRevoker>,
}

impl Accounts {
    /// The service.
    pub fn new(deps: AccountsDeps, hasher: PasswordHasher, settings: AccountsSettings) -> Self {
        let AccountsDeps {
            store,
            keys,
            clock,
            audit,
            roles,
            revoker,
        } = deps;
        let lockout = Lockout::new(
            store.clone() as Arc<dyn rampart_core::identity::account::LockoutStore>,
            settings.lockout,
            Arc::clone(&clock),
            Arc::clone(&audit),
        );
        Self {
            passwords: PasswordPool::new(hasher, settings.max_concurrent_hashes),
            sealer: Sealer::new(keys),
            lockout,
            store,
            clock,
            audit,
            roles,
            revoker,
            settings,
            snapshots: TtlCache::new(SNAPSHOT_CACHE_CAPACITY),
            fanout: Fanout::local(),
        }
    }

    /// Publishes security changes through `fanout` and takes the snapshot lifetime
    /// from it.
    #[must_use]
    pub fn with_fanout(mut self, fanout: Arc<Fanout>) -> Self {
        self.fanout = fanout;
        self
    }

    /// The invalidation hub this service publishes through.
    pub fn fanout(&self) -> &Arc<Fanout> {
        &self.fanout
    }

    /// Forgets the cached snapshot of `user` (another process changed it).
    pub(crate) fn evict_snapshot(&self, user: &str) {
        self.snapshots.remove_where(|id, _| id.as_str() == user);
    }

    /// Forgets every cached snapshot.
    pub(crate) fn evict_all_snapshots(&self) {
        self.snapshots.clear();
    }

    /// How many Argon2 computations ran (for metrics and tests).
    pub fn password_stats(&self) -> PasswordStats {
        self.passwords.stats()
    }

    /// The settings in force.
    pub fn settings(&self) -> &AccountsSettings {
        &self.settings
    }

    /// The user with this id.
    pub async fn account(&self, id: &UserId) -> Result<Account, AccountError> {
        let user = self.record(id).await?;
        self.view(&user)
    }

    /// The user with this username (for the command line).
    pub async fn account_by_username(&self, username: &str) -> Result<Account, AccountError> {
        let username = Username::parse(username)?;
        let user = self
            .store
            .user_by_username(&username)
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        self.view(&user)
    }

    /// The user whose e-mail address is `email` (compared normalized, through the
    /// blind index), for the magic-link flow. `None` for an unknown or malformed
    /// address.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserId>, AccountError> {
        let Some(email) = pii::valid_email(email) else {
            return Ok(None);
        };
        let index = self.sealer.email_index(&email);
        Ok(self
            .store
            .user_by_email_index(&index)
            .await?
            .map(|user| user.id))
    }

    /// Changes the caller's own e-mail address and/or display name.
    pub async fn update_profile(
        &self,
        actor: &Actor,
        id: &UserId,
        update: &ProfileUpdate,
    ) -> Result<Account, AccountError> {
        let email = match update.email.as_deref() {
            None => FieldChange::Keep,
            Some(text) if text.trim().is_empty() => FieldChange::Clear,
            Some(text) => {
                let email = pii::valid_email(text).ok_or(AccountError::InvalidEmail)?;
                let sealed = self.sealer.seal(Field::Email, id, email.as_bytes())?;
                FieldChange::Set((sealed, self.sealer.email_index(&email)))
            }
        };
        let display_name = match update.display_name.as_deref() {
            None => FieldChange::Keep,
            Some(text) if text.trim().is_empty() => FieldChange::Clear,
            Some(text) => {
                let name = pii::valid_display_name(text).ok_or(AccountError::InvalidDisplayName)?;
                FieldChange::Set(self.sealer.seal(Field::DisplayName, id, name.as_bytes())?)
            }
        };
        let fields: Vec<&str> = [
            (!matches!(email, FieldChange::Keep)).then_some("email"),
            (!matches!(display_name, FieldChange::Keep)).then_some("display_name"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let change = ProfileChange {
            email,
            display_name,
            at: self.clock.now(),
        };
        match self.store.change_profile(id, &change).await? {
            Changed::Applied { .. } => {}
            Changed::EmailTaken => return Err(AccountError::EmailTaken),
            Changed::NoSuchUser | Changed::WrongState => return Err(AccountError::NoSuchUser),
        }
        self.audit
            .record(
                actor
                    .event(EventKind::AccountProfileUpdated, Outcome::Success)
                    .target(id.as_str())
                    .detail("fields", fields.join(",")),
            )
            .await?;
        self.account(id).await
    }

    /// Changes the caller's password after checking the current one. Other sessions
    /// and refresh tokens are revoked; the acting session is re-issued (send the
    /// returned cookie). A wrong current password counts toward the lockout.
    pub async fn change_password(
        &self,
        actor: &Actor,
        id: &UserId,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<Option<RotatedSession>, AccountError> {
        let user = self.record(id).await?;
        let subject = rampart_core::identity::account::LockoutSubject::Account(id.clone());
        let client = mfa::actor_client(actor);
        if let Some(until) = self.lockout.locked_until(&subject, client.ip).await? {
            return Err(AccountError::Locked { until });
        }
        // A magic-link-only user sets a first password; the session proves them.
        if let Some(stored) = &user.password_hash {
            match self.passwords.verify(current, stored).await {
                Ok(Verification::Valid | Verification::ValidNeedsRehash) => {}
                Ok(Verification::Invalid)
                | Err(PoolError::Password(PasswordError::TooLong { .. })) => {
                    self.lockout
                        .record_failure(&subject, &actor.label, &client)
                        .await?;
                    return Err(AccountError::WrongPassword);
                }
                Err(e) => return Err(e.into()),
            }
        }
        check_new_password(new, self.settings.password_min_chars)?;
        let hash = self.passwords.hash(new).await?;
        let version = self
            .security_change(id, &SecurityChange::Password(Some(hash.into_string())))
            .await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AccountPasswordChanged, Outcome::Success)
                    .target(id.as_str()),
            )
            .await?;
        self.revoke(actor, id, ChangeKind::PasswordChanged, version)
            .await
    }

    /// The stored user, or [`AccountError::NoSuchUser`].
    async fn record(&self, id: &UserId) -> Result<UserRecord, AccountError> {
        self.store.user(id).await?.ok_or(AccountError::NoSuchUser)
    }

    /// Applies a security change and invalidates the cached snapshot. Returns the
    /// new security version.
    async fn security_change(
        &self,
        id: &UserId,
        change: &SecurityChange,
    ) -> Result<i64, AccountError> {
        let result = self
            .store
            .change_security(id, change, self.clock.now())
            .await;
        self.snapshots.remove(id);
        self.fanout.publish(Invalidation::User {
            user: id.as_str().to_owned(),
        });
        match result? {
            Changed::Applied { security_version } => Ok(security_version),
            Changed::NoSuchUser => Err(AccountError::NoSuchUser),
            Changed::EmailTaken => Err(AccountError::EmailTaken),
            Changed::WrongState => Err(match change {
                SecurityChange::TotpEnabled { .. } => AccountError::TotpNotStarted,
                _ => AccountError::NoSuchUser,
            }),
        }
    }

    /// Tells the sessions service about a security change.
    async fn revoke(
        &self,
        actor: &Actor,
        target: &UserId,
        kind: ChangeKind,
        security_version: i64,
    ) -> Result<Option<RotatedSession>, AccountError> {
        let change = actor.change(target, kind, security_version);
        let revocation = self.revoker.on_security_change(target, &change).await?;
        Ok(revocation.rotated)
    }

    /// The API view of a stored user.
    fn view(&self, user: &UserRecord) -> Result<Account, AccountError> {
        let email = user
            .email_sealed
            .as_deref()
            .map(|sealed| self.sealer.open_text(Field::Email, &user.id, sealed))
            .transpose()?;
        let display_name = user
            .display_name_sealed
            .as_deref()
            .map(|sealed| self.sealer.open_text(Field::DisplayName, &user.id, sealed))
            .transpose()?;
        Ok(Account {
            id: user.id.clone(),
            username: user.username.as_str().to_owned(),
            email,
            display_name,
            roles: user.roles.clone(),
            tenants: user.tenants.clone(),
            attributes: user.attributes.clone(),
            disabled: user.disabled,
            mfa_enabled: user.totp_enabled(),
            has_password: user.password_hash.is_some(),
            created_at: user.created_at,
            updated_at: user.updated_at,
        })
    }
}

#[async_trait]
impl UserDirectory for Accounts {
    async fn snapshot(&self, id: &UserId) -> Result<Option<UserSnapshot>, StoreError> {
        let now = self.clock.unix();
        if let Some(hit) = self.snapshots.get(id, now) {
            return Ok(Some(hit));
        }
        let ticket = self.fanout.ticket();
        let Some(user) = self.store.user(id).await? else {
            return Ok(None);
        };
        let snapshot = user.snapshot();
        let until = self.fanout.expiry(ticket, now, SNAPSHOT_TTL_SECS);
        self.snapshots
            .insert(id.clone(), snapshot.clone(), until, now);
        Ok(Some(snapshot))
    }
}

#[async_trait]
impl crate::authenticate::UsernameLookup for Accounts {
    async fn user_id_by_username(&self, username: &str) -> Result<Option<UserId>, StoreError> {
        let Ok(username) = Username::parse(username) else {
            return Ok(None);
        };
        Ok(self.store.user_by_username(&username).await?.map(|u| u.id))
    }
}

#[cfg(test)]
pub(crate) mod testing;
