//! The tamper-evident audit log (F-AUDIT).
//!
//! Every security event goes through one call, [`Auditor::record`], which stamps it
//! with the [`Clock`](crate::Clock) and puts it on a bounded queue; a background
//! writer gives each a `seq` and hash-chains it to the one before, appends batches to
//! the database — **one chain shared by every process** (replicas, maintenance
//! commands), with optimistic concurrency — and to an optional per-process JSON-lines
//! file, and every N records or T seconds signs a checkpoint of the chain head with
//! Ed25519. Each record and checkpoint names its [`WriterId`]. [`verify_sinks`] walks
//! the log (and cross-checks a process's file against it) and names the first bad
//! record; [`export_store`] and [`export_file`] write JSON lines.
//!
//! | module            | what                                                        |
//! |-------------------|-------------------------------------------------------------|
//! | [`event`]         | [`AuditEvent`], [`EventKind`] (stable dotted names), limits |
//! | [`chain`]         | [`AuditRecord`] and the canonical encoding that is hashed   |
//! | [`checkpoint`]    | signed checkpoints, the signer from the AuditSigning key    |
//! | [`format`](mod@format) | JSON lines and database rows, strict reading                |
//! | [`writer`]        | [`Auditor`]: queue, back-pressure, batching, concurrency    |
//! | [`writer_id`]     | [`WriterId`]: which process wrote an entry                  |
//! | `recovery`        | the chain head; reconciling a file with the database        |
//! | `file_sink`       | the append-only, one-process-at-a-time file                 |
//! | `read`            | reading the file or the tables in log order                 |
//! | [`verify`]        | verification, findings, what cannot be detected             |
//! | [`export`]        | `rampart audit export`                                      |
//! | [`store`]         | the [`AuditStore`] trait the database implements            |
//! | [`memory`]        | an in-memory [`AuditStore`]                                 |

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ErrorKind;
use crate::store::StoreError;

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod export;
pub(crate) mod file_sink;
pub mod format;
pub mod memory;
pub(crate) mod read;
pub(crate) mod recovery;
pub mod store;
pub mod verify;
pub mod writer;
pub mod writer_id;

#[cfg(test)]
mod tests;

pub use chain::{AuditRecord, ChainHash};
pub use checkpoint::{Checkpoint, CheckpointSigner, trusted_keys};
pub use event::{AuditEvent, EventKind, Outcome};
pub use export::{ExportSummary, export_file, export_store};
pub use format::{Entry, Malformed};
pub use memory::MemoryAuditStore;
pub use store::{AuditRow, AuditStore, CheckpointRow};
pub use verify::{
    Finding, Head, Location, Problem, Source, Start, Verification, VerifyOptions, VerifyReport,
    verify_file, verify_sinks, verify_store,
};
pub use writer::{AuditOptions, AuditStats, Auditor};
pub use writer_id::{MalformedWriterId, WriterId};

/// Why auditing, verification or export could not proceed.
///
/// Tampering found by verification is not an error but a
/// [`Verification::Broken`] finding; these are the failures to *do* the work.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The queue stayed full for the whole enqueue timeout: the writer is behind or a
    /// sink is failing. The audited action must be refused.
    #[error(
        "the audit log is not accepting events (queue full for {waited:?}); the action was refused so it is not left unaudited"
    )]
    QueueFull {
        /// How long `record` waited.
        waited: Duration,
    },
    /// The auditor was shut down, or its writer stopped on an error.
    #[error("the audit log is closed; the action was refused so it is not left unaudited")]
    Closed,
    /// Neither `audit.database` nor `audit.path` is set.
    #[error("no audit sink: enable audit.database or set audit.path")]
    NoSink,
    /// `audit.database = false`: the database holds the one chain that every
    /// Rampart process appends to, so records cannot be kept out of it.
    #[error(
        "audit.database = false is not supported: the audit chain lives in the database so that several processes can write it; set audit.database = true (audit.path then keeps a per-process copy)"
    )]
    DatabaseRequired,
    /// The operating system's random source failed while drawing the writer id.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// Reading or writing the audit file failed.
    #[error("audit file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The audit file shrank under the writer: someone truncated it. The writer
    /// stops rather than continue a log it can no longer vouch for.
    #[error("audit file {} was truncated by another process; run `rampart audit verify`", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// A line of the audit file cannot be read back.
    #[error("audit file {} is damaged at {at}: {reason}; run `rampart audit verify`", path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// Where (a byte offset or a line number).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// A database row cannot be read back, or the chain head does not verify. The
    /// writer stops rather than extend it.
    #[error("audit tables are damaged: {reason}")]
    CorruptDatabase {
        /// Which row and what is wrong.
        reason: String,
    },
    /// When a process takes its audit file, the file and the database disagree in a
    /// way that cannot be repaired safely (see `audit::recovery`).
    #[error(
        "the audit file and the audit tables disagree: {reason}. Refusing to extend the log; run `rampart audit verify` to find the first bad record"
    )]
    SinksDisagree {
        /// What differs.
        reason: String,
    },
    /// Writing an export failed.
    #[error("writing the export failed: {0}")]
    Output(#[source] std::io::Error),
    /// Serializing an entry failed.
    #[error("encoding an audit entry failed: {0}")]
    Encode(#[source] serde_json::Error),
    /// The writer task ended abnormally.
    #[error("the audit writer task failed")]
    WriterFailed,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuditError {
    /// Who is at fault. A full or closed queue is "unavailable": the request was
    /// fine, the audit log could not take it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::QueueFull { .. } | Self::Closed => ErrorKind::Unavailable,
            Self::Store(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the writer must stop instead of retrying: retrying cannot help, and
    /// continuing would extend a log that was tampered with. Another writer having
    /// appended is never one of these: the batch is re-linked instead.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::FileChanged { .. }
                | Self::CorruptFile { .. }
                | Self::CorruptDatabase { .. }
                | Self::SinksDisagree { .. }
                | Self::Encode(_)
                | Self::WriterFailed
        )
    }
}

pub(crate) fn file_error(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::File {
        path: path.to_owned(),
        source,
    }
}
