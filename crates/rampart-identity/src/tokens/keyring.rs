//! The EdDSA signing keyring, persisted (F-JWT, F-ROTATE).
//!
//! Keys live in the `jwt_signing_keys` table: the public key in the clear, the PKCS#8
//! private key sealed under the JwtSigning data key with the kid bound as associated
//! data (a sealed key copied onto another row does not open). Exactly one key is
//! active; rotated-out keys keep verifying until their `valid_until` (rotation time +
//! `jwt.rotation_grace`, at least the access-token lifetime), so a rotation logs
//! nobody out.
//!
//! At first start the keyring is empty: the key in `jwt.signing_key_path` is imported
//! as the first active key if configured, else a key is generated. With
//! `jwt.danger_ephemeral_keys` (dev only) the keyring is a fresh in-memory key and
//! nothing is stored.
//!
//! Other processes (replicas, and `rampart keys rotate --signing` run from a shell)
//! change the stored keyring; a running server picks changes up by reloading
//! (a) when a token names a kid it does not know — at most once per
//! [`FORCED_RELOAD_INTERVAL`], so garbage kids cannot turn into a database flood — and
//! (b) every [`REFRESH_INTERVAL`] in the background, so it starts signing with a new
//! active key and stops publishing expired ones.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ed25519_dalek::VerifyingKey;
use rampart_config::JwtConfig;
use rampart_core::Clock;
use rampart_core::identity::session::{SigningKeyRecord, SigningKeyStore};
use rampart_core::keys::{DataKeys, KeyPurpose};
use rampart_core::store::StoreError;
use rampart_crypto::envelope;
use rampart_crypto::jwt::{JwtError, JwtSigningKey, Keyring, PreviousKey};
use rampart_crypto::{KeyId, SecretString};
use time::OffsetDateTime;

use super::TokenError;

/// Least time between two reloads caused by an unknown kid.
pub const FORCED_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// How often a server reloads the keyring in the background.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Domain separation for the sealed private keys.
const AAD_LABEL: &str = "rampart-jwt-key-v1:";

/// Where the keyring lives.
enum Backing {
    /// In the database, sealed.
    Stored {
        store: Arc<dyn SigningKeyStore>,
        keys: Arc<DataKeys>,
    },
    /// In memory only (`jwt.danger_ephemeral_keys`).
    Ephemeral,
}

/// The signing keyring of this process, reloadable from the store.
pub struct SigningKeys {
    backing: Backing,
    ring: ArcSwap<Keyring>,
    clock: Arc<dyn Clock>,
    grace: Duration,
    last_forced: Mutex<Option<Instant>>,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key that signed until now.
    pub previous_kid: String,
    /// The new active key.
    pub active_kid: String,
    /// Until when tokens signed by the previous key are accepted.
    pub previous_valid_until: OffsetDateTime,
}

/// One key as listed (never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// `None` for the active key.
    pub valid_until: Option<OffsetDateTime>,
}

impl SigningKeys {
    /// Loads (or creates on first start) the keyring described by `[jwt]`.
    pub async fn open(
        config: &JwtConfig,
        store: Arc<dyn SigningKeyStore>,
        keys: Arc<DataKeys>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TokenError> {
        if config.danger_ephemeral_keys {
            let ring = Keyring::new(JwtSigningKey::generate()?);
            return Ok(Self::with(
                Backing::Ephemeral,
                ring,
                clock,
                config.rotation_grace,
            ));
        }
        let backing = Backing::Stored { store, keys };
        let mut records = backing_records(&backing).await?;
        if records.is_empty() {
            let first = match &config.signing_key_path {
                Some(path) => import(path)?,
                None => JwtSigningKey::generate()?,
            };
            let Backing::Stored { store, keys } = &backing else {
                return Err(TokenError::Internal("keyring backing"));
            };
            let record = seal_record(keys, &first, clock.now())?;
            match store.insert_first_signing_key(&record).await {
                Ok(()) => {
                    tracing::info!(
                        kid = first.kid(),
                        imported = config.signing_key_path.is_some(),
                        "JWT signing keyring created"
                    );
                }
                // Another replica created the first key at the same time: use its.
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            records = backing_records(&backing).await?;
        } else if let Some(path) = &config.signing_key_path {
            let file_kid = import(path)?.kid().to_owned();
            if !records.iter().any(|r| r.kid == file_kid) {
                tracing::warn!(
                    "jwt.signing_key_path holds a key that is not in the stored keyring; it is only imported into an empty keyring. Rotate with `rampart keys rotate --signing`"
                );
            }
        }
        let ring = build(&backing, &records)?;
        Ok(Self::with(backing, ring, clock, config.rotation_grace))
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.ring.load_full()
    }

    /// Reloads the keyring from the store (no-op for ephemeral keys).
    pub async fn reload(&self) -> Result<(), TokenError> {
        if let Backing::Ephemeral = self.backing {
            return Ok(());
        }
        let records = backing_records(&self.backing).await?;
        let ring = build(&self.backing, &records)?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }

    /// Reloads because a token named an unknown kid, unless that happened less than
    /// [`FORCED_RELOAD_INTERVAL`] ago. Returns whether it reloaded.
    pub async fn reload_for_unknown_kid(&self) -> Result<bool, TokenError> {
        {
            let mut last = self
                .last_forced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < FORCED_RELOAD_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        self.reload().await?;
        Ok(true)
    }

    /// Makes a new key active; the previous one verifies for `jwt.rotation_grace`.
    /// Keys whose grace has ended are deleted.
    pub async fn rotate(&self) -> Result<Rotation, TokenError> {
        let now = self.clock.now();
        let new = JwtSigningKey::generate()?;
        let previous_kid = self.keyring().active().kid().to_owned();
        let previous_valid_until = now + self.grace;
        match &self.backing {
            Backing::Ephemeral => {
                let mut ring = Keyring::with_previous(
                    clone_key(self.keyring().active())?,
                    self.keyring().previous().to_vec(),
                );
                ring.rotate(new, self.grace.as_secs(), now.unix_timestamp());
                self.ring.store(Arc::new(ring));
                Ok(Rotation {
                    previous_kid,
                    active_kid: self.keyring().active().kid().to_owned(),
                    previous_valid_until,
                })
            }
            Backing::Stored { store, keys } => {
                // Read the active kid from the store, not from memory: another process
                // may have rotated since this one last loaded.
                self.reload().await?;
                let previous_kid = self.keyring().active().kid().to_owned();
                let record = seal_record(keys, &new, now)?;
                store
                    .rotate_signing_key(&previous_kid, now, previous_valid_until, &record, now)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict { .. } => TokenError::ConcurrentRotation,
                        other => other.into(),
                    })?;
                self.reload().await?;
                Ok(Rotation {
                    previous_kid,
                    active_kid: new.kid().to_owned(),
                    previous_valid_until,
                })
            }
        }
    }

    /// Every key: the active one and those still within their grace.
    pub fn list(&self) -> Vec<KeyInfo> {
        let ring = self.keyring();
        let mut out = vec![KeyInfo {
            kid: ring.active().kid().to_owned(),
            valid_until: None,
        }];
        out.extend(ring.previous().iter().map(|p| KeyInfo {
            kid: p.kid.clone(),
            valid_until: OffsetDateTime::from_unix_timestamp(p.valid_until_unix).ok(),
        }));
        out
    }

    /// Starts the background refresh. The task holds only a weak reference and ends
    /// when the keyring is dropped (server shutdown).
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(keys) = weak.upgrade() else { return };
                if let Err(error) = keys.reload().await {
                    tracing::warn!(%error, "could not reload the JWT signing keyring; keeping the current one");
                }
            }
        })
    }

    fn with(backing: Backing, ring: Keyring, clock: Arc<dyn Clock>, grace: Duration) -> Self {
        Self {
            backing,
            ring: ArcSwap::from_pointee(ring),
            clock,
            grace,
            last_forced: Mutex::new(None),
        }
    }
}

async fn backing_records(backing: &Backing) -> Result<Vec<SigningKeyRecord>, TokenError> {
    match backing {
        Backing::Stored { store, .. } => Ok(store.signing_keys().await?),
        Backing::Ephemeral => Ok(Vec::new()),
    }
}

/// The keyring from stored records: the active key opened, the others public only.
fn build(backing: &Backing, records: &[SigningKeyRecord]) -> Result<Keyring, TokenError> {
    let Backing::Stored { keys, .. } = backing else {
        return Err(TokenError::Internal("keyring backing"));
    };
    let mut active = None;
    let mut previous = Vec::new();
    for record in records {
        match record.valid_until {
            None => {
                if active.is_some() {
                    return Err(TokenError::Internal("more than one active signing key"));
                }
                active = Some(open_record(keys, record)?);
            }
            Some(valid_until) => {
                let bytes: [u8; 32] = record
                    .public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| TokenError::Internal("stored public key is not 32 bytes"))?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| TokenError::Internal("stored public key is invalid"))?;
                previous.push(PreviousKey {
                    key,
                    kid: record.kid.clone(),
                    valid_until_unix: valid_until.unix_timestamp(),
                });
            }
        }
    }
    let active = active.ok_or(TokenError::Internal("no active signing key"))?;
    Ok(Keyring::with_previous(active, previous))
}

fn seal_record(
    keys: &DataKeys,
    key: &JwtSigningKey,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, TokenError> {
    let pem = key.to_pkcs8_pem()?;
    let sealed = envelope::seal(
        keys.active(KeyPurpose::JwtSigning),
        aad(key.kid()).as_bytes(),
        pem.expose_secret().as_bytes(),
    )
    .map_err(|_| TokenError::Internal("sealing the signing key failed"))?;
    Ok(SigningKeyRecord {
        kid: key.kid().to_owned(),
        public_key: key.verifying_key().as_bytes().to_vec(),
        sealed_private: sealed,
        created_at: now,
        retired_at: None,
        valid_until: None,
    })
}

fn open_record(keys: &DataKeys, record: &SigningKeyRecord) -> Result<JwtSigningKey, TokenError> {
    let key_id = envelope::key_id(&record.sealed_private)
        .ok()
        .and_then(|id| KeyId::new(id).ok())
        .ok_or(TokenError::Internal("sealed signing key has no key id"))?;
    let data_key =
        keys.for_purpose(KeyPurpose::JwtSigning, &key_id)
            .ok_or(TokenError::Internal(
                "signing key sealed by an unknown data key",
            ))?;
    let plain = envelope::open(
        data_key,
        aad(&record.kid).as_bytes(),
        &record.sealed_private,
    )
    .map_err(|_| TokenError::Internal("stored signing key does not open"))?;
    let pem = SecretString::new(
        String::from_utf8(plain.expose_secret().to_vec())
            .map_err(|_| TokenError::Internal("stored signing key is not PEM"))?,
    );
    let key = JwtSigningKey::from_pkcs8_pem(&pem)?;
    if key.kid() != record.kid {
        return Err(TokenError::Internal(
            "stored signing key does not match its kid",
        ));
    }
    Ok(key)
}

fn import(path: &Path) -> Result<JwtSigningKey, TokenError> {
    let pem = rampart_crypto::secret_file::read_string(path)
        .map_err(|_| TokenError::Internal("cannot read jwt.signing_key_path"))?;
    Ok(JwtSigningKey::from_pkcs8_pem(&pem)?)
}

fn clone_key(key: &JwtSigningKey) -> Result<JwtSigningKey, JwtError> {
    JwtSigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()?)
}

fn aad(kid: &str) -> String {
    format!("{AAD_LABEL}{kid}")
}
