//! The fan-out channel against real `redis-server` processes: delivery, loss
//! reported when the server dies or stops answering, reconnection, and the resync
//! after a publisher had to drop messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fanout;
