//! Time as an input.
//!
//! Code that depends on "now" (token expiry, TOTP windows, lockouts, idle timeouts)
//! takes a [`Clock`], so tests move time with [`FakeClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current Unix time in whole seconds.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share the time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    nanos: Arc<AtomicI64>,
}

impl FakeClock {
    /// A fake clock at the given Unix time in seconds.
    pub fn at_unix(secs: i64) -> Self {
        Self {
            nanos: Arc::new(AtomicI64::new(secs.saturating_mul(1_000_000_000))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let delta = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(delta, Ordering::SeqCst);
    }

    /// Sets the clock to a Unix time in seconds.
    pub fn set_unix(&self, secs: i64) {
        self.nanos
            .store(secs.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        let nanos = i128::from(self.nanos.load(Ordering::SeqCst));
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_advances_only_when_told() {
        let clock = FakeClock::at_unix(1_000);
        assert_eq!(clock.unix(), 1_000);
        clock.advance(std::time::Duration::from_secs(90));
        assert_eq!(clock.unix(), 1_090);
        let shared = clock.clone();
        shared.set_unix(5);
        assert_eq!(clock.unix(), 5);
    }
}
