//! The magic-link service over a real store (SQLite and PostgreSQL), the dev outbox,
//! an in-memory audit log and a fake accounts service.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_config::{EmailConfig, EmailTransport, Mode};
use rampart_core::FakeClock;
use rampart_core::audit::{AuditOptions, CheckpointSigner, MemoryAuditStore};
use rampart_crypto::SecretArray;
use rampart_crypto::signing::Signer;
use rampart_store::Backend;
use rampart_store::testing::TestDb;

use super::*;
use crate::verified::LoginMethod;

const TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
struct FakeAccounts {
    /// address → (user, enabled)
    users: Mutex<BTreeMap<String, (UserId, bool)>>,
}

impl FakeAccounts {
    fn set_enabled(&self, email: &str, enabled: bool) {
        let mut users = self.users.lock().unwrap();
        if let Some(entry) = users.get_mut(email) {
            entry.1 = enabled;
        }
    }
}

#[async_trait]
impl MagicLinkAccounts for FakeAccounts {
    async fn recipient(&self, email: &str) -> Result<Option<Recipient>, BoxError> {
        let key = email.trim().to_ascii_lowercase();
        let users = self.users.lock().unwrap();
        Ok(users.get(&key).map(|(user, enabled)| Recipient {
            user: user.clone(),
            address: SecretString::from(key.as_str()),
            eligibility: if *enabled {
                Eligibility::Allowed
            } else {
                Eligibility::Disabled
            },
        }))
    }

    async fn identity(
        &self,
        user: &UserId,
        _context: &MagicContext,
    ) -> Result<Option<VerifiedIdentity>, BoxError> {
        let users = self.users.lock().unwrap();
        Ok(users
            .values()
            .find(|(id, enabled)| id == user && *enabled)
            .map(|(id, _)| {
                VerifiedIdentity::new(
                    id.clone(),
                    "alice".to_owned(),
                    LoginMethod::MagicLink,
                    false,
                    0,
                )
            }))
    }
}

struct Setup {
    links: MagicLinks,
    accounts: Arc<FakeAccounts>,
    clock: FakeClock,
    audit: Arc<MemoryAuditStore>,
    outbox: PathBuf,
    alice: UserId,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(backend: Backend, settings: impl FnOnce(&mut MagicLinkSettings)) -> Setup {
    let db = TestDb::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let clock = FakeClock::at_unix(1_700_000_000);
    let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let audit_store = Arc::new(MemoryAuditStore::new());
    let audit = Auditor::start(
        audit_store.clone(),
        AuditOptions {
            tick: Duration::from_millis(5),
            ..AuditOptions::default()
        },
        CheckpointSigner::new(Signer::from_seed(&SecretArray::new([7; 32]))),
        Arc::clone(&shared_clock),
    )
    .await
    .unwrap();
    let mailer = Mailer::from_config(
        &EmailConfig {
            transport: EmailTransport::Outbox,
            from: Some("Rampart <rampart@example.com>".to_owned()),
            outbox_path: outbox.clone(),
            smtp: None,
        },
        Mode::Dev,
        Arc::clone(&shared_clock),
    )
    .unwrap();
    let alice = insert_user(&db).await;
    let accounts = Arc::new(FakeAccounts::default());
    accounts
        .users
        .lock()
        .unwrap()
        .insert("alice@example.org".to_owned(), (alice.clone(), true));
    let mut values = MagicLinkSettings {
        enabled: true,
        ttl: TTL,
        public_url: Some(Url::parse("https://auth.example.com").unwrap()),
        cookie: BindingCookie {
            name: "__Host-rampart_magic".to_owned(),
            secure: true,
            domain: None,
            max_age: TTL,
        },
    };
    settings(&mut values);
    let links = MagicLinks::start(
        MagicLinkDeps {
            store: Arc::new(db.store().clone()),
            accounts: accounts.clone(),
            mailer: Arc::new(mailer),
            audit: Arc::new(audit),
            clock: shared_clock,
        },
        values,
    );
    Setup {
        links,
        accounts,
        clock,
        audit: audit_store,
        outbox,
        alice,
        _db: db,
        _dir: dir,
    }
}

/// A users row for the links' foreign key.
async fn insert_user(db: &TestDb) -> UserId {
    let id = UserId::generate();
    let pool = db.raw_pool().await.unwrap();
    sqlx_insert_user(&pool, &id).await;
    id
}

async fn sqlx_insert_user(pool: &sqlx::AnyPool, id: &UserId) {
    sqlx::query(
        "INSERT INTO users (user_id, username, roles, tenants, attributes, disabled, \
         security_version, totp_enabled, created_at, updated_at) \
         VALUES ($1, $2, '[]', '[]', '{}', 0, 0, 0, 0, 0)",
    )
    .bind(id.as_str())
    .bind(format!("u{}", &id.as_str()[20..]))
    .execute(pool)
    .await
    .unwrap();
}

/// The codes of the messages in the outbox, in order.
fn mailed_codes(outbox: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(outbox) else {
        return Vec::new();
    };
    let text = decode_quoted_printable(&text);
    let mut codes: Vec<String> = Vec::new();
    for (at, _) in text.match_indices("/auth/magic-link?code=") {
        let start = at + "/auth/magic-link?code=".len();
        let code: String = text[start..].chars().take(43).collect();
        // Each message has the link twice (text and HTML).
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// Undoes quoted-printable (RFC 2045 §6.7): soft line breaks and `=XX` escapes.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits (bounded) until the outbox holds `n` messages.
async fn wait_for_mail(outbox: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = mailed_codes(outbox);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} messages, have {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until the audit log holds `n` events of `kind`; returns their
/// outcomes and reasons.
async fn wait_for_audit(
    audit: &MemoryAuditStore,
    kind: EventKind,
    n: usize,
) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<_> = audit
            .with_tables(|t| {
                t.records
                    .values()
                    .filter(|r| r.kind == kind.as_str())
                    .map(|r| (r.outcome.clone(), r.reason.clone()))
                    .collect()
            })
            .unwrap();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} {kind} events, have {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn context() -> MagicContext {
    MagicContext {
        client_ip: Some("203.0.113.7".parse().unwrap()),
        request_id: Some("req-1".to_owned()),
    }
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(rampart_store::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(rampart_store::Backend::Postgres).await;
            }
        }
    )+};
}

on_both_backends!(
    link_signs_in_once,
    unknown_address_sends_nothing,
    wrong_browser_is_refused_and_the_right_one_still_works,
    expired_link_is_refused,
    disabled_account_gets_no_mail_and_cannot_consume,
    outstanding_links_are_capped,
    disabled_feature_sends_nothing_and_consumes_nothing,
    without_public_url_nothing_is_sent,
    signing_in_retires_the_other_links,
);

async fn link_signs_in_once(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    s.links.request("Alice@Example.org ", &binding, context());
    let codes = wait_for_mail(&s.outbox, 1).await;
    let mail = std::fs::read_to_string(&s.outbox).unwrap();
    assert!(mail.contains("To: alice@example.org"), "{mail}");
    assert!(
        mail.contains("https://auth.example.com/auth/magic-link?code="),
        "{mail}"
    );
    assert!(mail.contains("expires in 15 minutes"), "{mail}");

    let identity = s
        .links
        .consume(&codes[0], Some(binding.expose_secret()), &context())
        .await
        .unwrap();
    assert_eq!(identity.user_id(), &s.alice);
    assert_eq!(identity.method(), LoginMethod::MagicLink);
    assert!(!identity.mfa());

    let again = s
        .links
        .consume(&codes[0], Some(binding.expose_secret()), &context())
        .await;
    assert!(matches!(again, Err(MagicLinkError::InvalidLink)));

    let failures = wait_for_audit(&s.audit, EventKind::AuthLoginFailed, 1).await;
    assert_eq!(failures[0].0, "failure");
    let requests = wait_for_audit(&s.audit, EventKind::AuthMagicLinkRequested, 1).await;
    assert_eq!(requests[0].0, "success");
    // No audit record carries the code, the binding or the address.
    let leaked = s
        .audit
        .with_tables(|t| {
            t.records.values().any(|r| {
                let row = format!("{r:?}");
                row.contains(&codes[0])
                    || row.contains(binding.expose_secret())
                    || row.contains("alice@")
            })
        })
        .unwrap();
    assert!(!leaked);
}

async fn unknown_address_sends_nothing(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    s.links.request("mallory@example.org", &binding, context());
    // The worker takes jobs in order: once the control message for a known address
    // is out, the unknown address's job has finished.
    s.links.request("alice@example.org", &binding, context());
    let codes = wait_for_mail(&s.outbox, 1).await;
    assert_eq!(codes.len(), 1);
    let requests = wait_for_audit(&s.audit, EventKind::AuthMagicLinkRequested, 2).await;
    assert!(requests.contains(&(
        "failure".to_owned(),
        Some("no account has this address".to_owned())
    )));
}

async fn wrong_browser_is_refused_and_the_right_one_still_works(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    s.links.request("alice@example.org", &binding, context());
    let codes = wait_for_mail(&s.outbox, 1).await;

    let other = Binding::generate().unwrap();
    for presented in [Some(other.expose_secret()), None, Some("garbage")] {
        let refused = s.links.consume(&codes[0], presented, &context()).await;
        assert!(matches!(refused, Err(MagicLinkError::InvalidLink)));
    }
    let refused = s
        .links
        .consume("not-a-code", Some(binding.expose_secret()), &context())
        .await;
    assert!(matches!(refused, Err(MagicLinkError::InvalidLink)));

    s.links
        .consume(&codes[0], Some(binding.expose_secret()), &context())
        .await
        .unwrap();
}

async fn expired_link_is_refused(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    s.links.request("alice@example.org", &binding, context());
    let codes = wait_for_mail(&s.outbox, 1).await;
    s.clock.advance(TTL);
    let refused = s
        .links
        .consume(&codes[0], Some(binding.expose_secret()), &context())
        .await;
    assert!(matches!(refused, Err(MagicLinkError::InvalidLink)));
}

async fn disabled_account_gets_no_mail_and_cannot_consume(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    s.links.request("alice@example.org", &binding, context());
    let codes = wait_for_mail(&s.outbox, 1).await;

    s.accounts.set_enabled("alice@example.org", false);
    let refused = s
        .links
        .consume(&codes[0], Some(binding.expose_secret()), &context())
        .await;
    assert!(matches!(refused, Err(MagicLinkError::InvalidLink)));

    s.links.request("alice@example.org", &binding, context());
    let requests = wait_for_audit(&s.audit, EventKind::AuthMagicLinkRequested, 2).await;
    assert!(requests.contains(&("denied".to_owned(), Some("account disabled".to_owned()))));
    assert_eq!(mailed_codes(&s.outbox).len(), 1);
}

async fn outstanding_links_are_capped(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    for _ in 0..MAX_OUTSTANDING + 2 {
        s.links.request("alice@example.org", &binding, context());
    }
    let total = usize::try_from(MAX_OUTSTANDING + 2).unwrap();
    let requests = wait_for_audit(&s.audit, EventKind::AuthMagicLinkRequested, total).await;
    let denied = requests.iter().filter(|(o, _)| o == "denied").count();
    assert_eq!(denied, 2, "{requests:?}");
    let sent = wait_for_mail(&s.outbox, usize::try_from(MAX_OUTSTANDING).unwrap()).await;
    assert_eq!(sent.len(), usize::try_from(MAX_OUTSTANDING).unwrap());

    // Once the window has passed, links can be asked for again.
    s.clock.advance(TTL + Duration::from_secs(1));
    s.links.request("alice@example.org", &binding, context());
    wait_for_mail(&s.outbox, sent.len() + 1).await;
}

async fn disabled_feature_sends_nothing_and_consumes_nothing(backend: Backend) {
    let s = setup(backend, |settings| settings.enabled = false).await;
    assert!(!s.links.can_send());
    let binding = Binding::generate().unwrap();
    s.links.request("alice@example.org", &binding, context());
    let code = MagicCode::generate().unwrap();
    let refused = s
        .links
        .consume(
            code.expose_secret(),
            Some(binding.expose_secret()),
            &context(),
        )
        .await;
    assert!(matches!(refused, Err(MagicLinkError::InvalidLink)));
    let failures = wait_for_audit(&s.audit, EventKind::AuthLoginFailed, 1).await;
    assert_eq!(failures[0].1.as_deref(), Some("magic links are disabled"));
    assert!(!s.outbox.exists());
}

async fn without_public_url_nothing_is_sent(backend: Backend) {
    let s = setup(backend, |settings| settings.public_url = None).await;
    assert!(!s.links.can_send());
    s.links.request(
        "alice@example.org",
        &Binding::generate().unwrap(),
        context(),
    );
    tokio::task::yield_now().await;
    assert!(!s.outbox.exists());
}

async fn signing_in_retires_the_other_links(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let binding = Binding::generate().unwrap();
    s.links.request("alice@example.org", &binding, context());
    s.links.request("alice@example.org", &binding, context());
    let codes = wait_for_mail(&s.outbox, 2).await;
    s.links
        .consume(&codes[1], Some(binding.expose_secret()), &context())
        .await
        .unwrap();
    let refused = s
        .links
        .consume(&codes[0], Some(binding.expose_secret()), &context())
        .await;
    assert!(matches!(refused, Err(MagicLinkError::InvalidLink)));
}

#[test]
fn audit_domains() {
    assert_eq!(
        domain_of(" Bob@Example.ORG ").as_deref(),
        Some("example.org")
    );
    assert_eq!(domain_of("nobody"), None);
    assert_eq!(domain_of("a@b c"), None);
    assert_eq!(domain_of("a@"), None);
}
