//! The Redis backend: one atomic Lua script per decision, budget taken in leases.
//!
//! The script implements GCRA on the shared theoretical arrival time (TAT) of a key,
//! so there is no read-modify-write race between replicas. A round trip per request
//! (~0.1 ms on loopback, more across hosts) would cost more than the proxied request
//! itself, so a replica asks the script for a **lease** of several requests at once
//! and spends it locally; a lease is valid for at most [`LEASE_TTL`].
//!
//! Leases grow with demand: a key's first lease is one request (a client seen now and
//! then is decided exactly, one round trip per request), and each lease spent to the
//! last request before it expired doubles the next, up to `burst / 8` (1 to 256), so a
//! hot key costs one round trip per many requests. A lease that expired with requests
//! left is refunded to the shared TAT with the key's next lease request and the next
//! lease starts small again, so an occasional client is never charged for budget it
//! did not use.
//!
//! Accuracy bound: leased budget is debited from the shared TAT when it is taken, so
//! the cluster never admits more than the shared GCRA allows — except that a lease
//! taken just before a window may be spent inside it, so over any window of length
//! `w` the cluster admits at most `burst + rate × (w + LEASE_TTL)` requests per key
//! (at most `rate × 100 ms` more than a single limiter; 2 requests for the `general`
//! class). Budget stranded in another replica's unspent lease can only make the
//! cluster admit fewer requests, for at most [`LEASE_TTL`].
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
local refund = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
tat = tat - refund * t
if tat < now then tat = now end
local fit = math.floor((now + tau - tat) / t) + 1
if fit <= 0 then
  if refund > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
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
    /// How many requests this key's next lease asks for (0 means 1: not yet seen).
    next_slice: u32,
}

impl Lease {
    /// Sizes the next lease from how the last one went, and returns what of it to
    /// refund: a lease spent before it expired means the key is hot (ask for twice as
    /// much, up to `max`); one that expired with requests left means it is not (give
    /// them back, start again at one).
    fn settle(&mut self, now_us: i64, max: u32) -> (u32, u32) {
        let current = self.next_slice.max(1);
        if self.tokens == 0 && now_us < self.expires_us {
            self.next_slice = current.saturating_mul(2).min(max);
            (self.next_slice, 0)
        } else {
            let refund = self.tokens;
            self.next_slice = 1;
            (1, refund)
        }
    }
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
        let (want, refund) = lease.settle(now_us, self.slice);
        let mut connection = self.connection.clone();
        let (granted, remaining_after, retry_us, reset_us): (i64, i64, i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(now_us)
            .arg(interval_us)
            .arg(tolerance_us)
            .arg(want)
            .arg(refund)
            .invoke_async(&mut connection)
            .await?;
        // The refund reached Redis with the script; nothing is left to give back.
        lease.tokens = 0;
        if granted <= 0 {
            *lease = Lease {
                next_slice: 1,
                ..Lease::default()
            };
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
            next_slice: lease.next_slice,
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
