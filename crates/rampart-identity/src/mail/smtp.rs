//! The SMTP transport: lettre's async Tokio client over rustls.

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use rampart_config::{SmtpConfig, SmtpTls};

use super::{MailError, SmtpFailure};

/// A configured SMTP relay. A connection is opened per message: Rampart sends little
/// mail, and a fresh connection re-resolves the relay and re-checks its certificate.
pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    /// The transport for `[email.smtp]`.
    pub(super) fn new(settings: &SmtpConfig) -> Result<Self, MailError> {
        let host = settings.host.as_str();
        let builder = match settings.tls {
            // TLS from the first byte (RFC 8314 "implicit TLS", port 465).
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            // STARTTLS is required, not opportunistic: if the server does not offer
            // it, lettre stops before sending credentials or mail.
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            // Plain text, for a relay on the same host or network only (the config
            // reference says so; `tls = "none"` is the operator's explicit choice).
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|_| MailError::Smtp(SmtpFailure::Setup))?;
        let mut builder = builder
            .port(settings.port.get())
            .timeout(Some(settings.timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            // lettre keeps its own copy of the password for the life of the transport.
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.value.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
        })
    }

    /// Sends one message.
    pub(super) async fn send(&self, message: lettre::Message) -> Result<(), MailError> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Smtp(classify(&e)))
    }
}

/// The failure class of a lettre error. The error's own text is dropped: it can hold
/// the server's reply, which often quotes the recipient's address.
fn classify(err: &lettre::transport::smtp::Error) -> SmtpFailure {
    let code = || {
        err.status()
            .and_then(|c| c.to_string().parse::<u16>().ok())
            .unwrap_or(0)
    };
    if err.is_transient() {
        SmtpFailure::Transient(code())
    } else if err.is_permanent() {
        SmtpFailure::Permanent(code())
    } else if err.is_timeout() {
        SmtpFailure::Timeout
    } else if err.is_tls() {
        SmtpFailure::Tls
    } else {
        SmtpFailure::Connection
    }
}
