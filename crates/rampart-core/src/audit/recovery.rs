//! Reading the chain head, and bringing a process's audit file level with the
//! database when the process takes the file.
//!
//! # The head
//!
//! [`load_head`] reads the last checkpoint, then the last record (in that order: a
//! checkpoint commits with or after its record, so the record read second is at or
//! past it). It fails closed with [`AuditError::CorruptDatabase`] when the head does
//! not verify — the last record's hash does not match its content, a checkpoint
//! covers a record that is not there, or the record under the last checkpoint does
//! not have the signed hash: a writer never extends a log it cannot vouch for.
//!
//! # The file
//!
//! The writer appends to its file *after* the database commit, so in normal
//! operation the file is never ahead of the database, and a crash between the two
//! leaves the file missing at most that process's last transaction. When a process
//! takes a file (at start, or later once another process releases it),
//! [`reconcile_file`] compares them:
//!
//! - **The file holds entries the database lacks.** That is a lost database write
//!   (a database restored from an older backup) or a forged line. It is repaired —
//!   the entries copied into the database — only when they *directly extend* the
//!   database's head: records at exactly the next seqs, each linking to the one
//!   before (the first to the database's last record), with valid hashes; and
//!   checkpoints that follow their record, continue the database's checkpoint chain
//!   and verify under this instance's audit key. That is the single-writer case, where
//!   the file is a complete copy. Anything else — a sparse multi-writer file ahead of
//!   the database, a record that links elsewhere — is refused with
//!   [`AuditError::SinksDisagree`]: copying it would let whoever can write the file
//!   put records into the signed chain.
//! - **The file's last record or checkpoint differs from the database's at that
//!   seq.** Refused: one copy was changed.
//! - **The database holds entries that belong in the file.** Records that continue
//!   the file (`file_prev_seq` = the file's last record, followed onwards) and
//!   checkpoints signed by the writer of the file's last record after it: an append
//!   interrupted by a crash (or a file restored from an older backup). They are copied
//!   from the database, with a warning. Copying database content into the file
//!   cannot introduce anything the chain does not already hold.
//!
//! A file with no records is not matched against the database: records that start a
//! file (`file_prev_seq` = 0) cannot be attributed to one file among several.

use rampart_crypto::signing::PublicKey;
use time::OffsetDateTime;

use super::AuditError;
use super::chain::{AuditRecord, ChainHash};
use super::checkpoint::Checkpoint;
use super::file_sink::FileHandle;
use super::format::{Entry, Position, seq_to_i64};
use super::store::AuditStore;

/// Entries copied per append while reconciling.
const COPY_BATCH: usize = 1000;

/// Checkpoint rows fetched per query while reconciling.
const PAGE: u32 = 1000;

/// The head of the shared chain as this writer last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainState {
    /// Seq of the last record (0: none).
    pub(crate) seq: u64,
    /// Its hash ([`ChainHash::GENESIS`] if none).
    pub(crate) hash: ChainHash,
    /// Seq of the last checkpoint (0: none).
    pub(crate) checkpoint_seq: u64,
    /// When the last checkpoint was signed (`no_checkpoint_time` if none): the timed
    /// checkpoint is due `checkpoint_interval` after it.
    pub(crate) checkpoint_time: OffsetDateTime,
}

/// Reads and checks the head of the chain in the database.
pub(crate) async fn load_head(
    store: &dyn AuditStore,
    no_checkpoint_time: OffsetDateTime,
) -> Result<ChainState, AuditError> {
    let checkpoint = db_last_checkpoint(store).await?;
    let record = db_last_record(store).await?;
    if let Some(r) = &record
        && r.compute_hash() != r.hash
    {
        return Err(bad_head(format!(
            "the last audit record (seq {}) does not match its hash: it was edited",
            r.seq
        )));
    }
    let seq = record.as_ref().map_or(0, |r| r.seq);
    if let Some(cp) = &checkpoint {
        if cp.seq > seq {
            return Err(bad_head(format!(
                "a checkpoint covers seq {} but the last record is {seq}: records were removed",
                cp.seq
            )));
        }
        let anchored = match record.as_ref().filter(|r| r.seq == cp.seq) {
            Some(r) => r.hash == cp.hash,
            None => db_record_at(store, cp.seq)
                .await?
                .is_some_and(|r| r.hash == cp.hash),
        };
        if !anchored {
            return Err(bad_head(format!(
                "the record at seq {} does not have the hash its checkpoint signed: the chain was rewritten",
                cp.seq
            )));
        }
    }
    Ok(ChainState {
        seq,
        hash: record.as_ref().map_or(ChainHash::GENESIS, |r| r.hash),
        checkpoint_seq: checkpoint.as_ref().map_or(0, |c| c.seq),
        checkpoint_time: checkpoint.as_ref().map_or(no_checkpoint_time, |c| c.time),
    })
}

/// Brings a file this process has just taken level with the database (see the
/// module docs) and returns the seq of the file's last record (0: none), which this
/// process's next record will name as its `file_prev_seq`.
pub(crate) async fn reconcile_file(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    key: &PublicKey,
) -> Result<u64, AuditError> {
    let head = load_head(store, OffsetDateTime::UNIX_EPOCH).await?;
    let db_position = if head.checkpoint_seq == head.seq && head.seq > 0 {
        Position::checkpoint(head.seq)
    } else {
        Position::record(head.seq)
    };
    let file_head = file.run(|s| s.head()).await?;
    let file_position = [
        file_head
            .last_record
            .as_ref()
            .map(|r| Position::record(r.seq)),
        file_head
            .last_checkpoint
            .as_ref()
            .map(|c| Position::checkpoint(c.seq)),
    ]
    .into_iter()
    .flatten()
    .max();
    if file_position.is_some_and(|p| p > db_position) {
        copy_file_to_db(store, file, &head, db_position, key).await?;
    }

    if let Some(fr) = &file_head.last_record {
        let same = db_record_at(store, fr.seq)
            .await?
            .is_some_and(|dr| dr == *fr);
        if !same {
            return Err(disagree(format!(
                "the audit file and the database hold different records at seq {}",
                fr.seq
            )));
        }
    }
    if let Some(fc) = &file_head.last_checkpoint {
        let same = db_checkpoint_at(store, fc.seq)
            .await?
            .is_some_and(|dc| dc == *fc);
        if !same {
            return Err(disagree(format!(
                "the audit file and the database hold different checkpoints for seq {}",
                fc.seq
            )));
        }
    }

    let Some(last) = file_head.last_record else {
        return Ok(0);
    };
    copy_db_to_file(store, file, last, file_position.unwrap_or(db_position)).await
}

fn bad_head(reason: String) -> AuditError {
    AuditError::CorruptDatabase {
        reason: format!("{reason}; refusing to extend the log, run `rampart audit verify`"),
    }
}

fn disagree(reason: impl Into<String>) -> AuditError {
    AuditError::SinksDisagree {
        reason: reason.into(),
    }
}

fn corrupt_db(what: &str, seq: i64, reason: &str) -> AuditError {
    AuditError::CorruptDatabase {
        reason: format!("{what} seq={seq}: {reason}"),
    }
}

fn parse_record(row: super::store::AuditRow) -> Result<AuditRecord, AuditError> {
    let seq = row.seq;
    AuditRecord::from_row(row).map_err(|m| corrupt_db("audit_records row", seq, &m.reason))
}

fn parse_checkpoint(row: super::store::CheckpointRow) -> Result<Checkpoint, AuditError> {
    let seq = row.seq;
    Checkpoint::from_row(row).map_err(|m| corrupt_db("audit_checkpoints row", seq, &m.reason))
}

async fn db_last_record(store: &dyn AuditStore) -> Result<Option<AuditRecord>, AuditError> {
    store
        .last_audit_record()
        .await?
        .map(parse_record)
        .transpose()
}

async fn db_last_checkpoint(store: &dyn AuditStore) -> Result<Option<Checkpoint>, AuditError> {
    store
        .last_audit_checkpoint()
        .await?
        .map(parse_checkpoint)
        .transpose()
}

/// The record at `seq`, if there is one.
pub(crate) async fn db_record_at(
    store: &dyn AuditStore,
    seq: u64,
) -> Result<Option<AuditRecord>, AuditError> {
    let seq = seq_to_i64(seq);
    match store.audit_records_after(seq - 1, 1).await?.pop() {
        Some(row) if row.seq == seq => parse_record(row).map(Some),
        _ => Ok(None),
    }
}

/// The checkpoint at `seq`, if there is one.
pub(crate) async fn db_checkpoint_at(
    store: &dyn AuditStore,
    seq: u64,
) -> Result<Option<Checkpoint>, AuditError> {
    let seq = seq_to_i64(seq);
    match store.audit_checkpoints_after(seq - 1, 1).await?.pop() {
        Some(row) if row.seq == seq => parse_checkpoint(row).map(Some),
        _ => Ok(None),
    }
}

/// The file is ahead of the database: copy its later entries over if, and only if,
/// they directly extend the database's head.
async fn copy_file_to_db(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    head: &ChainState,
    db_position: Position,
    key: &PublicKey,
) -> Result<(), AuditError> {
    let not_an_extension = |seq: u64| {
        disagree(format!(
            "the audit file holds entries the database lacks (from seq {seq}) that do not \
             directly extend the database's last record (seq {}): the database lost writes \
             (restored from an older backup?) or the file was tampered with",
            head.seq
        ))
    };
    let tail = file.run(move |s| s.tail_after(db_position)).await?;
    let (mut seq, mut hash, mut checkpoint) = (head.seq, head.hash, head.checkpoint_seq);
    let mut offset = tail.offset;
    let mut copied = 0usize;
    loop {
        let (entries, next) = file.run(move |s| s.read_from(offset, COPY_BATCH)).await?;
        if entries.is_empty() {
            break;
        }
        let mut rows = Vec::new();
        let mut checkpoints = Vec::new();
        for entry in entries {
            match entry {
                Entry::Record(r) => {
                    if r.seq != seq + 1 || r.prev_hash != hash || r.compute_hash() != r.hash {
                        return Err(not_an_extension(r.seq));
                    }
                    seq = r.seq;
                    hash = r.hash;
                    rows.push(r.to_row().map_err(AuditError::Encode)?);
                }
                Entry::Checkpoint(c) => {
                    let extends = c.seq == seq
                        && c.hash == hash
                        && c.prev_seq == checkpoint
                        && c.seq > checkpoint
                        && c.verify(std::slice::from_ref(key)).is_ok();
                    if !extends {
                        return Err(not_an_extension(c.seq));
                    }
                    checkpoint = c.seq;
                    checkpoints.push(c.to_row());
                }
            }
        }
        store.append_audit(&rows, &checkpoints).await?;
        copied += rows.len() + checkpoints.len();
        offset = next;
    }
    tracing::warn!(
        entries = copied,
        after_seq = head.seq,
        "the audit database lacked the audit file's last entries (a database restored from an older backup?); copied them"
    );
    Ok(())
}

/// Copies what the database holds for this file after its last entry: records
/// continuing it and checkpoints by the writer of its last record. Returns the seq
/// of the file's last record afterwards.
async fn copy_db_to_file(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    last: AuditRecord,
    mut position: Position,
) -> Result<u64, AuditError> {
    let mut writer = last.writer.clone();
    let mut last_seq = last.seq;
    let mut next_record = continuing(store, last_seq).await?;
    let mut checkpoints = CheckpointPages::after(position);
    let mut lines = String::new();
    let (mut records, mut signed, mut pending) = (0usize, 0usize, 0usize);
    loop {
        let next_checkpoint = checkpoints.peek(store).await?;
        let take_record = match (&next_record, next_checkpoint) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(r), Some(c)) => Position::record(r.seq) < Position::checkpoint(c.seq),
        };
        if take_record {
            let Some(r) = next_record.take() else { break };
            if Position::record(r.seq) <= position || r.compute_hash() != r.hash {
                return Err(disagree(format!(
                    "the database's record {} continues the audit file but cannot be appended to it",
                    r.seq
                )));
            }
            position = Position::record(r.seq);
            last_seq = r.seq;
            writer = r.writer.clone();
            lines.push_str(&Entry::Record(r).to_line().map_err(AuditError::Encode)?);
            records += 1;
            pending += 1;
            next_record = continuing(store, last_seq).await?;
        } else {
            let Some(c) = checkpoints.next() else { break };
            if c.writer == writer && Position::checkpoint(c.seq) > position {
                position = Position::checkpoint(c.seq);
                lines.push_str(&Entry::Checkpoint(c).to_line().map_err(AuditError::Encode)?);
                signed += 1;
                pending += 1;
            }
        }
        if pending >= COPY_BATCH {
            append(file, std::mem::take(&mut lines)).await?;
            pending = 0;
        }
    }
    if pending > 0 {
        append(file, lines).await?;
    }
    if records + signed > 0 {
        tracing::warn!(
            records,
            checkpoints = signed,
            "the audit file lacked entries its writer had committed to the database (an append interrupted by a crash, or a file restored from a backup); copied them"
        );
    }
    Ok(last_seq)
}

async fn append(file: &mut FileHandle, lines: String) -> Result<(), AuditError> {
    let bytes = lines.into_bytes();
    file.run(move |s| s.append(&bytes)).await
}

async fn continuing(store: &dyn AuditStore, seq: u64) -> Result<Option<AuditRecord>, AuditError> {
    store
        .audit_record_continuing_file(seq_to_i64(seq))
        .await?
        .map(parse_record)
        .transpose()
}

/// The database's checkpoints after a position, a page at a time.
struct CheckpointPages {
    after: i64,
    page: std::collections::VecDeque<Checkpoint>,
    done: bool,
}

impl CheckpointPages {
    fn after(position: Position) -> Self {
        // A checkpoint sorts after the record with its seq: after record n come the
        // checkpoints from n on; after the checkpoint for n, those from n + 1.
        let after = if position > Position::record(position.seq()) {
            position.seq()
        } else {
            position.seq().saturating_sub(1)
        };
        Self {
            after: seq_to_i64(after),
            page: Default::default(),
            done: false,
        }
    }

    async fn peek(&mut self, store: &dyn AuditStore) -> Result<Option<&Checkpoint>, AuditError> {
        if self.page.is_empty() && !self.done {
            let rows = store.audit_checkpoints_after(self.after, PAGE).await?;
            self.done = rows.len() < PAGE as usize;
            if let Some(last) = rows.last() {
                self.after = last.seq;
            }
            for row in rows {
                self.page.push_back(parse_checkpoint(row)?);
            }
        }
        Ok(self.page.front())
    }

    fn next(&mut self) -> Option<Checkpoint> {
        self.page.pop_front()
    }
}
