//! Rebuilds the crate when a migration file is added, removed or changed.
//!
//! `sqlx::migrate!` embeds the files at compile time, but the compiler only tracks
//! files that existed at the last build; without this a new migration would be missing
//! from the binary until some Rust source changed.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
