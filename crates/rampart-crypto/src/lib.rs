//! Rampart's cryptography.
//!
//! Everything here is pure computation over bytes and files: no HTTP, no SQL, no
//! configuration format. Secrets are newtypes ([`SecretString`], [`SecretBytes`]) that
//! redact themselves in `Debug`/`Display`, zeroize on drop, and must be exposed
//! explicitly. Primitives come from RustCrypto; nothing here implements a primitive.

pub mod master_key;
pub mod random;
pub mod secret;
pub mod secret_file;

pub use secret::{SecretBytes, SecretString};
