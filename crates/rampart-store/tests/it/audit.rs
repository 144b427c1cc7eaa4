//! F-AUDIT: the audit tables on both backends, and the whole log — writer, recovery,
//! verification, export — over a real database.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::FakeClock;
use rampart_core::audit::{
    AuditEvent, AuditOptions, AuditRecord, AuditStore, Auditor, ChainHash, Checkpoint,
    CheckpointSigner, Entry, EventKind, Location, Outcome, Problem, Source, Start, Verification,
    VerifyOptions, WriterId, export_store, trusted_keys, verify_file, verify_sinks, verify_store,
};
use rampart_core::keys::DataKeys;
use rampart_core::store::StoreError;
use rampart_crypto::SecretArray;
use rampart_crypto::signing::Signer;
use rampart_store::testing::TestDb;
use rampart_store::{Backend, Store};
use time::OffsetDateTime;

use crate::{clock, fresh, master};

on_both_backends!(
    rows_round_trip_in_order_and_in_pages,
    a_batch_with_a_duplicate_seq_writes_nothing,
    first_seq_since_uses_record_times,
    auditor_writes_both_sinks_and_they_verify,
    edited_row_is_named,
    deleted_row_is_named,
    swapped_rows_are_named,
    truncated_table_under_a_checkpoint_is_named,
    removed_checkpoint_row_is_named,
    restart_on_a_new_connection_continues_the_chain,
    two_auditors_on_two_connections_write_one_chain,
    a_batch_that_conflicts_with_another_connection_is_re_linked,
    each_writer_s_file_verifies_and_names_tampering,
    database_behind_the_file_is_caught_up,
    export_since_streams_from_the_database,
    audit_key_comes_from_the_key_hierarchy,
);

const T0: i64 = 1_700_000_000;

fn signer() -> CheckpointSigner {
    CheckpointSigner::new(Signer::from_seed(&SecretArray::new([9; 32])))
}

fn verify_options() -> VerifyOptions {
    VerifyOptions::new(vec![signer().public_key()])
}

fn event(i: u64) -> AuditEvent {
    AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied)
        .actor(format!("user{i}"))
        .target("/admin")
        .client_ip("2001:db8::7".parse().unwrap())
        .request_id(format!("req-{i}"))
        .reason("missing role admin")
        .detail("route", "admin")
}

fn t(offset: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0 + offset).unwrap()
}

fn writer() -> WriterId {
    "it-host/00000000000000aa".parse().unwrap()
}

/// Records 1..=n sealed by hand (no auditor), ten seconds apart, as if all in one
/// writer's file.
fn chain(n: u64) -> Vec<AuditRecord> {
    let mut prev = ChainHash::GENESIS;
    (1..=n)
        .map(|seq| {
            let r = AuditRecord::seal(
                seq,
                t(seq as i64 * 10),
                &writer(),
                Some(seq - 1),
                event(seq),
                prev,
            );
            prev = r.hash;
            r
        })
        .collect()
}

fn rows(records: &[AuditRecord]) -> Vec<rampart_core::audit::AuditRow> {
    records.iter().map(|r| r.to_row().unwrap()).collect()
}

async fn rows_round_trip_in_order_and_in_pages(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    assert_eq!(store.last_audit_record().await.unwrap(), None);
    assert_eq!(store.last_audit_checkpoint().await.unwrap(), None);

    // Text that needs escaping in JSON and SQL, absent fields, and several details.
    let awkward = AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
        .actor("o'brien \"quoted\"\nnew line ✓ 🦀")
        .detail("a", "1")
        .detail("z", "{\"json\":true}");
    let mut records = chain(4);
    let fifth = AuditRecord::seal(5, t(50), &writer(), None, awkward, records[3].hash);
    records.push(fifth);
    let cp = signer().sign(5, records[4].hash, 0, t(51), &writer());
    store.append_audit(&rows(&records[..2]), &[]).await.unwrap();
    store
        .append_audit(&rows(&records[2..]), &[cp.to_row()])
        .await
        .unwrap();

    let last = store.last_audit_record().await.unwrap().unwrap();
    assert_eq!(AuditRecord::from_row(last).unwrap(), records[4]);
    let last_cp = store.last_audit_checkpoint().await.unwrap().unwrap();
    assert_eq!(Checkpoint::from_row(last_cp).unwrap(), cp);

    let page = store.audit_records_after(0, 2).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    let page = store.audit_records_after(2, 100).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
    let all: Vec<AuditRecord> = store
        .audit_records_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| AuditRecord::from_row(r).unwrap())
        .collect();
    assert_eq!(all, records);
    assert!(store.audit_records_after(5, 100).await.unwrap().is_empty());
    // The record continuing a file after a seq; record 5 was written without one.
    let next = store
        .audit_record_continuing_file(2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(AuditRecord::from_row(next).unwrap(), records[2]);
    assert_eq!(store.audit_record_continuing_file(4).await.unwrap(), None);
    assert_eq!(store.audit_checkpoints_after(0, 10).await.unwrap().len(), 1);
    assert!(
        store
            .audit_checkpoints_after(5, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Hand-made, but a valid log: the verifier agrees.
    assert!(matches!(
        verify_store(store, &verify_options()).await.unwrap(),
        Verification::Intact(_)
    ));
}

async fn a_batch_with_a_duplicate_seq_writes_nothing(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    let records = chain(4);
    store.append_audit(&rows(&records[..3]), &[]).await.unwrap();
    let batch = [records[3].to_row().unwrap(), records[1].to_row().unwrap()];
    let err = store.append_audit(&batch, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.last_audit_record().await.unwrap().unwrap().seq, 3);

    let cp = signer().sign(3, records[2].hash, 0, t(40), &writer());
    store.append_audit(&[], &[cp.to_row()]).await.unwrap();
    // A second checkpoint after the same one (a racing writer): the chain cannot fork.
    store.append_audit(&rows(&records[3..]), &[]).await.unwrap();
    let fork = signer().sign(4, records[3].hash, 0, t(41), &writer());
    let err = store.append_audit(&[], &[fork.to_row()]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let next = signer().sign(4, records[3].hash, 3, t(41), &writer());
    store.append_audit(&[], &[next.to_row()]).await.unwrap();
    let err = store
        .append_audit(&rows(&records[3..]), &[cp.to_row()])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.last_audit_record().await.unwrap().unwrap().seq, 4);
    // An empty batch is a no-op.
    store.append_audit(&[], &[]).await.unwrap();
}

async fn first_seq_since_uses_record_times(backend: Backend) {
    let db = fresh(backend).await;
    let store = db.store();
    assert_eq!(store.first_audit_seq_since(0).await.unwrap(), None);
    store.append_audit(&rows(&chain(3)), &[]).await.unwrap(); // times T0+10, +20, +30
    let us = |offset: i64| (T0 + offset) * 1_000_000;
    assert_eq!(store.first_audit_seq_since(us(0)).await.unwrap(), Some(1));
    assert_eq!(store.first_audit_seq_since(us(15)).await.unwrap(), Some(2));
    assert_eq!(store.first_audit_seq_since(us(30)).await.unwrap(), Some(3));
    assert_eq!(store.first_audit_seq_since(us(31)).await.unwrap(), None);
}

/// A log of `n` records written by the auditor to the database and a file, with a
/// checkpoint every 5 records and a final one.
struct Log {
    db: TestDb,
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: FakeClock,
}

impl Log {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            db: fresh(backend).await,
            path: dir.path().join("audit.jsonl"),
            _dir: dir,
            clock: clock(),
        }
    }

    async fn auditor(&self, store: Store) -> Auditor {
        self.auditor_with_file(store, self.path.clone()).await
    }

    async fn auditor_with_file(&self, store: Store, path: PathBuf) -> Auditor {
        Auditor::start(
            Arc::new(store),
            AuditOptions {
                database: true,
                path: Some(path),
                checkpoint_every: NonZeroU64::new(5).unwrap(),
                ..AuditOptions::default()
            },
            signer(),
            Arc::new(self.clock.clone()),
        )
        .await
        .unwrap()
    }

    async fn write(&self, store: Store, from: u64, to: u64) {
        let auditor = self.auditor(store).await;
        for i in from..=to {
            auditor.record(event(i)).await.unwrap();
            self.clock.advance(Duration::from_secs(1));
        }
        auditor.shutdown().await.unwrap();
    }

    async fn verify_both(&self) -> Verification {
        verify_sinks(self.db.store(), true, Some(&self.path), &verify_options())
            .await
            .unwrap()
    }

    async fn verify_store(&self) -> Verification {
        verify_store(self.db.store(), &verify_options())
            .await
            .unwrap()
    }

    async fn sql(&self, statements: &[&str]) {
        let raw = self.db.raw_pool().await.unwrap();
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(*statement))
                .execute(&raw)
                .await
                .unwrap();
        }
    }
}

async fn written(backend: Backend, n: u64) -> Log {
    let log = Log::new(backend).await;
    log.write(log.db.store().clone(), 1, n).await;
    log
}

fn finding(v: Verification) -> rampart_core::audit::Finding {
    match v {
        Verification::Broken(f) => f,
        Verification::Intact(r) => panic!("expected a finding, got intact: {r:?}"),
    }
}

async fn auditor_writes_both_sinks_and_they_verify(backend: Backend) {
    let log = written(backend, 12).await;
    let Verification::Intact(report) = log.verify_both().await else {
        panic!("not intact");
    };
    assert_eq!(
        (report.records, report.checkpoints, report.unsigned),
        (12, 3, 0)
    );
    assert_eq!(report.sources, [Source::File, Source::Database]);
    assert!(matches!(
        verify_file(&log.path, &verify_options()).await.unwrap(),
        Verification::Intact(_)
    ));
    let cps: Vec<i64> = log
        .db
        .store()
        .audit_checkpoints_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(cps, [5, 10, 12]);
}

async fn edited_row_is_named(backend: Backend) {
    let log = written(backend, 12).await;
    log.sql(&["UPDATE audit_records SET actor = 'admin' WHERE seq = 3"])
        .await;
    let f = finding(log.verify_store().await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::Database, 3, &Location::RecordRow(3))
    );
    assert_eq!(f.problem, Problem::Edited);
    let f = finding(log.verify_both().await);
    assert_eq!((f.source, f.seq), (Source::Database, 3));
}

async fn deleted_row_is_named(backend: Backend) {
    let log = written(backend, 12).await;
    log.sql(&["DELETE FROM audit_records WHERE seq = 3"]).await;
    let f = finding(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (3, &Location::RecordRow(4)));
    assert_eq!(
        f.problem,
        Problem::Gap {
            expected: 3,
            found: 4
        }
    );
}

async fn swapped_rows_are_named(backend: Backend) {
    let log = written(backend, 12).await;
    log.sql(&[
        "UPDATE audit_records SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_records SET seq = 3 WHERE seq = 4",
        "UPDATE audit_records SET seq = 4 WHERE seq = 1000",
    ])
    .await;
    let f = finding(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (3, &Location::RecordRow(3)));
    assert_eq!(f.problem, Problem::BrokenLink { previous: 2 });
}

async fn truncated_table_under_a_checkpoint_is_named(backend: Backend) {
    let log = written(backend, 12).await;
    log.sql(&["DELETE FROM audit_records WHERE seq > 8"]).await;
    let f = finding(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (9, &Location::CheckpointRow(10)));
    assert_eq!(
        f.problem,
        Problem::Truncated {
            last_record: 8,
            checkpoint: 10
        }
    );

    // Records and checkpoints cut together: the database alone is a shorter valid
    // log; the file names the cut.
    log.sql(&["DELETE FROM audit_checkpoints WHERE seq > 5"])
        .await;
    assert!(matches!(log.verify_store().await, Verification::Intact(_)));
    let f = finding(log.verify_both().await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::Database, 9, &Location::End)
    );
    assert_eq!(
        f.problem,
        Problem::ShorterThanOther {
            last_record: 8,
            other_last: 12
        }
    );
}

async fn removed_checkpoint_row_is_named(backend: Backend) {
    let log = written(backend, 12).await;
    log.sql(&["DELETE FROM audit_checkpoints WHERE seq = 5"])
        .await;
    let f = finding(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (5, &Location::CheckpointRow(10)));
    assert_eq!(
        f.problem,
        Problem::MissingCheckpoint {
            missing: 5,
            referenced_by: 10
        }
    );

    // Forged signature in the table.
    let log = written(backend, 12).await;
    log.sql(&[
        "UPDATE audit_checkpoints SET signature = replace(signature, substr(signature, 1, 1), \
         CASE WHEN substr(signature, 1, 1) = '0' THEN '1' ELSE '0' END) WHERE seq = 10",
    ])
    .await;
    let f = finding(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (10, &Location::CheckpointRow(10)));
    assert!(matches!(f.problem, Problem::BadSignature { .. }), "{f}");
}

async fn restart_on_a_new_connection_continues_the_chain(backend: Backend) {
    let log = written(backend, 3).await;
    // As another process (or a restart) would: its own pool on the same database.
    let second = Store::connect(log.db.options()).await.unwrap();
    log.write(second, 4, 7).await;
    let Verification::Intact(report) = log.verify_both().await else {
        panic!("not intact");
    };
    assert_eq!(report.records, 7);
    assert_eq!(report.last_checkpoint, Some(7));
}

/// Two replicas: two auditors on two connections to one database, each with its own
/// file, recording at the same time.
async fn two_auditors_on_two_connections_write_one_chain(backend: Backend) {
    let log = Log::new(backend).await;
    let second = Store::connect(log.db.options()).await.unwrap();
    let b_path = log._dir.path().join("b.jsonl");
    let a = Arc::new(log.auditor(log.db.store().clone()).await);
    let b = Arc::new(log.auditor_with_file(second, b_path.clone()).await);
    assert_ne!(a.writer(), b.writer());
    let mut tasks = Vec::new();
    for (auditor, base) in [(&a, 0u64), (&b, 1000)] {
        let auditor = Arc::clone(auditor);
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                auditor.record(event(base + i)).await.unwrap();
                if i % 5 == 0 {
                    auditor.flush().await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    let Verification::Intact(report) = log.verify_store().await else {
        panic!("the shared chain does not verify");
    };
    assert_eq!(report.records, 80);
    let rows = log.db.store().audit_records_after(0, 1000).await.unwrap();
    let mut actors: Vec<String> = rows.iter().map(|r| r.actor.clone().unwrap()).collect();
    actors.sort();
    actors.dedup();
    assert_eq!(actors.len(), 80, "an event was lost or written twice");
    assert_eq!(
        rows.iter()
            .filter(|r| r.writer == a.writer().as_str())
            .count(),
        40
    );
    // The checkpoint chain is one line.
    let mut previous = 0;
    for cp in log
        .db
        .store()
        .audit_checkpoints_after(0, 1000)
        .await
        .unwrap()
    {
        assert_eq!(cp.prev_seq, previous, "checkpoint {}", cp.seq);
        previous = cp.seq;
    }
    for path in [&log.path, &b_path] {
        let v = verify_sinks(log.db.store(), true, Some(path), &verify_options())
            .await
            .unwrap();
        let Verification::Intact(report) = v else {
            panic!("{} does not verify: {v:?}", path.display());
        };
        assert_eq!(report.file.unwrap().records, 40);
    }
}

async fn a_batch_that_conflicts_with_another_connection_is_re_linked(backend: Backend) {
    let log = Log::new(backend).await;
    let auditor = log.auditor(log.db.store().clone()).await;
    // Another replica, on its own connection, appends first.
    let other = Store::connect(log.db.options()).await.unwrap();
    let foreign = AuditRecord::seal(
        1,
        t(0),
        &"replica-2/00000000000000ff".parse().unwrap(),
        None,
        event(99),
        ChainHash::GENESIS,
    );
    other
        .append_audit(&[foreign.to_row().unwrap()], &[])
        .await
        .unwrap();
    auditor.record(event(1)).await.unwrap();
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().relinks, 1);
    auditor.shutdown().await.unwrap();
    let ours = AuditRecord::from_row(
        log.db
            .store()
            .audit_records_after(1, 1)
            .await
            .unwrap()
            .pop()
            .unwrap(),
    )
    .unwrap();
    assert_eq!((ours.seq, ours.prev_hash), (2, foreign.hash));
    assert!(matches!(log.verify_both().await, Verification::Intact(_)));
}

/// Each writer's file checks against the shared chain, and its tampering is named.
async fn each_writer_s_file_verifies_and_names_tampering(backend: Backend) {
    let log = Log::new(backend).await;
    let second = Store::connect(log.db.options()).await.unwrap();
    let b_path = log._dir.path().join("b.jsonl");
    let a = log.auditor(log.db.store().clone()).await;
    let b = log.auditor_with_file(second, b_path.clone()).await;
    for round in 0..3 {
        for i in 0..3 {
            a.record(event(round * 10 + i)).await.unwrap();
        }
        a.flush().await.unwrap();
        b.record(event(round * 10 + 5)).await.unwrap();
        b.flush().await.unwrap();
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(matches!(log.verify_both().await, Verification::Intact(_)));
    let options = verify_options();
    let check_b = || verify_sinks(log.db.store(), true, Some(&b_path), &options);
    assert!(matches!(check_b().await.unwrap(), Verification::Intact(_)));

    let lines: Vec<String> = std::fs::read_to_string(&log.path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let records: Vec<(usize, AuditRecord)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match Entry::parse_line(l.as_bytes()).unwrap() {
            Entry::Record(r) => Some((i, r)),
            Entry::Checkpoint(_) => None,
        })
        .collect();
    let set = |lines: &[String]| std::fs::write(&log.path, lines.join("\n") + "\n").unwrap();

    // Edited.
    let (i, victim) = records[4].clone();
    let mut edited = lines.clone();
    edited[i] = edited[i].replacen("missing role admin", "all fine", 1);
    set(&edited);
    let f = finding(log.verify_both().await);
    assert_eq!(
        (f.source, f.seq, f.problem),
        (Source::File, victim.seq, Problem::Edited)
    );

    // Deleted: the database holds it, continuing this file.
    let mut deleted = lines.clone();
    deleted.remove(i);
    set(&deleted);
    let f = finding(log.verify_both().await);
    assert_eq!(
        (f.source, f.seq, f.problem),
        (Source::File, victim.seq, Problem::MissingFromFile)
    );

    // Truncated: the database shows later records by this file's writer.
    let (cut, last_kept) = records[5].clone();
    set(&lines[..cut]);
    let f = finding(log.verify_both().await);
    let kept = records[4].1.seq;
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::File, last_kept.seq, &Location::End)
    );
    assert_eq!(
        f.problem,
        Problem::ShorterThanOther {
            last_record: kept,
            other_last: records.last().unwrap().1.seq
        }
    );
    // The other writer's file is untouched by all this.
    assert!(matches!(check_b().await.unwrap(), Verification::Intact(_)));
}

async fn database_behind_the_file_is_caught_up(backend: Backend) {
    let log = written(backend, 7).await;
    // As after a crash between the file append and the database commit.
    log.sql(&[
        "DELETE FROM audit_records WHERE seq > 5",
        "DELETE FROM audit_checkpoints WHERE seq > 5",
    ])
    .await;
    log.write(log.db.store().clone(), 8, 8).await;
    let Verification::Intact(report) = log.verify_both().await else {
        panic!("not intact");
    };
    assert_eq!(report.records, 8);
}

async fn export_since_streams_from_the_database(backend: Backend) {
    let log = written(backend, 12).await; // record i at T0 + i - 1
    let out_path = log._dir.path().join("export.jsonl");
    let mut out = tokio::fs::File::create(&out_path).await.unwrap();
    let summary = export_store(log.db.store(), t(4), &mut out).await.unwrap();
    assert_eq!((summary.first_seq, summary.last_seq), (Some(5), Some(12)));
    assert_eq!(summary.checkpoints, 3);
    let options = VerifyOptions {
        start: Start::Anywhere,
        ..verify_options()
    };
    let Verification::Intact(report) = verify_file(&out_path, &options).await.unwrap() else {
        panic!("export does not verify");
    };
    assert_eq!((report.first_seq, report.records), (Some(5), 8));
}

async fn audit_key_comes_from_the_key_hierarchy(backend: Backend) {
    let db = fresh(backend).await;
    let keys = DataKeys::initialize(db.store(), &master(), &clock())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auditor = Auditor::start(
        Arc::new(db.store().clone()),
        AuditOptions {
            path: Some(dir.path().join("audit.jsonl")),
            ..AuditOptions::default()
        },
        CheckpointSigner::from_data_keys(&keys),
        Arc::new(clock()),
    )
    .await
    .unwrap();
    auditor
        .record(AuditEvent::new(EventKind::InstanceInitialized, Outcome::Success).actor("system"))
        .await
        .unwrap();
    let public = auditor.public_key();
    auditor.shutdown().await.unwrap();

    let trusted = trusted_keys(db.store(), &keys).await.unwrap();
    assert_eq!(trusted, vec![public]);
    let options = VerifyOptions::new(trusted);
    assert!(matches!(
        verify_sinks(
            db.store(),
            true,
            Some(&dir.path().join("audit.jsonl")),
            &options
        )
        .await
        .unwrap(),
        Verification::Intact(_)
    ));
    // Another instance's key does not verify this log.
    let other = VerifyOptions::new(vec![signer().public_key()]);
    let Verification::Broken(f) = verify_store(db.store(), &other).await.unwrap() else {
        panic!("verified with the wrong key");
    };
    assert!(matches!(f.problem, Problem::UnknownKey { .. }));
}
