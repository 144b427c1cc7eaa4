//! Rampart's identity services.
//!
//! | module | what |
//! |---|---|
//! | [`verified`] | [`VerifiedIdentity`]: proof that a login flow succeeded |
//! | `accounts` | users, PII at rest, passwords, lockout, registration, invites, TOTP, recovery codes, the login state machine |
//! | `sessions` | browser sessions, CSRF tokens |
//! | `tokens` | the JWT signing keyring, access and refresh tokens, API tokens |
//! | `authenticate` | request credentials → [`rampart_core::identity::Principal`] |
//! | `magic` | email magic links and outgoing mail |
//! | [`fanout`] | cache invalidation across replicas (revocations within 1 s) |
//!
//! Services depend on the storage traits in `rampart_core`, a `Clock`, and the
//! audit log; never on HTTP or SQL.

pub mod accounts;
pub mod authenticate;
pub mod fanout;
pub mod magic;
pub mod mail;
pub mod sessions;
pub mod tokens;
pub mod verified;

pub use verified::{LoginMethod, VerifiedIdentity};
