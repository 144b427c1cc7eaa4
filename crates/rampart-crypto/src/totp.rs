//! Time-based one-time passwords (RFC 6238) on top of `totp-rs`.
//!
//! `totp-rs` computes the codes; this module adds what a login flow needs around
//! them: codes compared in constant time, a clock-skew window that the caller sets
//! explicitly (and that is capped), and single use — a code is accepted only for a
//! time step later than the last one accepted for the account (RFC 6238 §5.2, ASVS
//! V6.5.1), so an observed code cannot be replayed within its window.
//!
//! Time is an input (`unix_time`), never read from the system clock here.

use std::fmt;

use zeroize::Zeroizing;

use crate::random::{self, RandomError};
use crate::secret::{SecretBytes, SecretString, ct_eq};

/// Length of one time step, in seconds (RFC 6238 §5.2 recommendation, and what
/// authenticator apps assume).
pub const STEP_SECS: u64 = 30;

/// Length of generated secrets: 160 bits, the HMAC-SHA1 output size that RFC 4226
/// §4 recommends.
pub const SECRET_LEN: usize = 20;

/// Shortest secret accepted: 128 bits (RFC 4226 §4 requirement).
pub const MIN_SECRET_LEN: usize = 16;

/// Largest skew window honoured, in steps each side. Every extra step doubles the
/// chance of guessing a code; RFC 6238 §6 recommends at most one.
pub const MAX_SKEW_STEPS: u8 = 2;

/// Why a TOTP configuration or URI could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// Digits outside 6..=8.
    #[error("TOTP codes must have 6 to 8 digits, not {0}")]
    InvalidDigits(u8),
    /// The secret is shorter than 128 bits.
    #[error("TOTP secrets must be at least {MIN_SECRET_LEN} bytes")]
    SecretTooShort,
    /// The secret is not valid base32.
    #[error("TOTP secret is not valid base32")]
    InvalidBase32,
    /// Issuer or account name is empty or contains a colon (the label separator).
    #[error("TOTP issuer and account name must be non-empty and contain no ':'")]
    InvalidLabel,
    /// The otpauth URI could not be built.
    #[error("could not build the otpauth URI")]
    Uri,
    /// A time before 1970.
    #[error("time is before the Unix epoch")]
    TimeBeforeEpoch,
    /// No randomness for a new secret.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The HMAC hash function (RFC 6238 §1.2). SHA-1 is what every authenticator app
/// supports; its collision weakness does not affect HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotpAlgorithm {
    /// HMAC-SHA1, the interoperable default.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl TotpAlgorithm {
    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Self::Sha1 => totp_rs::Algorithm::SHA1,
            Self::Sha256 => totp_rs::Algorithm::SHA256,
            Self::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// The result of checking a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// The code is right for `step`, which is later than the last step used. The
    /// caller must store `step` as the account's new last used step.
    Accepted {
        /// The time step (Unix time / 30) the code belongs to.
        step: u64,
    },
    /// Wrong code, wrong format, outside the window, or a replay.
    Rejected,
}

/// A shared TOTP secret. `Debug` is redacted; zeroized on drop.
#[derive(Clone)]
pub struct TotpSecret(SecretBytes);

impl TotpSecret {
    /// A new random 160-bit secret.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        random::fill(bytes.as_mut_slice())?;
        Ok(Self(SecretBytes::from_slice(bytes.as_slice())))
    }

    /// Wraps raw secret bytes (at least 128 bits).
    pub fn from_bytes(bytes: SecretBytes) -> Result<Self, TotpError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(TotpError::SecretTooShort);
        }
        Ok(Self(bytes))
    }

    /// Parses the base32 form (RFC 4648 alphabet) shown to users and in URIs.
    pub fn from_base32(text: &SecretString) -> Result<Self, TotpError> {
        let secret = totp_rs::Secret::try_from_base32(text.expose_secret())
            .map_err(|_| TotpError::InvalidBase32)?;
        Self::from_bytes(SecretBytes::from_slice(secret.as_bytes()))
    }

    /// The base32 form, for manual entry into an authenticator app.
    pub fn to_base32(&self) -> SecretString {
        SecretString::new(totp_rs::Secret::from(self.0.expose_secret()).to_base32())
    }

    /// The raw secret bytes, for storage (sealed) only.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// One account's TOTP generator and verifier.
#[derive(Clone)]
pub struct Totp {
    algorithm: TotpAlgorithm,
    digits: u8,
    inner: totp_rs::Totp,
}

impl Totp {
    /// A TOTP with a 30-second step. `digits` must be 6, 7 or 8.
    pub fn new(
        secret: &TotpSecret,
        algorithm: TotpAlgorithm,
        digits: u8,
    ) -> Result<Self, TotpError> {
        Ok(Self {
            algorithm,
            digits,
            inner: build(secret.expose_secret(), algorithm, digits, STEP_SECS, None)?,
        })
    }

    /// The time step containing `unix_time`.
    pub fn step_at(unix_time: i64) -> Result<u64, TotpError> {
        u64::try_from(unix_time)
            .map(|t| t / STEP_SECS)
            .map_err(|_| TotpError::TimeBeforeEpoch)
    }

    /// The code for the step containing `unix_time` (for enrolment screens and tests).
    pub fn code_at(&self, unix_time: i64) -> Result<SecretString, TotpError> {
        let time = u64::try_from(unix_time).map_err(|_| TotpError::TimeBeforeEpoch)?;
        Ok(SecretString::new(self.inner.generate(time).to_string()))
    }

    /// Checks `code` at server time `unix_time`.
    ///
    /// Accepts the current step and up to `skew_steps` steps either side (capped at
    /// [`MAX_SKEW_STEPS`]), but never a step at or before `last_used_step`: each
    /// step's code works once per account. The code must be exactly `digits` ASCII
    /// digits (leading zeros matter: `081804` is not `81804`). Every candidate in the
    /// window is computed and compared in constant time, without early exit.
    pub fn verify(
        &self,
        code: &str,
        unix_time: i64,
        skew_steps: u8,
        last_used_step: Option<u64>,
    ) -> TotpCheck {
        let Ok(current) = Self::step_at(unix_time) else {
            return TotpCheck::Rejected;
        };
        if code.len() != usize::from(self.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return TotpCheck::Rejected;
        }
        let skew = u64::from(skew_steps.min(MAX_SKEW_STEPS));
        let mut accepted = None;
        for step in current.saturating_sub(skew)..=current.saturating_add(skew) {
            let Some(time) = step.checked_mul(STEP_SECS) else {
                continue;
            };
            let expected = Zeroizing::new(self.inner.generate(time).to_string());
            let matches = ct_eq(expected.as_bytes(), code.as_bytes());
            let fresh = last_used_step.is_none_or(|last| step > last);
            if matches && fresh {
                // Keep the latest matching step, so a (rare) code collision between
                // two steps burns the later one.
                accepted = Some(step);
            }
        }
        match accepted {
            Some(step) => TotpCheck::Accepted { step },
            None => TotpCheck::Rejected,
        }
    }

    /// The `otpauth://totp/Issuer:account?secret=...&issuer=...` URI for QR codes
    /// (Key Uri Format). Contains the secret, hence a [`SecretString`].
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<SecretString, TotpError> {
        if issuer.is_empty() || account.is_empty() || issuer.contains(':') || account.contains(':')
        {
            return Err(TotpError::InvalidLabel);
        }
        let labelled = build(
            self.inner.secret().as_bytes(),
            self.algorithm,
            self.digits,
            STEP_SECS,
            Some((issuer, account)),
        )?;
        labelled
            .to_url()
            .map(SecretString::new)
            .map_err(|_| TotpError::Uri)
    }
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn build(
    secret: &[u8],
    algorithm: TotpAlgorithm,
    digits: u8,
    step: u64,
    label: Option<(&str, &str)>,
) -> Result<totp_rs::Totp, TotpError> {
    if !(6..=8).contains(&digits) {
        return Err(TotpError::InvalidDigits(digits));
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(TotpError::SecretTooShort);
    }
    let mut builder = totp_rs::Builder::new()
        .with_algorithm(algorithm.to_totp_rs())
        .with_digits(digits)
        // totp-rs's own window is unused: `verify` walks the window itself.
        .with_skew(0)
        .with_step_duration(step)
        .with_secret(secret);
    if let Some((issuer, account)) = label {
        builder = builder.with_issuer(Some(issuer)).with_account_name(account);
    }
    builder.build().map_err(|e| match e {
        totp_rs::TotpError::InvalidDigits { digits } => TotpError::InvalidDigits(digits),
        totp_rs::TotpError::SecretTooShort { .. } => TotpError::SecretTooShort,
        totp_rs::TotpError::InvalidAccountName { .. }
        | totp_rs::TotpError::InvalidIssuer { .. }
        | totp_rs::TotpError::AccountNameNotSet => TotpError::InvalidLabel,
        _ => TotpError::Uri,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    const VECTORS: &str = include_str!("../testdata/otp-vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn totp(seed: &[u8], algorithm: TotpAlgorithm, digits: u8) -> Totp {
        let secret = TotpSecret::from_bytes(SecretBytes::from_slice(seed)).unwrap();
        Totp::new(&secret, algorithm, digits).unwrap()
    }

    fn rfc_totp(v: &Value, alg: &str, digits: u8) -> Totp {
        let seed = v["totp"]["seeds_ascii"][alg].as_str().unwrap().as_bytes();
        let algorithm = match alg {
            "SHA1" => TotpAlgorithm::Sha1,
            "SHA256" => TotpAlgorithm::Sha256,
            "SHA512" => TotpAlgorithm::Sha512,
            other => panic!("{other}"),
        };
        totp(seed, algorithm, digits)
    }

    #[test]
    fn rfc6238_appendix_b_vectors_all_algorithms() {
        let v = vectors();
        let cases = v["totp"]["vectors"].as_array().unwrap();
        assert_eq!(cases.len(), 18);
        for case in cases {
            let alg = case["alg"].as_str().unwrap();
            let time = case["time"].as_i64().unwrap();
            let eight = rfc_totp(&v, alg, 8);
            let six = rfc_totp(&v, alg, 6);
            let code8 = case["totp8"].as_str().unwrap();
            let code6 = case["totp6_derived"].as_str().unwrap();
            assert_eq!(eight.code_at(time).unwrap().expose_secret(), code8);
            assert_eq!(six.code_at(time).unwrap().expose_secret(), code6);
            let step = u64::from_str_radix(case["T_hex"].as_str().unwrap(), 16).unwrap();
            assert_eq!(Totp::step_at(time).unwrap(), step);
            assert_eq!(
                eight.verify(code8, time, 0, None),
                TotpCheck::Accepted { step },
                "{alg} @ {time}"
            );
            assert_eq!(
                six.verify(code6, time, 0, None),
                TotpCheck::Accepted { step }
            );
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        // HOTP(K, C) is TOTP with a 1-second step at time C.
        let v = vectors();
        let secret = v["hotp"]["secret_ascii"].as_str().unwrap().as_bytes();
        let hotp = build(secret, TotpAlgorithm::Sha1, 6, 1, None).unwrap();
        for (counter, expected) in v["hotp"]["values_by_counter"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(
                hotp.generate(counter as u64).to_string(),
                expected.as_str().unwrap()
            );
        }
    }

    #[test]
    fn base32_seeds_from_the_vectors_parse() {
        let v = vectors();
        for alg in ["SHA1", "SHA256", "SHA512"] {
            let b32 = v["totp"]["seeds_base32"][alg].as_str().unwrap();
            let ascii = v["totp"]["seeds_ascii"][alg].as_str().unwrap();
            let secret =
                TotpSecret::from_base32(&SecretString::from(b32.trim_end_matches('='))).unwrap();
            assert_eq!(secret.expose_secret(), ascii.as_bytes());
        }
    }

    #[test]
    fn leading_zero_codes_are_strings() {
        let v = vectors();
        let sha1 = rfc_totp(&v, "SHA1", 8);
        assert!(matches!(
            sha1.verify("07081804", 1_111_111_109, 0, None),
            TotpCheck::Accepted { .. }
        ));
        assert_eq!(
            sha1.verify("7081804", 1_111_111_109, 0, None),
            TotpCheck::Rejected
        );
        let six = rfc_totp(&v, "SHA1", 6);
        assert!(matches!(
            six.verify("081804", 1_111_111_109, 0, None),
            TotpCheck::Accepted { .. }
        ));
        assert_eq!(
            six.verify("81804", 1_111_111_109, 0, None),
            TotpCheck::Rejected
        );
    }

    #[test]
    fn skew_window_is_exactly_the_configured_steps() {
        let t = totp(b"12345678901234567890", TotpAlgorithm::Sha1, 6);
        let now: i64 = 1_700_000_000;
        let current = Totp::step_at(now).unwrap();
        let code_for = |step: u64| {
            t.code_at(i64::try_from(step * STEP_SECS).unwrap())
                .unwrap()
                .expose_secret()
                .to_owned()
        };
        // Window 1: T-1, T, T+1 accepted; T-2 and T+2 rejected.
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let step = current.checked_add_signed(offset).unwrap();
            let result = t.verify(&code_for(step), now, 1, None);
            if accepted {
                assert_eq!(result, TotpCheck::Accepted { step }, "offset {offset}");
            } else {
                assert_eq!(result, TotpCheck::Rejected, "offset {offset}");
            }
        }
        // Window 0: only T.
        assert_eq!(
            t.verify(&code_for(current - 1), now, 0, None),
            TotpCheck::Rejected
        );
        assert_eq!(
            t.verify(&code_for(current + 1), now, 0, None),
            TotpCheck::Rejected
        );
        // Oversized windows are capped at MAX_SKEW_STEPS.
        let far = current - u64::from(MAX_SKEW_STEPS) - 1;
        assert_eq!(
            t.verify(&code_for(far), now, 200, None),
            TotpCheck::Rejected
        );
        let edge = current - u64::from(MAX_SKEW_STEPS);
        assert_eq!(
            t.verify(&code_for(edge), now, 200, None),
            TotpCheck::Accepted { step: edge }
        );
    }

    #[test]
    fn replay_of_a_used_step_is_refused() {
        let t = totp(b"12345678901234567890", TotpAlgorithm::Sha1, 6);
        let now: i64 = 1_700_000_000;
        let code = t.code_at(now).unwrap();
        let TotpCheck::Accepted { step } = t.verify(code.expose_secret(), now, 1, None) else {
            panic!("first use must be accepted");
        };
        // Same code again, same step: refused.
        assert_eq!(
            t.verify(code.expose_secret(), now, 1, Some(step)),
            TotpCheck::Rejected
        );
        // Still refused 30 s later, when it is inside the -1 skew window.
        assert_eq!(
            t.verify(code.expose_secret(), now + 30, 1, Some(step)),
            TotpCheck::Rejected
        );
        // An earlier step's code after a later one was used: refused.
        let previous = t.code_at(now - 30).unwrap();
        assert_eq!(
            t.verify(previous.expose_secret(), now, 1, Some(step)),
            TotpCheck::Rejected
        );
        // The next step's code is fine.
        let next = t.code_at(now + 30).unwrap();
        assert_eq!(
            t.verify(next.expose_secret(), now + 30, 1, Some(step)),
            TotpCheck::Accepted { step: step + 1 }
        );
    }

    #[test]
    fn malformed_codes_are_rejected() {
        let t = totp(b"12345678901234567890", TotpAlgorithm::Sha1, 6);
        let now = 59;
        let good = t.code_at(now).unwrap().expose_secret().to_owned();
        assert!(matches!(
            t.verify(&good, now, 0, None),
            TotpCheck::Accepted { .. }
        ));
        for bad in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "+28708",
            " 287082",
            "287082 ",
            "２８７０８２",
            "28708\u{0}",
        ] {
            assert_eq!(t.verify(bad, now, 1, None), TotpCheck::Rejected, "{bad:?}");
        }
        assert_eq!(t.verify(&good, -1, 1, None), TotpCheck::Rejected);
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let t = totp(b"12345678901234567890", TotpAlgorithm::Sha1, 6);
        assert_eq!(t.verify("000000", i64::MAX, 2, None), TotpCheck::Rejected);
        assert_eq!(t.verify("000000", i64::MIN, 2, None), TotpCheck::Rejected);
        assert_eq!(
            t.verify("000000", 0, 2, Some(u64::MAX)),
            TotpCheck::Rejected
        );
    }

    #[test]
    fn configuration_is_validated() {
        let secret = TotpSecret::generate().unwrap();
        assert_eq!(secret.expose_secret().len(), SECRET_LEN);
        for digits in [0, 5, 9, 10] {
            assert!(matches!(
                Totp::new(&secret, TotpAlgorithm::Sha1, digits),
                Err(TotpError::InvalidDigits(_))
            ));
        }
        assert!(matches!(
            TotpSecret::from_bytes(SecretBytes::from_slice(&[1; 15])),
            Err(TotpError::SecretTooShort)
        ));
        assert!(matches!(
            TotpSecret::from_base32(&SecretString::from("not base32!")),
            Err(TotpError::InvalidBase32)
        ));
        let round = TotpSecret::from_base32(&secret.to_base32()).unwrap();
        assert_eq!(round.expose_secret(), secret.expose_secret());
    }

    #[test]
    fn otpauth_uri_carries_label_secret_and_parameters() {
        let secret =
            TotpSecret::from_bytes(SecretBytes::from_slice(b"12345678901234567890")).unwrap();
        let t = Totp::new(&secret, TotpAlgorithm::Sha1, 6).unwrap();
        let uri = t.otpauth_uri("Rampart", "alice@example.com").unwrap();
        let uri = uri.expose_secret();
        assert!(
            uri.starts_with("otpauth://totp/Rampart:alice%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Rampart"), "{uri}");

        let t256 = Totp::new(&secret, TotpAlgorithm::Sha256, 8).unwrap();
        let uri = t256.otpauth_uri("Rampart", "bob").unwrap();
        assert!(uri.expose_secret().contains("algorithm=SHA256"));
        assert!(uri.expose_secret().contains("digits=8"));

        for (issuer, account) in [("", "a"), ("Ram:part", "a"), ("Rampart", ""), ("R", "a:b")] {
            assert!(matches!(
                t.otpauth_uri(issuer, account),
                Err(TotpError::InvalidLabel)
            ));
        }
    }

    #[test]
    fn debug_is_redacted() {
        let secret =
            TotpSecret::from_bytes(SecretBytes::from_slice(b"12345678901234567890")).unwrap();
        let t = Totp::new(&secret, TotpAlgorithm::Sha1, 6).unwrap();
        assert!(!format!("{secret:?}").contains("49"));
        let text = format!("{t:?}");
        assert!(!text.contains("1234") && !text.contains("GEZD"), "{text}");
    }
}
