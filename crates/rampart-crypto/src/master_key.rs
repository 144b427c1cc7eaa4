//! The master key: the root of Rampart's key hierarchy.
//!
//! 32 bytes, given as 64 hex characters in `RAMPART_MASTER_KEY_HEX` or in the file
//! named by `RAMPART_MASTER_KEY_PATH`. The master key never encrypts data directly:
//! key-encryption keys are derived from it per purpose (see [`crate::kdf`]), and those
//! wrap the data keys stored in the database.

use std::path::Path;

use sha2::{Digest as _, Sha256};
use zeroize::Zeroize as _;

use crate::secret::{SecretArray, SecretString, ct_eq};
use crate::secret_file::{self, SecretFileError};

/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// The example key printed in Rampart's own documentation. Anyone who copied it has
/// no secret at all, so it is refused like a placeholder.
pub const DOCUMENTATION_EXAMPLE_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Why a master key was refused. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// Not 64 hex characters.
    #[error(
        "the master key must be {expected} hex characters (32 bytes), found {found} characters; generate one with: openssl rand -hex 32"
    )]
    WrongLength {
        /// Characters expected.
        expected: usize,
        /// Characters found (after trimming whitespace).
        found: usize,
    },
    /// A character outside `0-9a-fA-F`.
    #[error("the master key must be hex (0-9, a-f); generate one with: openssl rand -hex 32")]
    NotHex,
    /// The key file could not be used.
    #[error(transparent)]
    File(#[from] SecretFileError),
}

/// What kind of key this is; recorded with the data it seals so a production start
/// can refuse a store that was sealed with the public development key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeyKind {
    /// A real, operator-supplied key.
    Operator,
    /// The deterministic development key: public knowledge, never secret.
    Development,
}

/// The 32-byte master key.
#[derive(Clone)]
pub struct MasterKey {
    bytes: SecretArray<MASTER_KEY_LEN>,
    kind: MasterKeyKind,
}

impl MasterKey {
    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(hex_text: &SecretString) -> Result<Self, MasterKeyError> {
        let text = hex_text.expose_secret().trim();
        if text.len() != MASTER_KEY_LEN * 2 {
            return Err(MasterKeyError::WrongLength {
                expected: MASTER_KEY_LEN * 2,
                found: text.chars().count(),
            });
        }
        let mut bytes = [0u8; MASTER_KEY_LEN];
        if hex::decode_to_slice(text, &mut bytes).is_err() {
            bytes.zeroize();
            return Err(MasterKeyError::NotHex);
        }
        Ok(Self {
            bytes: SecretArray::new(bytes),
            kind: MasterKeyKind::Operator,
        })
    }

    /// Reads a key file (mode 0600 or stricter, owned by this user or root).
    pub fn from_file(path: &Path) -> Result<Self, MasterKeyError> {
        let text = secret_file::read_string(path)?;
        Self::from_hex(&text)
    }

    /// The deterministic development key. Its value is public (it is derived from a
    /// fixed label), so data sealed with it is marked and refused in production.
    pub fn development() -> Self {
        let digest = Sha256::digest(b"rampart development master key - public, never secret");
        let mut bytes = [0u8; MASTER_KEY_LEN];
        bytes.copy_from_slice(&digest);
        Self {
            bytes: SecretArray::new(bytes),
            kind: MasterKeyKind::Development,
        }
    }

    /// Generates a fresh random key.
    pub fn generate() -> Result<Self, crate::random::RandomError> {
        Ok(Self {
            bytes: SecretArray::new(crate::random::bytes::<MASTER_KEY_LEN>()?),
            kind: MasterKeyKind::Operator,
        })
    }

    /// Operator key or the development key.
    pub fn kind(&self) -> MasterKeyKind {
        self.kind
    }

    /// The key bytes, for key derivation only.
    pub fn expose_secret(&self) -> &[u8; MASTER_KEY_LEN] {
        self.bytes.expose_secret()
    }

    /// The key as 64 lowercase hex characters, for writing a new key file.
    pub fn to_hex(&self) -> SecretString {
        SecretString::new(hex::encode(self.bytes.expose_secret()))
    }

    /// Whether this key is a placeholder: all one byte value (all zeros included),
    /// the documentation example, or the development key presented as an operator key.
    pub fn is_placeholder(&self) -> bool {
        let bytes = self.bytes.expose_secret();
        let all_same = bytes.iter().all(|b| *b == bytes[0]);
        let mut example = [0u8; MASTER_KEY_LEN];
        let is_example = hex::decode_to_slice(DOCUMENTATION_EXAMPLE_HEX, &mut example).is_ok()
            && ct_eq(bytes, &example);
        let is_dev = ct_eq(bytes, Self::development().expose_secret());
        all_same || is_example || (is_dev && self.kind == MasterKeyKind::Operator)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({:?}, [redacted])", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_64_hex_characters() {
        let key = MasterKey::from_hex(&SecretString::from(
            "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\n",
        ))
        .unwrap();
        assert_eq!(key.kind(), MasterKeyKind::Operator);
        assert!(!key.is_placeholder());
    }

    #[test]
    fn wrong_length_is_refused_without_echoing_the_value() {
        let err = MasterKey::from_hex(&SecretString::from("abcdef")).unwrap_err();
        assert!(matches!(err, MasterKeyError::WrongLength { found: 6, .. }));
        assert!(!err.to_string().contains("abcdef"));
    }

    #[test]
    fn non_hex_is_refused() {
        let text = "zz".repeat(32);
        let err = MasterKey::from_hex(&SecretString::from(text.as_str())).unwrap_err();
        assert!(matches!(err, MasterKeyError::NotHex));
        assert!(!err.to_string().contains("zz"));
    }

    #[test]
    fn placeholders_are_detected() {
        for text in [
            "00".repeat(32),
            "ff".repeat(32),
            DOCUMENTATION_EXAMPLE_HEX.to_owned(),
        ] {
            let key = MasterKey::from_hex(&SecretString::from(text.as_str())).unwrap();
            assert!(key.is_placeholder(), "{text}");
        }
        let dev_as_operator = MasterKey::from_hex(&MasterKey::development().to_hex()).unwrap();
        assert!(dev_as_operator.is_placeholder());
        assert!(!MasterKey::generate().unwrap().is_placeholder());
    }

    #[test]
    fn development_key_is_deterministic_and_marked() {
        let a = MasterKey::development();
        let b = MasterKey::development();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.kind(), MasterKeyKind::Development);
    }
}
