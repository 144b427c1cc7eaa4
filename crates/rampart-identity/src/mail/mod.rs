//! Rampart's outgoing mail: a [`Mailer`] built from `[email]`.
//!
//! Two transports:
//!
//! - **SMTP** (`email.transport = "smtp"` with `[email.smtp]`): lettre's async Tokio
//!   transport over rustls (ring, system roots), honouring `host`, `port`,
//!   `tls = "starttls" | "tls" | "none"`, `username`/`password` and `timeout` (per SMTP
//!   exchange). `starttls` *requires* the upgrade: a server that does not offer it gets
//!   no credentials and no mail (no downgrade).
//! - **Outbox** (`email.transport = "outbox"`): each message is appended to
//!   `email.outbox_path` (mbox format, file mode 0600). Development only — a file of
//!   live login links on the server's disk — so [`Mailer::from_config`] refuses it in
//!   production, in addition to the `email.outbox` guardrail.
//!
//! Without `[email.smtp]` (and not using the outbox), the mailer is
//! [`Mailer::is_enabled`] `false` and [`Mailer::send`] fails with
//! [`MailError::NotConfigured`].
//!
//! Messages are plain text with an optional HTML alternative that loads nothing
//! remote. Their bodies usually carry credentials (magic links), so nothing here logs
//! a body, a subject or a full address: logs carry the recipient's domain at most
//! ([`Mail::recipient_domain`]), and [`MailError`] never includes server reply text,
//! which often quotes the recipient.

mod outbox;
mod smtp;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use rampart_config::{EmailConfig, EmailTransport, Mode};
use rampart_core::{Clock, ErrorKind};

pub use outbox::Outbox;

/// The `From` used by the outbox when `email.from` is not set (dev only).
const DEV_FROM: &str = "Rampart <rampart@localhost>";

/// One message to send. Its `Debug` shows only the recipient's domain.
#[derive(Clone)]
pub struct Mail {
    to: Mailbox,
    subject: String,
    text: String,
    html: Option<String>,
}

impl Mail {
    /// A plain-text message to `to` (an address, optionally with a display name).
    pub fn new(
        to: &str,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<Self, MailError> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|_| MailError::InvalidAddress)?;
        Ok(Self {
            to,
            subject: subject.into(),
            text: text.into(),
            html: None,
        })
    }

    /// Adds an HTML alternative. It must not reference remote content (images,
    /// stylesheets): mail clients that load it tell the sender when and where the
    /// message was opened.
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// The recipient's domain, the most of an address that may be logged.
    pub fn recipient_domain(&self) -> &str {
        self.to.email.domain()
    }

    /// The RFC 5322 message.
    fn message(&self, from: &Mailbox, date: SystemTime) -> Result<lettre::Message, MailError> {
        let builder = lettre::Message::builder()
            .from(from.clone())
            .to(self.to.clone())
            .subject(self.subject.clone())
            .date(date);
        let built = match &self.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                self.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(self.text.clone())),
        };
        built.map_err(|_| MailError::Build)
    }
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to_domain", &self.recipient_domain())
            .finish_non_exhaustive()
    }
}

/// Sends Rampart's mail through the configured transport. Cheap to share (`Arc`).
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    clock: Arc<dyn Clock>,
}

enum Transport {
    /// No transport configured: nothing can be sent.
    None,
    Smtp(smtp::Smtp),
    Outbox(Outbox),
}

impl Mailer {
    /// The mailer `[email]` describes.
    ///
    /// Fails with [`MailError::OutboxInProduction`] for the outbox transport in
    /// production mode — independently of the guardrails, so no code path can write
    /// live login links to a file on a production server — and with
    /// [`MailError::InvalidFrom`] / [`MailError::Smtp`] when the SMTP settings cannot
    /// be used.
    pub fn from_config(
        email: &EmailConfig,
        mode: Mode,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MailError> {
        let from = email
            .from
            .as_deref()
            .unwrap_or(DEV_FROM)
            .parse::<Mailbox>()
            .map_err(|_| MailError::InvalidFrom)?;
        let transport = match email.transport {
            EmailTransport::Outbox => {
                Transport::Outbox(Outbox::new(email.outbox_path.clone(), mode)?)
            }
            EmailTransport::Smtp => match &email.smtp {
                Some(settings) => {
                    if email.from.is_none() {
                        return Err(MailError::InvalidFrom);
                    }
                    Transport::Smtp(smtp::Smtp::new(settings)?)
                }
                None => Transport::None,
            },
        };
        Ok(Self {
            from,
            transport,
            clock,
        })
    }

    /// A mailer that sends nothing ([`MailError::NotConfigured`]).
    pub fn disabled(clock: Arc<dyn Clock>) -> Self {
        Self {
            from: Mailbox::new(None, lettre::Address::new_dangerous("rampart", "localhost")),
            transport: Transport::None,
            clock,
        }
    }

    /// Whether a transport is configured.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.transport, Transport::None)
    }

    /// The transport's name for logs: `smtp`, `outbox` or `none`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::None => "none",
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }

    /// Sends `mail`. Returns when the SMTP server accepted it (or the outbox file
    /// has it).
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = mail.message(&self.from, SystemTime::from(self.clock.now()))?;
        match &self.transport {
            Transport::None => Err(MailError::NotConfigured),
            Transport::Smtp(smtp) => smtp.send(message).await,
            Transport::Outbox(outbox) => outbox.append(&message, self.clock.now()).await,
        }
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.transport_name())
            .finish_non_exhaustive()
    }
}

/// Why a message could not be built or sent. Never carries a body, a full address
/// or the server's reply text.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `email.transport = "outbox"` in production mode.
    #[error(
        "the mail outbox is for development only; configure [email.smtp] and set email.transport = \"smtp\""
    )]
    OutboxInProduction,
    /// No transport is configured.
    #[error("no mail transport is configured ([email.smtp] is not set)")]
    NotConfigured,
    /// `email.from` is missing or not an address.
    #[error("email.from is not a usable address")]
    InvalidFrom,
    /// The recipient is not an address.
    #[error("the recipient is not a valid email address")]
    InvalidAddress,
    /// The message could not be assembled.
    #[error("the message could not be built")]
    Build,
    /// The SMTP exchange failed.
    #[error("SMTP delivery failed: {0}")]
    Smtp(SmtpFailure),
    /// Writing the outbox file failed.
    #[error("cannot write the mail outbox {}: {source}", path.display())]
    Outbox {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl MailError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidAddress => ErrorKind::Client,
            Self::Smtp(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// What went wrong in an SMTP exchange, without the server's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpFailure {
    /// A 4xx reply: try again later.
    Transient(u16),
    /// A 5xx reply: the server refused.
    Permanent(u16),
    /// The server did not answer within `email.smtp.timeout`.
    Timeout,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// Connecting or talking to the server failed.
    Connection,
    /// The settings cannot be used (for instance the TLS parameters).
    Setup,
}

impl fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(code) => write!(f, "temporary refusal ({code})"),
            Self::Permanent(code) => write!(f, "permanent refusal ({code})"),
            Self::Timeout => f.write_str("timed out"),
            Self::Tls => f.write_str("TLS failed"),
            Self::Connection => f.write_str("connection failed"),
            Self::Setup => f.write_str("unusable SMTP settings"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt as _;

    use rampart_core::FakeClock;

    use super::*;

    fn email(transport: EmailTransport, path: std::path::PathBuf) -> EmailConfig {
        EmailConfig {
            transport,
            from: Some("Rampart <rampart@example.com>".to_owned()),
            outbox_path: path,
            smtp: None,
        }
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FakeClock::at_unix(1_700_000_000))
    }

    #[test]
    fn outbox_is_refused_in_production() {
        let dir = tempfile::tempdir().unwrap();
        let config = email(EmailTransport::Outbox, dir.path().join("outbox"));
        let err = Mailer::from_config(&config, Mode::Production, clock()).unwrap_err();
        assert!(matches!(err, MailError::OutboxInProduction), "{err}");
        let direct = Outbox::new(dir.path().join("outbox"), Mode::Production).unwrap_err();
        assert!(matches!(direct, MailError::OutboxInProduction));
        assert!(!dir.path().join("outbox").exists());
    }

    #[tokio::test]
    async fn outbox_appends_private_mbox_messages_in_dev() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        let config = email(EmailTransport::Outbox, path.clone());
        let mailer = Mailer::from_config(&config, Mode::Dev, clock()).unwrap();
        assert!(mailer.is_enabled());
        assert_eq!(mailer.transport_name(), "outbox");

        let first = Mail::new(
            "Alice <alice@example.org>",
            "Sign in",
            "Line one\nFrom here on\n",
        )
        .unwrap();
        mailer.send(&first).await.unwrap();
        let second = Mail::new("bob@example.net", "Sign in", "plain")
            .unwrap()
            .with_html("<p>html</p>");
        mailer.send(&second).await.unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let separators = text.lines().filter(|l| l.starts_with("From ")).count();
        assert_eq!(separators, 2, "{text}");
        // mboxrd: a body line starting with "From " is quoted.
        assert!(text.contains("\n>From here on"), "{text}");
        assert!(text.contains("To: Alice <alice@example.org>"), "{text}");
        assert!(
            text.contains("From: Rampart <rampart@example.com>"),
            "{text}"
        );
        assert!(text.contains("Date: Tue, 14 Nov 2023 22:13:20"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(!text.contains('\r'), "mbox lines end in LF");
    }

    #[tokio::test]
    async fn outbox_file_mode_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mailer = Mailer::from_config(
            &email(EmailTransport::Outbox, path.clone()),
            Mode::Dev,
            clock(),
        )
        .unwrap();
        mailer
            .send(&Mail::new("a@example.org", "s", "t").unwrap())
            .await
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn without_smtp_nothing_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let config = email(EmailTransport::Smtp, dir.path().join("outbox"));
        let mailer = Mailer::from_config(&config, Mode::Production, clock()).unwrap();
        assert!(!mailer.is_enabled());
        let err = mailer
            .send(&Mail::new("a@example.org", "s", "t").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::NotConfigured));
    }

    #[tokio::test]
    async fn smtp_transports_are_built_for_every_tls_mode() {
        use std::num::NonZeroU16;
        use std::time::Duration;

        use rampart_config::{ResolvedSecret, SecretOrigin, SmtpConfig, SmtpTls};
        use rampart_crypto::SecretString;

        for tls in [SmtpTls::Starttls, SmtpTls::Tls, SmtpTls::None] {
            let mut config = email(EmailTransport::Smtp, "unused".into());
            config.smtp = Some(SmtpConfig {
                host: "smtp.example.com".to_owned(),
                port: NonZeroU16::new(587).unwrap(),
                tls,
                username: Some("rampart".to_owned()),
                password: Some(ResolvedSecret {
                    value: SecretString::from("hunter2-hunter2"),
                    origin: SecretOrigin::Env {
                        var: "RAMPART_EMAIL_SMTP_PASSWORD".to_owned(),
                    },
                }),
                timeout: Duration::from_secs(10),
            });
            let mailer = Mailer::from_config(&config, Mode::Production, clock()).unwrap();
            assert_eq!(mailer.transport_name(), "smtp");
            assert!(!format!("{mailer:?}").contains("hunter2"));
            // SMTP needs an explicit `From`.
            config.from = None;
            assert!(matches!(
                Mailer::from_config(&config, Mode::Production, clock()),
                Err(MailError::InvalidFrom)
            ));
        }
    }

    #[test]
    fn debug_shows_only_the_domain() {
        let mail = Mail::new("alice@example.org", "Your link", "code=SECRET").unwrap();
        let shown = format!("{mail:?}");
        assert!(shown.contains("example.org"));
        assert!(!shown.contains("alice"));
        assert!(!shown.contains("SECRET"));
        assert!(!shown.contains("Your link"));
        assert!(matches!(
            Mail::new("not an address", "s", "t"),
            Err(MailError::InvalidAddress)
        ));
    }
}
