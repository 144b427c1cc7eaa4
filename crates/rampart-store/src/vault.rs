//! Sealed vault secrets ([`VaultStore`]).

use async_trait::async_trait;
use rampart_core::store::{Removal, SecretRecord, StoreError, VaultStore};
use rampart_core::vault::SecretName;

use crate::connect::Store;
use crate::error::on;
use crate::rows;

const WHAT: &str = "vault secret";

#[async_trait]
impl VaultStore for Store {
    async fn put_secret(&self, record: &SecretRecord) -> Result<(), StoreError> {
        // One statement, so atomic without an explicit transaction. `created_at` is
        // left alone on replacement.
        sqlx::query(
            "INSERT INTO vault_secrets (name, key_id, sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, \
             sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(record.name.as_str())
        .bind(record.key_id.as_str())
        .bind(record.sealed.as_slice())
        .bind(rows::unix(record.created_at))
        .bind(rows::unix(record.updated_at))
        .execute(self.pool())
        .await
        .map_err(on(WHAT))?;
        Ok(())
    }

    async fn secret(&self, name: &SecretName) -> Result<Option<SecretRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT name, key_id, sealed, created_at, updated_at FROM vault_secrets \
             WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(on(WHAT))?;
        row.map(record).transpose()
    }

    async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let found: Vec<Row> = sqlx::query_as(
            "SELECT name, key_id, sealed, created_at, updated_at FROM vault_secrets \
             ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(on(WHAT))?;
        found.into_iter().map(record).collect()
    }

    async fn delete_secret(&self, name: &SecretName) -> Result<Removal, StoreError> {
        let deleted = sqlx::query("DELETE FROM vault_secrets WHERE name = $1")
            .bind(name.as_str())
            .execute(self.pool())
            .await
            .map_err(on(WHAT))?;
        Ok(if deleted.rows_affected() == 0 {
            Removal::Absent
        } else {
            Removal::Removed
        })
    }
}

type Row = (String, String, Vec<u8>, i64, i64);

fn record((name, key_id, sealed, created_at, updated_at): Row) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        name: SecretName::new(name).map_err(|_| StoreError::corrupt(WHAT, "invalid name"))?,
        key_id: rows::key_id(key_id, WHAT)?,
        sealed,
        created_at: rows::time(created_at, WHAT)?,
        updated_at: rows::time(updated_at, WHAT)?,
    })
}
