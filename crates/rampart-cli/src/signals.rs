//! Process signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads.

use tokio::signal::unix::{SignalKind, signal};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// SIGTERM or SIGINT: drain and stop.
    Shutdown,
    /// SIGHUP: reload certificates (and, later, configuration).
    Reload,
}

/// Waits for the next signal of interest.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Call once, early.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> SignalAction {
        tokio::select! {
            _ = self.term.recv() => SignalAction::Shutdown,
            _ = self.int.recv() => SignalAction::Shutdown,
            _ = self.hup.recv() => SignalAction::Reload,
        }
    }
}
