//! The keyring across processes, and tokens over a real database (both backends).

use std::sync::Arc;
use std::time::Duration;

use rampart_config::JwtConfig;
use rampart_core::audit::{AuditOptions, Auditor, CheckpointSigner};
use rampart_core::identity::session::SigningKeyStore;
use rampart_core::keys::DataKeys;
use rampart_core::{Clock as _, FakeClock};
use rampart_crypto::MasterKey;
use rampart_crypto::jwt::{JwtError, JwtSigningKey};
use rampart_store::testing::{BACKENDS, TestDb};

use super::*;

pub(crate) fn jwt_config() -> JwtConfig {
    JwtConfig {
        issuer: "https://rampart.test".to_owned(),
        audience: "rampart".to_owned(),
        access_ttl: Duration::from_secs(900),
        signing_key_path: None,
        danger_ephemeral_keys: false,
        refresh_ttl: Duration::from_secs(30 * 86_400),
        refresh_reuse_leeway: Duration::from_secs(5),
        leeway: Duration::from_secs(30),
        rotation_grace: Duration::from_secs(900),
        assertion_ttl: Duration::from_secs(60),
    }
}

struct Setup {
    db: TestDb,
    keys: Arc<DataKeys>,
    clock: FakeClock,
}

async fn setup(backend: rampart_store::Backend) -> Setup {
    let db = TestDb::new(backend).await.unwrap();
    let clock = FakeClock::at_unix(1_700_000_000);
    let keys = Arc::new(
        DataKeys::initialize(db.store(), &MasterKey::generate().unwrap(), &clock)
            .await
            .unwrap(),
    );
    Setup { db, keys, clock }
}

impl Setup {
    /// A process's keyring over the shared database.
    async fn replica(&self) -> Arc<SigningKeys> {
        Arc::new(
            SigningKeys::open(
                &jwt_config(),
                Arc::new(self.db.store().clone()),
                Arc::clone(&self.keys),
                Arc::new(self.clock.clone()),
            )
            .await
            .unwrap(),
        )
    }

    async fn tokens(&self, signing: Arc<SigningKeys>) -> Tokens {
        let audit = Auditor::start(
            Arc::new(self.db.store().clone()),
            AuditOptions::default(),
            CheckpointSigner::from_data_keys(&self.keys),
            Arc::new(self.clock.clone()),
        )
        .await
        .unwrap();
        Tokens::new(
            &jwt_config(),
            signing,
            Arc::new(self.db.store().clone()),
            Arc::clone(&self.keys),
            Arc::new(self.clock.clone()),
            Arc::new(audit),
        )
    }
}

fn claims(now: i64, exp: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": "https://rampart.test", "aud": "rampart", "sub": "u",
        "exp": exp, "iat": now, "nbf": now, "jti": "j", "sid": "fam_x", "mfa": false, "sv": 1,
    })
}

#[tokio::test]
async fn replicas_share_the_keyring_and_rotation_logs_nobody_out() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let a = s.replica().await;
        let b = s.replica().await;
        let first = a.keyring().active().kid().to_owned();
        assert_eq!(
            b.keyring().active().kid(),
            first,
            "{backend:?}: one keyring"
        );

        let now = s.clock.unix();
        let before = a.keyring().sign(&claims(now, now + 900)).unwrap();
        // Replica B rotates (as `rampart keys rotate --signing` would).
        let rotation = b.rotate().await.unwrap();
        assert_eq!(rotation.previous_kid, first);
        assert_ne!(rotation.active_kid, first);
        let after = b.keyring().sign(&claims(now, now + 900)).unwrap();

        // A does not know the new key yet; an unknown kid reloads (rate-limited).
        let validation = Validation::new("https://rampart.test", "rampart");
        assert!(matches!(
            a.keyring()
                .verify::<serde_json::Value>(&after, &validation, now),
            Err(JwtError::UnknownKid)
        ));
        assert!(a.reload_for_unknown_kid().await.unwrap());
        assert!(!a.reload_for_unknown_kid().await.unwrap(), "rate-limited");
        a.keyring()
            .verify::<serde_json::Value>(&after, &validation, now)
            .unwrap();
        assert_eq!(
            a.keyring().active().kid(),
            rotation.active_kid,
            "A signs with the new key"
        );
        // The token signed before the rotation still verifies everywhere.
        for replica in [&a, &b] {
            replica
                .keyring()
                .verify::<serde_json::Value>(&before, &validation, now + 600)
                .unwrap();
        }
        // The JWKS publishes both keys during the grace period.
        let jwks = b.keyring().jwks(now);
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

        // Past the grace (the access-token lifetime), the old key is gone from the
        // JWKS and its tokens are refused.
        s.clock.advance(Duration::from_secs(901 + 30));
        assert_eq!(
            b.keyring().jwks(s.clock.unix())["keys"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(
            b.keyring()
                .verify::<serde_json::Value>(&before, &validation, s.clock.unix())
                .is_err()
        );
        // A second rotation after the grace prunes the expired key.
        b.rotate().await.unwrap();
        let stored = s.db.store().signing_keys().await.unwrap();
        assert_eq!(stored.len(), 2, "{backend:?}: expired key pruned");
        assert!(!stored.iter().any(|k| k.kid == first));
    }
}

#[tokio::test]
async fn a_key_past_its_grace_is_refused_even_for_an_unexpired_token() {
    let s = setup(rampart_store::Backend::Sqlite).await;
    let signing = s.replica().await;
    let old_ring = signing.keyring();
    let now = s.clock.unix();
    signing.rotate().await.unwrap();
    // A token of the old key that would live for a day (Rampart never issues one;
    // a stolen old key could).
    let token = old_ring.sign(&claims(now, now + 86_400)).unwrap();
    let validation = Validation::new("https://rampart.test", "rampart");
    signing
        .keyring()
        .verify::<serde_json::Value>(&token, &validation, now + 60)
        .unwrap();
    assert!(matches!(
        signing
            .keyring()
            .verify::<serde_json::Value>(&token, &validation, now + 901),
        Err(JwtError::RetiredKey)
    ));
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let signing = s.replica().await;
        let pem = signing.keyring().active().to_pkcs8_pem().unwrap();
        let stored = s.db.store().signing_keys().await.unwrap();
        assert_eq!(stored.len(), 1);
        let sealed = &stored[0].sealed_private;
        let body: String = pem
            .expose_secret()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let haystack = String::from_utf8_lossy(sealed);
        assert!(!haystack.contains("PRIVATE KEY"), "{backend:?}");
        assert!(!haystack.contains(&body), "{backend:?}");
    }
}

#[tokio::test]
async fn the_configured_key_file_seeds_an_empty_keyring() {
    let s = setup(rampart_store::Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    let key = JwtSigningKey::generate().unwrap();
    rampart_crypto::secret_file::write_new(
        &path,
        key.to_pkcs8_pem().unwrap().expose_secret().as_bytes(),
    )
    .unwrap();
    let config = JwtConfig {
        signing_key_path: Some(path),
        ..jwt_config()
    };
    let signing = SigningKeys::open(
        &config,
        Arc::new(s.db.store().clone()),
        Arc::clone(&s.keys),
        Arc::new(s.clock.clone()),
    )
    .await
    .unwrap();
    assert_eq!(signing.keyring().active().kid(), key.kid());
}

#[tokio::test]
async fn ephemeral_keys_are_never_stored() {
    let s = setup(rampart_store::Backend::Sqlite).await;
    let config = JwtConfig {
        danger_ephemeral_keys: true,
        ..jwt_config()
    };
    let signing = SigningKeys::open(
        &config,
        Arc::new(s.db.store().clone()),
        Arc::clone(&s.keys),
        Arc::new(s.clock.clone()),
    )
    .await
    .unwrap();
    let rotation = signing.rotate().await.unwrap();
    assert_eq!(signing.keyring().active().kid(), rotation.active_kid);
    assert!(s.db.store().signing_keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn verify_access_picks_up_another_replicas_key() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let a = s.tokens(s.replica().await).await;
        let b_keys = s.replica().await;
        b_keys.rotate().await.unwrap();
        let b = s.tokens(b_keys).await;
        // A family so the family check passes.
        let family = rampart_core::identity::session::RefreshFamily {
            id: "fam_test".to_owned(),
            user_id: rampart_core::identity::UserId::generate(),
            created_at: s.clock.now(),
            mfa: false,
            security_version: 1,
            revoked_at: None,
        };
        let pair = b.pair(&family, RefreshToken::generate().unwrap()).unwrap();
        s.db.store()
            .insert_family(
                &family,
                &RefreshRecord {
                    token_hash: pair.refresh_token.hash(),
                    family_id: family.id.clone(),
                    created_at: s.clock.now(),
                    expires_at: s.clock.now() + Duration::from_secs(60),
                    spent_at: None,
                    successor_sealed: None,
                },
            )
            .await
            .unwrap();
        let claims = a
            .verify_access(pair.access_token.expose_secret())
            .await
            .unwrap();
        assert_eq!(claims.sid, "fam_test", "{backend:?}");
        // Cached now: revoking the family evicts it and refuses it.
        a.revoke_family("fam_test", "test", "test").await.unwrap();
        assert!(matches!(
            a.verify_access(pair.access_token.expose_secret()).await,
            Err(TokenError::Refused(_))
        ));
    }
}
