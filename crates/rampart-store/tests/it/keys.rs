//! F-MASTERKEY / F-INIT / F-ROTATE: the key hierarchy on a real database.

use std::sync::Arc;
use std::time::Duration;

use rampart_core::keys::{DataKeys, DevSealPolicy, KeyError, KeyPurpose};
use rampart_core::store::{InstanceStore as _, KeyStore};
use rampart_crypto::envelope;
use rampart_crypto::{MasterKey, MasterKeyKind, kdf};
use rampart_store::{Backend, Store};

use crate::{clock, fresh, master};

on_both_backends!(
    initialize_then_unseal,
    initialize_twice_is_refused,
    unseal_before_initialize,
    wrong_master_key_is_a_mismatch,
    check_value_is_compared_before_decrypting,
    tampered_wrapped_key_is_a_mismatch,
    development_seal_is_refused_in_production,
    list_keys_has_metadata_only,
    raw_rows_hold_no_key_material,
    rewrap_changes_the_master_key_only,
    rewrap_with_the_wrong_old_key_is_refused,
    rewrap_lifts_a_development_seal,
    concurrent_initializers_create_one_key_set,
    concurrent_rotations_do_not_interleave,
);

async fn initialize_then_unseal(backend: Backend) {
    let db = fresh(backend).await;
    let (store, m) = (db.store(), master());
    let created = DataKeys::initialize(store, &m, &clock()).await.unwrap();

    // A restarted process: a new pool on the same database.
    let again = Store::connect(db.options()).await.unwrap();
    let opened = DataKeys::unseal(&again, &m, DevSealPolicy::Refuse)
        .await
        .unwrap();
    assert_eq!(opened.sealed_with(), MasterKeyKind::Operator);
    for purpose in KeyPurpose::ALL {
        let a = created.active(purpose);
        let b = opened.active(purpose);
        assert_eq!(a.id, b.id);
        assert_eq!(a.key.expose_secret(), b.key.expose_secret());
        assert!(opened.for_purpose(purpose, &a.id).is_some());
    }
    // Keys are distinct per purpose.
    let vault = opened.active(KeyPurpose::Vault);
    let pii = opened.active(KeyPurpose::Pii);
    assert_ne!(vault.key.expose_secret(), pii.key.expose_secret());
    assert!(opened.for_purpose(KeyPurpose::Pii, &vault.id).is_none());

    let instance = store.instance().await.unwrap().unwrap();
    assert_eq!(instance.initialized_at.unix_timestamp(), 1_700_000_000);
    assert_eq!(instance.sealed_with, MasterKeyKind::Operator);
    assert_eq!(instance.key_check, kdf::key_check_value(&m).to_vec());
}

async fn initialize_twice_is_refused(backend: Backend) {
    let db = fresh(backend).await;
    let m = master();
    let first = DataKeys::initialize(db.store(), &m, &clock())
        .await
        .unwrap();
    let err = DataKeys::initialize(db.store(), &m, &clock())
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::AlreadyInitialized), "{err:?}");
    // The first key set is intact.
    let opened = DataKeys::unseal(db.store(), &m, DevSealPolicy::Refuse)
        .await
        .unwrap();
    assert_eq!(
        opened.active(KeyPurpose::Vault).id,
        first.active(KeyPurpose::Vault).id
    );
}

async fn unseal_before_initialize(backend: Backend) {
    let db = fresh(backend).await;
    let err = DataKeys::unseal(db.store(), &master(), DevSealPolicy::Allow)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::NotInitialized), "{err:?}");
    let err = DataKeys::list_keys(db.store()).await.unwrap_err();
    assert!(matches!(err, KeyError::NotInitialized), "{err:?}");
}

async fn wrong_master_key_is_a_mismatch(backend: Backend) {
    let db = fresh(backend).await;
    DataKeys::initialize(db.store(), &master(), &clock())
        .await
        .unwrap();
    let err = DataKeys::unseal(db.store(), &master(), DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyMismatch), "{err:?}");
    assert!(
        err.to_string()
            .contains("the master key does not match this data"),
        "{err}"
    );
}

async fn check_value_is_compared_before_decrypting(backend: Backend) {
    let db = fresh(backend).await;
    DataKeys::initialize(db.store(), &master(), &clock())
        .await
        .unwrap();
    // Garbage in place of every wrapped key: decrypting would fail with an envelope
    // error; the mismatch must be found first, from the check value alone.
    let raw = db.raw_pool().await.unwrap();
    sqlx::query("UPDATE data_keys SET wrapped = $1")
        .bind(vec![0u8; 3])
        .execute(&raw)
        .await
        .unwrap();
    let err = DataKeys::unseal(db.store(), &master(), DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyMismatch), "{err:?}");
}

async fn tampered_wrapped_key_is_a_mismatch(backend: Backend) {
    let db = fresh(backend).await;
    let m = master();
    let keys = DataKeys::initialize(db.store(), &m, &clock())
        .await
        .unwrap();
    let id = keys.active(KeyPurpose::Totp).id.clone();
    let raw = db.raw_pool().await.unwrap();
    let mut wrapped: Vec<u8> =
        sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE key_id = $1")
            .bind(id.as_str())
            .fetch_one(&raw)
            .await
            .unwrap();
    let last = wrapped.len() - 1;
    wrapped[last] ^= 1;
    sqlx::query("UPDATE data_keys SET wrapped = $1 WHERE key_id = $2")
        .bind(wrapped)
        .bind(id.as_str())
        .execute(&raw)
        .await
        .unwrap();
    let err = DataKeys::unseal(db.store(), &m, DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyMismatch), "{err:?}");
}

async fn development_seal_is_refused_in_production(backend: Backend) {
    let db = fresh(backend).await;
    let dev = MasterKey::development();
    DataKeys::initialize(db.store(), &dev, &clock())
        .await
        .unwrap();
    let instance = db.store().instance().await.unwrap().unwrap();
    assert_eq!(instance.sealed_with, MasterKeyKind::Development);

    let err = DataKeys::unseal(db.store(), &dev, DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::SealedWithDevelopmentKey), "{err:?}");
    // Also when production brings some other key: the dev seal is the useful news.
    let err = DataKeys::unseal(db.store(), &master(), DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::SealedWithDevelopmentKey), "{err:?}");

    let keys = DataKeys::unseal(db.store(), &dev, DevSealPolicy::Allow)
        .await
        .unwrap();
    assert_eq!(keys.sealed_with(), MasterKeyKind::Development);
}

async fn list_keys_has_metadata_only(backend: Backend) {
    let db = fresh(backend).await;
    let keys = DataKeys::initialize(db.store(), &master(), &clock())
        .await
        .unwrap();
    let listed = DataKeys::list_keys(db.store()).await.unwrap();
    assert_eq!(listed.len(), KeyPurpose::ALL.len());
    for purpose in KeyPurpose::ALL {
        let info = listed.iter().find(|k| k.purpose == purpose).unwrap();
        assert_eq!(info.id, keys.active(purpose).id);
        assert_eq!(info.created_at.unix_timestamp(), 1_700_000_000);
        assert_eq!(info.retired_at, None);
    }
}

async fn raw_rows_hold_no_key_material(backend: Backend) {
    let db = fresh(backend).await;
    let m = master();
    let keys = DataKeys::initialize(db.store(), &m, &clock())
        .await
        .unwrap();
    let raw = db.raw_pool().await.unwrap();
    let stored: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, purpose, wrapped FROM data_keys")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(stored.len(), KeyPurpose::ALL.len());
    let check: Vec<u8> = sqlx::query_scalar("SELECT key_check FROM instance")
        .fetch_one(&raw)
        .await
        .unwrap();
    for purpose in KeyPurpose::ALL {
        let material = keys.active(purpose).key.expose_secret();
        for (_, _, wrapped) in &stored {
            assert!(
                !contains(wrapped, material),
                "plaintext {purpose} key stored"
            );
            assert!(!contains(wrapped, &material[..8]));
        }
        assert!(!contains(&check, &material[..8]));
    }
    assert!(!contains(&check, m.expose_secret()));
    // Each row's wrapped blob names its own key and is bound to its purpose.
    for (id, purpose, wrapped) in &stored {
        assert_eq!(envelope::key_id(wrapped).unwrap(), id);
        assert!(KeyPurpose::from_label(purpose).is_some());
    }
}

async fn rewrap_changes_the_master_key_only(backend: Backend) {
    let db = fresh(backend).await;
    let (old, new) = (master(), master());
    let before = DataKeys::initialize(db.store(), &old, &clock())
        .await
        .unwrap();
    let raw = db.raw_pool().await.unwrap();
    let wrapped_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped FROM data_keys ORDER BY key_id")
            .fetch_all(&raw)
            .await
            .unwrap();

    let later = clock();
    later.advance(Duration::from_secs(60));
    let report = DataKeys::rewrap(db.store(), &old, &new, &later)
        .await
        .unwrap();
    assert_eq!(report.keys, KeyPurpose::ALL.len());
    assert_eq!(report.sealed_with, MasterKeyKind::Operator);

    let err = DataKeys::unseal(db.store(), &old, DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyMismatch), "{err:?}");
    let after = DataKeys::unseal(db.store(), &new, DevSealPolicy::Refuse)
        .await
        .unwrap();
    for purpose in KeyPurpose::ALL {
        // Same data keys, so every secret sealed under them still opens.
        assert_eq!(before.active(purpose).id, after.active(purpose).id);
        assert_eq!(
            before.active(purpose).key.expose_secret(),
            after.active(purpose).key.expose_secret()
        );
    }
    let wrapped_after: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped FROM data_keys ORDER BY key_id")
            .fetch_all(&raw)
            .await
            .unwrap();
    for (a, b) in wrapped_before.iter().zip(&wrapped_after) {
        assert_ne!(a, b, "every key must be re-wrapped");
    }
    let rewrapped_at: Option<i64> = sqlx::query_scalar("SELECT rewrapped_at FROM instance")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(rewrapped_at, Some(1_700_000_060));
}

async fn rewrap_with_the_wrong_old_key_is_refused(backend: Backend) {
    let db = fresh(backend).await;
    let real = master();
    DataKeys::initialize(db.store(), &real, &clock())
        .await
        .unwrap();
    let err = DataKeys::rewrap(db.store(), &master(), &master(), &clock())
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyMismatch), "{err:?}");
    DataKeys::unseal(db.store(), &real, DevSealPolicy::Refuse)
        .await
        .unwrap();
}

async fn rewrap_lifts_a_development_seal(backend: Backend) {
    let db = fresh(backend).await;
    let dev = MasterKey::development();
    let real = master();
    DataKeys::initialize(db.store(), &dev, &clock())
        .await
        .unwrap();
    let report = DataKeys::rewrap(db.store(), &dev, &real, &clock())
        .await
        .unwrap();
    assert_eq!(report.sealed_with, MasterKeyKind::Operator);
    let keys = DataKeys::unseal(db.store(), &real, DevSealPolicy::Refuse)
        .await
        .unwrap();
    assert_eq!(keys.sealed_with(), MasterKeyKind::Operator);
}

async fn concurrent_initializers_create_one_key_set(backend: Backend) {
    let db = fresh(backend).await;
    let m = master();
    // Separate pools, like separate replicas starting at once.
    let mut stores: Vec<Arc<dyn KeyStore>> = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(Store::connect(db.options()).await.unwrap()));
    }
    let mut tasks = Vec::new();
    for store in stores {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            DataKeys::initialize(store.as_ref(), &m, &clock()).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(KeyError::AlreadyInitialized) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    let raw = db.raw_pool().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM data_keys")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(count, i64::try_from(KeyPurpose::ALL.len()).unwrap());
    DataKeys::unseal(db.store(), &m, DevSealPolicy::Refuse)
        .await
        .unwrap();
}

async fn concurrent_rotations_do_not_interleave(backend: Backend) {
    let db = fresh(backend).await;
    let old = master();
    DataKeys::initialize(db.store(), &old, &clock())
        .await
        .unwrap();
    let candidates = [master(), master(), master()];
    let mut tasks = Vec::new();
    for new in candidates.clone() {
        let store = Store::connect(db.options()).await.unwrap();
        let old = old.clone();
        tasks.push(tokio::spawn(async move {
            DataKeys::rewrap(&store, &old, &new, &clock()).await
        }));
    }
    let mut winner = None;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => {
                assert!(winner.is_none(), "two rotations succeeded");
                winner = Some(i);
            }
            // Lost the race: either saw the new check value before starting, or was
            // stopped by the conditional update.
            Err(KeyError::ConcurrentChange | KeyError::MasterKeyMismatch) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    let winner = winner.expect("one rotation succeeds");
    // Every key is wrapped under the winner's key: none was left under another.
    DataKeys::unseal(db.store(), &candidates[winner], DevSealPolicy::Refuse)
        .await
        .unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
