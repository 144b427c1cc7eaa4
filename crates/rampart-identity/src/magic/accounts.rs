//! [`MagicLinkAccounts`] for the accounts service.

use std::net::{IpAddr, Ipv4Addr};

use async_trait::async_trait;
use rampart_core::identity::UserId;
use rampart_core::store::BoxError;
use rampart_crypto::SecretString;

use super::{Eligibility, MagicContext, MagicLinkAccounts, Recipient};
use crate::accounts::{Account, AccountError, Accounts, ClientContext, LoginError};
use crate::verified::VerifiedIdentity;

#[async_trait]
impl MagicLinkAccounts for Accounts {
    async fn recipient(&self, email: &str) -> Result<Option<Recipient>, BoxError> {
        let Some(user) = self.find_by_email(email).await? else {
            return Ok(None);
        };
        let account = match self.account(&user).await {
            Ok(account) => account,
            // Removed between the two reads.
            Err(AccountError::NoSuchUser) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // The blind index matched, so the account has an address; mail the stored
        // one, not the typed text.
        let eligibility = eligibility(&account);
        let Some(address) = account.email else {
            return Ok(None);
        };
        Ok(Some(Recipient {
            user,
            address: SecretString::new(address),
            eligibility,
        }))
    }

    async fn identity(
        &self,
        user: &UserId,
        context: &MagicContext,
    ) -> Result<Option<VerifiedIdentity>, BoxError> {
        let client = ClientContext {
            ip: context
                .client_ip
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            request_id: context.request_id.clone(),
        };
        // Checked again at consumption: the account may have changed since the link
        // was mailed.
        match self.account(user).await {
            Ok(account) if eligibility(&account) == Eligibility::Allowed => {}
            Ok(_) | Err(AccountError::NoSuchUser) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        match self.identity_for_magic_link(user, &client).await {
            Ok(identity) => Ok(Some(identity)),
            Err(LoginError::Disabled | LoginError::InvalidCredentials) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn eligibility(account: &Account) -> Eligibility {
    if account.disabled {
        Eligibility::Disabled
    } else if account.mfa_enabled {
        Eligibility::SecondFactorEnrolled
    } else {
        Eligibility::Allowed
    }
}
