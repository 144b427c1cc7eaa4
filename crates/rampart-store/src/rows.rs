//! Conversions between domain values and the portable column types.
//!
//! Times are stored as `i64` Unix seconds and enums as stable text labels, so the same
//! query text and the same Rust types work on SQLite and PostgreSQL. Reading back is
//! checked: a value the domain cannot represent is [`StoreError::Corrupt`], never a
//! default.

use rampart_core::store::StoreError;
use rampart_crypto::{KeyId, MasterKeyKind};
use time::OffsetDateTime;

/// A time as stored.
pub(crate) fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A stored time.
pub(crate) fn time(secs: i64, what: &'static str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| StoreError::corrupt(what, "timestamp out of range"))
}

/// An optional stored time.
pub(crate) fn opt_time(
    secs: Option<i64>,
    what: &'static str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    secs.map(|s| time(s, what)).transpose()
}

/// A stored key id.
pub(crate) fn key_id(text: String, what: &'static str) -> Result<KeyId, StoreError> {
    KeyId::new(text).map_err(|_| StoreError::corrupt(what, "malformed key id"))
}

/// The label of a master key kind. Part of the on-disk format.
pub(crate) fn kind_label(kind: MasterKeyKind) -> &'static str {
    match kind {
        MasterKeyKind::Operator => "operator",
        MasterKeyKind::Development => "development",
    }
}

/// The master key kind with this label.
pub(crate) fn kind_from_label(label: &str) -> Result<MasterKeyKind, StoreError> {
    match label {
        "operator" => Ok(MasterKeyKind::Operator),
        "development" => Ok(MasterKeyKind::Development),
        _ => Err(StoreError::corrupt("instance", "unknown master key kind")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn round_trips() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(time(unix(t), "x").unwrap(), t);
        assert!(time(i64::MAX, "x").is_err());
        assert_eq!(opt_time(None, "x").unwrap(), None);
        for kind in [MasterKeyKind::Operator, MasterKeyKind::Development] {
            assert_eq!(kind_from_label(kind_label(kind)).unwrap(), kind);
        }
        assert!(kind_from_label("dev").is_err());
        assert!(key_id("a b".to_owned(), "x").is_err());
    }
}
