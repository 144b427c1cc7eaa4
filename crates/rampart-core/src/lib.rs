//! Rampart's domain core.
//!
//! Depends only on small traits ([`Clock`], the storage traits in [`store`]) and plain
//! data; never on axum, sqlx, redis or the configuration file format.

pub mod audit;
pub mod clock;
pub mod error;
pub mod identity;
pub mod keys;
pub mod store;
pub mod vault;

pub use clock::{Clock, FakeClock, SystemClock};
pub use error::ErrorKind;
