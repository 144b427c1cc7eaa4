//! The secret vault (F-VAULT, F-INJECT): named secrets sealed under the vault data key.
//!
//! Each value is sealed with AES-256-GCM under the active [`KeyPurpose::Vault`] key
//! with a fresh random nonce; the envelope records the key id, and the associated data
//! binds the secret's name, so a ciphertext copied onto another name's row does not
//! open. The database therefore holds names, times and ciphertext only.
//!
//! Plaintext leaves this module through [`Vault::get`] alone (for header injection and
//! `rampart secrets get`); listings show a masked tail (`••••abcd`).

use std::fmt;
use std::sync::Arc;

use rampart_crypto::envelope::{self, EnvelopeError};
use rampart_crypto::{KeyId, SecretString};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::ErrorKind;
use crate::keys::{DataKeys, KeyPurpose};
use crate::store::{Removal, SecretRecord, StoreError, VaultStore};

/// Longest secret name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Largest secret value, in bytes (64 KiB): enough for a PEM bundle, small enough
/// that the vault cannot be used as a file store.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Domain label prefixed to the name in the associated data, so a vault ciphertext
/// can never be confused with another table's that happens to use the same key and
/// bind the same text.
const AAD_LABEL: &[u8] = b"rampart-vault-v1:";

/// A secret's name: 1 to 64 characters from `a-z`, `0-9`, `_`, `.`, `-`.
///
/// The small alphabet keeps names safe in config references (`vault:name`), logs and
/// URLs without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    /// Validates a name.
    pub fn new(name: impl Into<String>) -> Result<Self, VaultError> {
        let name = name.into();
        let valid = (1..=MAX_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if valid {
            Ok(Self(name))
        } else {
            Err(VaultError::InvalidName)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SecretName {
    type Err = VaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a vault operation failed. Messages name the secret at most, never its value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The name is empty, too long or uses characters outside `a-z0-9_.-`.
    #[error("a secret name is 1 to {MAX_NAME_LEN} characters from a-z, 0-9, '_', '.', '-'")]
    InvalidName,
    /// The value is larger than [`MAX_VALUE_LEN`].
    #[error("a secret value is at most {MAX_VALUE_LEN} bytes, this one is {len}")]
    TooLarge {
        /// The value's length.
        len: usize,
    },
    /// No secret by that name.
    #[error("no secret named {0:?}")]
    NotFound(SecretName),
    /// The stored ciphertext does not open: it was modified, moved from another row,
    /// or sealed by a key this instance does not have.
    #[error("secret {name:?} cannot be decrypted: the stored value was modified or moved")]
    Undecryptable {
        /// Which secret.
        name: SecretName,
    },
    /// Sealing failed.
    #[error(transparent)]
    Envelope(EnvelopeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VaultError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName | Self::TooLarge { .. } => ErrorKind::Client,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Undecryptable { .. } | Self::Envelope(_) => ErrorKind::Internal,
            Self::Store(e) => e.kind(),
        }
    }
}

/// One line of a listing: no plaintext beyond a masked tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSummary {
    /// The secret's name.
    pub name: SecretName,
    /// The value masked to its last 4 characters (`••••abcd`), or `••••` alone
    /// when the value is too short to show any of it.
    pub masked: String,
    /// When the value last changed.
    pub updated_at: OffsetDateTime,
}

/// The vault service.
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn VaultStore>,
    keys: Arc<DataKeys>,
    clock: Arc<dyn Clock>,
}

impl Vault {
    /// A vault over `store`, sealing with the vault key from `keys`.
    pub fn new(store: Arc<dyn VaultStore>, keys: Arc<DataKeys>, clock: Arc<dyn Clock>) -> Self {
        Self { store, keys, clock }
    }

    /// Stores `value` under `name`, replacing any previous value.
    pub async fn set(&self, name: &SecretName, value: &SecretString) -> Result<(), VaultError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(VaultError::TooLarge { len: value.len() });
        }
        let key = self.keys.active(KeyPurpose::Vault);
        let sealed = envelope::seal(key, &aad(name), value.expose_secret().as_bytes())
            .map_err(VaultError::Envelope)?;
        let now = self.clock.now();
        self.store
            .put_secret(&SecretRecord {
                name: name.clone(),
                key_id: key.id.clone(),
                sealed,
                created_at: now,
                updated_at: now,
            })
            .await?;
        Ok(())
    }

    /// The plaintext of `name`. The only way plaintext leaves the vault.
    pub async fn get(&self, name: &SecretName) -> Result<SecretString, VaultError> {
        let record = self
            .store
            .secret(name)
            .await?
            .ok_or_else(|| VaultError::NotFound(name.clone()))?;
        self.open(&record)
    }

    /// Every secret, by name, with its value masked.
    pub async fn list(&self) -> Result<Vec<SecretSummary>, VaultError> {
        let records = self.store.secrets().await?;
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            // Fail closed: a value that does not open is an error in the listing too,
            // not a silently skipped row.
            let value = self.open(&record)?;
            out.push(SecretSummary {
                masked: value.masked(4),
                name: record.name,
                updated_at: record.updated_at,
            });
        }
        Ok(out)
    }

    /// Deletes `name`.
    pub async fn remove(&self, name: &SecretName) -> Result<(), VaultError> {
        match self.store.delete_secret(name).await? {
            Removal::Removed => Ok(()),
            Removal::Absent => Err(VaultError::NotFound(name.clone())),
        }
    }

    fn open(&self, record: &SecretRecord) -> Result<SecretString, VaultError> {
        let undecryptable = || VaultError::Undecryptable {
            name: record.name.clone(),
        };
        // The key is chosen by the envelope's own (authenticated) header, restricted to
        // vault keys; the row's key_id column is for maintenance queries only.
        let id = envelope::key_id(&record.sealed)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .ok_or_else(undecryptable)?;
        let key = self
            .keys
            .for_purpose(KeyPurpose::Vault, &id)
            .ok_or_else(undecryptable)?;
        let plain =
            envelope::open(key, &aad(&record.name), &record.sealed).map_err(|_| undecryptable())?;
        let text = std::str::from_utf8(plain.expose_secret()).map_err(|_| undecryptable())?;
        Ok(SecretString::from(text))
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

/// `rampart-vault-v1:` || name.
fn aad(name: &SecretName) -> Vec<u8> {
    let mut aad = AAD_LABEL.to_vec();
    aad.extend_from_slice(name.as_str().as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["a", "third_party", "db.password-2", &"x".repeat(64)] {
            assert!(SecretName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a b", "a/b", "é", "vault:x", &"x".repeat(65)] {
            assert!(
                matches!(SecretName::new(bad), Err(VaultError::InvalidName)),
                "{bad}"
            );
        }
    }

    #[test]
    fn aad_binds_the_name_with_a_label() {
        let a = aad(&SecretName::new("a").unwrap());
        assert_eq!(a, b"rampart-vault-v1:a");
    }

    #[test]
    fn error_kinds() {
        assert_eq!(VaultError::InvalidName.kind(), ErrorKind::Client);
        assert_eq!(
            VaultError::NotFound(SecretName::new("x").unwrap()).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            VaultError::Undecryptable {
                name: SecretName::new("x").unwrap()
            }
            .kind(),
            ErrorKind::Internal
        );
    }
}
