//! Test helpers for Rampart's integration tests.
//!
//! - [`process`]: run the real `rampart` binary, read its JSON logs, signal it.
//! - [`upstream`]: a programmable upstream that records what it received.
//! - [`client`]: an HTTP client configured for tests (ring-based rustls, no proxies).
//! - [`raw`]: HTTP/1.1 over a bare socket, for requests no real client would send.
//! - [`redis_server`]: a private `redis-server` a test can kill, restart and freeze.
//!
//! Test code: panics are the failure mechanism here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;
pub mod process;
pub mod raw;
pub mod redis_server;
pub mod tcp_proxy;
pub mod upstream;
