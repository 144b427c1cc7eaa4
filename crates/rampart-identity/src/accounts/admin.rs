//! User management by administrators (and the command line): list, disable and
//! enable, unlock, reset MFA, roles, tenants, attributes.
//!
//! Callers check the `admin` permission; this module trusts them. Every change that
//! alters what a user may do bumps the security version and revokes the user's
//! sessions and refresh tokens (disabling also revokes API tokens), and is audited.

use std::collections::BTreeMap;

use rampart_core::audit::{EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::account::{LockoutSubject, SecurityChange};
use rampart_core::identity::session::{ChangeKind, RotatedSession};
use rampart_core::store::Removal;
use time::OffsetDateTime;

use super::{
    Account, AccountError, Accounts, Actor, MAX_ATTRIBUTE_VALUE_CHARS, MAX_ATTRIBUTES, MAX_TENANTS,
};

/// A changed account, and the acting session re-issued if an admin changed their
/// own account from a browser session (send its `Set-Cookie`).
#[derive(Debug)]
pub struct Updated {
    /// The account after the change.
    pub account: Account,
    /// The acting session under a fresh id, if it was rotated.
    pub rotated: Option<RotatedSession>,
}

/// A user as an admin sees them: the account and any lockout in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedAccount {
    /// The account.
    pub account: Account,
    /// Locked out until then (failed logins), if locked now.
    pub locked_until: Option<OffsetDateTime>,
}

impl Accounts {
    /// Every user, by username.
    pub async fn users(&self) -> Result<Vec<ManagedAccount>, AccountError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for user in self.store.users().await? {
            let locked_until = self
                .store
                .failure_counter(&LockoutSubject::Account(user.id.clone()))
                .await?
                .and_then(|c| c.locked_at(now));
            out.push(ManagedAccount {
                account: self.view(&user)?,
                locked_until,
            });
        }
        Ok(out)
    }

    /// One user, with lockout state.
    pub async fn managed(&self, id: &UserId) -> Result<ManagedAccount, AccountError> {
        let account = self.account(id).await?;
        let locked_until = self
            .store
            .failure_counter(&LockoutSubject::Account(id.clone()))
            .await?
            .and_then(|c| c.locked_at(self.clock.now()));
        Ok(ManagedAccount {
            account,
            locked_until,
        })
    }

    /// Disables (`disabled = true`) or re-enables a user. Disabling ends every
    /// session, refresh token and API token of the user.
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        id: &UserId,
        disabled: bool,
    ) -> Result<Updated, AccountError> {
        if disabled && actor.user_id.as_ref() == Some(id) {
            return Err(AccountError::CannotDisableSelf);
        }
        let version = self
            .security_change(id, &SecurityChange::Disabled(disabled))
            .await?;
        let kind = if disabled {
            EventKind::AdminUserDisabled
        } else {
            EventKind::AdminUserEnabled
        };
        self.audit
            .record(actor.event(kind, Outcome::Success).target(id.as_str()))
            .await?;
        let rotated = if disabled {
            self.revoke(actor, id, ChangeKind::Disabled, version)
                .await?
        } else {
            None
        };
        Ok(Updated {
            account: self.account(id).await?,
            rotated,
        })
    }

    /// Lifts a lockout of the account (not of client addresses, which expire).
    pub async fn unlock(&self, actor: &Actor, id: &UserId) -> Result<Removal, AccountError> {
        self.record(id).await?;
        let removal = self
            .lockout
            .unlock(&LockoutSubject::Account(id.clone()))
            .await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AuthUnlocked, Outcome::Success)
                    .target(id.as_str())
                    .detail(
                        "had_failures",
                        if removal == Removal::Removed {
                            "true"
                        } else {
                            "false"
                        },
                    ),
            )
            .await?;
        Ok(removal)
    }

    /// Removes the user's second factor and recovery codes (lost device). The user
    /// signs in with the password alone and should enrol again.
    pub async fn reset_mfa(&self, actor: &Actor, id: &UserId) -> Result<Updated, AccountError> {
        let version = self
            .security_change(id, &SecurityChange::TotpRemoved)
            .await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AdminMfaReset, Outcome::Success)
                    .target(id.as_str()),
            )
            .await?;
        let rotated = self
            .revoke(actor, id, ChangeKind::MfaChanged, version)
            .await?;
        Ok(Updated {
            account: self.account(id).await?,
            rotated,
        })
    }

    /// Replaces the user's roles (each must exist in `[roles]`).
    pub async fn set_roles(
        &self,
        actor: &Actor,
        id: &UserId,
        roles: Vec<String>,
    ) -> Result<Updated, AccountError> {
        let roles = self.valid_roles(roles)?;
        let detail = roles.join(",");
        self.privilege_change(actor, id, SecurityChange::Roles(roles), "roles", detail)
            .await
    }

    /// Replaces the user's tenants.
    pub async fn set_tenants(
        &self,
        actor: &Actor,
        id: &UserId,
        tenants: Vec<String>,
    ) -> Result<Updated, AccountError> {
        let tenants = valid_tenants(tenants)?;
        let detail = tenants.join(",");
        self.privilege_change(
            actor,
            id,
            SecurityChange::Tenants(tenants),
            "tenants",
            detail,
        )
        .await
    }

    /// Replaces the user's attributes.
    pub async fn set_attributes(
        &self,
        actor: &Actor,
        id: &UserId,
        attributes: BTreeMap<String, String>,
    ) -> Result<Updated, AccountError> {
        let attributes = valid_attributes(attributes)?;
        let detail = attributes.keys().cloned().collect::<Vec<_>>().join(",");
        self.privilege_change(
            actor,
            id,
            SecurityChange::Attributes(attributes),
            "attributes",
            detail,
        )
        .await
    }

    async fn privilege_change(
        &self,
        actor: &Actor,
        id: &UserId,
        change: SecurityChange,
        field: &'static str,
        detail: String,
    ) -> Result<Updated, AccountError> {
        let version = self.security_change(id, &change).await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AdminUserUpdated, Outcome::Success)
                    .target(id.as_str())
                    .detail("field", field)
                    .detail(field, detail),
            )
            .await?;
        let rotated = self
            .revoke(actor, id, ChangeKind::PrivilegesChanged, version)
            .await?;
        Ok(Updated {
            account: self.account(id).await?,
            rotated,
        })
    }

    /// Roles, deduplicated, each defined in `[roles]`.
    pub(crate) fn valid_roles(&self, roles: Vec<String>) -> Result<Vec<String>, AccountError> {
        let mut out: Vec<String> = Vec::with_capacity(roles.len());
        for role in roles {
            if !self.roles.exists(&role) {
                return Err(AccountError::UnknownRole);
            }
            if !out.contains(&role) {
                out.push(role);
            }
        }
        Ok(out)
    }
}

/// Tenant ids: 1 to 64 characters from `A-Za-z0-9._-`, deduplicated, at most
/// [`MAX_TENANTS`].
pub(crate) fn valid_tenants(tenants: Vec<String>) -> Result<Vec<String>, AccountError> {
    let mut out: Vec<String> = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let ok = (1..=64).contains(&tenant.len())
            && tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(AccountError::InvalidTenant);
        }
        if !out.contains(&tenant) {
            out.push(tenant);
        }
    }
    if out.len() > MAX_TENANTS {
        return Err(AccountError::InvalidTenant);
    }
    Ok(out)
}

/// Attributes: names 1 to 64 characters from `a-z0-9._-`, values at most
/// [`MAX_ATTRIBUTE_VALUE_CHARS`] characters without control characters (they are
/// sent to upstreams in headers), at most [`MAX_ATTRIBUTES`].
pub(crate) fn valid_attributes(
    attributes: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, AccountError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(AccountError::InvalidAttribute);
    }
    for (name, value) in &attributes {
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        let value_ok = value.chars().count() <= MAX_ATTRIBUTE_VALUE_CHARS
            && !value.chars().any(char::is_control);
        if !name_ok || !value_ok {
            return Err(AccountError::InvalidAttribute);
        }
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_attribute_rules() {
        assert_eq!(
            valid_tenants(vec!["acme".into(), "acme".into(), "B-2".into()]).unwrap(),
            vec!["acme".to_owned(), "B-2".to_owned()]
        );
        assert!(valid_tenants(vec!["".into()]).is_err());
        assert!(valid_tenants(vec!["a b".into()]).is_err());
        let mut ok = BTreeMap::new();
        ok.insert("subscription".to_owned(), "active".to_owned());
        assert!(valid_attributes(ok).is_ok());
        let mut bad = BTreeMap::new();
        bad.insert("x".to_owned(), "a\r\nInjected: 1".to_owned());
        assert!(valid_attributes(bad).is_err());
        let mut bad = BTreeMap::new();
        bad.insert("Upper".to_owned(), "v".to_owned());
        assert!(valid_attributes(bad).is_err());
    }
}
