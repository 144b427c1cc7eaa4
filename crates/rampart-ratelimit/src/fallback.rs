//! The limiter facade: the configured backend, and the local fallback when Redis is
//! unreachable.
//!
//! With the Redis backend every bucket also keeps a local (memory) limiter with the
//! same limit. The first Redis error flips the limiter into fallback at once — the
//! request that saw the error is decided locally, neither admitted unconditionally
//! nor refused — sets `rampart_ratelimit_backend_fallback` to 1 and logs a warning.
//! A background probe pings Redis every second; when it answers, decisions return to
//! Redis (gauge 0, an info line). During the outage each replica enforces the limit
//! on its own, so the cluster admits up to one budget per replica: degraded, not off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rampart_core::Clock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::limit::{Decision, Key, Limit};
use crate::memory::MemoryBucket;
use crate::redis::RedisBucket;
use crate::{FALLBACK_GAUGE, REJECTIONS_TOTAL};

/// Which backend decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Per process.
    Memory,
    /// Shared Redis, with local fallback.
    Redis,
}

/// Why the Redis backend could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL for rate limiting: {0}")]
pub struct SetupError(#[from] redis::RedisError);

struct Shared {
    clock: Arc<dyn Clock>,
    redis: Option<ConnectionManager>,
    /// `redis.key_prefix`: the namespace of this deployment's keys.
    key_prefix: Arc<str>,
    degraded: AtomicBool,
    buckets: std::sync::Mutex<Vec<Arc<BucketInner>>>,
}

/// Creates buckets and watches the backend's health. Cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

impl RateLimiter {
    /// A limiter on the memory backend.
    pub fn memory(clock: Arc<dyn Clock>) -> Self {
        Self::with(clock, None, "rampart")
    }

    /// A limiter on Redis at `url` (a secret: it may hold a password; never logged),
    /// its keys named `<key_prefix>:rl:<bucket>:<key>` (`redis.key_prefix`: replicas
    /// of one deployment share budgets because they share the prefix).
    /// Starts in fallback if Redis cannot be reached yet. Must run inside a Tokio
    /// runtime: it spawns the health probe and the memory purge.
    pub async fn redis(
        url: &rampart_crypto::SecretString,
        connect_timeout: Duration,
        response_timeout: Duration,
        key_prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let client = redis::Client::open(url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = match ConnectionManager::new_with_config(client.clone(), config.clone()).await
        {
            Ok(manager) => manager,
            Err(error) => {
                // Unreachable at start: decide locally, keep retrying in the probe.
                tracing::warn!(%error, "Redis unreachable at start; rate limiting falls back to the local limiter");
                ConnectionManager::new_lazy_with_config(client, config)?
            }
        };
        let limiter = Self::with(clock, Some(manager), key_prefix);
        if limiter.ping().await.is_err() {
            limiter.enter_fallback("unreachable at start");
        }
        limiter.spawn_probe();
        Ok(limiter)
    }

    fn with(clock: Arc<dyn Clock>, redis: Option<ConnectionManager>, key_prefix: &str) -> Self {
        metrics::gauge!(FALLBACK_GAUGE).set(0.0);
        let limiter = Self {
            shared: Arc::new(Shared {
                clock,
                redis,
                key_prefix: Arc::from(key_prefix),
                degraded: AtomicBool::new(false),
                buckets: std::sync::Mutex::new(Vec::new()),
            }),
        };
        limiter.spawn_purge();
        limiter
    }

    /// The configured backend.
    pub fn backend(&self) -> Backend {
        if self.shared.redis.is_some() {
            Backend::Redis
        } else {
            Backend::Memory
        }
    }

    /// Whether decisions are currently made by the local fallback.
    pub fn in_fallback(&self) -> bool {
        self.shared.degraded.load(Ordering::Acquire)
    }

    /// A bucket named `name` (stable across replicas: it is the shared Redis key
    /// prefix) enforcing `limit`.
    pub fn bucket(&self, name: &str, limit: Limit) -> Bucket {
        let inner = Arc::new(BucketInner {
            name: Arc::from(name),
            memory: MemoryBucket::new(limit, Arc::clone(&self.shared.clock)),
            redis: self.shared.redis.clone().map(|connection| {
                RedisBucket::new(
                    &self.shared.key_prefix,
                    name,
                    limit,
                    connection,
                    Arc::clone(&self.shared.clock),
                )
            }),
        });
        if let Ok(mut buckets) = self.shared.buckets.lock() {
            buckets.push(Arc::clone(&inner));
        }
        Bucket {
            inner,
            limiter: self.clone(),
        }
    }

    fn enter_fallback(&self, reason: &str) {
        if !self.shared.degraded.swap(true, Ordering::AcqRel) {
            metrics::gauge!(FALLBACK_GAUGE).set(1.0);
            tracing::warn!(
                reason,
                "Redis rate-limit backend unavailable: falling back to the local limiter"
            );
        }
    }

    fn leave_fallback(&self) {
        if self.shared.degraded.swap(false, Ordering::AcqRel) {
            metrics::gauge!(FALLBACK_GAUGE).set(0.0);
            if let Ok(buckets) = self.shared.buckets.lock() {
                for bucket in buckets.iter() {
                    if let Some(redis) = &bucket.redis {
                        redis.forget_leases();
                    }
                }
            }
            tracing::info!("Redis rate-limit backend reachable again: limiting returns to Redis");
        }
    }

    async fn ping(&self) -> Result<(), redis::RedisError> {
        let Some(connection) = &self.shared.redis else {
            return Ok(());
        };
        let mut connection = connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
    }

    fn spawn_probe(&self) {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                let limiter = RateLimiter { shared };
                if limiter.in_fallback() && limiter.ping().await.is_ok() {
                    limiter.leave_fallback();
                }
            }
        });
    }

    fn spawn_purge(&self) {
        let weak = Arc::downgrade(&self.shared);
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                let buckets: Vec<Arc<BucketInner>> = match shared.buckets.lock() {
                    Ok(buckets) => buckets.clone(),
                    Err(_) => return,
                };
                for bucket in buckets {
                    bucket.memory.purge();
                    if let Some(redis) = &bucket.redis {
                        redis.purge();
                    }
                }
            }
        });
    }
}

struct BucketInner {
    name: Arc<str>,
    memory: MemoryBucket,
    redis: Option<RedisBucket>,
}

/// One limit, checked per key. Cheap to clone.
#[derive(Clone)]
pub struct Bucket {
    inner: Arc<BucketInner>,
    limiter: RateLimiter,
}

impl Bucket {
    /// Decides one request for `key`. Never fails: a Redis error falls back to the
    /// local limiter for this and later requests.
    pub async fn check(&self, key: &Key) -> Decision {
        let decision = match &self.inner.redis {
            Some(redis) if !self.limiter.in_fallback() => match redis.check(key).await {
                Ok(decision) => decision,
                Err(error) => {
                    self.limiter.enter_fallback(&error.to_string());
                    self.inner.memory.check(key)
                }
            },
            _ => self.inner.memory.check(key),
        };
        if !decision.is_allowed() {
            metrics::counter!(REJECTIONS_TOTAL, "bucket" => self.inner.name.to_string())
                .increment(1);
        }
        decision
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}
