//! The Redis backend: one atomic Lua script per decision, budget taken in leases.
//!
//! The script implements GCRA on the shared theoretical arrival time (TAT) of a key,
//! so there is no read-modify-write race between replicas. A round trip per request
//! (~0.3 ms here) would cost more than the proxied request itself, so a replica asks
//! the script for a **lease** of up to `slice` requests at once and spends it
//! locally; a lease is valid for at most [`LEASE_TTL`].
//!
//! Accuracy bound: leased budget is debited from the shared TAT when it is taken, so
//! the cluster never admits more than the shared GCRA allows — except that a lease
//! taken just before a window may be spent inside it, so over any window of length
//! `w` the cluster admits at most `burst + rate × (w + LEASE_TTL)` requests per key
//! (at most `rate × 100 ms` more than a single limiter; 2 requests for the `general`
//! class). Unused leased budget expires with the lease: the error is only ever on
//! the side of admitting fewer requests. The slice is `burst / 8` (1 to 256), so small
//! bursts are decided exactly, one request per round trip.
//!
//! Times are microseconds since the Unix epoch from Rampart's `Clock` (exact in
//! Lua's doubles until the year 2255).

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rampart_core::Clock;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use crate::limit::{Decision, Key, Limit};

/// How long leased budget may be spent.
pub const LEASE_TTL: Duration = Duration::from_millis(100);

/// Largest lease.
pub const MAX_SLICE: u32 = 256;

const LEASE_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local fit = math.floor((now + tau - tat) / t) + 1
if fit <= 0 then
  return {0, 0, tat - tau - now, tat - now}
end
local granted = math.min(fit, want)
local new_tat = tat + granted * t
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {granted, fit - granted, 0, new_tat - now}
";

/// Why Redis could not decide.
#[derive(Debug, thiserror::Error)]
#[error("redis rate-limit backend failed: {0}")]
pub struct RedisError(#[from] redis::RedisError);

#[derive(Debug, Default)]
struct Lease {
    /// Requests left in the lease.
    tokens: u32,
    /// What the shared budget had left beyond the lease when it was taken.
    remaining_after: u32,
    /// Until when the lease may be spent (µs since the epoch).
    expires_us: i64,
    /// Time to a full budget when the lease was taken (µs).
    reset_us: i64,
}

/// One limit, enforced per key on the shared Redis.
pub struct RedisBucket {
    prefix: String,
    limit: Limit,
    slice: u32,
    script: redis::Script,
    connection: ConnectionManager,
    clock: Arc<dyn Clock>,
    leases: DashMap<Key, Arc<Mutex<Lease>>>,
}

impl RedisBucket {
    /// A bucket named `name` enforcing `limit`; its keys are
    /// `<key_prefix>:rl:<name>:<key>`.
    pub fn new(
        key_prefix: &str,
        name: &str,
        limit: Limit,
        connection: ConnectionManager,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            prefix: format!("{key_prefix}:rl:{name}:"),
            slice: (limit.burst.get() / 8).clamp(1, MAX_SLICE),
            limit,
            script: redis::Script::new(LEASE_SCRIPT),
            connection,
            clock,
            leases: DashMap::new(),
        }
    }

    /// Decides one request for `key`: from the local lease when it has budget, else
    /// with one script call.
    pub async fn check(&self, key: &Key) -> Result<Decision, RedisError> {
        let lease = self.leases.entry(key.clone()).or_default().value().clone();
        // One refill in flight per key: concurrent requests for the same key wait for
        // it instead of each taking a lease (which would strand budget).
        let mut lease = lease.lock().await;
        let now_us = now_micros(self.clock.as_ref());
        if lease.tokens > 0 && now_us < lease.expires_us {
            lease.tokens -= 1;
            return Ok(self.allowed(&lease, now_us));
        }
        let interval_us =
            i64::try_from((self.limit.interval_nanos() / 1000).max(1)).unwrap_or(i64::MAX);
        let tolerance_us = interval_us.saturating_mul(i64::from(self.limit.burst.get() - 1));
        let mut connection = self.connection.clone();
        let (granted, remaining_after, retry_us, reset_us): (i64, i64, i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(now_us)
            .arg(interval_us)
            .arg(tolerance_us)
            .arg(self.slice)
            .invoke_async(&mut connection)
            .await?;
        if granted <= 0 {
            *lease = Lease::default();
            return Ok(Decision::Limited {
                limit: self.limit.burst.get(),
                retry_after: micros(retry_us),
                reset: micros(reset_us),
            });
        }
        *lease = Lease {
            tokens: u32::try_from(granted - 1).unwrap_or(0),
            remaining_after: u32::try_from(remaining_after).unwrap_or(0),
            expires_us: now_us
                .saturating_add(i64::try_from(LEASE_TTL.as_micros()).unwrap_or(i64::MAX)),
            reset_us,
        };
        Ok(self.allowed(&lease, now_us))
    }

    fn allowed(&self, lease: &Lease, _now_us: i64) -> Decision {
        Decision::Allowed {
            limit: self.limit.burst.get(),
            remaining: lease.tokens.saturating_add(lease.remaining_after),
            reset: micros(lease.reset_us),
        }
    }

    /// Forgets expired leases.
    pub fn purge(&self) {
        let now_us = now_micros(self.clock.as_ref());
        self.leases.retain(|_, lease| match lease.try_lock() {
            Ok(lease) => lease.expires_us > now_us,
            Err(_) => true,
        });
    }

    /// Drops every local lease (used when switching back from the fallback, so budget
    /// leased before the outage is not spent after it).
    pub fn forget_leases(&self) {
        self.leases.clear();
    }
}

fn now_micros(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.now().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}
