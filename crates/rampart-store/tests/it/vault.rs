//! F-VAULT: named secrets sealed under the vault key.

use std::sync::Arc;
use std::time::Duration;

use rampart_core::FakeClock;
use rampart_core::keys::{DataKeys, DevSealPolicy, KeyError, KeyPurpose};
use rampart_core::vault::{MAX_VALUE_LEN, SecretName, Vault, VaultError};
use rampart_crypto::{MasterKey, SecretString};
use rampart_store::testing::TestDb;
use rampart_store::{Backend, Store};

use crate::{clock, fresh, master};

on_both_backends!(
    set_get_list_remove,
    replacing_keeps_created_at,
    raw_database_holds_no_plaintext,
    swapped_ciphertexts_do_not_open,
    wrong_master_key_cannot_open_the_vault,
    values_survive_a_restart_and_a_master_key_rotation,
    size_limit,
    concurrent_writers_all_succeed,
);

struct Setup {
    db: TestDb,
    master: MasterKey,
    clock: FakeClock,
    vault: Vault,
}

async fn setup(backend: Backend) -> Setup {
    let db = fresh(backend).await;
    let master = master();
    let clock = clock();
    let keys = DataKeys::initialize(db.store(), &master, &clock)
        .await
        .unwrap();
    let vault = vault_over(db.store(), keys, &clock);
    Setup {
        db,
        master,
        clock,
        vault,
    }
}

fn vault_over(store: &Store, keys: DataKeys, clock: &FakeClock) -> Vault {
    Vault::new(
        Arc::new(store.clone()),
        Arc::new(keys),
        Arc::new(clock.clone()),
    )
}

fn name(text: &str) -> SecretName {
    SecretName::new(text).unwrap()
}

async fn set_get_list_remove(backend: Backend) {
    let s = setup(backend).await;
    let api_key = SecretString::from("sk_live_0123456789abcd");
    s.vault.set(&name("third_party"), &api_key).await.unwrap();
    s.vault
        .set(&name("short"), &SecretString::from("abc"))
        .await
        .unwrap();

    let got = s.vault.get(&name("third_party")).await.unwrap();
    assert_eq!(got.expose_secret(), api_key.expose_secret());

    let listed = s.vault.list().await.unwrap();
    let summary: Vec<(&str, &str)> = listed
        .iter()
        .map(|l| (l.name.as_str(), l.masked.as_str()))
        .collect();
    assert_eq!(summary, [("short", "••••"), ("third_party", "••••abcd")]);
    assert_eq!(listed[0].updated_at.unix_timestamp(), 1_700_000_000);

    s.vault.remove(&name("short")).await.unwrap();
    let err = s.vault.get(&name("short")).await.unwrap_err();
    assert!(matches!(err, VaultError::NotFound(_)), "{err:?}");
    let err = s.vault.remove(&name("short")).await.unwrap_err();
    assert!(matches!(err, VaultError::NotFound(_)), "{err:?}");
    assert_eq!(s.vault.list().await.unwrap().len(), 1);
}

async fn replacing_keeps_created_at(backend: Backend) {
    let s = setup(backend).await;
    let n = name("db.password");
    s.vault
        .set(&n, &SecretString::from("first value"))
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(3600));
    s.vault
        .set(&n, &SecretString::from("second value"))
        .await
        .unwrap();
    assert_eq!(
        s.vault.get(&n).await.unwrap().expose_secret(),
        "second value"
    );

    let raw = s.db.raw_pool().await.unwrap();
    let (created, updated): (i64, i64) =
        sqlx::query_as("SELECT created_at, updated_at FROM vault_secrets WHERE name = $1")
            .bind(n.as_str())
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(created, 1_700_000_000);
    assert_eq!(updated, 1_700_003_600);
    let listed = s.vault.list().await.unwrap();
    assert_eq!(listed[0].updated_at.unix_timestamp(), 1_700_003_600);
}

async fn raw_database_holds_no_plaintext(backend: Backend) {
    let s = setup(backend).await;
    let values = [
        ("third_party", "sk_live_PLAINTEXT_MARKER_0001"),
        ("smtp", "hunter2-PLAINTEXT_MARKER_0002"),
    ];
    for (n, v) in values {
        s.vault.set(&name(n), &SecretString::from(v)).await.unwrap();
    }
    // Setting the same value twice gives different ciphertexts (random nonces).
    let raw = s.db.raw_pool().await.unwrap();
    let first: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM vault_secrets WHERE name = 'smtp'")
        .fetch_one(&raw)
        .await
        .unwrap();
    s.vault
        .set(&name("smtp"), &SecretString::from(values[1].1))
        .await
        .unwrap();

    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT name, key_id, sealed FROM vault_secrets")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (row_name, key_id, sealed) in &rows {
        for (_, value) in values {
            for haystack in [row_name.as_bytes(), key_id.as_bytes(), sealed.as_slice()] {
                assert!(!contains(haystack, value.as_bytes()), "plaintext stored");
                assert!(!contains(haystack, b"PLAINTEXT_MARKER"), "plaintext stored");
            }
        }
        if row_name == "smtp" {
            assert_ne!(sealed, &first, "nonce reused");
        }
    }
}

async fn swapped_ciphertexts_do_not_open(backend: Backend) {
    let s = setup(backend).await;
    s.vault
        .set(&name("a"), &SecretString::from("value of a"))
        .await
        .unwrap();
    s.vault
        .set(&name("b"), &SecretString::from("value of b"))
        .await
        .unwrap();
    let raw = s.db.raw_pool().await.unwrap();
    let sealed = |n: &'static str| {
        let raw = raw.clone();
        async move {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT sealed FROM vault_secrets WHERE name = $1")
                .bind(n)
                .fetch_one(&raw)
                .await
                .unwrap()
        }
    };
    let (a, b) = (sealed("a").await, sealed("b").await);
    for (n, value) in [("a", &b), ("b", &a)] {
        sqlx::query("UPDATE vault_secrets SET sealed = $1 WHERE name = $2")
            .bind(value.clone())
            .bind(n)
            .execute(&raw)
            .await
            .unwrap();
    }
    for n in ["a", "b"] {
        let err = s.vault.get(&name(n)).await.unwrap_err();
        assert!(matches!(err, VaultError::Undecryptable { .. }), "{err:?}");
        assert!(!err.to_string().contains("value of"), "{err}");
    }
    // A listing fails closed too rather than skipping the bad rows.
    assert!(s.vault.list().await.is_err());
}

async fn wrong_master_key_cannot_open_the_vault(backend: Backend) {
    let s = setup(backend).await;
    s.vault
        .set(
            &name("third_party"),
            &SecretString::from("sk_live_0123456789abcd"),
        )
        .await
        .unwrap();
    let err = DataKeys::unseal(s.db.store(), &master(), DevSealPolicy::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyMismatch), "{err:?}");
}

async fn values_survive_a_restart_and_a_master_key_rotation(backend: Backend) {
    let s = setup(backend).await;
    let value = SecretString::from("-----BEGIN PRIVATE KEY-----\nMII...\n");
    s.vault
        .set(&name("upstream.tls-key"), &value)
        .await
        .unwrap();
    let raw = s.db.raw_pool().await.unwrap();
    let sealed_before: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM vault_secrets")
        .fetch_one(&raw)
        .await
        .unwrap();

    let new_master = master();
    DataKeys::rewrap(s.db.store(), &s.master, &new_master, &s.clock)
        .await
        .unwrap();

    // A new process with the new key reads the secret; the ciphertext was not touched.
    let restarted = Store::connect(s.db.options()).await.unwrap();
    let keys = DataKeys::unseal(&restarted, &new_master, DevSealPolicy::Refuse)
        .await
        .unwrap();
    let vault_key = keys.active(KeyPurpose::Vault).id.clone();
    let vault = vault_over(&restarted, keys, &s.clock);
    let got = vault.get(&name("upstream.tls-key")).await.unwrap();
    assert_eq!(got.expose_secret(), value.expose_secret());
    let sealed_after: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM vault_secrets")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(sealed_before, sealed_after);
    let key_id: String = sqlx::query_scalar("SELECT key_id FROM vault_secrets")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(key_id, vault_key.as_str());
}

async fn size_limit(backend: Backend) {
    let s = setup(backend).await;
    let largest = SecretString::new("x".repeat(MAX_VALUE_LEN));
    s.vault.set(&name("big"), &largest).await.unwrap();
    assert_eq!(
        s.vault.get(&name("big")).await.unwrap().len(),
        MAX_VALUE_LEN
    );
    let too_big = SecretString::new("x".repeat(MAX_VALUE_LEN + 1));
    let err = s.vault.set(&name("bigger"), &too_big).await.unwrap_err();
    assert!(matches!(err, VaultError::TooLarge { .. }), "{err:?}");
}

async fn concurrent_writers_all_succeed(backend: Backend) {
    // Several pools (as replicas, or the server and the CLI) writing at once: on SQLite
    // this must queue on the busy timeout, never surface SQLITE_BUSY.
    let s = setup(backend).await;
    let keys = Arc::new(
        DataKeys::unseal(s.db.store(), &s.master, DevSealPolicy::Refuse)
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let store = Store::connect(s.db.options()).await.unwrap();
        let vault = Vault::new(Arc::new(store), keys.clone(), Arc::new(s.clock.clone()));
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let n = name(&format!("w{writer}.s{}", i % 3));
                vault
                    .set(&n, &SecretString::from(format!("value {writer} {i}")))
                    .await?;
                vault.get(&n).await?;
            }
            Ok::<_, VaultError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(s.vault.list().await.unwrap().len(), 12);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
