//! [`Auditor`]: the one entry point, a bounded queue, and the background writer.
//!
//! ```text
//! record(event) ──► bounded queue ──► writer task ──► file: append lines, flush, sync_data
//!   (time from Clock;   (capacity,        (batches,        then
//!    waits ≤ timeout     default 10 000)   one seq/hash    database: one transaction
//!    when full)                            chain)          then maybe a signed checkpoint
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
//! crash; [`Auditor::flush`] waits until everything recorded so far is on disk).
//!
//! A checkpoint is signed after every [`AuditOptions::checkpoint_every`] records
//! (batches are cut so it lands exactly there) or when
//! [`AuditOptions::checkpoint_interval`] has passed on the [`Clock`] since the last
//! one with records since, checked after each batch and on a timer every
//! [`AuditOptions::tick`]; and a final one on shutdown. Each goes to both sinks —
//! in the same file append and transaction as the batch it closes, or on its own
//! when it is due by time alone.
//!
//! One writer per log: two processes appending to the same database would race for
//! the same seqs. The writer notices (a conflicting row that is not its own) and
//! stops with [`AuditError::ConcurrentWriter`], so auditing fails closed. (Replicas
//! sharing PostgreSQL need one chain per writer; see the F-HA notes.)

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
use super::file_sink::FileHandle;
use super::format::Entry;
use super::recovery::{self, ChainState};
use super::store::AuditStore;

/// Floor for the timer period and the retry delay.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// How the audit log is written. The sinks (`database`, `path`) mirror the
/// `[audit]` config section; the rest have production defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Write records to the database tables. Checkpoints always go to the database
    /// too, even when this is off, so a cut file can be detected.
    pub database: bool,
    /// Also (or only) append to this JSON-lines file.
    pub path: Option<PathBuf>,
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
    /// Records written to every sink since start.
    pub records_written: u64,
    /// Checkpoints written since start.
    pub checkpoints_written: u64,
    /// Failed sink writes that were retried.
    pub write_retries: u64,
    /// `record` calls refused because the queue stayed full.
    pub queue_full: u64,
    /// Seq of the last record written (0: none).
    pub head_seq: u64,
}

/// The audit log's front door. Share it as `Arc<Auditor>`.
pub struct Auditor {
    tx: mpsc::Sender<Message>,
    clock: Arc<dyn Clock>,
    enqueue_timeout: Duration,
    capacity: usize,
    stats: Arc<Counters>,
    public_key: PublicKey,
    task: Mutex<Option<JoinHandle<Result<(), AuditError>>>>,
}

impl Auditor {
    /// Opens the sinks, recovers the chain head (reconciling a sink that lags the
    /// other, or refusing if they disagree — see `audit::recovery`), and
    /// starts the writer task. Must run inside a Tokio runtime.
    pub async fn start(
        store: Arc<dyn AuditStore>,
        options: AuditOptions,
        signer: CheckpointSigner,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuditError> {
        if !options.database && options.path.is_none() {
            return Err(AuditError::NoSink);
        }
        let mut file = match &options.path {
            Some(path) => Some(FileHandle::open(path.clone()).await?),
            None => None,
        };
        let chain = recovery::recover(
            store.as_ref(),
            options.database,
            file.as_mut(),
            clock.as_ref(),
        )
        .await?;
        let stats = Arc::new(Counters::default());
        stats.head_seq.store(chain.seq, Ordering::Relaxed);
        let capacity = options.queue_capacity.get();
        let (tx, rx) = mpsc::channel(capacity);
        let public_key = signer.public_key();
        let writer = Writer {
            rx,
            store,
            file,
            signer,
            clock: Arc::clone(&clock),
            options: options.clone(),
            chain,
            stats: Arc::clone(&stats),
        };
        let task = tokio::spawn(writer.run());
        Ok(Self {
            tx,
            clock,
            enqueue_timeout: options.enqueue_timeout,
            capacity,
            stats,
            public_key,
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
    /// checkpoint, and waits for the writer to finish. Returns the writer's error if
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
            queue_full: self.stats.queue_full.load(Ordering::Relaxed),
            head_seq: self.stats.head_seq.load(Ordering::Relaxed),
        }
    }

    /// The public key that verifies this log's checkpoints.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("stats", &self.stats())
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Counters {
    records_written: AtomicU64,
    checkpoints_written: AtomicU64,
    write_retries: AtomicU64,
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

/// What one append/transaction writes.
struct Batch {
    records: Vec<AuditRecord>,
    checkpoint: Option<Checkpoint>,
}

/// Whether a batch whose write reported an error reached the database anyway.
enum Landed {
    Yes,
    No,
    /// Rows that are not ours are where ours should be.
    Foreign,
}

struct Writer {
    rx: mpsc::Receiver<Message>,
    store: Arc<dyn AuditStore>,
    file: Option<FileHandle>,
    signer: CheckpointSigner,
    clock: Arc<dyn Clock>,
    options: AuditOptions,
    chain: ChainState,
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
                        self.checkpoint_if_due().await?;
                        continue;
                    }
                },
            };
            match message {
                Message::Event { time, event } => {
                    let limit = self.batch_limit();
                    let mut events = vec![(time, event)];
                    while events.len() < limit {
                        match self.rx.try_recv() {
                            Ok(Message::Event { time, event }) => events.push((time, event)),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.write_events(events).await?;
                }
                Message::Flush(ack) => {
                    self.checkpoint_if_due().await?;
                    // The caller may have stopped waiting; nothing to do then.
                    let _ = ack.send(());
                }
                // Refuse new events, keep draining what is queued; `recv` then
                // returns `None` and the loop ends.
                Message::Shutdown => self.rx.close(),
            }
        }
        if self.pending() > 0 {
            let checkpoint = self.sign_checkpoint(self.clock.now());
            self.persist(Batch {
                records: Vec::new(),
                checkpoint: Some(checkpoint),
            })
            .await?;
        }
        Ok(())
    }

    /// Records since the last checkpoint.
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
        let interval = time::Duration::try_from(self.options.checkpoint_interval)
            .unwrap_or(time::Duration::MAX);
        pending > 0
            && (pending >= self.options.checkpoint_every.get()
                || now - self.chain.checkpoint_time >= interval)
    }

    async fn checkpoint_if_due(&mut self) -> Result<(), AuditError> {
        let now = self.clock.now();
        if self.checkpoint_due(self.pending(), now) {
            let checkpoint = self.sign_checkpoint(now);
            self.persist(Batch {
                records: Vec::new(),
                checkpoint: Some(checkpoint),
            })
            .await?;
        }
        Ok(())
    }

    fn sign_checkpoint(&self, now: OffsetDateTime) -> Checkpoint {
        self.signer.sign(
            self.chain.seq,
            self.chain.hash,
            self.chain.checkpoint_seq,
            now,
        )
    }

    async fn write_events(
        &mut self,
        events: Vec<(OffsetDateTime, Box<AuditEvent>)>,
    ) -> Result<(), AuditError> {
        let mut records = Vec::with_capacity(events.len());
        let (mut seq, mut prev) = (self.chain.seq, self.chain.hash);
        for (time, event) in events {
            seq += 1;
            let record = AuditRecord::seal(seq, time, *event, prev);
            prev = record.hash;
            records.push(record);
        }
        let now = self.clock.now();
        let checkpoint = self
            .checkpoint_due(seq - self.chain.checkpoint_seq, now)
            .then(|| self.signer.sign(seq, prev, self.chain.checkpoint_seq, now));
        self.persist(Batch {
            records,
            checkpoint,
        })
        .await
    }

    /// Writes the batch to the file, then the database, retrying each until it
    /// succeeds; then advances the chain state.
    async fn persist(&mut self, batch: Batch) -> Result<(), AuditError> {
        let mut lines = String::new();
        for record in &batch.records {
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
        let rows = if self.options.database {
            batch
                .records
                .iter()
                .map(AuditRecord::to_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(AuditError::Encode)?
        } else {
            Vec::new()
        };
        let checkpoint_rows: Vec<_> = batch.checkpoint.iter().map(Checkpoint::to_row).collect();
        let lines = Arc::new(lines.into_bytes());

        let mut file_done = self.file.is_none();
        let mut db_done = rows.is_empty() && checkpoint_rows.is_empty();
        let mut delay = self.options.retry_initial.max(MIN_DELAY);
        loop {
            if !file_done && let Some(file) = self.file.as_mut() {
                let lines = Arc::clone(&lines);
                match file.run(move |sink| sink.append(&lines)).await {
                    Ok(()) => file_done = true,
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "audit file write failed; retrying"),
                }
            }
            // File first: after a crash the file is never behind the database, so
            // recovery only ever copies forward.
            if file_done && !db_done {
                match self.store.append_audit(&rows, &checkpoint_rows).await {
                    Ok(()) => db_done = true,
                    Err(e) => match self.landed(&batch).await {
                        Ok(Landed::Yes) => db_done = true,
                        Ok(Landed::Foreign) => return Err(AuditError::ConcurrentWriter),
                        Ok(Landed::No) | Err(_) => {
                            tracing::warn!(error = %e, "audit database write failed; retrying");
                        }
                    },
                }
            }
            if file_done && db_done {
                break;
            }
            self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.options.retry_max);
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
            self.stats
                .checkpoints_written
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// After a failed database write: did the transaction commit anyway (the error
    /// came after the commit), not at all, or is someone else's data there?
    async fn landed(&self, batch: &Batch) -> Result<Landed, StoreError> {
        if let (true, Some(last)) = (self.options.database, batch.records.last()) {
            let head = self.store.last_audit_record().await?;
            let head = head.map(|row| (row.seq, row.hash));
            return Ok(match head {
                Some((seq, hash)) if seq == super::format::seq_to_i64(last.seq) => {
                    if hash == last.hash.to_hex() {
                        Landed::Yes
                    } else {
                        Landed::Foreign
                    }
                }
                Some((seq, _)) if seq == super::format::seq_to_i64(self.chain.seq) => Landed::No,
                None if self.chain.seq == 0 => Landed::No,
                _ => Landed::Foreign,
            });
        }
        let Some(cp) = &batch.checkpoint else {
            return Ok(Landed::Yes);
        };
        let head = self.store.last_audit_checkpoint().await?;
        Ok(match head {
            Some(row) if row.seq == super::format::seq_to_i64(cp.seq) => {
                if row.signature == cp.signature.to_hex() {
                    Landed::Yes
                } else {
                    Landed::Foreign
                }
            }
            Some(row) if row.seq == super::format::seq_to_i64(self.chain.checkpoint_seq) => {
                Landed::No
            }
            None if self.chain.checkpoint_seq == 0 => Landed::No,
            _ => Landed::Foreign,
        })
    }
}
