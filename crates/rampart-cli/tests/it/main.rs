//! Integration tests of the `rampart` binary: the command tree, serve, init, doctor,
//! demo, and the guarantee that secrets never reach the logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_openapi;
mod audit;
mod common;
mod demo;
mod help;
mod init_doctor;
mod metrics;
mod secrets_in_logs;
mod serve;
mod storage;
mod support;
