//! The `rampart` binary's library half: commands and wiring, shared with the test kit
//! so tests start exactly what production runs. The only crate that uses `anyhow`.

pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod logging;
pub mod run;
pub mod services;
pub mod signals;
