//! Rate-limit integration tests: the same suite on the memory and Redis backends,
//! shared budgets between replicas, and the fallback when Redis dies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fallback;
mod suite;
