//! Sessions, refresh tokens, API tokens and the JWT keyring
//! ([`SessionStore`], [`TokenStore`], [`SigningKeyStore`]).
//!
//! Credentials are looked up by their SHA-256 only. The refresh-token spend is one
//! conditional `UPDATE … WHERE spent_at IS NULL` at the start of a write transaction,
//! so concurrent presenters of the same token serialize on its row (PostgreSQL row
//! lock, SQLite `BEGIN IMMEDIATE`) and exactly one of them spends it.

use async_trait::async_trait;
use rampart_core::identity::UserId;
use rampart_core::identity::session::{
    ApiTokenRecord, CredentialHash, RefreshFamily, RefreshRecord, SessionRecord, SessionStore,
    SigningKeyRecord, SigningKeyStore, Spend, Successor, TokenStore,
};
use rampart_core::store::{Removal, StoreError};
use time::OffsetDateTime;

use crate::connect::Store;
use crate::error::on;
use crate::rows;

const SESSION: &str = "session";
const FAMILY: &str = "refresh token family";
const REFRESH: &str = "refresh token";
const API_TOKEN: &str = "API token";
const SIGNING_KEY: &str = "signing key";

const SESSION_COLUMNS: &str = "public_id, id_hash, user_id, created_at, last_seen_at, \
     expires_at, mfa, security_version, user_agent, client_ip";

const API_TOKEN_COLUMNS: &str =
    "token_id, token_hash, user_id, name, scopes, created_at, expires_at, last_used_at";

#[async_trait]
impl SessionStore for Store {
    async fn insert_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        insert_session(self.pool(), record).await
    }

    async fn session_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"
        )))
        .bind(hash.as_slice())
        .fetch_optional(self.pool())
        .await
        .map_err(on(SESSION))?;
        row.map(session).transpose()
    }

    async fn touch_session(&self, public_id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        // Never moves last_seen backwards (two replicas touching out of order).
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE public_id = $2 AND last_seen_at < $1",
        )
        .bind(rows::unix(at))
        .bind(public_id)
        .execute(self.pool())
        .await
        .map_err(on(SESSION))?;
        Ok(())
    }

    async fn sessions_of(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let found: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at > $2 \
             ORDER BY created_at DESC, public_id"
        )))
        .bind(user.as_str())
        .bind(rows::unix(now))
        .fetch_all(self.pool())
        .await
        .map_err(on(SESSION))?;
        found.into_iter().map(session).collect()
    }

    async fn delete_session(&self, user: &UserId, public_id: &str) -> Result<Removal, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE public_id = $1 AND user_id = $2")
            .bind(public_id)
            .bind(user.as_str())
            .execute(self.pool())
            .await
            .map_err(on(SESSION))?;
        Ok(removal(deleted.rows_affected()))
    }

    async fn delete_sessions_of(
        &self,
        user: &UserId,
        keep: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write(SESSION).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT public_id FROM sessions WHERE user_id = $1 AND public_id <> $2",
        )
        .bind(user.as_str())
        .bind(keep.unwrap_or(""))
        .fetch_all(&mut *tx)
        .await
        .map_err(on(SESSION))?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND public_id <> $2")
            .bind(user.as_str())
            .bind(keep.unwrap_or(""))
            .execute(&mut *tx)
            .await
            .map_err(on(SESSION))?;
        tx.commit().await.map_err(on(SESSION))?;
        Ok(ids)
    }

    async fn replace_session(
        &self,
        user: &UserId,
        old: &str,
        new: &SessionRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(SESSION).await?;
        let deleted = sqlx::query("DELETE FROM sessions WHERE public_id = $1 AND user_id = $2")
            .bind(old)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(on(SESSION))?;
        if deleted.rows_affected() != 1 {
            return Err(StoreError::NotFound { what: SESSION });
        }
        insert_session(&mut *tx, new).await?;
        tx.commit().await.map_err(on(SESSION))
    }

    async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(rows::unix(now))
            .execute(self.pool())
            .await
            .map_err(on(SESSION))?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl TokenStore for Store {
    async fn insert_family(
        &self,
        family: &RefreshFamily,
        first: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(FAMILY).await?;
        sqlx::query(
            "INSERT INTO refresh_families \
             (family_id, user_id, created_at, mfa, security_version, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(family.id.as_str())
        .bind(family.user_id.as_str())
        .bind(rows::unix(family.created_at))
        .bind(i64::from(family.mfa))
        .bind(family.security_version)
        .bind(family.revoked_at.map(rows::unix))
        .execute(&mut *tx)
        .await
        .map_err(on(FAMILY))?;
        sqlx::query(
            "INSERT INTO refresh_tokens \
             (token_hash, family_id, created_at, expires_at, spent_at, successor_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(first.token_hash.as_slice())
        .bind(family.id.as_str())
        .bind(rows::unix(first.created_at))
        .bind(rows::unix(first.expires_at))
        .bind(first.spent_at.map(rows::unix))
        .bind(first.successor_sealed.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(on(REFRESH))?;
        tx.commit().await.map_err(on(FAMILY))
    }

    async fn family(&self, id: &str) -> Result<Option<RefreshFamily>, StoreError> {
        let row: Option<FamilyRow> = sqlx::query_as(
            "SELECT family_id, user_id, created_at, mfa, security_version, revoked_at \
             FROM refresh_families WHERE family_id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(on(FAMILY))?;
        row.map(family).transpose()
    }

    async fn spend_refresh(
        &self,
        hash: &CredentialHash,
        now: OffsetDateTime,
        successor: &Successor,
    ) -> Result<Spend, StoreError> {
        let now_unix = rows::unix(now);
        let mut tx = self.begin_write(REFRESH).await?;
        // First statement: the conditional spend. A concurrent spender of the same
        // token blocks here until the winner commits, then matches no row.
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = $1, successor_sealed = $2 \
             WHERE token_hash = $3 AND spent_at IS NULL AND expires_at > $1 \
             AND family_id IN (SELECT family_id FROM refresh_families WHERE revoked_at IS NULL)",
        )
        .bind(now_unix)
        .bind(successor.sealed.as_slice())
        .bind(hash.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(on(REFRESH))?;

        let token: Option<(String, i64, Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT family_id, expires_at, spent_at, successor_sealed FROM refresh_tokens \
             WHERE token_hash = $1",
        )
        .bind(hash.as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(on(REFRESH))?;
        let Some((family_id, expires_at, spent_at, sealed)) = token else {
            return Ok(Spend::Unknown);
        };
        let row: Option<FamilyRow> = sqlx::query_as(
            "SELECT family_id, user_id, created_at, mfa, security_version, revoked_at \
             FROM refresh_families WHERE family_id = $1",
        )
        .bind(family_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(on(FAMILY))?;
        let Some(found) = row.map(family).transpose()? else {
            return Ok(Spend::Unknown);
        };

        if spent.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(successor.token_hash.as_slice())
            .bind(family_id.as_str())
            .bind(now_unix)
            .bind(rows::unix(successor.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(on(REFRESH))?;
            sqlx::query(
                "UPDATE refresh_tokens SET successor_sealed = NULL \
                 WHERE family_id = $1 AND spent_at < $2 AND successor_sealed IS NOT NULL",
            )
            .bind(family_id.as_str())
            .bind(rows::unix(successor.forget_before))
            .execute(&mut *tx)
            .await
            .map_err(on(REFRESH))?;
            tx.commit().await.map_err(on(REFRESH))?;
            return Ok(Spend::Spent { family: found });
        }
        // Nothing was written; the transaction ends with its drop (rollback).
        if found.revoked_at.is_some() {
            return Ok(Spend::Revoked);
        }
        if let Some(spent_at) = spent_at {
            return Ok(Spend::AlreadySpent {
                family: found,
                spent_at: rows::time(spent_at, REFRESH)?,
                successor_sealed: sealed,
            });
        }
        if expires_at <= now_unix {
            return Ok(Spend::Expired);
        }
        Err(StoreError::corrupt(
            REFRESH,
            "unspent token could not be spent",
        ))
    }

    async fn revoke_family(&self, id: &str, at: OffsetDateTime) -> Result<Removal, StoreError> {
        let mut tx = self.begin_write(FAMILY).await?;
        let updated = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 \
             WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(rows::unix(at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(on(FAMILY))?;
        sqlx::query("UPDATE refresh_tokens SET successor_sealed = NULL WHERE family_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(on(REFRESH))?;
        tx.commit().await.map_err(on(FAMILY))?;
        Ok(removal(updated.rows_affected()))
    }

    async fn revoke_families_of(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write(FAMILY).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT family_id FROM refresh_families WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(on(FAMILY))?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(rows::unix(at))
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(on(FAMILY))?;
        sqlx::query(
            "UPDATE refresh_tokens SET successor_sealed = NULL WHERE family_id IN \
             (SELECT family_id FROM refresh_families WHERE user_id = $1)",
        )
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(on(REFRESH))?;
        tx.commit().await.map_err(on(FAMILY))?;
        Ok(ids)
    }

    async fn purge_refresh(
        &self,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write(REFRESH).await?;
        sqlx::query(
            "UPDATE refresh_tokens SET successor_sealed = NULL \
             WHERE spent_at < $1 AND successor_sealed IS NOT NULL",
        )
        .bind(rows::unix(forget_before))
        .execute(&mut *tx)
        .await
        .map_err(on(REFRESH))?;
        let deleted = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(rows::unix(now))
            .execute(&mut *tx)
            .await
            .map_err(on(REFRESH))?;
        sqlx::query(
            "DELETE FROM refresh_families WHERE family_id NOT IN \
             (SELECT family_id FROM refresh_tokens)",
        )
        .execute(&mut *tx)
        .await
        .map_err(on(FAMILY))?;
        tx.commit().await.map_err(on(REFRESH))?;
        Ok(deleted.rows_affected())
    }

    async fn insert_api_token(&self, record: &ApiTokenRecord) -> Result<(), StoreError> {
        let scopes = serde_json::to_string(&record.scopes)
            .map_err(|_| StoreError::corrupt(API_TOKEN, "scopes cannot be encoded"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_tokens ({API_TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(record.id.as_str())
        .bind(record.token_hash.as_slice())
        .bind(record.user_id.as_str())
        .bind(record.name.as_str())
        .bind(scopes)
        .bind(rows::unix(record.created_at))
        .bind(rows::unix(record.expires_at))
        .bind(record.last_used_at.map(rows::unix))
        .execute(self.pool())
        .await
        .map_err(on(API_TOKEN))?;
        Ok(())
    }

    async fn api_token_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row: Option<ApiTokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        )))
        .bind(hash.as_slice())
        .fetch_optional(self.pool())
        .await
        .map_err(on(API_TOKEN))?;
        row.map(api_token).transpose()
    }

    async fn api_tokens(&self, user: Option<&UserId>) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let found: Vec<ApiTokenRow> = match user {
            Some(user) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 \
                 ORDER BY created_at DESC, token_id"
            )))
            .bind(user.as_str())
            .fetch_all(self.pool())
            .await
            .map_err(on(API_TOKEN))?,
            None => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {API_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC, token_id"
            )))
            .fetch_all(self.pool())
            .await
            .map_err(on(API_TOKEN))?,
        };
        found.into_iter().map(api_token).collect()
    }

    async fn touch_api_token(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE token_id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(rows::unix(at))
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(on(API_TOKEN))?;
        Ok(())
    }

    async fn delete_api_token(
        &self,
        id: &str,
        user: Option<&UserId>,
    ) -> Result<Option<CredentialHash>, StoreError> {
        let mut tx = self.begin_write(API_TOKEN).await?;
        let found: Option<(Vec<u8>, String)> =
            sqlx::query_as("SELECT token_hash, user_id FROM api_tokens WHERE token_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(on(API_TOKEN))?;
        let Some((hash, owner)) = found else {
            return Ok(None);
        };
        if user.is_some_and(|user| user.as_str() != owner) {
            return Ok(None);
        }
        sqlx::query("DELETE FROM api_tokens WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(on(API_TOKEN))?;
        tx.commit().await.map_err(on(API_TOKEN))?;
        Ok(Some(credential_hash(hash, API_TOKEN)?))
    }

    async fn delete_api_tokens_of(&self, user: &UserId) -> Result<Vec<CredentialHash>, StoreError> {
        let mut tx = self.begin_write(API_TOKEN).await?;
        let hashes: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT token_hash FROM api_tokens WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(on(API_TOKEN))?;
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(on(API_TOKEN))?;
        tx.commit().await.map_err(on(API_TOKEN))?;
        hashes
            .into_iter()
            .map(|h| credential_hash(h, API_TOKEN))
            .collect()
    }
}

#[async_trait]
impl SigningKeyStore for Store {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let found: Vec<SigningKeyRow> = sqlx::query_as(
            "SELECT kid, public_key, sealed_private, created_at, retired_at, valid_until \
             FROM jwt_signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(self.pool())
        .await
        .map_err(on(SIGNING_KEY))?;
        found.into_iter().map(signing_key).collect()
    }

    async fn insert_first_signing_key(&self, record: &SigningKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write(SIGNING_KEY).await?;
        let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM jwt_signing_keys")
            .fetch_one(&mut *tx)
            .await
            .map_err(on(SIGNING_KEY))?;
        if existing != 0 {
            return Err(StoreError::Conflict { what: SIGNING_KEY });
        }
        // The unique index on the active key also stops a concurrent PostgreSQL
        // inserter that counted zero too: it fails with a uniqueness violation.
        insert_signing_key(&mut *tx, record).await?;
        tx.commit().await.map_err(on(SIGNING_KEY))
    }

    async fn rotate_signing_key(
        &self,
        old_kid: &str,
        retired_at: OffsetDateTime,
        valid_until: OffsetDateTime,
        new: &SigningKeyRecord,
        prune_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(SIGNING_KEY).await?;
        let retired = sqlx::query(
            "UPDATE jwt_signing_keys SET retired_at = $1, valid_until = $2 \
             WHERE kid = $3 AND retired_at IS NULL",
        )
        .bind(rows::unix(retired_at))
        .bind(rows::unix(valid_until))
        .bind(old_kid)
        .execute(&mut *tx)
        .await
        .map_err(on(SIGNING_KEY))?;
        if retired.rows_affected() != 1 {
            return Err(StoreError::Conflict { what: SIGNING_KEY });
        }
        insert_signing_key(&mut *tx, new).await?;
        sqlx::query("DELETE FROM jwt_signing_keys WHERE valid_until < $1")
            .bind(rows::unix(prune_before))
            .execute(&mut *tx)
            .await
            .map_err(on(SIGNING_KEY))?;
        tx.commit().await.map_err(on(SIGNING_KEY))
    }
}

type SessionRow = (
    String,
    Vec<u8>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

type FamilyRow = (String, String, i64, i64, i64, Option<i64>);

type ApiTokenRow = (
    String,
    Vec<u8>,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

type SigningKeyRow = (String, Vec<u8>, Vec<u8>, i64, Option<i64>, Option<i64>);

async fn insert_session<'e, E>(executor: E, record: &SessionRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(record.public_id.as_str())
    .bind(record.id_hash.as_slice())
    .bind(record.user_id.as_str())
    .bind(rows::unix(record.created_at))
    .bind(rows::unix(record.last_seen_at))
    .bind(rows::unix(record.expires_at))
    .bind(i64::from(record.mfa))
    .bind(record.security_version)
    .bind(record.user_agent.as_deref())
    .bind(record.client_ip.as_deref())
    .execute(executor)
    .await
    .map_err(on(SESSION))?;
    Ok(())
}

async fn insert_signing_key<'e, E>(executor: E, record: &SigningKeyRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO jwt_signing_keys \
         (kid, public_key, sealed_private, created_at, retired_at, valid_until) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(record.kid.as_str())
    .bind(record.public_key.as_slice())
    .bind(record.sealed_private.as_slice())
    .bind(rows::unix(record.created_at))
    .bind(record.retired_at.map(rows::unix))
    .bind(record.valid_until.map(rows::unix))
    .execute(executor)
    .await
    .map_err(on(SIGNING_KEY))?;
    Ok(())
}

fn session(
    (
        public_id,
        id_hash,
        user_id,
        created_at,
        last_seen_at,
        expires_at,
        mfa,
        security_version,
        user_agent,
        client_ip,
    ): SessionRow,
) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        public_id,
        id_hash: credential_hash(id_hash, SESSION)?,
        user_id: user_id_of(&user_id, SESSION)?,
        created_at: rows::time(created_at, SESSION)?,
        last_seen_at: rows::time(last_seen_at, SESSION)?,
        expires_at: rows::time(expires_at, SESSION)?,
        mfa: flag(mfa, SESSION)?,
        security_version,
        user_agent,
        client_ip,
    })
}

fn family(
    (id, user_id, created_at, mfa, security_version, revoked_at): FamilyRow,
) -> Result<RefreshFamily, StoreError> {
    Ok(RefreshFamily {
        id,
        user_id: user_id_of(&user_id, FAMILY)?,
        created_at: rows::time(created_at, FAMILY)?,
        mfa: flag(mfa, FAMILY)?,
        security_version,
        revoked_at: rows::opt_time(revoked_at, FAMILY)?,
    })
}

fn api_token(
    (id, token_hash, user_id, name, scopes, created_at, expires_at, last_used_at): ApiTokenRow,
) -> Result<ApiTokenRecord, StoreError> {
    Ok(ApiTokenRecord {
        id,
        token_hash: credential_hash(token_hash, API_TOKEN)?,
        user_id: user_id_of(&user_id, API_TOKEN)?,
        name,
        scopes: serde_json::from_str(&scopes)
            .map_err(|_| StoreError::corrupt(API_TOKEN, "scopes are not a JSON string array"))?,
        created_at: rows::time(created_at, API_TOKEN)?,
        expires_at: rows::time(expires_at, API_TOKEN)?,
        last_used_at: rows::opt_time(last_used_at, API_TOKEN)?,
    })
}

fn signing_key(
    (kid, public_key, sealed_private, created_at, retired_at, valid_until): SigningKeyRow,
) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        kid,
        public_key,
        sealed_private,
        created_at: rows::time(created_at, SIGNING_KEY)?,
        retired_at: rows::opt_time(retired_at, SIGNING_KEY)?,
        valid_until: rows::opt_time(valid_until, SIGNING_KEY)?,
    })
}

fn credential_hash(bytes: Vec<u8>, what: &'static str) -> Result<CredentialHash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(what, "hash is not 32 bytes"))
}

fn user_id_of(text: &str, what: &'static str) -> Result<UserId, StoreError> {
    UserId::parse(text).map_err(|_| StoreError::corrupt(what, "malformed user id"))
}

fn flag(value: i64, what: &'static str) -> Result<bool, StoreError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(StoreError::corrupt(what, "flag is not 0 or 1")),
    }
}

fn removal(rows_affected: u64) -> Removal {
    if rows_affected == 0 {
        Removal::Absent
    } else {
        Removal::Removed
    }
}
