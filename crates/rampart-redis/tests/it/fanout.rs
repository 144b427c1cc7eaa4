//! `rampart_redis::Fanout` against private redis-servers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_crypto::SecretString;
use rampart_redis::fanout::{PING_INTERVAL, PING_TIMEOUT, QUEUE_CAPACITY};
use rampart_redis::{Fanout, FanoutSettings, Listener};
use rampart_testkit::tcp_proxy::TcpProxy;
use tokio::sync::Notify;

use rampart_testkit::redis_server::RedisServer;

/// How long any wait may take.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Subscribed,
    Message(Vec<u8>),
    Lost,
}

/// Records what a listener heard, with when.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(Instant, Event)>>,
    changed: Notify,
}

impl Listener for Recorder {
    fn subscribed(&self) {
        self.push(Event::Subscribed);
    }
    fn message(&self, payload: &[u8]) {
        self.push(Event::Message(payload.to_vec()));
    }
    fn lost(&self) {
        self.push(Event::Lost);
    }
}

impl Recorder {
    fn push(&self, event: Event) {
        self.events.lock().unwrap().push((Instant::now(), event));
        self.changed.notify_waiters();
    }

    fn count(&self, event: &Event) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e == event)
            .count()
    }

    /// Waits until `event` has happened `n` times; returns when the n-th happened.
    async fn wait_for(&self, event: &Event, n: usize) -> Instant {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            if let Some((at, _)) = self
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, e)| e == event)
                .nth(n - 1)
            {
                return *at;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "{event:?} #{n} never came; heard {:?}",
                    self.events.lock().unwrap()
                );
            }
        }
    }
}

fn settings(channel: &str) -> FanoutSettings {
    FanoutSettings {
        channel: channel.to_owned(),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(300),
        resync: b"resync".to_vec(),
    }
}

fn subscriber(url: &str, channel: &str) -> (Fanout, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let fanout = Fanout::start(
        &SecretString::from(url.to_owned()),
        &settings(channel),
        Arc::clone(&recorder) as Arc<dyn Listener>,
    )
    .unwrap();
    (fanout, recorder)
}

#[tokio::test]
async fn messages_reach_every_subscriber_and_an_outage_is_reported() {
    let mut redis = RedisServer::start().await;
    let (a, heard_a) = subscriber(&redis.url(), "t:invalidate");
    let (_b, heard_b) = subscriber(&redis.url(), "t:invalidate");
    // Another deployment on the same Redis, another prefix: hears nothing of ours.
    let (_other, heard_other) = subscriber(&redis.url(), "other:invalidate");
    heard_a.wait_for(&Event::Subscribed, 1).await;
    heard_b.wait_for(&Event::Subscribed, 1).await;
    heard_other.wait_for(&Event::Subscribed, 1).await;

    a.publish(b"one".to_vec());
    heard_b.wait_for(&Event::Message(b"one".to_vec()), 1).await;
    heard_a.wait_for(&Event::Message(b"one".to_vec()), 1).await;
    assert!(a.flush(WAIT).await);

    // The server dies: both subscribers hear of it at once (the connection closes).
    let killed = Instant::now();
    redis.kill();
    let lost = heard_b.wait_for(&Event::Lost, 1).await;
    heard_a.wait_for(&Event::Lost, 1).await;
    assert!(lost.duration_since(killed) < Duration::from_secs(1));

    // Published during the outage: kept and retried, sent once Redis is back.
    a.publish(b"during".to_vec());
    assert!(!a.flush(Duration::from_millis(300)).await);
    redis.restart().await;
    heard_a.wait_for(&Event::Subscribed, 2).await;
    heard_b.wait_for(&Event::Subscribed, 2).await;
    assert!(
        a.flush(WAIT).await,
        "the queued message was never published"
    );

    a.publish(b"two".to_vec());
    heard_b.wait_for(&Event::Message(b"two".to_vec()), 1).await;
    assert_eq!(heard_other.count(&Event::Message(b"one".to_vec())), 0);
    assert_eq!(heard_other.count(&Event::Message(b"two".to_vec())), 0);
}

#[tokio::test]
async fn a_silent_connection_is_noticed_by_the_ping() {
    let redis = RedisServer::start().await;
    let (_a, heard) = subscriber(&redis.url(), "t:invalidate");
    heard.wait_for(&Event::Subscribed, 1).await;
    // A frozen server keeps the TCP connection open and answers nothing.
    let frozen = Instant::now();
    redis.freeze();
    let lost = heard.wait_for(&Event::Lost, 1).await;
    let noticed = lost.duration_since(frozen);
    assert!(
        noticed <= PING_INTERVAL + PING_TIMEOUT + Duration::from_millis(200),
        "noticed after {noticed:?}"
    );
    redis.thaw();
    heard.wait_for(&Event::Subscribed, 2).await;
}

#[tokio::test]
async fn a_publisher_that_dropped_messages_publishes_a_resync() {
    let redis = RedisServer::start().await;
    let (_b, heard) = subscriber(&redis.url(), "t:invalidate");
    heard.wait_for(&Event::Subscribed, 1).await;
    // The publisher reaches Redis through a link the test cuts; the subscriber does
    // not: the partition where only the revoking process is cut off.
    let mut link = TcpProxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let publisher = Fanout::publisher(
        &SecretString::from(format!("redis://{}", link.addr)),
        &settings("t:invalidate"),
    )
    .unwrap();
    publisher.publish(b"before".to_vec());
    heard.wait_for(&Event::Message(b"before".to_vec()), 1).await;

    link.cut();
    for i in 0..QUEUE_CAPACITY + 10 {
        publisher.publish(format!("m{i}").into_bytes());
    }
    assert!(!publisher.flush(Duration::from_millis(300)).await);
    link.restore().await;
    heard.wait_for(&Event::Message(b"resync".to_vec()), 1).await;
    assert!(publisher.flush(WAIT).await);
    // The messages that fit in the queue were delivered, in order, before the resync.
    heard.wait_for(&Event::Message(b"m0".to_vec()), 1).await;
    assert_eq!(heard.count(&Event::Message(b"resync".to_vec())), 1);
    assert_eq!(heard.count(&Event::Lost), 0);
}
