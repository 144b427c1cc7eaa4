//! Vault secrets for header injection (F-INJECT), cached briefly in memory.
//!
//! Reading a secret is a database read and a decryption; doing that on every
//! proxied request would put the database on the hot path. Values are cached for
//! [`SECRET_TTL`] as `SecretString`s (zeroized on drop, never printed), so a rotated
//! secret reaches upstream requests within that time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rampart_core::vault::{SecretName, Vault, VaultError};
use rampart_crypto::SecretString;

/// How long a decrypted secret is reused.
pub const SECRET_TTL: Duration = Duration::from_secs(30);

/// A short-lived cache over the vault.
pub struct SecretCache {
    vault: Arc<Vault>,
    entries: DashMap<String, (SecretString, Instant)>,
}

impl SecretCache {
    /// A cache over `vault`.
    pub fn new(vault: Arc<Vault>) -> Self {
        Self {
            vault,
            entries: DashMap::new(),
        }
    }

    /// The secret named `name`. A missing secret or a vault failure is an error: the
    /// request is refused rather than sent without its credential.
    pub async fn get(&self, name: &SecretName) -> Result<SecretString, VaultError> {
        if let Some(entry) = self.entries.get(name.as_str())
            && entry.1.elapsed() < SECRET_TTL
        {
            return Ok(entry.0.clone());
        }
        let value = self.vault.get(name).await?;
        self.entries
            .insert(name.as_str().to_owned(), (value.clone(), Instant::now()));
        Ok(value)
    }
}
