//! [`CredentialRevoker`]: what happens to a user's credentials after a security
//! change (the rules are documented on [`rampart_core::identity::session`]).

use std::sync::Arc;

use async_trait::async_trait;
use rampart_core::identity::UserId;
use rampart_core::identity::session::{Change, Revocation, RevokeError, SessionRevoker};

use super::{SessionError, Sessions};
use crate::tokens::TokenError;
use crate::tokens::Tokens;
use crate::tokens::api::{ApiTokenError, ApiTokens};

/// Revokes (or, for the acting session, rotates) a user's sessions and tokens.
/// Handed to the accounts service as `Arc<dyn SessionRevoker>`.
pub struct CredentialRevoker {
    sessions: Arc<Sessions>,
    tokens: Arc<Tokens>,
    api_tokens: Arc<ApiTokens>,
}

impl CredentialRevoker {
    /// A revoker over the three credential services.
    pub fn new(sessions: Arc<Sessions>, tokens: Arc<Tokens>, api_tokens: Arc<ApiTokens>) -> Self {
        Self {
            sessions,
            tokens,
            api_tokens,
        }
    }
}

#[async_trait]
impl SessionRevoker for CredentialRevoker {
    async fn on_security_change(
        &self,
        user: &UserId,
        change: &Change,
    ) -> Result<Revocation, RevokeError> {
        let reason = change.kind.as_str();
        let keep = change
            .acting_session
            .as_deref()
            .filter(|_| change.keeps_acting_session());
        let mut revocation = Revocation {
            sessions: self
                .sessions
                .revoke_all(user, keep, &change.actor, reason)
                .await
                .map_err(from_session)?,
            ..Revocation::default()
        };
        if let Some(acting) = keep {
            revocation.rotated = self
                .sessions
                .rotate(user, acting, change.security_version, &change.actor, reason)
                .await
                .map_err(from_session)?;
        }
        revocation.families = self
            .tokens
            .revoke_families_of(user, &change.actor, reason)
            .await
            .map_err(from_token)?;
        if change.revokes_api_tokens() {
            revocation.api_tokens = self
                .api_tokens
                .revoke_all_of(user, &change.actor, reason)
                .await
                .map_err(from_api)?;
        }
        Ok(revocation)
    }
}

fn from_session(e: SessionError) -> RevokeError {
    match e {
        SessionError::Store(e) => RevokeError::Store(e),
        SessionError::Audit(_) => RevokeError::Audit,
        SessionError::Random(_) => RevokeError::Random,
    }
}

fn from_token(e: TokenError) -> RevokeError {
    match e {
        TokenError::Store(e) => RevokeError::Store(e),
        TokenError::Random(_) => RevokeError::Random,
        _ => RevokeError::Audit,
    }
}

fn from_api(e: ApiTokenError) -> RevokeError {
    match e {
        ApiTokenError::Store(e) => RevokeError::Store(e),
        ApiTokenError::Random(_) => RevokeError::Random,
        _ => RevokeError::Audit,
    }
}
