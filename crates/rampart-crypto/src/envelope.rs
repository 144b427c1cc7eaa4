//! AES-256-GCM envelopes that say which key sealed them.
//!
//! Every secret Rampart stores is sealed under a *data key*; data keys are themselves
//! stored wrapped (sealed) under a key-encryption key derived from the master key
//! ([`crate::kdf`]). Rotating a data key therefore never needs the master key to
//! change, and the key id in each envelope says which data key opens it.
//!
//! Sealed format, version 1 (all lengths in bytes):
//!
//! ```text
//! +---------+------------+------------+-----------+---------------------+
//! | version | key id len |   key id   |   nonce   |  ciphertext || tag  |
//! |  1 (=1) |     1      | 1..=64 B   |    12     |  plaintext len + 16 |
//! +---------+------------+------------+-----------+---------------------+
//! ```
//!
//! The GCM associated data is `version || key id len || key id || u64be(len(aad)) ||
//! aad`: the header is authenticated (changing the key id or version breaks the tag),
//! and the caller's AAD — typically the secret's name or the row it belongs to — is
//! bound so a ciphertext cannot be moved to another row. The length prefix keeps the
//! boundary between header and caller data from being shifted.
//!
//! Nonces are 96 random bits. NIST SP 800-38D §8.3 caps random-nonce use at 2^32
//! messages per key; data keys are rotated long before that.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};

use crate::random::{self, RandomError};
use crate::secret::{SecretArray, SecretBytes};

/// The only envelope format version this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

/// AES-GCM nonce length (96 bits, the size GCM is designed for).
pub const NONCE_LEN: usize = 12;

/// AES-GCM authentication tag length.
pub const TAG_LEN: usize = 16;

/// Length of a data key in bytes (AES-256).
pub const DATA_KEY_LEN: usize = 32;

/// Domain label mixed into the AAD of wrapped data keys, so a wrapped key can never
/// be mistaken for an ordinary sealed secret (or vice versa).
const WRAP_AAD_LABEL: &[u8] = b"rampart-data-key-v1:";

/// Why sealing or opening failed.
///
/// Opening deliberately does not distinguish a wrong key from wrong AAD or tampering:
/// GCM cannot tell them apart, and guessing would mislead the operator.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than the smallest valid envelope, or a header field runs past the end.
    #[error("sealed data is truncated")]
    Truncated,
    /// A version byte this build does not understand.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// The key id is empty, too long or has characters outside `A-Za-z0-9._:-`.
    #[error(
        "invalid key id: 1 to {MAX_KEY_ID_LEN} characters from A-Z, a-z, 0-9, '.', '_', ':', '-'"
    )]
    InvalidKeyId,
    /// The envelope names a different key from the one supplied.
    #[error("the data was sealed with key {found:?}, not with key {expected:?}")]
    KeyMismatch {
        /// The id of the key supplied.
        expected: String,
        /// The id recorded in the envelope.
        found: String,
    },
    /// Authentication failed: wrong key material, wrong associated data, or the
    /// envelope was modified.
    #[error("decryption failed: wrong key, wrong associated data, or the data was modified")]
    Decrypt,
    /// The plaintext or associated data exceed AES-GCM's limits.
    #[error("plaintext or associated data too large to seal")]
    TooLarge,
    /// A wrapped data key did not decrypt to exactly 32 bytes.
    #[error("a wrapped data key must decrypt to {DATA_KEY_LEN} bytes")]
    WrappedKeyLength,
    /// No randomness for the nonce or a new key.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The name of a data key, recorded in every envelope it seals.
///
/// Not secret. Restricted to a small printable alphabet so it can appear in logs,
/// file names and SQL without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id: 1 to 64 characters from `A-Za-z0-9._:-`.
    pub fn new(id: impl Into<String>) -> Result<Self, EnvelopeError> {
        let id = id.into();
        if is_valid_key_id(id.as_bytes()) {
            Ok(Self(id))
        } else {
            Err(EnvelopeError::InvalidKeyId)
        }
    }

    /// A fresh random id, `dk-` followed by 96 random bits in base64url.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(format!("dk-{}", random::token::<12>()?)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyId {
    type Err = EnvelopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An AES-256 data key and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct DataKey {
    /// The key's name, written into every envelope it seals.
    pub id: KeyId,
    /// The key material.
    pub key: SecretArray<DATA_KEY_LEN>,
}

impl DataKey {
    /// Pairs an id with existing key material.
    pub fn new(id: KeyId, key: SecretArray<DATA_KEY_LEN>) -> Self {
        Self { id, key }
    }

    /// A new random key with a new random id.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self {
            id: KeyId::generate()?,
            key: SecretArray::new(random::bytes::<DATA_KEY_LEN>()?),
        })
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Seals `plaintext` under `key`, binding `aad` (not stored; the opener must supply
/// the same bytes). A fresh random nonce is used for every call.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    seal_raw(key.key.expose_secret(), key.id.as_str(), aad, plaintext)
}

/// The id of the key that sealed `sealed`, read from the (unauthenticated) header.
///
/// Use it to pick the key; [`open`] then authenticates the header along with the
/// ciphertext, so a forged id only leads to a failed open.
pub fn key_id(sealed: &[u8]) -> Result<&str, EnvelopeError> {
    Ok(parse(sealed)?.key_id)
}

/// Opens an envelope made by [`seal`] with the same key and AAD.
///
/// Any mismatch — wrong key, wrong AAD, a flipped bit, a truncated buffer — is an
/// error; no partial or unauthenticated plaintext is ever returned.
pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, EnvelopeError> {
    let parsed = parse(sealed)?;
    if parsed.key_id != key.id.as_str() {
        return Err(EnvelopeError::KeyMismatch {
            expected: key.id.as_str().to_owned(),
            found: parsed.key_id.to_owned(),
        });
    }
    open_parsed(key.key.expose_secret(), &parsed, aad)
}

/// Seals a data key under a key-encryption key for storage.
///
/// The envelope's key id is the *data key's* id (so [`key_id`] on the stored blob
/// says which data key it holds), and `purpose` is bound as AAD so a key wrapped for
/// one purpose cannot be unwrapped as another's.
pub fn wrap_data_key(
    kek: &SecretArray<DATA_KEY_LEN>,
    data_key: &DataKey,
    purpose: &str,
) -> Result<Vec<u8>, EnvelopeError> {
    seal_raw(
        kek.expose_secret(),
        data_key.id.as_str(),
        &wrap_aad(purpose),
        data_key.key.expose_secret(),
    )
}

/// Opens a data key sealed by [`wrap_data_key`] with the same KEK and purpose.
pub fn unwrap_data_key(
    kek: &SecretArray<DATA_KEY_LEN>,
    wrapped: &[u8],
    purpose: &str,
) -> Result<DataKey, EnvelopeError> {
    let parsed = parse(wrapped)?;
    let plain = open_parsed(kek.expose_secret(), &parsed, &wrap_aad(purpose))?;
    let bytes: [u8; DATA_KEY_LEN] = plain
        .expose_secret()
        .try_into()
        .map_err(|_| EnvelopeError::WrappedKeyLength)?;
    Ok(DataKey {
        id: KeyId::new(parsed.key_id)?,
        key: SecretArray::new(bytes),
    })
}

/// A parsed but not yet authenticated envelope, borrowing from the input.
struct Parsed<'a> {
    header: &'a [u8],
    key_id: &'a str,
    nonce: &'a [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

fn parse(sealed: &[u8]) -> Result<Parsed<'_>, EnvelopeError> {
    let (&version, rest) = sealed.split_first().ok_or(EnvelopeError::Truncated)?;
    if version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    let (&id_len, rest) = rest.split_first().ok_or(EnvelopeError::Truncated)?;
    let id_len = usize::from(id_len);
    let key_id = rest.get(..id_len).ok_or(EnvelopeError::Truncated)?;
    if !is_valid_key_id(key_id) {
        return Err(EnvelopeError::InvalidKeyId);
    }
    // Validated as ASCII just above, so this cannot fail; map it anyway.
    let key_id = std::str::from_utf8(key_id).map_err(|_| EnvelopeError::InvalidKeyId)?;
    let rest = &rest[id_len..];
    let (nonce, ciphertext) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(EnvelopeError::Truncated)?;
    if ciphertext.len() < TAG_LEN {
        return Err(EnvelopeError::Truncated);
    }
    Ok(Parsed {
        header: &sealed[..2 + id_len],
        key_id,
        nonce,
        ciphertext,
    })
}

fn seal_raw(
    key: &[u8; DATA_KEY_LEN],
    key_id: &str,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let id_len = u8::try_from(key_id.len()).map_err(|_| EnvelopeError::InvalidKeyId)?;
    if !is_valid_key_id(key_id.as_bytes()) {
        return Err(EnvelopeError::InvalidKeyId);
    }
    let nonce = random::bytes::<NONCE_LEN>()?;

    let mut out = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(ENVELOPE_VERSION);
    out.push(id_len);
    out.extend_from_slice(key_id.as_bytes());
    let full_aad = associated_data(&out, aad);

    let cipher = Aes256Gcm::new(key.into());
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &full_aad,
            },
        )
        .map_err(|_| EnvelopeError::TooLarge)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open_parsed(
    key: &[u8; DATA_KEY_LEN],
    parsed: &Parsed<'_>,
    aad: &[u8],
) -> Result<SecretBytes, EnvelopeError> {
    let full_aad = associated_data(parsed.header, aad);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            &Nonce::from(*parsed.nonce),
            Payload {
                msg: parsed.ciphertext,
                aad: &full_aad,
            },
        )
        .map(SecretBytes::new)
        .map_err(|_| EnvelopeError::Decrypt)
}

/// `header || u64be(len(aad)) || aad`. The header is self-delimiting (its length is
/// inside it) and the caller's AAD is length-prefixed, so no two different
/// (header, aad) pairs produce the same bytes.
fn associated_data(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 8 + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&(aad.len() as u64).to_be_bytes());
    out.extend_from_slice(aad);
    out
}

fn wrap_aad(purpose: &str) -> Vec<u8> {
    let mut aad = WRAP_AAD_LABEL.to_vec();
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

fn is_valid_key_id(id: &[u8]) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(id: &str, byte: u8) -> DataKey {
        DataKey::new(KeyId::new(id).unwrap(), SecretArray::new([byte; 32]))
    }

    #[test]
    fn round_trip() {
        let k = DataKey::generate().unwrap();
        let sealed = seal(&k, b"secret:db-password", b"hunter2").unwrap();
        assert_eq!(key_id(&sealed).unwrap(), k.id.as_str());
        let opened = open(&k, b"secret:db-password", &sealed).unwrap();
        assert_eq!(opened.expose_secret(), b"hunter2");
    }

    #[test]
    fn empty_plaintext_and_aad_round_trip() {
        let k = key("k1", 1);
        let sealed = seal(&k, b"", b"").unwrap();
        assert_eq!(sealed.len(), 2 + 2 + NONCE_LEN + TAG_LEN);
        assert!(open(&k, b"", &sealed).unwrap().is_empty());
    }

    #[test]
    fn layout_matches_the_documented_format() {
        let k = key("k-7", 1);
        let sealed = seal(&k, b"a", b"xyz").unwrap();
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert_eq!(sealed[1], 3);
        assert_eq!(&sealed[2..5], b"k-7");
        assert_eq!(sealed.len(), 5 + NONCE_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn nonces_are_fresh() {
        let k = key("k1", 1);
        let a = seal(&k, b"", b"same").unwrap();
        let b = seal(&k, b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn swapping_aad_fails() {
        // A ciphertext stored for secret A must not open as secret B.
        let k = key("k1", 1);
        let sealed = seal(&k, b"secret:A", b"value of A").unwrap();
        assert!(matches!(
            open(&k, b"secret:B", &sealed),
            Err(EnvelopeError::Decrypt)
        ));
        assert!(matches!(
            open(&k, b"", &sealed),
            Err(EnvelopeError::Decrypt)
        ));
    }

    #[test]
    fn wrong_key_material_fails() {
        let k = key("k1", 1);
        let impostor = key("k1", 2);
        let sealed = seal(&k, b"aad", b"data").unwrap();
        assert!(matches!(
            open(&impostor, b"aad", &sealed),
            Err(EnvelopeError::Decrypt)
        ));
    }

    #[test]
    fn wrong_key_id_is_reported_before_decrypting() {
        let sealed = seal(&key("k1", 1), b"aad", b"data").unwrap();
        let err = open(&key("k2", 1), b"aad", &sealed).unwrap_err();
        match err {
            EnvelopeError::KeyMismatch { expected, found } => {
                assert_eq!(expected, "k2");
                assert_eq!(found, "k1");
            }
            other => panic!("expected KeyMismatch, got {other:?}"),
        }
    }

    #[test]
    fn every_bit_flip_fails() {
        let k = key("key-1", 9);
        let sealed = seal(&k, b"aad", b"sixteen byte msg").unwrap();
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[byte] ^= 1 << bit;
                assert!(
                    open(&k, b"aad", &tampered).is_err(),
                    "flip of bit {bit} in byte {byte} was accepted"
                );
            }
        }
    }

    #[test]
    fn every_truncation_fails_without_panicking() {
        let k = key("key-1", 9);
        let sealed = seal(&k, b"aad", b"some plaintext").unwrap();
        for len in 0..sealed.len() {
            assert!(open(&k, b"aad", &sealed[..len]).is_err(), "length {len}");
            // key_id() must not panic either, whatever it returns.
            let _ = key_id(&sealed[..len]);
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(open(&k, b"aad", &extended).is_err());
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(matches!(key_id(&[]), Err(EnvelopeError::Truncated)));
        assert!(matches!(
            key_id(&[2, 1, b'k']),
            Err(EnvelopeError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            key_id(&[1, 0, 0, 0]),
            Err(EnvelopeError::InvalidKeyId)
        ));
        let mut bad_char = vec![1, 1, b'/'];
        bad_char.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        assert!(matches!(
            key_id(&bad_char),
            Err(EnvelopeError::InvalidKeyId)
        ));
        assert!(matches!(
            key_id(&[1, 5, b'a', b'b']),
            Err(EnvelopeError::Truncated)
        ));
    }

    #[test]
    fn key_ids_are_validated() {
        assert!(KeyId::new("dk-2024.01_a:b").is_ok());
        assert!(KeyId::new("").is_err());
        assert!(KeyId::new("a".repeat(65)).is_err());
        assert!(KeyId::new("a b").is_err());
        assert!(KeyId::new("é").is_err());
        let generated = KeyId::generate().unwrap();
        assert!(KeyId::new(generated.as_str()).is_ok());
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let k = key("k1", 0xab);
        let text = format!("{k:?}");
        assert!(text.contains("k1"));
        assert!(!text.contains("171"), "{text}");
    }

    #[test]
    fn data_keys_wrap_and_unwrap() {
        let kek = SecretArray::new([7u8; 32]);
        let dk = DataKey::generate().unwrap();
        let wrapped = wrap_data_key(&kek, &dk, "vault").unwrap();
        assert_eq!(key_id(&wrapped).unwrap(), dk.id.as_str());
        let back = unwrap_data_key(&kek, &wrapped, "vault").unwrap();
        assert_eq!(back.id, dk.id);
        assert_eq!(back.key.expose_secret(), dk.key.expose_secret());
    }

    #[test]
    fn wrapped_keys_are_bound_to_kek_and_purpose() {
        let kek = SecretArray::new([7u8; 32]);
        let dk = DataKey::generate().unwrap();
        let wrapped = wrap_data_key(&kek, &dk, "vault").unwrap();
        assert!(matches!(
            unwrap_data_key(&kek, &wrapped, "pii"),
            Err(EnvelopeError::Decrypt)
        ));
        assert!(matches!(
            unwrap_data_key(&SecretArray::new([8u8; 32]), &wrapped, "vault"),
            Err(EnvelopeError::Decrypt)
        ));
        // A wrapped key is not an ordinary envelope: opening it as one fails.
        let as_data_key = DataKey::new(dk.id.clone(), kek.clone());
        assert!(open(&as_data_key, b"vault", &wrapped).is_err());
    }

    #[test]
    fn wrapped_key_of_the_wrong_length_is_refused() {
        let kek = SecretArray::new([7u8; 32]);
        let impostor = DataKey::new(KeyId::new("k").unwrap(), kek.clone());
        let short = seal(&impostor, &wrap_aad("vault"), &[0u8; 31]).unwrap();
        assert!(matches!(
            unwrap_data_key(&kek, &short, "vault"),
            Err(EnvelopeError::WrappedKeyLength)
        ));
    }

    proptest! {
        #[test]
        fn prop_round_trip(
            id in "[A-Za-z0-9._:-]{1,64}",
            key_bytes in any::<[u8; 32]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..128),
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let k = DataKey::new(KeyId::new(id.as_str()).unwrap(), SecretArray::new(key_bytes));
            let sealed = seal(&k, &aad, &plaintext).unwrap();
            prop_assert_eq!(key_id(&sealed).unwrap(), id.as_str());
            let opened = open(&k, &aad, &sealed).unwrap();
            prop_assert_eq!(opened.expose_secret(), plaintext.as_slice());
        }

        #[test]
        fn prop_arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let k = key("k1", 1);
            let _ = key_id(&bytes);
            prop_assert!(open(&k, b"", &bytes).is_err());
        }
    }
}
