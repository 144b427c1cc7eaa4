//! The fan-out channel: every replica publishes on one Redis pub/sub channel
//! (`<redis.key_prefix>:invalidate`) and subscribes to it.
//!
//! Payloads are opaque bytes here; what they mean belongs to the caller (the identity
//! services' `fanout` module). This module's job is to say exactly **when messages
//! may have been missed**, because Redis pub/sub is at-most-once: a subscriber that
//! is not connected when a message is published never sees it.
//!
//! # Subscribing
//!
//! A [`Listener`] hears:
//!
//! - [`Listener::subscribed`] once `SUBSCRIBE` is confirmed — from then on every
//!   message published is delivered for as long as the connection lives;
//! - [`Listener::message`] for each message (this process's own included);
//! - [`Listener::lost`] as soon as the connection may have dropped a message: the
//!   stream ended (closed, reset), or a `PING` sent on the subscription connection
//!   every [`PING_INTERVAL`] got no answer within [`PING_TIMEOUT`]. So even a silently
//!   dead connection (no FIN, no RST: a partition) is noticed within
//!   `PING_INTERVAL + PING_TIMEOUT` = 750 ms of its last sign of life.
//!
//! The listener is expected to fail closed between `lost` and the next `subscribed`.
//! Reconnection is retried forever, backing off from 100 ms to 1 s. The gauge
//! [`SUBSCRIBED_GAUGE`] is 1 while subscribed.
//!
//! # Publishing
//!
//! [`Fanout::publish`] never blocks the request path: the payload goes into a bounded
//! queue ([`QUEUE_CAPACITY`]) and one task sends the messages, in order, with
//! `PUBLISH` (bounded by `redis.response_timeout`). A failed `PUBLISH` is retried with
//! backoff (a warning once, an info line when it works again). If the queue overflows
//! while Redis is unreachable, newer messages are dropped (counted in
//! [`DROPPED_TOTAL`]) and, once the queue has drained, the caller's *resync* payload
//! is published, which tells every subscriber to forget everything it might have
//! missed. [`Fanout::flush`] waits until the queue is empty (maintenance commands call
//! it before they exit).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use rampart_crypto::SecretString;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// How often the subscription connection is pinged.
pub const PING_INTERVAL: Duration = Duration::from_millis(250);

/// How long a ping may go unanswered before the subscription counts as lost.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Most messages waiting to be published.
pub const QUEUE_CAPACITY: usize = 4096;

/// Gauge: 1 while this process is subscribed to the fan-out channel.
pub const SUBSCRIBED_GAUGE: &str = "rampart_fanout_subscribed";
/// Counter of messages received on the fan-out channel.
pub const RECEIVED_TOTAL: &str = "rampart_fanout_received_total";
/// Counter of messages published on the fan-out channel.
pub const PUBLISHED_TOTAL: &str = "rampart_fanout_published_total";
/// Counter of messages dropped because the publish queue was full.
pub const DROPPED_TOTAL: &str = "rampart_fanout_dropped_total";

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Hears what arrives on the channel, and when messages may have been missed.
/// Called from the subscription task: must not block.
pub trait Listener: Send + Sync + 'static {
    /// The subscription is confirmed: every message published from now on arrives.
    fn subscribed(&self);
    /// A message arrived.
    fn message(&self, payload: &[u8]);
    /// The subscription is gone (or may be): messages may be missed until the next
    /// [`Listener::subscribed`].
    fn lost(&self);
}

/// The Redis URL could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL for the fan-out channel: {0}")]
pub struct FanoutError(#[from] redis::RedisError);

/// Where and how to publish and subscribe.
#[derive(Debug, Clone)]
pub struct FanoutSettings {
    /// The channel name (`<redis.key_prefix>:invalidate`).
    pub channel: String,
    /// Time to connect (`redis.connect_timeout`).
    pub connect_timeout: Duration,
    /// Time for a `PUBLISH` to be answered (`redis.response_timeout`).
    pub response_timeout: Duration,
    /// Published after messages were dropped: tells subscribers to forget everything.
    pub resync: Vec<u8>,
}

/// A connection to the fan-out channel. Its tasks end when it is dropped.
pub struct Fanout {
    queue: mpsc::Sender<Vec<u8>>,
    state: Arc<PublishState>,
    tasks: Vec<JoinHandle<()>>,
}

struct PublishState {
    /// Messages accepted by `publish` and not yet sent (or given up on).
    pending: AtomicUsize,
    /// A message was dropped since the last resync.
    overflowed: AtomicBool,
    idle: Notify,
}

impl Fanout {
    /// Publishes only (maintenance commands, which hold no caches). Must run inside a
    /// Tokio runtime. `url` is a secret: it may hold a password and is never logged.
    pub fn publisher(url: &SecretString, settings: &FanoutSettings) -> Result<Self, FanoutError> {
        let client = redis::Client::open(url.expose_secret())?;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let state = Arc::new(PublishState {
            pending: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            idle: Notify::new(),
        });
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        let publisher = tokio::spawn(publish_loop(
            receiver,
            connection,
            settings.clone(),
            Arc::clone(&state),
        ));
        Ok(Self {
            queue,
            state,
            tasks: vec![publisher],
        })
    }

    /// Publishes and subscribes, telling `listener` what arrives. Must run inside a
    /// Tokio runtime.
    pub fn start(
        url: &SecretString,
        settings: &FanoutSettings,
        listener: Arc<dyn Listener>,
    ) -> Result<Self, FanoutError> {
        let mut fanout = Self::publisher(url, settings)?;
        let client = redis::Client::open(url.expose_secret())?;
        metrics::gauge!(SUBSCRIBED_GAUGE).set(0.0);
        fanout.tasks.push(tokio::spawn(subscribe_loop(
            client,
            settings.clone(),
            listener,
        )));
        Ok(fanout)
    }

    /// Queues `payload` for every subscriber. Never waits; a full queue drops it and
    /// schedules a resync.
    pub fn publish(&self, payload: Vec<u8>) {
        self.state.pending.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(payload).is_err() {
            self.state.overflowed.store(true, Ordering::Release);
            metrics::counter!(DROPPED_TOTAL).increment(1);
            self.done_one();
        }
    }

    /// Waits until every queued message has been published, at most `within`.
    /// Returns whether the queue is empty.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let idle = self.state.idle.notified();
            if self.state.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.state.pending.load(Ordering::Acquire) == 0;
            }
        }
    }

    fn done_one(&self) {
        self.state.done_one();
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PublishState {
    fn done_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

async fn publish_loop(
    mut receiver: mpsc::Receiver<Vec<u8>>,
    connection: ConnectionManager,
    settings: FanoutSettings,
    state: Arc<PublishState>,
) {
    let mut failing = false;
    while let Some(payload) = receiver.recv().await {
        send(&connection, &settings, &payload, &mut failing).await;
        // Overflow happens only while the queue is full, so the messages before the
        // gap are all sent by the time it is empty again: then resync.
        if receiver.is_empty() && state.overflowed.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                "fan-out messages were dropped while Redis was unreachable; publishing a resync"
            );
            send(&connection, &settings, &settings.resync, &mut failing).await;
        }
        state.done_one();
    }
}

async fn send(
    connection: &ConnectionManager,
    settings: &FanoutSettings,
    payload: &[u8],
    failing: &mut bool,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut connection = connection.clone();
        let sent = tokio::time::timeout(
            settings.response_timeout,
            redis::cmd("PUBLISH")
                .arg(&settings.channel)
                .arg(payload)
                .query_async::<i64>(&mut connection),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {
                metrics::counter!(PUBLISHED_TOTAL).increment(1);
                if *failing {
                    *failing = false;
                    tracing::info!("publishing on the fan-out channel works again");
                }
                return;
            }
            Ok(Err(error)) => {
                if !*failing {
                    tracing::warn!(%error, "cannot publish on the fan-out channel; retrying");
                }
                *failing = true;
            }
            Err(_) => {
                if !*failing {
                    tracing::warn!("publishing on the fan-out channel timed out; retrying");
                }
                *failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe_loop(
    client: redis::Client,
    settings: FanoutSettings,
    listener: Arc<dyn Listener>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut complained = false;
    loop {
        match tokio::time::timeout(settings.connect_timeout, open(&client, &settings.channel)).await
        {
            Ok(Ok(pubsub)) => {
                backoff = MIN_BACKOFF;
                complained = false;
                metrics::gauge!(SUBSCRIBED_GAUGE).set(1.0);
                listener.subscribed();
                tracing::info!(channel = %settings.channel, "subscribed to the fan-out channel");
                let reason = listen(pubsub, listener.as_ref()).await;
                metrics::gauge!(SUBSCRIBED_GAUGE).set(0.0);
                listener.lost();
                tracing::warn!(
                    reason,
                    "fan-out subscription lost: cached credentials now live at most 1 s until it is back"
                );
            }
            Ok(Err(error)) => {
                if !complained {
                    tracing::warn!(%error, "cannot subscribe to the fan-out channel; retrying");
                    complained = true;
                }
            }
            Err(_) => {
                if !complained {
                    tracing::warn!("subscribing to the fan-out channel timed out; retrying");
                    complained = true;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn open(client: &redis::Client, channel: &str) -> redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Delivers messages until the connection fails; returns why.
async fn listen(pubsub: PubSub, listener: &dyn Listener) -> &'static str {
    let (mut sink, mut stream) = pubsub.split();
    let reader = async {
        while let Some(message) = stream.next().await {
            metrics::counter!(RECEIVED_TOTAL).increment(1);
            listener.message(message.get_payload_bytes());
        }
        "the connection closed"
    };
    let pinger = async {
        let mut tick = tokio::time::interval(PING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return "a ping failed",
                Err(_) => return "a ping went unanswered",
            }
        }
    };
    tokio::select! {
        reason = reader => reason,
        reason = pinger => reason,
    }
}
