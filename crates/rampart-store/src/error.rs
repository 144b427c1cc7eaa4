//! sqlx errors → [`StoreError`]: who is at fault, without leaking values.
//!
//! The driver error is kept as the `source` (for the log); the message shown upward
//! names only the record kind. Database error codes are backend-specific by nature, so
//! this is one of the few places that looks at SQLite and PostgreSQL codes.

use rampart_core::store::StoreError;

/// Classifies a driver error from an operation on `what` (e.g. `"vault secret"`).
pub(crate) fn db_error(err: sqlx::Error, what: &'static str) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound { what },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable {
            source: Box::new(err),
        },
        sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Conflict { what },
        sqlx::Error::Database(ref db) if is_transient(db.as_ref()) => StoreError::Unavailable {
            source: Box::new(err),
        },
        sqlx::Error::Configuration(source) => StoreError::Config {
            // sqlx's configuration errors name the offending parameter, never the
            // whole URL, so the text is safe to show.
            reason: source.to_string(),
        },
        other => StoreError::Internal {
            source: Box::new(other),
        },
    }
}

/// A closure for `map_err`.
pub(crate) fn on(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |err| db_error(err, what)
}

/// Whether a database error means "try again later" rather than a bug.
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else { return false };
    // SQLite codes are numbers and PostgreSQL's SQLSTATEs can look like numbers too
    // ("53300"), so the driver decides which table applies.
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        sqlite_transient(&code)
    } else {
        postgres_transient(&code)
    }
}

/// SQLite result codes: 5 `SQLITE_BUSY` and 6 `SQLITE_LOCKED`; extended codes carry
/// the primary code in the low byte (517 `SQLITE_BUSY_SNAPSHOT`).
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i64>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// PostgreSQL SQLSTATEs: class 08 (connection exception), 53 (insufficient
/// resources, e.g. too many connections), 57P01–57P03 (shutdown, cannot connect now),
/// and 40001/40P01 (serialization failure, deadlock), which a retry resolves.
fn postgres_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use rampart_core::ErrorKind;

    use super::*;

    #[test]
    fn transient_codes() {
        for code in ["5", "6", "517", "261"] {
            assert!(sqlite_transient(code), "{code}");
        }
        for code in ["19", "2067", "14"] {
            assert!(!sqlite_transient(code), "{code}");
        }
        for code in ["08006", "53300", "57P01", "40001"] {
            assert!(postgres_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "00005"] {
            assert!(!postgres_transient(code), "{code}");
        }
    }

    #[test]
    fn pool_and_row_errors() {
        assert_eq!(
            db_error(sqlx::Error::PoolTimedOut, "x").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            db_error(sqlx::Error::RowNotFound, "x").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            db_error(sqlx::Error::ColumnNotFound("c".into()), "x").kind(),
            ErrorKind::Internal
        );
    }
}
