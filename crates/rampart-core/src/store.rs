//! The storage traits: what the domain needs from a database, and nothing about how.
//!
//! `rampart-store` implements these over SQLite and PostgreSQL; tests may implement
//! them in memory. Core never sees SQL, a connection pool or a driver error: storage
//! failures arrive as a [`StoreError`] that says who is at fault.
//!
//! The traits are object-safe through [`macro@async_trait`], because services hold them as
//! `Arc<dyn KeyStore>` / `Arc<dyn VaultStore>` and the backend is chosen at run time.
//! Every method returns its futures boxed and `Send`, so services can be used from any
//! Tokio task.
//!
//! Storage is fail-closed: a read that fails is an error, never an empty default —
//! "no keys" and "could not read the keys" must never look alike.

use std::error::Error as StdError;

use async_trait::async_trait;
use rampart_crypto::{KeyId, MasterKeyKind};
use time::OffsetDateTime;

use crate::error::ErrorKind;
use crate::keys::KeyPurpose;
use crate::vault::SecretName;

/// A boxed error from the storage driver, kept as the `source` for logs.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a storage operation failed.
///
/// Messages name the table or record kind, never values: a row may hold a secret,
/// and a connection error may hold the database URL's credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, the pool timed out or is closed, or the
    /// database is too busy (SQLite lock timeout). Retrying later may succeed.
    #[error("the database is unavailable")]
    Unavailable {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The record does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `"vault secret"`.
        what: &'static str,
    },
    /// The write conflicts with what is stored (a uniqueness violation, or a
    /// concurrent change detected by a conditional update).
    #[error("{what} conflicts with the stored data")]
    Conflict {
        /// What conflicted, e.g. `"instance"`.
        what: &'static str,
    },
    /// The schema is behind this binary or has drifted from it.
    #[error("database schema: {reason}")]
    Schema {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A stored value cannot be read back (bad enum label, out-of-range timestamp,
    /// malformed key id). The data was modified outside Rampart or is corrupt.
    #[error("stored {what} is invalid: {reason}")]
    Corrupt {
        /// Which record kind, e.g. `"data key"`.
        what: &'static str,
        /// What is wrong with it (never the value itself).
        reason: String,
    },
    /// The connection options are unusable (malformed URL, missing parent directory).
    #[error("storage configuration: {reason}")]
    Config {
        /// What is wrong, never the URL itself.
        reason: String,
    },
    /// Any other database failure.
    #[error("database error")]
    Internal {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Schema { .. } | Self::Corrupt { .. } | Self::Config { .. } => ErrorKind::Internal,
            Self::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// A [`StoreError::Corrupt`] for `what`.
    pub fn corrupt(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            reason: reason.into(),
        }
    }
}

/// The instance record: written once, when the data keys are first generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// When the instance was initialized.
    pub initialized_at: OffsetDateTime,
    /// Which kind of master key sealed the data keys. A production start refuses
    /// [`MasterKeyKind::Development`] (F-MASTERKEY).
    pub sealed_with: MasterKeyKind,
    /// `kdf::key_check_value` of the master key that wraps the data keys; compared
    /// before any decryption so a wrong key is a clear error.
    pub key_check: Vec<u8>,
}

/// A data key as stored: wrapped under the key-encryption key for its purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyRecord {
    /// The data key's id (also inside the wrapped envelope's header).
    pub id: KeyId,
    /// What the key is for.
    pub purpose: KeyPurpose,
    /// `envelope::wrap_data_key` output. Ciphertext, but still never logged.
    pub wrapped: Vec<u8>,
    /// When the key was generated.
    pub created_at: OffsetDateTime,
    /// When the key stopped sealing new data; it still opens old data.
    pub retired_at: Option<OffsetDateTime>,
}

/// A data key re-wrapped under a new master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrappedKey {
    /// Which key.
    pub id: KeyId,
    /// The new wrapped form.
    pub wrapped: Vec<u8>,
}

/// One master-key rotation, applied by [`KeyStore::rewrap`] in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrap {
    /// The check value currently stored; the update applies only if it still
    /// matches, so two concurrent rotations cannot interleave.
    pub old_key_check: Vec<u8>,
    /// The new master key's check value.
    pub new_key_check: Vec<u8>,
    /// The new master key's kind.
    pub sealed_with: MasterKeyKind,
    /// When the rotation happened.
    pub at: OffsetDateTime,
    /// Every data key, re-wrapped. Must cover all stored keys.
    pub keys: Vec<RewrappedKey>,
}

/// A vault secret as stored: sealed, never plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// The secret's name.
    pub name: SecretName,
    /// The data key that sealed it (also in the envelope header).
    pub key_id: KeyId,
    /// `envelope::seal` output, with the name bound as associated data.
    pub sealed: Vec<u8>,
    /// When the name was first set.
    pub created_at: OffsetDateTime,
    /// When the value last changed.
    pub updated_at: OffsetDateTime,
}

/// Whether a delete found something to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The record existed and is gone.
    Removed,
    /// There was no such record.
    Absent,
}

/// The instance row.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// The instance record, or `None` before initialization.
    async fn instance(&self) -> Result<Option<InstanceRecord>, StoreError>;
}

/// The data keys, wrapped. Writes that touch the instance row and the keys together
/// are here so they can share one transaction.
#[async_trait]
pub trait KeyStore: InstanceStore {
    /// Records the instance and its first data keys atomically.
    ///
    /// Fails with [`StoreError::Conflict`] if an instance already exists — also when
    /// another process initializes concurrently — and then writes nothing.
    async fn initialize(
        &self,
        instance: &InstanceRecord,
        keys: &[WrappedKeyRecord],
    ) -> Result<(), StoreError>;

    /// Every data key, active and retired, ordered by creation time.
    async fn wrapped_keys(&self) -> Result<Vec<WrappedKeyRecord>, StoreError>;

    /// Replaces the check value and every wrapped key in one transaction.
    ///
    /// Fails with [`StoreError::Conflict`] (and changes nothing) if the stored check
    /// value is no longer `rewrap.old_key_check` or `rewrap.keys` does not cover
    /// exactly the stored keys.
    async fn rewrap(&self, rewrap: &Rewrap) -> Result<(), StoreError>;
}

/// Sealed vault secrets.
#[async_trait]
pub trait VaultStore: Send + Sync {
    /// Inserts the secret or replaces its value; a replacement keeps the original
    /// `created_at`.
    async fn put_secret(&self, record: &SecretRecord) -> Result<(), StoreError>;

    /// The secret named `name`, or `None`.
    async fn secret(&self, name: &SecretName) -> Result<Option<SecretRecord>, StoreError>;

    /// Every secret, ordered by name.
    async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError>;

    /// Deletes the secret named `name`.
    async fn delete_secret(&self, name: &SecretName) -> Result<Removal, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_who_is_at_fault() {
        let boxed = || -> BoxError { "x".into() };
        assert_eq!(
            StoreError::Unavailable { source: boxed() }.kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            StoreError::NotFound { what: "x" }.kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            StoreError::Conflict { what: "x" }.kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            StoreError::Internal { source: boxed() }.kind(),
            ErrorKind::Internal
        );
        assert_eq!(StoreError::corrupt("x", "y").kind(), ErrorKind::Internal);
    }
}
