//! Rampart's rate limiting (F-RATELIMIT).
//!
//! Limits are GCRA (generic cell rate algorithm): a rate, a period and a burst. The
//! same [`Limit`] is enforced by one of two backends:
//!
//! - **memory** — governor's keyed GCRA, per process. Lock-free, ~115 ns a decision (docs/PERFORMANCE.md).
//! - **redis** — one atomic Lua script per decision on the shared Redis, so replicas
//!   share one budget. To keep the proxied path fast, a replica takes budget from
//!   Redis in small *leases* (slices of the burst) and spends them locally; see
//!   [`redis`] for the accuracy bound. When Redis fails, a local limiter with the same
//!   limits takes over at once, a metric and a log line say so, and Redis is retried
//!   in the background ([`fallback`]).
//!
//! Callers create a [`Bucket`] per rate class or per-route quota at start, and check
//! a [`Key`] (client IP, principal or token) against it per request.

pub mod classes;
pub mod concurrency;
pub mod fallback;
pub mod limit;
pub mod memory;
pub mod redis;

pub use classes::{Class, Classes, KeyBy};
pub use concurrency::{ConcurrencyLimiter, ConcurrencyPermit};
pub use fallback::{Backend, RateLimiter};
pub use limit::{Decision, Key, Limit};

/// Gauge: 1 while the Redis backend is unreachable and the local limiter decides.
pub const FALLBACK_GAUGE: &str = "rampart_ratelimit_backend_fallback";
/// Counter of refused requests, by `bucket`.
pub const REJECTIONS_TOTAL: &str = "rampart_ratelimit_rejections_total";

/// A bucket: one limit, checked per key.
pub type Bucket = fallback::Bucket;
