//! The instance row ([`InstanceStore`]).

use async_trait::async_trait;
use rampart_core::store::{InstanceRecord, InstanceStore, StoreError};

use crate::connect::Store;
use crate::error::on;
use crate::rows;

#[async_trait]
impl InstanceStore for Store {
    async fn instance(&self) -> Result<Option<InstanceRecord>, StoreError> {
        let row: Option<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT initialized_at, sealed_with, key_check FROM instance WHERE id = 1",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(on("instance"))?;
        row.map(|(initialized_at, sealed_with, key_check)| {
            Ok(InstanceRecord {
                initialized_at: rows::time(initialized_at, "instance")?,
                sealed_with: rows::kind_from_label(&sealed_with)?,
                key_check,
            })
        })
        .transpose()
    }
}
