//! Reading a copy of the log in log order — the file line by line, the database a
//! page at a time with its two tables merged — for verification, export and
//! recovery. An entry that cannot be read is returned as a [`Problem`] at its
//! [`Location`], not as an error, so the verifier can name it.

use std::path::Path;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};

use super::chain::AuditRecord;
use super::checkpoint::Checkpoint;
use super::format::{Entry, MAX_LINE_LEN, Malformed};
use super::store::AuditStore;
use super::verify::{Location, Problem, Source};
use super::{AuditError, file_error};

/// Rows fetched per database query while scanning.
const PAGE: u32 = 1000;

/// A copy being read in log order.
pub(crate) enum Reader<'s> {
    File(FileReader),
    Store(StoreReader<'s>),
}

impl Reader<'_> {
    pub(crate) fn source(&self) -> Source {
        match self {
            Self::File(_) => Source::File,
            Self::Store(_) => Source::Database,
        }
    }

    /// The next entry and where it is; `Err` inside when it cannot be read.
    pub(crate) async fn next(
        &mut self,
    ) -> Result<Option<(Location, Result<Entry, Problem>)>, AuditError> {
        match self {
            Self::File(r) => r.next().await,
            Self::Store(r) => r.next().await,
        }
    }
}

/// Reads JSON lines with line numbers, refusing over-long lines without buffering
/// them.
pub(crate) struct FileReader {
    path: std::path::PathBuf,
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    line: u64,
    done: bool,
}

impl FileReader {
    pub(crate) async fn open(path: &Path) -> Result<Self, AuditError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| file_error(path, e))?;
        Ok(Self::from_reader(path, Box::new(file)))
    }

    pub(crate) fn from_reader(path: &Path, reader: Box<dyn AsyncRead + Send + Unpin>) -> Self {
        Self {
            path: path.to_owned(),
            reader: BufReader::with_capacity(64 * 1024, reader),
            line: 0,
            done: false,
        }
    }

    pub(crate) async fn next(
        &mut self,
    ) -> Result<Option<(Location, Result<Entry, Problem>)>, AuditError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::new();
        // +1 for the newline, +1 to notice a line that is too long.
        let limit = MAX_LINE_LEN as u64 + 2;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| file_error(&self.path, e))?;
        if n == 0 {
            self.done = true;
            return Ok(None);
        }
        self.line += 1;
        let location = Location::Line(self.line);
        if buf.last() != Some(&b'\n') {
            // Either the end of the file without a newline, or an over-long line; in
            // both cases nothing after it can be trusted to be aligned.
            self.done = true;
            let problem = if buf.len() > MAX_LINE_LEN {
                Problem::Malformed(format!("line is longer than {MAX_LINE_LEN} bytes"))
            } else {
                Problem::IncompleteLastLine
            };
            return Ok(Some((location, Err(problem))));
        }
        let entry =
            Entry::parse_line(&buf).map_err(|Malformed { reason }| Problem::Malformed(reason));
        Ok(Some((location, entry)))
    }
}

/// Whether the database scan includes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadRecords {
    Yes,
    No,
}

/// Pages through both tables by seq and merges them into log order.
pub(crate) struct StoreReader<'s> {
    store: &'s dyn AuditStore,
    records: std::collections::VecDeque<super::store::AuditRow>,
    checkpoints: std::collections::VecDeque<super::store::CheckpointRow>,
    records_after: i64,
    checkpoints_after: i64,
    records_done: bool,
    checkpoints_done: bool,
}

impl<'s> StoreReader<'s> {
    pub(crate) fn new(store: &'s dyn AuditStore, read_records: ReadRecords) -> Self {
        Self::starting_after(store, read_records, 0, 0)
    }

    /// A scan of the records with seq above `records_after` and the checkpoints with
    /// seq above `checkpoints_after`.
    pub(crate) fn starting_after(
        store: &'s dyn AuditStore,
        read_records: ReadRecords,
        records_after: i64,
        checkpoints_after: i64,
    ) -> Self {
        Self {
            store,
            records: Default::default(),
            checkpoints: Default::default(),
            records_after,
            checkpoints_after,
            records_done: read_records == ReadRecords::No,
            checkpoints_done: false,
        }
    }

    pub(crate) async fn next(
        &mut self,
    ) -> Result<Option<(Location, Result<Entry, Problem>)>, AuditError> {
        if self.records.is_empty() && !self.records_done {
            let page = self
                .store
                .audit_records_after(self.records_after, PAGE)
                .await?;
            self.records_done = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                self.records_after = last.seq;
            }
            self.records.extend(page);
        }
        if self.checkpoints.is_empty() && !self.checkpoints_done {
            let page = self
                .store
                .audit_checkpoints_after(self.checkpoints_after, PAGE)
                .await?;
            self.checkpoints_done = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                self.checkpoints_after = last.seq;
            }
            self.checkpoints.extend(page);
        }
        // Log order: record n, then the checkpoint for n, then record n + 1.
        let take_record = match (self.records.front(), self.checkpoints.front()) {
            (None, None) => return Ok(None),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(r), Some(c)) => r.seq <= c.seq,
        };
        if take_record {
            let Some(row) = self.records.pop_front() else {
                return Ok(None);
            };
            let location = Location::RecordRow(row.seq);
            let entry = AuditRecord::from_row(row)
                .map(Entry::Record)
                .map_err(|Malformed { reason }| Problem::Malformed(reason));
            Ok(Some((location, entry)))
        } else {
            let Some(row) = self.checkpoints.pop_front() else {
                return Ok(None);
            };
            let location = Location::CheckpointRow(row.seq);
            let entry = Checkpoint::from_row(row)
                .map(Entry::Checkpoint)
                .map_err(|Malformed { reason }| Problem::Malformed(reason));
            Ok(Some((location, entry)))
        }
    }
}
