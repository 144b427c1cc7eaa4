//! Signed checkpoints: an Ed25519 signature over the chain head.
//!
//! A checkpoint says "the record at `seq` has hash `hash`", signed with the audit key
//! (the [`KeyPurpose::AuditSigning`] data key used as an Ed25519 seed). Because each
//! hash covers its predecessor, a valid checkpoint vouches for every record up to
//! `seq`: whoever can edit the log but not sign cannot rewrite, drop or reorder any of
//! them without a checkpoint disagreeing.
//!
//! Checkpoints form their own chain through `prev_seq` (the `seq` of the previous
//! checkpoint, 0 for the first), so removing one from the middle of a log is seen at
//! the next. With several writers appending to one chain, whichever writer's batch
//! reaches the checkpoint is the one to sign it; the database allows one successor per
//! checkpoint (`prev_seq` is unique), so two writers racing for the same checkpoint
//! cannot fork this chain: the loser re-reads the head and tries again (see
//! [`super::writer`]). The signed message is:
//!
//! ```text
//! "rampart-audit-checkpoint-v2" 0x00
//!   || u64be(seq) || hash (32 bytes) || u64be(prev_seq)
//!   || i64be(time as Unix microseconds)
//!   || u64be(len(writer)) || writer
//!   || u64be(len(key_id)) || key_id
//! ```
//!
//! Version 2 added `writer`, the [`WriterId`] of the process that signed it.
//!
//! `key_id` is the signer's public-key fingerprint
//! ([`PublicKey::fingerprint`](rampart_crypto::signing::PublicKey::fingerprint)); a
//! verifier uses it only to choose among trusted keys.

use rampart_crypto::signing::{self, PublicKey, Signature, Signer};
use time::OffsetDateTime;

use crate::keys::{DataKeys, KeyError, KeyPurpose};
use crate::store::KeyStore;

use super::chain::{ChainHash, to_micros, unix_micros};
use super::writer_id::WriterId;

/// Domain label at the start of every signed checkpoint message.
const CHECKPOINT_DOMAIN: &[u8] = b"rampart-audit-checkpoint-v2\0";

/// A signed statement of the chain head at `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The seq of the last record covered.
    pub seq: u64,
    /// That record's hash.
    pub hash: ChainHash,
    /// The seq of the previous checkpoint; 0 if this is the first.
    pub prev_seq: u64,
    /// When it was signed, in whole microseconds.
    pub time: OffsetDateTime,
    /// The process that signed it.
    pub writer: WriterId,
    /// The signing key's fingerprint.
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::signed_message`].
    pub signature: Signature,
}

/// Why a checkpoint's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No trusted key has the checkpoint's `key_id`.
    UnknownKey,
    /// The key is trusted but the signature does not verify.
    BadSignature,
}

impl Checkpoint {
    /// The exact bytes that are signed (see the module docs).
    pub fn signed_message(&self) -> Vec<u8> {
        message(
            self.seq,
            &self.hash,
            self.prev_seq,
            self.time,
            &self.writer,
            &self.key_id,
        )
    }

    /// Checks the signature against the trusted key with the checkpoint's `key_id`.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<(), SignatureCheck> {
        let key = trusted
            .iter()
            .find(|k| k.fingerprint() == self.key_id)
            .ok_or(SignatureCheck::UnknownKey)?;
        signing::verify(key, &self.signed_message(), &self.signature)
            .map_err(|_| SignatureCheck::BadSignature)
    }
}

/// The audit signing key and its fingerprint. `Debug` shows the fingerprint only.
#[derive(Debug)]
pub struct CheckpointSigner {
    signer: Signer,
    key_id: String,
}

impl CheckpointSigner {
    /// Wraps an Ed25519 signer.
    pub fn new(signer: Signer) -> Self {
        let key_id = signer.public_key().fingerprint();
        Self { signer, key_id }
    }

    /// The signer made from the active [`KeyPurpose::AuditSigning`] data key: its 32
    /// key bytes are the Ed25519 seed.
    pub fn from_data_keys(keys: &DataKeys) -> Self {
        Self::new(Signer::from_seed(
            &keys.active(KeyPurpose::AuditSigning).key,
        ))
    }

    /// The public key, for `rampart audit verify --public-key` and for export.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// The public key's fingerprint, written into every checkpoint.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs the head `(seq, hash)` as `writer`, linking to the checkpoint at
    /// `prev_seq`.
    pub fn sign(
        &self,
        seq: u64,
        hash: ChainHash,
        prev_seq: u64,
        time: OffsetDateTime,
        writer: &WriterId,
    ) -> Checkpoint {
        let time = to_micros(time);
        let signature =
            self.signer
                .sign(&message(seq, &hash, prev_seq, time, writer, &self.key_id));
        Checkpoint {
            seq,
            hash,
            prev_seq,
            time,
            writer: writer.clone(),
            key_id: self.key_id.clone(),
            signature,
        }
    }
}

/// Every audit public key this instance has had — the active one and the retired
/// ones that signed older checkpoints — for verifying the whole log after a rotation.
pub async fn trusted_keys(
    store: &dyn KeyStore,
    keys: &DataKeys,
) -> Result<Vec<PublicKey>, KeyError> {
    let mut trusted = vec![CheckpointSigner::from_data_keys(keys).public_key()];
    for info in DataKeys::list_keys(store).await? {
        if info.purpose != KeyPurpose::AuditSigning {
            continue;
        }
        if let Some(key) = keys.for_purpose(KeyPurpose::AuditSigning, &info.id) {
            let public = Signer::from_seed(&key.key).public_key();
            if !trusted.contains(&public) {
                trusted.push(public);
            }
        }
    }
    Ok(trusted)
}

fn message(
    seq: u64,
    hash: &ChainHash,
    prev_seq: u64,
    time: OffsetDateTime,
    writer: &WriterId,
    key_id: &str,
) -> Vec<u8> {
    // Signed as is: Ed25519 hashes its message internally (SHA-512), so pre-hashing
    // would add nothing.
    let writer = writer.as_str();
    let mut out = Vec::with_capacity(
        CHECKPOINT_DOMAIN.len() + 8 + 32 + 8 + 8 + 8 + writer.len() + 8 + key_id.len(),
    );
    out.extend_from_slice(CHECKPOINT_DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(&prev_seq.to_be_bytes());
    out.extend_from_slice(&unix_micros(time).to_be_bytes());
    out.extend_from_slice(&(writer.len() as u64).to_be_bytes());
    out.extend_from_slice(writer.as_bytes());
    out.extend_from_slice(&(key_id.len() as u64).to_be_bytes());
    out.extend_from_slice(key_id.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use rampart_crypto::SecretArray;

    use super::*;

    fn signer(byte: u8) -> CheckpointSigner {
        CheckpointSigner::new(Signer::from_seed(&SecretArray::new([byte; 32])))
    }

    fn w() -> WriterId {
        "gw-1/00000000000000aa".parse().unwrap()
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn signed_checkpoint_verifies_with_its_key_only() {
        let s = signer(1);
        let cp = s.sign(1000, ChainHash::from_bytes([9; 32]), 0, t0(), &w());
        assert_eq!(cp.key_id, s.public_key().fingerprint());
        assert_eq!(cp.verify(&[s.public_key()]), Ok(()));
        assert_eq!(
            cp.verify(&[signer(2).public_key()]),
            Err(SignatureCheck::UnknownKey)
        );
        assert_eq!(cp.verify(&[]), Err(SignatureCheck::UnknownKey));
        // Two trusted keys (after a rotation): the right one is picked by key id.
        assert_eq!(cp.verify(&[signer(2).public_key(), s.public_key()]), Ok(()));
    }

    #[test]
    fn every_signed_field_is_covered() {
        let s = signer(1);
        let cp = s.sign(1000, ChainHash::from_bytes([9; 32]), 500, t0(), &w());
        let changes: [&dyn Fn(&mut Checkpoint); 5] = [
            &|c| c.seq = 1001,
            &|c| c.writer = "gw-2/00000000000000aa".parse().unwrap(),
            &|c| c.hash = ChainHash::from_bytes([8; 32]),
            &|c| c.prev_seq = 0,
            &|c| c.time += time::Duration::microseconds(1),
        ];
        for change in changes {
            let mut forged = cp.clone();
            change(&mut forged);
            assert_eq!(
                forged.verify(&[s.public_key()]),
                Err(SignatureCheck::BadSignature)
            );
        }
        // A key id pointing at another trusted key: that key's check fails.
        let other = signer(2);
        let mut relabelled = cp.clone();
        relabelled.key_id = other.key_id().to_owned();
        assert_eq!(
            relabelled.verify(&[s.public_key(), other.public_key()]),
            Err(SignatureCheck::BadSignature)
        );
    }

    #[test]
    fn signed_message_layout_is_pinned() {
        let s = signer(1);
        let cp = s.sign(2, ChainHash::from_bytes([7; 32]), 1, t0(), &w());
        let mut expected = b"rampart-audit-checkpoint-v2\0".to_vec();
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_000_000i64.to_be_bytes());
        expected.extend_from_slice(&21u64.to_be_bytes());
        expected.extend_from_slice(b"gw-1/00000000000000aa");
        expected.extend_from_slice(&32u64.to_be_bytes());
        expected.extend_from_slice(s.key_id().as_bytes());
        assert_eq!(cp.signed_message(), expected);
    }
}
