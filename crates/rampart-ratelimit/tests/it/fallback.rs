//! Redis dies mid-run: limiting continues locally at once, the fallback gauge reads
//! 1 and a warning is logged; when Redis returns, limiting goes back to it.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rampart_core::FakeClock;
use rampart_crypto::SecretString;
use rampart_ratelimit::{FALLBACK_GAUGE, Key, Limit, RateLimiter};

use rampart_testkit::redis_server::RedisServer;

fn gauge(snapshotter: &Snapshotter) -> Option<f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(key, ..)| key.key().name() == FALLBACK_GAUGE)
        .and_then(|(.., value)| match value {
            DebugValue::Gauge(v) => Some(v.into_inner()),
            _ => None,
        })
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn limiting_falls_back_locally_and_returns_to_redis() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("this test binary's only recorder");
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut redis = RedisServer::start().await;
    let clock = FakeClock::at_unix(1_800_000_000);
    let limiter = RateLimiter::redis(
        &SecretString::from(redis.url()),
        Duration::from_millis(500),
        Duration::from_millis(300),
        "rampart-test",
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let limit = Limit::new(
        NonZeroU32::new(1).unwrap(),
        Duration::from_secs(1),
        NonZeroU32::new(3).unwrap(),
    );
    let bucket = limiter.bucket("fallback-test", limit);
    let key = Key::Ip("203.0.113.99".parse().unwrap());
    assert!(bucket.check(&key).await.is_allowed());
    assert!(!limiter.in_fallback());
    assert_eq!(gauge(&snapshotter), Some(0.0));

    redis.kill();
    // The very next decision is made locally: admitted (the local budget is fresh),
    // neither an error nor unlimited.
    assert!(bucket.check(&key).await.is_allowed());
    assert!(limiter.in_fallback());
    assert_eq!(gauge(&snapshotter), Some(1.0));
    assert!(
        String::from_utf8_lossy(&logs.0.lock().unwrap())
            .contains("falling back to the local limiter"),
        "a warning is logged"
    );
    // The local limiter limits: burst 3, one used above.
    assert!(bucket.check(&key).await.is_allowed());
    assert!(bucket.check(&key).await.is_allowed());
    assert!(
        !bucket.check(&key).await.is_allowed(),
        "the local limiter still limits"
    );

    redis.restart().await;
    // The probe pings once a second; wait for the switch back (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while limiter.in_fallback() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never returned to Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauge(&snapshotter), Some(0.0));
    // Back on Redis: the restarted server has an empty budget for the key.
    assert!(bucket.check(&key).await.is_allowed());
    assert!(!limiter.in_fallback());
}
