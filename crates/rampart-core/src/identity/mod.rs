//! Identity records shared by every crate: who a user is ([`UserId`]), who is calling
//! ([`Principal`]), and what roles allow ([`Roles`]). The stores for accounts,
//! sessions/tokens and magic links define their records and traits in the submodules;
//! the services that use them live in `rampart-identity`.

pub mod account;
pub mod magic;
pub mod principal;
pub mod roles;
pub mod session;

pub use principal::{AuthMethod, Principal};
pub use roles::{Permit, RoleDefinition, Roles};

use std::collections::BTreeMap;
use std::fmt;

use crate::store::StoreError;

/// What authentication needs to know about a user on every request: enough to build
/// a [`Principal`] and to refuse a disabled account or a credential issued before the
/// user's last security-relevant change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSnapshot {
    /// The user.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Tenant ids.
    pub tenants: Vec<String>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// A disabled user's sessions and tokens stop working.
    pub disabled: bool,
    /// Incremented on every security-relevant change (password, roles, tenants,
    /// attributes, MFA reset, disable). Credentials record the version they were
    /// issued at; an older version is no longer accepted where that matters.
    pub security_version: i64,
}

/// Looks users up for authentication. Implemented by the accounts service, which
/// caches snapshots so the request path does not hit the database every time.
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync {
    /// The user's current snapshot, or `None` if there is no such user. A storage
    /// failure is an error (the caller denies), never `None`.
    async fn snapshot(&self, id: &UserId) -> Result<Option<UserSnapshot>, StoreError>;
}

/// A user's stable, opaque id: 32 lowercase hex characters (UUID v7, so ids sort by
/// creation). Never reused, never derived from the username or email.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct UserId(String);

/// The text is not a user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a user id")]
pub struct InvalidUserId;

impl UserId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    /// Parses an id received from a client or read from storage.
    pub fn parse(text: &str) -> Result<Self, InvalidUserId> {
        if text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidUserId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "x",
            &"A".repeat(32),
            &"0".repeat(31),
            "../../etc/passwd",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
    }
}
