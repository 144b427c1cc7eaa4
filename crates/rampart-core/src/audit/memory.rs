//! An in-memory [`AuditStore`], for tests and tools that need an auditor without a
//! database. Not durable.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::store::StoreError;

use super::store::{AuditRow, AuditStore, CheckpointRow};

/// The audit tables in memory, with the same all-or-nothing, unique-seq and
/// unique-`prev_seq` rules as the SQL implementation.
#[derive(Debug, Default)]
pub struct MemoryAuditStore {
    tables: Mutex<Tables>,
}

/// The two tables, keyed by seq.
#[derive(Debug, Default, Clone)]
pub struct Tables {
    /// `audit_records`.
    pub records: BTreeMap<i64, AuditRow>,
    /// `audit_checkpoints`.
    pub checkpoints: BTreeMap<i64, CheckpointRow>,
}

impl MemoryAuditStore {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Direct access to the rows, as someone with database access would have — for
    /// tests that tamper with the log.
    pub fn with_tables<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> Result<T, StoreError> {
        Ok(f(&mut *self.lock()?))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.tables.lock().map_err(|_| StoreError::Internal {
            source: "audit memory store lock poisoned".into(),
        })
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn append_audit(
        &self,
        records: &[AuditRow],
        checkpoints: &[CheckpointRow],
    ) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        let mut seen_records = std::collections::BTreeSet::new();
        let mut seen_checkpoints = std::collections::BTreeSet::new();
        let mut seen_prev = std::collections::BTreeSet::new();
        let conflict = records
            .iter()
            .any(|r| tables.records.contains_key(&r.seq) || !seen_records.insert(r.seq))
            || checkpoints.iter().any(|c| {
                tables.checkpoints.contains_key(&c.seq)
                    || !seen_checkpoints.insert(c.seq)
                    || tables
                        .checkpoints
                        .values()
                        .any(|t| t.prev_seq == c.prev_seq)
                    || !seen_prev.insert(c.prev_seq)
            });
        if conflict {
            return Err(StoreError::Conflict {
                what: "audit record",
            });
        }
        for r in records {
            tables.records.insert(r.seq, r.clone());
        }
        for c in checkpoints {
            tables.checkpoints.insert(c.seq, c.clone());
        }
        Ok(())
    }

    async fn last_audit_record(&self) -> Result<Option<AuditRow>, StoreError> {
        Ok(self.lock()?.records.values().next_back().cloned())
    }

    async fn last_audit_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        Ok(self.lock()?.checkpoints.values().next_back().cloned())
    }

    async fn audit_records_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let tables = self.lock()?;
        Ok(tables
            .records
            .range(after_seq.saturating_add(1)..)
            .take(limit as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn audit_checkpoints_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let tables = self.lock()?;
        Ok(tables
            .checkpoints
            .range(after_seq.saturating_add(1)..)
            .take(limit as usize)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn audit_record_continuing_file(
        &self,
        file_prev_seq: i64,
    ) -> Result<Option<AuditRow>, StoreError> {
        let tables = self.lock()?;
        Ok(tables
            .records
            .values()
            .find(|r| r.file_prev_seq == Some(file_prev_seq))
            .cloned())
    }

    async fn first_audit_seq_since(&self, since_us: i64) -> Result<Option<i64>, StoreError> {
        let tables = self.lock()?;
        Ok(tables
            .records
            .values()
            .find(|r| r.time_us >= since_us)
            .map(|r| r.seq))
    }
}
