//! What the audit log needs from a database: two append-only tables.
//!
//! Rows are plain columns (integers and text), not parsed records: the audit module
//! owns the format ([`super::format`]) and the verifier must be the one to decide that
//! a stored row is malformed — and name it — rather than the driver failing the whole
//! read. `rampart-store` implements [`AuditStore`] over SQLite and PostgreSQL with the
//! `0100_audit.sql` migrations; [`super::MemoryAuditStore`] is an in-memory one.
//!
//! Like the other storage traits ([`crate::store`]) it is object-safe through
//! `async_trait` and fails closed: a read that fails is an error, never an empty log.

use async_trait::async_trait;

use crate::store::StoreError;

/// One row of `audit_records`: an [`AuditRecord`](super::AuditRecord) as columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// `seq`, the primary key (1, 2, …).
    pub seq: i64,
    /// Unix time in microseconds.
    pub time_us: i64,
    /// The writing process's [`WriterId`](super::WriterId).
    pub writer: String,
    /// The seq of the record before it in its writer's audit file (0: the file's
    /// first); `NULL` when the writer kept no file.
    pub file_prev_seq: Option<i64>,
    /// The event kind's dotted name.
    pub kind: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Who acted.
    pub actor: Option<String>,
    /// What was acted on.
    pub target: Option<String>,
    /// The client address as text.
    pub client_ip: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The details as a JSON object of strings.
    pub details: String,
    /// Previous record's hash, 64 lowercase hex digits.
    pub prev_hash: String,
    /// This record's hash, 64 lowercase hex digits.
    pub hash: String,
}

/// One row of `audit_checkpoints`: a [`Checkpoint`](super::Checkpoint) as columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Seq of the last record covered, the primary key.
    pub seq: i64,
    /// That record's hash, hex.
    pub hash: String,
    /// Seq of the previous checkpoint, 0 for the first.
    pub prev_seq: i64,
    /// Unix time in microseconds.
    pub time_us: i64,
    /// The signing process's [`WriterId`](super::WriterId).
    pub writer: String,
    /// The signing key's fingerprint.
    pub key_id: String,
    /// The Ed25519 signature, 128 lowercase hex digits.
    pub signature: String,
}

/// The audit tables.
///
/// Only ever appended to by the audit writers; nothing in Rampart updates or deletes a
/// row (retention, when it comes, will delete whole prefixes). Several processes may
/// append at once: the unique keys below are the whole concurrency protocol (see
/// [`super::writer`]).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Inserts `records` and `checkpoints` in one transaction: all of them or none.
    ///
    /// Fails with [`StoreError::Conflict`] (and writes nothing) if any record `seq`
    /// or checkpoint `seq` is already present in its table, or if a checkpoint's
    /// `prev_seq` is already another checkpoint's `prev_seq` (each checkpoint has at
    /// most one successor, so concurrent writers cannot fork the checkpoint chain).
    async fn append_audit(
        &self,
        records: &[AuditRow],
        checkpoints: &[CheckpointRow],
    ) -> Result<(), StoreError>;

    /// The record with the highest seq, or `None` if the table is empty.
    async fn last_audit_record(&self) -> Result<Option<AuditRow>, StoreError>;

    /// The checkpoint with the highest seq, or `None`.
    async fn last_audit_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError>;

    /// Up to `limit` records with `seq > after_seq`, ascending: one page of a scan.
    async fn audit_records_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError>;

    /// Up to `limit` checkpoints with `seq > after_seq`, ascending.
    async fn audit_checkpoints_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<CheckpointRow>, StoreError>;

    /// The record with the lowest seq whose `file_prev_seq` is `file_prev_seq`: the
    /// record that continues an audit file after that seq. Indexed: recovery uses it
    /// to find what a crashed writer committed but did not append to its file.
    async fn audit_record_continuing_file(
        &self,
        file_prev_seq: i64,
    ) -> Result<Option<AuditRow>, StoreError>;

    /// The lowest seq of a record with `time_us >= since_us`, or `None`.
    async fn first_audit_seq_since(&self, since_us: i64) -> Result<Option<i64>, StoreError>;
}
