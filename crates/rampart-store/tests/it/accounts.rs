//! F-USERS, F-LOCKOUT, F-REGISTER, F-TOTP: the account tables, and every "spend
//! once" rule holding under concurrency.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use rampart_core::identity::UserId;
use rampart_core::identity::account::{
    Admission, Admitted, Changed, EnrollmentStore, FieldChange, InviteRecord, LockoutPolicy,
    LockoutStore, LockoutSubject, PendingLoginRecord, PendingLoginStore, ProfileChange,
    SecurityChange, Spent, TotpRecord, UserRecord, UserStore, Username,
};
use rampart_core::store::Removal;
use rampart_crypto::BlindIndex;
use rampart_store::Backend;
use time::OffsetDateTime;

use crate::fresh;

on_both_backends!(
    first_admin_admission_rules,
    setup_token_is_spent_once_under_concurrency,
    invites_are_spent_once_and_expire,
    uniqueness_of_username_and_email,
    profile_and_security_changes,
    totp_steps_and_recovery_codes_are_single_use,
    lockout_counters,
    pending_logins_are_single_use,
);

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn user(name: &str, email: Option<u8>) -> UserRecord {
    let mut attributes = BTreeMap::new();
    attributes.insert("plan".to_owned(), "gold".to_owned());
    UserRecord {
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        email_sealed: email.map(|b| vec![b; 40]),
        email_index: email.map(|b| BlindIndex::from_bytes([b; 32])),
        display_name_sealed: Some(vec![9; 30]),
        password_hash: Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned()),
        roles: vec!["user".to_owned()],
        tenants: vec!["acme".to_owned()],
        attributes,
        disabled: false,
        security_version: 1,
        totp: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

async fn first_admin_admission_rules(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    assert!(!store.accounts_initialized().await.unwrap());
    // Nothing but a first admin before initialization.
    assert_eq!(
        store
            .create_user(&user("early", None), &Admission::Initialized, at(0))
            .await
            .unwrap(),
        Admitted::NotInitialized
    );
    assert_eq!(
        store
            .create_user(&user("early", None), &Admission::Invite([1; 32]), at(0))
            .await
            .unwrap(),
        Admitted::NotInitialized
    );
    let admin = user("admin", Some(1));
    assert_eq!(
        store
            .create_user(&admin, &Admission::FirstAdmin, at(0))
            .await
            .unwrap(),
        Admitted::Created
    );
    assert!(store.accounts_initialized().await.unwrap());
    assert_eq!(
        store
            .create_user(&user("second", None), &Admission::FirstAdmin, at(0))
            .await
            .unwrap(),
        Admitted::AlreadyInitialized
    );
    assert_eq!(
        store.replace_setup_token(&[2; 32], at(60)).await.unwrap(),
        Spent::Refused
    );
    assert_eq!(
        store
            .create_user(&user("second", None), &Admission::Initialized, at(0))
            .await
            .unwrap(),
        Admitted::Created
    );
    // Round trip of every column.
    let read = store.user(&admin.id).await.unwrap().unwrap();
    assert_eq!(read, admin);
    assert_eq!(
        store
            .user_by_username(&Username::parse("ADMIN").unwrap())
            .await
            .unwrap()
            .unwrap()
            .id,
        admin.id
    );
    assert_eq!(
        store
            .user_by_email_index(&BlindIndex::from_bytes([1; 32]))
            .await
            .unwrap()
            .unwrap()
            .id,
        admin.id
    );
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username.as_str().to_owned())
        .collect();
    assert_eq!(names, vec!["admin", "second"]);
}

async fn setup_token_is_spent_once_under_concurrency(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store().clone();
    assert_eq!(
        store.replace_setup_token(&[7; 32], at(3600)).await.unwrap(),
        Spent::Now
    );
    // Wrong and expired tokens are refused and leave the instance uninitialized.
    assert_eq!(
        store
            .create_user(&user("x-one", None), &Admission::SetupToken([8; 32]), at(0))
            .await
            .unwrap(),
        Admitted::SetupTokenRefused
    );
    assert_eq!(
        store
            .create_user(
                &user("x-one", None),
                &Admission::SetupToken([7; 32]),
                at(3600)
            )
            .await
            .unwrap(),
        Admitted::SetupTokenRefused
    );
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_user(
                    &user(&format!("admin{i}"), None),
                    &Admission::SetupToken([7; 32]),
                    at(1),
                )
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == Admitted::Created).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Admitted::Created | Admitted::AlreadyInitialized)),
        "{outcomes:?}"
    );
    assert_eq!(store.users().await.unwrap().len(), 1);
}

async fn invites_are_spent_once_and_expire(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store().clone();
    let admin = user("admin", None);
    store
        .create_user(&admin, &Admission::FirstAdmin, at(0))
        .await
        .unwrap();
    let invite = InviteRecord {
        id: "inv_1".to_owned(),
        code_hash: [3; 32],
        roles: vec!["user".to_owned()],
        tenant: Some("acme".to_owned()),
        created_by: admin.id.clone(),
        created_at: at(0),
        expires_at: at(100),
        used: None,
    };
    store.insert_invite(&invite).await.unwrap();
    assert_eq!(
        store.invite_by_hash(&[3; 32]).await.unwrap().unwrap(),
        invite
    );
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_user(
                    &user(&format!("guest{i}"), None),
                    &Admission::Invite([3; 32]),
                    at(10),
                )
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Admitted::Created => created += 1,
            other => assert_eq!(other, Admitted::InviteRefused),
        }
    }
    assert_eq!(created, 1);
    let used = store.invite_by_hash(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(used.used.as_ref().unwrap().0, at(10));
    // Expired.
    store
        .insert_invite(&InviteRecord {
            id: "inv_2".to_owned(),
            code_hash: [4; 32],
            expires_at: at(100),
            ..invite
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .create_user(&user("late", None), &Admission::Invite([4; 32]), at(100))
            .await
            .unwrap(),
        Admitted::InviteRefused
    );
    assert_eq!(store.invites().await.unwrap().len(), 2);
}

async fn uniqueness_of_username_and_email(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    store
        .create_user(&user("alice", Some(1)), &Admission::FirstAdmin, at(0))
        .await
        .unwrap();
    assert_eq!(
        store
            .create_user(&user("alice", None), &Admission::Initialized, at(0))
            .await
            .unwrap(),
        Admitted::UsernameTaken
    );
    assert_eq!(
        store
            .create_user(&user("bob", Some(1)), &Admission::Initialized, at(0))
            .await
            .unwrap(),
        Admitted::EmailTaken
    );
    let bob = user("bob", Some(2));
    store
        .create_user(&bob, &Admission::Initialized, at(0))
        .await
        .unwrap();
    // Taking another user's address through a profile change is refused.
    let change = ProfileChange {
        email: FieldChange::Set((vec![5; 40], BlindIndex::from_bytes([1; 32]))),
        display_name: FieldChange::Keep,
        at: at(5),
    };
    assert_eq!(
        store.change_profile(&bob.id, &change).await.unwrap(),
        Changed::EmailTaken
    );
}

async fn profile_and_security_changes(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let alice = user("alice", Some(1));
    store
        .create_user(&alice, &Admission::FirstAdmin, at(0))
        .await
        .unwrap();
    let change = ProfileChange {
        email: FieldChange::Clear,
        display_name: FieldChange::Set(vec![6; 20]),
        at: at(5),
    };
    assert_eq!(
        store.change_profile(&alice.id, &change).await.unwrap(),
        Changed::Applied {
            security_version: 1
        }
    );
    let read = store.user(&alice.id).await.unwrap().unwrap();
    assert_eq!((read.email_sealed, read.email_index), (None, None));
    assert_eq!(read.display_name_sealed, Some(vec![6; 20]));
    let mut attributes = BTreeMap::new();
    attributes.insert("plan".to_owned(), "free".to_owned());
    let changes = [
        SecurityChange::Roles(vec!["admin".to_owned()]),
        SecurityChange::Tenants(vec![]),
        SecurityChange::Attributes(attributes.clone()),
        SecurityChange::Disabled(true),
        SecurityChange::Password(None),
    ];
    for (version, change) in (2..).zip(changes) {
        assert_eq!(
            store
                .change_security(&alice.id, &change, at(10))
                .await
                .unwrap(),
            Changed::Applied {
                security_version: version
            }
        );
    }
    let read = store.user(&alice.id).await.unwrap().unwrap();
    assert_eq!(read.roles, vec!["admin".to_owned()]);
    assert!(read.tenants.is_empty());
    assert_eq!(read.attributes, attributes);
    assert!(read.disabled);
    assert_eq!(read.password_hash, None);
    assert_eq!(read.security_version, 6);
    assert_eq!(read.updated_at, at(10));
    let ghost = UserId::generate();
    assert_eq!(
        store
            .change_security(&ghost, &SecurityChange::Disabled(true), at(0))
            .await
            .unwrap(),
        Changed::NoSuchUser
    );
    // A re-hash applies only over the hash it replaces.
    store
        .change_security(
            &alice.id,
            &SecurityChange::Password(Some("old".into())),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .rehash_password(&alice.id, "stale", "new", at(0))
            .await
            .unwrap(),
        Spent::Refused
    );
    assert_eq!(
        store
            .rehash_password(&alice.id, "old", "new", at(0))
            .await
            .unwrap(),
        Spent::Now
    );
}

async fn totp_steps_and_recovery_codes_are_single_use(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store().clone();
    let alice = user("alice", None);
    store
        .create_user(&alice, &Admission::FirstAdmin, at(0))
        .await
        .unwrap();
    let id = alice.id.clone();
    // Enabling needs a pending enrolment.
    assert_eq!(
        store
            .change_security(
                &id,
                &SecurityChange::TotpEnabled {
                    step: 1,
                    recovery_codes: vec![]
                },
                at(0)
            )
            .await
            .unwrap(),
        Changed::WrongState
    );
    assert!(matches!(
        store.begin_totp(&id, &[1; 40], at(0)).await.unwrap(),
        Changed::Applied { .. }
    ));
    let codes: Vec<[u8; 32]> = (0..10u8).map(|i| [i; 32]).collect();
    assert_eq!(
        store
            .change_security(
                &id,
                &SecurityChange::TotpEnabled {
                    step: 100,
                    recovery_codes: codes.clone()
                },
                at(0)
            )
            .await
            .unwrap(),
        Changed::Applied {
            security_version: 2
        }
    );
    let read = store.user(&id).await.unwrap().unwrap();
    assert_eq!(
        read.totp,
        Some(TotpRecord {
            sealed_secret: vec![1; 40],
            enabled: true,
            last_used_step: Some(100)
        })
    );
    assert_eq!(
        store.begin_totp(&id, &[2; 40], at(0)).await.unwrap(),
        Changed::WrongState
    );
    assert_eq!(store.use_totp_step(&id, 100).await.unwrap(), Spent::Refused);
    // Concurrent uses of one step: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            store.use_totp_step(&id, 101).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap() == Spent::Now {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    // Recovery codes: each once, concurrently too.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            store.use_recovery_code(&id, &[3; 32], at(5)).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap() == Spent::Now {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(
        store
            .use_recovery_code(&id, &[99; 32], at(5))
            .await
            .unwrap(),
        Spent::Refused
    );
    let stored = store.recovery_codes(&id).await.unwrap();
    assert_eq!(stored.len(), 10);
    assert_eq!(stored.iter().filter(|c| c.used_at.is_some()).count(), 1);
    // A new set replaces the old one.
    store
        .replace_recovery_codes(&id, &[[50; 32], [51; 32]], at(6))
        .await
        .unwrap();
    assert_eq!(
        store.use_recovery_code(&id, &[4; 32], at(7)).await.unwrap(),
        Spent::Refused
    );
    assert_eq!(
        store
            .use_recovery_code(&id, &[50; 32], at(7))
            .await
            .unwrap(),
        Spent::Now
    );
    // Removing TOTP drops secret, step and codes.
    store
        .change_security(&id, &SecurityChange::TotpRemoved, at(8))
        .await
        .unwrap();
    let read = store.user(&id).await.unwrap().unwrap();
    assert_eq!(read.totp, None);
    assert!(store.recovery_codes(&id).await.unwrap().is_empty());
}

async fn lockout_counters(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store().clone();
    let policy = LockoutPolicy {
        max_failures: 5,
        window: Duration::from_secs(900),
        duration: Duration::from_secs(900),
    };
    let subject = LockoutSubject::ClientIp("192.0.2.1".parse::<IpAddr>().unwrap());
    // Concurrent failures are all counted, and exactly one reports the lockout.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let store = store.clone();
        let subject = subject.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_failure(&subject, &policy, at(0))
                .await
                .unwrap()
        }));
    }
    let mut newly = 0;
    for task in tasks {
        if task.await.unwrap().newly_locked {
            newly += 1;
        }
    }
    assert_eq!(newly, 1);
    let counter = store.failure_counter(&subject).await.unwrap().unwrap();
    assert_eq!(counter.failures, 5);
    assert_eq!(counter.locked_at(at(899)), Some(at(900)));
    assert_eq!(
        store.clear_failures(&subject).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(store.failure_counter(&subject).await.unwrap(), None);
    // Stale counters are purged; live ones stay.
    let other = LockoutSubject::Account(UserId::generate());
    store.record_failure(&other, &policy, at(0)).await.unwrap();
    store
        .record_failure(&subject, &policy, at(1000))
        .await
        .unwrap();
    assert_eq!(store.purge_failures(at(500)).await.unwrap(), 1);
    assert!(store.failure_counter(&subject).await.unwrap().is_some());
}

async fn pending_logins_are_single_use(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store().clone();
    let alice = user("alice", None);
    store
        .create_user(&alice, &Admission::FirstAdmin, at(0))
        .await
        .unwrap();
    let pending = PendingLoginRecord {
        token_hash: [1; 32],
        user_id: alice.id.clone(),
        security_version: 1,
        client_ip: "2001:db8::1".parse().unwrap(),
        created_at: at(0),
        expires_at: at(300),
        failures: 0,
    };
    store.insert_pending_login(&pending).await.unwrap();
    assert_eq!(
        store.pending_login(&[1; 32], at(1)).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(store.pending_login(&[1; 32], at(300)).await.unwrap(), None);
    assert_eq!(store.pending_login_failed(&[1; 32], 3).await.unwrap(), 1);
    assert_eq!(store.pending_login_failed(&[1; 32], 3).await.unwrap(), 2);
    assert_eq!(store.pending_login_failed(&[1; 32], 3).await.unwrap(), 3);
    assert_eq!(store.pending_login(&[1; 32], at(1)).await.unwrap(), None);
    store
        .insert_pending_login(&PendingLoginRecord {
            token_hash: [2; 32],
            ..pending
        })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_pending_login(&[2; 32], at(1)).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap() == Spent::Now {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.purge_pending_logins(at(1000)).await.unwrap(), 0);
}
