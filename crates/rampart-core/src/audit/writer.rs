//! [`Auditor`]: the one entry point, a bounded queue, and the background writer.
//!
//! ```text
//! record(event) ──► bounded queue ──► writer task ──► database: one transaction
//!   (time from Clock;   (capacity,        (batches,        (records + maybe a signed
//!    waits ≤ timeout     default 10 000)   seq/hash          checkpoint), then
//!    when full)                            chain)          file: append lines, sync
//! ```
//!
//! **Writes never block the request path** — `record` returns once the event is in
//! the queue — **and security events are never dropped**: when the queue is full,
//! `record` waits for space for at most [`AuditOptions::enqueue_timeout`] and then
//! fails with [`AuditError::QueueFull`], so the caller fails closed (a login is
//! refused rather than left unaudited). A sink that fails is retried with exponential
//! backoff, forever, and only ever for the batch in hand; while it fails the queue
//! fills and that back-pressure reaches callers. Nothing is discarded to make room.
//!
//! The durability boundary is the queue: an event accepted by `record` is written
//! unless the process dies first (up to `queue_capacity` events can be lost in a
//! crash; [`Auditor::flush`] waits until everything recorded so far is written).
//!
//! # Several writers, one chain
//!
//! Every `rampart serve` replica sharing the database, and every maintenance command
//! run beside them, has its own `Auditor`, named by a [`WriterId`]; all of them
//! append to **one chain** in the database, with optimistic concurrency:
//!
//! 1. The writer seals its batch on the head it last saw: seqs `head + 1 …`, each
//!    `prev_hash` the hash before it, and — if the batch reaches a checkpoint — a
//!    checkpoint signed over the batch's last record, with `prev_seq` the last
//!    checkpoint it saw.
//! 2. It inserts the batch in one transaction. The database's unique keys (record
//!    `seq`, checkpoint `seq` and `prev_seq`) refuse the transaction if another
//!    writer appended first. Since every writer only ever inserts right after a
//!    committed head, a committed batch always continues the chain without a gap,
//!    and a committed checkpoint always continues the checkpoint chain.
//! 3. On such a conflict the writer re-reads the head (checking it, see
//!    `recovery::load_head`), **re-links** its pending events on top — new seq,
//!    `prev_hash` and hash; the events, their times and the writer id unchanged —
//!    re-decides the checkpoint, and tries again at once. It never stops because
//!    another writer appended; it does stop (auditing fails closed) when the head
//!    does not verify or went backwards.
//! 4. Any other failure is retried with backoff after checking whether the
//!    transaction committed anyway (a lost acknowledgement): the batch's last record
//!    is looked up by seq and hash, so it is never written twice.
//!
//! A checkpoint is signed by whichever writer's batch reaches
//! [`AuditOptions::checkpoint_every`] records after the last checkpoint (batches are
//! cut so it lands exactly there), or when [`AuditOptions::checkpoint_interval`] has
//! passed on the [`Clock`] since the last one with records since — checked after each
//! batch, on [`Auditor::flush`] and on a timer every [`AuditOptions::tick`] (a
//! writer that has seen no new records re-reads the head once per interval, so
//! records left by a writer that died are signed too); and a final one on shutdown
//! if this writer added records since the last. A timed checkpoint re-reads the head
//! first and covers the newest record, whoever wrote it.
//!
//! # The file copy
//!
//! With [`AuditOptions::path`] the process also keeps a file: after each commit it
//! appends the records *it* wrote, with their final seq and hash, and the
//! checkpoints it signed — after the commit, so the file never holds a record the
//! database refused. Each record names the record before it in the file
//! (`file_prev_seq`), so removed lines are visible (see [`super::verify`]). One
//! process owns a file at a time (an exclusive lock, see `file_sink`); a process
//! whose file is held by another writes to the database only and tries again before
//! each batch. When it takes the file it first brings it level with the database
//! (`recovery::reconcile_file`).

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_crypto::signing::PublicKey;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::Clock;
use crate::store::StoreError;

use super::AuditError;
use super::chain::AuditRecord;
use super::checkpoint::{Checkpoint, CheckpointSigner};
use super::event::AuditEvent;
use super::file_sink::{FileHandle, Ownership};
use super::format::{Entry, seq_to_i64};
use super::recovery::{self, ChainState};
use super::store::AuditStore;
use super::writer_id::WriterId;

/// Floor for the timer period and the retry delay.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// How the audit log is written. The sinks (`database`, `path`) mirror the
/// `[audit]` config section; the rest have production defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Write records to the database tables. Must be `true`: the database holds the
    /// one chain every process appends to, so [`Auditor::start`] refuses `false`
    /// with [`AuditError::DatabaseRequired`] (or [`AuditError::NoSink`] without a
    /// path).
    pub database: bool,
    /// Also append this process's records to this JSON-lines file.
    pub path: Option<PathBuf>,
    /// The id written into every record and checkpoint. `None` (the default): a new
    /// one per start, see [`WriterId::generate`].
    pub writer: Option<WriterId>,
    /// Events the queue holds before `record` waits. Default 10 000.
    pub queue_capacity: NonZeroUsize,
    /// How long `record` waits for queue space before failing. Default 2 s.
    pub enqueue_timeout: Duration,
    /// Records between checkpoints. Default 1000.
    pub checkpoint_every: NonZeroU64,
    /// Longest time between checkpoints while records arrive. Default 5 minutes.
    pub checkpoint_interval: Duration,
    /// How often the writer checks whether a timed checkpoint is due. Default 1 s.
    pub tick: Duration,
    /// Most records per batch (per transaction). Default 500.
    pub max_batch: NonZeroUsize,
    /// First retry delay after a sink error. Default 100 ms.
    pub retry_initial: Duration,
    /// Longest retry delay. Default 30 s.
    pub retry_max: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            database: true,
            path: None,
            writer: None,
            queue_capacity: NonZeroUsize::MIN.saturating_add(9_999),
            enqueue_timeout: Duration::from_secs(2),
            checkpoint_every: NonZeroU64::MIN.saturating_add(999),
            checkpoint_interval: Duration::from_secs(5 * 60),
            tick: Duration::from_secs(1),
            max_batch: NonZeroUsize::MIN.saturating_add(499),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Counters for metrics and health checks. A snapshot; see [`Auditor::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStats {
    /// Events waiting in the queue.
    pub queue_depth: usize,
    /// Records this process wrote since start.
    pub records_written: u64,
    /// Checkpoints this process signed since start.
    pub checkpoints_written: u64,
    /// Failed sink writes that were retried.
    pub write_retries: u64,
    /// Batches re-linked because another writer appended first.
    pub relinks: u64,
    /// `record` calls refused because the queue stayed full.
    pub queue_full: u64,
    /// Seq of the last record this writer knows of (0: none).
    pub head_seq: u64,
}

/// Counter of recorded events by `kind` (the event's dotted name).
pub const EVENTS_TOTAL: &str = "rampart_audit_events_total";

/// The audit log's front door. Share it as `Arc<Auditor>`.
pub struct Auditor {
    tx: mpsc::Sender<Message>,
    clock: Arc<dyn Clock>,
    enqueue_timeout: Duration,
    capacity: usize,
    stats: Arc<Counters>,
    public_key: PublicKey,
    writer: WriterId,
    task: Mutex<Option<JoinHandle<Result<(), AuditError>>>>,
}

impl Auditor {
    /// Takes the audit file if one is configured and no other process holds it
    /// (bringing it level with the database, or refusing if they disagree — see
    /// `audit::recovery`), reads and checks the chain head, and starts the writer
    /// task. Must run inside a Tokio runtime.
    pub async fn start(
        store: Arc<dyn AuditStore>,
        options: AuditOptions,
        signer: CheckpointSigner,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuditError> {
        if !options.database {
            return Err(if options.path.is_none() {
                AuditError::NoSink
            } else {
                AuditError::DatabaseRequired
            });
        }
        let writer = match &options.writer {
            Some(writer) => writer.clone(),
            None => WriterId::generate().map_err(|_| AuditError::Randomness)?,
        };
        let public_key = signer.public_key();
        let mut file = match &options.path {
            Some(path) => Some(FileCopy::open(path.clone()).await?),
            None => None,
        };
        if let Some(file) = file.as_mut() {
            file.try_take(store.as_ref(), &public_key).await?;
        }
        let now = clock.now();
        let chain = recovery::load_head(store.as_ref(), now).await?;
        let stats = Arc::new(Counters::default());
        stats.head_seq.store(chain.seq, Ordering::Relaxed);
        let capacity = options.queue_capacity.get();
        let (tx, rx) = mpsc::channel(capacity);
        let idle_check_at = now + interval(&options);
        let task = tokio::spawn(
            Writer {
                rx,
                store,
                file,
                signer,
                public_key,
                clock: Arc::clone(&clock),
                options: options.clone(),
                writer: writer.clone(),
                chain,
                idle_check_at,
                stats: Arc::clone(&stats),
            }
            .run(),
        );
        Ok(Self {
            tx,
            clock,
            enqueue_timeout: options.enqueue_timeout,
            capacity,
            stats,
            public_key,
            writer,
            task: Mutex::new(Some(task)),
        })
    }

    /// Queues `event` for the log, stamped with the current time.
    ///
    /// Returns as soon as the event is queued. If the queue is full, waits for space
    /// up to the enqueue timeout, then fails with [`AuditError::QueueFull`]: the
    /// caller must then refuse the action it was auditing. Fails with
    /// [`AuditError::Closed`] after shutdown or if the writer has stopped.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        // Every security event is also a metric, so alerting follows the audit log's
        // vocabulary (`deploy/prometheus/rampart-alerts.yml`).
        metrics::counter!(EVENTS_TOTAL, "kind" => event.kind.as_str()).increment(1);
        let message = Message::Event {
            time: self.clock.now(),
            event: Box::new(event.bounded()),
        };
        let message = match self.tx.try_send(message) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(AuditError::Closed),
            Err(mpsc::error::TrySendError::Full(message)) => message,
        };
        match tokio::time::timeout(self.enqueue_timeout, self.tx.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(AuditError::Closed),
            Err(_) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    waited = ?self.enqueue_timeout,
                    "audit queue full; refusing the audited action"
                );
                Err(AuditError::QueueFull {
                    waited: self.enqueue_timeout,
                })
            }
        }
    }

    /// Waits until every event recorded before this call is in every sink, and
    /// writes a checkpoint if one is due. Waits for queue space without a timeout
    /// (it is not on a request path).
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message::Flush(ack))
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)
    }

    /// Stops accepting events, writes everything already queued, signs a final
    /// checkpoint if this writer added records since the last one, releases the
    /// audit file and waits for the writer to finish. Returns the writer's error if
    /// it had stopped on one. Later calls return `Ok` at once.
    ///
    /// While a sink is failing this keeps retrying; bound it with a timeout at the
    /// call site if exit must not wait.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let task = self
            .task
            .lock()
            .map_err(|_| AuditError::WriterFailed)?
            .take();
        let Some(task) = task else {
            return Ok(());
        };
        // Queued behind every event recorded so far. An error means the writer has
        // already stopped; its result says why.
        let _ = self.tx.send(Message::Shutdown).await;
        task.await.map_err(|_| AuditError::WriterFailed)?
    }

    /// Events waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.capacity.saturating_sub(self.tx.capacity())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            queue_depth: self.queue_depth(),
            records_written: self.stats.records_written.load(Ordering::Relaxed),
            checkpoints_written: self.stats.checkpoints_written.load(Ordering::Relaxed),
            write_retries: self.stats.write_retries.load(Ordering::Relaxed),
            relinks: self.stats.relinks.load(Ordering::Relaxed),
            queue_full: self.stats.queue_full.load(Ordering::Relaxed),
            head_seq: self.stats.head_seq.load(Ordering::Relaxed),
        }
    }

    /// The public key that verifies this log's checkpoints.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The id this process writes into its records and checkpoints.
    pub fn writer(&self) -> &WriterId {
        &self.writer
    }
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("writer", &self.writer)
            .field("stats", &self.stats())
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

fn interval(options: &AuditOptions) -> time::Duration {
    time::Duration::try_from(options.checkpoint_interval).unwrap_or(time::Duration::MAX)
}

#[derive(Debug, Default)]
struct Counters {
    records_written: AtomicU64,
    checkpoints_written: AtomicU64,
    write_retries: AtomicU64,
    relinks: AtomicU64,
    queue_full: AtomicU64,
    head_seq: AtomicU64,
}

#[derive(Debug)]
enum Message {
    /// Boxed so a queue slot stays small whatever the event's size.
    Event {
        time: OffsetDateTime,
        event: Box<AuditEvent>,
    },
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// An event waiting for its place in the chain.
type Pending = (OffsetDateTime, Box<AuditEvent>);

/// What one transaction writes.
struct Batch {
    records: Vec<AuditRecord>,
    checkpoint: Option<Checkpoint>,
}

/// How a transaction ended.
enum Commit {
    Done,
    /// Another writer appended first: re-read the head and re-link.
    HeadMoved,
}

/// After a failed transaction: did it commit anyway (the error came after the
/// commit), not at all, or did another writer take the seqs it wanted?
enum Landed {
    Yes,
    No,
    Taken,
}

/// Which checkpoint rule applies.
#[derive(Clone, Copy)]
enum Due {
    /// Count or interval (on the timer and on flush).
    Timed,
    /// Anything unsigned (at shutdown).
    Final,
}

/// The process's audit file.
struct FileCopy {
    path: PathBuf,
    handle: FileHandle,
    /// Seq of the file's last record once this process owns the file and has
    /// brought it level with the database; `None` while another process holds it.
    last_seq: Option<u64>,
    warned_busy: bool,
}

impl FileCopy {
    async fn open(path: PathBuf) -> Result<Self, AuditError> {
        Ok(Self {
            handle: FileHandle::open(path.clone()).await?,
            path,
            last_seq: None,
            warned_busy: false,
        })
    }

    /// Takes the file if it is free and reconciles it; a no-op once taken.
    async fn try_take(
        &mut self,
        store: &dyn AuditStore,
        key: &PublicKey,
    ) -> Result<(), AuditError> {
        if self.last_seq.is_some() {
            return Ok(());
        }
        if self.handle.run(|s| s.try_own()).await? == Ownership::Busy {
            if !self.warned_busy {
                self.warned_busy = true;
                tracing::warn!(
                    path = %self.path.display(),
                    "the audit file is held by another Rampart process; this process's audit records go to the database only until it is released"
                );
            }
            return Ok(());
        }
        let last = recovery::reconcile_file(store, &mut self.handle, key).await?;
        self.last_seq = Some(last);
        if self.warned_busy {
            tracing::info!(path = %self.path.display(), "took the audit file");
        }
        Ok(())
    }
}

struct Writer {
    rx: mpsc::Receiver<Message>,
    store: Arc<dyn AuditStore>,
    file: Option<FileCopy>,
    signer: CheckpointSigner,
    public_key: PublicKey,
    clock: Arc<dyn Clock>,
    options: AuditOptions,
    writer: WriterId,
    /// The head as this writer last saw it.
    chain: ChainState,
    /// When an idle writer next re-reads the head for a timed checkpoint.
    idle_check_at: OffsetDateTime,
    stats: Arc<Counters>,
}

impl Writer {
    async fn run(mut self) -> Result<(), AuditError> {
        let result = self.run_loop().await;
        if let Err(e) = &result {
            // Closing the queue makes every later `record` fail: auditing fails closed.
            self.rx.close();
            tracing::error!(error = %e, "audit writer stopped; audited actions will be refused");
        }
        result
    }

    async fn run_loop(&mut self) -> Result<(), AuditError> {
        // `interval` panics on a zero period, and a zero retry delay would spin.
        let mut ticker = tokio::time::interval(self.options.tick.max(MIN_DELAY));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate
        let mut held: Option<Message> = None;
        loop {
            let message = match held.take() {
                Some(message) => message,
                None => tokio::select! {
                    biased;
                    message = self.rx.recv() => match message {
                        Some(message) => message,
                        // Shut down (queue closed and drained) or every handle dropped.
                        None => break,
                    },
                    _ = ticker.tick() => {
                        self.checkpoint(Due::Timed).await?;
                        continue;
                    }
                },
            };
            match message {
                Message::Event { time, event } => {
                    let mut events = vec![(time, event)];
                    while events.len() < self.options.max_batch.get() {
                        match self.rx.try_recv() {
                            Ok(Message::Event { time, event }) => events.push((time, event)),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.write_events(&events).await?;
                }
                Message::Flush(ack) => {
                    self.checkpoint(Due::Timed).await?;
                    // The caller may have stopped waiting; nothing to do then.
                    let _ = ack.send(());
                }
                // Refuse new events, keep draining what is queued; `recv` then
                // returns `None` and the loop ends.
                Message::Shutdown => self.rx.close(),
            }
        }
        self.checkpoint(Due::Final).await
    }

    /// Records since the last checkpoint, as far as this writer knows.
    fn pending(&self) -> u64 {
        self.chain.seq - self.chain.checkpoint_seq
    }

    /// Batch size: capped so a count-based checkpoint lands exactly every
    /// `checkpoint_every` records.
    fn batch_limit(&self) -> usize {
        let to_checkpoint = self
            .options
            .checkpoint_every
            .get()
            .saturating_sub(self.pending())
            .max(1);
        usize::try_from(to_checkpoint)
            .unwrap_or(usize::MAX)
            .min(self.options.max_batch.get())
    }

    fn checkpoint_due(&self, pending: u64, now: OffsetDateTime) -> bool {
        pending > 0
            && (pending >= self.options.checkpoint_every.get()
                || now - self.chain.checkpoint_time >= interval(&self.options))
    }

    /// Writes `events` in as many transactions as the batch limit needs, re-linking
    /// whatever another writer's append displaced.
    async fn write_events(&mut self, events: &[Pending]) -> Result<(), AuditError> {
        if let Some(file) = self.file.as_mut()
            && let Err(e) = file.try_take(self.store.as_ref(), &self.public_key).await
        {
            if e.is_fatal() {
                return Err(e);
            }
            tracing::warn!(error = %e, "taking the audit file failed; retrying with the next batch");
        }
        let mut done = 0;
        while done < events.len() {
            let take = self.batch_limit().min(events.len() - done);
            let batch = self.seal(&events[done..done + take]);
            match self.commit(&batch).await? {
                Commit::Done => {
                    self.finish(batch).await?;
                    done += take;
                }
                Commit::HeadMoved => self.reload().await?,
            }
        }
        Ok(())
    }

    /// Places `events` after the head this writer knows, with a checkpoint if the
    /// batch makes one due.
    fn seal(&self, events: &[Pending]) -> Batch {
        let mut file_prev = self.file.as_ref().and_then(|f| f.last_seq);
        let (mut seq, mut prev) = (self.chain.seq, self.chain.hash);
        let mut records = Vec::with_capacity(events.len());
        for (time, event) in events {
            seq += 1;
            let record =
                AuditRecord::seal(seq, *time, &self.writer, file_prev, (**event).clone(), prev);
            file_prev = file_prev.map(|_| seq);
            prev = record.hash;
            records.push(record);
        }
        let now = self.clock.now();
        let checkpoint = self
            .checkpoint_due(seq - self.chain.checkpoint_seq, now)
            .then(|| {
                self.signer
                    .sign(seq, prev, self.chain.checkpoint_seq, now, &self.writer)
            });
        Batch {
            records,
            checkpoint,
        }
    }

    /// Signs a checkpoint over the newest record if one is due by `due`, re-reading
    /// the head first so it covers other writers' records too.
    async fn checkpoint(&mut self, due: Due) -> Result<(), AuditError> {
        let now = self.clock.now();
        let worth_a_look = match due {
            Due::Timed => self.checkpoint_due(self.pending(), now) || now >= self.idle_check_at,
            Due::Final => self.pending() > 0,
        };
        if !worth_a_look {
            return Ok(());
        }
        loop {
            self.reload().await?;
            let now = self.clock.now();
            let needed = match due {
                Due::Timed => self.checkpoint_due(self.pending(), now),
                Due::Final => self.pending() > 0,
            };
            if !needed {
                self.idle_check_at = now + interval(&self.options);
                return Ok(());
            }
            let checkpoint = self.signer.sign(
                self.chain.seq,
                self.chain.hash,
                self.chain.checkpoint_seq,
                now,
                &self.writer,
            );
            let batch = Batch {
                records: Vec::new(),
                checkpoint: Some(checkpoint),
            };
            match self.commit(&batch).await? {
                Commit::Done => return self.finish(batch).await,
                Commit::HeadMoved => {}
            }
        }
    }

    /// Inserts the batch, retrying failures other than a conflict until it commits.
    async fn commit(&self, batch: &Batch) -> Result<Commit, AuditError> {
        let rows = batch
            .records
            .iter()
            .map(AuditRecord::to_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(AuditError::Encode)?;
        let checkpoint_rows: Vec<_> = batch.checkpoint.iter().map(Checkpoint::to_row).collect();
        let mut delay = self.options.retry_initial.max(MIN_DELAY);
        loop {
            let error = match self.store.append_audit(&rows, &checkpoint_rows).await {
                Ok(()) => return Ok(Commit::Done),
                Err(e) => e,
            };
            match self.landed(batch).await {
                Ok(Landed::Yes) => return Ok(Commit::Done),
                Ok(Landed::Taken) => {
                    self.stats.relinks.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("another audit writer appended first; re-linking the batch");
                    return Ok(Commit::HeadMoved);
                }
                Ok(Landed::No) | Err(_) => {
                    tracing::warn!(error = %error, "audit database write failed; retrying");
                }
            }
            self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.options.retry_max);
        }
    }

    /// After a failed transaction: is the batch in the database (its last record, or
    /// its checkpoint, found by seq with the same hash or signature), or are its seqs
    /// or its checkpoint's place taken by another writer?
    async fn landed(&self, batch: &Batch) -> Result<Landed, StoreError> {
        let store = self.store.as_ref();
        if let (Some(first), Some(last)) = (batch.records.first(), batch.records.last()) {
            let at = store
                .audit_records_after(seq_to_i64(last.seq) - 1, 1)
                .await?;
            let hash = last.hash.to_hex();
            if at
                .first()
                .is_some_and(|r| r.seq == seq_to_i64(last.seq) && r.hash == hash)
            {
                return Ok(Landed::Yes);
            }
            let head = store.last_audit_record().await?.map_or(0, |r| r.seq);
            if head >= seq_to_i64(first.seq) {
                return Ok(Landed::Taken);
            }
        } else if let Some(cp) = &batch.checkpoint {
            let at = store
                .audit_checkpoints_after(seq_to_i64(cp.seq) - 1, 1)
                .await?;
            match at.first() {
                Some(row) if row.seq == seq_to_i64(cp.seq) => {
                    return Ok(if row.signature == cp.signature.to_hex() {
                        Landed::Yes
                    } else {
                        Landed::Taken
                    });
                }
                _ => {}
            }
        }
        if batch.checkpoint.is_some() {
            let head = store.last_audit_checkpoint().await?.map_or(0, |c| c.seq);
            if head != seq_to_i64(self.chain.checkpoint_seq) {
                return Ok(Landed::Taken);
            }
        }
        Ok(Landed::No)
    }

    /// Re-reads the head after another writer appended, retrying database errors.
    /// A head that does not verify, or that went backwards, stops the writer.
    async fn reload(&mut self) -> Result<(), AuditError> {
        let mut delay = self.options.retry_initial.max(MIN_DELAY);
        let head = loop {
            match recovery::load_head(self.store.as_ref(), self.chain.checkpoint_time).await {
                Ok(head) => break head,
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "reading the audit head failed; retrying"),
            }
            self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.options.retry_max);
        };
        if head.seq < self.chain.seq || head.checkpoint_seq < self.chain.checkpoint_seq {
            return Err(AuditError::CorruptDatabase {
                reason: format!(
                    "the audit log went back from record {} (checkpoint {}) to record {} \
                     (checkpoint {}): entries were deleted; run `rampart audit verify`",
                    self.chain.seq, self.chain.checkpoint_seq, head.seq, head.checkpoint_seq
                ),
            });
        }
        self.chain = head;
        self.stats.head_seq.store(self.chain.seq, Ordering::Relaxed);
        Ok(())
    }

    /// After the commit: appends the batch to the file (retrying until it is on
    /// disk), then advances the head.
    async fn finish(&mut self, batch: Batch) -> Result<(), AuditError> {
        if let Some(file) = self.file.as_mut()
            && file.last_seq.is_some()
        {
            let mut lines = String::new();
            // Exactly the records sealed with a place in this file.
            for record in batch.records.iter().filter(|r| r.file_prev_seq.is_some()) {
                lines.push_str(
                    &Entry::Record(record.clone())
                        .to_line()
                        .map_err(AuditError::Encode)?,
                );
            }
            if let Some(cp) = &batch.checkpoint {
                lines.push_str(
                    &Entry::Checkpoint(cp.clone())
                        .to_line()
                        .map_err(AuditError::Encode)?,
                );
            }
            let lines = Arc::new(lines.into_bytes());
            let mut delay = self.options.retry_initial.max(MIN_DELAY);
            while !lines.is_empty() {
                let bytes = Arc::clone(&lines);
                match file.handle.run(move |sink| sink.append(&bytes)).await {
                    Ok(()) => break,
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "audit file write failed; retrying"),
                }
                self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.options.retry_max);
            }
            if let Some(last) = batch
                .records
                .iter()
                .rev()
                .find(|r| r.file_prev_seq.is_some())
            {
                file.last_seq = Some(last.seq);
            }
        }

        if let Some(last) = batch.records.last() {
            self.chain.seq = last.seq;
            self.chain.hash = last.hash;
            self.stats
                .records_written
                .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
            self.stats.head_seq.store(last.seq, Ordering::Relaxed);
        }
        if let Some(cp) = batch.checkpoint {
            self.chain.checkpoint_seq = cp.seq;
            self.chain.checkpoint_time = cp.time;
            self.idle_check_at = cp.time + interval(&self.options);
            self.stats
                .checkpoints_written
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
