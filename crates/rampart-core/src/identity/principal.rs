//! Who is calling: the result of authentication, input to every authorization
//! decision.

use std::collections::BTreeMap;

use super::UserId;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A browser session cookie.
    Session,
    /// A Rampart access token (EdDSA JWT) in `Authorization: Bearer`.
    AccessToken,
    /// A static API token (`rmp_…`) in `Authorization: Bearer`.
    ApiToken,
    /// `dev.simulate_user`: no proof at all. Dev mode only.
    Simulated,
}

impl AuthMethod {
    /// Stable name, used in `X-Rampart-Auth-Method` and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::AccessToken => "access_token",
            Self::ApiToken => "api_token",
            Self::Simulated => "simulated",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// The user's username, for display and identity headers.
    pub username: String,
    /// Roles held (names from `[roles]`).
    pub roles: Vec<String>,
    /// Tenants the user belongs to.
    pub tenants: Vec<String>,
    /// Attributes such as `subscription = "active"`.
    pub attributes: BTreeMap<String, String>,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// Whether this session or token passed a second factor.
    pub mfa: bool,
    /// For API tokens: the scopes (permissions) the token was limited to. `None` for
    /// sessions and access tokens, which carry the user's full roles.
    pub scopes: Option<Vec<String>>,
    /// An opaque id of the session or token that authenticated the call (never the
    /// credential itself), for audit and revocation.
    pub credential_id: Option<String>,
}
