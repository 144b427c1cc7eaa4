//! Limits, keys and decisions.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A GCRA limit: `rate` requests per `per`, allowing bursts of `burst`.
///
/// The emission interval is `T = per / rate`; a burst of `burst` requests may arrive
/// at once, after which requests are admitted one per `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per period.
    pub rate: NonZeroU32,
    /// The period.
    pub per: Duration,
    /// Requests allowed at once.
    pub burst: NonZeroU32,
}

impl Limit {
    /// `rate` per `per`, burst `burst`.
    pub fn new(rate: NonZeroU32, per: Duration, burst: NonZeroU32) -> Self {
        Self { rate, per, burst }
    }

    /// The emission interval `T` in nanoseconds (at least 1).
    pub fn interval_nanos(&self) -> u64 {
        let per = u64::try_from(self.per.as_nanos()).unwrap_or(u64::MAX);
        (per / u64::from(self.rate.get())).max(1)
    }

    /// The burst tolerance `τ = T × (burst − 1)` in nanoseconds.
    pub fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos()
            .saturating_mul(u64::from(self.burst.get() - 1))
    }
}

/// What a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A client address (after trusted-proxy resolution).
    Ip(IpAddr),
    /// A principal (user id) or API token id.
    Name(Arc<str>),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "ip:{ip}"),
            Self::Name(name) => write!(f, "id:{name}"),
        }
    }
}

/// The answer for one request, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admit the request.
    Allowed {
        /// The burst size (`RateLimit-Limit`).
        limit: u32,
        /// Requests that could still be admitted at once (`RateLimit-Remaining`).
        remaining: u32,
        /// Time until the budget is fully refilled (`RateLimit-Reset`).
        reset: Duration,
    },
    /// Refuse with 429.
    Limited {
        /// The burst size (`RateLimit-Limit`).
        limit: u32,
        /// Time until one request would be admitted (`Retry-After`).
        retry_after: Duration,
        /// Time until the budget is fully refilled (`RateLimit-Reset`).
        reset: Duration,
    },
}

impl Decision {
    /// Whether the request is admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_parameters() {
        let limit = Limit::new(
            NonZeroU32::new(20).unwrap(),
            Duration::from_secs(1),
            NonZeroU32::new(50).unwrap(),
        );
        assert_eq!(limit.interval_nanos(), 50_000_000);
        assert_eq!(limit.tolerance_nanos(), 49 * 50_000_000);
    }
}
