//! Sessions, refresh tokens, API tokens and the signing keyring at rest.

use std::sync::Arc;
use std::time::Duration;

use rampart_core::Clock as _;
use rampart_core::identity::UserId;
use rampart_core::identity::session::{
    ApiTokenRecord, RefreshFamily, RefreshRecord, SessionRecord, SessionStore, SigningKeyRecord,
    SigningKeyStore, Spend, Successor, TokenStore,
};
use rampart_core::store::{Removal, StoreError};
use rampart_store::Backend;
use time::OffsetDateTime;

use crate::{clock, fresh};

on_both_backends!(
    sessions_round_trip_and_revoke,
    concurrent_spends_of_one_refresh_token_do_not_fork,
    spend_outcomes,
    api_tokens_round_trip,
    one_active_signing_key,
);

fn session(user: &UserId, n: u8, now: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        public_id: format!("ses_{n}"),
        id_hash: [n; 32],
        user_id: user.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::from_secs(3600),
        mfa: n.is_multiple_of(2),
        security_version: 3,
        user_agent: Some("curl/8".to_owned()),
        client_ip: Some("203.0.113.9".to_owned()),
    }
}

async fn sessions_round_trip_and_revoke(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let alice = UserId::generate();
    let bob = UserId::generate();
    for n in 1..=3 {
        store
            .insert_session(&session(&alice, n, now))
            .await
            .unwrap();
    }
    store.insert_session(&session(&bob, 9, now)).await.unwrap();
    let found = store.session_by_hash(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(found, session(&alice, 2, now));
    assert!(store.session_by_hash(&[7; 32]).await.unwrap().is_none());

    // Touch moves last_seen forward only.
    let later = now + Duration::from_secs(60);
    store.touch_session("ses_2", later).await.unwrap();
    store.touch_session("ses_2", now).await.unwrap();
    let found = store.session_by_hash(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(found.last_seen_at, later);

    assert_eq!(store.sessions_of(&alice, now).await.unwrap().len(), 3);
    // Another user's session is not deletable through this user.
    assert_eq!(
        store.delete_session(&alice, "ses_9").await.unwrap(),
        Removal::Absent
    );
    assert_eq!(
        store.delete_session(&alice, "ses_1").await.unwrap(),
        Removal::Removed
    );

    // Rotation replaces atomically.
    let mut rotated = session(&alice, 4, now);
    rotated.public_id = "ses_4".to_owned();
    store
        .replace_session(&alice, "ses_2", &rotated)
        .await
        .unwrap();
    assert!(store.session_by_hash(&[2; 32]).await.unwrap().is_none());
    assert!(store.session_by_hash(&[4; 32]).await.unwrap().is_some());
    assert!(matches!(
        store
            .replace_session(&alice, "ses_2", &session(&alice, 5, now))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let mut deleted = store
        .delete_sessions_of(&alice, Some("ses_4"))
        .await
        .unwrap();
    deleted.sort();
    assert_eq!(deleted, vec!["ses_3".to_owned()]);
    assert_eq!(store.sessions_of(&alice, now).await.unwrap().len(), 1);
    assert_eq!(store.sessions_of(&bob, now).await.unwrap().len(), 1);

    // Purge drops sessions past their absolute end.
    assert_eq!(
        store
            .purge_sessions(now + Duration::from_secs(3601))
            .await
            .unwrap(),
        2
    );
}

fn family(user: &UserId, now: OffsetDateTime) -> (RefreshFamily, RefreshRecord) {
    let family = RefreshFamily {
        id: "fam_1".to_owned(),
        user_id: user.clone(),
        created_at: now,
        mfa: true,
        security_version: 2,
        revoked_at: None,
    };
    let first = RefreshRecord {
        token_hash: [1; 32],
        family_id: family.id.clone(),
        created_at: now,
        expires_at: now + Duration::from_secs(86_400),
        spent_at: None,
        successor_sealed: None,
    };
    (family, first)
}

fn successor(n: u8, now: OffsetDateTime) -> Successor {
    Successor {
        token_hash: [n; 32],
        expires_at: now + Duration::from_secs(86_400),
        sealed: vec![n; 8],
        forget_before: now - Duration::from_secs(5),
    }
}

async fn concurrent_spends_of_one_refresh_token_do_not_fork(backend: Backend) {
    let db = fresh(backend).await;
    let store = Arc::new(db.store().clone());
    let now = clock().now();
    let (fam, first) = family(&UserId::generate(), now);
    store.insert_family(&fam, &first).await.unwrap();
    // Eight spenders at once, each with its own candidate successor.
    let tasks: Vec<_> = (10..18u8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(
                async move { store.spend_refresh(&[1; 32], now, &successor(n, now)).await },
            )
        })
        .collect();
    let mut spent = Vec::new();
    let mut already = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Spend::Spent { .. } => spent.push(()),
            Spend::AlreadySpent {
                successor_sealed, ..
            } => already.push(successor_sealed.unwrap()),
            other => panic!("{backend:?}: unexpected {other:?}"),
        }
    }
    assert_eq!(spent.len(), 1, "{backend:?}: exactly one spender");
    assert_eq!(already.len(), 7);
    already.dedup();
    assert_eq!(
        already.len(),
        1,
        "everyone else sees the winner's successor"
    );
    let pool = db.raw_pool().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "one spent token and one successor");
    // After the leeway the sealed successor is forgotten.
    let kept = "SELECT count(*) FROM refresh_tokens WHERE successor_sealed IS NOT NULL";
    let sealed: i64 = sqlx::query_scalar(kept).fetch_one(&pool).await.unwrap();
    assert_eq!(sealed, 1);
    store
        .purge_refresh(now, now + Duration::from_secs(1))
        .await
        .unwrap();
    let sealed: i64 = sqlx::query_scalar(kept).fetch_one(&pool).await.unwrap();
    assert_eq!(sealed, 0);
}

async fn spend_outcomes(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let (fam, first) = family(&UserId::generate(), now);
    store.insert_family(&fam, &first).await.unwrap();
    assert_eq!(
        store
            .spend_refresh(&[9; 32], now, &successor(2, now))
            .await
            .unwrap(),
        Spend::Unknown
    );
    // Expired.
    let late = now + Duration::from_secs(86_401);
    assert_eq!(
        store
            .spend_refresh(&[1; 32], late, &successor(2, late))
            .await
            .unwrap(),
        Spend::Expired
    );
    assert!(matches!(
        store
            .spend_refresh(&[1; 32], now, &successor(2, now))
            .await
            .unwrap(),
        Spend::Spent { .. }
    ));
    // The successor's sealed copy is forgotten after the leeway, at the next spend.
    let later = now + Duration::from_secs(60);
    assert!(matches!(
        store
            .spend_refresh(&[2; 32], later, &successor(3, later))
            .await
            .unwrap(),
        Spend::Spent { .. }
    ));
    match store
        .spend_refresh(&[1; 32], later, &successor(4, later))
        .await
        .unwrap()
    {
        Spend::AlreadySpent {
            successor_sealed, ..
        } => assert!(successor_sealed.is_none()),
        other => panic!("{other:?}"),
    }
    // Revoked family.
    assert_eq!(
        store.revoke_family("fam_1", later).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store.revoke_family("fam_1", later).await.unwrap(),
        Removal::Absent
    );
    assert_eq!(
        store
            .spend_refresh(&[3; 32], later, &successor(5, later))
            .await
            .unwrap(),
        Spend::Revoked
    );
    assert!(
        store
            .family("fam_1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(
        store
            .revoke_families_of(&fam.user_id, later)
            .await
            .unwrap()
            .len(),
        0
    );
    // Purge removes expired tokens and empty families.
    let far = now + Duration::from_secs(10 * 86_400);
    assert_eq!(store.purge_refresh(far, far).await.unwrap(), 3);
    assert!(store.family("fam_1").await.unwrap().is_none());
}

async fn api_tokens_round_trip(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let alice = UserId::generate();
    let record = ApiTokenRecord {
        id: "tok_1".to_owned(),
        token_hash: [5; 32],
        user_id: alice.clone(),
        name: "ci".to_owned(),
        scopes: vec!["reports:read".to_owned(), "*".to_owned()],
        created_at: now,
        expires_at: now + Duration::from_secs(60),
        last_used_at: None,
    };
    store.insert_api_token(&record).await.unwrap();
    assert_eq!(
        store.api_token_by_hash(&[5; 32]).await.unwrap().unwrap(),
        record
    );
    store.touch_api_token("tok_1", now).await.unwrap();
    assert_eq!(
        store.api_tokens(Some(&alice)).await.unwrap()[0].last_used_at,
        Some(now)
    );
    assert_eq!(store.api_tokens(None).await.unwrap().len(), 1);
    assert!(
        store
            .api_tokens(Some(&UserId::generate()))
            .await
            .unwrap()
            .is_empty()
    );
    // Only the owner (or the CLI, with no user) can delete it.
    assert_eq!(
        store
            .delete_api_token("tok_1", Some(&UserId::generate()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.delete_api_token("tok_1", Some(&alice)).await.unwrap(),
        Some([5; 32])
    );
    store.insert_api_token(&record).await.unwrap();
    assert_eq!(
        store.delete_api_tokens_of(&alice).await.unwrap(),
        vec![[5; 32]]
    );
}

fn key(kid: &str, now: OffsetDateTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        public_key: vec![7; 32],
        sealed_private: vec![1, 2, 3],
        created_at: now,
        retired_at: None,
        valid_until: None,
    }
}

async fn one_active_signing_key(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    store
        .insert_first_signing_key(&key("a", now))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_first_signing_key(&key("b", now)).await,
        Err(StoreError::Conflict { .. })
    ));
    let until = now + Duration::from_secs(900);
    store
        .rotate_signing_key("a", now, until, &key("b", now), now)
        .await
        .unwrap();
    // A concurrent rotation that still thinks "a" is active changes nothing.
    assert!(matches!(
        store
            .rotate_signing_key("a", now, until, &key("c", now), now)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.valid_until.is_none()).count(), 1);
    // The database itself refuses a second active key.
    let pool = db.raw_pool().await.unwrap();
    let second_active = sqlx::query(
        "INSERT INTO jwt_signing_keys (kid, public_key, sealed_private, created_at) \
         VALUES ('x', $1, $2, 0)",
    )
    .bind(vec![7u8; 32])
    .bind(vec![1u8])
    .execute(&pool)
    .await;
    assert!(second_active.is_err());
    // Rotating after the grace prunes the expired key.
    let later = until + Duration::from_secs(1);
    store
        .rotate_signing_key(
            "b",
            later,
            later + Duration::from_secs(900),
            &key("c", later),
            later,
        )
        .await
        .unwrap();
    let kids: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["b".to_owned(), "c".to_owned()]);
}
