//! F-MAGIC storage: single use, binding, expiry, concurrent consumption, purge.

use std::sync::Arc;
use std::time::Duration;

use rampart_core::Clock as _;
use rampart_core::identity::UserId;
use rampart_core::identity::magic::{Consumption, MagicLinkAttempt, MagicLinkStore, NewMagicLink};
use rampart_store::Backend;
use rampart_store::testing::TestDb;
use time::OffsetDateTime;

use crate::{clock, fresh};

on_both_backends!(
    consumed_once,
    wrong_binding_is_refused_and_leaves_the_link_usable,
    expired_links_are_refused,
    concurrent_consumers_have_one_winner,
    recent_links_are_counted_and_retired,
    purge_deletes_only_expired_links,
    only_hashes_are_stored,
    deleting_the_user_deletes_the_links,
);

const TTL: Duration = Duration::from_secs(15 * 60);

/// A user row (links reference users and go when the user goes).
async fn new_user(db: &TestDb) -> UserId {
    let id = UserId::generate();
    let pool = db.raw_pool().await.unwrap();
    sqlx::query(
        "INSERT INTO users (user_id, username, roles, tenants, attributes, disabled, \
         security_version, totp_enabled, created_at, updated_at) \
         VALUES ($1, $2, '[]', '[]', '{}', 0, 0, 0, 0, 0)",
    )
    .bind(id.as_str())
    .bind(format!("u{}", &id.as_str()[20..]))
    .execute(&pool)
    .await
    .unwrap();
    id
}

fn link(user: &UserId, token: u8, binding: u8, at: OffsetDateTime) -> NewMagicLink {
    NewMagicLink {
        token_hash: [token; 32],
        user_id: user.clone(),
        binding_hash: [binding; 32],
        created_at: at,
        expires_at: at + TTL,
    }
}

fn attempt(token: u8, binding: u8, at: OffsetDateTime) -> MagicLinkAttempt {
    MagicLinkAttempt {
        token_hash: [token; 32],
        binding_hash: [binding; 32],
        at,
    }
}

async fn consumed_once(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 1, 2, now))
        .await
        .unwrap();

    assert_eq!(
        store.consume_magic_link(&attempt(1, 2, now)).await.unwrap(),
        Consumption::Consumed(user)
    );
    assert_eq!(
        store.consume_magic_link(&attempt(1, 2, now)).await.unwrap(),
        Consumption::Refused
    );
    // Unknown token.
    assert_eq!(
        store.consume_magic_link(&attempt(9, 2, now)).await.unwrap(),
        Consumption::Refused
    );
    // The same hash cannot be stored twice.
    let again = store
        .insert_magic_link(&link(&new_user(&db).await, 1, 3, now))
        .await;
    assert!(again.is_err());
}

async fn wrong_binding_is_refused_and_leaves_the_link_usable(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 1, 2, now))
        .await
        .unwrap();

    assert_eq!(
        store.consume_magic_link(&attempt(1, 3, now)).await.unwrap(),
        Consumption::Refused
    );
    assert_eq!(
        store.consume_magic_link(&attempt(1, 2, now)).await.unwrap(),
        Consumption::Consumed(user)
    );
}

async fn expired_links_are_refused(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 1, 2, now))
        .await
        .unwrap();
    store
        .insert_magic_link(&link(&user, 4, 2, now))
        .await
        .unwrap();

    // Exactly at expiry: refused.
    assert_eq!(
        store
            .consume_magic_link(&attempt(1, 2, now + TTL))
            .await
            .unwrap(),
        Consumption::Refused
    );
    // One second before: accepted.
    let before = now + TTL - Duration::from_secs(1);
    assert_eq!(
        store
            .consume_magic_link(&attempt(4, 2, before))
            .await
            .unwrap(),
        Consumption::Consumed(user)
    );
}

async fn concurrent_consumers_have_one_winner(backend: Backend) {
    let db = fresh(backend).await;
    let store = Arc::new(db.store().clone());
    let now = clock().now();
    let user = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 1, 2, now))
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.consume_magic_link(&attempt(1, 2, now)).await.unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if let Consumption::Consumed(who) = task.await.unwrap() {
            assert_eq!(who, user);
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn recent_links_are_counted_and_retired(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    let other = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 1, 2, now - Duration::from_secs(600)))
        .await
        .unwrap();
    store
        .insert_magic_link(&link(&user, 3, 2, now))
        .await
        .unwrap();
    store
        .insert_magic_link(&link(&user, 4, 2, now))
        .await
        .unwrap();
    store
        .insert_magic_link(&link(&other, 5, 2, now))
        .await
        .unwrap();

    assert_eq!(store.count_recent_magic_links(&user, now).await.unwrap(), 2);
    let all = now - Duration::from_secs(3600);
    assert_eq!(store.count_recent_magic_links(&user, all).await.unwrap(), 3);

    // A used link no longer counts.
    store.consume_magic_link(&attempt(3, 2, now)).await.unwrap();
    assert_eq!(store.count_recent_magic_links(&user, all).await.unwrap(), 2);

    // After a sign-in the user's other links stop working; other users' do not.
    assert_eq!(store.retire_magic_links(&user, now).await.unwrap(), 2);
    assert_eq!(store.count_recent_magic_links(&user, all).await.unwrap(), 0);
    assert_eq!(
        store.consume_magic_link(&attempt(4, 2, now)).await.unwrap(),
        Consumption::Refused
    );
    assert_eq!(
        store.consume_magic_link(&attempt(5, 2, now)).await.unwrap(),
        Consumption::Consumed(other)
    );
}

async fn purge_deletes_only_expired_links(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    let old = now - Duration::from_secs(3600);
    store
        .insert_magic_link(&link(&user, 1, 2, old))
        .await
        .unwrap();
    store
        .insert_magic_link(&link(&user, 3, 2, now))
        .await
        .unwrap();

    assert_eq!(store.purge_magic_links(now).await.unwrap(), 1);
    assert_eq!(store.purge_magic_links(now).await.unwrap(), 0);
    assert_eq!(
        store.consume_magic_link(&attempt(3, 2, now)).await.unwrap(),
        Consumption::Consumed(user)
    );
}

async fn only_hashes_are_stored(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 7, 8, now))
        .await
        .unwrap();

    let pool = db.raw_pool().await.unwrap();
    let (token, binding, expires): (Vec<u8>, Vec<u8>, i64) =
        sqlx::query_as("SELECT token_hash, binding_hash, expires_at FROM magic_links")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(token, vec![7; 32]);
    assert_eq!(binding, vec![8; 32]);
    assert_eq!(expires, (now + TTL).unix_timestamp());
    // Hashes of the wrong length are refused by the schema.
    let bad = sqlx::query(
        "INSERT INTO magic_links (token_hash, user_id, binding_hash, created_at, expires_at) \
         VALUES ($1, $3, $2, 1, 2)",
    )
    .bind(vec![1u8; 31])
    .bind(vec![1u8; 32])
    .bind(user.as_str())
    .execute(&pool)
    .await;
    assert!(bad.is_err());
}

async fn deleting_the_user_deletes_the_links(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let now = clock().now();
    let user = new_user(&db).await;
    store
        .insert_magic_link(&link(&user, 1, 2, now))
        .await
        .unwrap();
    // A link for a user that does not exist is refused.
    let orphan = store
        .insert_magic_link(&link(&UserId::generate(), 3, 2, now))
        .await;
    assert!(orphan.is_err());

    let pool = db.raw_pool().await.unwrap();
    sqlx::query("DELETE FROM users WHERE user_id = $1")
        .bind(user.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM magic_links")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
