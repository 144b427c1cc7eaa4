//! A real SMTP server on loopback for tests: Python's `aiosmtpd` delivering into a
//! Maildir (`scripts/test` installs it). Rampart's mailer talks real SMTP to it; tests
//! read the delivered messages from `<dir>/new/`.

// Helpers shared by test modules; not every module uses every helper.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to start, and a message to arrive.
const DEADLINE: Duration = Duration::from_secs(30);

/// A running `aiosmtpd`, killed on drop.
pub struct SmtpSink {
    child: Child,
    addr: SocketAddr,
    maildir: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server on a free loopback port and waits until it accepts
    /// connections.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let log = dir.path().join("aiosmtpd.log");
        // The port is found by binding and releasing it; another process could take it
        // in between, in which case aiosmtpd exits and the next attempt picks another.
        for _ in 0..3 {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut child = Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("python3 with aiosmtpd (scripts/test installs it: pip install aiosmtpd)");
            match wait_until_listening(&mut child, addr).await {
                Ok(()) => {
                    return Self {
                        child,
                        addr,
                        maildir,
                        log,
                        _dir: dir,
                    };
                }
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!(
                        "aiosmtpd on port {port} did not start ({reason}): {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        panic!("aiosmtpd did not start; is it installed (pip install aiosmtpd)?");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `[email]` and `[email.smtp]` TOML pointing Rampart at this server, plain SMTP
    /// on loopback.
    pub fn email_toml(&self) -> String {
        format!(
            "[email]\nfrom = \"Rampart <rampart@example.test>\"\n\n\
             [email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"10s\"\n",
            self.port()
        )
    }

    /// The delivered messages, oldest first (raw RFC 5322 text).
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| {
                let modified = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, e.path())
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .filter_map(|(_, path)| std::fs::read_to_string(path).ok())
            .collect()
    }

    /// Waits (polling, bounded) until at least `n` messages were delivered; returns
    /// all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} message(s) within {DEADLINE:?}, got {}; server log: {}",
                messages.len(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Maildir the server delivers into.
    pub fn maildir(&self) -> &Path {
        &self.maildir
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn wait_until_listening(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("exited with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("not listening after {DEADLINE:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Undoes quoted-printable (RFC 2045 §6.7) — soft line breaks and `=XX` — so a long
/// link wrapped by the mailer can be found whole.
pub fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first `…/auth/magic-link?code=<43 chars>` link in a message.
pub fn magic_link(message: &str) -> Option<String> {
    let text = decode_quoted_printable(message);
    let marker = "/auth/magic-link?code=";
    let at = text.find(marker)?;
    let start = text[..at]
        .rfind("https://")
        .or_else(|| text[..at].rfind("http://"))?;
    let end = at + marker.len() + 43;
    text.get(start..end).map(str::to_owned)
}
