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
        let store = Arc::new(self.db.store().clone());
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let sessions = Arc::new(Sessions::new(
            &session_config(),
            store.clone(),
            Arc::clone(&self.keys),
            Arc::clone(&clock),
            Arc::clone(&self.audit),
        ));
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
        let tokens = Arc::new(Tokens::new(
            &jwt,
            signing,
            store.clone(),
            Arc::clone(&self.keys),
            Arc::clone(&clock),
            Arc::clone(&self.audit),
        ));
        let api_tokens = Arc::new(ApiTokens::new(
            &rampart_config::ApiTokensConfig {
                allow_admin: false,
                default_ttl: Duration::from_secs(86_400),
                max_ttl: Duration::from_secs(365 * 86_400),
            },
            store,
            clock,
            Arc::clone(&self.audit),
        ));
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
