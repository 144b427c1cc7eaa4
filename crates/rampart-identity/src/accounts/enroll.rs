//! How accounts come to exist (F-INIT, F-REGISTER): the first admin, registration
//! and invites.
//!
//! **First admin.** Until the first admin exists no account can be created — not by
//! registration, not by the API. At start, while there is none, the server issues a
//! one-time setup token ([`Accounts::issue_setup_token`]): 256 random bits, stored
//! as SHA-256 with an expiry (`auth.setup_token_ttl`), shown once to the operator.
//! Each start replaces the previous token, so an operator who lost it restarts.
//! `POST /api/v1/setup` redeems it ([`Accounts::setup_first_admin`]); the store
//! spends the token and creates the admin in one transaction, so it works once.
//! Alternatively `rampart admin create` ([`Accounts::create_admin_from_cli`]) creates
//! the first admin directly; once one exists it refuses unless `--force` is given,
//! which adds another admin (break-glass for an instance whose admins lost their
//! second factor — the operator already holds the database and the master key).
//!
//! **Registration** follows `auth.registration`: `open` (anyone; the `user` role if
//! configured), `invite_only` (an invite code is required), `closed` (refused).
//! **Invites** are created by admins: 256-bit codes stored as SHA-256, single use,
//! expiring after `auth.invite_ttl`, optionally assigning roles and a tenant. The
//! invite is spent in the same transaction that creates the account.

use std::collections::BTreeMap;

use rampart_config::Registration;
use rampart_core::audit::{EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::account::{
    Admission, Admitted, InviteRecord, TokenHash, UserRecord, Username,
};
use rampart_crypto::SecretString;
use rampart_crypto::password::check_new_password;
use rampart_crypto::random;
use rampart_crypto::token::hash_token;
use time::OffsetDateTime;

use super::pii::{self, Field};
use super::{AccountError, Accounts, Actor, ClientContext};
use crate::verified::{LoginMethod, VerifiedIdentity};

/// The first-admin setup token, as issued: show it once, never log it.
pub struct SetupToken {
    /// The token.
    pub token: SecretString,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for SetupToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The fields of a new account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// Username (normalized to lower case).
    pub username: String,
    /// Password; required except when an admin creates a magic-link-only user.
    pub password: Option<SecretString>,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Roles (admin creation only; must exist in `[roles]`).
    pub roles: Vec<String>,
    /// Tenants (admin creation only).
    pub tenants: Vec<String>,
    /// Attributes (admin creation only).
    pub attributes: BTreeMap<String, String>,
}

/// An invite as listed: never the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Public id.
    pub id: String,
    /// Roles the new user gets.
    pub roles: Vec<String>,
    /// Tenant the new user joins.
    pub tenant: Option<String>,
    /// The admin who created it.
    pub created_by: UserId,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Expires.
    pub expires_at: OffsetDateTime,
    /// When it was used, if it was.
    pub used_at: Option<OffsetDateTime>,
    /// Who used it.
    pub used_by: Option<UserId>,
}

/// A new invite: the code is shown once.
pub struct NewInvite {
    /// The invite.
    pub invite: Invite,
    /// The code to hand to the invitee.
    pub code: SecretString,
}

impl std::fmt::Debug for NewInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvite")
            .field("invite", &self.invite)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// Issues a fresh setup token if the instance has no admin yet (replacing any
    /// earlier one); `None` once an admin exists.
    pub async fn issue_setup_token(&self) -> Result<Option<SetupToken>, AccountError> {
        if self.store.accounts_initialized().await? {
            return Ok(None);
        }
        let token = SecretString::new(random::token::<32>()?);
        let expires_at = self.clock.now() + self.settings.setup_token_ttl;
        let stored = self
            .store
            .replace_setup_token(&hash_token(token.expose_secret()), expires_at)
            .await?;
        if stored != rampart_core::identity::account::Spent::Now {
            return Ok(None);
        }
        self.audit
            .record(
                rampart_core::audit::AuditEvent::new(EventKind::SetupTokenIssued, Outcome::Success)
                    .actor("rampart")
                    .detail("expires_at", expires_at.unix_timestamp().to_string()),
            )
            .await?;
        Ok(Some(SetupToken { token, expires_at }))
    }

    /// Whether the first admin exists.
    pub async fn initialized(&self) -> Result<bool, AccountError> {
        Ok(self.store.accounts_initialized().await?)
    }

    /// Redeems the setup token: creates the first admin and signs them in (without
    /// MFA: they should enrol TOTP next, as the admin role requires it).
    pub async fn setup_first_admin(
        &self,
        token: &SecretString,
        account: NewAccount,
        client: &ClientContext,
    ) -> Result<(super::Account, VerifiedIdentity), AccountError> {
        if account.password.is_none() {
            return Err(AccountError::PasswordRequired);
        }
        // Cheap refusals before any hashing: this endpoint is unauthenticated.
        if token.len() > 128 {
            return Err(AccountError::SetupTokenInvalid);
        }
        if self.store.accounts_initialized().await? {
            return Err(AccountError::AlreadyInitialized);
        }
        let role = self
            .settings
            .admin_role
            .clone()
            .ok_or(AccountError::NoAdminRole)?;
        let user = self
            .new_user(NewAccount {
                roles: vec![role],
                tenants: Vec::new(),
                attributes: BTreeMap::new(),
                ..account
            })
            .await?;
        let admission = Admission::SetupToken(hash_token(token.expose_secret()));
        self.admit(&user, &admission).await?;
        self.audit
            .record(
                client
                    .event(EventKind::AdminUserCreated, Outcome::Success)
                    .actor("setup")
                    .target(user.id.as_str())
                    .detail("username", user.username.as_str())
                    .detail("via", "setup_token")
                    .detail("roles", user.roles.join(",")),
            )
            .await?;
        let identity = VerifiedIdentity::new(
            user.id.clone(),
            user.username.as_str().to_owned(),
            LoginMethod::Setup,
            false,
            user.security_version,
        );
        Ok((self.view(&user)?, identity))
    }

    /// `rampart admin create`: the first admin, or with `force` an additional one.
    pub async fn create_admin_from_cli(
        &self,
        account: NewAccount,
        force: bool,
    ) -> Result<super::Account, AccountError> {
        if account.password.is_none() {
            return Err(AccountError::PasswordRequired);
        }
        let role = self
            .settings
            .admin_role
            .clone()
            .ok_or(AccountError::NoAdminRole)?;
        let user = self
            .new_user(NewAccount {
                roles: vec![role],
                ..account
            })
            .await?;
        let admission = if force && self.store.accounts_initialized().await? {
            Admission::Initialized
        } else {
            Admission::FirstAdmin
        };
        self.admit(&user, &admission).await?;
        self.audit
            .record(
                Actor::cli()
                    .event(EventKind::AdminUserCreated, Outcome::Success)
                    .target(user.id.as_str())
                    .detail("username", user.username.as_str())
                    .detail(
                        "via",
                        if admission == Admission::FirstAdmin {
                            "cli"
                        } else {
                            "cli_force"
                        },
                    )
                    .detail("roles", user.roles.join(",")),
            )
            .await?;
        self.view(&user)
    }

    /// Self-service registration under `auth.registration`, optionally with an
    /// invite code. Signs the new user in.
    pub async fn register(
        &self,
        account: NewAccount,
        invite: Option<&SecretString>,
        client: &ClientContext,
    ) -> Result<(super::Account, VerifiedIdentity), AccountError> {
        if account.password.is_none() {
            return Err(AccountError::PasswordRequired);
        }
        let invite = match (self.settings.registration, invite) {
            (Registration::Closed, _) => return Err(AccountError::RegistrationClosed),
            (Registration::InviteOnly, None) => return Err(AccountError::InviteRequired),
            (_, Some(code)) => Some(self.valid_invite(code).await?),
            (Registration::Open, None) => None,
        };
        let (roles, tenants, admission) = match &invite {
            Some((hash, record)) => (
                record.roles.clone(),
                record.tenant.iter().cloned().collect(),
                Admission::Invite(*hash),
            ),
            None => (
                self.settings.default_role.iter().cloned().collect(),
                Vec::new(),
                Admission::Initialized,
            ),
        };
        let user = self
            .new_user(NewAccount {
                roles,
                tenants,
                attributes: BTreeMap::new(),
                ..account
            })
            .await?;
        self.admit(&user, &admission).await?;
        let mut event = client
            .event(EventKind::AccountRegistered, Outcome::Success)
            .actor(user.username.as_str())
            .target(user.id.as_str())
            .detail("roles", user.roles.join(","));
        if let Some((_, record)) = &invite {
            event = event.detail("invite", record.id.clone());
        }
        self.audit.record(event).await?;
        let identity = VerifiedIdentity::new(
            user.id.clone(),
            user.username.as_str().to_owned(),
            LoginMethod::Registration,
            false,
            user.security_version,
        );
        Ok((self.view(&user)?, identity))
    }

    /// Creates an invite (admin).
    pub async fn create_invite(
        &self,
        actor: &Actor,
        roles: Vec<String>,
        tenant: Option<String>,
    ) -> Result<NewInvite, AccountError> {
        let roles = self.valid_roles(roles)?;
        let tenant = tenant
            .map(|t| {
                super::admin::valid_tenants(vec![t])
                    .and_then(|mut v| v.pop().ok_or(AccountError::InvalidTenant))
            })
            .transpose()?;
        let created_by = actor.user_id.clone().ok_or(AccountError::NoSuchUser)?;
        let code = SecretString::new(random::token::<32>()?);
        let now = self.clock.now();
        let record = InviteRecord {
            id: format!("inv_{}", random::token::<12>()?),
            code_hash: hash_token(code.expose_secret()),
            roles,
            tenant,
            created_by,
            created_at: now,
            expires_at: now + self.settings.invite_ttl,
            used: None,
        };
        self.store.insert_invite(&record).await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AdminInviteCreated, Outcome::Success)
                    .target(record.id.clone())
                    .detail("roles", record.roles.join(","))
                    .detail("tenant", record.tenant.clone().unwrap_or_default())
                    .detail("expires_at", record.expires_at.unix_timestamp().to_string()),
            )
            .await?;
        Ok(NewInvite {
            invite: invite_view(record),
            code,
        })
    }

    /// Every invite, newest first.
    pub async fn invites(&self) -> Result<Vec<Invite>, AccountError> {
        Ok(self
            .store
            .invites()
            .await?
            .into_iter()
            .map(invite_view)
            .collect())
    }

    /// An admin creates a user (after initialization).
    pub async fn create_user(
        &self,
        actor: &Actor,
        account: NewAccount,
    ) -> Result<super::Account, AccountError> {
        let user = self.new_user(account).await?;
        self.admit(&user, &Admission::Initialized).await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AdminUserCreated, Outcome::Success)
                    .target(user.id.as_str())
                    .detail("username", user.username.as_str())
                    .detail("roles", user.roles.join(",")),
            )
            .await?;
        self.view(&user)
    }

    /// The stored invite for `code` if it can still be used.
    async fn valid_invite(
        &self,
        code: &SecretString,
    ) -> Result<(TokenHash, InviteRecord), AccountError> {
        if code.len() > 128 {
            return Err(AccountError::InviteInvalid);
        }
        let hash = hash_token(code.expose_secret());
        match self.store.invite_by_hash(&hash).await? {
            Some(invite) if invite.used.is_none() && invite.expires_at > self.clock.now() => {
                Ok((hash, invite))
            }
            _ => Err(AccountError::InviteInvalid),
        }
    }

    /// Validates `account` and builds the record: PII sealed, password hashed.
    async fn new_user(&self, account: NewAccount) -> Result<UserRecord, AccountError> {
        let username = Username::parse(&account.username)?;
        let id = UserId::generate();
        let email = account
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(|e| pii::valid_email(e).ok_or(AccountError::InvalidEmail))
            .transpose()?;
        let display_name = account
            .display_name
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| pii::valid_display_name(d).ok_or(AccountError::InvalidDisplayName))
            .transpose()?;
        let roles = self.valid_roles(account.roles)?;
        let tenants = super::admin::valid_tenants(account.tenants)?;
        let attributes = super::admin::valid_attributes(account.attributes)?;
        if let Some(password) = &account.password {
            check_new_password(password, self.settings.password_min_chars)?;
        }
        let (email_sealed, email_index) = match &email {
            Some(email) => (
                Some(self.sealer.seal(Field::Email, &id, email.as_bytes())?),
                Some(self.sealer.email_index(email)),
            ),
            None => (None, None),
        };
        let display_name_sealed = display_name
            .map(|d| self.sealer.seal(Field::DisplayName, &id, d.as_bytes()))
            .transpose()?;
        let password_hash = match &account.password {
            Some(password) => Some(self.passwords.hash(password).await?.into_string()),
            None => None,
        };
        let now = self.clock.now();
        Ok(UserRecord {
            id,
            username,
            email_sealed,
            email_index,
            display_name_sealed,
            password_hash,
            roles,
            tenants,
            attributes,
            disabled: false,
            security_version: 1,
            totp: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Stores `user` under `admission`.
    async fn admit(&self, user: &UserRecord, admission: &Admission) -> Result<(), AccountError> {
        match self
            .store
            .create_user(user, admission, self.clock.now())
            .await?
        {
            Admitted::Created => Ok(()),
            Admitted::UsernameTaken => Err(AccountError::UsernameTaken),
            Admitted::EmailTaken => Err(AccountError::EmailTaken),
            Admitted::NotInitialized => Err(AccountError::NotInitialized),
            Admitted::AlreadyInitialized => Err(AccountError::AlreadyInitialized),
            Admitted::SetupTokenRefused => Err(AccountError::SetupTokenInvalid),
            Admitted::InviteRefused => Err(AccountError::InviteInvalid),
        }
    }
}

fn invite_view(record: InviteRecord) -> Invite {
    let (used_at, used_by) = match record.used {
        Some((at, by)) => (Some(at), Some(by)),
        None => (None, None),
    };
    Invite {
        id: record.id,
        roles: record.roles,
        tenant: record.tenant,
        created_by: record.created_by,
        created_at: record.created_at,
        expires_at: record.expires_at,
        used_at,
        used_by,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::accounts::testing::{Harness, client};

    const PASSWORD: &str = "vault-Quill-93-orbit";

    fn account(name: &str) -> NewAccount {
        NewAccount {
            username: name.to_owned(),
            password: Some(PASSWORD.into()),
            ..NewAccount::default()
        }
    }

    #[tokio::test]
    async fn nothing_is_created_before_the_first_admin_and_the_setup_token_works_once() {
        let h = Harness::new(Registration::Open).await;
        let c = client("192.0.2.1");
        assert_eq!(
            h.accounts
                .register(account("early"), None, &c)
                .await
                .unwrap_err()
                .code(),
            "not_initialized"
        );
        let first = h.accounts.issue_setup_token().await.unwrap().unwrap();
        // A restart replaces the token: the first one stops working.
        let token = h.accounts.issue_setup_token().await.unwrap().unwrap();
        assert_eq!(
            h.accounts
                .setup_first_admin(&first.token, account("admin"), &c)
                .await
                .unwrap_err()
                .code(),
            "setup_token_invalid"
        );
        let (admin, identity) = h
            .accounts
            .setup_first_admin(&token.token, account("admin"), &c)
            .await
            .unwrap();
        assert_eq!(admin.roles, vec!["admin".to_owned()]);
        assert_eq!(identity.method(), LoginMethod::Setup);
        assert!(!identity.mfa());
        assert_eq!(
            h.accounts
                .setup_first_admin(&token.token, account("admin2"), &c)
                .await
                .unwrap_err()
                .code(),
            "already_initialized"
        );
        assert!(h.accounts.issue_setup_token().await.unwrap().is_none());
        // The command line refuses a second first admin, unless forced.
        assert_eq!(
            h.accounts
                .create_admin_from_cli(account("cliadmin"), false)
                .await
                .unwrap_err()
                .code(),
            "already_initialized"
        );
        assert!(
            h.accounts
                .create_admin_from_cli(account("cliadmin"), true)
                .await
                .is_ok()
        );
        // Open registration now works, with the default role.
        let (user, _) = h
            .accounts
            .register(account("Newbie"), None, &c)
            .await
            .unwrap();
        assert_eq!(user.username, "newbie");
        assert_eq!(user.roles, vec!["user".to_owned()]);
        assert_eq!(
            h.accounts
                .register(account("newbie"), None, &c)
                .await
                .unwrap_err()
                .code(),
            "username_taken"
        );
    }

    #[tokio::test]
    async fn an_expired_setup_token_is_refused() {
        let h = Harness::new(Registration::Open).await;
        let token = h.accounts.issue_setup_token().await.unwrap().unwrap();
        h.clock.advance(Duration::from_secs(3601));
        assert_eq!(
            h.accounts
                .setup_first_admin(&token.token, account("admin"), &client("192.0.2.1"))
                .await
                .unwrap_err()
                .code(),
            "setup_token_invalid"
        );
    }

    #[tokio::test]
    async fn invites_are_single_use_expire_and_assign_roles_and_tenant() {
        let h = Harness::new(Registration::InviteOnly).await;
        let c = client("192.0.2.1");
        let admin = h
            .accounts
            .create_admin_from_cli(account("root"), false)
            .await
            .unwrap();
        let actor = Actor {
            label: "root".into(),
            user_id: Some(admin.id.clone()),
            session: None,
            client: Some(c.clone()),
        };
        assert_eq!(
            h.accounts
                .register(account("nobody"), None, &c)
                .await
                .unwrap_err()
                .code(),
            "invite_required"
        );
        assert_eq!(
            h.accounts
                .create_invite(&actor, vec!["nope".into()], None)
                .await
                .unwrap_err()
                .code(),
            "unknown_role"
        );
        let invite = h
            .accounts
            .create_invite(&actor, vec!["admin".into()], Some("acme".into()))
            .await
            .unwrap();
        let (user, _) = h
            .accounts
            .register(account("invited"), Some(&invite.code), &c)
            .await
            .unwrap();
        assert_eq!(user.roles, vec!["admin".to_owned()]);
        assert_eq!(user.tenants, vec!["acme".to_owned()]);
        assert_eq!(
            h.accounts
                .register(account("again"), Some(&invite.code), &c)
                .await
                .unwrap_err()
                .code(),
            "invite_invalid"
        );
        let listed = h.accounts.invites().await.unwrap();
        assert_eq!(listed[0].used_by.as_ref(), Some(&user.id));
        let late = h
            .accounts
            .create_invite(&actor, vec![], None)
            .await
            .unwrap();
        h.clock.advance(Duration::from_secs(3601));
        assert_eq!(
            h.accounts
                .register(account("late"), Some(&late.code), &c)
                .await
                .unwrap_err()
                .code(),
            "invite_invalid"
        );
    }

    #[tokio::test]
    async fn closed_registration_refuses_even_with_an_invite() {
        let h = Harness::new(Registration::Closed).await;
        h.accounts
            .create_admin_from_cli(account("root"), false)
            .await
            .unwrap();
        assert_eq!(
            h.accounts
                .register(
                    account("x-user"),
                    Some(&SecretString::from("whatever")),
                    &client("192.0.2.1")
                )
                .await
                .unwrap_err()
                .code(),
            "registration_closed"
        );
    }
}
