//! `rampart audit export --since <time>`: the log as JSON lines.
//!
//! The output is in the audit file's own format ([`super::format`]) and starts at the
//! first record whose time is at or after `since`; from there it contains **every**
//! later record and checkpoint, in order — not only the records stamped after
//! `since`. Record times come from callers' clocks at `record()` and can be a little
//! out of order across concurrent requests, so a pure time filter could leave gaps;
//! a contiguous slice verifies on its own with [`super::verify_file`] and
//! [`Start::Anywhere`](super::Start::Anywhere) against the audit public key
//! (`rampart audit verify --file export.jsonl --public-key <hex>`).
//!
//! Both functions stream: the database is read a page at a time and the file a line
//! at a time.

use std::path::Path;

use time::OffsetDateTime;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::AuditError;
use super::chain::unix_micros;
use super::format::Entry;
use super::read::{FileReader, ReadRecords, StoreReader};
use super::store::AuditStore;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    /// Records written.
    pub records: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Seq of the first record written.
    pub first_seq: Option<u64>,
    /// Seq of the last record written.
    pub last_seq: Option<u64>,
}

impl ExportSummary {
    fn add(&mut self, entry: &Entry) {
        match entry {
            Entry::Record(r) => {
                self.records += 1;
                self.first_seq.get_or_insert(r.seq);
                self.last_seq = Some(r.seq);
            }
            Entry::Checkpoint(_) => self.checkpoints += 1,
        }
    }
}

/// Exports from the database.
pub async fn export_store<W: AsyncWrite + Unpin>(
    store: &dyn AuditStore,
    since: OffsetDateTime,
    out: &mut W,
) -> Result<ExportSummary, AuditError> {
    let mut summary = ExportSummary::default();
    let Some(first) = store.first_audit_seq_since(unix_micros(since)).await? else {
        return Ok(summary);
    };
    let after = first.saturating_sub(1);
    let mut reader = StoreReader::starting_after(store, ReadRecords::Yes, after, after);
    while let Some((location, entry)) = reader.next().await? {
        let entry = entry.map_err(|problem| AuditError::CorruptDatabase {
            reason: format!("{location}: {problem}; run `rampart audit verify`"),
        })?;
        write_entry(out, &entry).await?;
        summary.add(&entry);
    }
    out.flush().await.map_err(AuditError::Output)?;
    Ok(summary)
}

/// Exports from a process's audit file. The file holds only the records that
/// process wrote, so with several writers the export skips the others' seqs and
/// does not verify as a contiguous slice: export from the database
/// ([`export_store`]) for that.
pub async fn export_file<W: AsyncWrite + Unpin>(
    path: &Path,
    since: OffsetDateTime,
    out: &mut W,
) -> Result<ExportSummary, AuditError> {
    let mut summary = ExportSummary::default();
    let mut reader = FileReader::open(path).await?;
    let mut started = false;
    while let Some((location, entry)) = reader.next().await? {
        let entry = entry.map_err(|problem| AuditError::CorruptFile {
            path: path.to_owned(),
            at: location.to_string(),
            reason: format!("{problem}; run `rampart audit verify`"),
        })?;
        if !started {
            match &entry {
                Entry::Record(r) if r.time >= since => started = true,
                _ => continue,
            }
        }
        write_entry(out, &entry).await?;
        summary.add(&entry);
    }
    out.flush().await.map_err(AuditError::Output)?;
    Ok(summary)
}

async fn write_entry<W: AsyncWrite + Unpin>(out: &mut W, entry: &Entry) -> Result<(), AuditError> {
    let line = entry.to_line().map_err(AuditError::Encode)?;
    out.write_all(line.as_bytes())
        .await
        .map_err(AuditError::Output)
}
