//! Integration tests of the HTTP layer: the envelope, middleware and extractors,
//! driven through the same `layered` stack the binary uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod envelope;
