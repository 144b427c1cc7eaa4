//! The memory backend: governor's keyed GCRA, per process.
//!
//! Also the local limiter the Redis backend falls back to. Time comes from Rampart's
//! [`Clock`] (tests drive it with `FakeClock`), adapted to governor's clock trait.

use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use rampart_core::Clock;

use crate::limit::{Decision, Key, Limit};

/// Rampart's clock as governor's: nanoseconds since the Unix epoch.
#[derive(Clone)]
pub struct ClockAdapter(Arc<dyn Clock>);

impl ClockAdapter {
    /// Wraps `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(clock)
    }
}

impl GovernorClock for ClockAdapter {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let nanos = self.0.now().unix_timestamp_nanos();
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
    }
}

type Keyed = RateLimiter<Key, DashMapStateStore<Key>, ClockAdapter, StateInformationMiddleware>;

/// One limit, enforced per key in this process.
pub struct MemoryBucket {
    limiter: Keyed,
    limit: Limit,
    clock: ClockAdapter,
}

impl MemoryBucket {
    /// A bucket enforcing `limit`.
    pub fn new(limit: Limit, clock: Arc<dyn Clock>) -> Self {
        let clock = ClockAdapter::new(clock);
        let quota = Quota::with_period(Duration::from_nanos(limit.interval_nanos()))
            .unwrap_or_else(|| Quota::per_second(limit.rate))
            .allow_burst(limit.burst);
        let limiter = RateLimiter::dashmap_with_clock(quota, clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        Self {
            limiter,
            limit,
            clock,
        }
    }

    /// Decides one request for `key`.
    pub fn check(&self, key: &Key) -> Decision {
        let interval = Duration::from_nanos(self.limit.interval_nanos());
        let burst = self.limit.burst.get();
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision::Allowed {
                    limit: burst,
                    remaining,
                    reset: interval.saturating_mul(burst.saturating_sub(remaining)),
                }
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.clock.now());
                Decision::Limited {
                    limit: burst,
                    retry_after,
                    reset: retry_after.saturating_add(interval.saturating_mul(burst - 1)),
                }
            }
        }
    }

    /// Forgets keys whose budget is full again (memory hygiene for many client IPs).
    pub fn purge(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.limiter.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use rampart_core::FakeClock;

    use super::*;

    fn limit(rate: u32, burst: u32) -> Limit {
        Limit::new(
            NonZeroU32::new(rate).unwrap(),
            Duration::from_secs(1),
            NonZeroU32::new(burst).unwrap(),
        )
    }

    #[test]
    fn burst_passes_then_refuses_then_refills_at_the_rate() {
        let clock = FakeClock::at_unix(1_700_000_000);
        let bucket = MemoryBucket::new(limit(5, 10), Arc::new(clock.clone()));
        let key = Key::Ip("203.0.113.9".parse().unwrap());
        for i in 0..10 {
            let decision = bucket.check(&key);
            assert!(decision.is_allowed(), "request {i}");
            if let Decision::Allowed { remaining, .. } = decision {
                assert_eq!(remaining, 9 - i);
            }
        }
        match bucket.check(&key) {
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_millis(200));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        clock.advance(Duration::from_millis(200));
        assert!(bucket.check(&key).is_allowed());
        assert!(!bucket.check(&key).is_allowed());
        clock.advance(Duration::from_secs(2));
        for _ in 0..10 {
            assert!(bucket.check(&key).is_allowed());
        }
        assert!(!bucket.check(&key).is_allowed());
    }

    #[test]
    fn keys_are_independent() {
        let clock = FakeClock::at_unix(1_700_000_000);
        let bucket = MemoryBucket::new(limit(1, 1), Arc::new(clock));
        let a = Key::Ip("203.0.113.1".parse().unwrap());
        let b = Key::Ip("203.0.113.2".parse().unwrap());
        assert!(bucket.check(&a).is_allowed());
        assert!(!bucket.check(&a).is_allowed());
        assert!(bucket.check(&b).is_allowed());
    }
}
