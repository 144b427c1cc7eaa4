//! `rampart audit verify`: walks a log and names the first thing wrong with it.
//!
//! Per copy (the file, or the database tables), in log order:
//!
//! 1. every line/row parses strictly ([`super::format`]);
//! 2. record seqs run 1, 2, 3, … — a jump means records were deleted, a repeat or a
//!    step back means one was inserted, duplicated or moved;
//! 3. each `prev_hash` equals the previous record's `hash` — a mismatch means the
//!    neighbour was rewritten, or records were inserted or removed between them;
//! 4. each `hash` equals SHA-256 of the record's canonical encoding — a mismatch means
//!    the record was edited;
//! 5. each checkpoint is signed by a trusted key (unknown key id: wrong key or a
//!    forged checkpoint; bad signature: forged or altered), sits right after the
//!    record it covers, matches that record's hash (a mismatch means the chain was
//!    rewritten under it), and links to the previous checkpoint through `prev_seq` (a
//!    checkpoint that was removed from the middle is named by the next one);
//! 6. a checkpoint whose seq is past the last record proves that signed records were
//!    cut from the end.
//!
//! With both sinks, [`verify_sinks`] also compares them record by record and
//! checkpoint by checkpoint: the first seq at which they differ, or at which one
//! ends, is reported.
//!
//! # What cannot be detected, and why
//!
//! The chain is unkeyed, so one copy on its own proves only what its checkpoints
//! cover. **Records after the last checkpoint of a copy can be dropped from its end,
//! together with any later checkpoints, without trace in that copy** — there is
//! nothing after the cut left to disagree. Such tail truncation is detectable only
//! against something the attacker did not also cut: the other sink (database head
//! and checkpoints vs. the file — with `audit.database = false` the database still
//! keeps every checkpoint for this purpose), or a checkpoint or export kept elsewhere.
//! The window is bounded by the checkpoint cadence (default: 1000 records or five
//! minutes). Likewise, a copy whose end was rewritten after its last checkpoint
//! verifies on its own; the cross-check names the first differing record. An export
//! starts wherever it was cut ([`Start::Anywhere`]), so records removed from its
//! beginning are not detectable either. An attacker holding the audit signing key
//! (the master key and the database) can forge everything; that is outside this
//! design.

use std::fmt;
use std::path::Path;

use rampart_crypto::signing::PublicKey;

use super::AuditError;
use super::chain::{AuditRecord, ChainHash};
use super::checkpoint::{Checkpoint, SignatureCheck};
use super::format::{Entry, seq_to_i64};
use super::read::{FileReader, ReadRecords, Reader, StoreReader};
use super::store::AuditStore;

/// What a verification needs besides the log.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Public keys whose checkpoints are accepted: the audit keys of this instance
    /// (see [`super::trusted_keys`]) or the one given with `--public-key`.
    pub keys: Vec<PublicKey>,
    /// Whether the log must start at seq 1.
    pub start: Start,
}

impl VerifyOptions {
    /// A full log (from seq 1) checked against `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self {
            keys,
            start: Start::Genesis,
        }
    }
}

/// Where a log may begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At seq 1 with an all-zero `prev_hash`: the audit file and the database.
    Genesis,
    /// Anywhere: an export. Its first record's `prev_hash` and first checkpoint's
    /// `prev_seq` point at things outside it and are taken on trust.
    Anywhere,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Nothing wrong was found.
    Intact(VerifyReport),
    /// The first problem found; verification stopped there.
    Broken(Finding),
}

/// What an intact log contains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Number of records.
    pub records: u64,
    /// Number of checkpoints.
    pub checkpoints: u64,
    /// Seq of the first record.
    pub first_seq: Option<u64>,
    /// The last record.
    pub head: Option<Head>,
    /// Seq of the last checkpoint.
    pub last_checkpoint: Option<u64>,
    /// Records after the last checkpoint: covered by the chain only, not yet by a
    /// signature (see the module docs for what that means).
    pub unsigned: u64,
    /// The copies that were read and compared.
    pub sources: Vec<Source>,
}

/// The last record of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: ChainHash,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which copy.
    pub source: Source,
    /// The seq of the first bad record (for a missing record: the seq that is missing).
    pub seq: u64,
    /// Where in that copy.
    pub location: Location,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, seq {}: {}",
            self.source, self.location, self.seq, self.problem
        )
    }
}

/// A copy of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The JSON-lines file (or an export).
    File,
    /// The database tables.
    Database,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "file",
            Self::Database => "database",
        })
    }
}

/// A place in a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A line of the file, from 1.
    Line(u64),
    /// The `audit_records` row whose `seq` column holds this value.
    RecordRow(i64),
    /// The `audit_checkpoints` row whose `seq` column holds this value.
    CheckpointRow(i64),
    /// Right after the record with this seq (where something is missing).
    AfterRecord(u64),
    /// After the last entry.
    End,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::RecordRow(seq) => write!(f, "audit_records row seq={seq}"),
            Self::CheckpointRow(seq) => write!(f, "audit_checkpoints row seq={seq}"),
            Self::AfterRecord(seq) => write!(f, "after record {seq}"),
            Self::End => f.write_str("at the end"),
        }
    }
}

/// What is wrong. The `Display` text says what it means for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The line or row cannot be read.
    Malformed(String),
    /// The file ends in a partial line (an interrupted write, or a cut).
    IncompleteLastLine,
    /// Seqs jump from `expected - 1` to `found`.
    Gap {
        /// The seq that should have come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// A seq repeats or steps back.
    OutOfOrder {
        /// The seq that should have come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// `prev_hash` is not the hash of the record before.
    BrokenLink {
        /// The seq of the record before (0: the first record's must be all zeros).
        previous: u64,
    },
    /// The content does not match the record's hash.
    Edited,
    /// A checkpoint does not follow the record it covers.
    CheckpointMisplaced {
        /// The checkpoint's seq.
        checkpoint: u64,
    },
    /// A signed checkpoint covers records that are not there.
    Truncated {
        /// The last record present.
        last_record: u64,
        /// The checkpoint's seq.
        checkpoint: u64,
    },
    /// The record at a checkpoint's seq does not have the signed hash.
    RewrittenUnderCheckpoint {
        /// The checkpoint's seq.
        checkpoint: u64,
        /// The previous checkpoint's seq (0: none); the rewrite is after it.
        previous: u64,
    },
    /// No trusted key has this id.
    UnknownKey {
        /// The checkpoint's key id.
        key_id: String,
    },
    /// The signature does not verify under the named key.
    BadSignature {
        /// The checkpoint's key id.
        key_id: String,
    },
    /// The checkpoint before this one is gone.
    MissingCheckpoint {
        /// The seq of the missing checkpoint.
        missing: u64,
        /// The checkpoint that refers to it.
        referenced_by: u64,
    },
    /// A checkpoint's `prev_seq` points before the previous checkpoint.
    CheckpointOutOfOrder {
        /// The previous checkpoint present.
        previous: u64,
        /// What this checkpoint says came before it.
        claimed: u64,
    },
    /// The two copies hold different records at this seq.
    Diverged {
        /// Where the other copy has its record.
        other: Location,
    },
    /// This copy ends before the other.
    ShorterThanOther {
        /// Seq of this copy's last record (0: none).
        last_record: u64,
        /// Seq of the other copy's last record.
        other_last: u64,
    },
    /// The other copy has a checkpoint here that this one lacks.
    CheckpointMissingHere {
        /// The checkpoint's seq.
        checkpoint: u64,
    },
    /// Both copies have a checkpoint at this seq, but they differ.
    CheckpointsDiffer {
        /// The checkpoint's seq.
        checkpoint: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(reason) => write!(f, "unreadable entry ({reason})"),
            Self::IncompleteLastLine => {
                f.write_str("the last line is incomplete (an interrupted write or a cut file)")
            }
            Self::Gap { expected, found } => write!(
                f,
                "expected seq {expected}, found {found}: records {expected}..{} were deleted or moved",
                found - 1
            ),
            Self::OutOfOrder { expected, found } => write!(
                f,
                "expected seq {expected}, found {found}: a record was inserted, duplicated or moved"
            ),
            Self::BrokenLink { previous: 0 } => f.write_str(
                "the first record's prev_hash is not all zeros: the log does not start here",
            ),
            Self::BrokenLink { previous } => write!(
                f,
                "prev_hash is not the hash of record {previous}: that record was rewritten, or \
                 records were inserted, removed or reordered between them"
            ),
            Self::Edited => {
                f.write_str("the content does not match the record's hash: it was edited")
            }
            Self::CheckpointMisplaced { checkpoint } => write!(
                f,
                "the checkpoint for seq {checkpoint} does not follow record {checkpoint}: entries were moved"
            ),
            Self::Truncated {
                last_record,
                checkpoint,
            } => write!(
                f,
                "a signed checkpoint covers records up to {checkpoint} but comes after record \
                 {last_record}: records {}..{checkpoint} were removed",
                last_record + 1
            ),
            Self::RewrittenUnderCheckpoint {
                checkpoint,
                previous,
            } => write!(
                f,
                "record {checkpoint} does not have the hash signed by its checkpoint: records \
                 after {previous} were rewritten and re-chained"
            ),
            Self::UnknownKey { key_id } => write!(
                f,
                "the checkpoint is signed by key {key_id}, which is not a trusted audit key \
                 (wrong public key, or a forged checkpoint)"
            ),
            Self::BadSignature { key_id } => write!(
                f,
                "the checkpoint's signature does not verify under key {key_id}: it was forged or altered"
            ),
            Self::MissingCheckpoint {
                missing,
                referenced_by,
            } => write!(
                f,
                "the checkpoint for seq {missing} is missing (the checkpoint for seq \
                 {referenced_by} refers to it): it was removed"
            ),
            Self::CheckpointOutOfOrder { previous, claimed } => write!(
                f,
                "the checkpoint says the previous one is at seq {claimed}, but it is at \
                 {previous}: checkpoints were inserted or reordered"
            ),
            Self::Diverged { other } => write!(
                f,
                "the file and the database differ at this record (the other copy: {other}); \
                 one of them was changed"
            ),
            Self::ShorterThanOther {
                last_record,
                other_last,
            } => write!(
                f,
                "this copy ends at seq {last_record} but the other continues to {other_last}: \
                 records were cut from its end (or a write is still in flight — rerun)"
            ),
            Self::CheckpointMissingHere { checkpoint } => write!(
                f,
                "the other copy has a checkpoint for seq {checkpoint} that this one lacks: it was removed"
            ),
            Self::CheckpointsDiffer { checkpoint } => write!(
                f,
                "the checkpoints for seq {checkpoint} differ between the copies"
            ),
        }
    }
}

/// Verifies the JSON-lines file (or an export) at `path` on its own.
pub async fn verify_file(path: &Path, options: &VerifyOptions) -> Result<Verification, AuditError> {
    let mut reader = Reader::File(FileReader::open(path).await?);
    verify_one(&mut reader, options).await
}

/// Verifies the database tables on their own.
pub async fn verify_store(
    store: &dyn AuditStore,
    options: &VerifyOptions,
) -> Result<Verification, AuditError> {
    let mut reader = Reader::Store(StoreReader::new(store, ReadRecords::Yes));
    verify_one(&mut reader, options).await
}

/// Verifies the configured sinks and cross-checks them, as `rampart audit verify`
/// does: `database` and `path` as in [`super::AuditOptions`].
///
/// - database only: [`verify_store`];
/// - file only: [`verify_file`], then every checkpoint the database keeps must be in
///   the file (this is what detects a file cut after its last checkpoint);
/// - both: both are verified in lockstep, and must hold the same records and the
///   same checkpoints.
pub async fn verify_sinks(
    store: &dyn AuditStore,
    database: bool,
    path: Option<&Path>,
    options: &VerifyOptions,
) -> Result<Verification, AuditError> {
    match (database, path) {
        (false, None) => Err(AuditError::NoSink),
        (true, None) => verify_store(store, options).await,
        (database, Some(path)) => {
            let file = Reader::File(FileReader::open(path).await?);
            let db = Reader::Store(StoreReader::new(
                store,
                if database {
                    ReadRecords::Yes
                } else {
                    ReadRecords::No
                },
            ));
            cross_check(file, db, database, options).await
        }
    }
}

async fn verify_one(
    reader: &mut Reader<'_>,
    options: &VerifyOptions,
) -> Result<Verification, AuditError> {
    let mut verifier = ChainVerifier::new(reader.source(), options);
    loop {
        match verifier.next_record(reader).await? {
            Step::Record(_) => {}
            Step::End => return Ok(Verification::Intact(verifier.report())),
            Step::Broken(finding) => return Ok(Verification::Broken(finding)),
        }
    }
}

/// Both copies in lockstep. With `records_in_db == false` the database holds only
/// checkpoints, which are compared at the end.
async fn cross_check(
    mut file: Reader<'_>,
    mut db: Reader<'_>,
    records_in_db: bool,
    options: &VerifyOptions,
) -> Result<Verification, AuditError> {
    let mut fv = ChainVerifier::new(Source::File, options);
    let mut dv = ChainVerifier::new(Source::Database, options);
    if !records_in_db {
        // The database side is checkpoints only: read them all (they are few) and
        // check their signatures and links among themselves.
        dv.anchors_only = true;
    }
    loop {
        let f = match fv.next_record(&mut file).await? {
            Step::Broken(finding) => return Ok(Verification::Broken(finding)),
            Step::Record(r) => Some(r),
            Step::End => None,
        };
        let d = match dv.next_record(&mut db).await? {
            Step::Broken(finding) => return Ok(Verification::Broken(finding)),
            Step::Record(r) => Some(r),
            Step::End => None,
        };
        match (f, d) {
            (Some(f), Some(d)) => {
                if f.hash != d.hash {
                    return Ok(Verification::Broken(Finding {
                        source: Source::File,
                        seq: f.seq,
                        location: f.location,
                        problem: Problem::Diverged { other: d.location },
                    }));
                }
            }
            (Some(f), None) if records_in_db => {
                let last = dv.last.as_ref().map_or(0, |l| l.seq);
                return Ok(Verification::Broken(Finding {
                    source: Source::Database,
                    seq: last + 1,
                    location: Location::End,
                    problem: Problem::ShorterThanOther {
                        last_record: last,
                        other_last: fv.drain_head(&mut file, f.seq).await?,
                    },
                }));
            }
            (None, Some(d)) => {
                let last = fv.last.as_ref().map_or(0, |l| l.seq);
                return Ok(Verification::Broken(Finding {
                    source: Source::File,
                    seq: last + 1,
                    location: Location::End,
                    problem: Problem::ShorterThanOther {
                        last_record: last,
                        other_last: dv.drain_head(&mut db, d.seq).await?,
                    },
                }));
            }
            (Some(_), None) => {}
            (None, None) => break,
        }
    }
    if let Some(finding) = compare_checkpoints(&fv, &dv) {
        return Ok(Verification::Broken(finding));
    }
    let mut report = fv.report();
    report.sources = vec![Source::File, Source::Database];
    Ok(Verification::Intact(report))
}

/// Every checkpoint must be in both copies, identical. Reports the lowest seq.
fn compare_checkpoints(file: &ChainVerifier<'_>, db: &ChainVerifier<'_>) -> Option<Finding> {
    let (mut fi, mut di) = (file.seen.iter().peekable(), db.seen.iter().peekable());
    let file_last = file.last.as_ref().map_or(0, |l| l.seq);
    loop {
        match (fi.peek(), di.peek()) {
            (None, None) => return None,
            (Some((fc, floc)), Some((dc, _))) if fc.seq == dc.seq => {
                if fc != dc {
                    return Some(Finding {
                        source: Source::File,
                        seq: fc.seq,
                        location: floc.clone(),
                        problem: Problem::CheckpointsDiffer { checkpoint: fc.seq },
                    });
                }
                fi.next();
                di.next();
            }
            (Some((fc, _)), Some((dc, _))) if fc.seq < dc.seq => {
                return Some(database_lacks(fc));
            }
            (Some((fc, _)), None) => return Some(database_lacks(fc)),
            (_, Some((dc, _))) => {
                // Only the database has it. Past the file's last record it is a cut
                // file; otherwise the checkpoint line was taken out.
                let problem = if dc.seq > file_last {
                    Problem::Truncated {
                        last_record: file_last,
                        checkpoint: dc.seq,
                    }
                } else {
                    Problem::CheckpointMissingHere { checkpoint: dc.seq }
                };
                let (seq, location) = if dc.seq > file_last {
                    (file_last + 1, Location::End)
                } else {
                    (dc.seq, Location::AfterRecord(dc.seq))
                };
                return Some(Finding {
                    source: Source::File,
                    seq,
                    location,
                    problem,
                });
            }
        }
    }
}

fn database_lacks(checkpoint: &Checkpoint) -> Finding {
    Finding {
        source: Source::Database,
        seq: checkpoint.seq,
        location: Location::CheckpointRow(seq_to_i64(checkpoint.seq)),
        problem: Problem::CheckpointMissingHere {
            checkpoint: checkpoint.seq,
        },
    }
}

/// The outcome of reading up to the next record.
enum Step {
    Record(SeenRecord),
    End,
    Broken(Finding),
}

/// A record as the lockstep comparison needs it.
struct SeenRecord {
    seq: u64,
    hash: ChainHash,
    location: Location,
}

struct Last {
    seq: u64,
    hash: ChainHash,
}

/// The per-copy checks, fed one entry at a time.
pub(crate) struct ChainVerifier<'o> {
    source: Source,
    options: &'o VerifyOptions,
    /// Checkpoints only (a database without records): no position checks.
    anchors_only: bool,
    last: Option<Last>,
    last_checkpoint: Option<u64>,
    records: u64,
    first_seq: Option<u64>,
    /// Every checkpoint seen, with its location, for the cross-check.
    seen: Vec<(Checkpoint, Location)>,
}

impl<'o> ChainVerifier<'o> {
    pub(crate) fn new(source: Source, options: &'o VerifyOptions) -> Self {
        Self {
            source,
            options,
            anchors_only: false,
            last: None,
            last_checkpoint: None,
            records: 0,
            first_seq: None,
            seen: Vec::new(),
        }
    }

    /// Reads entries until the next record (checking checkpoints on the way).
    async fn next_record(&mut self, reader: &mut Reader<'_>) -> Result<Step, AuditError> {
        loop {
            let Some((location, entry)) = reader.next().await? else {
                return Ok(Step::End);
            };
            let entry = match entry {
                Ok(entry) => entry,
                Err(problem) => {
                    let seq = self.last.as_ref().map_or(1, |l| l.seq + 1);
                    return Ok(Step::Broken(self.finding(seq, location, problem)));
                }
            };
            match entry {
                Entry::Record(record) => {
                    if let Err((seq, problem)) = self.check_record(&record) {
                        return Ok(Step::Broken(self.finding(seq, location, problem)));
                    }
                    return Ok(Step::Record(SeenRecord {
                        seq: record.seq,
                        hash: record.hash,
                        location,
                    }));
                }
                Entry::Checkpoint(cp) => {
                    if let Err((seq, problem)) = self.check_checkpoint(&cp) {
                        return Ok(Step::Broken(self.finding(seq, location, problem)));
                    }
                    self.seen.push((cp, location));
                }
            }
        }
    }

    /// Verifies the rest of a copy that has outrun the other, and returns its last
    /// seq (the first problem in it, if any, is secondary to its being longer).
    async fn drain_head(
        &mut self,
        reader: &mut Reader<'_>,
        mut last: u64,
    ) -> Result<u64, AuditError> {
        while let Step::Record(r) = self.next_record(reader).await? {
            last = r.seq;
        }
        Ok(last)
    }

    fn check_record(&mut self, record: &AuditRecord) -> Result<(), (u64, Problem)> {
        match &self.last {
            None if self.options.start == Start::Genesis => {
                if record.seq != 1 {
                    return Err((
                        1,
                        Problem::Gap {
                            expected: 1,
                            found: record.seq,
                        },
                    ));
                }
                if record.prev_hash != ChainHash::GENESIS {
                    return Err((record.seq, Problem::BrokenLink { previous: 0 }));
                }
            }
            None => {}
            Some(last) => {
                let expected = last.seq + 1;
                if record.seq > expected {
                    return Err((
                        expected,
                        Problem::Gap {
                            expected,
                            found: record.seq,
                        },
                    ));
                }
                if record.seq < expected {
                    return Err((
                        record.seq,
                        Problem::OutOfOrder {
                            expected,
                            found: record.seq,
                        },
                    ));
                }
                if record.prev_hash != last.hash {
                    return Err((record.seq, Problem::BrokenLink { previous: last.seq }));
                }
            }
        }
        if record.compute_hash() != record.hash {
            return Err((record.seq, Problem::Edited));
        }
        self.records += 1;
        self.first_seq.get_or_insert(record.seq);
        self.last = Some(Last {
            seq: record.seq,
            hash: record.hash,
        });
        Ok(())
    }

    fn check_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), (u64, Problem)> {
        // The signature first: an unsigned claim says nothing about the records.
        match cp.verify(&self.options.keys) {
            Ok(()) => {}
            Err(SignatureCheck::UnknownKey) => {
                return Err((
                    cp.seq,
                    Problem::UnknownKey {
                        key_id: cp.key_id.clone(),
                    },
                ));
            }
            Err(SignatureCheck::BadSignature) => {
                return Err((
                    cp.seq,
                    Problem::BadSignature {
                        key_id: cp.key_id.clone(),
                    },
                ));
            }
        }
        let previous = self.last_checkpoint.unwrap_or(0);
        let first_of_export =
            self.last_checkpoint.is_none() && self.options.start == Start::Anywhere;
        if first_of_export {
            // Its predecessor is before the export, unless it is inside it.
            let start = self.first_seq.unwrap_or(cp.seq);
            if cp.prev_seq >= start && !self.anchors_only {
                return Err((
                    cp.prev_seq,
                    Problem::MissingCheckpoint {
                        missing: cp.prev_seq,
                        referenced_by: cp.seq,
                    },
                ));
            }
        } else if cp.prev_seq > previous {
            return Err((
                cp.prev_seq,
                Problem::MissingCheckpoint {
                    missing: cp.prev_seq,
                    referenced_by: cp.seq,
                },
            ));
        } else if cp.prev_seq < previous || cp.seq <= previous {
            return Err((
                cp.seq,
                Problem::CheckpointOutOfOrder {
                    previous,
                    claimed: cp.prev_seq,
                },
            ));
        }
        if !self.anchors_only {
            let Some(last) = &self.last else {
                return Err((cp.seq, Problem::CheckpointMisplaced { checkpoint: cp.seq }));
            };
            if cp.seq > last.seq {
                return Err((
                    last.seq + 1,
                    Problem::Truncated {
                        last_record: last.seq,
                        checkpoint: cp.seq,
                    },
                ));
            }
            if cp.seq < last.seq {
                return Err((cp.seq, Problem::CheckpointMisplaced { checkpoint: cp.seq }));
            }
            if cp.hash != last.hash {
                return Err((
                    cp.seq,
                    Problem::RewrittenUnderCheckpoint {
                        checkpoint: cp.seq,
                        previous,
                    },
                ));
            }
        }
        self.last_checkpoint = Some(cp.seq);
        Ok(())
    }

    fn finding(&self, seq: u64, location: Location, problem: Problem) -> Finding {
        Finding {
            source: self.source,
            seq,
            location,
            problem,
        }
    }

    fn report(&self) -> VerifyReport {
        let head = self.last.as_ref().map(|l| Head {
            seq: l.seq,
            hash: l.hash,
        });
        let unsigned = match (&head, self.last_checkpoint) {
            (Some(h), Some(c)) => h.seq.saturating_sub(c),
            (Some(_), None) => self.records,
            (None, _) => 0,
        };
        VerifyReport {
            records: self.records,
            checkpoints: self.seen.len() as u64,
            first_seq: self.first_seq,
            head,
            last_checkpoint: self.last_checkpoint,
            unsigned,
            sources: vec![self.source],
        }
    }
}
