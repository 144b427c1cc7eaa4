//! Blind indexes: keyed, deterministic lookup values for encrypted columns.
//!
//! E-mail addresses are stored encrypted (randomized AES-GCM), so the database cannot
//! search them. A blind index is HMAC-SHA256 of the normalized value under a key the
//! database never sees: equal inputs give equal indexes (so `WHERE email_index = ?`
//! works, and a unique constraint holds), while a stolen database alone does not let
//! anyone test guesses — unlike a plain hash, which anyone could compute for a list
//! of known addresses.
//!
//! The field name is mixed into the MAC, so the index of a value as an e-mail can
//! never equal its index as, say, a username.

use std::fmt;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::kdf::{self, purpose};
use crate::master_key::MasterKey;
use crate::secret::SecretArray;

/// Length of a blind index in bytes (the full HMAC-SHA256 output).
pub const BLIND_INDEX_LEN: usize = 32;

/// HMAC block size for SHA-256 (RFC 2104 `B`).
const HMAC_BLOCK_LEN: usize = 64;

/// The key blind indexes are computed with. `Debug` is redacted.
#[derive(Clone)]
pub struct BlindIndexKey(SecretArray<32>);

impl BlindIndexKey {
    /// Wraps a 32-byte key.
    pub fn new(key: SecretArray<32>) -> Self {
        Self(key)
    }

    /// The blind-index key derived from the master key (purpose `blind-index`).
    pub fn from_master(master: &MasterKey) -> Self {
        Self(kdf::derive_key(master, purpose::BLIND_INDEX))
    }

    /// The index of an e-mail address, after [`normalize_email`].
    pub fn email(&self, email: &str) -> BlindIndex {
        let normalized = Zeroizing::new(normalize_email(email));
        self.index("email", normalized.as_bytes())
    }

    /// The index of `value` in the column `field`. The value is used as given; apply
    /// the field's normalization first.
    pub fn index(&self, field: &str, value: &[u8]) -> BlindIndex {
        // RFC 2104 §2: a key shorter than the block size is padded with zeros, so
        // keying with the zero-padded 64-byte block *is* HMAC with the 32-byte key.
        // Doing the padding here lets us use the infallible constructor.
        let mut block = Zeroizing::new([0u8; HMAC_BLOCK_LEN]);
        block[..32].copy_from_slice(self.0.expose_secret());
        let mut mac = <Hmac<Sha256>>::new(&(*block).into());
        // Length-prefixed field name: ("ab", "c") and ("a", "bc") cannot collide.
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
        mac.update(value);
        BlindIndex(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey([redacted])")
    }
}

/// A blind index value, as stored in the indexed column.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex([u8; BLIND_INDEX_LEN]);

impl BlindIndex {
    /// Rebuilds an index read from storage.
    pub fn from_bytes(bytes: [u8; BLIND_INDEX_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; BLIND_INDEX_LEN] {
        &self.0
    }

    /// Lowercase hex, for text columns.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({})", self.to_hex())
    }
}

/// The form e-mail addresses are indexed in: surrounding whitespace removed, lower
/// case. (The local part is case-sensitive in theory, RFC 5321 §2.4; in practice
/// no provider treats it so, and users type both cases.)
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> BlindIndexKey {
        BlindIndexKey::new(SecretArray::new([byte; 32]))
    }

    #[test]
    fn deterministic_and_normalized() {
        let k = key(1);
        let a = k.email("alice@example.com");
        assert_eq!(a, k.email("alice@example.com"));
        assert_eq!(a, k.email("  Alice@Example.COM\n"));
        assert_ne!(a, k.email("alice@example.org"));
        assert_ne!(a, k.email("alice+x@example.com"));
        assert_eq!(a.as_bytes().len(), BLIND_INDEX_LEN);
        assert_eq!(BlindIndex::from_bytes(*a.as_bytes()), a);
        assert_eq!(a.to_hex().len(), 64);
    }

    #[test]
    fn keys_are_separated() {
        assert_ne!(
            key(1).email("alice@example.com"),
            key(2).email("alice@example.com")
        );
        let m = MasterKey::development();
        let from_master = BlindIndexKey::from_master(&m);
        assert_eq!(
            from_master.email("a@b.c"),
            BlindIndexKey::from_master(&m).email("a@b.c")
        );
        // The derived key is not the master key itself.
        let raw_master = BlindIndexKey::new(SecretArray::new(*m.expose_secret()));
        assert_ne!(from_master.email("a@b.c"), raw_master.email("a@b.c"));
    }

    #[test]
    fn fields_are_separated() {
        let k = key(1);
        assert_ne!(k.index("email", b"x"), k.index("username", b"x"));
        assert_ne!(k.index("ab", b"c"), k.index("a", b"bc"));
    }

    #[test]
    fn padded_key_equals_standard_hmac() {
        // Proves the zero-padding shortcut computes exactly HMAC-SHA256(key, msg).
        let k = key(0x5a);
        let mut reference = <Hmac<Sha256>>::new_from_slice(&[0x5a; 32]).unwrap();
        reference.update(&5u64.to_be_bytes());
        reference.update(b"email");
        reference.update(b"a@b.c");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(k.index("email", b"a@b.c").as_bytes(), &expected);
    }

    #[test]
    fn rfc4231_test_case_2_shape_via_reference() {
        // Sanity-check the reference HMAC itself (RFC 4231 §4.3, key "Jefe").
        let mut mac = <Hmac<Sha256>>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn debug_redacts_the_key() {
        assert_eq!(format!("{:?}", key(7)), "BlindIndexKey([redacted])");
    }
}
