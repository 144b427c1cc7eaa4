//! How records and checkpoints are written down: JSON lines (the audit file and
//! exports) and database rows.
//!
//! The file (`audit.path`) and `rampart audit export` use one line per entry, a JSON
//! object with a `type` member:
//!
//! ```text
//! {"type":"record","seq":1,"time":"2026-01-02T03:04:05.678901Z",
//!  "writer":"gw-1.example/3f0c9a1b2c3d4e5f","file_prev_seq":0,"kind":"auth.login.failed",
//!  "outcome":"failure","actor":"alice","target":null,"client_ip":"203.0.113.9",
//!  "request_id":"req-8f3a","reason":"wrong password","details":{"method":"password"},
//!  "prev_hash":"000…000","hash":"5f1c…"}
//! {"type":"checkpoint","seq":1000,"hash":"9ab2…","prev_seq":0,
//!  "time":"2026-01-02T03:09:05.000000Z","writer":"gw-1.example/3f0c9a1b2c3d4e5f",
//!  "key_id":"3f0c…","signature":"d1e4…"}
//! ```
//!
//! (one line each; wrapped here). Entries are in log order: a record's seq, and a
//! checkpoint comes after the record it covers. An export is a contiguous slice of
//! the chain; an audit file holds only what its own process wrote (see
//! [`super::verify`]), so its seqs increase but may skip. `writer` is a
//! [`WriterId`]; `file_prev_seq` is `null` for a record written
//! without a file copy.
//! `time` is RFC 3339 in UTC with exactly six fractional digits; hashes are 64 and
//! signatures 128 lowercase hex digits. Reading is strict — unknown members, duplicate
//! members (also inside `details`), non-UTC or sub-microsecond times and non-canonical
//! hex are refused — so a line has exactly one reading and nothing outside the hash
//! can ride along unnoticed. JSON escaping also means no event text can forge a line
//! break.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use rampart_crypto::signing::Signature;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::chain::{AuditRecord, ChainHash, from_unix_micros, unix_micros};
use super::checkpoint::Checkpoint;
use super::store::{AuditRow, CheckpointRow};
use super::writer_id::WriterId;

/// Longest line the readers accept, in bytes. Events are bounded (see
/// [`super::event`]): even with every text field at its limit and made of control
/// characters (six bytes each once JSON-escaped) a record stays under half of this,
/// so a longer line is damage, not data — and no attacker-chosen text can make the
/// writer produce a line its own reader refuses.
pub const MAX_LINE_LEN: usize = 1024 * 1024;

/// A line or row that cannot be read as a record or checkpoint. The reason names the
/// field, never echoes its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Malformed {
    /// What is wrong.
    pub reason: String,
}

impl Malformed {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// One entry of the log, in log order: a record, or a checkpoint after the record it
/// covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An audited event.
    Record(AuditRecord),
    /// A signed checkpoint.
    Checkpoint(Checkpoint),
}

impl Entry {
    /// The entry's seq (a checkpoint's is the seq of the record it covers).
    pub fn seq(&self) -> u64 {
        match self {
            Self::Record(r) => r.seq,
            Self::Checkpoint(c) => c.seq,
        }
    }

    /// The place in log order: records sort before the checkpoint at the same seq.
    pub(crate) fn position(&self) -> Position {
        match self {
            Self::Record(r) => Position::record(r.seq),
            Self::Checkpoint(c) => Position::checkpoint(c.seq),
        }
    }

    /// The entry as one JSON line, with the trailing newline.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let repr = match self {
            Self::Record(r) => LineRepr::Record(RecordLine::from(r)),
            Self::Checkpoint(c) => LineRepr::Checkpoint(CheckpointLine::from(c)),
        };
        let mut line = serde_json::to_string(&repr)?;
        line.push('\n');
        Ok(line)
    }

    /// Parses one line (without or with its trailing newline).
    pub fn parse_line(line: &[u8]) -> Result<Self, Malformed> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.len() > MAX_LINE_LEN {
            return Err(Malformed::new(format!(
                "line is longer than {MAX_LINE_LEN} bytes"
            )));
        }
        let repr: LineRepr = serde_json::from_slice(line)
            .map_err(|e| Malformed::new(format!("not a valid audit line: {}", json_reason(&e))))?;
        match repr {
            LineRepr::Record(r) => r.into_record().map(Self::Record),
            LineRepr::Checkpoint(c) => c.into_checkpoint().map(Self::Checkpoint),
        }
    }
}

/// A place in log order: `(seq, 0)` for a record, `(seq, 1)` for a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    seq: u64,
    checkpoint: bool,
}

impl Position {
    /// Before anything.
    #[cfg(test)]
    pub(crate) const START: Self = Self {
        seq: 0,
        checkpoint: false,
    };

    pub(crate) fn record(seq: u64) -> Self {
        Self {
            seq,
            checkpoint: false,
        }
    }

    pub(crate) fn checkpoint(seq: u64) -> Self {
        Self {
            seq,
            checkpoint: true,
        }
    }

    /// The seq of the record or checkpoint at this place.
    pub(crate) fn seq(self) -> u64 {
        self.seq
    }
}

impl AuditRecord {
    /// The record as an `audit_records` row.
    pub fn to_row(&self) -> Result<AuditRow, serde_json::Error> {
        Ok(AuditRow {
            seq: seq_to_i64(self.seq),
            time_us: unix_micros(self.time),
            writer: self.writer.to_string(),
            file_prev_seq: self.file_prev_seq.map(seq_to_i64),
            kind: self.kind.clone(),
            outcome: self.outcome.as_str().to_owned(),
            actor: self.actor.clone(),
            target: self.target.clone(),
            client_ip: self.client_ip.map(|ip| ip.to_string()),
            request_id: self.request_id.clone(),
            reason: self.reason.clone(),
            details: serde_json::to_string(&self.details)?,
            prev_hash: self.prev_hash.to_hex(),
            hash: self.hash.to_hex(),
        })
    }

    /// Reads a row back, as strictly as a file line.
    pub fn from_row(row: AuditRow) -> Result<Self, Malformed> {
        let details: Details = serde_json::from_str(&row.details)
            .map_err(|e| Malformed::new(format!("details: {}", json_reason(&e))))?;
        Ok(Self {
            seq: seq_from_i64(row.seq)?,
            time: from_unix_micros(row.time_us)
                .ok_or_else(|| Malformed::new("time out of range"))?,
            writer: parse_writer(&row.writer)?,
            file_prev_seq: row
                .file_prev_seq
                .map(|seq| {
                    u64::try_from(seq).map_err(|_| Malformed::new("file_prev_seq is negative"))
                })
                .transpose()?,
            kind: parse_kind(row.kind)?,
            outcome: row
                .outcome
                .parse()
                .map_err(|_| Malformed::new("outcome is not success, failure or denied"))?,
            actor: row.actor,
            target: row.target,
            client_ip: parse_ip(row.client_ip.as_deref())?,
            request_id: row.request_id,
            reason: row.reason,
            details: details.0,
            prev_hash: parse_hash("prev_hash", &row.prev_hash)?,
            hash: parse_hash("hash", &row.hash)?,
        })
    }
}

impl Checkpoint {
    /// The checkpoint as an `audit_checkpoints` row.
    pub fn to_row(&self) -> CheckpointRow {
        CheckpointRow {
            seq: seq_to_i64(self.seq),
            hash: self.hash.to_hex(),
            prev_seq: seq_to_i64(self.prev_seq),
            time_us: unix_micros(self.time),
            writer: self.writer.to_string(),
            key_id: self.key_id.clone(),
            signature: self.signature.to_hex(),
        }
    }

    /// Reads a row back.
    pub fn from_row(row: CheckpointRow) -> Result<Self, Malformed> {
        Ok(Self {
            seq: seq_from_i64(row.seq)?,
            hash: parse_hash("hash", &row.hash)?,
            prev_seq: u64::try_from(row.prev_seq)
                .map_err(|_| Malformed::new("prev_seq is negative"))?,
            time: from_unix_micros(row.time_us)
                .ok_or_else(|| Malformed::new("time out of range"))?,
            writer: parse_writer(&row.writer)?,
            key_id: parse_key_id(row.key_id)?,
            signature: parse_signature(&row.signature)?,
        })
    }
}

/// `seq` as the database stores it. Seqs count records one by one from 1, so they
/// never reach `i64::MAX`; saturate rather than wrap should one ever be forged.
pub(crate) fn seq_to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq_from_i64(seq: i64) -> Result<u64, Malformed> {
    match u64::try_from(seq) {
        Ok(seq) if seq > 0 => Ok(seq),
        _ => Err(Malformed::new("seq must be a positive integer")),
    }
}

/// The wire shape of a line. `type` selects the variant.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LineRepr {
    Record(RecordLine),
    Checkpoint(CheckpointLine),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    seq: u64,
    time: String,
    writer: String,
    file_prev_seq: Option<u64>,
    kind: String,
    outcome: String,
    actor: Option<String>,
    target: Option<String>,
    client_ip: Option<String>,
    request_id: Option<String>,
    reason: Option<String>,
    details: Details,
    prev_hash: String,
    hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    seq: u64,
    hash: String,
    prev_seq: u64,
    time: String,
    writer: String,
    key_id: String,
    signature: String,
}

impl From<&AuditRecord> for RecordLine {
    fn from(r: &AuditRecord) -> Self {
        Self {
            seq: r.seq,
            time: format_time(r.time),
            writer: r.writer.to_string(),
            file_prev_seq: r.file_prev_seq,
            kind: r.kind.clone(),
            outcome: r.outcome.as_str().to_owned(),
            actor: r.actor.clone(),
            target: r.target.clone(),
            client_ip: r.client_ip.map(|ip| ip.to_string()),
            request_id: r.request_id.clone(),
            reason: r.reason.clone(),
            details: Details(r.details.clone()),
            prev_hash: r.prev_hash.to_hex(),
            hash: r.hash.to_hex(),
        }
    }
}

impl RecordLine {
    fn into_record(self) -> Result<AuditRecord, Malformed> {
        if self.seq == 0 {
            return Err(Malformed::new("seq must be a positive integer"));
        }
        Ok(AuditRecord {
            seq: self.seq,
            time: parse_time(&self.time)?,
            writer: parse_writer(&self.writer)?,
            file_prev_seq: self.file_prev_seq,
            kind: parse_kind(self.kind)?,
            outcome: self
                .outcome
                .parse()
                .map_err(|_| Malformed::new("outcome is not success, failure or denied"))?,
            actor: self.actor,
            target: self.target,
            client_ip: parse_ip(self.client_ip.as_deref())?,
            request_id: self.request_id,
            reason: self.reason,
            details: self.details.0,
            prev_hash: parse_hash("prev_hash", &self.prev_hash)?,
            hash: parse_hash("hash", &self.hash)?,
        })
    }
}

impl From<&Checkpoint> for CheckpointLine {
    fn from(c: &Checkpoint) -> Self {
        Self {
            seq: c.seq,
            hash: c.hash.to_hex(),
            prev_seq: c.prev_seq,
            time: format_time(c.time),
            writer: c.writer.to_string(),
            key_id: c.key_id.clone(),
            signature: c.signature.to_hex(),
        }
    }
}

impl CheckpointLine {
    fn into_checkpoint(self) -> Result<Checkpoint, Malformed> {
        if self.seq == 0 {
            return Err(Malformed::new("seq must be a positive integer"));
        }
        Ok(Checkpoint {
            seq: self.seq,
            hash: parse_hash("hash", &self.hash)?,
            prev_seq: self.prev_seq,
            time: parse_time(&self.time)?,
            writer: parse_writer(&self.writer)?,
            key_id: parse_key_id(self.key_id)?,
            signature: parse_signature(&self.signature)?,
        })
    }
}

/// `details`: a JSON object of strings, refusing duplicate keys (serde's maps keep
/// the last one silently, which would give the line two readings).
#[derive(Serialize)]
#[serde(transparent)]
struct Details(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DetailsVisitor;

        impl<'de> Visitor<'de> for DetailsVisitor {
            type Value = Details;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Details, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if out.insert(key, value).is_some() {
                        return Err(serde::de::Error::custom("duplicate key in details"));
                    }
                }
                Ok(Details(out))
            }
        }

        deserializer.deserialize_map(DetailsVisitor)
    }
}

/// RFC 3339, UTC, exactly six fractional digits: one fixed-width spelling per
/// instant, which also sorts as text. Built from the components so it cannot fail.
pub(crate) fn format_time(time: OffsetDateTime) -> String {
    let t = time.checked_to_offset(UtcOffset::UTC).unwrap_or(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

fn parse_time(text: &str) -> Result<OffsetDateTime, Malformed> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| Malformed::new("time is not an RFC 3339 timestamp"))?;
    if time.offset() != UtcOffset::UTC {
        return Err(Malformed::new("time is not in UTC"));
    }
    if time.nanosecond() % 1_000 != 0 {
        return Err(Malformed::new("time has sub-microsecond digits"));
    }
    Ok(time)
}

fn parse_kind(kind: String) -> Result<String, Malformed> {
    // Any dotted name is accepted (a newer build may have more kinds); the alphabet
    // is checked so a kind cannot smuggle text that looks like something else.
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if valid {
        Ok(kind)
    } else {
        Err(Malformed::new("kind is not a dotted event name"))
    }
}

fn parse_writer(text: &str) -> Result<WriterId, Malformed> {
    text.parse()
        .map_err(|_| Malformed::new("writer is not a writer id"))
}

fn parse_ip(text: Option<&str>) -> Result<Option<IpAddr>, Malformed> {
    text.map(|t| {
        t.parse::<IpAddr>()
            .map_err(|_| Malformed::new("client_ip is not an IP address"))
    })
    .transpose()
}

fn parse_hash(field: &str, text: &str) -> Result<ChainHash, Malformed> {
    text.parse()
        .map_err(|_| Malformed::new(format!("{field} is not 64 lowercase hex digits")))
}

fn parse_key_id(key_id: String) -> Result<String, Malformed> {
    let valid = key_id.len() == 32
        && key_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(key_id)
    } else {
        Err(Malformed::new("key_id is not 32 lowercase hex digits"))
    }
}

fn parse_signature(text: &str) -> Result<Signature, Malformed> {
    let canonical =
        text.len() == 128 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !canonical {
        return Err(Malformed::new("signature is not 128 lowercase hex digits"));
    }
    Signature::from_hex(text)
        .map_err(|_| Malformed::new("signature is not 128 lowercase hex digits"))
}

/// A JSON error's category and column, not its message: serde's messages can quote
/// the offending input.
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "invalid JSON",
        Category::Eof => "incomplete JSON",
        Category::Data => "unexpected or missing member, or wrong type",
    };
    format!("{what} at column {}", e.column())
}

#[cfg(test)]
mod tests {
    use rampart_crypto::SecretArray;
    use rampart_crypto::signing::Signer;

    use super::*;
    use crate::audit::checkpoint::CheckpointSigner;
    use crate::audit::event::{AuditEvent, EventKind, Outcome};

    fn writer() -> WriterId {
        "gw-1.example/0123456789abcdef".parse().unwrap()
    }

    fn record() -> AuditRecord {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
            + time::Duration::microseconds(42);
        AuditRecord::seal(
            1,
            t,
            &writer(),
            Some(0),
            AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
                .actor("al\"ice\n{\"type\":\"record\"}")
                .client_ip("2001:db8::1".parse().unwrap())
                .detail("method", "password"),
            ChainHash::GENESIS,
        )
    }

    fn checkpoint() -> Checkpoint {
        let signer = CheckpointSigner::new(Signer::from_seed(&SecretArray::new([3; 32])));
        signer.sign(1, record().hash, 0, record().time, &writer())
    }

    #[test]
    fn lines_round_trip_and_are_single_lines() {
        for entry in [Entry::Record(record()), Entry::Checkpoint(checkpoint())] {
            let line = entry.to_line().unwrap();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert!(line.ends_with('\n'));
            assert_eq!(Entry::parse_line(line.as_bytes()).unwrap(), entry);
        }
        let line = Entry::Record(record()).to_line().unwrap();
        assert!(
            line.starts_with(
                r#"{"type":"record","seq":1,"time":"2023-11-14T22:13:20.000042Z","writer":"gw-1.example/0123456789abcdef","file_prev_seq":0,"kind":"#
            ),
            "{line}"
        );
    }

    #[test]
    fn rows_round_trip() {
        let r = record();
        assert_eq!(AuditRecord::from_row(r.to_row().unwrap()).unwrap(), r);
        let mut no_file = r.clone();
        no_file.file_prev_seq = None;
        assert_eq!(
            AuditRecord::from_row(no_file.to_row().unwrap()).unwrap(),
            no_file
        );
        let mut bad = r.to_row().unwrap();
        bad.writer = "two words".into();
        assert!(AuditRecord::from_row(bad).is_err());
        let c = checkpoint();
        assert_eq!(Checkpoint::from_row(c.to_row()).unwrap(), c);
    }

    #[test]
    fn strict_reading_refuses_second_spellings() {
        let line = Entry::Record(record()).to_line().unwrap();
        let cases = [
            line.replacen(r#""seq":1,"#, r#""seq":1,"note":"x","#, 1),
            line.replacen(r#""seq":1,"#, r#""seq":1,"seq":2,"#, 1),
            line.replacen(
                r#""details":{"method":"password"}"#,
                r#""details":{"method":"totp","method":"password"}"#,
                1,
            ),
            line.replacen("000042Z", "000042123Z", 1),
            line.replacen("22:13:20.000042Z", "23:13:20.000042+01:00", 1),
            line.replacen(
                &record().hash.to_hex(),
                &record().hash.to_hex().to_uppercase(),
                1,
            ),
            line.replacen("auth.login.failed", "Auth Login", 1),
            line.replacen(r#""outcome":"failure""#, r#""outcome":"ok""#, 1),
            line.replacen(r#""seq":1"#, r#""seq":0"#, 1),
            line.replacen(r#""type":"record""#, r#""type":"other""#, 1),
            line.replacen("gw-1.example/", "gw 1.example/", 1),
            line.replacen(r#""file_prev_seq":0"#, r#""file_prev_seq":-1"#, 1),
            "{".to_owned(),
            String::new(),
        ];
        for case in cases {
            assert!(
                Entry::parse_line(case.as_bytes()).is_err(),
                "accepted: {case}"
            );
        }
    }

    #[test]
    fn errors_do_not_echo_content() {
        let err = Entry::parse_line(br#"{"type":"record","secret-ish":"hunter2"}"#).unwrap_err();
        assert!(!err.reason.contains("hunter2"), "{err}");
        assert!(!err.reason.contains("secret-ish"), "{err}");
    }

    #[test]
    fn unknown_future_kinds_are_readable() {
        let line = Entry::Record(record()).to_line().unwrap().replacen(
            "auth.login.failed",
            "auth.passkey.added",
            1,
        );
        let Entry::Record(r) = Entry::parse_line(line.as_bytes()).unwrap() else {
            panic!("not a record");
        };
        assert_eq!(r.kind, "auth.passkey.added");
    }

    #[test]
    fn positions_order_records_before_their_checkpoint() {
        assert!(Position::record(5) < Position::checkpoint(5));
        assert!(Position::checkpoint(5) < Position::record(6));
        assert!(Position::START < Position::record(1));
    }

    #[test]
    fn the_largest_possible_event_fits_on_a_line() {
        use crate::audit::event::{MAX_DETAILS, MAX_TEXT_LEN};
        // Control characters are the worst case: each becomes `\u0001` in JSON.
        let worst = "\u{1}".repeat(MAX_TEXT_LEN * 4);
        let mut event = AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied)
            .actor(worst.clone())
            .target(worst.clone())
            .request_id(worst.clone())
            .reason(worst.clone())
            .client_ip(
                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
                    .parse()
                    .unwrap(),
            );
        for i in 0..MAX_DETAILS * 2 {
            event = event.detail(format!("{i:04}{worst}"), worst.clone());
        }
        let record = AuditRecord::seal(
            u64::MAX,
            record().time,
            &"w".repeat(crate::audit::writer_id::MAX_WRITER_ID_LEN)
                .parse()
                .unwrap(),
            Some(u64::MAX - 1),
            event.bounded(),
            ChainHash::GENESIS,
        );
        let line = Entry::Record(record.clone()).to_line().unwrap();
        assert!(line.len() < MAX_LINE_LEN / 2, "{} bytes", line.len());
        assert_eq!(
            Entry::parse_line(line.as_bytes()).unwrap(),
            Entry::Record(record)
        );
    }

    proptest::proptest! {
        #[test]
        fn prop_records_round_trip_through_lines_and_rows(
            actor in proptest::option::of(".{0,40}"),
            reason in proptest::option::of(".{0,40}"),
            details in proptest::collection::btree_map(".{0,12}", ".{0,20}", 0..4),
            seq in 1u64..=i64::MAX as u64,
            micros in -62_135_596_800_000_000i64..253_402_300_799_000_000,
        ) {
            let mut event = AuditEvent::new(EventKind::TokenRevoked, Outcome::Success);
            event.actor = actor;
            event.reason = reason;
            event.details = details;
            let time = from_unix_micros(micros).unwrap();
            let r = AuditRecord::seal(seq, time, &writer(), Some(seq - 1), event, ChainHash::from_bytes([5; 32]));
            let line = Entry::Record(r.clone()).to_line().unwrap();
            proptest::prop_assert_eq!(line.matches('\n').count(), 1);
            proptest::prop_assert_eq!(Entry::parse_line(line.as_bytes()).unwrap(), Entry::Record(r.clone()));
            proptest::prop_assert_eq!(AuditRecord::from_row(r.to_row().unwrap()).unwrap(), r);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(line in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Entry::parse_line(&line);
        }

        #[test]
        fn prop_mutated_lines_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY) {
            let mut line = Entry::Record(record()).to_line().unwrap().into_bytes();
            let i = pos % line.len();
            line[i] = byte;
            let _ = Entry::parse_line(&line);
        }
    }
}
