//! Lockout after repeated failures (F-LOCKOUT), per account and per client address.
//!
//! Failures of either factor count. When an account's (or an address's) failures
//! reach `auth.lockout.max_failures` within `auth.lockout.window`, it is locked for
//! `auth.lockout.duration`; while locked, a login is refused before any password is
//! checked — the right password included — with the same answer whether or not the
//! account exists, because login names that match no account are counted and locked
//! exactly like accounts (keyed by their blind index). A successful login clears the
//! account's counter, never the address's: one valid account must not reset an
//! attacker's budget for guessing others. Counters live in the database so every
//! replica sees the same lockouts; time comes from the [`Clock`].

use std::net::IpAddr;
use std::sync::Arc;

use rampart_core::Clock;
use rampart_core::audit::{AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::account::{LockoutPolicy, LockoutStore, LockoutSubject};
use time::OffsetDateTime;

use super::{AccountError, ClientContext};

/// Every how many recorded failures stale counters are purged.
const PURGE_EVERY: u64 = 256;

pub(crate) struct Lockout {
    store: Arc<dyn LockoutStore>,
    policy: LockoutPolicy,
    clock: Arc<dyn Clock>,
    audit: Arc<Auditor>,
    recorded: std::sync::atomic::AtomicU64,
}

impl Lockout {
    pub(crate) fn new(
        store: Arc<dyn LockoutStore>,
        policy: LockoutPolicy,
        clock: Arc<dyn Clock>,
        audit: Arc<Auditor>,
    ) -> Self {
        Self {
            store,
            policy,
            clock,
            audit,
            recorded: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The latest `locked_until` among the account and the client address, if
    /// either is locked now.
    pub(crate) async fn locked_until(
        &self,
        account: &LockoutSubject,
        ip: IpAddr,
    ) -> Result<Option<OffsetDateTime>, AccountError> {
        let now = self.clock.now();
        let mut until = None;
        for subject in [account.clone(), LockoutSubject::ClientIp(ip)] {
            if let Some(counter) = self.store.failure_counter(&subject).await? {
                until = until.max(counter.locked_at(now));
            }
        }
        Ok(until)
    }

    /// Counts a failure against the account and the client address, auditing
    /// `auth.lockout` for each that this failure locked. `actor` is what the client
    /// claimed to be.
    pub(crate) async fn record_failure(
        &self,
        account: &LockoutSubject,
        actor: &str,
        client: &ClientContext,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        for subject in [account.clone(), LockoutSubject::ClientIp(client.ip)] {
            let tally = self
                .store
                .record_failure(&subject, &self.policy, now)
                .await?;
            if tally.newly_locked {
                let (scope, target) = match &subject {
                    LockoutSubject::Account(id) => ("account", id.as_str().to_owned()),
                    LockoutSubject::UnknownAccount(_) => ("account", "unknown".to_owned()),
                    LockoutSubject::ClientIp(ip) => ("ip", ip.to_string()),
                };
                let until = tally.counter.locked_until.unwrap_or(now);
                let event = client
                    .event(EventKind::AuthLockout, Outcome::Denied)
                    .actor(actor)
                    .target(target)
                    .reason("too many failed logins")
                    .detail("scope", scope)
                    .detail("failures", tally.counter.failures.to_string())
                    .detail("locked_until", until.unix_timestamp().to_string());
                self.audit.record(event).await?;
            }
        }
        self.maybe_purge(now).await;
        Ok(())
    }

    /// Forgets the account's failures (successful login) — not the address's.
    pub(crate) async fn clear_account(&self, account: &LockoutSubject) -> Result<(), AccountError> {
        self.store.clear_failures(account).await?;
        Ok(())
    }

    /// Admin unlock: forgets the account's failures and lockout. Audited by the
    /// caller.
    pub(crate) async fn unlock(
        &self,
        account: &LockoutSubject,
    ) -> Result<rampart_core::store::Removal, AccountError> {
        Ok(self.store.clear_failures(account).await?)
    }

    async fn maybe_purge(&self, now: OffsetDateTime) {
        let n = self
            .recorded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % PURGE_EVERY == PURGE_EVERY - 1 {
            // Housekeeping only: a failure leaves stale rows, which cost nothing but
            // space and are retried next time.
            if let Err(error) = self
                .store
                .purge_failures(self.policy.stale_before(now))
                .await
            {
                tracing::warn!(%error, "could not purge stale login failure counters");
            }
        }
    }
}

impl ClientContext {
    /// An audit event with this client's address and request id.
    pub(crate) fn event(&self, kind: EventKind, outcome: Outcome) -> AuditEvent {
        let event = AuditEvent::new(kind, outcome).client_ip(self.ip);
        match &self.request_id {
            Some(id) => event.request_id(id.clone()),
            None => event,
        }
    }
}
