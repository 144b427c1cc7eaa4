//! Accounts ([`AccountStore`]): users, recovery codes, invites, the first-admin
//! bootstrap row, failed-login counters and pending logins.
//!
//! Lists and maps (roles, tenants, attributes) are JSON text columns; booleans are
//! `0`/`1`. Every "spend once" operation is a single conditional statement (or a
//! write transaction whose first statement takes the row lock), so it holds across
//! connections, processes and replicas on both backends.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use rampart_core::identity::UserId;
use rampart_core::identity::account::{
    Admission, Admitted, Changed, EnrollmentStore, FailureCounter, FailureTally, FieldChange,
    InviteRecord, LockoutPolicy, LockoutStore, LockoutSubject, PendingLoginRecord,
    PendingLoginStore, ProfileChange, RecoveryCodeRecord, SecurityChange, Spent, TokenHash,
    TotpRecord, UserRecord, UserStore, Username,
};
use rampart_core::store::{Removal, StoreError};
use rampart_crypto::BlindIndex;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::connect::Store;
use crate::error::on;
use crate::rows;

const USER: &str = "user";
const RECOVERY: &str = "recovery code";
const INVITE: &str = "invite";
const BOOTSTRAP: &str = "account bootstrap";
const FAILURES: &str = "login failure counter";
const PENDING: &str = "pending login";

/// `SELECT <every user column> FROM users <tail>`, as one literal: no SQL is built at
/// run time.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT user_id, username, email_sealed, email_index, display_name_sealed, \
             password_hash, roles, tenants, attributes, disabled, security_version, \
             totp_sealed, totp_enabled, totp_last_step, created_at, updated_at FROM users ",
            $tail
        )
    };
}

/// `UPDATE users SET <assignments>, <security version bump> WHERE user_id = $1
/// <condition> RETURNING security_version`; `$2` is the time.
macro_rules! bump_user {
    ($set:literal, $condition:literal) => {
        concat!(
            "UPDATE users SET ",
            $set,
            ", security_version = security_version + 1, updated_at = $2 \
             WHERE user_id = $1 ",
            $condition,
            " RETURNING security_version"
        )
    };
}

#[async_trait]
impl UserStore for Store {
    async fn create_user(
        &self,
        user: &UserRecord,
        admission: &Admission,
        at: OffsetDateTime,
    ) -> Result<Admitted, StoreError> {
        let now = rows::unix(at);
        let mut tx = self.begin_write(USER).await?;
        // Admission first: its conditional update takes the bootstrap or invite row
        // lock, so a concurrent attempt with the same token waits and then fails.
        let refused = match admission {
            Admission::SetupToken(hash) => {
                let updated = sqlx::query(
                    "UPDATE account_bootstrap SET initialized_at = $1, first_admin = $2, \
                     setup_token_hash = NULL, setup_token_expires_at = NULL \
                     WHERE id = 1 AND initialized_at IS NULL AND setup_token_hash = $3 \
                     AND setup_token_expires_at > $1",
                )
                .bind(now)
                .bind(user.id.as_str())
                .bind(hash.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(on(BOOTSTRAP))?;
                if updated.rows_affected() == 1 {
                    None
                } else if initialized(&mut tx).await? {
                    Some(Admitted::AlreadyInitialized)
                } else {
                    Some(Admitted::SetupTokenRefused)
                }
            }
            Admission::FirstAdmin => {
                let updated = sqlx::query(
                    "UPDATE account_bootstrap SET initialized_at = $1, first_admin = $2, \
                     setup_token_hash = NULL, setup_token_expires_at = NULL \
                     WHERE id = 1 AND initialized_at IS NULL",
                )
                .bind(now)
                .bind(user.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(on(BOOTSTRAP))?;
                (updated.rows_affected() != 1).then_some(Admitted::AlreadyInitialized)
            }
            Admission::Initialized => {
                (!initialized(&mut tx).await?).then_some(Admitted::NotInitialized)
            }
            Admission::Invite(hash) => {
                if initialized(&mut tx).await? {
                    let updated = sqlx::query(
                        "UPDATE invites SET used_at = $1, used_by = $2 \
                         WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $1",
                    )
                    .bind(now)
                    .bind(user.id.as_str())
                    .bind(hash.as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(on(INVITE))?;
                    (updated.rows_affected() != 1).then_some(Admitted::InviteRefused)
                } else {
                    Some(Admitted::NotInitialized)
                }
            }
        };
        if let Some(refusal) = refused {
            return Ok(refusal);
        }
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE username = $1")
            .bind(user.username.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(on(USER))?;
        if taken.is_some() {
            return Ok(Admitted::UsernameTaken);
        }
        if let Some(index) = &user.email_index {
            let taken: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM users WHERE email_index = $1")
                    .bind(index.as_bytes().as_slice())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(on(USER))?;
            if taken.is_some() {
                return Ok(Admitted::EmailTaken);
            }
        }
        let totp = user.totp.as_ref();
        sqlx::query(
            "INSERT INTO users (user_id, username, email_sealed, email_index, \
             display_name_sealed, password_hash, roles, tenants, attributes, disabled, \
             security_version, totp_sealed, totp_enabled, totp_last_step, created_at, \
             updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(user.id.as_str())
        .bind(user.username.as_str())
        .bind(user.email_sealed.clone())
        .bind(user.email_index.map(|i| i.as_bytes().to_vec()))
        .bind(user.display_name_sealed.clone())
        .bind(user.password_hash.clone())
        .bind(json(&user.roles)?)
        .bind(json(&user.tenants)?)
        .bind(json(&user.attributes)?)
        .bind(i64::from(user.disabled))
        .bind(user.security_version)
        .bind(totp.map(|t| t.sealed_secret.clone()))
        .bind(i64::from(totp.is_some_and(|t| t.enabled)))
        .bind(totp.and_then(|t| t.last_used_step))
        .bind(rows::unix(user.created_at))
        .bind(rows::unix(user.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(on(USER))?;
        tx.commit().await.map_err(on(USER))?;
        Ok(Admitted::Created)
    }

    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(select_users!("WHERE user_id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(on(USER))?;
        row.map(|r| user_record(&r)).transpose()
    }

    async fn user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(select_users!("WHERE username = $1"))
            .bind(username.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(on(USER))?;
        row.map(|r| user_record(&r)).transpose()
    }

    async fn user_by_email_index(
        &self,
        index: &BlindIndex,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(select_users!("WHERE email_index = $1"))
            .bind(index.as_bytes().as_slice())
            .fetch_optional(self.pool())
            .await
            .map_err(on(USER))?;
        row.map(|r| user_record(&r)).transpose()
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let found = sqlx::query(select_users!("ORDER BY username"))
            .fetch_all(self.pool())
            .await
            .map_err(on(USER))?;
        found.iter().map(user_record).collect()
    }

    async fn accounts_initialized(&self) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT initialized_at FROM account_bootstrap WHERE id = 1")
                .fetch_optional(self.pool())
                .await
                .map_err(on(BOOTSTRAP))?;
        Ok(at.flatten().is_some())
    }

    async fn change_profile(
        &self,
        id: &UserId,
        change: &ProfileChange,
    ) -> Result<Changed, StoreError> {
        let mut tx = self.begin_write(USER).await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET updated_at = $2 WHERE user_id = $1 RETURNING security_version",
        )
        .bind(id.as_str())
        .bind(rows::unix(change.at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(on(USER))?;
        let Some(security_version) = version else {
            return Ok(Changed::NoSuchUser);
        };
        match &change.email {
            FieldChange::Keep => {}
            FieldChange::Set((sealed, index)) => {
                let other: Option<String> = sqlx::query_scalar(
                    "SELECT user_id FROM users WHERE email_index = $1 AND user_id <> $2",
                )
                .bind(index.as_bytes().as_slice())
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(on(USER))?;
                if other.is_some() {
                    return Ok(Changed::EmailTaken);
                }
                sqlx::query(
                    "UPDATE users SET email_sealed = $2, email_index = $3 WHERE user_id = $1",
                )
                .bind(id.as_str())
                .bind(sealed.as_slice())
                .bind(index.as_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map_err(on(USER))?;
            }
            FieldChange::Clear => {
                sqlx::query(
                    "UPDATE users SET email_sealed = NULL, email_index = NULL \
                     WHERE user_id = $1",
                )
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(on(USER))?;
            }
        }
        let display_name = match &change.display_name {
            FieldChange::Keep => None,
            FieldChange::Set(sealed) => Some(Some(sealed.clone())),
            FieldChange::Clear => Some(None),
        };
        if let Some(value) = display_name {
            sqlx::query("UPDATE users SET display_name_sealed = $2 WHERE user_id = $1")
                .bind(id.as_str())
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(on(USER))?;
        }
        tx.commit().await.map_err(on(USER))?;
        Ok(Changed::Applied { security_version })
    }

    async fn change_security(
        &self,
        id: &UserId,
        change: &SecurityChange,
        at: OffsetDateTime,
    ) -> Result<Changed, StoreError> {
        let now = rows::unix(at);
        let mut tx = self.begin_write(USER).await?;
        let version: Option<i64> = match change {
            SecurityChange::Roles(roles) => {
                bump_with(&mut tx, bump_user!("roles = $3", ""), id, now, json(roles)?).await?
            }
            SecurityChange::Tenants(tenants) => {
                bump_with(
                    &mut tx,
                    bump_user!("tenants = $3", ""),
                    id,
                    now,
                    json(tenants)?,
                )
                .await?
            }
            SecurityChange::Attributes(attributes) => {
                let value = json(attributes)?;
                bump_with(&mut tx, bump_user!("attributes = $3", ""), id, now, value).await?
            }
            SecurityChange::Disabled(disabled) => {
                sqlx::query_scalar(bump_user!("disabled = $3", ""))
                    .bind(id.as_str())
                    .bind(now)
                    .bind(i64::from(*disabled))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(on(USER))?
            }
            SecurityChange::Password(hash) => {
                sqlx::query_scalar(bump_user!("password_hash = $3", ""))
                    .bind(id.as_str())
                    .bind(now)
                    .bind(hash.clone())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(on(USER))?
            }
            SecurityChange::TotpEnabled {
                step,
                recovery_codes,
            } => {
                let version: Option<i64> = sqlx::query_scalar(bump_user!(
                    "totp_enabled = 1, totp_last_step = $3",
                    "AND totp_sealed IS NOT NULL AND totp_enabled = 0"
                ))
                .bind(id.as_str())
                .bind(now)
                .bind(*step)
                .fetch_optional(&mut *tx)
                .await
                .map_err(on(USER))?;
                if version.is_none() {
                    return Ok(if exists(&mut tx, id).await? {
                        Changed::WrongState
                    } else {
                        Changed::NoSuchUser
                    });
                }
                write_recovery_codes(&mut tx, id, recovery_codes, now).await?;
                version
            }
            SecurityChange::TotpRemoved => {
                let version: Option<i64> = sqlx::query_scalar(bump_user!(
                    "totp_sealed = NULL, totp_enabled = 0, totp_last_step = NULL",
                    ""
                ))
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(on(USER))?;
                if version.is_some() {
                    write_recovery_codes(&mut tx, id, &[], now).await?;
                }
                version
            }
        };
        let Some(security_version) = version else {
            return Ok(Changed::NoSuchUser);
        };
        tx.commit().await.map_err(on(USER))?;
        Ok(Changed::Applied { security_version })
    }

    async fn rehash_password(
        &self,
        id: &UserId,
        old: &str,
        new: &str,
        at: OffsetDateTime,
    ) -> Result<Spent, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET password_hash = $3, updated_at = $4 \
             WHERE user_id = $1 AND password_hash = $2",
        )
        .bind(id.as_str())
        .bind(old)
        .bind(new)
        .bind(rows::unix(at))
        .execute(self.pool())
        .await
        .map_err(on(USER))?;
        Ok(spent(updated.rows_affected()))
    }

    async fn begin_totp(
        &self,
        id: &UserId,
        sealed_secret: &[u8],
        at: OffsetDateTime,
    ) -> Result<Changed, StoreError> {
        let mut tx = self.begin_write(USER).await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET totp_sealed = $2, totp_last_step = NULL, updated_at = $3 \
             WHERE user_id = $1 AND totp_enabled = 0 RETURNING security_version",
        )
        .bind(id.as_str())
        .bind(sealed_secret)
        .bind(rows::unix(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(on(USER))?;
        let changed = match version {
            Some(security_version) => Changed::Applied { security_version },
            None if exists(&mut tx, id).await? => Changed::WrongState,
            None => Changed::NoSuchUser,
        };
        tx.commit().await.map_err(on(USER))?;
        Ok(changed)
    }

    async fn use_totp_step(&self, id: &UserId, step: i64) -> Result<Spent, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE user_id = $1 AND totp_enabled = 1 \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(id.as_str())
        .bind(step)
        .execute(self.pool())
        .await
        .map_err(on(USER))?;
        Ok(spent(updated.rows_affected()))
    }

    async fn replace_recovery_codes(
        &self,
        id: &UserId,
        hashes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(RECOVERY).await?;
        write_recovery_codes(&mut tx, id, hashes, rows::unix(at)).await?;
        tx.commit().await.map_err(on(RECOVERY))
    }

    async fn use_recovery_code(
        &self,
        id: &UserId,
        hash: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Spent, StoreError> {
        let updated = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(id.as_str())
        .bind(hash.as_slice())
        .bind(rows::unix(at))
        .execute(self.pool())
        .await
        .map_err(on(RECOVERY))?;
        Ok(spent(updated.rows_affected()))
    }

    async fn recovery_codes(&self, id: &UserId) -> Result<Vec<RecoveryCodeRecord>, StoreError> {
        let found: Vec<(Vec<u8>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT code_hash, created_at, used_at FROM recovery_codes WHERE user_id = $1 \
             ORDER BY created_at, code_hash",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(on(RECOVERY))?;
        found
            .into_iter()
            .map(|(hash, created_at, used_at)| {
                Ok(RecoveryCodeRecord {
                    code_hash: hash_from(hash, RECOVERY)?,
                    created_at: rows::time(created_at, RECOVERY)?,
                    used_at: rows::opt_time(used_at, RECOVERY)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl LockoutStore for Store {
    async fn failure_counter(
        &self,
        subject: &LockoutSubject,
    ) -> Result<Option<FailureCounter>, StoreError> {
        let (scope, key) = subject.key();
        let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT failures, window_started_at, locked_until FROM login_failures \
             WHERE scope = $1 AND subject = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(self.pool())
        .await
        .map_err(on(FAILURES))?;
        row.map(counter).transpose()
    }

    async fn record_failure(
        &self,
        subject: &LockoutSubject,
        policy: &LockoutPolicy,
        at: OffsetDateTime,
    ) -> Result<FailureTally, StoreError> {
        let (scope, key) = subject.key();
        let mut tx = self.begin_write(FAILURES).await?;
        // A no-op upsert: creates the row (with 0 failures) or takes its row lock, so
        // concurrent failures for one subject are counted one after the other.
        let (failures, window, locked): (i64, i64, Option<i64>) = sqlx::query_as(
            "INSERT INTO login_failures (scope, subject, failures, window_started_at, \
             locked_until) VALUES ($1, $2, 0, $3, NULL) \
             ON CONFLICT (scope, subject) DO UPDATE SET failures = login_failures.failures \
             RETURNING failures, window_started_at, locked_until",
        )
        .bind(scope)
        .bind(key.as_str())
        .bind(rows::unix(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(on(FAILURES))?;
        let previous = if failures == 0 {
            None
        } else {
            Some(counter((failures, window, locked))?)
        };
        let next = policy.after_failure(previous, at);
        sqlx::query(
            "UPDATE login_failures SET failures = $3, window_started_at = $4, \
             locked_until = $5 WHERE scope = $1 AND subject = $2",
        )
        .bind(scope)
        .bind(key.as_str())
        .bind(i64::from(next.failures))
        .bind(rows::unix(next.window_started_at))
        .bind(next.locked_until.map(rows::unix))
        .execute(&mut *tx)
        .await
        .map_err(on(FAILURES))?;
        tx.commit().await.map_err(on(FAILURES))?;
        let newly_locked =
            next.locked_at(at).is_some() && previous.and_then(|p| p.locked_at(at)).is_none();
        Ok(FailureTally {
            counter: next,
            newly_locked,
        })
    }

    async fn clear_failures(&self, subject: &LockoutSubject) -> Result<Removal, StoreError> {
        let (scope, key) = subject.key();
        let deleted = sqlx::query("DELETE FROM login_failures WHERE scope = $1 AND subject = $2")
            .bind(scope)
            .bind(key)
            .execute(self.pool())
            .await
            .map_err(on(FAILURES))?;
        Ok(if deleted.rows_affected() == 0 {
            Removal::Absent
        } else {
            Removal::Removed
        })
    }

    async fn purge_failures(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = rows::unix(before);
        let deleted = sqlx::query(
            "DELETE FROM login_failures WHERE window_started_at < $1 \
             AND (locked_until IS NULL OR locked_until < $1)",
        )
        .bind(before)
        .execute(self.pool())
        .await
        .map_err(on(FAILURES))?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl EnrollmentStore for Store {
    async fn insert_invite(&self, invite: &InviteRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invites (invite_id, code_hash, roles, tenant, created_by, \
             created_at, expires_at, used_at, used_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(invite.id.as_str())
        .bind(invite.code_hash.as_slice())
        .bind(json(&invite.roles)?)
        .bind(invite.tenant.clone())
        .bind(invite.created_by.as_str())
        .bind(rows::unix(invite.created_at))
        .bind(rows::unix(invite.expires_at))
        .bind(invite.used.as_ref().map(|(at, _)| rows::unix(*at)))
        .bind(invite.used.as_ref().map(|(_, by)| by.as_str().to_owned()))
        .execute(self.pool())
        .await
        .map_err(on(INVITE))?;
        Ok(())
    }

    async fn invite_by_hash(&self, hash: &TokenHash) -> Result<Option<InviteRecord>, StoreError> {
        let row: Option<InviteRow> = sqlx::query_as(
            "SELECT invite_id, code_hash, roles, tenant, created_by, created_at, expires_at, \
             used_at, used_by FROM invites WHERE code_hash = $1",
        )
        .bind(hash.as_slice())
        .fetch_optional(self.pool())
        .await
        .map_err(on(INVITE))?;
        row.map(invite_record).transpose()
    }

    async fn invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        let found: Vec<InviteRow> = sqlx::query_as(
            "SELECT invite_id, code_hash, roles, tenant, created_by, created_at, expires_at, \
             used_at, used_by FROM invites ORDER BY created_at DESC, invite_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(on(INVITE))?;
        found.into_iter().map(invite_record).collect()
    }

    async fn replace_setup_token(
        &self,
        hash: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<Spent, StoreError> {
        let updated = sqlx::query(
            "UPDATE account_bootstrap SET setup_token_hash = $1, setup_token_expires_at = $2 \
             WHERE id = 1 AND initialized_at IS NULL",
        )
        .bind(hash.as_slice())
        .bind(rows::unix(expires_at))
        .execute(self.pool())
        .await
        .map_err(on(BOOTSTRAP))?;
        Ok(spent(updated.rows_affected()))
    }
}

#[async_trait]
impl PendingLoginStore for Store {
    async fn insert_pending_login(&self, login: &PendingLoginRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pending_logins (token_hash, user_id, security_version, client_ip, \
             created_at, expires_at, failures) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(login.token_hash.as_slice())
        .bind(login.user_id.as_str())
        .bind(login.security_version)
        .bind(login.client_ip.to_string())
        .bind(rows::unix(login.created_at))
        .bind(rows::unix(login.expires_at))
        .bind(i64::from(login.failures))
        .execute(self.pool())
        .await
        .map_err(on(PENDING))?;
        Ok(())
    }

    async fn pending_login(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingLoginRecord>, StoreError> {
        let row: Option<(Vec<u8>, String, i64, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT token_hash, user_id, security_version, client_ip, created_at, \
             expires_at, failures FROM pending_logins WHERE token_hash = $1 \
             AND expires_at > $2",
        )
        .bind(hash.as_slice())
        .bind(rows::unix(now))
        .fetch_optional(self.pool())
        .await
        .map_err(on(PENDING))?;
        row.map(
            |(hash, user, version, ip, created_at, expires_at, failures)| {
                Ok(PendingLoginRecord {
                    token_hash: hash_from(hash, PENDING)?,
                    user_id: user_id(&user, PENDING)?,
                    security_version: version,
                    client_ip: ip
                        .parse::<IpAddr>()
                        .map_err(|_| StoreError::corrupt(PENDING, "invalid client address"))?,
                    created_at: rows::time(created_at, PENDING)?,
                    expires_at: rows::time(expires_at, PENDING)?,
                    failures: u32::try_from(failures)
                        .map_err(|_| StoreError::corrupt(PENDING, "negative failures"))?,
                })
            },
        )
        .transpose()
    }

    async fn pending_login_failed(
        &self,
        hash: &TokenHash,
        max_failures: u32,
    ) -> Result<u32, StoreError> {
        let mut tx = self.begin_write(PENDING).await?;
        let failures: Option<i64> = sqlx::query_scalar(
            "UPDATE pending_logins SET failures = failures + 1 WHERE token_hash = $1 \
             RETURNING failures",
        )
        .bind(hash.as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(on(PENDING))?;
        let failures = failures.unwrap_or(i64::from(max_failures));
        if failures >= i64::from(max_failures) {
            sqlx::query("DELETE FROM pending_logins WHERE token_hash = $1")
                .bind(hash.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(on(PENDING))?;
        }
        tx.commit().await.map_err(on(PENDING))?;
        Ok(u32::try_from(failures).unwrap_or(u32::MAX))
    }

    async fn consume_pending_login(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Spent, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM pending_logins WHERE token_hash = $1 AND expires_at > $2")
                .bind(hash.as_slice())
                .bind(rows::unix(now))
                .execute(self.pool())
                .await
                .map_err(on(PENDING))?;
        Ok(spent(deleted.rows_affected()))
    }

    async fn purge_pending_logins(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM pending_logins WHERE expires_at <= $1")
            .bind(rows::unix(before))
            .execute(self.pool())
            .await
            .map_err(on(PENDING))?;
        Ok(deleted.rows_affected())
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn initialized(tx: &mut Tx) -> Result<bool, StoreError> {
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT initialized_at FROM account_bootstrap WHERE id = 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(on(BOOTSTRAP))?;
    Ok(at.flatten().is_some())
}

async fn exists(tx: &mut Tx, id: &UserId) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE user_id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(on(USER))?;
    Ok(found.is_some())
}

/// Runs a [`bump_user!`] statement whose `$3` is a text value.
async fn bump_with(
    tx: &mut Tx,
    sql: &'static str,
    id: &UserId,
    now: i64,
    value: String,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(sql)
        .bind(id.as_str())
        .bind(now)
        .bind(value)
        .fetch_optional(&mut **tx)
        .await
        .map_err(on(USER))
}

async fn write_recovery_codes(
    tx: &mut Tx,
    id: &UserId,
    hashes: &[TokenHash],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(on(RECOVERY))?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at, used_at) \
             VALUES ($1, $2, $3, NULL)",
        )
        .bind(id.as_str())
        .bind(hash.as_slice())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(on(RECOVERY))?;
    }
    Ok(())
}

fn spent(rows_affected: u64) -> Spent {
    if rows_affected == 1 {
        Spent::Now
    } else {
        Spent::Refused
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|_| StoreError::corrupt(USER, "cannot encode JSON"))
}

fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::corrupt(what, "invalid JSON column"))
}

fn user_id(text: &str, what: &'static str) -> Result<UserId, StoreError> {
    UserId::parse(text).map_err(|_| StoreError::corrupt(what, "invalid user id"))
}

fn hash_from(bytes: Vec<u8>, what: &'static str) -> Result<TokenHash, StoreError> {
    TokenHash::try_from(bytes.as_slice()).map_err(|_| StoreError::corrupt(what, "bad hash length"))
}

fn flag(value: i64, what: &'static str) -> Result<bool, StoreError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(StoreError::corrupt(what, "flag is not 0 or 1")),
    }
}

fn counter(
    (failures, window, locked): (i64, i64, Option<i64>),
) -> Result<FailureCounter, StoreError> {
    Ok(FailureCounter {
        failures: u32::try_from(failures)
            .map_err(|_| StoreError::corrupt(FAILURES, "failure count out of range"))?,
        window_started_at: rows::time(window, FAILURES)?,
        locked_until: rows::opt_time(locked, FAILURES)?,
    })
}

fn user_record(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let get = |e: sqlx::Error| StoreError::corrupt(USER, format!("unreadable column: {e}"));
    let id: String = row.try_get("user_id").map_err(get)?;
    let username: String = row.try_get("username").map_err(get)?;
    let email_index: Option<Vec<u8>> = row.try_get("email_index").map_err(get)?;
    let roles: String = row.try_get("roles").map_err(get)?;
    let tenants: String = row.try_get("tenants").map_err(get)?;
    let attributes: String = row.try_get("attributes").map_err(get)?;
    let totp_sealed: Option<Vec<u8>> = row.try_get("totp_sealed").map_err(get)?;
    let totp_enabled: i64 = row.try_get("totp_enabled").map_err(get)?;
    let disabled: i64 = row.try_get("disabled").map_err(get)?;
    let created_at: i64 = row.try_get("created_at").map_err(get)?;
    let updated_at: i64 = row.try_get("updated_at").map_err(get)?;
    let email_index = email_index
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(BlindIndex::from_bytes)
                .map_err(|_| StoreError::corrupt(USER, "bad blind index length"))
        })
        .transpose()?;
    let totp = match totp_sealed {
        Some(sealed_secret) => Some(TotpRecord {
            sealed_secret,
            enabled: flag(totp_enabled, USER)?,
            last_used_step: row.try_get("totp_last_step").map_err(get)?,
        }),
        None => None,
    };
    let attributes: BTreeMap<String, String> = from_json(&attributes, USER)?;
    Ok(UserRecord {
        id: user_id(&id, USER)?,
        username: Username::parse(&username)
            .map_err(|_| StoreError::corrupt(USER, "invalid username"))?,
        email_sealed: row.try_get("email_sealed").map_err(get)?,
        email_index,
        display_name_sealed: row.try_get("display_name_sealed").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        roles: from_json(&roles, USER)?,
        tenants: from_json(&tenants, USER)?,
        attributes,
        disabled: flag(disabled, USER)?,
        security_version: row.try_get("security_version").map_err(get)?,
        totp,
        created_at: rows::time(created_at, USER)?,
        updated_at: rows::time(updated_at, USER)?,
    })
}

type InviteRow = (
    String,
    Vec<u8>,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn invite_record(
    (id, hash, roles, tenant, created_by, created_at, expires_at, used_at, used_by): InviteRow,
) -> Result<InviteRecord, StoreError> {
    let used = match (used_at, used_by) {
        (Some(at), Some(by)) => Some((rows::time(at, INVITE)?, user_id(&by, INVITE)?)),
        (None, None) => None,
        _ => return Err(StoreError::corrupt(INVITE, "used_at and used_by disagree")),
    };
    Ok(InviteRecord {
        id,
        code_hash: hash_from(hash, INVITE)?,
        roles: from_json(&roles, INVITE)?,
        tenant,
        created_by: user_id(&created_by, INVITE)?,
        created_at: rows::time(created_at, INVITE)?,
        expires_at: rows::time(expires_at, INVITE)?,
        used,
    })
}
