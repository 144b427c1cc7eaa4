//! Rampart's storage: one implementation over sqlx's `Any` driver, SQLite or
//! PostgreSQL chosen at run time, with one migration set per backend.
//!
//! | module       | what                                                             |
//! |--------------|------------------------------------------------------------------|
//! | `connect`    | [`StoreOptions`], [`Store::connect`], pool setup, readiness ping  |
//! | `migrate`    | embedded, checksummed migrations; [`MigrationStatus`]            |
//! | `instance`   | the instance row ([`rampart_core::store::InstanceStore`])        |
//! | `keys`       | wrapped data keys ([`rampart_core::store::KeyStore`])            |
//! | `vault`      | sealed vault secrets ([`rampart_core::store::VaultStore`])       |
//! | `accounts`   | users, credentials, invites, lockouts, pending logins ([`rampart_core::identity::account::AccountStore`]) |
//! | `magic`      | email magic links ([`rampart_core::identity::magic::MagicLinkStore`]) |
//! | `sessions`   | sessions, refresh and API tokens, the JWT keyring ([`rampart_core::identity::session`]) |
//! | `testing`    | a fresh database per test, both backends (feature `testing`)     |
//!
//! # Portability rules
//!
//! Queries are shared text with `$1, $2…` placeholders (SQLite accepts them too).
//! Only portable types cross the driver boundary: `i64`, `String`, `Vec<u8>` and
//! `Option`s of those. Times are `i64` Unix seconds, enums are stable text labels.
//! The few places that must differ per backend branch on [`Backend`] and say why:
//! starting a write transaction (`BEGIN IMMEDIATE` on SQLite), per-connection SQLite
//! pragmas, finding the migrations table without creating it, and classifying
//! driver error codes.
//!
//! Errors are [`rampart_core::store::StoreError`], re-exported here as [`StoreError`]:
//! the domain and the store speak the same error, and its `kind()` says who is at
//! fault. Nothing here logs or formats the database URL: it may hold credentials.

mod accounts;
pub mod audit;
mod connect;
mod error;
mod instance;
mod keys;
mod magic;
mod migrate;
mod rows;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
mod vault;

pub use connect::{Backend, Store, StoreOptions, sqlite_url};
pub use migrate::{Drift, DriftReason, MigrationInfo, MigrationStatus};
pub use rampart_core::store::StoreError;
