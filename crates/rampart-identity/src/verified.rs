//! Proof of a completed login.
//!
//! A [`VerifiedIdentity`] can only be built inside this crate, by the flows that
//! check credentials (password and second factor, magic link, first-admin setup,
//! registration). Sessions and tokens are issued only in exchange for one, so no code
//! path can mint a session for a user who did not authenticate.

use rampart_core::identity::UserId;

/// How the login was completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// Password only (no second factor enrolled).
    Password,
    /// Password and a TOTP code.
    PasswordAndTotp,
    /// Password and a recovery code.
    PasswordAndRecoveryCode,
    /// An email magic link.
    MagicLink,
    /// The one-time first-admin setup token.
    Setup,
    /// A new account just registered.
    Registration,
    /// A refresh token exchanged for a new pair (carries the original login's MFA).
    Refresh,
}

/// Proof that `user_id` just authenticated by `method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    user_id: UserId,
    username: String,
    method: LoginMethod,
    mfa: bool,
    security_version: i64,
}

impl VerifiedIdentity {
    /// Only login flows in this crate construct identities.
    #[allow(dead_code)]
    pub(crate) fn new(
        user_id: UserId,
        username: String,
        method: LoginMethod,
        mfa: bool,
        security_version: i64,
    ) -> Self {
        Self {
            user_id,
            username,
            method,
            mfa,
            security_version,
        }
    }

    /// The user.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The username at login time.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// How the login was completed.
    pub fn method(&self) -> LoginMethod {
        self.method
    }

    /// Whether a second factor was verified.
    pub fn mfa(&self) -> bool {
        self.mfa
    }

    /// The user's security version at login (see
    /// [`rampart_core::identity::UserSnapshot::security_version`]).
    pub fn security_version(&self) -> i64 {
        self.security_version
    }
}
