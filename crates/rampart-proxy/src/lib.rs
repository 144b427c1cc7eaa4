//! Rampart's data path.
//!
//! A proxied request passes through named phases (see `docs/life-of-a-request.md`):
//! `route()` (normalize the path, match a route) → `authenticate()` → `authorize()` →
//! `rate_limit()` → `upstream_request()` (header hygiene, forwarding and identity
//! headers) → `send()` → `respond()` (security headers) → `log()`.

pub mod normalize;
