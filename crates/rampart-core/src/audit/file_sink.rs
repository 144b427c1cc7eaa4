//! The append-only JSON-lines file (`audit.path`): one process's copy of the records
//! it wrote.
//!
//! Opened with `O_APPEND` and mode 0600 (audit records name users and addresses).
//! **One process owns the file at a time**: it holds an exclusive advisory lock
//! (`flock`) on it from the moment it takes it until it exits. Another process given
//! the same path (a maintenance command on the server's host, or a replica started
//! while the old one drains) does not append to it; its writer tries again before
//! each batch and writes to the database only until the file is free (see
//! [`super::writer`]). Without the lock two processes would interleave their lines
//! and each would cut the other's "foreign" bytes.
//!
//! Each batch is one `write` of whole lines followed by `flush` and `sync_data`, so
//! a batch is on disk before the writer moves on. The sink remembers the length it
//! has written: a file that has grown behind its back (our own interrupted write, or
//! someone else's append) is cut back to that length before the next batch, so a
//! retry never leaves a torn line in the middle of the log; a file that has *shrunk*
//! was truncated by someone else, and the writer stops rather than append to it.
//!
//! The file is only read here to find its last entries when a process takes it
//! (backwards from the end, so start-up does not read the whole log) and to reconcile
//! it with the database. Reading for verification and export is in [`super::verify`].
//!
//! Blocking I/O: the writer calls these through [`FileHandle`], which runs them on
//! Tokio's blocking pool.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::format::{Entry, MAX_LINE_LEN, Position};
use super::{AuditError, file_error};

/// Bytes read per step when scanning backwards.
const CHUNK: u64 = 64 * 1024;

/// The open audit file.
#[derive(Debug)]
pub(crate) struct FileSink {
    path: PathBuf,
    file: File,
    /// Everything before this offset was written (and synced) by us or checked when
    /// the file was taken; it always ends with a newline. Meaningless until then.
    len: u64,
    owned: bool,
}

/// Whether [`FileSink::try_own`] got the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// This process holds the lock and may append.
    Owned,
    /// Another process holds it.
    Busy,
}

/// The last record and the last checkpoint in the file.
#[derive(Debug, Default)]
pub(crate) struct FileHead {
    pub(crate) last_record: Option<super::AuditRecord>,
    pub(crate) last_checkpoint: Option<super::Checkpoint>,
}

/// What lies after a position, found by scanning back from the end.
#[derive(Debug)]
pub(crate) struct Tail {
    /// The last entry at or before the position, if any (for the overlap check).
    pub(crate) boundary: Option<Entry>,
    /// Offset of the first entry after the position (the file length if none).
    pub(crate) offset: u64,
}

impl FileSink {
    /// Opens (creating with mode 0600 if needed) the file, without taking it: see
    /// [`FileSink::try_own`].
    pub(crate) fn open(path: &Path) -> Result<Self, AuditError> {
        let existed = path.exists();
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|e| file_error(path, e))?;
        if !existed {
            sync_parent(path)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            len: 0,
            owned: false,
        })
    }

    /// Takes the file if no other process holds it: locks it exclusively for the
    /// rest of this process's life (the lock goes with the file handle), then cuts
    /// an incomplete last line — an append interrupted by a crash, never acknowledged
    /// as written; the database holds what it was copying, and recovery restores it.
    pub(crate) fn try_own(&mut self) -> Result<Ownership, AuditError> {
        if self.owned {
            return Ok(Ownership::Owned);
        }
        match self.file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Ownership::Busy),
            Err(std::fs::TryLockError::Error(e)) => return Err(file_error(&self.path, e)),
        }
        self.owned = true;
        self.len = self.metadata_len()?;
        self.cut_incomplete_line()?;
        Ok(Ownership::Owned)
    }

    /// Appends whole lines and syncs them to disk. Only after [`FileSink::try_own`].
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        if !self.owned {
            return Err(AuditError::WriterFailed);
        }
        let actual = self.metadata_len()?;
        if actual < self.len {
            return Err(AuditError::FileChanged {
                path: self.path.clone(),
            });
        }
        if actual > self.len {
            tracing::warn!(
                path = %self.path.display(),
                extra_bytes = actual - self.len,
                "audit file has bytes the writer did not write (an interrupted write); cutting them"
            );
            self.file
                .set_len(self.len)
                .map_err(|e| file_error(&self.path, e))?;
        }
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| file_error(&self.path, e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The last record and last checkpoint, reading backwards from the end.
    pub(crate) fn head(&self) -> Result<FileHead, AuditError> {
        let mut head = FileHead::default();
        self.scan_back(|_, entry| {
            match entry {
                Entry::Record(r) if head.last_record.is_none() => head.last_record = Some(r),
                Entry::Checkpoint(c) if head.last_checkpoint.is_none() => {
                    head.last_checkpoint = Some(c);
                }
                _ => {}
            }
            // A checkpoint always follows its record, so once a record is found an
            // earlier checkpoint is the last one; stop when both are known.
            head.last_record.is_none() || head.last_checkpoint.is_none()
        })?;
        Ok(head)
    }

    /// Finds the first entry after `position` and the last one at or before it.
    pub(crate) fn tail_after(&self, position: Position) -> Result<Tail, AuditError> {
        let mut tail = Tail {
            boundary: None,
            offset: self.len,
        };
        self.scan_back(|offset, entry| {
            if entry.position() <= position {
                tail.boundary = Some(entry);
                false
            } else {
                tail.offset = offset;
                true
            }
        })?;
        Ok(tail)
    }

    /// Up to `max` entries starting at `offset` (a line start), and the offset after
    /// them.
    pub(crate) fn read_from(
        &self,
        offset: u64,
        max: usize,
    ) -> Result<(Vec<Entry>, u64), AuditError> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| file_error(&self.path, e))?;
        let want = (self.len - offset.min(self.len)).min((max as u64) * (MAX_LINE_LEN as u64 + 1));
        let mut reader = std::io::BufReader::new(file.take(want));
        let mut entries = Vec::new();
        let mut next = offset;
        let mut line = Vec::new();
        while entries.len() < max {
            line.clear();
            let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
                .map_err(|e| file_error(&self.path, e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            entries.push(self.parse(next, &line)?);
            next += n as u64;
        }
        Ok((entries, next))
    }

    /// Visits entries from the last to the first with their offsets, until `visit`
    /// returns `false`.
    fn scan_back(&self, mut visit: impl FnMut(u64, Entry) -> bool) -> Result<(), AuditError> {
        // Invariant: `buf` holds the bytes [buf_start, end), and `end` is just after a
        // newline (or 0): the bytes before it are whole lines not yet visited.
        let mut end = self.len;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = end;
        while end > 0 {
            let start = loop {
                if buf_start < end {
                    let search = &buf[..(end - 1 - buf_start) as usize];
                    if let Some(i) = search.iter().rposition(|&b| b == b'\n') {
                        break buf_start + i as u64 + 1;
                    }
                }
                if buf_start == 0 {
                    break 0;
                }
                if end - buf_start > MAX_LINE_LEN as u64 + 1 {
                    return Err(AuditError::CorruptFile {
                        path: self.path.clone(),
                        at: format!("byte offset {buf_start}"),
                        reason: format!("a line is longer than {MAX_LINE_LEN} bytes"),
                    });
                }
                let new_start = buf_start.saturating_sub(CHUNK);
                let mut chunk = vec![0u8; (buf_start - new_start) as usize];
                self.read_exact_at(new_start, &mut chunk)?;
                chunk.extend_from_slice(&buf);
                buf = chunk;
                buf_start = new_start;
            };
            let line = &buf[(start - buf_start) as usize..(end - buf_start) as usize];
            let entry = self.parse(start, line)?;
            buf.truncate((start - buf_start) as usize);
            end = start;
            if !visit(start, entry) {
                break;
            }
        }
        Ok(())
    }

    fn parse(&self, offset: u64, line: &[u8]) -> Result<Entry, AuditError> {
        Entry::parse_line(line).map_err(|m| AuditError::CorruptFile {
            path: self.path.clone(),
            at: format!("byte offset {offset}"),
            reason: m.reason,
        })
    }

    /// Cuts the file back to just after its last newline.
    fn cut_incomplete_line(&mut self) -> Result<(), AuditError> {
        if self.len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        self.read_exact_at(self.len - 1, &mut last)?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let mut keep = 0;
        let mut pos = self.len;
        while pos > 0 {
            let start = pos.saturating_sub(CHUNK);
            let mut chunk = vec![0u8; (pos - start) as usize];
            self.read_exact_at(start, &mut chunk)?;
            if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                keep = start + i as u64 + 1;
                break;
            }
            pos = start;
        }
        tracing::warn!(
            path = %self.path.display(),
            cut_bytes = self.len - keep,
            "audit file ends in an incomplete line (interrupted write); cutting it"
        );
        self.file
            .set_len(keep)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| file_error(&self.path, e))?;
        self.len = keep;
        Ok(())
    }

    fn metadata_len(&self) -> Result<u64, AuditError> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| file_error(&self.path, e))?
            .len())
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), AuditError> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(buf))
            .map_err(|e| file_error(&self.path, e))
    }
}

/// Makes a newly created file's directory entry durable.
fn sync_parent(path: &Path) -> Result<(), AuditError> {
    #[cfg(unix)]
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| file_error(parent, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The file sink, moved onto Tokio's blocking pool for each operation so file I/O
/// never stalls an async worker thread.
#[derive(Debug)]
pub(crate) struct FileHandle(Option<FileSink>);

impl FileHandle {
    /// Opens the file on the blocking pool (without taking it).
    pub(crate) async fn open(path: PathBuf) -> Result<Self, AuditError> {
        let sink = tokio::task::spawn_blocking(move || FileSink::open(&path))
            .await
            .map_err(|_| AuditError::WriterFailed)??;
        Ok(Self(Some(sink)))
    }

    /// Runs `f` with the sink on the blocking pool.
    pub(crate) async fn run<T, F>(&mut self, f: F) -> Result<T, AuditError>
    where
        T: Send + 'static,
        F: FnOnce(&mut FileSink) -> Result<T, AuditError> + Send + 'static,
    {
        // Only lost if a previous call's blocking task died, which only a panic can do.
        let mut sink = self.0.take().ok_or(AuditError::WriterFailed)?;
        let (sink, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut sink);
            (sink, result)
        })
        .await
        .map_err(|_| AuditError::WriterFailed)?;
        self.0 = Some(sink);
        result
    }
}

#[cfg(test)]
mod tests {
    use rampart_crypto::SecretArray;
    use rampart_crypto::signing::Signer;
    use time::OffsetDateTime;

    use super::*;
    use crate::audit::chain::{AuditRecord, ChainHash};
    use crate::audit::checkpoint::CheckpointSigner;
    use crate::audit::event::{AuditEvent, EventKind, Outcome};
    use crate::audit::writer_id::WriterId;

    fn owned(path: &Path) -> FileSink {
        let mut sink = FileSink::open(path).unwrap();
        assert_eq!(sink.try_own().unwrap(), Ownership::Owned);
        sink
    }

    fn entries(n: u64, checkpoint_every: u64) -> Vec<Entry> {
        let writer: WriterId = "test/0000000000000001".parse().unwrap();
        let signer = CheckpointSigner::new(Signer::from_seed(&SecretArray::new([4; 32])));
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut out = Vec::new();
        let mut prev = ChainHash::GENESIS;
        let mut prev_cp = 0;
        for seq in 1..=n {
            let r = AuditRecord::seal(
                seq,
                t,
                &writer,
                Some(seq - 1),
                AuditEvent::new(EventKind::TokenIssued, Outcome::Success).actor("x".repeat(200)),
                prev,
            );
            prev = r.hash;
            out.push(Entry::Record(r));
            if seq % checkpoint_every == 0 {
                out.push(Entry::Checkpoint(
                    signer.sign(seq, prev, prev_cp, t, &writer),
                ));
                prev_cp = seq;
            }
        }
        out
    }

    fn bytes(entries: &[Entry]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|e| e.to_line().unwrap().into_bytes())
            .collect()
    }

    #[test]
    fn head_and_tail_are_found_backwards_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let all = entries(700, 100); // ~250 KiB: several chunks
        let mut sink = owned(&path);
        sink.append(&bytes(&all)).unwrap();

        let head = sink.head().unwrap();
        assert_eq!(head.last_record.unwrap().seq, 700);
        assert_eq!(head.last_checkpoint.unwrap().seq, 700);

        let tail = sink.tail_after(Position::record(650)).unwrap();
        let Some(Entry::Record(boundary)) = tail.boundary else {
            panic!("no boundary");
        };
        assert_eq!(boundary.seq, 650);
        let (after, next) = sink.read_from(tail.offset, 1000).unwrap();
        assert_eq!(after.first().unwrap().seq(), 651);
        assert_eq!(after.len(), 50 + 1);
        assert_eq!(next, sink.len);

        let from_start = sink.tail_after(Position::START).unwrap();
        assert!(from_start.boundary.is_none());
        assert_eq!(from_start.offset, 0);
        let (page, next) = sink.read_from(0, 10).unwrap();
        assert_eq!(page, all[..10].to_vec());
        let (page, _) = sink.read_from(next, 10).unwrap();
        assert_eq!(page, all[10..20].to_vec());
    }

    #[test]
    fn incomplete_last_line_is_cut_when_the_file_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let all = entries(3, 100);
        let mut content = bytes(&all);
        let whole = content.len() as u64;
        content.extend_from_slice(br#"{"type":"record","seq":4,"ti"#);
        std::fs::write(&path, &content).unwrap();

        let sink = owned(&path);
        assert_eq!(sink.len, whole);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        assert_eq!(sink.head().unwrap().last_record.unwrap().seq, 3);
    }

    #[test]
    fn bytes_appended_behind_the_writer_are_cut_and_a_shrunk_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let all = entries(4, 100);
        let mut sink = owned(&path);
        sink.append(&bytes(&all[..2])).unwrap();
        let len = sink.len;
        // A torn write (or a foreign append) after our last batch.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"garbage")
            .unwrap();
        sink.append(&bytes(&all[2..])).unwrap();
        let (read, _) = sink.read_from(0, 100).unwrap();
        assert_eq!(read, all);

        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        assert!(matches!(
            sink.append(&bytes(&all[..1])),
            Err(AuditError::FileChanged { .. })
        ));
    }

    #[test]
    fn only_one_handle_owns_the_file_until_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut first = owned(&path);
        first.append(&bytes(&entries(1, 100))).unwrap();
        // A second opener (another process, or another auditor in this one) waits,
        // and its partial-line cut does not touch the owner's file.
        let mut second = FileSink::open(&path).unwrap();
        assert_eq!(second.try_own().unwrap(), Ownership::Busy);
        assert!(matches!(
            second.append(b"{}\n"),
            Err(AuditError::WriterFailed)
        ));
        drop(first);
        assert_eq!(second.try_own().unwrap(), Ownership::Owned);
        assert_eq!(second.head().unwrap().last_record.unwrap().seq, 1);
    }

    #[cfg(unix)]
    #[test]
    fn new_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        FileSink::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn unreadable_last_line_is_an_error_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut content = bytes(&entries(2, 100));
        let offset = content.len() as u64;
        content.extend_from_slice(b"not json\n");
        std::fs::write(&path, &content).unwrap();
        let sink = owned(&path);
        match sink.head() {
            Err(AuditError::CorruptFile { at, .. }) => {
                assert_eq!(at, format!("byte offset {offset}"))
            }
            other => panic!("{other:?}"),
        }
    }
}
