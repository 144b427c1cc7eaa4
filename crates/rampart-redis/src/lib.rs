//! Redis plumbing shared by Rampart's replicas that is not rate limiting.
//!
//! - [`fanout`]: one pub/sub channel that every replica publishes on and subscribes
//!   to, with reconnection, a liveness ping on the subscription, and an exact account
//!   of when messages may have been missed.
//!
//! Its own crate so that neither the identity services (which give the messages their
//! meaning) nor the rate limiter (which owns its own Redis connection and script)
//! depends on the other, and the identity services stay free of any network client:
//! the binary wires the two together.

pub mod fanout;
pub mod ping;

pub use fanout::{Fanout, FanoutError, FanoutSettings, Listener};
pub use ping::Ping;
