//! Rampart's storage: one implementation over sqlx's `Any` driver, SQLite or
//! PostgreSQL chosen at run time, with one migration set per backend.

pub mod audit;
