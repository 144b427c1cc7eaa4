//! Wrapped data keys ([`KeyStore`]).

use async_trait::async_trait;
use rampart_core::keys::KeyPurpose;
use rampart_core::store::{InstanceRecord, KeyStore, Rewrap, StoreError, WrappedKeyRecord};

use crate::connect::Store;
use crate::error::on;
use crate::rows;

#[async_trait]
impl KeyStore for Store {
    async fn initialize(
        &self,
        instance: &InstanceRecord,
        keys: &[WrappedKeyRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write("instance").await?;
        // The instance row goes first: a concurrent initializer blocks on it (its
        // primary key is fixed at 1) and then fails with a uniqueness violation
        // before writing any key.
        sqlx::query(
            "INSERT INTO instance (id, initialized_at, sealed_with, key_check) \
             VALUES (1, $1, $2, $3)",
        )
        .bind(rows::unix(instance.initialized_at))
        .bind(rows::kind_label(instance.sealed_with))
        .bind(instance.key_check.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(on("instance"))?;
        for key in keys {
            sqlx::query(
                "INSERT INTO data_keys (key_id, purpose, wrapped, created_at, retired_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key.id.as_str())
            .bind(key.purpose.label())
            .bind(key.wrapped.as_slice())
            .bind(rows::unix(key.created_at))
            .bind(key.retired_at.map(rows::unix))
            .execute(&mut *tx)
            .await
            .map_err(on("data key"))?;
        }
        tx.commit().await.map_err(on("instance"))
    }

    async fn wrapped_keys(&self) -> Result<Vec<WrappedKeyRecord>, StoreError> {
        let found: Vec<(String, String, Vec<u8>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT key_id, purpose, wrapped, created_at, retired_at FROM data_keys \
             ORDER BY created_at, key_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(on("data key"))?;
        found
            .into_iter()
            .map(|(id, purpose, wrapped, created_at, retired_at)| {
                Ok(WrappedKeyRecord {
                    id: rows::key_id(id, "data key")?,
                    purpose: KeyPurpose::from_label(&purpose)
                        .ok_or_else(|| StoreError::corrupt("data key", "unknown purpose"))?,
                    wrapped,
                    created_at: rows::time(created_at, "data key")?,
                    retired_at: rows::opt_time(retired_at, "data key")?,
                })
            })
            .collect()
    }

    async fn rewrap(&self, rewrap: &Rewrap) -> Result<(), StoreError> {
        let mut tx = self.begin_write("instance").await?;
        // Conditional on the old check value: of two concurrent rotations, the second
        // finds the value changed (after waiting for the first's row lock) and stops.
        let updated = sqlx::query(
            "UPDATE instance SET key_check = $1, sealed_with = $2, rewrapped_at = $3 \
             WHERE id = 1 AND key_check = $4",
        )
        .bind(rewrap.new_key_check.as_slice())
        .bind(rows::kind_label(rewrap.sealed_with))
        .bind(rows::unix(rewrap.at))
        .bind(rewrap.old_key_check.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(on("instance"))?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict { what: "instance" });
        }
        for key in &rewrap.keys {
            let updated = sqlx::query("UPDATE data_keys SET wrapped = $1 WHERE key_id = $2")
                .bind(key.wrapped.as_slice())
                .bind(key.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(on("data key"))?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::Conflict { what: "data key" });
            }
        }
        // A key added since the caller read the list would stay wrapped under the old
        // master key and become unreadable: refuse rather than commit that.
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM data_keys")
            .fetch_one(&mut *tx)
            .await
            .map_err(on("data key"))?;
        if usize::try_from(stored).ok() != Some(rewrap.keys.len()) {
            return Err(StoreError::Conflict { what: "data key" });
        }
        tx.commit().await.map_err(on("instance"))
    }
}
