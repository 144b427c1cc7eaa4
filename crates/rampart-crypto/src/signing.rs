//! Ed25519 signatures over plain bytes (RFC 8032), for things that are not JWTs:
//! audit-log checkpoints today.
//!
//! The signer is built from a 32-byte seed — in Rampart, a data key of its own purpose
//! (`KeyPurpose::AuditSigning`) — so the key is stored wrapped like every other data
//! key and needs no separate file. Verification uses `verify_strict`, which refuses
//! small-order public keys and non-canonical signatures: a verified signature has
//! exactly one encoding, so a log cannot be "re-signed" by re-encoding.
//!
//! A public key is named by its [`PublicKey::fingerprint`]: the first 16 bytes of
//! SHA-256 over a domain label and the key, in hex. It lets a verifier pick the right
//! key from several (after rotation) and tell an operator which key signed something
//! without printing 64 hex characters; it is never trusted on its own — the signature
//! is always verified with the full key.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::secret::SecretArray;

/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Length of the seed (RFC 8032 private key) in bytes.
pub const SEED_LEN: usize = 32;

/// Domain label hashed before the key for its fingerprint, so the fingerprint cannot
/// be confused with any other SHA-256 of the same 32 bytes (e.g. a JWK thumbprint
/// input or a hash-chain link).
const FINGERPRINT_LABEL: &[u8] = b"rampart-ed25519-public-key-v1:";

/// Why a key or signature was refused. Messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 64 lowercase or uppercase hex digits, or not a valid curve point.
    #[error(
        "invalid Ed25519 public key: expected {PUBLIC_KEY_LEN} bytes (64 hex digits) encoding a curve point"
    )]
    InvalidPublicKey,
    /// Not 128 hex digits / 64 bytes.
    #[error("invalid Ed25519 signature encoding: expected {SIGNATURE_LEN} bytes (128 hex digits)")]
    InvalidEncoding,
    /// The signature does not verify under the key: forged, altered, or made by
    /// another key.
    #[error("the Ed25519 signature does not verify")]
    BadSignature,
}

/// An Ed25519 signing key. `Debug` shows the public key's fingerprint only; the
/// private key is zeroized on drop (ed25519-dalek `zeroize` feature).
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// The key whose RFC 8032 private key (seed) is `seed`.
    pub fn from_seed(seed: &SecretArray<SEED_LEN>) -> Self {
        Self {
            key: SigningKey::from_bytes(seed.expose_secret()),
        }
    }

    /// Signs `message`. Ed25519 is deterministic: the same key and message always
    /// give the same signature, so signing needs no randomness and cannot fail.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.key.sign(message).to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    /// The public key's 32 bytes.
    pub fn public_key_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, [redacted])", self.public_key().fingerprint())
    }
}

/// An Ed25519 public key, checked to be a valid curve point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// Parses 32 bytes. Refuses encodings that are not a curve point.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, SignatureError> {
        VerifyingKey::from_bytes(bytes)
            .map(|key| Self { key })
            .map_err(|_| SignatureError::InvalidPublicKey)
    }

    /// Parses 64 hex digits (either case), e.g. from `rampart audit verify
    /// --public-key`.
    pub fn from_hex(text: &str) -> Result<Self, SignatureError> {
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| SignatureError::InvalidPublicKey)?;
        Self::from_bytes(&bytes)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.to_bytes()
    }

    /// The key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    /// The key's name: 32 lowercase hex digits, the first 16 bytes of
    /// `SHA-256("rampart-ed25519-public-key-v1:" || key)`.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(FINGERPRINT_LABEL);
        hasher.update(self.key.as_bytes());
        let digest = hasher.finalize();
        hex::encode(&digest[..16])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// A 64-byte Ed25519 signature. Not secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps 64 bytes. Whether they are a *valid* signature is only known to
    /// [`verify`].
    pub fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses 128 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Self, SignatureError> {
        let mut bytes = [0u8; SIGNATURE_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| SignatureError::InvalidEncoding)?;
        Ok(Self(bytes))
    }

    /// The 64 bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }

    /// The signature as 128 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// Checks that `signature` is `public`'s signature over `message`.
///
/// Strict (RFC 8032 §5.1.7 plus the checks of `verify_strict`): small-order keys and
/// non-canonical `S` values are refused, so no second encoding of a signature
/// verifies.
pub fn verify(
    public: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    public
        .key
        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
        .map_err(|_| SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1, TEST 1 (empty message).
    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC8032_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                                     5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    /// RFC 8032 §7.1, TEST 2 (one byte, 0x72).
    const RFC8032_SEED_2: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
    const RFC8032_PUBLIC_2: &str =
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    const RFC8032_SIGNATURE_2: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                                       085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

    fn signer(seed_hex: &str) -> Signer {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(seed_hex, &mut seed).unwrap();
        Signer::from_seed(&SecretArray::new(seed))
    }

    #[test]
    fn rfc8032_vectors() {
        for (seed, public, message, signature) in [
            (RFC8032_SEED, RFC8032_PUBLIC, &b""[..], RFC8032_SIGNATURE),
            (
                RFC8032_SEED_2,
                RFC8032_PUBLIC_2,
                &[0x72u8][..],
                RFC8032_SIGNATURE_2,
            ),
        ] {
            let key = signer(seed);
            assert_eq!(hex::encode(key.public_key_bytes()), public);
            assert_eq!(key.public_key().to_hex(), public);
            let sig = key.sign(message);
            assert_eq!(sig.to_hex(), signature);
            let public = PublicKey::from_hex(public).unwrap();
            verify(&public, message, &Signature::from_hex(signature).unwrap()).unwrap();
        }
    }

    #[test]
    fn altered_message_signature_or_key_is_refused() {
        let key = signer(RFC8032_SEED);
        let other = signer(RFC8032_SEED_2);
        let sig = key.sign(b"checkpoint 1000");
        assert_eq!(
            verify(&key.public_key(), b"checkpoint 1001", &sig),
            Err(SignatureError::BadSignature)
        );
        let mut flipped = sig.to_bytes();
        flipped[10] ^= 1;
        assert_eq!(
            verify(
                &key.public_key(),
                b"checkpoint 1000",
                &Signature::from_bytes(flipped)
            ),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&other.public_key(), b"checkpoint 1000", &sig),
            Err(SignatureError::BadSignature)
        );
        verify(&key.public_key(), b"checkpoint 1000", &sig).unwrap();
    }

    #[test]
    fn non_canonical_signature_is_refused() {
        // S + L (the group order) is the same signature mathematically, but a second
        // encoding; verify_strict must refuse it so signatures are not malleable.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x10,
        ];
        let key = signer(RFC8032_SEED);
        let sig = key.sign(b"m").to_bytes();
        let mut s_plus_l = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            s_plus_l[32 + i] = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            verify(&key.public_key(), b"m", &Signature::from_bytes(s_plus_l)),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn malformed_encodings_are_refused() {
        assert_eq!(
            PublicKey::from_hex("abcd"),
            Err(SignatureError::InvalidPublicKey)
        );
        assert_eq!(
            PublicKey::from_hex(&"zz".repeat(32)),
            Err(SignatureError::InvalidPublicKey)
        );
        assert_eq!(
            Signature::from_hex(&"00".repeat(63)),
            Err(SignatureError::InvalidEncoding)
        );
        // Upper case and surrounding whitespace (a pasted key) are accepted.
        let upper = format!(" {}\n", RFC8032_PUBLIC.to_uppercase());
        assert_eq!(
            PublicKey::from_hex(&upper).unwrap().to_hex(),
            RFC8032_PUBLIC
        );
    }

    #[test]
    fn small_order_public_key_never_verifies() {
        // The identity point (y = 1): every "signature" with R = identity and S = 0
        // would verify under a lax check.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = PublicKey::from_bytes(&identity).unwrap();
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert_eq!(
            verify(&key, b"anything", &Signature::from_bytes(sig)),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn fingerprint_is_stable_and_debug_hides_the_seed() {
        let key = signer(RFC8032_SEED);
        let fp = key.public_key().fingerprint();
        assert_eq!(fp.len(), 32);
        assert_eq!(fp, key.public_key().fingerprint());
        assert_ne!(fp, signer(RFC8032_SEED_2).public_key().fingerprint());
        let debug = format!("{key:?}");
        assert!(debug.contains(&fp));
        assert!(!debug.contains(&RFC8032_SEED[..8]), "{debug}");
    }
}
