//! Integration tests of the `rampart` binary: the command tree, serve, init, doctor,
//! demo, and the guarantee that secrets never reach the logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_accounts;
mod api_admin;
mod api_auth;
mod api_csrf;
mod api_jwt;
mod api_magic;
mod api_mfa;
mod api_openapi;
mod api_registration;
mod api_sessions;
mod api_tokens;
mod audit;
mod cli_tokens;
mod cli_users;
mod common;
mod demo;
mod fwd_nginx;
mod fwd_verify;
mod gw_clientip;
mod gw_cors;
mod gw_headers;
mod gw_inject;
mod gw_limits;
mod gw_normalize;
mod gw_policy;
mod gw_routes;
mod gw_streaming;
mod gw_websocket;
mod ha_replicas;
mod help;
mod init_doctor;
mod metrics;
mod secrets_in_logs;
mod serve;
mod signin;
mod smtp_sink;
mod storage;
mod support;
mod tls_direct;
mod tls_upstream;
