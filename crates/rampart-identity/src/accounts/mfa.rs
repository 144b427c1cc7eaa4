//! TOTP enrolment and recovery codes (F-TOTP).
//!
//! Enrolment is two steps: `setup` stores a fresh secret (sealed under the TOTP data
//! key, not yet enabled) and returns the `otpauth://` URI, the base32 secret and a QR
//! code as SVG; `enable` checks a code from the authenticator and only then switches
//! TOTP on, recording the code's step (so the enrolment code cannot be replayed at
//! login) and returning [`RECOVERY_CODE_COUNT`] recovery codes once. Only their
//! SHA-256 is stored; each works once. Enabling and disabling bump the security
//! version: other sessions end, the acting one is re-issued.
//!
//! Codes are HMAC-SHA1, 6 digits, 30-second steps — what every authenticator app
//! supports (RFC 6238 §1.2, §5.2).

use rampart_core::audit::{EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::account::{Changed, LockoutSubject, SecurityChange, TokenHash};
use rampart_core::identity::session::{ChangeKind, RotatedSession};
use rampart_crypto::token::{RECOVERY_CODE_COUNT, generate_recovery_codes};
use rampart_crypto::{
    RecoveryCode, SecretBytes, SecretString, Totp, TotpAlgorithm, TotpCheck, TotpError, TotpSecret,
};

use super::login::Code;
use super::pii::Field;
use super::{AccountError, Accounts, Actor, ClientContext};

/// Digits per code.
const DIGITS: u8 = 6;

/// What the user needs to add the account to an authenticator app. Every field
/// holds the secret.
pub struct TotpEnrollment {
    /// `otpauth://totp/<issuer>:<username>?secret=…&issuer=…`.
    pub otpauth_uri: SecretString,
    /// The base32 secret, for typing in.
    pub secret: SecretString,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: SecretString,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment([redacted])")
    }
}

/// TOTP is on: the recovery codes (shown once) and the re-issued acting session.
#[derive(Debug)]
pub struct EnabledTotp {
    /// The recovery codes, each usable once instead of a TOTP code.
    pub recovery_codes: Vec<RecoveryCode>,
    /// The acting session under a fresh id; send its `Set-Cookie`.
    pub rotated: Option<RotatedSession>,
}

/// Checks `code` against `secret` at `unix_time`; the accepted step, if any.
pub(crate) fn verify_code(
    secret: &SecretBytes,
    code: &SecretString,
    unix_time: i64,
    skew: u8,
    last_used_step: Option<u64>,
) -> Result<Option<i64>, TotpError> {
    let totp = Totp::new(
        &TotpSecret::from_bytes(secret.clone())?,
        TotpAlgorithm::Sha1,
        DIGITS,
    )?;
    let code = code.expose_secret().trim();
    Ok(match totp.verify(code, unix_time, skew, last_used_step) {
        TotpCheck::Accepted { step } => i64::try_from(step).ok(),
        TotpCheck::Rejected => None,
    })
}

impl Accounts {
    /// Starts (or restarts) TOTP enrolment for `id`.
    pub async fn totp_setup(&self, id: &UserId) -> Result<TotpEnrollment, AccountError> {
        let user = self.record(id).await?;
        if user.totp_enabled() {
            return Err(AccountError::TotpAlreadyEnabled);
        }
        let secret = TotpSecret::generate()?;
        let sealed = self
            .sealer
            .seal(Field::TotpSecret, id, secret.expose_secret())?;
        match self.store.begin_totp(id, &sealed, self.clock.now()).await? {
            Changed::Applied { .. } => {}
            Changed::WrongState => return Err(AccountError::TotpAlreadyEnabled),
            Changed::NoSuchUser | Changed::EmailTaken => return Err(AccountError::NoSuchUser),
        }
        let totp = Totp::new(&secret, TotpAlgorithm::Sha1, DIGITS)
            .map_err(|e| AccountError::Totp(e.to_string()))?;
        let uri = totp
            .otpauth_uri(&self.settings.totp_issuer, user.username.as_str())
            .map_err(|e| AccountError::Totp(e.to_string()))?;
        let qr = qrcode::QrCode::new(uri.expose_secret().as_bytes())
            .map_err(|e| AccountError::Totp(e.to_string()))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Ok(TotpEnrollment {
            otpauth_uri: uri,
            secret: secret.to_base32(),
            qr_svg: SecretString::new(qr),
        })
    }

    /// Finishes enrolment with a code from the authenticator: TOTP is on from now,
    /// with fresh recovery codes.
    pub async fn totp_enable(
        &self,
        actor: &Actor,
        id: &UserId,
        code: &SecretString,
    ) -> Result<EnabledTotp, AccountError> {
        let user = self.record(id).await?;
        let totp = match &user.totp {
            Some(t) if t.enabled => return Err(AccountError::TotpAlreadyEnabled),
            Some(t) => t,
            None => return Err(AccountError::TotpNotStarted),
        };
        let secret = self
            .sealer
            .open(Field::TotpSecret, id, &totp.sealed_secret)?;
        let step = verify_code(
            &secret,
            code,
            self.clock.unix(),
            self.settings.totp_skew,
            None,
        )
        .map_err(|e| AccountError::Totp(e.to_string()))?
        .ok_or(AccountError::InvalidCode)?;
        let (recovery_codes, hashes) = new_recovery_codes()?;
        let version = self
            .security_change(
                id,
                &SecurityChange::TotpEnabled {
                    step,
                    recovery_codes: hashes,
                },
            )
            .await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AuthMfaEnabled, Outcome::Success)
                    .target(id.as_str())
                    .detail("factor", "totp"),
            )
            .await?;
        let rotated = self
            .revoke(actor, id, ChangeKind::MfaChanged, version)
            .await?;
        Ok(EnabledTotp {
            recovery_codes,
            rotated,
        })
    }

    /// Turns TOTP off, given a current TOTP code or an unused recovery code. Wrong
    /// codes count toward the account's lockout, so a stolen session cannot guess
    /// its way to removing the second factor.
    pub async fn totp_disable(
        &self,
        actor: &Actor,
        id: &UserId,
        code: &Code,
    ) -> Result<Option<RotatedSession>, AccountError> {
        let user = self.record(id).await?;
        if !user.totp_enabled() {
            return Err(AccountError::TotpNotEnabled);
        }
        let subject = LockoutSubject::Account(id.clone());
        let client = actor_client(actor);
        if let Some(until) = self.lockout.locked_until(&subject, client.ip).await? {
            return Err(AccountError::Locked { until });
        }
        let accepted = self
            .check_second_factor(&user, code)
            .await
            .map_err(login_to_account)?;
        if accepted.is_none() {
            self.lockout
                .record_failure(&subject, &actor.label, &client)
                .await?;
            return Err(AccountError::InvalidCode);
        }
        let version = self
            .security_change(id, &SecurityChange::TotpRemoved)
            .await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AuthMfaDisabled, Outcome::Success)
                    .target(id.as_str())
                    .detail("factor", "totp"),
            )
            .await?;
        self.revoke(actor, id, ChangeKind::MfaChanged, version)
            .await
    }

    /// Replaces the user's recovery codes with a fresh set; the old ones stop
    /// working. Needs a session that passed the second factor (`mfa`), so a session
    /// stolen before MFA cannot mint itself a way past it.
    pub async fn renew_recovery_codes(
        &self,
        actor: &Actor,
        id: &UserId,
        mfa: bool,
    ) -> Result<Vec<RecoveryCode>, AccountError> {
        let user = self.record(id).await?;
        if !user.totp_enabled() {
            return Err(AccountError::TotpNotEnabled);
        }
        if !mfa {
            return Err(AccountError::MfaRequired);
        }
        let (codes, hashes) = new_recovery_codes()?;
        self.store
            .replace_recovery_codes(id, &hashes, self.clock.now())
            .await?;
        self.audit
            .record(
                actor
                    .event(EventKind::AuthMfaRecoveryCodesRenewed, Outcome::Success)
                    .target(id.as_str())
                    .detail("count", codes.len().to_string()),
            )
            .await?;
        Ok(codes)
    }
}

/// A fresh set of recovery codes and their hashes.
fn new_recovery_codes() -> Result<(Vec<RecoveryCode>, Vec<TokenHash>), AccountError> {
    let codes = generate_recovery_codes()?;
    debug_assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
    let hashes = codes.iter().map(RecoveryCode::hash).collect();
    Ok((codes, hashes))
}

/// The actor's client, or loopback for the command line (which has no address and
/// is not subject to the per-address lockout in any meaningful way).
pub(crate) fn actor_client(actor: &Actor) -> ClientContext {
    actor.client.clone().unwrap_or(ClientContext {
        ip: std::net::IpAddr::from([127, 0, 0, 1]),
        request_id: None,
    })
}

fn login_to_account(e: super::LoginError) -> AccountError {
    match e {
        super::LoginError::Store(e) => AccountError::Store(e),
        super::LoginError::Audit(e) => AccountError::Audit(e),
        super::LoginError::Locked { until } => AccountError::Locked { until },
        other => AccountError::Totp(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_verify_once_per_step_within_the_skew() {
        let secret = SecretBytes::from_slice(&[7u8; 20]);
        let totp = Totp::new(
            &TotpSecret::from_bytes(secret.clone()).unwrap(),
            TotpAlgorithm::Sha1,
            DIGITS,
        )
        .unwrap();
        let t = 1_700_000_010;
        let code = totp.code_at(t).unwrap();
        let step = verify_code(&secret, &code, t, 1, None).unwrap().unwrap();
        assert_eq!(step, t / 30);
        // Same step again: refused.
        assert_eq!(
            verify_code(&secret, &code, t, 1, Some(step as u64)).unwrap(),
            None
        );
        // One step late is within the skew, two are not.
        assert!(
            verify_code(&secret, &code, t + 30, 1, None)
                .unwrap()
                .is_some()
        );
        assert!(
            verify_code(&secret, &code, t + 60, 1, None)
                .unwrap()
                .is_none()
        );
        assert!(
            verify_code(&secret, &SecretString::from("12345"), t, 1, None)
                .unwrap()
                .is_none()
        );
    }
}
