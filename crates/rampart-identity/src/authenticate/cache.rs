//! A small bounded map whose entries expire on the [`Clock`](rampart_core::Clock).
//!
//! Used for the hot path of authentication: verified access tokens, sessions, API
//! tokens and refresh-family states. Bounded so hostile traffic (a flood of distinct
//! valid-looking credentials) cannot grow memory: when full, expired entries are
//! dropped first, then arbitrary ones — a cache miss only costs a verification or a
//! database read, never a wrong answer. Entries expire on the injected clock so tests
//! with a fake clock are deterministic. The lock is a plain mutex held for map
//! operations only, never across an `.await`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A bounded map with per-entry expiry (Unix seconds).
pub(crate) struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

struct Entry<V> {
    value: V,
    expires_unix: i64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache holding at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The value for `key` if present and not expired at `now_unix`.
    pub(crate) fn get(&self, key: &K, now_unix: i64) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) if entry.expires_unix > now_unix => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` until `expires_unix`.
    pub(crate) fn insert(&self, key: K, value: V, expires_unix: i64, now_unix: i64) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.expires_unix > now_unix);
            if entries.len() >= self.capacity {
                // Evict an eighth, arbitrarily: cheaper than LRU bookkeeping on every
                // hit, and a miss is only a re-verification.
                let evict: Vec<K> = entries
                    .keys()
                    .take((self.capacity / 8).max(1))
                    .cloned()
                    .collect();
                for k in evict {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                expires_unix,
            },
        );
    }

    /// Removes `key`.
    pub(crate) fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Removes every entry for which `drop` is true (revocation by owner or family).
    pub(crate) fn remove_where(&self, mut drop: impl FnMut(&K, &V) -> bool) {
        self.lock().retain(|k, e| !drop(k, &e.value));
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Number of entries (expired ones included until touched).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        // A panic while holding the lock cannot leave the map inconsistent (every
        // operation is a single map call), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_on_the_given_clock() {
        let cache = TtlCache::new(10);
        cache.insert("a", 1, 100, 0);
        assert_eq!(cache.get(&"a", 99), Some(1));
        assert_eq!(cache.get(&"a", 100), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let cache = TtlCache::new(16);
        for i in 0..1000 {
            cache.insert(i, i, 1_000, 0);
            assert!(cache.len() <= 16);
        }
        // Expired entries go first.
        let cache = TtlCache::new(2);
        cache.insert(1, 1, 5, 0);
        cache.insert(2, 2, 100, 0);
        cache.insert(3, 3, 100, 10);
        assert_eq!(cache.get(&2, 10), Some(2));
        assert_eq!(cache.get(&3, 10), Some(3));
    }

    #[test]
    fn removal_by_predicate() {
        let cache = TtlCache::new(10);
        cache.insert("a", 1, 100, 0);
        cache.insert("b", 2, 100, 0);
        assert_eq!(cache.get(&"a", 0), Some(1));
        cache.remove_where(|_, v| *v == 2);
        assert_eq!(cache.get(&"b", 0), None);
        cache.remove(&"a");
        assert_eq!(cache.get(&"a", 0), None);
    }
}
