//! End-to-end tests of the audit log: the writer, recovery, every kind of tampering
//! the verifier must name, and export. Time is a [`FakeClock`]; synchronization is
//! [`Auditor::flush`] / [`Auditor::shutdown`] (or Tokio's paused time), never sleeps.

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rampart_crypto::SecretArray;
use rampart_crypto::signing::{PublicKey, Signer};
use time::OffsetDateTime;

use super::*;
use crate::clock::{Clock, FakeClock};
use crate::store::StoreError;

const T0: i64 = 1_750_000_000;

fn signer() -> CheckpointSigner {
    CheckpointSigner::new(Signer::from_seed(&SecretArray::new([7; 32])))
}

fn keys() -> Vec<PublicKey> {
    vec![signer().public_key()]
}

fn opts() -> VerifyOptions {
    VerifyOptions::new(keys())
}

fn event(i: u64) -> AuditEvent {
    AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
        .actor(format!("user{i}"))
        .client_ip("203.0.113.9".parse().unwrap())
        .request_id(format!("req-{i}"))
        .reason("wrong password")
        .detail("method", "password")
}

/// A test log: both sinks, a checkpoint every 5 records.
struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<MemoryAuditStore>,
    clock: FakeClock,
}

impl Log {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            path: dir.path().join("audit.jsonl"),
            _dir: dir,
            store: Arc::new(MemoryAuditStore::new()),
            clock: FakeClock::at_unix(T0),
        }
    }

    fn options(&self) -> AuditOptions {
        AuditOptions {
            database: true,
            path: Some(self.path.clone()),
            checkpoint_every: NonZeroU64::new(5).unwrap(),
            ..AuditOptions::default()
        }
    }

    async fn start_with(&self, options: AuditOptions) -> Result<Auditor, AuditError> {
        Auditor::start(
            self.store.clone(),
            options,
            signer(),
            Arc::new(self.clock.clone()),
        )
        .await
    }

    async fn start(&self) -> Auditor {
        self.start_with(self.options()).await.unwrap()
    }

    /// Writes `n` records (checkpoints at 5, 10, … and a final one) and shuts down.
    async fn write(&self, n: u64) {
        let auditor = self.start().await;
        for i in 1..=n {
            auditor.record(event(i)).await.unwrap();
            self.clock.advance(Duration::from_secs(1));
        }
        auditor.shutdown().await.unwrap();
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn entries(&self) -> Vec<Entry> {
        self.lines()
            .iter()
            .map(|l| Entry::parse_line(l.as_bytes()).unwrap())
            .collect()
    }

    fn set_lines(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&self.path, text).unwrap();
    }

    fn set_entries(&self, entries: &[Entry]) {
        let lines: Vec<String> = entries
            .iter()
            .map(|e| e.to_line().unwrap().trim_end().to_owned())
            .collect();
        self.set_lines(&lines);
    }

    async fn verify_file(&self) -> Verification {
        verify_file(&self.path, &opts()).await.unwrap()
    }

    async fn verify_store(&self) -> Verification {
        verify_store(self.store.as_ref(), &opts()).await.unwrap()
    }

    async fn verify_both(&self) -> Verification {
        verify_sinks(self.store.as_ref(), true, Some(&self.path), &opts())
            .await
            .unwrap()
    }

    fn tables<T>(&self, f: impl FnOnce(&mut memory::Tables) -> T) -> T {
        self.store.with_tables(f).unwrap()
    }
}

fn intact(v: Verification) -> VerifyReport {
    match v {
        Verification::Intact(report) => report,
        Verification::Broken(finding) => panic!("expected intact, got: {finding}"),
    }
}

fn broken(v: Verification) -> Finding {
    match v {
        Verification::Broken(finding) => finding,
        Verification::Intact(report) => panic!("expected a finding, got intact: {report:?}"),
    }
}

/// Re-links and re-hashes every record from `from_seq` on, as an attacker who can
/// edit the log (but not sign) would, leaving checkpoints alone.
fn rechain(entries: &mut [Entry], from_seq: u64) {
    let mut prev: Option<ChainHash> = None;
    for entry in entries.iter_mut() {
        if let Entry::Record(r) = entry {
            if r.seq >= from_seq {
                if let Some(p) = prev {
                    r.prev_hash = p;
                }
                r.hash = r.compute_hash();
            }
            prev = Some(r.hash);
        }
    }
}

/// Index of the line holding the record with `seq`.
fn record_line(entries: &[Entry], seq: u64) -> usize {
    entries
        .iter()
        .position(|e| matches!(e, Entry::Record(r) if r.seq == seq))
        .unwrap()
}

fn checkpoint_line(entries: &[Entry], seq: u64) -> usize {
    entries
        .iter()
        .position(|e| matches!(e, Entry::Checkpoint(c) if c.seq == seq))
        .unwrap()
}

// ---------------------------------------------------------------------------------
// Writing

#[tokio::test]
async fn records_are_chained_and_checkpointed_in_both_sinks() {
    let log = Log::new();
    log.write(12).await;

    let entries = log.entries();
    let shape: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Entry::Record(r) => format!("r{}", r.seq),
            Entry::Checkpoint(c) => format!("c{}<{}", c.seq, c.prev_seq),
        })
        .collect();
    assert_eq!(
        shape.join(" "),
        "r1 r2 r3 r4 r5 c5<0 r6 r7 r8 r9 r10 c10<5 r11 r12 c12<10"
    );
    let Entry::Record(first) = &entries[0] else {
        panic!()
    };
    assert_eq!(first.prev_hash, ChainHash::GENESIS);
    assert_eq!(first.kind, "auth.login.failed");
    assert_eq!(first.actor.as_deref(), Some("user1"));
    assert_eq!(first.time, OffsetDateTime::from_unix_timestamp(T0).unwrap());

    let (records, checkpoints) = log.tables(|t| {
        (
            t.records.len(),
            t.checkpoints.keys().copied().collect::<Vec<_>>(),
        )
    });
    assert_eq!(records, 12);
    assert_eq!(checkpoints, vec![5, 10, 12]);

    for v in [log.verify_file().await, log.verify_store().await] {
        let report = intact(v);
        assert_eq!(report.records, 12);
        assert_eq!(report.checkpoints, 3);
        assert_eq!(report.unsigned, 0);
        assert_eq!(report.head.unwrap().seq, 12);
    }
    let both = intact(log.verify_both().await);
    assert_eq!(both.sources, vec![Source::File, Source::Database]);
}

#[tokio::test]
async fn count_checkpoints_land_exactly_every_n_records_even_in_one_big_batch() {
    let log = Log::new();
    let auditor = log.start().await;
    // All queued before the writer runs: it sees one big batch and must cut it.
    for i in 1..=23 {
        auditor.record(event(i)).await.unwrap();
    }
    auditor.flush().await.unwrap();
    let seqs = log.tables(|t| t.checkpoints.keys().copied().collect::<Vec<_>>());
    assert_eq!(seqs, vec![5, 10, 15, 20]);
    auditor.shutdown().await.unwrap();
    let seqs = log.tables(|t| t.checkpoints.keys().copied().collect::<Vec<_>>());
    assert_eq!(seqs, vec![5, 10, 15, 20, 23]);
    intact(log.verify_both().await);
}

#[tokio::test]
async fn timed_checkpoint_follows_the_clock() {
    let log = Log::new();
    let auditor = log
        .start_with(AuditOptions {
            checkpoint_every: NonZeroU64::new(1000).unwrap(),
            ..log.options()
        })
        .await
        .unwrap();
    for i in 1..=3 {
        auditor.record(event(i)).await.unwrap();
    }
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().checkpoints_written, 0);

    log.clock.advance(Duration::from_secs(299));
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().checkpoints_written, 0);

    log.clock.advance(Duration::from_secs(1));
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().checkpoints_written, 1);
    let cp = log
        .tables(|t| t.checkpoints.values().next().cloned())
        .unwrap();
    assert_eq!(cp.seq, 3);
    assert_eq!(cp.time_us, (T0 + 300) * 1_000_000);

    // Nothing new since: no further checkpoint, however much time passes.
    log.clock.advance(Duration::from_secs(3600));
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().checkpoints_written, 1);
    auditor.shutdown().await.unwrap();
    assert_eq!(auditor.stats().checkpoints_written, 1);
}

#[tokio::test(start_paused = true)]
async fn timed_checkpoint_is_written_by_the_timer_without_further_events() {
    let log = Log::new();
    let auditor = log
        .start_with(AuditOptions {
            path: None,
            checkpoint_every: NonZeroU64::new(1000).unwrap(),
            tick: Duration::from_secs(1),
            ..log.options()
        })
        .await
        .unwrap();
    auditor.record(event(1)).await.unwrap();
    auditor.flush().await.unwrap();
    log.clock.advance(Duration::from_secs(300));
    // Paused Tokio time: each sleep lets the writer's ticker fire deterministically.
    let mut ticks = 0;
    while auditor.stats().checkpoints_written == 0 {
        ticks += 1;
        assert!(ticks <= 5, "the timer never wrote the checkpoint");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(log.tables(|t| t.checkpoints.len()), 1);
    auditor.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_flushes_the_queue_and_signs_a_final_checkpoint() {
    let log = Log::new();
    let auditor = log.start().await;
    for i in 1..=7 {
        auditor.record(event(i)).await.unwrap();
    }
    auditor.shutdown().await.unwrap();
    assert_eq!(log.tables(|t| t.records.len()), 7);
    assert_eq!(
        log.tables(|t| t.checkpoints.keys().copied().collect::<Vec<_>>()),
        vec![5, 7]
    );
    assert!(matches!(
        auditor.record(event(8)).await,
        Err(AuditError::Closed)
    ));
    assert!(matches!(auditor.flush().await, Err(AuditError::Closed)));
    auditor.shutdown().await.unwrap(); // idempotent
    intact(log.verify_both().await);
}

#[tokio::test]
async fn restart_continues_the_chain() {
    let log = Log::new();
    log.write(3).await;
    log.write(4).await;
    let report = intact(log.verify_both().await);
    assert_eq!(report.records, 7);
    let cps: Vec<(u64, u64)> = log
        .entries()
        .iter()
        .filter_map(|e| match e {
            Entry::Checkpoint(c) => Some((c.seq, c.prev_seq)),
            Entry::Record(_) => None,
        })
        .collect();
    // The count restarts at the last checkpoint (3): the next is due at 8, so the
    // second run's shutdown signs 7.
    assert_eq!(cps, vec![(3, 0), (7, 3)]);
}

#[tokio::test]
async fn database_only_and_file_against_database_verify_and_file_only_writing_is_refused() {
    let log = Log::new();
    log.write(6).await;
    // The file checked against the database from its first record on, and against
    // the whole database.
    let report = intact(
        verify_sinks(log.store.as_ref(), false, Some(&log.path), &opts())
            .await
            .unwrap(),
    );
    assert_eq!(report.sources, vec![Source::File]);
    assert_eq!(report.file.unwrap().records, 6);
    intact(log.verify_both().await);

    let db_only = Log::new();
    let auditor = db_only
        .start_with(AuditOptions {
            path: None,
            ..db_only.options()
        })
        .await
        .unwrap();
    auditor.record(event(1)).await.unwrap();
    auditor.shutdown().await.unwrap();
    assert!(!db_only.path.exists());
    intact(
        verify_sinks(db_only.store.as_ref(), true, None, &opts())
            .await
            .unwrap(),
    );

    // The chain lives in the database: records cannot be kept out of it.
    assert!(matches!(
        log.start_with(AuditOptions {
            database: false,
            ..log.options()
        })
        .await,
        Err(AuditError::DatabaseRequired)
    ));
    assert!(matches!(
        log.start_with(AuditOptions {
            database: false,
            path: None,
            ..log.options()
        })
        .await,
        Err(AuditError::NoSink)
    ));
}

#[tokio::test]
async fn oversized_events_are_bounded_not_refused() {
    let log = Log::new();
    let auditor = log.start().await;
    auditor
        .record(
            AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
                .actor("x".repeat(1 << 20)),
        )
        .await
        .unwrap();
    auditor.shutdown().await.unwrap();
    let Entry::Record(r) = &log.entries()[0] else {
        panic!()
    };
    assert_eq!(r.actor.as_ref().unwrap().len(), event::MAX_TEXT_LEN);
    assert_eq!(r.details[event::TRUNCATED_DETAIL], "true");
    intact(log.verify_both().await);
}

// ---------------------------------------------------------------------------------
// Back-pressure, retries, a second writer

/// A store whose writes can be made to fail.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryAuditStore,
    /// Appends to refuse before working again; `u32::MAX` means until cleared.
    failures: AtomicU32,
    /// Commit the next append, then report an error anyway (a lost acknowledgement).
    commit_then_fail: AtomicBool,
}

impl FlakyStore {
    fn injected() -> StoreError {
        StoreError::Unavailable {
            source: "injected failure".into(),
        }
    }
}

#[async_trait]
impl AuditStore for FlakyStore {
    async fn append_audit(
        &self,
        records: &[AuditRow],
        checkpoints: &[CheckpointRow],
    ) -> Result<(), StoreError> {
        if self.commit_then_fail.swap(false, Ordering::SeqCst) {
            self.inner.append_audit(records, checkpoints).await?;
            return Err(Self::injected());
        }
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            if left != u32::MAX {
                self.failures.store(left - 1, Ordering::SeqCst);
            }
            return Err(Self::injected());
        }
        self.inner.append_audit(records, checkpoints).await
    }

    async fn last_audit_record(&self) -> Result<Option<AuditRow>, StoreError> {
        self.inner.last_audit_record().await
    }

    async fn last_audit_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        self.inner.last_audit_checkpoint().await
    }

    async fn audit_records_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.inner.audit_records_after(after, limit).await
    }

    async fn audit_checkpoints_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        self.inner.audit_checkpoints_after(after, limit).await
    }

    async fn audit_record_continuing_file(
        &self,
        file_prev_seq: i64,
    ) -> Result<Option<AuditRow>, StoreError> {
        self.inner.audit_record_continuing_file(file_prev_seq).await
    }

    async fn first_audit_seq_since(&self, since_us: i64) -> Result<Option<i64>, StoreError> {
        self.inner.first_audit_seq_since(since_us).await
    }
}

async fn flaky_auditor(store: Arc<FlakyStore>, capacity: usize) -> Auditor {
    Auditor::start(
        store,
        AuditOptions {
            database: true,
            path: None,
            queue_capacity: NonZeroUsize::new(capacity).unwrap(),
            enqueue_timeout: Duration::from_secs(2),
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_millis(500),
            ..AuditOptions::default()
        },
        signer(),
        Arc::new(FakeClock::at_unix(T0)),
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn full_queue_applies_back_pressure_then_fails_closed_and_loses_nothing() {
    let store = Arc::new(FlakyStore::default());
    store.failures.store(u32::MAX, Ordering::SeqCst);
    let auditor = flaky_auditor(store.clone(), 4).await;

    // The writer takes the first event and is stuck retrying it; four more fill the
    // queue.
    auditor.record(event(1)).await.unwrap();
    tokio::task::yield_now().await;
    for i in 2..=5 {
        auditor.record(event(i)).await.unwrap();
    }
    assert_eq!(auditor.queue_depth(), 4);

    // The next one waits for space (paused time runs the writer's retries meanwhile)
    // and is refused after the timeout: the caller fails closed.
    let started = tokio::time::Instant::now();
    let refused = auditor.record(event(6)).await;
    assert!(
        matches!(refused, Err(AuditError::QueueFull { .. })),
        "{refused:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let stats = auditor.stats();
    assert_eq!(stats.queue_full, 1);
    assert!(stats.write_retries > 0);
    assert_eq!(stats.records_written, 0);
    assert_eq!(refused.unwrap_err().kind(), crate::ErrorKind::Unavailable);

    // The database recovers: everything accepted is written, nothing was dropped.
    store.failures.store(0, Ordering::SeqCst);
    auditor.record(event(6)).await.unwrap();
    auditor.shutdown().await.unwrap();
    let report = intact(verify_store(store.as_ref(), &opts()).await.unwrap());
    assert_eq!(report.records, 6);
}

#[tokio::test(start_paused = true)]
async fn record_waits_for_space_within_the_timeout() {
    let store = Arc::new(FlakyStore::default());
    store.failures.store(3, Ordering::SeqCst);
    let auditor = flaky_auditor(store.clone(), 1).await;
    auditor.record(event(1)).await.unwrap();
    tokio::task::yield_now().await;
    auditor.record(event(2)).await.unwrap(); // fills the queue
    // Waits while the writer retries (10 + 20 + 40 ms), then gets in.
    auditor.record(event(3)).await.unwrap();
    auditor.shutdown().await.unwrap();
    assert_eq!(auditor.stats().queue_full, 0);
    assert_eq!(
        intact(verify_store(store.as_ref(), &opts()).await.unwrap()).records,
        3
    );
}

#[tokio::test(start_paused = true)]
async fn failed_writes_are_retried_with_backoff_until_they_succeed() {
    let store = Arc::new(FlakyStore::default());
    store.failures.store(5, Ordering::SeqCst);
    let auditor = flaky_auditor(store.clone(), 100).await;
    for i in 1..=3 {
        auditor.record(event(i)).await.unwrap();
    }
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().write_retries, 5);
    assert_eq!(auditor.stats().records_written, 3);
    auditor.shutdown().await.unwrap();
    intact(verify_store(store.as_ref(), &opts()).await.unwrap());
}

/// `/dev/full` fails every write with `ENOSPC`: the append is retried, never skipped,
/// and the writer does not move on (so back-pressure builds) until it succeeds. The
/// database was written first, so the batch is already in the chain.
#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_failing_file_is_retried_and_holds_the_writer_back() {
    let store = Arc::new(MemoryAuditStore::new());
    let auditor = Auditor::start(
        store.clone(),
        AuditOptions {
            database: true,
            path: Some(PathBuf::from("/dev/full")),
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_secs(1),
            ..AuditOptions::default()
        },
        signer(),
        Arc::new(FakeClock::at_unix(T0)),
    )
    .await
    .unwrap();
    auditor.record(event(1)).await.unwrap();
    let mut waited = 0;
    while auditor.stats().write_retries < 5 {
        waited += 1;
        assert!(waited <= 100, "the file write was not retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = auditor.stats();
    assert_eq!(stats.records_written, 0);
    assert_eq!(store.with_tables(|t| t.records.len()).unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_commit_whose_acknowledgement_was_lost_is_not_written_twice() {
    let store = Arc::new(FlakyStore::default());
    let auditor = flaky_auditor(store.clone(), 100).await;
    store.commit_then_fail.store(true, Ordering::SeqCst);
    auditor.record(event(1)).await.unwrap();
    auditor.record(event(2)).await.unwrap();
    auditor.shutdown().await.unwrap();
    let report = intact(verify_store(store.as_ref(), &opts()).await.unwrap());
    assert_eq!(report.records, 2);
}

/// A record appended by another process (another writer id), as a replica would.
fn foreign(seq: u64, prev: ChainHash) -> AuditRecord {
    AuditRecord::seal(
        seq,
        OffsetDateTime::from_unix_timestamp(T0).unwrap(),
        &"replica-2/00000000000000ff".parse().unwrap(),
        None,
        event(99),
        prev,
    )
}

#[tokio::test]
async fn a_batch_that_conflicts_with_another_writer_is_re_linked() {
    let log = Log::new();
    let auditor = log.start().await;
    // Another process appends seq 1 after this writer read the (empty) head.
    let other = foreign(1, ChainHash::GENESIS);
    log.store
        .append_audit(&[other.to_row().unwrap()], &[])
        .await
        .unwrap();
    auditor.record(event(1)).await.unwrap();
    auditor.record(event(2)).await.unwrap();
    auditor.flush().await.unwrap();
    let stats = auditor.stats();
    assert_eq!(stats.relinks, 1);
    assert_eq!((stats.records_written, stats.head_seq), (2, 3));
    auditor.shutdown().await.unwrap();

    let records = log.tables(|t| t.records.clone());
    let ours = AuditRecord::from_row(records[&2].clone()).unwrap();
    assert_eq!(ours.prev_hash, other.hash);
    assert_eq!(&ours.writer, auditor.writer());
    assert_eq!(ours.actor.as_deref(), Some("user1"));
    // The file holds this process's records only, at their final seqs.
    let seqs: Vec<u64> = log
        .entries()
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some(r.seq),
            Entry::Checkpoint(_) => None,
        })
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    intact(log.verify_store().await);
    let report = intact(log.verify_both().await);
    assert_eq!((report.records, report.file.unwrap().records), (3, 2));
}

#[tokio::test]
async fn a_head_that_does_not_verify_stops_the_writer_and_auditing_fails_closed() {
    let log = Log::new();
    let auditor = log
        .start_with(AuditOptions {
            path: None,
            ..log.options()
        })
        .await
        .unwrap();
    // Another "writer" appends an edited record: the head no longer verifies.
    let mut row = foreign(1, ChainHash::GENESIS).to_row().unwrap();
    row.actor = Some("someone else".into());
    log.store.append_audit(&[row], &[]).await.unwrap();
    auditor.record(event(1)).await.unwrap();
    assert!(matches!(auditor.flush().await, Err(AuditError::Closed)));
    assert!(matches!(
        auditor.record(event(2)).await,
        Err(AuditError::Closed)
    ));
    assert!(matches!(
        auditor.shutdown().await,
        Err(AuditError::CorruptDatabase { .. })
    ));
    // And no writer starts on it.
    assert!(matches!(
        log.start_with(log.options()).await,
        Err(AuditError::CorruptDatabase { .. })
    ));
}

// ---------------------------------------------------------------------------------
// Several writers on one chain

impl Log {
    /// Another process's auditor on the same database, with its own file.
    async fn start_writer(&self, file: &str) -> Auditor {
        self.start_with(AuditOptions {
            path: Some(self._dir.path().join(file)),
            ..self.options()
        })
        .await
        .unwrap()
    }

    fn file(&self, file: &str) -> PathBuf {
        self._dir.path().join(file)
    }

    async fn verify_file_copy(&self, file: &str) -> Verification {
        verify_sinks(self.store.as_ref(), true, Some(&self.file(file)), &opts())
            .await
            .unwrap()
    }
}

fn file_entries(path: &Path) -> Vec<Entry> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| Entry::parse_line(l.as_bytes()).unwrap())
        .collect()
}

fn write_entries(path: &Path, entries: &[Entry]) {
    let text: String = entries.iter().map(|e| e.to_line().unwrap()).collect();
    std::fs::write(path, text).unwrap();
}

/// Checkpoint `prev_seq`s form one line: each names the one before it.
fn assert_checkpoints_are_linear(tables: &memory::Tables) {
    let mut previous = 0;
    for (seq, cp) in &tables.checkpoints {
        assert_eq!(cp.prev_seq, previous, "checkpoint {seq}");
        previous = *seq;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_recording_concurrently_land_every_event_once_in_one_chain() {
    let log = Log::new();
    let a = Arc::new(log.start_writer("a.jsonl").await);
    let b = Arc::new(log.start_writer("b.jsonl").await);
    let mut tasks = Vec::new();
    for (auditor, base) in [(&a, 0u64), (&b, 1000)] {
        for part in 0..2u64 {
            let auditor = Arc::clone(auditor);
            tasks.push(tokio::spawn(async move {
                for i in 0..60 {
                    auditor.record(event(base + part * 100 + i)).await.unwrap();
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    let report = intact(log.verify_store().await);
    assert_eq!(report.records, 240);
    let tables = log.tables(|t| t.clone());
    let mut actors: Vec<String> = tables
        .records
        .values()
        .map(|r| r.actor.clone().unwrap())
        .collect();
    actors.sort();
    actors.dedup();
    assert_eq!(actors.len(), 240, "an event was lost or written twice");
    assert_checkpoints_are_linear(&tables);
    // No more than 5 records (N) between two checkpoints, whoever crossed the count,
    // and the last record is signed. (A writer's shutdown checkpoint may land between
    // count boundaries; the count then restarts from it.)
    let seqs: Vec<i64> = tables.checkpoints.keys().copied().collect();
    assert!(
        seqs.windows(2).all(|w| w[1] - w[0] <= 5) && seqs.first().is_some_and(|s| *s <= 5),
        "checkpoints more than 5 records apart: {seqs:?}"
    );
    assert_eq!(seqs.last(), Some(&240), "{seqs:?}");

    for (file, auditor) in [("a.jsonl", &a), ("b.jsonl", &b)] {
        let report = intact(log.verify_file_copy(file).await);
        let copy = report.file.unwrap();
        assert_eq!(copy.records, 120);
        assert!(file_entries(&log.file(file)).iter().all(|e| match e {
            Entry::Record(r) => &r.writer == auditor.writer(),
            Entry::Checkpoint(c) => &c.writer == auditor.writer(),
        }));
    }
}

/// Two writers taking turns, each appending on a head the other has moved: A writes
/// 4, B 2, …
async fn interleaved() -> (Log, Auditor, Auditor) {
    let log = Log::new();
    let a = log.start_writer("a.jsonl").await;
    let b = log.start_writer("b.jsonl").await;
    for round in 0..4 {
        for i in 0..4 {
            a.record(event(round * 10 + i)).await.unwrap();
        }
        a.flush().await.unwrap();
        for i in 0..2 {
            b.record(event(round * 10 + 5 + i)).await.unwrap();
        }
        b.flush().await.unwrap();
    }
    (log, a, b)
}

#[tokio::test]
async fn each_writer_s_file_is_verified_against_the_shared_chain() {
    let (log, a, b) = interleaved().await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(a.stats().relinks + b.stats().relinks > 0);
    intact(log.verify_store().await);
    let a_records: Vec<(u64, Option<u64>)> = file_entries(&log.file("a.jsonl"))
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some((r.seq, r.file_prev_seq)),
            Entry::Checkpoint(_) => None,
        })
        .collect();
    assert_eq!(a_records.len(), 16);
    assert_eq!(a_records[0], (1, Some(0)));
    for pair in a_records.windows(2) {
        assert_eq!(pair[1].1, Some(pair[0].0));
    }
    assert!(a_records.windows(2).any(|p| p[1].0 > p[0].0 + 1));
    for file in ["a.jsonl", "b.jsonl"] {
        intact(log.verify_file_copy(file).await);
        let only_file = verify_sinks(log.store.as_ref(), false, Some(&log.file(file)), &opts())
            .await
            .unwrap();
        assert_eq!(intact(only_file).sources, vec![Source::File]);
    }
}

#[tokio::test]
async fn edited_removed_inserted_and_cut_lines_of_a_writer_s_file_are_named() {
    let (log, a, b) = interleaved().await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let path = log.file("a.jsonl");
    let original = file_entries(&path);
    let seqs: Vec<u64> = original
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some(r.seq),
            Entry::Checkpoint(_) => None,
        })
        .collect();
    let line_of = |entries: &[Entry], seq: u64| record_line(entries, seq) as u64 + 1;
    let victim = seqs[5];

    // An edited line.
    let Entry::Record(r) = &original[record_line(&original, victim)] else {
        panic!()
    };
    let actor = format!("\"{}\"", r.actor.as_deref().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen(&actor, "\"admin\"", 1)).unwrap();
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!((f.source, f.seq), (Source::File, victim));
    assert_eq!(f.problem, Problem::Edited);

    // An edited line with its hash recomputed: the database copy disagrees.
    let mut entries = original.clone();
    let i = record_line(&entries, victim);
    if let Entry::Record(r) = &mut entries[i] {
        r.reason = Some("nothing to see".into());
        r.hash = r.compute_hash();
    }
    write_entries(&path, &entries);
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!(
        (f.seq, &f.location),
        (victim, &Location::Line(i as u64 + 1))
    );
    assert_eq!(
        f.problem,
        Problem::Diverged {
            other: Location::RecordRow(victim as i64)
        }
    );

    // A removed line: the database holds it, continuing this file.
    let mut entries = original.clone();
    entries.remove(record_line(&entries, victim));
    write_entries(&path, &entries);
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (
            Source::File,
            victim,
            &Location::Line(line_of(&entries, seqs[6]))
        )
    );
    assert_eq!(f.problem, Problem::MissingFromFile);

    // Another writer's (genuine) record inserted: it does not continue this file.
    let mut entries = original.clone();
    let from_b = file_entries(&log.file("b.jsonl"))
        .into_iter()
        .find(|e| matches!(e, Entry::Record(r) if r.seq > seqs[3] && r.seq < seqs[4]))
        .unwrap();
    let inserted = from_b.seq();
    entries.insert(record_line(&entries, seqs[4]), from_b.clone());
    write_entries(&path, &entries);
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!(
        (f.seq, &f.location),
        (inserted, &Location::Line(line_of(&entries, inserted)))
    );
    let Entry::Record(from_b) = from_b else {
        panic!()
    };
    assert_eq!(
        f.problem,
        Problem::FileLinkBroken {
            claimed: from_b.file_prev_seq,
            previous: seqs[3]
        }
    );

    // Cut after a record that another of this writer's records follows: the database
    // shows later records by this file's writer (or continuing it).
    let cut = (0..original.len() - 1)
        .find(|&i| {
            matches!(original[i], Entry::Record(_))
                && matches!(original[i + 1], Entry::Record(_))
                && original[i].seq() > seqs[8]
        })
        .unwrap();
    write_entries(&path, &original[..=cut]);
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::File, original[cut + 1].seq(), &Location::End)
    );
    assert_eq!(
        f.problem,
        Problem::ShorterThanOther {
            last_record: original[cut].seq(),
            other_last: *seqs.last().unwrap()
        }
    );

    // A checkpoint this writer signed, removed.
    let mut entries = original.clone();
    let (i, seq) = entries
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            Entry::Checkpoint(c) if i + 1 < original.len() => Some((i, c.seq)),
            _ => None,
        })
        .expect("writer A signed a checkpoint");
    entries.remove(i);
    write_entries(&path, &entries);
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!((f.source, f.seq), (Source::File, seq));
    assert_eq!(
        f.problem,
        Problem::CheckpointMissingHere { checkpoint: seq }
    );

    // Restored, it verifies again; and a record edited in the database is named there.
    write_entries(&path, &original);
    intact(log.verify_file_copy("a.jsonl").await);
    log.tables(|t| {
        t.records
            .get_mut(&(victim as i64))
            .map(|r| r.outcome = "success".into())
    });
    let f = broken(log.verify_file_copy("a.jsonl").await);
    assert_eq!(
        (f.source, f.seq, f.problem),
        (Source::Database, victim, Problem::Edited)
    );
}

#[tokio::test]
async fn a_process_whose_file_is_held_writes_to_the_database_until_it_is_released() {
    let log = Log::new();
    let server = log.start_writer("shared.jsonl").await;
    // A maintenance command with the same configuration, while the server runs.
    let command = log.start_writer("shared.jsonl").await;
    server.record(event(1)).await.unwrap();
    server.flush().await.unwrap();
    command.record(event(2)).await.unwrap();
    command.flush().await.unwrap();
    server.record(event(3)).await.unwrap();
    server.shutdown().await.unwrap();
    // The server is gone: the command takes the file with its next batch.
    command.record(event(4)).await.unwrap();
    command.shutdown().await.unwrap();

    intact(log.verify_store().await);
    let entries = file_entries(&log.file("shared.jsonl"));
    let records: Vec<(u64, Option<u64>, bool)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some((r.seq, r.file_prev_seq, &r.writer == server.writer())),
            Entry::Checkpoint(_) => None,
        })
        .collect();
    // Record 2 went to the database only; 4 continues the file after the server's 3.
    assert_eq!(
        records,
        vec![(1, Some(0), true), (3, Some(1), true), (4, Some(3), false)]
    );
    let report = intact(log.verify_file_copy("shared.jsonl").await);
    assert_eq!(report.file.unwrap().records, 3);
}

#[tokio::test]
async fn racing_checkpoints_cannot_fork_the_checkpoint_chain() {
    let store = MemoryAuditStore::new();
    let w: WriterId = "w/1".parse().unwrap();
    let t = OffsetDateTime::from_unix_timestamp(T0).unwrap();
    let r1 = AuditRecord::seal(1, t, &w, None, event(1), ChainHash::GENESIS);
    let r2 = AuditRecord::seal(2, t, &w, None, event(2), r1.hash);
    store
        .append_audit(&[r1.to_row().unwrap(), r2.to_row().unwrap()], &[])
        .await
        .unwrap();
    // Two writers saw no checkpoint yet; each signs its own head.
    let first = signer().sign(1, r1.hash, 0, t, &w);
    let second = signer().sign(2, r2.hash, 0, t, &w);
    store.append_audit(&[], &[first.to_row()]).await.unwrap();
    assert!(matches!(
        store.append_audit(&[], &[second.to_row()]).await,
        Err(StoreError::Conflict { .. })
    ));
    let relinked = signer().sign(2, r2.hash, 1, t, &w);
    store.append_audit(&[], &[relinked.to_row()]).await.unwrap();
    intact(verify_store(&store, &opts()).await.unwrap());
}

// ---------------------------------------------------------------------------------
// Recovery at start

#[tokio::test]
async fn database_behind_the_file_is_caught_up_at_start() {
    let log = Log::new();
    log.write(7).await; // r1..r5 c5 r6 r7 c7
    // A crash after the file append, before the database commit of the last batch.
    log.tables(|t| {
        t.records.remove(&7);
        t.records.remove(&6);
        t.checkpoints.remove(&7);
    });
    broken(log.verify_both().await);
    log.write(1).await;
    let report = intact(log.verify_both().await);
    assert_eq!(report.records, 8);
    assert_eq!(log.tables(|t| t.records.len()), 8);
}

#[tokio::test]
async fn file_behind_the_database_is_caught_up_at_start() {
    let log = Log::new();
    log.write(7).await;
    // The file restored from a backup taken after record 4.
    let entries = log.entries();
    log.set_entries(&entries[..record_line(&entries, 4) + 1]);
    log.write(1).await;
    let report = intact(log.verify_both().await);
    assert_eq!(report.records, 8);
}

#[tokio::test]
async fn a_file_added_to_an_existing_log_starts_with_this_process_s_records() {
    let log = Log::new();
    log.write_db_only(6).await;
    assert!(!log.path.exists());
    log.write(1).await;
    let Entry::Record(first) = &log.entries()[0] else {
        panic!()
    };
    assert_eq!((first.seq, first.file_prev_seq), (7, Some(0)));
    let report = intact(log.verify_both().await);
    assert_eq!((report.records, report.file.unwrap().records), (7, 1));
}

impl Log {
    async fn write_db_only(&self, n: u64) {
        let auditor = self
            .start_with(AuditOptions {
                path: None,
                ..self.options()
            })
            .await
            .unwrap();
        for i in 1..=n {
            auditor.record(event(i)).await.unwrap();
        }
        auditor.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_checkpoint_lost_between_the_sinks_is_copied() {
    let log = Log::new();
    log.write(7).await;
    log.tables(|t| t.checkpoints.remove(&7));
    log.write(1).await;
    intact(log.verify_both().await);
}

#[tokio::test]
async fn an_interrupted_write_in_the_file_is_cut_and_restored_from_the_database() {
    let log = Log::new();
    log.write(3).await;
    let mut text = std::fs::read_to_string(&log.path).unwrap();
    let last = log.lines().last().unwrap().clone();
    text.truncate(text.len() - last.len() / 2 - 1);
    std::fs::write(&log.path, text).unwrap();
    log.write(1).await;
    assert_eq!(intact(log.verify_both().await).records, 4);
}

#[tokio::test]
async fn sinks_that_disagree_are_refused_at_start() {
    let log = Log::new();
    log.write(7).await;
    // Record 7 rewritten in the file (chain recomputed, so the file parses and
    // links): the two copies now differ at the same seq.
    let mut entries = log.entries();
    let i = record_line(&entries, 7);
    if let Entry::Record(r) = &mut entries[i] {
        r.actor = Some("mallory".into());
    }
    rechain(&mut entries, 7);
    log.set_entries(&entries);
    let err = log.start_with(log.options()).await.unwrap_err();
    assert!(matches!(err, AuditError::SinksDisagree { .. }), "{err}");
}

#[tokio::test]
async fn a_file_ahead_of_the_database_is_copied_only_if_it_directly_extends_it() {
    // The database lost its last batch (restored from an older backup) and the file
    // lost a line: what is left in the file does not continue the database's head.
    let log = Log::new();
    log.write(7).await; // r1..r5 c5 r6 r7 c7
    log.tables(|t| {
        t.records.remove(&7);
        t.records.remove(&6);
        t.checkpoints.remove(&7);
    });
    let mut entries = log.entries();
    entries.remove(record_line(&entries, 6));
    log.set_entries(&entries);
    let err = log.start_with(log.options()).await.unwrap_err();
    assert!(matches!(err, AuditError::SinksDisagree { .. }), "{err}");
    assert!(err.to_string().contains("directly extend"), "{err}");

    // A forged line that extends the head but whose checkpoint nobody trusted signed.
    let log = Log::new();
    log.write(5).await; // r1..r5 c5
    let mut entries = log.entries();
    let Entry::Record(r5) = entries[4].clone() else {
        panic!()
    };
    let forged = AuditRecord::seal(6, r5.time, &r5.writer, Some(5), event(6), r5.hash);
    let attacker = CheckpointSigner::new(Signer::from_seed(&SecretArray::new([66; 32])));
    let cp = attacker.sign(6, forged.hash, 5, r5.time, &r5.writer);
    entries.extend([Entry::Record(forged), Entry::Checkpoint(cp)]);
    log.set_entries(&entries);
    let err = log.start_with(log.options()).await.unwrap_err();
    assert!(matches!(err, AuditError::SinksDisagree { .. }), "{err}");
    assert_eq!(log.tables(|t| t.records.len()), 5);
}

#[tokio::test]
async fn a_cut_file_is_restored_from_the_database_when_taken() {
    let log = Log::new();
    log.write(12).await;
    // Cut after record 8: records 9..12 and checkpoints 10 and 12 are gone.
    let entries = log.entries();
    log.set_entries(&entries[..record_line(&entries, 8) + 1]);
    broken(log.verify_both().await);
    log.write(1).await;
    let report = intact(log.verify_both().await);
    assert_eq!(report.file.unwrap().records, 13);
}

// ---------------------------------------------------------------------------------
// Tampering with the file

#[tokio::test]
async fn edited_field_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut lines = log.lines();
    lines[2] = lines[2].replace("user3", "admin");
    log.set_lines(&lines);
    let f = broken(log.verify_file().await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::File, 3, &Location::Line(3))
    );
    assert_eq!(f.problem, Problem::Edited);
    assert!(f.to_string().contains("edited"), "{f}");
}

#[tokio::test]
async fn deleted_record_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut lines = log.lines();
    lines.remove(2);
    log.set_lines(&lines);
    let f = broken(log.verify_file().await);
    assert_eq!((f.seq, &f.location), (3, &Location::Line(3)));
    assert_eq!(
        f.problem,
        Problem::Gap {
            expected: 3,
            found: 4
        }
    );
}

#[tokio::test]
async fn swapped_records_are_named() {
    let log = Log::new();
    log.write(12).await;
    let original = log.entries();
    let mut lines = log.lines();
    lines.swap(2, 3);
    log.set_lines(&lines);
    let f = broken(log.verify_file().await);
    assert_eq!((f.seq, &f.location), (3, &Location::Line(3)));
    assert!(matches!(
        f.problem,
        Problem::Gap {
            expected: 3,
            found: 4
        }
    ));

    // Swapped *and* renumbered: the links break.
    let mut entries = original;
    entries.swap(2, 3);
    for (i, seq) in [(2usize, 3u64), (3, 4)] {
        if let Entry::Record(r) = &mut entries[i] {
            r.seq = seq;
        }
    }
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    assert_eq!((f.seq, &f.location), (3, &Location::Line(3)));
    assert_eq!(f.problem, Problem::BrokenLink { previous: 2 });
}

#[tokio::test]
async fn inserted_record_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    // A well-formed forgery: correct seq, prev_hash and hash for its place.
    let Entry::Record(r3) = entries[2].clone() else {
        panic!()
    };
    let forged = AuditRecord::seal(
        4,
        r3.time,
        &r3.writer,
        Some(3),
        event(4).actor("nobody"),
        r3.hash,
    );
    entries.insert(3, Entry::Record(forged));
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    // The genuine record 4, now on line 5, is where the chain visibly breaks.
    assert_eq!((f.seq, &f.location), (4, &Location::Line(5)));
    assert_eq!(
        f.problem,
        Problem::OutOfOrder {
            expected: 5,
            found: 4
        }
    );
}

#[tokio::test]
async fn truncated_tail_covered_by_a_checkpoint_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    // Records 9 and 10 removed; the checkpoint for 10 is left.
    let nine = record_line(&entries, 9);
    entries.drain(nine..nine + 2);
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    assert_eq!(f.seq, 9);
    assert_eq!(f.location, Location::Line(nine as u64 + 1));
    assert_eq!(
        f.problem,
        Problem::Truncated {
            last_record: 8,
            checkpoint: 10
        }
    );
}

#[tokio::test]
async fn truncation_after_the_last_checkpoint_needs_the_other_copy() {
    let log = Log::new();
    log.write(12).await;
    let entries = log.entries();
    log.set_entries(&entries[..record_line(&entries, 8) + 1]);

    // The file alone cannot tell: it is a valid, shorter log (the documented limit),
    // though the report shows the unsigned tail.
    let report = intact(log.verify_file().await);
    assert_eq!((report.records, report.unsigned), (8, 3));

    // Against the database it is named.
    let f = broken(log.verify_both().await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::File, 9, &Location::End)
    );
    assert_eq!(
        f.problem,
        Problem::ShorterThanOther {
            last_record: 8,
            other_last: 12
        }
    );
}

#[tokio::test]
async fn truncated_file_is_named_against_the_database_in_file_only_mode() {
    let log = Log::new();
    log.write(12).await;
    let entries = log.entries();
    log.set_entries(&entries[..record_line(&entries, 8) + 1]);
    let f = broken(
        verify_sinks(log.store.as_ref(), false, Some(&log.path), &opts())
            .await
            .unwrap(),
    );
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::File, 9, &Location::End)
    );
    assert_eq!(
        f.problem,
        Problem::ShorterThanOther {
            last_record: 8,
            other_last: 12
        }
    );
}

#[tokio::test]
async fn removed_checkpoint_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    let five = checkpoint_line(&entries, 5);
    entries.remove(five);
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    let ten = checkpoint_line(&entries, 10);
    assert_eq!((f.seq, &f.location), (5, &Location::Line(ten as u64 + 1)));
    assert_eq!(
        f.problem,
        Problem::MissingCheckpoint {
            missing: 5,
            referenced_by: 10
        }
    );

    // The last checkpoint removed: nothing in the file refers to it, the database
    // copy does.
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    entries.pop();
    log.set_entries(&entries);
    intact(log.verify_file().await);
    let f = broken(log.verify_both().await);
    assert_eq!((f.source, f.seq), (Source::File, 12));
    assert_eq!(f.problem, Problem::CheckpointMissingHere { checkpoint: 12 });
}

#[tokio::test]
async fn forged_checkpoint_signature_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    let ten = checkpoint_line(&entries, 10);
    if let Entry::Checkpoint(c) = &mut entries[ten] {
        let mut sig = c.signature.to_bytes();
        sig[0] ^= 1;
        c.signature = rampart_crypto::signing::Signature::from_bytes(sig);
    }
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    assert_eq!((f.seq, &f.location), (10, &Location::Line(ten as u64 + 1)));
    assert!(matches!(f.problem, Problem::BadSignature { .. }));

    // A checkpoint re-signed by the attacker's own key is not trusted either.
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    let attacker = CheckpointSigner::new(Signer::from_seed(&SecretArray::new([66; 32])));
    let five = checkpoint_line(&entries, 5);
    if let Entry::Checkpoint(c) = &entries[five] {
        entries[five] =
            Entry::Checkpoint(attacker.sign(c.seq, c.hash, c.prev_seq, c.time, &c.writer));
    }
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    assert_eq!(f.seq, 5);
    assert_eq!(
        f.problem,
        Problem::UnknownKey {
            key_id: attacker.key_id().to_owned()
        }
    );
}

#[tokio::test]
async fn chain_rewritten_under_a_checkpoint_is_named() {
    let log = Log::new();
    log.write(12).await;
    let mut entries = log.entries();
    let seven = record_line(&entries, 7);
    if let Entry::Record(r) = &mut entries[seven] {
        r.outcome = Outcome::Success;
    }
    rechain(&mut entries, 7);
    log.set_entries(&entries);
    let f = broken(log.verify_file().await);
    assert_eq!(f.seq, 10);
    assert_eq!(
        f.problem,
        Problem::RewrittenUnderCheckpoint {
            checkpoint: 10,
            previous: 5
        }
    );
}

#[tokio::test]
async fn wrong_public_key_is_named() {
    let log = Log::new();
    log.write(12).await;
    let stranger = Signer::from_seed(&SecretArray::new([1; 32])).public_key();
    let v = verify_file(&log.path, &VerifyOptions::new(vec![stranger]))
        .await
        .unwrap();
    let f = broken(v);
    assert_eq!((f.seq, &f.location), (5, &Location::Line(6)));
    assert_eq!(
        f.problem,
        Problem::UnknownKey {
            key_id: signer().key_id().to_owned()
        }
    );
    // The right key given as hex (`--public-key`) verifies.
    let hex = signer().public_key().to_hex();
    let key = PublicKey::from_hex(&hex).unwrap();
    intact(
        verify_file(&log.path, &VerifyOptions::new(vec![key]))
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn unreadable_and_incomplete_lines_are_named() {
    let log = Log::new();
    log.write(4).await;
    let mut lines = log.lines();
    lines[1] = lines[1].replacen("\"seq\":2,", "\"seq\":2,\"extra\":1,", 1);
    log.set_lines(&lines);
    let f = broken(log.verify_file().await);
    assert_eq!((f.seq, &f.location), (2, &Location::Line(2)));
    assert!(matches!(f.problem, Problem::Malformed(_)));

    let log = Log::new();
    log.write(4).await;
    let mut text = std::fs::read_to_string(&log.path).unwrap();
    text.truncate(text.len() - 10);
    std::fs::write(&log.path, text).unwrap();
    let f = broken(log.verify_file().await);
    assert_eq!(f.problem, Problem::IncompleteLastLine);
}

#[tokio::test]
async fn sinks_that_diverge_after_the_last_checkpoint_are_named() {
    let log = Log::new();
    let auditor = log.start().await;
    for i in 1..=7 {
        auditor.record(event(i)).await.unwrap();
    }
    // No shutdown: records 6 and 7 are not yet signed.
    auditor.flush().await.unwrap();
    let mut entries = log.entries();
    let seven = record_line(&entries, 7);
    if let Entry::Record(r) = &mut entries[seven] {
        r.reason = Some("nothing to see".into());
    }
    rechain(&mut entries, 7);
    log.set_entries(&entries);
    // The file alone is a valid log; the database copy disagrees.
    intact(log.verify_file().await);
    let f = broken(log.verify_both().await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::File, 7, &Location::Line(seven as u64 + 1))
    );
    assert_eq!(
        f.problem,
        Problem::Diverged {
            other: Location::RecordRow(7)
        }
    );
}

// ---------------------------------------------------------------------------------
// Tampering with the database

#[tokio::test]
async fn edited_deleted_and_swapped_rows_are_named() {
    let log = Log::new();
    log.write(12).await;
    log.tables(|t| {
        if let Some(r) = t.records.get_mut(&3) {
            r.actor = Some("admin".into());
        }
    });
    let f = broken(log.verify_store().await);
    assert_eq!(
        (f.source, f.seq, &f.location),
        (Source::Database, 3, &Location::RecordRow(3))
    );
    assert_eq!(f.problem, Problem::Edited);
    // The cross-check reports the same first bad record.
    assert_eq!(
        broken(log.verify_both().await).location,
        Location::RecordRow(3)
    );

    let log = Log::new();
    log.write(12).await;
    log.tables(|t| t.records.remove(&3));
    let f = broken(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (3, &Location::RecordRow(4)));
    assert_eq!(
        f.problem,
        Problem::Gap {
            expected: 3,
            found: 4
        }
    );

    let log = Log::new();
    log.write(12).await;
    log.tables(|t| {
        let (Some(mut a), Some(mut b)) = (t.records.get(&3).cloned(), t.records.get(&4).cloned())
        else {
            panic!()
        };
        std::mem::swap(&mut a.seq, &mut b.seq);
        t.records.insert(a.seq, a);
        t.records.insert(b.seq, b);
    });
    let f = broken(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (3, &Location::RecordRow(3)));
    assert_eq!(f.problem, Problem::BrokenLink { previous: 2 });
}

#[tokio::test]
async fn truncated_and_checkpoint_removed_tables_are_named() {
    let log = Log::new();
    log.write(12).await;
    log.tables(|t| {
        for seq in 9..=12 {
            t.records.remove(&seq);
        }
    });
    let f = broken(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (9, &Location::CheckpointRow(10)));
    assert_eq!(
        f.problem,
        Problem::Truncated {
            last_record: 8,
            checkpoint: 10
        }
    );

    let log = Log::new();
    log.write(12).await;
    log.tables(|t| t.checkpoints.remove(&5));
    let f = broken(log.verify_store().await);
    assert_eq!((f.seq, &f.location), (5, &Location::CheckpointRow(10)));
    assert!(matches!(
        f.problem,
        Problem::MissingCheckpoint {
            missing: 5,
            referenced_by: 10
        }
    ));

    let log = Log::new();
    log.write(12).await;
    log.tables(|t| t.records.get_mut(&4).map(|r| r.time_us += 1));
    assert_eq!(broken(log.verify_store().await).problem, Problem::Edited);

    let log = Log::new();
    log.write(12).await;
    log.tables(|t| t.records.get_mut(&4).map(|r| r.hash = "zz".into()));
    assert!(matches!(
        broken(log.verify_store().await).problem,
        Problem::Malformed(_)
    ));
}

// ---------------------------------------------------------------------------------
// Export

async fn export_to(
    path: &Path,
    f: impl AsyncFnOnce(&mut tokio::fs::File) -> ExportSummary,
) -> ExportSummary {
    let mut out = tokio::fs::File::create(path).await.unwrap();
    f(&mut out).await
}

#[tokio::test]
async fn export_since_writes_a_contiguous_verifiable_slice() {
    let log = Log::new();
    log.write(12).await; // record i at T0 + i - 1
    let since = OffsetDateTime::from_unix_timestamp(T0 + 6).unwrap(); // record 7 on
    let out = log._dir.path().join("export.jsonl");
    let export_opts = VerifyOptions {
        keys: keys(),
        start: Start::Anywhere,
    };

    let summary = export_to(&out, async |w| {
        export_store(log.store.as_ref(), since, w).await.unwrap()
    })
    .await;
    assert_eq!((summary.first_seq, summary.last_seq), (Some(7), Some(12)));
    assert_eq!((summary.records, summary.checkpoints), (6, 2));
    let report = intact(verify_file(&out, &export_opts).await.unwrap());
    assert_eq!((report.first_seq, report.records), (Some(7), 6));
    let from_db = std::fs::read(&out).unwrap();

    let summary = export_to(&out, async |w| {
        export_file(&log.path, since, w).await.unwrap()
    })
    .await;
    assert_eq!((summary.first_seq, summary.records), (Some(7), 6));
    assert_eq!(std::fs::read(&out).unwrap(), from_db);

    // An export is not a whole log: verified as one, its start is named.
    let f = broken(verify_file(&out, &opts()).await.unwrap());
    assert_eq!(
        f.problem,
        Problem::Gap {
            expected: 1,
            found: 7
        }
    );

    // An edit inside the export is still caught.
    let text = std::fs::read_to_string(&out)
        .unwrap()
        .replacen("user8", "userX", 1);
    std::fs::write(&out, text).unwrap();
    assert_eq!(
        broken(verify_file(&out, &export_opts).await.unwrap()).problem,
        Problem::Edited
    );

    let later = OffsetDateTime::from_unix_timestamp(T0 + 1000).unwrap();
    let summary = export_to(&out, async |w| {
        export_store(log.store.as_ref(), later, w).await.unwrap()
    })
    .await;
    assert_eq!(summary, ExportSummary::default());
    assert!(std::fs::read(&out).unwrap().is_empty());
}

#[tokio::test]
async fn clock_is_the_source_of_record_times() {
    let log = Log::new();
    let auditor = log.start().await;
    log.clock.set_unix(T0 + 42);
    auditor.record(event(1)).await.unwrap();
    auditor.shutdown().await.unwrap();
    let Entry::Record(r) = &log.entries()[0] else {
        panic!()
    };
    assert_eq!(r.time.unix_timestamp(), T0 + 42);
    assert_eq!(log.clock.unix(), T0 + 42);
}
