//! Key derivation: one key-encryption key per purpose, derived from the master key.
//!
//! The master key never encrypts anything itself. HKDF-SHA256 (RFC 5869) turns it into
//! independent 32-byte keys, one per purpose, so that a key leaked or misused in one
//! place (say, the blind index) says nothing about another (the vault). The salt is a
//! fixed, versioned label: HKDF allows a non-secret salt, and a label lets a future
//! scheme (`-v2`) derive unrelated keys from the same master key.
//!
//! The purpose strings below are part of the on-disk format: renaming one makes every
//! secret sealed under it unreadable.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::master_key::MasterKey;
use crate::secret::SecretArray;

/// HKDF salt for key-encryption keys. Versioned so the scheme can change later.
pub const KEK_SALT: &[u8] = b"rampart-kek-v1";

/// HKDF salt for the key check value; distinct from [`KEK_SALT`] so the check value
/// can be stored in the clear without revealing anything about any derived key.
pub const KEY_CHECK_SALT: &[u8] = b"rampart-kcv-v1";

/// Length of a derived key in bytes (AES-256, HMAC-SHA256 and Ed25519 seeds all use 32).
pub const DERIVED_KEY_LEN: usize = 32;

/// Length of the key check value in bytes.
pub const KEY_CHECK_VALUE_LEN: usize = 16;

/// The purposes Rampart derives keys for. Use these constants rather than literals:
/// a typo would silently derive a different key and make stored data unreadable.
pub mod purpose {
    /// Encryption of personal data stored in the database.
    pub const PII: &str = "pii";
    /// The secret vault (upstream credentials, API keys).
    pub const VAULT: &str = "vault";
    /// Encryption of TOTP seeds.
    pub const TOTP: &str = "totp";
    /// Signing of the audit log chain.
    pub const AUDIT_SIGNING: &str = "audit-signing";
    /// Wrapping of the JWT signing keys.
    pub const JWT_SIGNING: &str = "jwt-signing";
    /// The keyed blind index over e-mail addresses.
    pub const BLIND_INDEX: &str = "blind-index";
    /// Session-related secrets (cookie signing, CSRF).
    pub const SESSION: &str = "session";
}

/// Derives the 32-byte key for `purpose` (see [`purpose`]) from the master key.
///
/// Deterministic: the same master key and purpose always give the same key, which is
/// what lets a restarted process read what it wrote before.
pub fn derive_key(master: &MasterKey, purpose: &str) -> SecretArray<DERIVED_KEY_LEN> {
    SecretArray::new(hkdf_sha256::<DERIVED_KEY_LEN>(
        KEK_SALT,
        master.expose_secret(),
        purpose.as_bytes(),
    ))
}

/// A short fingerprint of the master key, stored next to the data it protects.
///
/// Comparing it before decrypting turns "wrong master key" into a clear startup error
/// instead of a confusing authentication failure on the first secret read. It is an
/// HKDF output under its own salt, so publishing it reveals nothing about any key.
pub fn key_check_value(master: &MasterKey) -> [u8; KEY_CHECK_VALUE_LEN] {
    hkdf_sha256::<KEY_CHECK_VALUE_LEN>(KEY_CHECK_SALT, master.expose_secret(), b"key-check")
}

/// HKDF-SHA256 extract-then-expand into an `N`-byte array.
fn hkdf_sha256<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    // RFC 5869 §2.3 caps the output at 255 * HashLen = 8160 bytes; checked at compile
    // time, so the expand below cannot fail for any N this module instantiates.
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output is limited to 8160 bytes") };
    let mut okm = [0u8; N];
    #[expect(
        clippy::expect_used,
        reason = "the output length is checked at compile time against the RFC 5869 limit, \
                  the only error HKDF-Expand can return"
    )]
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .expect("HKDF output length is within the RFC 5869 limit");
    okm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;

    fn master(hex_text: &str) -> MasterKey {
        MasterKey::from_hex(&SecretString::from(hex_text)).unwrap()
    }

    #[test]
    fn rfc5869_test_case_1_through_the_helper() {
        // RFC 5869 Appendix A.1: proves the helper is plain HKDF-SHA256.
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm = hkdf_sha256::<42>(&salt, &ikm, &info);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn derivation_is_deterministic() {
        let m = MasterKey::development();
        let a = derive_key(&m, purpose::VAULT);
        let b = derive_key(&m, purpose::VAULT);
        assert_eq!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn every_purpose_gets_its_own_key() {
        let m = MasterKey::development();
        let all = [
            purpose::PII,
            purpose::VAULT,
            purpose::TOTP,
            purpose::AUDIT_SIGNING,
            purpose::JWT_SIGNING,
            purpose::BLIND_INDEX,
            purpose::SESSION,
        ];
        let keys: Vec<[u8; 32]> = all
            .iter()
            .map(|p| *derive_key(&m, p).expose_secret())
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
            assert_ne!(
                a,
                m.expose_secret(),
                "derived key must differ from the master"
            );
        }
    }

    #[test]
    fn different_master_keys_give_different_keys_and_check_values() {
        let a = master(&"a1".repeat(32));
        let b = master(&"b2".repeat(32));
        assert_ne!(
            derive_key(&a, purpose::PII).expose_secret(),
            derive_key(&b, purpose::PII).expose_secret()
        );
        assert_ne!(key_check_value(&a), key_check_value(&b));
        assert_eq!(key_check_value(&a), key_check_value(&a.clone()));
    }

    #[test]
    fn check_value_is_not_a_prefix_of_any_derived_key() {
        let m = MasterKey::development();
        let kcv = key_check_value(&m);
        for p in [purpose::PII, purpose::VAULT, "key-check"] {
            assert_ne!(&derive_key(&m, p).expose_secret()[..16], &kcv[..]);
        }
    }
}
