//! The development outbox: mail appended to a local file instead of being sent.
//!
//! The file is an mbox (mboxrd quoting), so any mail reader opens it
//! (`mutt -f <data_dir>/outbox`). It holds live login links, so it is created with
//! mode 0600 (and an existing file is tightened to 0600), and the transport refuses to
//! exist in production.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::Arc;

use rampart_config::Mode;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::sync::Mutex;

use super::MailError;

/// Appends messages to a file. Development mode only.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    /// Appends are serialized so two messages never interleave.
    lock: Arc<Mutex<()>>,
}

impl Outbox {
    /// An outbox writing to `path`; [`MailError::OutboxInProduction`] in production.
    pub fn new(path: PathBuf, mode: Mode) -> Result<Self, MailError> {
        if mode == Mode::Production {
            return Err(MailError::OutboxInProduction);
        }
        Ok(Self {
            path,
            lock: Arc::new(Mutex::new(())),
        })
    }

    /// Appends `message`, with an mbox separator line dated `at`.
    pub(super) async fn append(
        &self,
        message: &lettre::Message,
        at: OffsetDateTime,
    ) -> Result<(), MailError> {
        let entry = mbox_entry(&message.formatted(), at);
        let path = self.path.clone();
        let _guard = self.lock.lock().await;
        let written = tokio::task::spawn_blocking(move || write_entry(&path, &entry)).await;
        match written {
            Ok(result) => result.map_err(|source| MailError::Outbox {
                path: self.path.clone(),
                source,
            }),
            Err(_) => Err(MailError::Outbox {
                path: self.path.clone(),
                source: std::io::Error::other("the writer task failed"),
            }),
        }
    }
}

fn write_entry(path: &std::path::Path, entry: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a file this call creates.
    let permissions = file.metadata()?.permissions();
    if permissions.mode() & 0o777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(entry)?;
    file.flush()
}

/// One mboxrd entry: a `From ` separator line, the message with LF line ends and
/// `>*From ` lines quoted with one more `>`, and a blank line.
fn mbox_entry(message: &[u8], at: OffsetDateTime) -> Vec<u8> {
    let date = at
        .format(format_description!(
            "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
        ))
        .unwrap_or_default();
    let mut out = format!("From rampart@localhost {date}\n").into_bytes();
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    for line in text.split_inclusive('\n') {
        if line.trim_start_matches('>').starts_with("From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line.as_bytes());
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn mboxrd_quoting() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let entry = mbox_entry(b"Subject: x\r\n\r\nFrom me\r\n>From you\r\nok", at);
        let text = String::from_utf8(entry).unwrap();
        assert_eq!(
            text,
            "From rampart@localhost Tue Nov 14 22:13:20 2023\nSubject: x\n\n>From me\n>>From you\nok\n\n"
        );
    }
}
