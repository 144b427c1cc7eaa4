//! The hash chain: an [`AuditRecord`] and the exact bytes its hash covers.
//!
//! Each record carries `seq` (1, 2, 3, … with no gaps), `prev_hash` (the previous
//! record's `hash`; 32 zero bytes for seq 1) and `hash`:
//!
//! ```text
//! hash = SHA-256( canonical(record without hash) )
//!
//! canonical =  "rampart-audit-record-v2" 0x00
//!           || u64be(seq)
//!           || i64be(time as Unix microseconds)
//!           || str(writer)
//!           || optu64(file_prev_seq)
//!           || str(kind) || str(outcome)
//!           || opt(actor) || opt(target) || opt(client_ip) || opt(request_id)
//!           || opt(reason)
//!           || u64be(number of details) || (str(key) || str(value))*   keys ascending
//!           || prev_hash (32 raw bytes)
//!
//! str(s)   = u64be(byte length of s) || UTF-8 bytes of s
//! opt(x)   = 0x00 when absent, 0x01 || str(x) when present
//! optu64(n) = 0x00 when absent, 0x01 || u64be(n) when present
//! client_ip is its canonical text (Rust's `IpAddr` Display: `203.0.113.9`, `2001:db8::1`)
//! keys are compared as UTF-8 byte strings
//! ```
//!
//! Every variable-length field is length-prefixed and every optional field has a
//! presence byte, so no two different records encode to the same bytes (moving text
//! from `actor` into `target`, or `None` versus `Some("")`, changes the hash). The
//! encoding is independent of JSON, so the file, the database and an export all hash
//! the same way however each spells its text. Time is kept in whole microseconds —
//! the precision PostgreSQL stores and a range an `i64` always holds.
//!
//! Version 2 added `writer` (which process wrote the record, see [`WriterId`]) and
//! `file_prev_seq` (where the record sits in its writer's audit file: the seq of the
//! record before it in that file, 0 for a file's first record, absent when the writer
//! kept no file). Both are hashed so neither can be changed unnoticed; the second is
//! what lets a per-process file be checked for removed lines (see [`super::verify`]).
//! Version 1 logs are not readable by this version (nothing was released with it).
//!
//! The chain is unkeyed: anyone who can write the log can recompute hashes from the
//! point they change onwards. What stops that is the signed [checkpoints], which fix
//! the hash at a given seq, and the second sink.
//!
//! [checkpoints]: super::checkpoint

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::event::{AuditEvent, Outcome};
use super::writer_id::WriterId;

/// Domain label at the start of every hashed record.
const RECORD_DOMAIN: &[u8] = b"rampart-audit-record-v2\0";

/// A SHA-256 value in the chain, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The `prev_hash` of the first record: 32 zero bytes.
    pub const GENESIS: Self = Self([0; 32]);

    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

/// Not exactly 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash must be 64 lowercase hex digits")]
pub struct MalformedHash;

impl FromStr for ChainHash {
    type Err = MalformedHash;

    /// Only lowercase is accepted, so each hash has exactly one spelling in the log.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(MalformedHash);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| MalformedHash)?;
        Ok(Self(bytes))
    }
}

/// One entry of the audit log: an [`AuditEvent`] with its time, place in the chain
/// and hash.
///
/// `kind` is kept as the stored text, not an [`EventKind`](super::EventKind), so a
/// log written by a newer Rampart with more kinds still verifies with this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When the event was recorded, in whole microseconds, UTC.
    pub time: OffsetDateTime,
    /// The process that wrote it.
    pub writer: WriterId,
    /// The seq of the record before this one in its writer's audit file (0: the
    /// file's first record); `None` when the writer kept no file copy.
    pub file_prev_seq: Option<u64>,
    /// The event kind's dotted name.
    pub kind: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Who acted.
    pub actor: Option<String>,
    /// What was acted on.
    pub target: Option<String>,
    /// The client address.
    pub client_ip: Option<IpAddr>,
    /// The request id.
    pub request_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Further details.
    pub details: BTreeMap<String, String>,
    /// The previous record's hash ([`ChainHash::GENESIS`] for seq 1).
    pub prev_hash: ChainHash,
    /// SHA-256 of the canonical encoding of every field above.
    pub hash: ChainHash,
}

impl AuditRecord {
    /// Places `event`, written by `writer` (after `file_prev_seq` in its file, if it
    /// keeps one), at `seq` after a record whose hash is `prev_hash`, and hashes it.
    /// `time` is truncated to whole microseconds.
    pub fn seal(
        seq: u64,
        time: OffsetDateTime,
        writer: &WriterId,
        file_prev_seq: Option<u64>,
        event: AuditEvent,
        prev_hash: ChainHash,
    ) -> Self {
        let mut record = Self {
            seq,
            time: to_micros(time),
            writer: writer.clone(),
            file_prev_seq,
            kind: event.kind.as_str().to_owned(),
            outcome: event.outcome,
            actor: event.actor,
            target: event.target,
            client_ip: event.client_ip,
            request_id: event.request_id,
            reason: event.reason,
            details: event.details,
            prev_hash,
            hash: ChainHash::GENESIS,
        };
        record.hash = record.compute_hash();
        record
    }

    /// The hash this record's content should have. Differs from `self.hash` iff the
    /// record was changed after it was sealed.
    pub fn compute_hash(&self) -> ChainHash {
        let mut h = Sha256::new();
        h.update(RECORD_DOMAIN);
        h.update(self.seq.to_be_bytes());
        h.update(unix_micros(self.time).to_be_bytes());
        put_str(&mut h, self.writer.as_str());
        match self.file_prev_seq {
            None => h.update([0u8]),
            Some(seq) => {
                h.update([1u8]);
                h.update(seq.to_be_bytes());
            }
        }
        put_str(&mut h, &self.kind);
        put_str(&mut h, self.outcome.as_str());
        put_opt(&mut h, self.actor.as_deref());
        put_opt(&mut h, self.target.as_deref());
        put_opt(&mut h, self.client_ip.map(|ip| ip.to_string()).as_deref());
        put_opt(&mut h, self.request_id.as_deref());
        put_opt(&mut h, self.reason.as_deref());
        h.update((self.details.len() as u64).to_be_bytes());
        for (key, value) in &self.details {
            put_str(&mut h, key);
            put_str(&mut h, value);
        }
        h.update(self.prev_hash.as_bytes());
        ChainHash(h.finalize().into())
    }
}

/// Unix time in whole microseconds. Every `OffsetDateTime` (years ±9999) fits in an
/// `i64` at this precision, so this cannot overflow.
pub fn unix_micros(time: OffsetDateTime) -> i64 {
    // ±9999 years is about ±3.2e17 µs, far inside i64; saturate rather than panic
    // should the time crate ever widen its range.
    i64::try_from(time.unix_timestamp_nanos() / 1_000).unwrap_or(if time.year() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The time at `micros` Unix microseconds, or `None` outside the representable range.
pub fn from_unix_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

/// `time` in UTC, truncated to whole microseconds.
pub fn to_micros(time: OffsetDateTime) -> OffsetDateTime {
    from_unix_micros(unix_micros(time)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `u64be(len) || bytes`, the length prefix that keeps field boundaries unambiguous.
fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            put_str(h, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::EventKind;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn writer() -> WriterId {
        "gw-1/00000000000000aa".parse().unwrap()
    }

    fn seal(seq: u64, time: OffsetDateTime, event: AuditEvent) -> AuditRecord {
        AuditRecord::seal(seq, time, &writer(), None, event, ChainHash::GENESIS)
    }

    fn event() -> AuditEvent {
        AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
            .actor("alice")
            .client_ip("203.0.113.9".parse().unwrap())
            .detail("method", "password")
    }

    /// The canonical encoding is a format other tools may implement: pin one hash so
    /// an accidental change to it fails here, not in an operator's verifier.
    #[test]
    fn canonical_hash_is_pinned() {
        let record = AuditRecord::seal(1, t0(), &writer(), Some(0), event(), ChainHash::GENESIS);
        let mut expected = Vec::new();
        expected.extend_from_slice(b"rampart-audit-record-v2\0");
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_000_000i64.to_be_bytes());
        expected.extend_from_slice(&21u64.to_be_bytes());
        expected.extend_from_slice(b"gw-1/00000000000000aa");
        expected.push(1); // file_prev_seq present
        expected.extend_from_slice(&0u64.to_be_bytes());
        for s in ["auth.login.failed", "failure"] {
            expected.extend_from_slice(&(s.len() as u64).to_be_bytes());
            expected.extend_from_slice(s.as_bytes());
        }
        expected.push(1);
        expected.extend_from_slice(&5u64.to_be_bytes());
        expected.extend_from_slice(b"alice");
        expected.push(0); // target
        expected.push(1);
        expected.extend_from_slice(&11u64.to_be_bytes());
        expected.extend_from_slice(b"203.0.113.9");
        expected.push(0); // request id
        expected.push(0); // reason
        expected.extend_from_slice(&1u64.to_be_bytes());
        for s in ["method", "password"] {
            expected.extend_from_slice(&(s.len() as u64).to_be_bytes());
            expected.extend_from_slice(s.as_bytes());
        }
        expected.extend_from_slice(&[0u8; 32]);
        assert_eq!(
            record.hash,
            ChainHash::from_bytes(Sha256::digest(&expected).into())
        );
        assert_eq!(record.hash, record.compute_hash());
        // The same bytes pinned as a value, for implementers in other languages.
        assert_eq!(
            record.hash.to_hex(),
            "395ef130c911a0daeb0b54e8acd9a2cd577989784d47dc2d5d9a8b343b7f701a"
        );
    }

    #[test]
    fn every_field_is_covered() {
        let base = AuditRecord::seal(7, t0(), &writer(), Some(3), event(), ChainHash::GENESIS);
        let mut variants: Vec<AuditRecord> = Vec::new();
        let mut push = |f: &dyn Fn(&mut AuditRecord)| {
            let mut r = base.clone();
            f(&mut r);
            variants.push(r);
        };
        push(&|r| r.seq = 8);
        push(&|r| r.time += time::Duration::microseconds(1));
        push(&|r| r.writer = "gw-1/00000000000000ab".parse().unwrap());
        push(&|r| r.file_prev_seq = None);
        push(&|r| r.file_prev_seq = Some(4));
        push(&|r| r.kind = "auth.login.succeeded".into());
        push(&|r| r.outcome = Outcome::Success);
        push(&|r| r.actor = None);
        push(&|r| r.actor = Some(String::new()));
        push(&|r| r.target = Some("alice".into()));
        push(&|r| r.client_ip = Some("203.0.113.10".parse().unwrap()));
        push(&|r| r.request_id = Some(String::new()));
        push(&|r| r.reason = Some("x".into()));
        push(&|r| {
            r.details.insert("method".into(), "totp".into());
        });
        push(&|r| {
            r.details.insert("extra".into(), String::new());
        });
        push(&|r| r.prev_hash = ChainHash::from_bytes([1; 32]));
        for v in &variants {
            assert_ne!(v.compute_hash(), base.hash, "{v:?}");
        }
    }

    #[test]
    fn field_boundaries_cannot_shift() {
        let a = seal(
            1,
            t0(),
            AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied)
                .actor("ab")
                .target("c"),
        );
        let b = seal(
            1,
            t0(),
            AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied)
                .actor("a")
                .target("bc"),
        );
        assert_ne!(a.hash, b.hash);
        let c = seal(
            1,
            t0(),
            AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied).detail("k", "v=w"),
        );
        let d = seal(
            1,
            t0(),
            AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied).detail("k=v", "w"),
        );
        assert_ne!(c.hash, d.hash);
    }

    #[test]
    fn time_is_truncated_to_microseconds() {
        let t = t0() + time::Duration::nanoseconds(1_234_567);
        let record = seal(1, t, event());
        assert_eq!(record.time, t0() + time::Duration::microseconds(1_234));
        assert_eq!(
            from_unix_micros(unix_micros(record.time)),
            Some(record.time)
        );
    }

    #[test]
    fn hash_text_has_one_spelling() {
        let h = ChainHash::from_bytes([0xab; 32]);
        assert_eq!(h.to_hex().parse::<ChainHash>(), Ok(h));
        assert_eq!(
            h.to_hex().to_uppercase().parse::<ChainHash>(),
            Err(MalformedHash)
        );
        assert_eq!("00".parse::<ChainHash>(), Err(MalformedHash));
        assert_eq!(ChainHash::GENESIS.to_hex(), "0".repeat(64));
    }
}
