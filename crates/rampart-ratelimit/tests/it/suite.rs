//! The behaviour every backend must have, with exact counts on a fake clock.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::FakeClock;
use rampart_crypto::SecretString;
use rampart_ratelimit::{Decision, Key, Limit, RateLimiter};

fn limit(rate: u32, burst: u32) -> Limit {
    Limit::new(
        NonZeroU32::new(rate).unwrap(),
        Duration::from_secs(1),
        NonZeroU32::new(burst).unwrap(),
    )
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid())
}

fn uuid() -> String {
    let mut bytes = [0u8; 8];
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn redis_url() -> SecretString {
    SecretString::from(
        std::env::var("RAMPART_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
    )
}

async fn limiter(backend: &str, clock: &FakeClock) -> RateLimiter {
    let clock = Arc::new(clock.clone());
    match backend {
        "memory" => RateLimiter::memory(clock),
        "redis" => {
            let limiter = RateLimiter::redis(
                &redis_url(),
                Duration::from_secs(2),
                Duration::from_secs(2),
                "rampart-test",
                clock,
            )
            .await
            .unwrap();
            assert!(
                !limiter.in_fallback(),
                "the shared Redis must be reachable for this test"
            );
            limiter
        }
        other => panic!("unknown backend {other}"),
    }
}

macro_rules! on_both_backends {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run($backend: &str) $body

            #[tokio::test]
            async fn memory() {
                run("memory").await;
            }

            #[tokio::test]
            async fn redis() {
                run("redis").await;
            }
        }
    };
}

on_both_backends!(
    burst_passes_next_is_refused_budget_refills_at_the_rate,
    |backend| {
        let clock = FakeClock::at_unix(1_800_000_000);
        let limiter = limiter(backend, &clock).await;
        // The `auth` class defaults: 5/s, burst 10.
        let bucket = limiter.bucket(&unique("auth"), limit(5, 10));
        let key = Key::Ip("203.0.113.7".parse().unwrap());
        for i in 0..10 {
            assert!(
                bucket.check(&key).await.is_allowed(),
                "request {i} of the burst"
            );
        }
        match bucket.check(&key).await {
            Decision::Limited {
                retry_after, limit, ..
            } => {
                assert_eq!(limit, 10);
                assert_eq!(retry_after, Duration::from_millis(200));
            }
            other => panic!("the 11th request must be refused: {other:?}"),
        }
        // One interval later exactly one more request fits.
        clock.advance(Duration::from_millis(200));
        assert!(bucket.check(&key).await.is_allowed());
        assert!(!bucket.check(&key).await.is_allowed());
        // A full refill: 10 × 200 ms.
        clock.advance(Duration::from_secs(2));
        for i in 0..10 {
            assert!(
                bucket.check(&key).await.is_allowed(),
                "request {i} after refill"
            );
        }
        assert!(!bucket.check(&key).await.is_allowed());
    }
);

on_both_backends!(
    remaining_counts_down_and_reset_reports_the_refill,
    |backend| {
        let clock = FakeClock::at_unix(1_800_000_000);
        let limiter = limiter(backend, &clock).await;
        let bucket = limiter.bucket(&unique("general"), limit(20, 5));
        let key = Key::Ip("198.51.100.1".parse().unwrap());
        match bucket.check(&key).await {
            Decision::Allowed {
                limit,
                remaining,
                reset,
            } => {
                assert_eq!(limit, 5);
                assert_eq!(remaining, 4);
                assert_eq!(reset, Duration::from_millis(50));
            }
            other => panic!("{other:?}"),
        }
    }
);

on_both_backends!(keys_have_separate_budgets, |backend| {
    let clock = FakeClock::at_unix(1_800_000_000);
    let limiter = limiter(backend, &clock).await;
    let bucket = limiter.bucket(&unique("general"), limit(1, 2));
    let a = Key::Ip("192.0.2.1".parse().unwrap());
    let b = Key::Name(Arc::from("user-b"));
    assert!(bucket.check(&a).await.is_allowed());
    assert!(bucket.check(&a).await.is_allowed());
    assert!(!bucket.check(&a).await.is_allowed());
    assert!(bucket.check(&b).await.is_allowed());
});

#[tokio::test]
async fn replicas_on_redis_share_one_budget() {
    let clock = FakeClock::at_unix(1_800_000_000);
    let name = unique("shared");
    let replicas = [
        limiter("redis", &clock).await,
        limiter("redis", &clock).await,
        limiter("redis", &clock).await,
    ];
    let buckets: Vec<_> = replicas
        .iter()
        .map(|r| r.bucket(&name, limit(1, 30)))
        .collect();
    let key = Key::Ip("203.0.113.50".parse().unwrap());
    let mut admitted = 0;
    for round in 0..30 {
        for bucket in &buckets {
            if bucket.check(&key).await.is_allowed() {
                admitted += 1;
            }
            let _ = round;
        }
    }
    // 90 attempts across three replicas against a shared burst of 30 and no time
    // passing: the cluster admits the budget once, not once per replica.
    assert_eq!(admitted, 30);
}

on_both_backends!(a_client_under_its_rate_is_never_refused, |backend| {
    // The `general` class defaults (20/s, burst 50). A client sending one request
    // every 150 ms (6.7/s) stays well under its rate, so its whole burst is there
    // when it needs it. On Redis each of its leases expires before the next
    // request: a backend that charged it for whole leases (burst / 8 = 6 a time)
    // would have eaten the burst by then.
    let clock = FakeClock::at_unix(1_800_000_000);
    let limiter = limiter(backend, &clock).await;
    let bucket = limiter.bucket(&unique("general"), limit(20, 50));
    let key = Key::Ip("203.0.113.80".parse().unwrap());
    for i in 0..100 {
        assert!(
            bucket.check(&key).await.is_allowed(),
            "request {i} at 6.7/s"
        );
        clock.advance(Duration::from_millis(150));
    }
    for i in 0..50 {
        assert!(bucket.check(&key).await.is_allowed(), "burst request {i}");
    }
    assert!(!bucket.check(&key).await.is_allowed());
});

on_both_backends!(
    a_hot_key_that_goes_quiet_gets_its_unspent_budget_back,
    |backend| {
        // 1/s, burst 64 (Redis leases grow to 8). Spend 37 of the burst quickly —
        // leases grow while the key is hot — then go quiet without letting a second
        // pass: what the last lease held but did not spend is refunded, so the client
        // can still take exactly the 27 left, and not one more.
        let clock = FakeClock::at_unix(1_800_000_000);
        let limiter = limiter(backend, &clock).await;
        let bucket = limiter.bucket(&unique("refund"), limit(1, 64));
        let key = Key::Ip("203.0.113.81".parse().unwrap());
        for i in 0..37 {
            assert!(bucket.check(&key).await.is_allowed(), "request {i}");
        }
        // Past the lease lifetime (100 ms) but far from a refill (1 s).
        clock.advance(Duration::from_millis(200));
        for i in 0..27 {
            assert!(
                bucket.check(&key).await.is_allowed(),
                "request {} after the pause",
                37 + i
            );
        }
        assert!(!bucket.check(&key).await.is_allowed());
    }
);
