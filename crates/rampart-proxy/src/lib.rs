//! Rampart's data path.
//!
//! A proxied request passes through named phases (see [`gateway`] and
//! `docs/life-of-a-request.md`): `route()` (normalize the path, match a route) →
//! `authenticate()` → `authorize()` → `rate_limit()` → `upstream_request()` (header
//! hygiene, forwarding and identity headers) → `send()` → `respond()` → `log()`.

pub mod body;
pub mod body_guard;
pub mod cors;
pub mod forward_auth;
pub mod gateway;
pub mod headers;
pub mod normalize;
pub mod policy;
pub mod respond;
pub mod secrets;
pub mod upstream;

pub use gateway::{Gateway, GatewayDeps, front};
