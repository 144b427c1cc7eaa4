//! Passwordless sign-in by email (F-MAGIC).
//!
//! # The flow
//!
//! 1. `POST /api/v1/auth/magic-link {email}` calls [`MagicLinks::request`] with the
//!    browser's [`Binding`] (the HTTP layer reads it from the binding cookie or makes a
//!    new one, and always sets the cookie). `request` only puts the job on a queue and
//!    returns: the response — status, body, headers — and the work done before it are
//!    the same whether the address is known or not, the account disabled, or magic
//!    links switched off, so neither the answer nor its timing tells them apart.
//! 2. A background worker takes jobs in order. For a known, enabled account with
//!    fewer than [`MAX_OUTSTANDING`] unused links it stores a new link — SHA-256 of a
//!    256-bit [`MagicCode`], the user, SHA-256 of the binding, created, expiry
//!    (`magic_link.ttl`) — and mails `{public_url}/auth/magic-link?code=<code>`. Every
//!    request is audited (`auth.magic_link.requested`).
//! 3. The link opens a page with a form that posts the code back (mail scanners that
//!    prefetch links do not consume them). [`MagicLinks::consume`] marks the link used
//!    in one conditional statement — only if it is unused, unexpired and bound to the
//!    presenting browser — asks the accounts service for the [`VerifiedIdentity`]
//!    (refused for a disabled account; the accounts service audits the success as
//!    `auth.login.succeeded` with `method = magic_link`), retires the user's other
//!    outstanding links. Every refusal is audited as `auth.login.failed` (`method =
//!    magic_link`) and is the same [`MagicLinkError::InvalidLink`].
//!
//! A magic-link sign-in is a single factor (possession of the mailbox and of the
//! browser): the identity has `mfa = false`, so roles that require MFA grant nothing
//! to such a session, and an account with a second factor enrolled gets no link at
//! all ([`Eligibility::SecondFactorEnrolled`]): the link would skip the factor.
//!
//! Without `public_url`, or without a mail transport, nothing can be mailed: a
//! warning is logged at start and requests are still answered the same way.

mod accounts;
mod cookie;
mod message;
mod secret;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rampart_config::Config;
use rampart_core::audit::{AuditError, AuditEvent, Auditor, EventKind, Outcome};
use rampart_core::identity::UserId;
use rampart_core::identity::magic::{Consumption, MagicLinkAttempt, MagicLinkStore, NewMagicLink};
use rampart_core::store::{BoxError, StoreError};
use rampart_core::{Clock, ErrorKind};
use rampart_crypto::SecretString;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc};
use url::Url;

use crate::mail::Mailer;
use crate::verified::VerifiedIdentity;

pub use cookie::{BINDING_COOKIE_BASE_NAME, BindingCookie};
pub use message::LINK_PATH;
pub use secret::{Binding, MagicCode};

/// Most unused links one account may have from the last `magic_link.ttl`; further
/// requests send nothing (and are audited as denied), so nobody can flood a mailbox.
pub const MAX_OUTSTANDING: u64 = 5;

/// Requests waiting for the worker. When full, further requests are dropped (with a
/// warning): the answer is the same either way, and memory stays bounded.
const QUEUE_CAPACITY: usize = 1024;

/// Messages being delivered at once.
const CONCURRENT_SENDS: usize = 4;

/// Links are deleted this long after they expire.
const PURGE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How often the worker purges expired links.
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Longest address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// The settings the flow needs, from `[magic_link]` and `public_url`.
#[derive(Debug, Clone)]
pub struct MagicLinkSettings {
    /// `magic_link.enabled`.
    pub enabled: bool,
    /// `magic_link.ttl`.
    pub ttl: Duration,
    /// `public_url`: the origin links point to. Without it no link is mailed.
    pub public_url: Option<Url>,
    /// The binding cookie (named and flagged after `[session]`).
    pub cookie: BindingCookie,
}

impl MagicLinkSettings {
    /// The settings in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            enabled: config.magic_link.enabled,
            ttl: config.magic_link.ttl,
            public_url: config.public_url.clone(),
            cookie: BindingCookie::from_config(&config.session, config.magic_link.ttl),
        }
    }
}

/// The account behind an address, as the magic-link flow needs it.
#[derive(Clone)]
pub struct Recipient {
    /// The user.
    pub user: UserId,
    /// The address to mail: the one stored for the account (not the text typed into
    /// the request, which matched it only after normalization).
    pub address: SecretString,
    /// Whether the account may sign in by link now.
    pub eligibility: Eligibility,
}

/// Whether an account may sign in by magic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// Yes.
    Allowed,
    /// The account is disabled.
    Disabled,
    /// The account has a second factor (TOTP) enrolled. A link proves only control
    /// of the mailbox, so it would let whoever reads the mail skip the factor the
    /// user chose to require: such accounts sign in with password and code.
    SecondFactorEnrolled,
}

/// What the magic-link flow needs from the accounts service.
#[async_trait]
pub trait MagicLinkAccounts: Send + Sync {
    /// The account whose address is `email` (blind-index lookup), if any.
    async fn recipient(&self, email: &str) -> Result<Option<Recipient>, BoxError>;

    /// The identity a consumed link signs in (audited as `auth.login.succeeded`), or
    /// `None` when the account is gone or no longer [`Eligibility::Allowed`]. Only
    /// for the magic-link flow.
    async fn identity(
        &self,
        user: &UserId,
        context: &MagicContext,
    ) -> Result<Option<VerifiedIdentity>, BoxError>;
}

/// Who asked, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct MagicContext {
    /// The client's address (F-CLIENTIP).
    pub client_ip: Option<IpAddr>,
    /// The request id.
    pub request_id: Option<String>,
}

/// Why a link was not accepted, or the flow failed.
#[derive(Debug, thiserror::Error)]
pub enum MagicLinkError {
    /// The link is unknown, used, expired, bound to another browser, malformed, or
    /// its account is disabled; or the binding cookie is missing. Deliberately one
    /// error.
    #[error("the sign-in link is invalid or has expired")]
    InvalidLink,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The accounts service failed.
    #[error("the account lookup failed")]
    Accounts(#[source] BoxError),
    /// The audit log refused the event, so the sign-in is refused too.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl MagicLinkError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidLink => ErrorKind::Client,
            Self::Store(e) => e.kind(),
            Self::Accounts(_) => ErrorKind::Internal,
            Self::Audit(e) => e.kind(),
        }
    }
}

/// The magic-link service. Cheap to share (`Arc`).
pub struct MagicLinks {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
}

/// The dependencies of [`MagicLinks`].
pub struct MagicLinkDeps {
    /// Where links are stored.
    pub store: Arc<dyn MagicLinkStore>,
    /// The accounts service.
    pub accounts: Arc<dyn MagicLinkAccounts>,
    /// Outgoing mail.
    pub mailer: Arc<Mailer>,
    /// The audit log.
    pub audit: Arc<Auditor>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

struct Shared {
    deps: MagicLinkDeps,
    settings: MagicLinkSettings,
    sends: Arc<Semaphore>,
}

struct Job {
    email: SecretString,
    binding_hash: [u8; 32],
    context: MagicContext,
}

impl MagicLinks {
    /// Starts the service and its worker (on the current Tokio runtime). Logs a
    /// warning when links are enabled but cannot be mailed.
    pub fn start(deps: MagicLinkDeps, settings: MagicLinkSettings) -> Self {
        if settings.enabled {
            if settings.public_url.is_none() {
                tracing::warn!(
                    "magic_link.enabled = true but public_url is not set: magic-link requests are answered but no link is mailed; set public_url"
                );
            }
            if !deps.mailer.is_enabled() {
                tracing::warn!(
                    "magic_link.enabled = true but no mail transport is configured: magic-link requests are answered but no link is mailed; configure [email.smtp]"
                );
            }
        }
        let shared = Arc::new(Shared {
            deps,
            settings,
            sends: Arc::new(Semaphore::new(CONCURRENT_SENDS)),
        });
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(worker(Arc::clone(&shared), queue));
        Self { shared, jobs }
    }

    /// The settings in use.
    pub fn settings(&self) -> &MagicLinkSettings {
        &self.shared.settings
    }

    /// The binding cookie.
    pub fn cookie(&self) -> &BindingCookie {
        &self.shared.settings.cookie
    }

    /// Whether requests can result in mail (enabled, `public_url` set, a transport).
    pub fn can_send(&self) -> bool {
        self.shared.can_send()
    }

    /// Asks for a link for `email`, bound to `binding`. Returns at once and says
    /// nothing about the address: the lookup, storage and mail happen on the worker.
    pub fn request(&self, email: &str, binding: &Binding, context: MagicContext) {
        if !self.shared.can_send() {
            return;
        }
        let job = Job {
            email: SecretString::from(email),
            binding_hash: binding.hash(),
            context,
        };
        if self.jobs.try_send(job).is_err() {
            tracing::warn!("magic-link queue is full or closed; a request was dropped");
        }
    }

    /// Signs in with a link: `code` from the link, `binding` from the presenting
    /// browser's cookie.
    pub async fn consume(
        &self,
        code: &str,
        binding: Option<&str>,
        context: &MagicContext,
    ) -> Result<VerifiedIdentity, MagicLinkError> {
        let deps = &self.shared.deps;
        let now = deps.clock.now();
        let parsed = (MagicCode::parse(code), binding.and_then(Binding::parse));
        let (Some(code), Some(binding)) = parsed else {
            let reason = "malformed link or missing browser binding";
            return self.refuse(context, None, reason).await;
        };
        if !self.shared.settings.enabled {
            return self.refuse(context, None, "magic links are disabled").await;
        }
        let attempt = MagicLinkAttempt {
            token_hash: code.hash(),
            binding_hash: binding.hash(),
            at: now,
        };
        let user = match deps.store.consume_magic_link(&attempt).await? {
            Consumption::Consumed(user) => user,
            Consumption::Refused => {
                let reason = "unknown, used or expired link, or another browser";
                return self.refuse(context, None, reason).await;
            }
        };
        let identity = deps
            .accounts
            .identity(&user, context)
            .await
            .map_err(MagicLinkError::Accounts)?;
        let Some(identity) = identity else {
            let reason = "account disabled, removed or with a second factor";
            return self.refuse(context, Some(&user), reason).await;
        };
        if let Err(e) = deps.store.retire_magic_links(&user, now).await {
            // The sign-in stands; the other links still expire on their own.
            tracing::warn!(error = %e, "could not retire the user's other magic links");
        }
        Ok(identity)
    }

    async fn refuse(
        &self,
        context: &MagicContext,
        user: Option<&UserId>,
        reason: &'static str,
    ) -> Result<VerifiedIdentity, MagicLinkError> {
        let mut event =
            audit_event(EventKind::AuthLoginFailed, Outcome::Failure, context).reason(reason);
        if let Some(user) = user {
            event = event.target(user.as_str());
        }
        self.shared.deps.audit.record(event).await?;
        Err(MagicLinkError::InvalidLink)
    }
}

impl Shared {
    fn can_send(&self) -> bool {
        self.settings.enabled && self.settings.public_url.is_some() && self.deps.mailer.is_enabled()
    }

    /// One request, start to finish except delivery (which is spawned, bounded by
    /// `sends`). Jobs run one at a time, in order.
    async fn process(self: &Arc<Self>, job: Job) {
        let outcome = self.issue(&job).await;
        let (outcome, reason, user) = match outcome {
            Ok(Issued::Sending) => return,
            Ok(Issued::Unknown) => (Outcome::Failure, "no account has this address", None),
            Ok(Issued::NotEligible(user, Eligibility::SecondFactorEnrolled)) => (
                Outcome::Denied,
                "account has a second factor; sign in with password and code",
                Some(user),
            ),
            Ok(Issued::NotEligible(user, _)) => (Outcome::Denied, "account disabled", Some(user)),
            Ok(Issued::TooMany(user)) => (
                Outcome::Denied,
                "too many outstanding links for this account",
                Some(user),
            ),
            Err(e) => {
                tracing::error!(error = %e, "magic-link request failed");
                (Outcome::Failure, "internal error", None)
            }
        };
        let mut event =
            audit_event(EventKind::AuthMagicLinkRequested, outcome, &job.context).reason(reason);
        if let Some(user) = user {
            event = event.target(user.as_str());
        }
        if let Some(domain) = domain_of(job.email.expose_secret()) {
            event = event.detail("domain", domain);
        }
        if let Err(e) = self.deps.audit.record(event).await {
            tracing::error!(error = %e, "cannot audit a magic-link request");
        }
    }

    async fn issue(self: &Arc<Self>, job: &Job) -> Result<Issued, MagicLinkError> {
        let deps = &self.deps;
        let Some(public_url) = &self.settings.public_url else {
            return Ok(Issued::Unknown);
        };
        let recipient = deps
            .accounts
            .recipient(job.email.expose_secret())
            .await
            .map_err(MagicLinkError::Accounts)?;
        let Some(recipient) = recipient else {
            return Ok(Issued::Unknown);
        };
        if recipient.eligibility != Eligibility::Allowed {
            return Ok(Issued::NotEligible(recipient.user, recipient.eligibility));
        }
        let now = deps.clock.now();
        let since = now - self.settings.ttl;
        if deps
            .store
            .count_recent_magic_links(&recipient.user, since)
            .await?
            >= MAX_OUTSTANDING
        {
            return Ok(Issued::TooMany(recipient.user));
        }
        let code = MagicCode::generate().map_err(|e| {
            MagicLinkError::Store(StoreError::Internal {
                source: Box::new(e),
            })
        })?;
        let link = message::link(public_url, &code);
        let mail = match message::mail(recipient.address.expose_secret(), &link, self.settings.ttl)
        {
            Ok(mail) => mail,
            Err(e) => {
                tracing::warn!(error = %e, "the account's address cannot be mailed");
                return Ok(Issued::NotEligible(recipient.user, Eligibility::Disabled));
            }
        };
        deps.store
            .insert_magic_link(&NewMagicLink {
                token_hash: code.hash(),
                user_id: recipient.user.clone(),
                binding_hash: job.binding_hash,
                created_at: now,
                expires_at: now + self.settings.ttl,
            })
            .await?;
        // Back-pressure: the worker waits for a free delivery slot.
        // (The semaphore is never closed, so acquiring only waits.)
        let permit = Arc::clone(&self.sends).acquire_owned().await.ok();
        let shared = Arc::clone(self);
        let context = job.context.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let domain = mail.recipient_domain().to_owned();
            let (outcome, reason) = match shared.deps.mailer.send(&mail).await {
                Ok(()) => {
                    tracing::info!(domain = %domain, "magic link mailed");
                    (Outcome::Success, None)
                }
                Err(e) => {
                    tracing::warn!(domain = %domain, error = %e, "magic link not delivered");
                    (Outcome::Failure, Some(e.to_string()))
                }
            };
            let mut event = audit_event(EventKind::AuthMagicLinkRequested, outcome, &context)
                .target(recipient.user.as_str())
                .detail("domain", domain);
            if let Some(reason) = reason {
                event = event.reason(reason);
            }
            if let Err(e) = shared.deps.audit.record(event).await {
                tracing::error!(error = %e, "cannot audit a magic-link request");
            }
        });
        Ok(Issued::Sending)
    }

    async fn purge(&self, now: OffsetDateTime) {
        match self.deps.store.purge_magic_links(now - PURGE_AFTER).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired magic links purged"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired magic links"),
        }
    }
}

enum Issued {
    Sending,
    Unknown,
    NotEligible(UserId, Eligibility),
    TooMany(UserId),
}

async fn worker(shared: Arc<Shared>, mut queue: mpsc::Receiver<Job>) {
    let mut last_purge: Option<OffsetDateTime> = None;
    while let Some(job) = queue.recv().await {
        let now = shared.deps.clock.now();
        if last_purge.is_none_or(|at| now - at >= PURGE_EVERY) {
            shared.purge(now).await;
            last_purge = Some(now);
        }
        shared.process(job).await;
    }
}

fn audit_event(kind: EventKind, outcome: Outcome, context: &MagicContext) -> AuditEvent {
    let mut event = AuditEvent::new(kind, outcome).detail("method", "magic_link");
    if let Some(ip) = context.client_ip {
        event = event.client_ip(ip);
    }
    if let Some(id) = &context.request_id {
        event = event.request_id(id.clone());
    }
    event
}

/// The domain of a typed address, lower-cased, for the audit log (never the whole
/// address).
fn domain_of(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim().to_ascii_lowercase();
    let plausible = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    plausible.then_some(domain)
}

#[cfg(test)]
mod tests;
