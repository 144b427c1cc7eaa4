//! Rampart's domain core.
//!
//! Depends only on small traits ([`Clock`]) and plain data; never on axum, sqlx,
//! redis or the configuration file format.

pub mod clock;
pub mod error;

pub use clock::{Clock, FakeClock, SystemClock};
pub use error::ErrorKind;
