//! Unit-test fixtures: an [`Accounts`] on a fresh SQLite database, a fake clock, an
//! in-memory audit log and a revoker that records what it was told.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rampart_config::Registration;
use rampart_core::FakeClock;
use rampart_core::audit::{AuditOptions, Auditor, CheckpointSigner, MemoryAuditStore};
use rampart_core::identity::account::LockoutPolicy;
use rampart_core::identity::session::{Change, Revocation, RevokeError, SessionRevoker};
use rampart_core::identity::{RoleDefinition, Roles, UserId};
use rampart_core::keys::DataKeys;
use rampart_crypto::MasterKey;
use rampart_crypto::password::{Argon2Params, PasswordConfig, PasswordHasher};
use rampart_store::Backend;
use rampart_store::testing::TestDb;

use super::{Accounts, AccountsDeps, AccountsSettings, ClientContext};

/// Data keys from a throwaway database.
pub(crate) async fn data_keys() -> Arc<DataKeys> {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let clock = FakeClock::at_unix(1_700_000_000);
    Arc::new(
        DataKeys::initialize(db.store(), &MasterKey::generate().unwrap(), &clock)
            .await
            .unwrap(),
    )
}

/// Records every security change it is told about.
#[derive(Default)]
pub(crate) struct RecordingRevoker {
    pub(crate) changes: Mutex<Vec<(UserId, Change)>>,
}

#[async_trait]
impl SessionRevoker for RecordingRevoker {
    async fn on_security_change(
        &self,
        user: &UserId,
        change: &Change,
    ) -> Result<Revocation, RevokeError> {
        self.changes
            .lock()
            .unwrap()
            .push((user.clone(), change.clone()));
        Ok(Revocation::default())
    }
}

/// Everything a service test needs.
pub(crate) struct Harness {
    pub(crate) accounts: Accounts,
    pub(crate) clock: FakeClock,
    pub(crate) revoker: Arc<RecordingRevoker>,
    pub(crate) audit: Arc<MemoryAuditStore>,
    pub(crate) auditor: Arc<Auditor>,
    _db: TestDb,
}

/// The settings tests use: 3 failures lock for 10 minutes.
pub(crate) fn settings(registration: Registration) -> AccountsSettings {
    AccountsSettings {
        registration,
        password_min_chars: 12,
        max_concurrent_hashes: NonZeroUsize::new(2).unwrap(),
        lockout: LockoutPolicy {
            max_failures: 3,
            window: Duration::from_secs(900),
            duration: Duration::from_secs(600),
        },
        invite_ttl: Duration::from_secs(3600),
        setup_token_ttl: Duration::from_secs(3600),
        totp_issuer: "Rampart".to_owned(),
        totp_skew: 1,
        admin_role: Some("admin".to_owned()),
        default_role: Some("user".to_owned()),
    }
}

impl Harness {
    pub(crate) async fn new(registration: Registration) -> Self {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let clock = FakeClock::at_unix(1_700_000_000);
        let keys = Arc::new(
            DataKeys::initialize(db.store(), &MasterKey::generate().unwrap(), &clock)
                .await
                .unwrap(),
        );
        let audit = Arc::new(MemoryAuditStore::new());
        let auditor = Arc::new(
            Auditor::start(
                audit.clone(),
                AuditOptions::default(),
                CheckpointSigner::from_data_keys(&keys),
                Arc::new(clock.clone()),
            )
            .await
            .unwrap(),
        );
        let mut roles = BTreeMap::new();
        roles.insert(
            "admin".to_owned(),
            RoleDefinition {
                permissions: vec!["*".to_owned()],
                require_mfa: true,
            },
        );
        roles.insert("user".to_owned(), RoleDefinition::default());
        let revoker = Arc::new(RecordingRevoker::default());
        let hasher = PasswordHasher::new(PasswordConfig {
            params: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            ..PasswordConfig::default()
        })
        .unwrap();
        let accounts = Accounts::new(
            AccountsDeps {
                store: Arc::new(db.store().clone()),
                keys,
                clock: Arc::new(clock.clone()),
                audit: auditor.clone(),
                roles: Arc::new(Roles::new(roles, false)),
                revoker: revoker.clone(),
            },
            hasher,
            settings(registration),
        );
        Self {
            accounts,
            clock,
            revoker,
            audit,
            auditor,
            _db: db,
        }
    }

    /// The kinds of every audit record so far, in order.
    pub(crate) async fn audit_kinds(&self) -> Vec<String> {
        self.auditor.flush().await.unwrap();
        self.audit
            .with_tables(|t| t.records.values().map(|r| r.kind.clone()).collect())
            .unwrap()
    }
}

/// A client at `ip`.
pub(crate) fn client(ip: &str) -> ClientContext {
    ClientContext {
        ip: ip.parse::<IpAddr>().unwrap(),
        request_id: None,
    }
}
