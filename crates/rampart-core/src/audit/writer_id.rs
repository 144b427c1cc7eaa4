//! [`WriterId`]: which process wrote a record or signed a checkpoint.
//!
//! Several processes append to one audit chain — `rampart serve` replicas sharing a
//! database, and maintenance commands (`rampart users …`, `rampart secrets set`) run
//! beside them — so every record and checkpoint names its writer. The id is the host
//! name and a random 64-bit value drawn at each start (`gw-2.example/3f0c9a…`): an
//! operator sees which machine and which run wrote what, and verification can tell
//! which records a process's audit file must hold (see [`super::verify`]).
//!
//! The id is part of the hashed record and of the signed checkpoint, so it cannot be
//! changed afterwards without the chain or a signature saying so. It is *not* an
//! authentication: any process that can write the database can claim any id. It is
//! restricted to a small alphabet so it reads unambiguously in a log line.

use std::fmt;
use std::str::FromStr;

use rampart_crypto::random::{self, RandomError};

/// Longest writer id, in bytes.
pub const MAX_WRITER_ID_LEN: usize = 128;

/// Longest host name part of a generated id; longer names are cut.
const MAX_HOST_LEN: usize = 64;

/// The id of one audit-writing process (one start of it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriterId(String);

impl WriterId {
    /// A fresh id for this process start: `<host name>/<16 random hex digits>`.
    ///
    /// The host name is read from the kernel (`/proc/sys/kernel/hostname`) or
    /// `$HOSTNAME`, reduced to the id alphabet; `unknown-host` if neither is there.
    pub fn generate() -> Result<Self, RandomError> {
        let run = random::bytes::<8>()?;
        Ok(Self(format!("{}/{}", host_name(), hex::encode(run))))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Not a writer id: empty, longer than [`MAX_WRITER_ID_LEN`], or a character outside
/// ASCII letters, digits and `. _ - : /`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a writer id is 1 to 128 ASCII letters, digits or . _ - : /")]
pub struct MalformedWriterId;

impl FromStr for WriterId {
    type Err = MalformedWriterId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty() && s.len() <= MAX_WRITER_ID_LEN && s.bytes().all(allowed);
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(MalformedWriterId)
        }
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/')
}

/// This machine's name, in the id alphabet (without `/`, which separates the run).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = raw
        .trim()
        .bytes()
        .take(MAX_HOST_LEN)
        .map(|b| {
            if allowed(b) && b != b'/' {
                b as char
            } else {
                '-'
            }
        })
        .collect();
    if host.is_empty() {
        "unknown-host".to_owned()
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_differ_per_start_and_parse_back() {
        let a = WriterId::generate().unwrap();
        let b = WriterId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<WriterId>(), Ok(a.clone()));
        let (host, run) = a.as_str().rsplit_once('/').unwrap();
        assert!(!host.is_empty() && !host.contains('/'));
        assert_eq!(run.len(), 16);
    }

    #[test]
    fn only_the_small_alphabet_is_accepted() {
        for bad in [
            "",
            "with space/1",
            "new\nline",
            "quote\"",
            "ünïcode",
            &"x".repeat(MAX_WRITER_ID_LEN + 1),
        ] {
            assert_eq!(bad.parse::<WriterId>(), Err(MalformedWriterId), "{bad:?}");
        }
        assert!(
            "gw-2.example.org/0123456789abcdef"
                .parse::<WriterId>()
                .is_ok()
        );
        assert!("x".repeat(MAX_WRITER_ID_LEN).parse::<WriterId>().is_ok());
    }
}
