//! Sessions across replicas and the revoker's rules, over a real database.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rampart_config::{SameSite, SessionConfig};
use rampart_core::FakeClock;
use rampart_core::audit::{AuditOptions, Auditor, CheckpointSigner};
use rampart_core::identity::session::{Change, ChangeKind, SessionRevoker as _};
use rampart_core::keys::DataKeys;
use rampart_crypto::MasterKey;
use rampart_store::testing::{BACKENDS, TestDb};

use super::*;
use crate::tokens::api::{ApiTokens, NewApiToken};
use crate::tokens::{SigningKeys, Tokens};
use crate::verified::LoginMethod;

fn session_config() -> SessionConfig {
    SessionConfig {
        cookie_secure: true,
        same_site: SameSite::Lax,
        domain: None,
        idle_timeout: Duration::from_secs(1800),
        absolute_timeout: Duration::from_secs(12 * 3600),
        cookie_name_override: None,
    }
}

struct Replica {
    sessions: Arc<Sessions>,
    tokens: Arc<Tokens>,
    api_tokens: Arc<ApiTokens>,
}

struct Setup {
    db: TestDb,
    keys: Arc<DataKeys>,
    clock: FakeClock,
    audit: Arc<Auditor>,
}

async fn setup(backend: rampart_store::Backend) -> Setup {
    let db = TestDb::new(backend).await.unwrap();
    let clock = FakeClock::at_unix(1_700_000_000);
    let keys = Arc::new(
        DataKeys::initialize(db.store(), &MasterKey::generate().unwrap(), &clock)
            .await
            .unwrap(),
    );
    let audit = Arc::new(
        Auditor::start(
            Arc::new(db.store().clone()),
            AuditOptions::default(),
            CheckpointSigner::from_data_keys(&keys),
            Arc::new(clock.clone()),
        )
        .await
        .unwrap(),
    );
    Setup {
        db,
        keys,
        clock,
        audit,
    }
}

impl Setup {
    async fn replica(&self) -> Replica {
        self.replica_with(crate::fanout::Fanout::local()).await
    }

    /// A replica whose caches follow `fanout` (attached to its services).
    async fn replica_with(&self, fanout: Arc<crate::fanout::Fanout>) -> Replica {
        let store = Arc::new(self.db.store().clone());
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let sessions = Arc::new(
            Sessions::new(
                &session_config(),
                store.clone(),
                Arc::clone(&self.keys),
                Arc::clone(&clock),
                Arc::clone(&self.audit),
            )
            .with_fanout(Arc::clone(&fanout)),
        );
        let jwt = crate::tokens::tests::jwt_config();
        let signing = Arc::new(
            SigningKeys::open(
                &jwt,
                store.clone(),
                Arc::clone(&self.keys),
                Arc::clone(&clock),
            )
            .await
            .unwrap(),
        );
        let tokens = Arc::new(
            Tokens::new(
                &jwt,
                signing,
                store.clone(),
                Arc::clone(&self.keys),
                Arc::clone(&clock),
                Arc::clone(&self.audit),
            )
            .with_fanout(Arc::clone(&fanout)),
        );
        let api_tokens = Arc::new(
            ApiTokens::new(
                &rampart_config::ApiTokensConfig {
                    allow_admin: false,
                    default_ttl: Duration::from_secs(86_400),
                    max_ttl: Duration::from_secs(365 * 86_400),
                },
                store,
                clock,
                Arc::clone(&self.audit),
            )
            .with_fanout(Arc::clone(&fanout)),
        );
        fanout.attach(crate::fanout::Targets {
            sessions: Arc::downgrade(&sessions),
            tokens: Arc::downgrade(&tokens),
            api_tokens: Arc::downgrade(&api_tokens),
            accounts: std::sync::Weak::new(),
        });
        Replica {
            sessions,
            tokens,
            api_tokens,
        }
    }
}

fn client() -> ClientDetails<'static> {
    ClientDetails {
        ip: IpAddr::from([203, 0, 113, 9]),
        user_agent: Some("test"),
        request_id: None,
    }
}

fn identity(user: &UserId, version: i64) -> VerifiedIdentity {
    VerifiedIdentity::new(
        user.clone(),
        "alice".to_owned(),
        LoginMethod::Password,
        false,
        version,
    )
}

fn active(state: SessionState) -> SessionRecord {
    match state {
        SessionState::Active(record) => record,
        other => panic!("expected an active session, got {other:?}"),
    }
}

#[tokio::test]
async fn another_replicas_revocation_is_seen_within_the_cache_ttl() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let a = s.replica().await;
        let b = s.replica().await;
        let user = UserId::generate();
        let new = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        // Both replicas accept it (and cache it).
        active(a.sessions.validate(&new.id).await.unwrap());
        active(b.sessions.validate(&new.id).await.unwrap());
        // A revokes: gone on A at once, on B within the TTL.
        a.sessions
            .revoke(&user, &new.public_id, "alice", "test")
            .await
            .unwrap();
        assert_eq!(
            a.sessions.validate(&new.id).await.unwrap(),
            SessionState::Unknown
        );
        s.clock
            .advance(Duration::from_secs(SESSION_CACHE_TTL_SECS as u64 + 1));
        assert_eq!(
            b.sessions.validate(&new.id).await.unwrap(),
            SessionState::Unknown,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn the_revoker_rotates_the_acting_session_and_ends_the_rest() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let r = s.replica().await;
        let revoker = CredentialRevoker::new(
            Arc::clone(&r.sessions),
            Arc::clone(&r.tokens),
            Arc::clone(&r.api_tokens),
        );
        let user = UserId::generate();
        let acting = r
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        let other = r
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        let pair = r.tokens.issue(&identity(&user, 1), client()).await.unwrap();
        let api = r
            .api_tokens
            .create(
                &user,
                NewApiToken {
                    name: "ci".to_owned(),
                    scopes: vec!["reports:read".to_owned()],
                    ttl: None,
                },
                "alice",
            )
            .await
            .unwrap();

        let change = Change {
            kind: ChangeKind::PasswordChanged,
            security_version: 2,
            acting_session: Some(acting.public_id.clone()),
            actor: "alice".to_owned(),
        };
        let done = revoker.on_security_change(&user, &change).await.unwrap();
        assert_eq!((done.sessions, done.families, done.api_tokens), (1, 1, 0));
        let rotated = done.rotated.expect("acting session re-issued");
        assert_ne!(rotated.public_id, acting.public_id);
        assert_eq!(
            r.sessions.validate(&acting.id).await.unwrap(),
            SessionState::Unknown
        );
        assert_eq!(
            r.sessions.validate(&other.id).await.unwrap(),
            SessionState::Unknown
        );
        let fresh = active(r.sessions.validate(&rotated.id).await.unwrap());
        assert_eq!(fresh.security_version, 2);
        assert_eq!(
            fresh.created_at,
            acting.expires_at - Duration::from_secs(12 * 3600)
        );
        assert!(
            r.tokens
                .verify_access(pair.access_token.expose_secret())
                .await
                .is_err()
        );
        // A password change keeps API tokens; disabling the account does not.
        assert!(
            r.api_tokens
                .authenticate(&api.token)
                .await
                .unwrap()
                .is_some()
        );
        let disable = Change {
            kind: ChangeKind::Disabled,
            security_version: 3,
            acting_session: Some(rotated.public_id.clone()),
            actor: "admin:root".to_owned(),
        };
        let done = revoker.on_security_change(&user, &disable).await.unwrap();
        assert!(done.rotated.is_none(), "a disabled user keeps nothing");
        assert_eq!((done.sessions, done.api_tokens), (1, 1));
        assert!(
            r.api_tokens
                .authenticate(&api.token)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            r.sessions.validate(&rotated.id).await.unwrap(),
            SessionState::Unknown
        );
    }
}

#[tokio::test]
async fn csrf_tokens_are_bound_to_the_session() {
    let s = setup(rampart_store::Backend::Sqlite).await;
    let r = s.replica().await;
    let user = UserId::generate();
    let one = r
        .sessions
        .create(&identity(&user, 1), client(), None)
        .await
        .unwrap();
    let two = r
        .sessions
        .create(&identity(&user, 1), client(), None)
        .await
        .unwrap();
    assert_eq!(one.csrf_token, r.sessions.csrf_token(&one.id));
    assert!(r.sessions.csrf_valid(&one.id, &one.csrf_token));
    assert!(!r.sessions.csrf_valid(&one.id, &two.csrf_token));
    assert!(!r.sessions.csrf_valid(&one.id, ""));
    assert!(!r.sessions.csrf_valid(&one.id, "!!!"));
}

#[test]
fn user_agents_are_bounded_and_clean() {
    assert_eq!(bounded_user_agent("curl/8"), "curl/8");
    let long = "é".repeat(300);
    assert!(bounded_user_agent(&long).len() <= MAX_USER_AGENT_LEN);
    assert_eq!(bounded_user_agent("a\r\nb"), "ab");
}

/// An in-memory stand-in for the Redis channel: delivers every published message to
/// every attached process (its sender included, which ignores its own).
#[derive(Default)]
struct Bus(std::sync::Mutex<Vec<Arc<crate::fanout::Fanout>>>);

#[async_trait::async_trait]
impl crate::fanout::Transport for Bus {
    fn send(&self, payload: Vec<u8>) {
        let members = self.0.lock().unwrap().clone();
        for member in members {
            member.receive(&payload);
        }
    }
    async fn flush(&self, _within: Duration) -> bool {
        true
    }
}

impl Bus {
    fn join(self: &Arc<Self>) -> Arc<crate::fanout::Fanout> {
        let fanout = crate::fanout::Fanout::shared();
        fanout.set_transport(Arc::clone(self) as Arc<dyn crate::fanout::Transport>);
        fanout.subscribed();
        self.0.lock().unwrap().push(Arc::clone(&fanout));
        fanout
    }
}

#[tokio::test]
async fn a_busy_session_is_still_read_again_after_the_ttl() {
    // Using a cached session must not extend its cache lifetime, or a session used
    // more often than the TTL would never see another replica's revocation.
    for backend in BACKENDS {
        let s = setup(backend).await;
        let a = s.replica().await;
        let b = s.replica().await;
        let user = UserId::generate();
        let new = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        active(b.sessions.validate(&new.id).await.unwrap());
        a.sessions
            .revoke(&user, &new.public_id, "alice", "test")
            .await
            .unwrap();
        let mut refused_after = None;
        for second in 1..=(SESSION_CACHE_TTL_SECS + 1) {
            s.clock.advance(Duration::from_secs(1));
            if b.sessions.validate(&new.id).await.unwrap() == SessionState::Unknown {
                refused_after = Some(second);
                break;
            }
        }
        let refused_after = refused_after.expect("the busy session was never read again");
        assert!(refused_after <= SESSION_CACHE_TTL_SECS, "{backend:?}");
    }
}

#[tokio::test]
async fn fanned_out_revocations_evict_other_replicas_at_once() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let bus = Arc::new(Bus::default());
        let a = s.replica_with(bus.join()).await;
        let b = s.replica_with(bus.join()).await;
        let user = UserId::generate();

        // A session, cached on B; revoked on A: refused on B with no time passing.
        let new = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        active(b.sessions.validate(&new.id).await.unwrap());
        a.sessions
            .revoke(&user, &new.public_id, "alice", "test")
            .await
            .unwrap();
        assert_eq!(
            b.sessions.validate(&new.id).await.unwrap(),
            SessionState::Unknown,
            "{backend:?}"
        );

        // A token family, cached on B; revoked on A.
        let pair = a.tokens.issue(&identity(&user, 1), client()).await.unwrap();
        let access = pair.access_token.expose_secret().to_owned();
        b.tokens.verify_access(&access).await.unwrap();
        a.tokens
            .revoke_family(&pair.family_id, "alice", "logout")
            .await
            .unwrap();
        assert!(
            b.tokens.verify_access(&access).await.is_err(),
            "{backend:?}"
        );

        // An API token, cached on B; revoked on A.
        let created = a
            .api_tokens
            .create(
                &user,
                NewApiToken {
                    name: "ci".to_owned(),
                    scopes: vec!["reports:read".to_owned()],
                    ttl: None,
                },
                "alice",
            )
            .await
            .unwrap();
        assert!(
            b.api_tokens
                .authenticate(&created.token)
                .await
                .unwrap()
                .is_some()
        );
        a.api_tokens
            .revoke(&created.record.id, Some(&user), "alice")
            .await
            .unwrap();
        assert!(
            b.api_tokens
                .authenticate(&created.token)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}"
        );

        // Every session of the user but one (a security change), cached on B.
        let kept = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        let other = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        active(b.sessions.validate(&kept.id).await.unwrap());
        active(b.sessions.validate(&other.id).await.unwrap());
        a.sessions
            .revoke_all(&user, Some(&kept.public_id), "alice", "test")
            .await
            .unwrap();
        active(b.sessions.validate(&kept.id).await.unwrap());
        assert_eq!(
            b.sessions.validate(&other.id).await.unwrap(),
            SessionState::Unknown
        );
    }
}

#[tokio::test]
async fn without_a_subscription_cached_sessions_live_one_second() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let a = s.replica().await;
        // B has Redis configured but no subscription (never confirmed, or lost):
        // nothing reaches it, so it must not trust its cache for more than 1 s.
        let fanout = crate::fanout::Fanout::shared();
        let b = s.replica_with(Arc::clone(&fanout)).await;
        let user = UserId::generate();
        let new = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        active(b.sessions.validate(&new.id).await.unwrap());
        a.sessions
            .revoke(&user, &new.public_id, "alice", "test")
            .await
            .unwrap();
        s.clock.advance(Duration::from_secs(
            crate::fanout::SHORT_TTL_SECS.unsigned_abs(),
        ));
        assert_eq!(
            b.sessions.validate(&new.id).await.unwrap(),
            SessionState::Unknown,
            "{backend:?}"
        );

        // Subscribed, then lost: what was cached while subscribed is dropped at once.
        fanout.subscribed();
        let again = a
            .sessions
            .create(&identity(&user, 1), client(), None)
            .await
            .unwrap();
        active(b.sessions.validate(&again.id).await.unwrap());
        a.sessions
            .revoke(&user, &again.public_id, "alice", "test")
            .await
            .unwrap();
        // (A's message never reaches B: there is no bus here.)
        active(b.sessions.validate(&again.id).await.unwrap());
        fanout.lost();
        assert_eq!(
            b.sessions.validate(&again.id).await.unwrap(),
            SessionState::Unknown,
            "{backend:?}"
        );
    }
}
