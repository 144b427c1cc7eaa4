//! The audit tables ([`AuditStore`]), created by the `0100_audit.sql` migrations.
//!
//! Plain columns in, plain columns out: the audit module in `rampart-core` owns the
//! record format and decides whether a row is malformed (so verification can name
//! the row), so nothing is parsed here. Rows are only ever inserted, possibly by
//! several processes at once; the unique keys of `0100_audit.sql` decide who wins.

use async_trait::async_trait;
use rampart_core::audit::{AuditRow, AuditStore, CheckpointRow};
use rampart_core::store::StoreError;

use crate::connect::Store;
use crate::error::on;

const WHAT: &str = "audit record";

#[async_trait]
impl AuditStore for Store {
    async fn append_audit(
        &self,
        records: &[AuditRow],
        checkpoints: &[CheckpointRow],
    ) -> Result<(), StoreError> {
        if records.is_empty() && checkpoints.is_empty() {
            return Ok(());
        }
        // One transaction per batch: a batch is in the table entirely or not at all,
        // and a duplicate seq or checkpoint prev_seq (another writer got there first,
        // or a retried batch that had in fact committed) rolls the whole batch back
        // as a `Conflict`. On PostgreSQL a concurrent insert of the same key waits for
        // the other transaction and then fails, so the loser always sees the conflict.
        let mut tx = self.begin_write(WHAT).await?;
        for r in records {
            sqlx::query(
                "INSERT INTO audit_records (seq, time_us, writer, file_prev_seq, kind, outcome, \
                 actor, target, client_ip, request_id, reason, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(r.seq)
            .bind(r.time_us)
            .bind(r.writer.as_str())
            .bind(r.file_prev_seq)
            .bind(r.kind.as_str())
            .bind(r.outcome.as_str())
            .bind(r.actor.as_deref())
            .bind(r.target.as_deref())
            .bind(r.client_ip.as_deref())
            .bind(r.request_id.as_deref())
            .bind(r.reason.as_deref())
            .bind(r.details.as_str())
            .bind(r.prev_hash.as_str())
            .bind(r.hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(on(WHAT))?;
        }
        for c in checkpoints {
            sqlx::query(
                "INSERT INTO audit_checkpoints (seq, hash, prev_seq, time_us, writer, key_id, \
                 signature) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(c.seq)
            .bind(c.hash.as_str())
            .bind(c.prev_seq)
            .bind(c.time_us)
            .bind(c.writer.as_str())
            .bind(c.key_id.as_str())
            .bind(c.signature.as_str())
            .execute(&mut *tx)
            .await
            .map_err(on("audit checkpoint"))?;
        }
        tx.commit().await.map_err(on(WHAT))
    }

    async fn last_audit_record(&self) -> Result<Option<AuditRow>, StoreError> {
        let row: Option<RecordTuple> = sqlx::query_as(
            "SELECT seq, time_us, writer, file_prev_seq, kind, outcome, actor, target, \
             client_ip, request_id, reason, details, prev_hash, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(on(WHAT))?;
        Ok(row.map(record_row))
    }

    async fn last_audit_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let row: Option<CheckpointTuple> = sqlx::query_as(
            "SELECT seq, hash, prev_seq, time_us, writer, key_id, signature FROM audit_checkpoints \
             ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(on("audit checkpoint"))?;
        Ok(row.map(checkpoint_row))
    }

    async fn audit_records_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows: Vec<RecordTuple> = sqlx::query_as(
            "SELECT seq, time_us, writer, file_prev_seq, kind, outcome, actor, target, \
             client_ip, request_id, reason, details, prev_hash, hash FROM audit_records WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(on(WHAT))?;
        Ok(rows.into_iter().map(record_row).collect())
    }

    async fn audit_checkpoints_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows: Vec<CheckpointTuple> = sqlx::query_as(
            "SELECT seq, hash, prev_seq, time_us, writer, key_id, signature FROM audit_checkpoints \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(on("audit checkpoint"))?;
        Ok(rows.into_iter().map(checkpoint_row).collect())
    }

    async fn audit_record_continuing_file(
        &self,
        file_prev_seq: i64,
    ) -> Result<Option<AuditRow>, StoreError> {
        let row: Option<RecordTuple> = sqlx::query_as(
            "SELECT seq, time_us, writer, file_prev_seq, kind, outcome, actor, target, \
             client_ip, request_id, reason, details, prev_hash, hash FROM audit_records \
             WHERE file_prev_seq = $1 ORDER BY seq LIMIT 1",
        )
        .bind(file_prev_seq)
        .fetch_optional(self.pool())
        .await
        .map_err(on(WHAT))?;
        Ok(row.map(record_row))
    }

    async fn first_audit_seq_since(&self, since_us: i64) -> Result<Option<i64>, StoreError> {
        // Uses the time index; MIN over an empty set is NULL.
        sqlx::query_scalar("SELECT MIN(seq) FROM audit_records WHERE time_us >= $1")
            .bind(since_us)
            .fetch_one(self.pool())
            .await
            .map_err(on(WHAT))
    }
}

type RecordTuple = (
    i64,
    i64,
    String,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

type CheckpointTuple = (i64, String, i64, i64, String, String, String);

fn record_row(
    (
        seq,
        time_us,
        writer,
        file_prev_seq,
        kind,
        outcome,
        actor,
        target,
        client_ip,
        request_id,
        reason,
        details,
        prev_hash,
        hash,
    ): RecordTuple,
) -> AuditRow {
    AuditRow {
        seq,
        time_us,
        writer,
        file_prev_seq,
        kind,
        outcome,
        actor,
        target,
        client_ip,
        request_id,
        reason,
        details,
        prev_hash,
        hash,
    }
}

fn checkpoint_row(
    (seq, hash, prev_seq, time_us, writer, key_id, signature): CheckpointTuple,
) -> CheckpointRow {
    CheckpointRow {
        seq,
        hash,
        prev_seq,
        time_us,
        writer,
        key_id,
        signature,
    }
}
