//! Start-up: find the chain head and bring the two sinks level.
//!
//! The writer appends each batch to the file first and then to the database, so a
//! crash can leave the database at most one batch behind the file. Other ways for
//! the sinks to differ: a sink newly enabled on an existing log (empty), or a copy
//! restored from an older backup. In every case where one copy is a *prefix* of the
//! other — the lagging copy's last record (and last checkpoint) are found, identical,
//! at the same place in the leading copy — the missing entries are copied over,
//! checked link by link on the way, and a warning says how many. Anything else —
//! different records at the same seq, a checkpoint one copy lacks below its head, or
//! a file that ends before a checkpoint the database holds — is refused with
//! [`AuditError::SinksDisagree`]: the writer will not extend a log it cannot vouch
//! for. Run `rampart audit verify` to find the first bad record.
//!
//! With `audit.database = false` the database holds only checkpoints; they are still
//! compared, which is what stops a cut file from being silently continued.

use time::OffsetDateTime;

use crate::clock::Clock;

use super::AuditError;
use super::chain::{AuditRecord, ChainHash};
use super::checkpoint::Checkpoint;
use super::file_sink::FileHandle;
use super::format::{Entry, Position, seq_to_i64};
use super::read::{ReadRecords, StoreReader};
use super::store::AuditStore;

/// Entries copied per append while reconciling.
const COPY_BATCH: usize = 1000;

/// Where the writer continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainState {
    /// Seq of the last record (0: none).
    pub(crate) seq: u64,
    /// Its hash ([`ChainHash::GENESIS`] if none).
    pub(crate) hash: ChainHash,
    /// Seq of the last checkpoint (0: none).
    pub(crate) checkpoint_seq: u64,
    /// When the last checkpoint was signed (start-up time if none): the timed
    /// checkpoint is due `checkpoint_interval` after it.
    pub(crate) checkpoint_time: OffsetDateTime,
}

/// Recovers the head, reconciling the file and the database first.
pub(crate) async fn recover(
    store: &dyn AuditStore,
    database: bool,
    file: Option<&mut FileHandle>,
    clock: &dyn Clock,
) -> Result<ChainState, AuditError> {
    let Some(file) = file else {
        let record = db_last_record(store).await?;
        let checkpoint = db_last_checkpoint(store).await?;
        return Ok(state(record.as_ref(), checkpoint.as_ref(), clock));
    };

    if database {
        let head = file.run(|s| s.head()).await?;
        let file_record = head.last_record;
        let db_record = db_last_record(store).await?;
        let f = file_record.as_ref().map_or(0, |r| r.seq);
        let d = db_record.as_ref().map_or(0, |r| r.seq);
        if f > d {
            copy_file_to_db(store, file, db_record.as_ref()).await?;
        } else if d > f {
            let file_checkpoint = head.last_checkpoint.as_ref().map_or(0, |c| c.seq);
            copy_db_to_file(store, file, file_record.as_ref(), file_checkpoint).await?;
        } else if let (Some(fr), Some(dr)) = (&file_record, &db_record)
            && fr.hash != dr.hash
        {
            return Err(disagree(format!(
                "the file and the database hold different records at seq {f}"
            )));
        }
    }

    // Records are level (or only in the file); now the checkpoints.
    let head = file.run(|s| s.head()).await?;
    let f = head.last_record.as_ref().map_or(0, |r| r.seq);
    let fc = head.last_checkpoint.clone();
    let dc = db_last_checkpoint(store).await?;
    let fc_seq = fc.as_ref().map_or(0, |c| c.seq);
    let dc_seq = dc.as_ref().map_or(0, |c| c.seq);
    if fc_seq > dc_seq {
        copy_checkpoints_to_db(store, file, dc.as_ref()).await?;
    } else if dc_seq > fc_seq {
        let Some(dc) = dc.as_ref() else {
            return Err(disagree("checkpoint bookkeeping is inconsistent"));
        };
        append_db_checkpoint_to_file(store, file, head.last_record.as_ref(), fc_seq, f, dc).await?;
    } else if fc != dc {
        return Err(disagree(format!(
            "the file and the database hold different checkpoints for seq {fc_seq}"
        )));
    }

    let head = file.run(|s| s.head()).await?;
    Ok(state(
        head.last_record.as_ref(),
        head.last_checkpoint.as_ref(),
        clock,
    ))
}

fn state(
    record: Option<&AuditRecord>,
    checkpoint: Option<&Checkpoint>,
    clock: &dyn Clock,
) -> ChainState {
    ChainState {
        seq: record.map_or(0, |r| r.seq),
        hash: record.map_or(ChainHash::GENESIS, |r| r.hash),
        checkpoint_seq: checkpoint.map_or(0, |c| c.seq),
        checkpoint_time: checkpoint.map_or_else(|| clock.now(), |c| c.time),
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

async fn db_last_record(store: &dyn AuditStore) -> Result<Option<AuditRecord>, AuditError> {
    match store.last_audit_record().await? {
        None => Ok(None),
        Some(row) => {
            let seq = row.seq;
            AuditRecord::from_row(row)
                .map(Some)
                .map_err(|m| corrupt_db("audit_records row", seq, &m.reason))
        }
    }
}

async fn db_last_checkpoint(store: &dyn AuditStore) -> Result<Option<Checkpoint>, AuditError> {
    match store.last_audit_checkpoint().await? {
        None => Ok(None),
        Some(row) => {
            let seq = row.seq;
            Checkpoint::from_row(row)
                .map(Some)
                .map_err(|m| corrupt_db("audit_checkpoints row", seq, &m.reason))
        }
    }
}

/// Checks that copied entries continue the chain they are appended to.
struct Link {
    seq: u64,
    hash: ChainHash,
}

impl Link {
    fn check(&mut self, entry: &Entry) -> Result<(), AuditError> {
        match entry {
            Entry::Record(r) => {
                if r.seq != self.seq + 1 || r.prev_hash != self.hash || r.compute_hash() != r.hash {
                    return Err(disagree(format!(
                        "the record at seq {} does not continue the chain; run `rampart audit verify`",
                        r.seq
                    )));
                }
                self.seq = r.seq;
                self.hash = r.hash;
            }
            Entry::Checkpoint(c) => {
                if c.seq != self.seq || c.hash != self.hash {
                    return Err(disagree(format!(
                        "the checkpoint for seq {} does not match its record; run `rampart audit verify`",
                        c.seq
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The database is behind the file: append the file's later records (and its
/// checkpoints the database lacks) to the database.
async fn copy_file_to_db(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    db_record: Option<&AuditRecord>,
) -> Result<(), AuditError> {
    let d = db_record.map_or(0, |r| r.seq);
    let db_checkpoint = db_last_checkpoint(store).await?.map_or(0, |c| c.seq);
    let tail = file.run(move |s| s.tail_after(Position::record(d))).await?;
    if let Some(db_record) = db_record {
        let matches = matches!(&tail.boundary, Some(Entry::Record(r)) if r == db_record);
        if !matches {
            return Err(disagree(format!(
                "the database's last record (seq {d}) is not the file's record at that seq"
            )));
        }
    }
    let mut link = Link {
        seq: d,
        hash: db_record.map_or(ChainHash::GENESIS, |r| r.hash),
    };
    let mut offset = tail.offset;
    let mut copied = 0usize;
    loop {
        let (entries, next) = file.run(move |s| s.read_from(offset, COPY_BATCH)).await?;
        if entries.is_empty() {
            break;
        }
        let mut rows = Vec::new();
        let mut checkpoints = Vec::new();
        for entry in &entries {
            link.check(entry)?;
            match entry {
                Entry::Record(r) => rows.push(r.to_row().map_err(AuditError::Encode)?),
                Entry::Checkpoint(c) if c.seq > db_checkpoint => checkpoints.push(c.to_row()),
                Entry::Checkpoint(_) => {}
            }
        }
        store.append_audit(&rows, &checkpoints).await?;
        copied += rows.len();
        offset = next;
    }
    tracing::warn!(
        records = copied,
        from_seq = d + 1,
        "audit database was behind the audit file (interrupted write or newly enabled sink); copied the missing records"
    );
    Ok(())
}

/// The file is behind the database: append the database's later entries to it.
async fn copy_db_to_file(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    file_record: Option<&AuditRecord>,
    file_checkpoint: u64,
) -> Result<(), AuditError> {
    let f = file_record.map_or(0, |r| r.seq);
    if let Some(file_record) = file_record {
        let db = store
            .audit_records_after(seq_to_i64(f) - 1, 1)
            .await?
            .into_iter()
            .next();
        let same = match db {
            Some(row) => AuditRecord::from_row(row).is_ok_and(|r| &r == file_record),
            None => false,
        };
        if !same {
            return Err(disagree(format!(
                "the file's last record (seq {f}) is not the database's record at that seq"
            )));
        }
    }
    // A checkpoint the file lacks *before* its last record cannot be appended in
    // its place: the file lost it.
    if let Some(cp) = store
        .audit_checkpoints_after(seq_to_i64(file_checkpoint), 1)
        .await?
        .first()
        && cp.seq < seq_to_i64(f)
    {
        return Err(disagree(format!(
            "the database has a checkpoint for seq {} that the audit file lacks",
            cp.seq
        )));
    }
    let checkpoints_after = if file_checkpoint >= f {
        f
    } else {
        f.saturating_sub(1)
    };
    let mut reader = StoreReader::starting_after(
        store,
        ReadRecords::Yes,
        seq_to_i64(f),
        seq_to_i64(checkpoints_after),
    );
    let mut link = Link {
        seq: f,
        hash: file_record.map_or(ChainHash::GENESIS, |r| r.hash),
    };
    let mut copied = 0usize;
    loop {
        let mut lines = String::new();
        let mut n = 0;
        while n < COPY_BATCH {
            let Some((location, entry)) = reader.next().await? else {
                break;
            };
            let entry = entry.map_err(|problem| AuditError::CorruptDatabase {
                reason: format!("{location}: {problem}"),
            })?;
            link.check(&entry)?;
            if matches!(entry, Entry::Record(_)) {
                copied += 1;
            }
            lines.push_str(&entry.to_line().map_err(AuditError::Encode)?);
            n += 1;
        }
        if n == 0 {
            break;
        }
        let bytes = lines.into_bytes();
        file.run(move |s| s.append(&bytes)).await?;
    }
    tracing::warn!(
        records = copied,
        from_seq = f + 1,
        "audit file was behind the database (newly enabled sink or restored file); copied the missing records"
    );
    Ok(())
}

/// The file has checkpoints the database lacks (a checkpoint-only batch interrupted
/// between the two sinks, or checkpoints from a file-only period): add them.
async fn copy_checkpoints_to_db(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    db_checkpoint: Option<&Checkpoint>,
) -> Result<(), AuditError> {
    let dc = db_checkpoint.map_or(0, |c| c.seq);
    let tail = file
        .run(move |s| s.tail_after(Position::checkpoint(dc)))
        .await?;
    if let Some(db_checkpoint) = db_checkpoint {
        let matches = matches!(&tail.boundary, Some(Entry::Checkpoint(c)) if c == db_checkpoint);
        if !matches {
            return Err(disagree(format!(
                "the database's checkpoint for seq {dc} is not in the audit file"
            )));
        }
    }
    let mut offset = tail.offset;
    let mut copied = 0usize;
    loop {
        let (entries, next) = file.run(move |s| s.read_from(offset, COPY_BATCH)).await?;
        if entries.is_empty() {
            break;
        }
        let checkpoints: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Checkpoint(c) => Some(c.to_row()),
                Entry::Record(_) => None,
            })
            .collect();
        store.append_audit(&[], &checkpoints).await?;
        copied += checkpoints.len();
        offset = next;
    }
    tracing::warn!(
        checkpoints = copied,
        "audit database lacked the file's latest checkpoints; copied them"
    );
    Ok(())
}

/// The database has a checkpoint the file lacks. Only the checkpoint for the file's
/// last record can be appended in place; anything else means the file lost entries.
async fn append_db_checkpoint_to_file(
    store: &dyn AuditStore,
    file: &mut FileHandle,
    file_record: Option<&AuditRecord>,
    file_checkpoint: u64,
    f: u64,
    db_checkpoint: &Checkpoint,
) -> Result<(), AuditError> {
    if db_checkpoint.seq > f {
        return Err(disagree(format!(
            "the audit file ends at seq {f} but the database holds a checkpoint for seq {}: \
             the file was truncated or replaced",
            db_checkpoint.seq
        )));
    }
    let missing = store
        .audit_checkpoints_after(seq_to_i64(file_checkpoint), 2)
        .await?;
    let appendable = missing.len() == 1
        && db_checkpoint.seq == f
        && file_record.is_some_and(|r| r.hash == db_checkpoint.hash);
    if !appendable {
        let first = missing.first().map_or(db_checkpoint.seq, |c| {
            u64::try_from(c.seq).unwrap_or(db_checkpoint.seq)
        });
        return Err(disagree(format!(
            "the database has a checkpoint for seq {first} that the audit file lacks"
        )));
    }
    let line = Entry::Checkpoint(db_checkpoint.clone())
        .to_line()
        .map_err(AuditError::Encode)?
        .into_bytes();
    file.run(move |s| s.append(&line)).await?;
    tracing::warn!(
        seq = db_checkpoint.seq,
        "audit file lacked the database's latest checkpoint; appended it"
    );
    Ok(())
}
