//! Per-principal concurrency limits (e.g. parallel upload chunks).
//!
//! Enforced per process: a permit is held for the life of the request (including a
//! streamed response body) and released on drop, so a crashed request can never leak
//! a slot the way a counter in a remote store could.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limit::Key;

/// At most `limit` concurrent requests per key.
pub struct ConcurrencyLimiter {
    limit: u32,
    slots: DashMap<Key, Arc<Semaphore>>,
}

/// A held slot; released when dropped.
#[derive(Debug)]
pub struct ConcurrencyPermit {
    _permit: OwnedSemaphorePermit,
}

impl ConcurrencyLimiter {
    /// A limiter allowing `limit` concurrent requests per key.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            slots: DashMap::new(),
        }
    }

    /// Takes a slot for `key`, or `None` if all are in use (the caller answers 429).
    pub fn try_acquire(&self, key: &Key) -> Option<ConcurrencyPermit> {
        let semaphore = self
            .slots
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limit as usize)))
            .value()
            .clone();
        semaphore
            .try_acquire_owned()
            .ok()
            .map(|permit| ConcurrencyPermit { _permit: permit })
    }

    /// Forgets keys with no request in flight.
    pub fn purge(&self) {
        let limit = self.limit as usize;
        self.slots
            .retain(|_, semaphore| semaphore.available_permits() < limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_released_on_drop() {
        let limiter = ConcurrencyLimiter::new(2);
        let key = Key::Name(Arc::from("user-1"));
        let a = limiter.try_acquire(&key).unwrap();
        let _b = limiter.try_acquire(&key).unwrap();
        assert!(limiter.try_acquire(&key).is_none());
        assert!(
            limiter
                .try_acquire(&Key::Name(Arc::from("user-2")))
                .is_some()
        );
        drop(a);
        assert!(limiter.try_acquire(&key).is_some());
    }
}
