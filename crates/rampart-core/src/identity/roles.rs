//! Roles and permissions (F-RBAC): which permission a principal holds, and whether
//! it must have passed MFA to use it.
//!
//! Decisions are deny-by-default: a permission no role grants is denied. A role with
//! `require_mfa` grants nothing to a session or token that has not passed a second
//! factor. API tokens are limited to their scopes and never hold the `admin`
//! permission (nor `*`) unless the configuration allows it.

use std::collections::BTreeMap;

use super::{AuthMethod, Principal};

/// The permission that covers every other one.
pub const ALL: &str = "*";
/// The administrative permission.
pub const ADMIN: &str = "admin";

/// What one role grants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleDefinition {
    /// Permissions granted; `*` grants all.
    pub permissions: Vec<String>,
    /// The role's permissions count only after a second factor.
    pub require_mfa: bool,
}

/// The answer to "may this principal use this permission?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Yes.
    Granted,
    /// Only a role that requires MFA grants it, and this session has not passed MFA.
    NeedsMfa,
    /// No role grants it (or the token's scopes exclude it).
    Denied,
}

/// The configured roles.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    roles: BTreeMap<String, RoleDefinition>,
    api_tokens_may_admin: bool,
}

impl Roles {
    /// Roles from configuration. `api_tokens_may_admin` is `api_tokens.allow_admin`.
    pub fn new(roles: BTreeMap<String, RoleDefinition>, api_tokens_may_admin: bool) -> Self {
        Self {
            roles,
            api_tokens_may_admin,
        }
    }

    /// Whether a role of this name is configured.
    pub fn exists(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Every configured role name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// Whether `principal` may use `permission`.
    pub fn permits(&self, principal: &Principal, permission: &str) -> Permit {
        if principal.method == AuthMethod::ApiToken {
            if (permission == ADMIN || permission == ALL) && !self.api_tokens_may_admin {
                return Permit::Denied;
            }
            let in_scope = principal
                .scopes
                .as_ref()
                .is_some_and(|scopes| scopes.iter().any(|s| s == permission || s == ALL));
            if !in_scope {
                return Permit::Denied;
            }
        }
        let mut needs_mfa = false;
        for role in &principal.roles {
            let Some(definition) = self.roles.get(role) else {
                continue;
            };
            let grants = definition
                .permissions
                .iter()
                .any(|p| p == permission || p == ALL);
            if !grants {
                continue;
            }
            if definition.require_mfa && !principal.mfa {
                needs_mfa = true;
                continue;
            }
            return Permit::Granted;
        }
        if needs_mfa {
            Permit::NeedsMfa
        } else {
            Permit::Denied
        }
    }

    /// Whether any of `principal`'s roles requires MFA that the principal has not
    /// passed (used to prompt for enrollment or a step-up).
    pub fn mfa_pending(&self, principal: &Principal) -> bool {
        !principal.mfa
            && principal
                .roles
                .iter()
                .filter_map(|r| self.roles.get(r))
                .any(|d| d.require_mfa)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::identity::UserId;

    fn roles(allow_admin_tokens: bool) -> Roles {
        let mut map = BTreeMap::new();
        map.insert(
            "admin".to_owned(),
            RoleDefinition {
                permissions: vec![ALL.to_owned()],
                require_mfa: true,
            },
        );
        map.insert(
            "integrator".to_owned(),
            RoleDefinition {
                permissions: vec!["integration:invoke".to_owned()],
                require_mfa: false,
            },
        );
        Roles::new(map, allow_admin_tokens)
    }

    fn principal(
        roles: &[&str],
        method: AuthMethod,
        mfa: bool,
        scopes: Option<&[&str]>,
    ) -> Principal {
        Principal {
            user_id: UserId::generate(),
            username: "u".to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tenants: vec![],
            attributes: BTreeMap::new(),
            method,
            mfa,
            scopes: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
            credential_id: None,
        }
    }

    #[test]
    fn deny_by_default() {
        let p = principal(&["nobody"], AuthMethod::Session, true, None);
        assert_eq!(
            roles(false).permits(&p, "integration:invoke"),
            Permit::Denied
        );
    }

    #[test]
    fn admin_needs_mfa() {
        let r = roles(false);
        let without = principal(&["admin"], AuthMethod::Session, false, None);
        assert_eq!(r.permits(&without, ADMIN), Permit::NeedsMfa);
        assert!(r.mfa_pending(&without));
        let with = principal(&["admin"], AuthMethod::Session, true, None);
        assert_eq!(r.permits(&with, ADMIN), Permit::Granted);
    }

    #[test]
    fn api_tokens_are_never_admin_unless_allowed() {
        let p = principal(&["admin"], AuthMethod::ApiToken, true, Some(&["*"]));
        assert_eq!(roles(false).permits(&p, ADMIN), Permit::Denied);
        assert_eq!(roles(true).permits(&p, ADMIN), Permit::Granted);
    }

    #[test]
    fn api_tokens_are_limited_to_their_scopes() {
        let r = roles(false);
        let scoped = principal(
            &["integrator"],
            AuthMethod::ApiToken,
            false,
            Some(&["integration:invoke"]),
        );
        assert_eq!(r.permits(&scoped, "integration:invoke"), Permit::Granted);
        let unscoped = principal(
            &["integrator"],
            AuthMethod::ApiToken,
            false,
            Some(&["other"]),
        );
        assert_eq!(r.permits(&unscoped, "integration:invoke"), Permit::Denied);
    }
}
