//! `rampart audit verify`: walks a log and names the first thing wrong with it.
//!
//! # A contiguous log: the database, or an export
//!
//! In log order:
//!
//! 1. every line/row parses strictly ([`super::format`]);
//! 2. record seqs run 1, 2, 3, … — a jump means records were deleted, a repeat or a
//!    step back means one was inserted, duplicated or moved;
//! 3. each `prev_hash` equals the previous record's `hash` — a mismatch means the
//!    neighbour was rewritten, or records were inserted or removed between them;
//! 4. each `hash` equals SHA-256 of the record's canonical encoding — a mismatch means
//!    the record was edited (its writer id and file position included);
//! 5. each checkpoint is signed by a trusted key (unknown key id: wrong key or a
//!    forged checkpoint; bad signature: forged or altered), sits right after the
//!    record it covers, matches that record's hash (a mismatch means the chain was
//!    rewritten under it), and links to the previous checkpoint through `prev_seq` (a
//!    checkpoint that was removed from the middle is named by the next one);
//! 6. a checkpoint whose seq is past the last record proves that signed records were
//!    cut from the end.
//!
//! Records from every writer are in one chain, so none of this depends on who wrote
//! what.
//!
//! # A process's audit file
//!
//! The file (`audit.path`) holds only the records its process wrote — with the seq
//! and hash they got in the shared chain — and the checkpoints it signed, so its seqs
//! increase but skip. [`verify_sinks`] checks it against the database, entry by entry
//! in log order:
//!
//! 1. every line parses strictly, and each entry comes after the one before
//!    (records by seq, a checkpoint after the record with its seq);
//! 2. each record's hash matches its content (an edited line is named as edited);
//! 3. each record names the record before it in the file (`file_prev_seq`; 0 for the
//!    first record of the file): a mismatch means lines were removed or inserted;
//! 4. each checkpoint line is signed by a trusted key;
//! 5. each entry equals the database's entry at the same place, content and hash —
//!    so each file record's `prev_hash` link is the database chain's link, which the
//!    database walk verifies;
//! 6. the database holds nothing that belongs in the file and is not there: a record
//!    continuing the file (`file_prev_seq` = the file's record before it), or a
//!    record or checkpoint by the writer of the file's last record after it. At the
//!    file's end this is what detects a cut file (the database shows records by the
//!    file's writer, or continuing it, after its last record).
//!
//! With `database` set the whole database chain is verified too; without it only the
//! part from just before the file's first record.
//!
//! # What cannot be detected, and why
//!
//! The chain is unkeyed, so one copy on its own proves only what its checkpoints
//! cover. **Records after the last checkpoint can be dropped from the end of the
//! database, together with any later checkpoints, without trace in the database** —
//! there is nothing after the cut left to disagree. Such tail truncation is
//! detectable only against something the attacker did not also cut: the audit files
//! of the processes that wrote those records (each holds its own), or a checkpoint or
//! export kept elsewhere. The window is bounded by the checkpoint cadence (default:
//! 1000 records or five minutes; each process also signs on shutdown). Likewise, a
//! database whose end was rewritten after its last checkpoint verifies on its own; a
//! file holding those records names the first differing one. Records written by a
//! process without a file (or while another process held it) are in no file: for
//! them the database and its checkpoints are the only evidence.
//!
//! In a file: **a file emptied completely** is not detected (the records that start a
//! file cannot be told apart between files), and neither is a cut while its writer's
//! append is still in flight or lost in a crash (the database commits first; the
//! report says "or a write is still in flight", and the next start of a process on
//! that file copies the missing entries back). The file does not prove the order of
//! other writers' records. An export starts wherever it was cut
//! ([`Start::Anywhere`]), so records removed from its beginning are not detectable.
//! Writer ids are not authenticated: anyone who can write the database can claim any
//! id for rows they add (which the chain and the checkpoints still catch). An
//! attacker holding the audit signing key (the master key and the database) can
//! forge everything; that is outside this design.

use std::fmt;
use std::path::Path;

use rampart_crypto::signing::PublicKey;

use super::AuditError;
use super::chain::{AuditRecord, ChainHash};
use super::checkpoint::{Checkpoint, SignatureCheck};
use super::format::{Entry, Position, seq_to_i64};
use super::read::{FileReader, ReadRecords, Reader, StoreReader};
use super::store::AuditStore;
use super::writer_id::WriterId;

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
    /// What a process's audit file held, when one was checked against the database
    /// (the other fields then describe the database).
    pub file: Option<FileReport>,
}

/// What a process's audit file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileReport {
    /// Number of records.
    pub records: u64,
    /// Number of checkpoints.
    pub checkpoints: u64,
    /// Seq of the last record.
    pub last_seq: Option<u64>,
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
    /// In a process's file: an entry does not come after the one before it.
    NotAfterPrevious {
        /// The seq of the entry before.
        previous: u64,
        /// This entry's seq.
        found: u64,
    },
    /// In a process's file: the record's `file_prev_seq` is not the file's record
    /// before it.
    FileLinkBroken {
        /// What the record says came before it in its file (`None`: it was written
        /// without a file).
        claimed: Option<u64>,
        /// The record before it here (0: none).
        previous: u64,
    },
    /// The database has a record that belongs in this process's file at this place
    /// (it continues the file, or its writer wrote the file's record before), and the
    /// file lacks it.
    MissingFromFile,
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
            Self::NotAfterPrevious { previous, found } => write!(
                f,
                "seq {found} does not come after the entry before it (seq {previous}): \
                 entries were inserted, duplicated or moved"
            ),
            Self::FileLinkBroken {
                claimed: None,
                previous: _,
            } => f.write_str(
                "the record was written without a file copy, so it does not belong in this \
                 file: it was inserted",
            ),
            Self::FileLinkBroken {
                claimed: Some(claimed),
                previous,
            } if claimed > previous => write!(
                f,
                "the record follows record {claimed} in its writer's file, but the record \
                 before it here is {previous}: records were removed from the file"
            ),
            Self::FileLinkBroken {
                claimed: Some(claimed),
                previous,
            } => write!(
                f,
                "the record follows record {claimed} in its writer's file, but the record \
                 before it here is {previous}: records were inserted or moved"
            ),
            Self::MissingFromFile => f.write_str(
                "the database holds this record, written to this file, but the file lacks \
                 it: it was removed from the file",
            ),
        }
    }
}

/// Verifies a contiguous JSON-lines log — an export, or a file written by a single
/// process — at `path` on its own. A process's audit file in a multi-writer
/// deployment skips the other writers' seqs: check it with [`verify_sinks`].
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

/// Verifies the configured sinks as `rampart audit verify` does: `database` and
/// `path` as in [`super::AuditOptions`].
///
/// - database only: [`verify_store`];
/// - file only: the process's file, checked against the database's records and
///   checkpoints from just before its first record on (see the module docs);
/// - both: the whole database chain, and the file checked against it.
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
            let file = FileSide::new(FileReader::open(path).await?, options);
            let scope = if database {
                Scope::Whole
            } else {
                Scope::FromFile
            };
            verify_copy(store, file, scope, options).await
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
            Step::Record => {}
            Step::End => return Ok(Verification::Intact(verifier.report())),
            Step::Broken(finding) => return Ok(Verification::Broken(finding)),
        }
    }
}

/// How much of the database a file is checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// All of it, verified from seq 1.
    Whole,
    /// From the record before the file's first entry.
    FromFile,
}

/// A process's file against the database, merged in log order (see the module docs).
async fn verify_copy(
    store: &dyn AuditStore,
    mut file: FileSide,
    scope: Scope,
    options: &VerifyOptions,
) -> Result<Verification, AuditError> {
    let db_options;
    let (mut db, options_for_db) = match scope {
        Scope::Whole => (
            Reader::Store(StoreReader::new(store, ReadRecords::Yes)),
            options,
        ),
        Scope::FromFile => {
            let first = match file.peek().await? {
                Peek::Broken(finding) => return Ok(Verification::Broken(finding)),
                Peek::Entry(position) => position.seq(),
                Peek::End => 1,
            };
            // The record before the file's first one, whose hash the first links to.
            let after = seq_to_i64(first.saturating_sub(2));
            db_options = VerifyOptions {
                keys: options.keys.clone(),
                start: Start::Anywhere,
            };
            (
                Reader::Store(StoreReader::starting_after(
                    store,
                    ReadRecords::Yes,
                    after,
                    after,
                )),
                &db_options,
            )
        }
    };
    let mut dv = ChainVerifier::new(Source::Database, options_for_db);
    while let Some((location, entry)) = db.next().await? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(problem) => return Ok(Verification::Broken(dv.malformed(location, problem))),
        };
        if let Err((seq, problem)) = dv.check(&entry) {
            return Ok(Verification::Broken(dv.finding(seq, location, problem)));
        }
        let position = entry.position();
        // The file's entries up to this place: at most one, equal to this one.
        match file.peek().await? {
            Peek::Broken(finding) => return Ok(Verification::Broken(finding)),
            Peek::Entry(next) if next <= position => {
                let (file_location, file_entry) = match file.take() {
                    Ok(taken) => taken,
                    Err(finding) => return Ok(Verification::Broken(finding)),
                };
                if next < position {
                    return Ok(Verification::Broken(database_lacks(&file_entry)));
                }
                if file_entry != entry {
                    return Ok(Verification::Broken(diverged(
                        &file_entry,
                        file_location,
                        location,
                    )));
                }
                file.verifier.accept(&file_entry);
            }
            Peek::Entry(_) | Peek::End => {
                if file.verifier.expects(&entry) {
                    let finding = missing_from_file(&mut file, &mut db, &mut dv, entry).await?;
                    return Ok(Verification::Broken(finding));
                }
            }
        }
    }
    // The database ended: anything left in the file is not in it.
    match file.peek().await? {
        Peek::Broken(finding) => return Ok(Verification::Broken(finding)),
        Peek::End => {}
        Peek::Entry(_) => {
            let (_, first) = match file.take() {
                Ok(taken) => taken,
                Err(finding) => return Ok(Verification::Broken(finding)),
            };
            file.verifier.accept(&first);
            let finding = match &first {
                Entry::Checkpoint(_) => database_lacks(&first),
                Entry::Record(r) => {
                    let last = dv.last.as_ref().map_or(0, |l| l.seq);
                    Finding {
                        source: Source::Database,
                        seq: last + 1,
                        location: Location::End,
                        problem: Problem::ShorterThanOther {
                            last_record: last,
                            other_last: file.drain(r.seq).await?,
                        },
                    }
                }
            };
            return Ok(Verification::Broken(finding));
        }
    }
    let mut report = dv.report();
    report.sources = match scope {
        Scope::Whole => vec![Source::File, Source::Database],
        Scope::FromFile => vec![Source::File],
    };
    report.file = Some(file.verifier.report());
    Ok(Verification::Intact(report))
}

/// The file has an entry where the database has none.
fn database_lacks(entry: &Entry) -> Finding {
    match entry {
        Entry::Checkpoint(c) => Finding {
            source: Source::Database,
            seq: c.seq,
            location: Location::CheckpointRow(seq_to_i64(c.seq)),
            problem: Problem::CheckpointMissingHere { checkpoint: c.seq },
        },
        Entry::Record(r) => Finding {
            source: Source::Database,
            seq: r.seq,
            location: Location::RecordRow(seq_to_i64(r.seq)),
            problem: Problem::ShorterThanOther {
                last_record: r.seq.saturating_sub(1),
                other_last: r.seq,
            },
        },
    }
}

/// The file's entry differs from the database's at the same place.
fn diverged(file_entry: &Entry, file_location: Location, db_location: Location) -> Finding {
    let (seq, problem) = match file_entry {
        Entry::Record(r) => (r.seq, Problem::Diverged { other: db_location }),
        Entry::Checkpoint(c) => (c.seq, Problem::CheckpointsDiffer { checkpoint: c.seq }),
    };
    Finding {
        source: Source::File,
        seq,
        location: file_location,
        problem,
    }
}

/// The database's `entry` belongs in the file here but the file does not have it.
async fn missing_from_file(
    file: &mut FileSide,
    db: &mut Reader<'_>,
    dv: &mut ChainVerifier<'_>,
    entry: Entry,
) -> Result<Finding, AuditError> {
    let location = match file.peek_location() {
        Some(location) => location.clone(),
        None => Location::End,
    };
    let at_end = location == Location::End;
    let finding = match entry {
        Entry::Checkpoint(c) => Finding {
            source: Source::File,
            seq: c.seq,
            location,
            problem: Problem::CheckpointMissingHere { checkpoint: c.seq },
        },
        Entry::Record(r) if at_end => {
            let last_record = file.verifier.last_record.as_ref().map_or(0, |l| l.0);
            let mut belongs = Belongs {
                seq: r.seq,
                writer: r.writer.clone(),
            };
            // How far the file's part of the database goes, for the report. Problems
            // further on are secondary to the cut.
            while let Some((_, Ok(next))) = db.next().await? {
                if dv.check(&next).is_err() {
                    break;
                }
                if let Entry::Record(n) = next {
                    belongs.extend(&n);
                }
            }
            Finding {
                source: Source::File,
                seq: r.seq,
                location,
                problem: Problem::ShorterThanOther {
                    last_record,
                    other_last: belongs.seq,
                },
            }
        }
        Entry::Record(r) => Finding {
            source: Source::File,
            seq: r.seq,
            location,
            problem: Problem::MissingFromFile,
        },
    };
    Ok(finding)
}

/// The last database record that belongs in a file, followed onwards.
struct Belongs {
    seq: u64,
    writer: WriterId,
}

impl Belongs {
    fn extend(&mut self, record: &AuditRecord) {
        if record.file_prev_seq == Some(self.seq) || record.writer == self.writer {
            self.seq = record.seq;
            self.writer = record.writer.clone();
        }
    }
}

/// What the file offers next.
enum Peek {
    Entry(Position),
    End,
    Broken(Finding),
}

/// The file being read, one entry ahead, with the file's own checks.
struct FileSide {
    reader: Reader<'static>,
    next: Option<(Location, Entry)>,
    verifier: CopyVerifier,
}

impl FileSide {
    fn new(reader: FileReader, options: &VerifyOptions) -> Self {
        Self {
            reader: Reader::File(reader),
            next: None,
            verifier: CopyVerifier::new(options.keys.clone()),
        }
    }

    /// The next entry's place, reading it if needed. An unreadable line is reported
    /// at once: nothing after it can be placed.
    async fn peek(&mut self) -> Result<Peek, AuditError> {
        if self.next.is_none() {
            match self.reader.next().await? {
                None => return Ok(Peek::End),
                Some((location, Ok(entry))) => self.next = Some((location, entry)),
                Some((location, Err(problem))) => {
                    let seq = self.verifier.last_position.map_or(1, |p| p.seq() + 1);
                    return Ok(Peek::Broken(Finding {
                        source: Source::File,
                        seq,
                        location,
                        problem,
                    }));
                }
            }
        }
        Ok(self
            .next
            .as_ref()
            .map_or(Peek::End, |(_, entry)| Peek::Entry(entry.position())))
    }

    fn peek_location(&self) -> Option<&Location> {
        self.next.as_ref().map(|(location, _)| location)
    }

    /// Takes the peeked entry, with the file's own checks.
    fn take(&mut self) -> Result<(Location, Entry), Finding> {
        let Some((location, entry)) = self.next.take() else {
            return Err(Finding {
                source: Source::File,
                seq: 0,
                location: Location::End,
                problem: Problem::Malformed("nothing to read".into()),
            });
        };
        match self.verifier.check(&entry) {
            Ok(()) => Ok((location, entry)),
            Err((seq, problem)) => Err(Finding {
                source: Source::File,
                seq,
                location,
                problem,
            }),
        }
    }

    /// Reads the rest of a file that has outrun the database and returns its last
    /// record's seq (a problem in it is secondary to its being longer).
    async fn drain(&mut self, mut last: u64) -> Result<u64, AuditError> {
        while let Peek::Entry(_) = self.peek().await? {
            match self.take() {
                Ok((_, Entry::Record(r))) => {
                    last = r.seq;
                    self.verifier.accept(&Entry::Record(r));
                }
                Ok((_, entry)) => self.verifier.accept(&entry),
                Err(_) => break,
            }
        }
        Ok(last)
    }
}

/// The checks a process's file passes on its own (see the module docs, 1–4).
struct CopyVerifier {
    keys: Vec<rampart_crypto::signing::PublicKey>,
    last_position: Option<Position>,
    /// Seq and writer of the last record.
    last_record: Option<(u64, WriterId)>,
    records: u64,
    checkpoints: u64,
}

impl CopyVerifier {
    fn new(keys: Vec<rampart_crypto::signing::PublicKey>) -> Self {
        Self {
            keys,
            last_position: None,
            last_record: None,
            records: 0,
            checkpoints: 0,
        }
    }

    fn check(&self, entry: &Entry) -> Result<(), (u64, Problem)> {
        if let Some(previous) = self.last_position
            && entry.position() <= previous
        {
            return Err((
                entry.seq(),
                Problem::NotAfterPrevious {
                    previous: previous.seq(),
                    found: entry.seq(),
                },
            ));
        }
        match entry {
            Entry::Record(r) => {
                if r.compute_hash() != r.hash {
                    return Err((r.seq, Problem::Edited));
                }
                let previous = self.last_record.as_ref().map_or(0, |l| l.0);
                if r.file_prev_seq != Some(previous) {
                    // A removal is named by the first record missing.
                    let seq = match r.file_prev_seq {
                        Some(claimed) if claimed > previous => claimed,
                        _ => r.seq,
                    };
                    return Err((
                        seq,
                        Problem::FileLinkBroken {
                            claimed: r.file_prev_seq,
                            previous,
                        },
                    ));
                }
            }
            Entry::Checkpoint(c) => signature(c, &self.keys)?,
        }
        Ok(())
    }

    fn accept(&mut self, entry: &Entry) {
        self.last_position = Some(entry.position());
        match entry {
            Entry::Record(r) => {
                self.records += 1;
                self.last_record = Some((r.seq, r.writer.clone()));
            }
            Entry::Checkpoint(_) => self.checkpoints += 1,
        }
    }

    /// Whether the database's `entry`, past the file's last entry, must be the
    /// file's next one (see the module docs, 6).
    fn expects(&self, entry: &Entry) -> bool {
        let Some((seq, writer)) = &self.last_record else {
            return false;
        };
        match entry {
            Entry::Record(r) => r.file_prev_seq == Some(*seq) || r.writer == *writer,
            Entry::Checkpoint(c) => c.writer == *writer,
        }
    }

    fn report(&self) -> FileReport {
        FileReport {
            records: self.records,
            checkpoints: self.checkpoints,
            last_seq: self.last_record.as_ref().map(|l| l.0),
        }
    }
}

/// A checkpoint's signature against the trusted keys.
fn signature(
    cp: &Checkpoint,
    keys: &[rampart_crypto::signing::PublicKey],
) -> Result<(), (u64, Problem)> {
    match cp.verify(keys) {
        Ok(()) => Ok(()),
        Err(SignatureCheck::UnknownKey) => Err((
            cp.seq,
            Problem::UnknownKey {
                key_id: cp.key_id.clone(),
            },
        )),
        Err(SignatureCheck::BadSignature) => Err((
            cp.seq,
            Problem::BadSignature {
                key_id: cp.key_id.clone(),
            },
        )),
    }
}

/// The outcome of reading up to the next record.
enum Step {
    Record,
    End,
    Broken(Finding),
}

struct Last {
    seq: u64,
    hash: ChainHash,
}

/// The checks of a contiguous log, fed one entry at a time.
pub(crate) struct ChainVerifier<'o> {
    source: Source,
    options: &'o VerifyOptions,
    last: Option<Last>,
    last_checkpoint: Option<u64>,
    records: u64,
    checkpoints: u64,
    first_seq: Option<u64>,
}

impl<'o> ChainVerifier<'o> {
    pub(crate) fn new(source: Source, options: &'o VerifyOptions) -> Self {
        Self {
            source,
            options,
            last: None,
            last_checkpoint: None,
            records: 0,
            checkpoints: 0,
            first_seq: None,
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
                Err(problem) => return Ok(Step::Broken(self.malformed(location, problem))),
            };
            if let Err((seq, problem)) = self.check(&entry) {
                return Ok(Step::Broken(self.finding(seq, location, problem)));
            }
            if let Entry::Record(_) = entry {
                return Ok(Step::Record);
            }
        }
    }

    /// Checks the next entry in log order.
    fn check(&mut self, entry: &Entry) -> Result<(), (u64, Problem)> {
        match entry {
            Entry::Record(record) => self.check_record(record),
            Entry::Checkpoint(cp) => self.check_checkpoint(cp),
        }
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
        signature(cp, &self.options.keys)?;
        let previous = self.last_checkpoint.unwrap_or(0);
        let first_of_export =
            self.last_checkpoint.is_none() && self.options.start == Start::Anywhere;
        if first_of_export {
            // Its predecessor is before the export, unless it is inside it.
            let start = self.first_seq.unwrap_or(cp.seq);
            if cp.prev_seq >= start {
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
        self.last_checkpoint = Some(cp.seq);
        self.checkpoints += 1;
        Ok(())
    }

    /// An entry that cannot be read, named at the seq that would come next.
    fn malformed(&self, location: Location, problem: Problem) -> Finding {
        let seq = self.last.as_ref().map_or(1, |l| l.seq + 1);
        self.finding(seq, location, problem)
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
            checkpoints: self.checkpoints,
            first_seq: self.first_seq,
            head,
            last_checkpoint: self.last_checkpoint,
            unsigned,
            sources: vec![self.source],
            file: None,
        }
    }
}
