//! The login state machine (F-PASSWORD, F-LOCKOUT, F-TOTP).
//!
//! ```text
//! ExpectPassword ──handle(name, password)──► Complete(VerifiedIdentity)        no TOTP
//!                                       └──► SecondFactor(PendingLogin)        TOTP enabled
//! ExpectSecondFactor (resumed from the PendingLogin token)
//!                ──handle(Code::Totp | Code::Recovery)──► VerifiedIdentity (mfa)
//! ```
//!
//! Each state is an owned value consumed by its `handle`, and the only way out with
//! an identity is through the checks; [`VerifiedIdentity`]'s constructor is private
//! to this crate. Between the two steps the state lives in the database as a pending
//! login (short-lived, single use, bound to the user and their security version) and
//! the client holds only an opaque `mfa_token`.
//!
//! What a client can learn:
//!
//! - **Unknown user and wrong password are identical**: same error, and the
//!   unknown-user path spends a full Argon2 verification (`dummy_verify`) so timing
//!   matches. A user without a password (magic link only) takes the same path.
//! - **Lockout says `locked` for any name**: names that match no account are counted
//!   and locked like accounts, so `locked` does not reveal existence. While locked,
//!   the password is not even checked: the right one is refused too.
//! - Only after the right password does a client learn more: that the account is
//!   disabled, or that a second factor is needed.

use std::fmt;

use rampart_core::ErrorKind;
use rampart_core::audit::{AuditError, EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::account::{
    LockoutSubject, PendingLoginRecord, Spent, TokenHash, UserRecord, Username,
};
use rampart_core::store::StoreError;
use rampart_crypto::password::{PasswordError, Verification};
use rampart_crypto::random::{self, RandomError};
use rampart_crypto::token::hash_token;
use rampart_crypto::{RecoveryCode, SecretString};
use time::OffsetDateTime;

use super::passwords::PoolError;
use super::pii::{self, Field};
use super::{AccountError, Accounts, ClientContext, PENDING_LOGIN_MAX_FAILURES, PENDING_LOGIN_TTL};
use crate::verified::{LoginMethod, VerifiedIdentity};

/// The result of the password step.
#[derive(Debug)]
pub enum LoginStep {
    /// Signed in (no second factor enrolled).
    Complete(VerifiedIdentity),
    /// The password was right; now the second factor.
    SecondFactor(PendingLogin),
}

/// A login waiting for its second factor: the opaque token the client sends back
/// with the code. Single use, valid for [`PENDING_LOGIN_TTL`].
pub struct PendingLogin {
    token: SecretString,
    expires_at: OffsetDateTime,
}

impl PendingLogin {
    /// The `mfa_token` to give the client.
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// When it stops working.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A second factor.
#[derive(Debug, Clone)]
pub enum Code {
    /// A TOTP code (6 digits).
    Totp(SecretString),
    /// A recovery code (`xxxx-xxxx-xxxx-xxxx`; case, dashes and spaces ignored).
    Recovery(SecretString),
}

/// Why a login did not complete. The codes are stable API codes.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password, or a user without a password — never told
    /// apart.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The account or the client address is locked after too many failures.
    #[error("too many failed logins; try again later")]
    Locked {
        /// Until when.
        until: OffsetDateTime,
    },
    /// The password was right but the account is disabled.
    #[error("this account is disabled")]
    Disabled,
    /// The `mfa_token` is unknown, expired, used, or the account changed since.
    #[error("the login has expired; sign in again")]
    PendingLoginInvalid,
    /// The TOTP or recovery code is wrong, malformed or a replay.
    #[error("the code is wrong or was already used")]
    InvalidSecondFactor,
    /// Hashing, sealing or randomness failed.
    #[error("login failed internally: {0}")]
    Internal(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record, so the login was refused.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl LoginError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidCredentials | Self::PendingLoginInvalid | Self::InvalidSecondFactor => {
                ErrorKind::Unauthenticated
            }
            Self::Locked { .. } => ErrorKind::RateLimited,
            Self::Disabled => ErrorKind::Forbidden,
            Self::Internal(_) => ErrorKind::Internal,
            Self::Store(e) => e.kind(),
            Self::Audit(e) => e.kind(),
        }
    }

    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::Locked { .. } => "login_locked",
            Self::Disabled => "account_disabled",
            Self::PendingLoginInvalid => "mfa_token_invalid",
            Self::InvalidSecondFactor => "invalid_second_factor",
            Self::Store(StoreError::Unavailable { .. }) | Self::Audit(_) => "unavailable",
            Self::Internal(_) | Self::Store(_) => "internal",
        }
    }
}

impl From<AccountError> for LoginError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(e) => Self::Store(e),
            AccountError::Audit(e) => Self::Audit(e),
            AccountError::Locked { until } => Self::Locked { until },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl Accounts {
    /// The password step. See the module documentation.
    pub async fn login_password(
        &self,
        name: &str,
        password: &SecretString,
        client: &ClientContext,
    ) -> Result<LoginStep, LoginError> {
        let expect = ExpectPassword {
            accounts: self,
            client,
        };
        match expect.handle(name, password).await? {
            AfterPassword::Complete(identity) => Ok(LoginStep::Complete(identity)),
            AfterPassword::SecondFactor(next) => Ok(LoginStep::SecondFactor(next.suspend().await?)),
        }
    }

    /// The second-factor step, with the `mfa_token` from [`LoginStep::SecondFactor`].
    pub async fn login_second_factor(
        &self,
        mfa_token: &SecretString,
        code: Code,
        client: &ClientContext,
    ) -> Result<VerifiedIdentity, LoginError> {
        let expect = ExpectSecondFactor::resume(self, mfa_token, client).await?;
        expect.handle(code).await
    }

    /// The identity for a verified magic link (only for the magic-link flow, which
    /// has proved control of the user's mailbox). Refuses a disabled or unknown user.
    /// The identity has not passed MFA; a user with TOTP enabled therefore cannot use
    /// permissions of roles that require it until they sign in with the second
    /// factor.
    pub(crate) async fn identity_for_magic_link(
        &self,
        user: &UserId,
        client: &ClientContext,
    ) -> Result<VerifiedIdentity, LoginError> {
        let Some(record) = self.store.user(user).await? else {
            return Err(LoginError::InvalidCredentials);
        };
        if record.disabled {
            return Err(LoginError::Disabled);
        }
        self.audit_success(&record, LoginMethod::MagicLink, client)
            .await?;
        Ok(VerifiedIdentity::new(
            record.id.clone(),
            record.username.as_str().to_owned(),
            LoginMethod::MagicLink,
            false,
            record.security_version,
        ))
    }

    /// Audits a completed login.
    async fn audit_success(
        &self,
        user: &UserRecord,
        method: LoginMethod,
        client: &ClientContext,
    ) -> Result<(), AuditError> {
        let method = match method {
            LoginMethod::Password => "password",
            LoginMethod::PasswordAndTotp => "password+totp",
            LoginMethod::PasswordAndRecoveryCode => "password+recovery_code",
            LoginMethod::MagicLink => "magic_link",
            LoginMethod::Setup => "setup",
            LoginMethod::Registration => "registration",
            LoginMethod::Refresh => "refresh",
        };
        self.audit
            .record(
                client
                    .event(EventKind::AuthLoginSucceeded, Outcome::Success)
                    .actor(user.username.as_str())
                    .target(user.id.as_str())
                    .detail("method", method),
            )
            .await
    }

    /// Audits a failed login attempt.
    async fn audit_failure(
        &self,
        actor: &str,
        target: Option<&UserId>,
        reason: &str,
        client: &ClientContext,
    ) -> Result<(), AuditError> {
        let mut event = client
            .event(EventKind::AuthLoginFailed, Outcome::Failure)
            .actor(actor)
            .reason(reason);
        if let Some(id) = target {
            event = event.target(id.as_str());
        }
        self.audit.record(event).await
    }
}

/// Nothing proven yet.
struct ExpectPassword<'a> {
    accounts: &'a Accounts,
    client: &'a ClientContext,
}

/// The password step's outcome.
enum AfterPassword<'a> {
    Complete(VerifiedIdentity),
    SecondFactor(Box<PasswordVerified<'a>>),
}

/// The password was right and TOTP is enabled: the pending login to store.
struct PasswordVerified<'a> {
    accounts: &'a Accounts,
    user: UserRecord,
    client: &'a ClientContext,
}

impl<'a> ExpectPassword<'a> {
    async fn handle(
        self,
        name: &str,
        password: &SecretString,
    ) -> Result<AfterPassword<'a>, LoginError> {
        let accounts = self.accounts;
        let client = self.client;
        // Audit records name what the client typed, bounded by the audit limits.
        let actor: String = name.chars().take(256).collect();
        let user = self.find(name).await?;
        let subject = match &user {
            Some(user) => LockoutSubject::Account(user.id.clone()),
            None => LockoutSubject::UnknownAccount(accounts.sealer.login_name_index(name)),
        };
        if let Some(until) = accounts.lockout.locked_until(&subject, client.ip).await? {
            accounts
                .audit_failure(&actor, user.as_ref().map(|u| &u.id), "locked out", client)
                .await?;
            return Err(LoginError::Locked { until });
        }
        let verdict = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
            Some(stored) => accounts.passwords.verify(password, stored).await,
            None => accounts
                .passwords
                .dummy_verify(password)
                .await
                .map(|()| Verification::Invalid),
        };
        let verdict = match verdict {
            Ok(v) => v,
            // An over-long password is the client's problem, and wrong.
            Err(PoolError::Password(PasswordError::TooLong { .. })) => Verification::Invalid,
            Err(e) => return Err(LoginError::Internal(e.to_string())),
        };
        let user = match (user, verdict) {
            (Some(user), Verification::Valid | Verification::ValidNeedsRehash) => {
                if verdict == Verification::ValidNeedsRehash {
                    accounts.rehash(&user, password).await;
                }
                user
            }
            (user, _) => {
                let reason = match &user {
                    None => "unknown user",
                    Some(u) if u.password_hash.is_none() => "no password set",
                    Some(_) => "wrong password",
                };
                accounts
                    .lockout
                    .record_failure(&subject, &actor, client)
                    .await?;
                accounts
                    .audit_failure(&actor, user.as_ref().map(|u| &u.id), reason, client)
                    .await?;
                return Err(LoginError::InvalidCredentials);
            }
        };
        if user.disabled {
            accounts
                .audit_failure(&actor, Some(&user.id), "account disabled", client)
                .await?;
            return Err(LoginError::Disabled);
        }
        if user.totp_enabled() {
            // The counter is cleared only when the whole login succeeds: clearing it
            // here would let someone who knows the password guess second factors
            // without ever being locked out.
            return Ok(AfterPassword::SecondFactor(Box::new(PasswordVerified {
                accounts,
                user,
                client,
            })));
        }
        accounts.lockout.clear_account(&subject).await?;
        accounts
            .audit_success(&user, LoginMethod::Password, client)
            .await?;
        Ok(AfterPassword::Complete(VerifiedIdentity::new(
            user.id.clone(),
            user.username.as_str().to_owned(),
            LoginMethod::Password,
            false,
            user.security_version,
        )))
    }

    /// The account named by a username or an e-mail address.
    async fn find(&self, name: &str) -> Result<Option<UserRecord>, LoginError> {
        let store = &self.accounts.store;
        if name.contains('@') {
            let Some(email) = pii::valid_email(name) else {
                return Ok(None);
            };
            let index = self.accounts.sealer.email_index(&email);
            Ok(store.user_by_email_index(&index).await?)
        } else {
            match Username::parse(name) {
                Ok(username) => Ok(store.user_by_username(&username).await?),
                Err(_) => Ok(None),
            }
        }
    }
}

impl PasswordVerified<'_> {
    /// Stores the pending login and hands out its token.
    async fn suspend(self) -> Result<PendingLogin, LoginError> {
        let token = SecretString::new(
            random::token::<32>().map_err(|e: RandomError| LoginError::Internal(e.to_string()))?,
        );
        let now = self.accounts.clock.now();
        let expires_at = now + PENDING_LOGIN_TTL;
        self.accounts
            .store
            .insert_pending_login(&PendingLoginRecord {
                token_hash: hash_token(token.expose_secret()),
                user_id: self.user.id.clone(),
                security_version: self.user.security_version,
                client_ip: self.client.ip,
                created_at: now,
                expires_at,
                failures: 0,
            })
            .await?;
        // Housekeeping; a failure only leaves expired rows behind.
        if let Err(error) = self.accounts.store.purge_pending_logins(now).await {
            tracing::warn!(%error, "could not purge expired pending logins");
        }
        Ok(PendingLogin { token, expires_at })
    }
}

/// The password was right; the second factor is due.
struct ExpectSecondFactor<'a> {
    accounts: &'a Accounts,
    client: &'a ClientContext,
    token_hash: TokenHash,
    user: UserRecord,
}

impl<'a> ExpectSecondFactor<'a> {
    /// Finds the pending login for `token` and checks it still applies: unexpired,
    /// the user still enabled, TOTP still on, nothing security-relevant changed.
    async fn resume(
        accounts: &'a Accounts,
        token: &SecretString,
        client: &'a ClientContext,
    ) -> Result<Self, LoginError> {
        if token.len() > 128 {
            return Err(LoginError::PendingLoginInvalid);
        }
        let token_hash = hash_token(token.expose_secret());
        let now = accounts.clock.now();
        let Some(pending) = accounts.store.pending_login(&token_hash, now).await? else {
            return Err(LoginError::PendingLoginInvalid);
        };
        let user = accounts.store.user(&pending.user_id).await?;
        let user = match user {
            Some(user)
                if !user.disabled
                    && user.totp_enabled()
                    && user.security_version == pending.security_version =>
            {
                user
            }
            _ => {
                accounts
                    .store
                    .consume_pending_login(&token_hash, now)
                    .await?;
                return Err(LoginError::PendingLoginInvalid);
            }
        };
        Ok(Self {
            accounts,
            client,
            token_hash,
            user,
        })
    }

    async fn handle(self, code: Code) -> Result<VerifiedIdentity, LoginError> {
        let accounts = self.accounts;
        let client = self.client;
        let user = &self.user;
        let subject = LockoutSubject::Account(user.id.clone());
        if let Some(until) = accounts.lockout.locked_until(&subject, client.ip).await? {
            accounts
                .audit_failure(user.username.as_str(), Some(&user.id), "locked out", client)
                .await?;
            return Err(LoginError::Locked { until });
        }
        let method = match accounts.check_second_factor(user, &code).await? {
            Some(method) => method,
            None => {
                accounts
                    .lockout
                    .record_failure(&subject, user.username.as_str(), client)
                    .await?;
                accounts
                    .store
                    .pending_login_failed(&self.token_hash, PENDING_LOGIN_MAX_FAILURES)
                    .await?;
                accounts
                    .audit_failure(
                        user.username.as_str(),
                        Some(&user.id),
                        "wrong second factor",
                        client,
                    )
                    .await?;
                return Err(LoginError::InvalidSecondFactor);
            }
        };
        let now = accounts.clock.now();
        if accounts
            .store
            .consume_pending_login(&self.token_hash, now)
            .await?
            != Spent::Now
        {
            // A concurrent completion with the same token won.
            return Err(LoginError::PendingLoginInvalid);
        }
        if method == LoginMethod::PasswordAndRecoveryCode {
            let remaining = accounts
                .store
                .recovery_codes(&user.id)
                .await?
                .iter()
                .filter(|c| c.used_at.is_none())
                .count();
            accounts
                .audit
                .record(
                    client
                        .event(EventKind::AuthMfaRecoveryUsed, Outcome::Success)
                        .actor(user.username.as_str())
                        .target(user.id.as_str())
                        .detail("remaining", remaining.to_string()),
                )
                .await?;
        }
        accounts.lockout.clear_account(&subject).await?;
        accounts.audit_success(user, method, client).await?;
        Ok(VerifiedIdentity::new(
            user.id.clone(),
            user.username.as_str().to_owned(),
            method,
            true,
            user.security_version,
        ))
    }
}

impl Accounts {
    /// Checks and spends a second factor of `user` (TOTP enabled): a TOTP code
    /// whose step is later than the last one used, or an unused recovery code.
    /// `None` when wrong, malformed or replayed.
    pub(crate) async fn check_second_factor(
        &self,
        user: &UserRecord,
        code: &Code,
    ) -> Result<Option<LoginMethod>, LoginError> {
        match code {
            Code::Totp(code) => {
                let Some(totp) = user.totp.as_ref().filter(|t| t.enabled) else {
                    return Ok(None);
                };
                let secret = self
                    .sealer
                    .open(Field::TotpSecret, &user.id, &totp.sealed_secret)
                    .map_err(|e| LoginError::Internal(e.to_string()))?;
                let last = totp
                    .last_used_step
                    .and_then(|step| u64::try_from(step).ok());
                let step = super::mfa::verify_code(
                    &secret,
                    code,
                    self.clock.unix(),
                    self.settings.totp_skew,
                    last,
                )
                .map_err(|e| LoginError::Internal(e.to_string()))?;
                let Some(step) = step else {
                    return Ok(None);
                };
                // The conditional update is what makes a code single-use across
                // concurrent requests and replicas.
                match self.store.use_totp_step(&user.id, step).await? {
                    Spent::Now => Ok(Some(LoginMethod::PasswordAndTotp)),
                    Spent::Refused => Ok(None),
                }
            }
            Code::Recovery(code) => {
                let Ok(code) = RecoveryCode::parse(code.expose_secret()) else {
                    return Ok(None);
                };
                match self
                    .store
                    .use_recovery_code(&user.id, &code.hash(), self.clock.now())
                    .await?
                {
                    Spent::Now => Ok(Some(LoginMethod::PasswordAndRecoveryCode)),
                    Spent::Refused => Ok(None),
                }
            }
        }
    }

    /// Replaces a hash made with old parameters (best effort: a failure is logged
    /// and the login proceeds; the next login tries again).
    async fn rehash(&self, user: &UserRecord, password: &SecretString) {
        let Some(old) = user.password_hash.as_deref() else {
            return;
        };
        let result = match self.passwords.hash(password).await {
            Ok(new) => self
                .store
                .rehash_password(&user.id, old, new.as_str(), self.clock.now())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(user = %user.id, %error, "could not re-hash a password with the current parameters");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rampart_config::Registration;
    use rampart_core::Clock as _;
    use rampart_crypto::{Totp, TotpAlgorithm, TotpSecret};

    use super::*;
    use crate::accounts::testing::{Harness, client};
    use crate::accounts::{Actor, NewAccount};

    const PASSWORD: &str = "vault-Quill-93-orbit";

    async fn admin(h: &Harness) -> UserId {
        h.accounts
            .create_admin_from_cli(
                NewAccount {
                    username: "Root".into(),
                    password: Some(PASSWORD.into()),
                    email: Some("root@example.com".into()),
                    ..NewAccount::default()
                },
                false,
            )
            .await
            .unwrap()
            .id
    }

    fn pw(text: &str) -> SecretString {
        SecretString::from(text)
    }

    #[tokio::test]
    async fn unknown_user_and_wrong_password_look_the_same_and_both_hash() {
        let h = Harness::new(Registration::Closed).await;
        admin(&h).await;
        let c = client("192.0.2.1");
        let before = h.accounts.password_stats();
        let unknown = h
            .accounts
            .login_password("nobody", &pw(PASSWORD), &c)
            .await
            .unwrap_err();
        let after_unknown = h.accounts.password_stats();
        assert_eq!(
            after_unknown.dummy_verifications,
            before.dummy_verifications + 1
        );
        let wrong = h
            .accounts
            .login_password("root", &pw("wrong password!!"), &c)
            .await
            .unwrap_err();
        assert_eq!(
            h.accounts.password_stats().verifications,
            after_unknown.verifications + 1
        );
        assert_eq!(unknown.code(), wrong.code());
        assert_eq!(unknown.to_string(), wrong.to_string());
        assert_eq!(unknown.code(), "invalid_credentials");
        // By username (any case) and by e-mail.
        for name in ["root", "ROOT", "Root@Example.com"] {
            assert!(matches!(
                h.accounts.login_password(name, &pw(PASSWORD), &c).await,
                Ok(LoginStep::Complete(_))
            ));
        }
    }

    #[tokio::test]
    async fn lockout_at_exactly_max_failures_for_known_and_unknown_names() {
        let h = Harness::new(Registration::Closed).await;
        admin(&h).await;
        // Distinct addresses per attempt, so only the account counter matters.
        for i in 0..2 {
            let c = client(&format!("192.0.2.{i}"));
            let e = h
                .accounts
                .login_password("root", &pw("wrong password!!"), &c)
                .await
                .unwrap_err();
            assert_eq!(e.code(), "invalid_credentials");
        }
        // Two failures (one below the limit): the right password still works and
        // clears the counter.
        assert!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &client("192.0.2.9"))
                .await
                .is_ok()
        );
        for i in 0..3 {
            let c = client(&format!("198.51.100.{i}"));
            let e = h
                .accounts
                .login_password("root", &pw("wrong password!!"), &c)
                .await
                .unwrap_err();
            assert_eq!(e.code(), "invalid_credentials");
        }
        let locked = h
            .accounts
            .login_password("root", &pw(PASSWORD), &client("203.0.113.1"))
            .await
            .unwrap_err();
        assert_eq!(locked.code(), "login_locked");
        // A name that matches nobody locks the same way.
        for i in 0..3 {
            let c = client(&format!("198.51.100.{}", 10 + i));
            assert_eq!(
                h.accounts
                    .login_password("ghost", &pw("x"), &c)
                    .await
                    .unwrap_err()
                    .code(),
                "invalid_credentials"
            );
        }
        assert_eq!(
            h.accounts
                .login_password("ghost", &pw("x"), &client("203.0.113.2"))
                .await
                .unwrap_err()
                .code(),
            "login_locked"
        );
        // After the lockout duration the right password works again.
        h.clock.advance(Duration::from_secs(601));
        assert!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &client("203.0.113.1"))
                .await
                .is_ok()
        );
        let kinds = h.audit_kinds().await;
        assert_eq!(kinds.iter().filter(|k| *k == "auth.lockout").count(), 2);
    }

    #[tokio::test]
    async fn the_client_address_is_locked_separately() {
        let h = Harness::new(Registration::Closed).await;
        admin(&h).await;
        let c = client("192.0.2.7");
        for name in ["a-one", "a-two", "a-three"] {
            let _ = h.accounts.login_password(name, &pw("x"), &c).await;
        }
        assert_eq!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &c)
                .await
                .unwrap_err()
                .code(),
            "login_locked"
        );
        // Unlocking the account does not lift the address's lockout...
        let root = h.accounts.account_by_username("root").await.unwrap().id;
        h.accounts.unlock(&Actor::cli(), &root).await.unwrap();
        assert!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &c)
                .await
                .is_err()
        );
        // ...but another address is fine.
        assert!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &client("192.0.2.8"))
                .await
                .is_ok()
        );
    }

    async fn enrol_totp(h: &Harness, id: &UserId) -> (Totp, Vec<RecoveryCode>) {
        let enrollment = h.accounts.totp_setup(id).await.unwrap();
        assert!(
            enrollment
                .otpauth_uri
                .expose_secret()
                .starts_with("otpauth://totp/")
        );
        assert!(enrollment.qr_svg.expose_secret().contains("<svg"));
        let secret = TotpSecret::from_base32(&enrollment.secret).unwrap();
        let totp = Totp::new(&secret, TotpAlgorithm::Sha1, 6).unwrap();
        let code = totp.code_at(h.clock.unix()).unwrap();
        let enabled = h
            .accounts
            .totp_enable(&Actor::cli(), id, &code)
            .await
            .unwrap();
        assert_eq!(enabled.recovery_codes.len(), 10);
        (totp, enabled.recovery_codes)
    }

    async fn pending(h: &Harness, c: &ClientContext) -> SecretString {
        match h.accounts.login_password("root", &pw(PASSWORD), c).await {
            Ok(LoginStep::SecondFactor(p)) => p.token().clone(),
            other => panic!("expected a second factor step: {other:?}"),
        }
    }

    #[tokio::test]
    async fn totp_login_refuses_replays_and_recovery_codes_work_once() {
        let h = Harness::new(Registration::Closed).await;
        let id = admin(&h).await;
        let (totp, recovery) = enrol_totp(&h, &id).await;
        assert_eq!(h.revoker.changes.lock().unwrap().len(), 1);
        let c = client("192.0.2.1");
        // The enrolment code's step is spent: the same code at the same time fails.
        let token = pending(&h, &c).await;
        let same = totp.code_at(h.clock.unix()).unwrap();
        assert_eq!(
            h.accounts
                .login_second_factor(&token, Code::Totp(same), &c)
                .await
                .unwrap_err()
                .code(),
            "invalid_second_factor"
        );
        // Next step's code works once.
        h.clock.advance(Duration::from_secs(30));
        let code = totp.code_at(h.clock.unix()).unwrap();
        let identity = h
            .accounts
            .login_second_factor(&token, Code::Totp(code.clone()), &c)
            .await
            .unwrap();
        assert!(identity.mfa());
        assert_eq!(identity.method(), LoginMethod::PasswordAndTotp);
        // The pending login is spent.
        assert_eq!(
            h.accounts
                .login_second_factor(&token, Code::Totp(code.clone()), &c)
                .await
                .unwrap_err()
                .code(),
            "mfa_token_invalid"
        );
        // A replay of the code in a new login is refused.
        let token = pending(&h, &c).await;
        assert_eq!(
            h.accounts
                .login_second_factor(&token, Code::Totp(code), &c)
                .await
                .unwrap_err()
                .code(),
            "invalid_second_factor"
        );
        // A recovery code works once (any case, with or without dashes).
        let first = recovery[0].expose_secret().to_uppercase().replace('-', "");
        let identity = h
            .accounts
            .login_second_factor(&token, Code::Recovery(pw(&first)), &c)
            .await
            .unwrap();
        assert_eq!(identity.method(), LoginMethod::PasswordAndRecoveryCode);
        let token = pending(&h, &c).await;
        assert_eq!(
            h.accounts
                .login_second_factor(&token, Code::Recovery(pw(&first)), &c)
                .await
                .unwrap_err()
                .code(),
            "invalid_second_factor"
        );
        let kinds = h.audit_kinds().await;
        assert!(kinds.contains(&"auth.mfa.enabled".to_owned()));
        assert!(kinds.contains(&"auth.mfa.recovery_used".to_owned()));
    }

    #[tokio::test]
    async fn second_factor_failures_count_toward_the_lockout() {
        let h = Harness::new(Registration::Closed).await;
        let id = admin(&h).await;
        let (totp, _) = enrol_totp(&h, &id).await;
        for i in 0..3 {
            let c = client(&format!("192.0.2.{i}"));
            let token = pending(&h, &c).await;
            let e = h
                .accounts
                .login_second_factor(&token, Code::Totp(pw("000000")), &c)
                .await
                .unwrap_err();
            assert_eq!(e.code(), "invalid_second_factor");
        }
        let c = client("192.0.2.50");
        assert_eq!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &c)
                .await
                .unwrap_err()
                .code(),
            "login_locked"
        );
        h.clock.advance(Duration::from_secs(601));
        let token = pending(&h, &c).await;
        let code = totp.code_at(h.clock.unix()).unwrap();
        assert!(
            h.accounts
                .login_second_factor(&token, Code::Totp(code), &c)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn security_changes_void_pending_logins_and_disabled_users_cannot_sign_in() {
        let h = Harness::new(Registration::Closed).await;
        let id = admin(&h).await;
        let (totp, _) = enrol_totp(&h, &id).await;
        let c = client("192.0.2.1");
        let token = pending(&h, &c).await;
        h.accounts.reset_mfa(&Actor::cli(), &id).await.unwrap();
        h.clock.advance(Duration::from_secs(30));
        let code = totp.code_at(h.clock.unix()).unwrap();
        assert_eq!(
            h.accounts
                .login_second_factor(&token, Code::Totp(code), &c)
                .await
                .unwrap_err()
                .code(),
            "mfa_token_invalid"
        );
        // After the reset the password alone signs in.
        assert!(matches!(
            h.accounts.login_password("root", &pw(PASSWORD), &c).await,
            Ok(LoginStep::Complete(_))
        ));
        h.accounts
            .set_disabled(&Actor::cli(), &id, true)
            .await
            .unwrap();
        assert_eq!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &c)
                .await
                .unwrap_err()
                .code(),
            "account_disabled"
        );
        // Pending logins expire.
        h.accounts
            .set_disabled(&Actor::cli(), &id, false)
            .await
            .unwrap();
        enrol_totp(&h, &id).await;
        let token = pending(&h, &c).await;
        h.clock.advance(PENDING_LOGIN_TTL + Duration::from_secs(1));
        let code = totp.code_at(h.clock.unix()).unwrap();
        assert_eq!(
            h.accounts
                .login_second_factor(&token, Code::Totp(code), &c)
                .await
                .unwrap_err()
                .code(),
            "mfa_token_invalid"
        );
    }

    #[tokio::test]
    async fn hashes_with_old_parameters_are_replaced_at_login() {
        use rampart_core::identity::account::SecurityChange;
        use rampart_crypto::password::{Argon2Params, PasswordConfig, PasswordHasher};

        let h = Harness::new(Registration::Closed).await;
        let id = admin(&h).await;
        let old = PasswordHasher::new(PasswordConfig {
            params: Argon2Params {
                memory_kib: 128,
                iterations: 1,
                parallelism: 1,
            },
            ..PasswordConfig::default()
        })
        .unwrap()
        .hash(&pw(PASSWORD))
        .unwrap();
        assert!(old.as_str().contains("m=128"));
        h.accounts
            .store
            .change_security(
                &id,
                &SecurityChange::Password(Some(old.into_string())),
                h.clock.now(),
            )
            .await
            .unwrap();
        let before = h.accounts.password_stats().hashes;
        assert!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &client("192.0.2.1"))
                .await
                .is_ok()
        );
        assert_eq!(h.accounts.password_stats().hashes, before + 1);
        let stored = h.accounts.store.user(&id).await.unwrap().unwrap();
        assert!(
            stored.password_hash.unwrap().contains("m=64,t=1,p=1"),
            "re-hashed with the current parameters"
        );
        // And the new hash verifies.
        assert!(
            h.accounts
                .login_password("root", &pw(PASSWORD), &client("192.0.2.1"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_login_that_cannot_be_audited_is_refused() {
        let h = Harness::new(Registration::Closed).await;
        admin(&h).await;
        h.auditor.shutdown().await.unwrap();
        let e = h
            .accounts
            .login_password("root", &pw(PASSWORD), &client("192.0.2.1"))
            .await
            .unwrap_err();
        assert!(matches!(e, LoginError::Audit(_)), "{e:?}");
        assert_eq!(e.code(), "unavailable");
    }

    #[tokio::test]
    async fn snapshots_are_cached_and_invalidated_on_change() {
        use rampart_core::identity::UserDirectory as _;

        let h = Harness::new(Registration::Closed).await;
        let id = admin(&h).await;
        let first = h.accounts.snapshot(&id).await.unwrap().unwrap();
        assert_eq!(first.roles, vec!["admin".to_owned()]);
        h.accounts
            .set_roles(&Actor::cli(), &id, vec!["user".to_owned()])
            .await
            .unwrap();
        let second = h.accounts.snapshot(&id).await.unwrap().unwrap();
        assert_eq!(second.roles, vec!["user".to_owned()]);
        assert!(second.security_version > first.security_version);
        assert!(
            h.accounts
                .snapshot(&UserId::generate())
                .await
                .unwrap()
                .is_none()
        );
        // The change told the sessions service, as an admin-less CLI action.
        let changes = h.revoker.changes.lock().unwrap();
        let (user, change) = changes.last().unwrap();
        assert_eq!(user, &id);
        assert_eq!(change.actor, "cli");
        assert_eq!(change.acting_session, None);
        assert_eq!(change.security_version, second.security_version);
    }
}
