//! The key hierarchy: master key → per-purpose key-encryption keys → data keys
//! (F-MASTERKEY, F-INIT, F-ROTATE).
//!
//! ```text
//! master key (env or 0600 file; never stored)
//!   └─ HKDF-SHA256(master, "kek:<purpose>")  one KEK per purpose, never stored
//!        └─ AES-256-GCM wrap(data key, AAD = purpose)   stored in the database
//!             └─ AES-256-GCM seal(secret, AAD = row binding)  vault, PII, TOTP…
//! ```
//!
//! At initialization one random data key is generated per [`KeyPurpose`], wrapped, and
//! stored together with the master key's check value and its kind (operator or the
//! public development key). [`DataKeys::unseal`] reverses that at start, refusing —
//! before decrypting anything — a wrong master key, and in production a store that was
//! sealed with the development key. Rotating the master key ([`DataKeys::rewrap`])
//! re-wraps the data keys only; no secret is re-encrypted.
//!
//! Separate KEKs per purpose mean a wrapped key copied from one purpose's row to
//! another's does not unwrap (the purpose is also the wrap AAD), and a flaw in one
//! use of a key says nothing about another.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rampart_crypto::envelope::{self, EnvelopeError};
use rampart_crypto::kdf::{self, DERIVED_KEY_LEN};
use rampart_crypto::random::RandomError;
use rampart_crypto::{DataKey, KeyId, MasterKey, MasterKeyKind, SecretArray, ct_eq};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::ErrorKind;
use crate::store::{InstanceRecord, KeyStore, Rewrap, RewrappedKey, StoreError, WrappedKeyRecord};

/// What a data key is for. Each purpose has exactly one active key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPurpose {
    /// Personal data at rest (e-mail, display name).
    Pii,
    /// The keyed blind index over e-mail addresses.
    BlindIndex,
    /// The secret vault.
    Vault,
    /// TOTP seeds.
    Totp,
    /// Audit-log checkpoint signatures.
    AuditSigning,
    /// Session secrets (cookie signing, CSRF).
    Session,
    /// Wrapping of the JWT signing keys.
    JwtSigning,
}

impl KeyPurpose {
    /// Every purpose, in a fixed order.
    pub const ALL: [Self; 7] = [
        Self::Pii,
        Self::BlindIndex,
        Self::Vault,
        Self::Totp,
        Self::AuditSigning,
        Self::Session,
        Self::JwtSigning,
    ];

    /// The stable label stored in the database and bound into the key derivation
    /// and the wrap AAD. Renaming one makes every key of that purpose unreadable.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pii => kdf::purpose::PII,
            Self::BlindIndex => kdf::purpose::BLIND_INDEX,
            Self::Vault => kdf::purpose::VAULT,
            Self::Totp => kdf::purpose::TOTP,
            Self::AuditSigning => kdf::purpose::AUDIT_SIGNING,
            Self::Session => kdf::purpose::SESSION,
            Self::JwtSigning => kdf::purpose::JWT_SIGNING,
        }
    }

    /// The purpose with this label.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.label() == label)
    }

    /// Position in [`KeyPurpose::ALL`].
    fn index(self) -> usize {
        match self {
            Self::Pii => 0,
            Self::BlindIndex => 1,
            Self::Vault => 2,
            Self::Totp => 3,
            Self::AuditSigning => 4,
            Self::Session => 5,
            Self::JwtSigning => 6,
        }
    }

    /// The key-encryption key for this purpose. `kek:` keeps these derivations apart
    /// from any other use of the same label with HKDF (the blind index, say).
    fn kek(self, master: &MasterKey) -> SecretArray<DERIVED_KEY_LEN> {
        kdf::derive_key(master, &format!("kek:{}", self.label()))
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The label is not one of [`KeyPurpose::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key purpose")]
pub struct UnknownPurpose;

impl FromStr for KeyPurpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_label(s).ok_or(UnknownPurpose)
    }
}

/// Whether a store sealed with the public development key may be unsealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevSealPolicy {
    /// Production: refuse with [`KeyError::SealedWithDevelopmentKey`].
    Refuse,
    /// Dev mode: accept.
    Allow,
}

/// Why the key hierarchy could not be set up, opened or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No instance row: the data keys have not been generated yet.
    #[error("this instance is not initialized: no data keys have been generated yet")]
    NotInitialized,
    /// [`DataKeys::initialize`] found an instance already there.
    #[error("this instance is already initialized; its data keys were not replaced")]
    AlreadyInitialized,
    /// The master key's check value differs from the stored one, or a data key
    /// would not unwrap under it.
    #[error(
        "the master key does not match this data: check RAMPART_MASTER_KEY_HEX / \
         RAMPART_MASTER_KEY_PATH (or restore the key this database was sealed with)"
    )]
    MasterKeyMismatch,
    /// The store was sealed with the public development key and the caller is
    /// production.
    #[error(
        "this data was sealed with the public development master key, which production \
         refuses; in dev mode, rotate to a real key with `rampart keys rotate --master`, \
         or initialize a fresh database"
    )]
    SealedWithDevelopmentKey,
    /// A purpose has no active key, or more than one.
    #[error("stored data keys are inconsistent: {reason}")]
    Inconsistent {
        /// What is wrong.
        reason: String,
    },
    /// Another process rotated the master key at the same time.
    #[error("the data keys changed during the rotation; nothing was changed, retry")]
    ConcurrentChange,
    /// Sealing, wrapping or unwrapping failed for a reason other than a wrong key.
    #[error(transparent)]
    Envelope(EnvelopeError),
    /// No randomness for a new key.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl KeyError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            // Creating users before initialization, or initializing twice, conflicts
            // with the instance's state.
            Self::NotInitialized | Self::AlreadyInitialized | Self::ConcurrentChange => {
                ErrorKind::Conflict
            }
            Self::MasterKeyMismatch
            | Self::SealedWithDevelopmentKey
            | Self::Inconsistent { .. }
            | Self::Envelope(_)
            | Self::Random(_) => ErrorKind::Internal,
            Self::Store(e) => e.kind(),
        }
    }
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<EnvelopeError> for KeyError {
    fn from(e: EnvelopeError) -> Self {
        Self::Envelope(e)
    }
}

/// Metadata of one data key, for `rampart keys list`. Never holds key material,
/// wrapped or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id.
    pub id: KeyId,
    /// What it is for.
    pub purpose: KeyPurpose,
    /// When it was generated.
    pub created_at: OffsetDateTime,
    /// When it was retired, if it was.
    pub retired_at: Option<OffsetDateTime>,
}

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapReport {
    /// How many data keys were re-wrapped.
    pub keys: usize,
    /// The kind of the new master key.
    pub sealed_with: MasterKeyKind,
}

/// The unsealed data keys: the active key per purpose, and every key (retired ones
/// included) by id so old data still opens.
///
/// Hold it in an `Arc`; clones copy key material. `Debug` shows ids only.
#[derive(Clone)]
pub struct DataKeys {
    /// Indexed by [`KeyPurpose::index`]; complete by construction.
    active: [DataKey; KeyPurpose::ALL.len()],
    by_id: HashMap<KeyId, (KeyPurpose, DataKey)>,
    sealed_with: MasterKeyKind,
}

impl DataKeys {
    /// Generates one data key per purpose, wraps each under the master key and stores
    /// them with the instance record, atomically.
    ///
    /// Refuses with [`KeyError::AlreadyInitialized`] if the instance exists — also
    /// when another process wins a concurrent initialization — so there is never a
    /// second key set.
    pub async fn initialize(
        store: &dyn KeyStore,
        master: &MasterKey,
        clock: &dyn Clock,
    ) -> Result<Self, KeyError> {
        if store.instance().await?.is_some() {
            return Err(KeyError::AlreadyInitialized);
        }
        let now = clock.now();
        let mut records = Vec::with_capacity(KeyPurpose::ALL.len());
        let mut keys = Vec::with_capacity(KeyPurpose::ALL.len());
        for purpose in KeyPurpose::ALL {
            let key = DataKey::generate()?;
            records.push(WrappedKeyRecord {
                id: key.id.clone(),
                purpose,
                wrapped: envelope::wrap_data_key(&purpose.kek(master), &key, purpose.label())?,
                created_at: now,
                retired_at: None,
            });
            keys.push((purpose, key, None));
        }
        let instance = InstanceRecord {
            initialized_at: now,
            sealed_with: master.kind(),
            key_check: kdf::key_check_value(master).to_vec(),
        };
        match store.initialize(&instance, &records).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => return Err(KeyError::AlreadyInitialized),
            Err(e) => return Err(e.into()),
        }
        Self::assemble(keys, master.kind())
    }

    /// Opens the stored data keys with the master key.
    ///
    /// Checks, in this order, before decrypting anything: that the instance exists
    /// ([`KeyError::NotInitialized`]); that it was not sealed with the development key
    /// when `policy` refuses that ([`KeyError::SealedWithDevelopmentKey`] — checked
    /// first because it is the more useful message when production is pointed at a dev
    /// database with some other key); and that the master key's check value matches
    /// ([`KeyError::MasterKeyMismatch`]). A key that then fails to unwrap is also
    /// reported as a mismatch.
    pub async fn unseal(
        store: &dyn KeyStore,
        master: &MasterKey,
        policy: DevSealPolicy,
    ) -> Result<Self, KeyError> {
        let instance = store.instance().await?.ok_or(KeyError::NotInitialized)?;
        if instance.sealed_with == MasterKeyKind::Development && policy == DevSealPolicy::Refuse {
            return Err(KeyError::SealedWithDevelopmentKey);
        }
        if !ct_eq(&kdf::key_check_value(master), &instance.key_check) {
            return Err(KeyError::MasterKeyMismatch);
        }
        let mut keys = Vec::new();
        for record in store.wrapped_keys().await? {
            let key = unwrap_record(&record, master)?;
            keys.push((record.purpose, key, record.retired_at));
        }
        Self::assemble(keys, instance.sealed_with)
    }

    /// The key that seals new data for `purpose`.
    pub fn active(&self, purpose: KeyPurpose) -> &DataKey {
        &self.active[purpose.index()]
    }

    /// Any key, active or retired, by id.
    pub fn by_id(&self, id: &KeyId) -> Option<&DataKey> {
        self.by_id.get(id).map(|(_, key)| key)
    }

    /// The key `id` if — and only if — it belongs to `purpose`. Use it to open data,
    /// so an envelope naming another purpose's key is refused.
    pub fn for_purpose(&self, purpose: KeyPurpose, id: &KeyId) -> Option<&DataKey> {
        match self.by_id.get(id) {
            Some((p, key)) if *p == purpose => Some(key),
            _ => None,
        }
    }

    /// Which kind of master key sealed the keys.
    pub fn sealed_with(&self) -> MasterKeyKind {
        self.sealed_with
    }

    /// Metadata of every stored data key, oldest first. Needs no master key and
    /// returns no key material.
    pub async fn list_keys(store: &dyn KeyStore) -> Result<Vec<KeyInfo>, KeyError> {
        if store.instance().await?.is_none() {
            return Err(KeyError::NotInitialized);
        }
        Ok(store
            .wrapped_keys()
            .await?
            .into_iter()
            .map(|r| KeyInfo {
                id: r.id,
                purpose: r.purpose,
                created_at: r.created_at,
                retired_at: r.retired_at,
            })
            .collect())
    }

    /// Master-key rotation: re-wraps every data key from `old_master` to `new_master`
    /// in one transaction, and records the new key's check value and kind. Data sealed
    /// under the data keys is untouched (F-ROTATE).
    ///
    /// Rotating a development-sealed store to an operator key is how a dev database
    /// becomes acceptable to production.
    pub async fn rewrap(
        store: &dyn KeyStore,
        old_master: &MasterKey,
        new_master: &MasterKey,
        clock: &dyn Clock,
    ) -> Result<RewrapReport, KeyError> {
        let instance = store.instance().await?.ok_or(KeyError::NotInitialized)?;
        let old_check = kdf::key_check_value(old_master);
        if !ct_eq(&old_check, &instance.key_check) {
            return Err(KeyError::MasterKeyMismatch);
        }
        let mut rewrapped = Vec::new();
        for record in store.wrapped_keys().await? {
            let key = unwrap_record(&record, old_master)?;
            rewrapped.push(RewrappedKey {
                id: record.id,
                wrapped: envelope::wrap_data_key(
                    &record.purpose.kek(new_master),
                    &key,
                    record.purpose.label(),
                )?,
            });
        }
        let report = RewrapReport {
            keys: rewrapped.len(),
            sealed_with: new_master.kind(),
        };
        let rewrap = Rewrap {
            old_key_check: old_check.to_vec(),
            new_key_check: kdf::key_check_value(new_master).to_vec(),
            sealed_with: new_master.kind(),
            at: clock.now(),
            keys: rewrapped,
        };
        match store.rewrap(&rewrap).await {
            Ok(()) => Ok(report),
            Err(StoreError::Conflict { .. }) => Err(KeyError::ConcurrentChange),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that every purpose has exactly one active key and builds the set.
    fn assemble(
        keys: Vec<(KeyPurpose, DataKey, Option<OffsetDateTime>)>,
        sealed_with: MasterKeyKind,
    ) -> Result<Self, KeyError> {
        let mut active: [Option<DataKey>; KeyPurpose::ALL.len()] = Default::default();
        let mut by_id = HashMap::with_capacity(keys.len());
        for (purpose, key, retired_at) in keys {
            if retired_at.is_none() {
                let slot = &mut active[purpose.index()];
                if slot.is_some() {
                    return Err(KeyError::Inconsistent {
                        reason: format!("more than one active {purpose} key"),
                    });
                }
                *slot = Some(key.clone());
            }
            if by_id.insert(key.id.clone(), (purpose, key)).is_some() {
                return Err(KeyError::Inconsistent {
                    reason: "duplicate key id".to_owned(),
                });
            }
        }
        let mut complete = Vec::with_capacity(active.len());
        for (purpose, key) in KeyPurpose::ALL.into_iter().zip(active) {
            complete.push(key.ok_or_else(|| KeyError::Inconsistent {
                reason: format!("no active {purpose} key"),
            })?);
        }
        let active = complete
            .try_into()
            .map_err(|_: Vec<DataKey>| KeyError::Inconsistent {
                reason: "wrong number of purposes".to_owned(),
            })?;
        Ok(Self {
            active,
            by_id,
            sealed_with,
        })
    }
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let active: Vec<(KeyPurpose, &KeyId)> = KeyPurpose::ALL
            .into_iter()
            .map(|p| (p, &self.active(p).id))
            .collect();
        f.debug_struct("DataKeys")
            .field("active", &active)
            .field("keys", &self.by_id.len())
            .field("sealed_with", &self.sealed_with)
            .finish()
    }
}

/// Unwraps one stored key. A failure to authenticate means the KEK is wrong: the
/// master key does not match (or the row was altered, which GCM cannot tell apart).
fn unwrap_record(record: &WrappedKeyRecord, master: &MasterKey) -> Result<DataKey, KeyError> {
    let key = envelope::unwrap_data_key(
        &record.purpose.kek(master),
        &record.wrapped,
        record.purpose.label(),
    )
    .map_err(|e| match e {
        EnvelopeError::Decrypt => KeyError::MasterKeyMismatch,
        other => KeyError::Envelope(other),
    })?;
    // The envelope header's id is authenticated; the row's id column is not. A
    // mismatch means rows were shuffled.
    if key.id != record.id {
        return Err(KeyError::Inconsistent {
            reason: format!("data key row {} holds key {}", record.id, key.id),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn labels_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for p in KeyPurpose::ALL {
            assert_eq!(KeyPurpose::from_label(p.label()), Some(p));
            assert_eq!(p.to_string().parse::<KeyPurpose>(), Ok(p));
            assert_eq!(KeyPurpose::ALL[p.index()], p);
            assert!(seen.insert(p.label()));
        }
        assert_eq!("nope".parse::<KeyPurpose>(), Err(UnknownPurpose));
    }

    #[test]
    fn labels_are_the_on_disk_format() {
        // Changing any of these makes stored keys unreadable: this test is the alarm.
        let labels: Vec<&str> = KeyPurpose::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(
            labels,
            [
                "pii",
                "blind-index",
                "vault",
                "totp",
                "audit-signing",
                "session",
                "jwt-signing"
            ]
        );
    }

    #[test]
    fn each_purpose_has_its_own_kek() {
        let master = MasterKey::development();
        let keks: Vec<[u8; 32]> = KeyPurpose::ALL
            .iter()
            .map(|p| *p.kek(&master).expose_secret())
            .collect();
        for (i, a) in keks.iter().enumerate() {
            for b in &keks[i + 1..] {
                assert_ne!(a, b);
            }
            // "kek:vault" must not equal the bare "vault" derivation.
            assert_ne!(
                a,
                kdf::derive_key(&master, KeyPurpose::ALL[i].label()).expose_secret()
            );
        }
    }

    #[test]
    fn assemble_requires_one_active_key_per_purpose() {
        let mk = |p| (p, DataKey::generate().unwrap(), None);
        let full: Vec<_> = KeyPurpose::ALL.into_iter().map(mk).collect();
        let keys = DataKeys::assemble(full.clone(), MasterKeyKind::Operator).unwrap();
        for (p, key, _) in &full {
            assert_eq!(keys.active(*p).id, key.id);
            assert!(keys.for_purpose(*p, &key.id).is_some());
            assert!(keys.by_id(&key.id).is_some());
        }
        let vault_id = &keys.active(KeyPurpose::Vault).id;
        assert!(keys.for_purpose(KeyPurpose::Pii, vault_id).is_none());

        let missing: Vec<_> = full[1..].to_vec();
        assert!(matches!(
            DataKeys::assemble(missing, MasterKeyKind::Operator),
            Err(KeyError::Inconsistent { .. })
        ));
        let mut twice = full.clone();
        twice.push(mk(KeyPurpose::Vault));
        assert!(matches!(
            DataKeys::assemble(twice, MasterKeyKind::Operator),
            Err(KeyError::Inconsistent { .. })
        ));
        let mut retired = full;
        retired.push((
            KeyPurpose::Vault,
            DataKey::generate().unwrap(),
            Some(OffsetDateTime::UNIX_EPOCH),
        ));
        let keys = DataKeys::assemble(retired.clone(), MasterKeyKind::Operator).unwrap();
        assert!(keys.by_id(&retired[7].1.id).is_some());
    }

    #[test]
    fn debug_shows_ids_not_material() {
        let full: Vec<_> = KeyPurpose::ALL
            .into_iter()
            .map(|p| (p, DataKey::generate().unwrap(), None))
            .collect();
        let keys = DataKeys::assemble(full, MasterKeyKind::Operator).unwrap();
        let text = format!("{keys:?}");
        assert!(text.contains("dk-"), "{text}");
        assert!(!text.contains("key:"), "{text}");
    }

    #[test]
    fn error_kinds() {
        assert_eq!(KeyError::NotInitialized.kind(), ErrorKind::Conflict);
        assert_eq!(KeyError::MasterKeyMismatch.kind(), ErrorKind::Internal);
        assert_eq!(
            KeyError::Store(StoreError::NotFound { what: "x" }).kind(),
            ErrorKind::NotFound
        );
        assert!(
            KeyError::MasterKeyMismatch
                .to_string()
                .contains("the master key does not match this data")
        );
    }
}
