//! Email magic links ([`MagicLinkStore`]), created by the `0400_magic.sql` migrations.
//!
//! Only hashes are stored. Consumption is a single conditional `UPDATE … RETURNING`:
//! on PostgreSQL the second of two concurrent updates waits for the first one's row
//! lock and then re-checks `used_at IS NULL` against the committed row, and SQLite
//! runs writers one at a time, so on both backends exactly one consumer wins.

use async_trait::async_trait;
use rampart_core::identity::UserId;
use rampart_core::identity::magic::{Consumption, MagicLinkAttempt, MagicLinkStore, NewMagicLink};
use rampart_core::store::StoreError;
use time::OffsetDateTime;

use crate::connect::Store;
use crate::error::on;
use crate::rows;

const WHAT: &str = "magic link";

#[async_trait]
impl MagicLinkStore for Store {
    async fn insert_magic_link(&self, link: &NewMagicLink) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO magic_links (token_hash, user_id, binding_hash, created_at, \
             expires_at, used_at) VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(link.token_hash.as_slice())
        .bind(link.user_id.as_str())
        .bind(link.binding_hash.as_slice())
        .bind(rows::unix(link.created_at))
        .bind(rows::unix(link.expires_at))
        .execute(self.pool())
        .await
        .map_err(on(WHAT))?;
        Ok(())
    }

    async fn consume_magic_link(
        &self,
        attempt: &MagicLinkAttempt,
    ) -> Result<Consumption, StoreError> {
        let now = rows::unix(attempt.at);
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE magic_links SET used_at = $3 \
             WHERE token_hash = $1 AND binding_hash = $2 AND used_at IS NULL \
             AND expires_at > $3 \
             RETURNING user_id",
        )
        .bind(attempt.token_hash.as_slice())
        .bind(attempt.binding_hash.as_slice())
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(on(WHAT))?;
        match user {
            Some(text) => UserId::parse(&text)
                .map(Consumption::Consumed)
                .map_err(|_| StoreError::corrupt(WHAT, "malformed user id")),
            None => Ok(Consumption::Refused),
        }
    }

    async fn count_recent_magic_links(
        &self,
        user: &UserId,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM magic_links \
             WHERE user_id = $1 AND created_at >= $2 AND used_at IS NULL",
        )
        .bind(user.as_str())
        .bind(rows::unix(since))
        .fetch_one(self.pool())
        .await
        .map_err(on(WHAT))?;
        u64::try_from(count).map_err(|_| StoreError::corrupt(WHAT, "negative count"))
    }

    async fn retire_magic_links(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE magic_links SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user.as_str())
        .bind(rows::unix(at))
        .execute(self.pool())
        .await
        .map_err(on(WHAT))?;
        Ok(done.rows_affected())
    }

    async fn purge_magic_links(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM magic_links WHERE expires_at < $1")
            .bind(rows::unix(before))
            .execute(self.pool())
            .await
            .map_err(on(WHAT))?;
        Ok(done.rows_affected())
    }
}
