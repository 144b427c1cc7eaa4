//! What happened: the structured event a caller hands to [`Auditor::record`].
//!
//! An event has a [`EventKind`] (a stable dotted name such as `auth.login.failed`),
//! an [`Outcome`], and optional context: who acted, on what, from which address, in
//! which request, why, plus a small string map of details. The auditor adds the time
//! (from its [`Clock`](crate::Clock)), the sequence number and the hash chain.
//!
//! Events are bounded ([`MAX_TEXT_LEN`], [`MAX_DETAILS`]) because some fields carry
//! attacker-chosen text (the username typed into a failed login); oversized values are
//! cut at a character boundary and the event is marked `truncated = "true"`, rather
//! than refused, because refusing would let a long username suppress its own audit
//! record.
//!
//! [`Auditor::record`]: super::Auditor::record

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest actor, target, request id, reason, detail key or detail value, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// Most details per event.
pub const MAX_DETAILS: usize = 32;

/// The detail set when any field was cut to the limits above.
pub const TRUNCATED_DETAIL: &str = "truncated";

/// Declares [`EventKind`] from one `Variant => "dotted.name"` line per kind, so the
/// enum, its list and its names cannot drift apart. Adding a kind is one line here;
/// names are stored in the log, so an existing name must never change.
macro_rules! event_kinds {
    ($( $(#[doc = $doc:expr])+ $variant:ident => $name:literal, )+) => {
        /// What kind of security event happened.
        ///
        /// Each kind has a stable dotted name ([`EventKind::as_str`]) that is what the
        /// log stores and what operators grep and alert on. Names are part of the
        /// on-disk format: add kinds freely, never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventKind {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl EventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// The stable dotted name, e.g. `auth.login.failed`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )+
                }
            }
        }
    };
}

event_kinds! {
    /// A user signed in (all factors passed).
    AuthLoginSucceeded => "auth.login.succeeded",
    /// A sign-in attempt failed (unknown user, wrong password or second factor).
    AuthLoginFailed => "auth.login.failed",
    /// An account or client address was locked out after repeated failures.
    AuthLockout => "auth.lockout",
    /// A lockout was lifted by an administrator.
    AuthUnlocked => "auth.unlocked",
    /// A user signed out.
    AuthLogout => "auth.logout",
    /// A second factor was enrolled.
    AuthMfaEnabled => "auth.mfa.enabled",
    /// A second factor was removed.
    AuthMfaDisabled => "auth.mfa.disabled",
    /// A recovery code was used instead of the second factor.
    AuthMfaRecoveryUsed => "auth.mfa.recovery_used",
    /// An access or refresh token was issued.
    TokenIssued => "token.issued",
    /// A refresh token was exchanged for a new pair.
    TokenRefreshed => "token.refreshed",
    /// A spent refresh token was presented again; its family was revoked.
    TokenReuseDetected => "token.reuse_detected",
    /// A token was revoked.
    TokenRevoked => "token.revoked",
    /// A static API token was created.
    ApiTokenCreated => "api_token.created",
    /// A static API token was revoked.
    ApiTokenRevoked => "api_token.revoked",
    /// A session was revoked (by its user, an administrator or a privilege change).
    SessionRevoked => "session.revoked",
    /// A browser session was created (a login completed).
    SessionCreated => "session.created",
    /// A session was re-issued under a fresh id after a security change.
    SessionRotated => "session.rotated",
    /// An administrator created a user.
    AdminUserCreated => "admin.user.created",
    /// An administrator changed a user (roles, tenants, attributes).
    AdminUserUpdated => "admin.user.updated",
    /// An administrator disabled a user.
    AdminUserDisabled => "admin.user.disabled",
    /// An administrator deleted a user.
    AdminUserDeleted => "admin.user.deleted",
    /// An administrator created an invite.
    AdminInviteCreated => "admin.invite.created",
    /// The policy refused a request (deny-by-default or an explicit rule).
    PolicyDenied => "policy.denied",
    /// A signing, data or master key was rotated.
    KeyRotated => "key.rotated",
    /// A vault secret was created or replaced (never its value).
    VaultSecretSet => "vault.secret.set",
    /// A vault secret was removed.
    VaultSecretRemoved => "vault.secret.removed",
    /// The configuration was reloaded (or a reload was refused).
    ConfigReloaded => "config.reloaded",
    /// The instance was initialized: data keys generated and sealed.
    InstanceInitialized => "instance.initialized",
    /// A one-time first-admin setup token was issued (never the token itself).
    SetupTokenIssued => "setup.token_issued",
    /// A user registered an account (open registration or an invite).
    AccountRegistered => "account.registered",
    /// A user changed their password.
    AccountPasswordChanged => "account.password_changed",
    /// A user changed their profile (e-mail, display name; never the values).
    AccountProfileUpdated => "account.profile_updated",
    /// A user replaced their recovery codes.
    AuthMfaRecoveryCodesRenewed => "auth.mfa.recovery_codes_renewed",
    /// An administrator enabled a disabled user.
    AdminUserEnabled => "admin.user.enabled",
    /// An administrator removed a user's second factor.
    AdminMfaReset => "admin.user.mfa_reset",
    /// A magic link was asked for: `success` when one was mailed; `failure` for an
    /// unknown address or a delivery failure; `denied` for a disabled account or too
    /// many outstanding links. Signing in with a link is `auth.login.*`.
    AuthMagicLinkRequested => "auth.magic_link.requested",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a kind this build knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit event kind")]
pub struct UnknownKind;

impl FromStr for EventKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was attempted and failed (wrong password, invalid token).
    Failure,
    /// It was refused by policy (missing role, lockout, tenant mismatch).
    Denied,
}

impl Outcome {
    /// The stored name: `success`, `failure` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not `success`, `failure` or `denied`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit outcome")]
pub struct UnknownOutcome;

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            "denied" => Ok(Self::Denied),
            _ => Err(UnknownOutcome),
        }
    }
}

/// A security event to be audited.
///
/// **Never put a secret in an event** — no password (not even a wrong one: it is
/// often the right password for another account, or a typo of it), no token, session
/// id, cookie, key, TOTP code or recovery code, no vault value. The audit log is kept
/// for years, exported, and read by people who must not see them. Identify things by
/// name, id or the non-secret prefix of a token instead.
///
/// Build one with [`AuditEvent::new`] and the chained setters:
///
/// ```
/// use rampart_core::audit::{AuditEvent, EventKind, Outcome};
///
/// let event = AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
///     .actor("alice")
///     .client_ip("203.0.113.9".parse().unwrap())
///     .request_id("req-8f3a")
///     .reason("wrong password")
///     .detail("method", "password");
/// assert_eq!(event.kind.as_str(), "auth.login.failed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: EventKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Who did it: a user name or id, `admin:<name>`, `system`, or what an anonymous
    /// client claimed to be (the username of a failed login).
    pub actor: Option<String>,
    /// What it was done to: a user, a session id prefix, a route, a key id.
    pub target: Option<String>,
    /// The client's address as resolved through trusted proxies (F-CLIENTIP).
    pub client_ip: Option<IpAddr>,
    /// The request id, to join the audit record with access logs.
    pub request_id: Option<String>,
    /// Why (the deny reason, the failure cause) in words an operator can act on.
    pub reason: Option<String>,
    /// Anything else, as short strings. Sorted by key.
    pub details: BTreeMap<String, String>,
}

impl AuditEvent {
    /// An event of `kind` that ended with `outcome` and no further context.
    pub fn new(kind: EventKind, outcome: Outcome) -> Self {
        Self {
            kind,
            outcome,
            actor: None,
            target: None,
            client_ip: None,
            request_id: None,
            reason: None,
            details: BTreeMap::new(),
        }
    }

    /// Sets who acted.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets what was acted on.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the client address.
    pub fn client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds (or replaces) one detail.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// The event cut to the size limits, with NUL characters replaced (PostgreSQL
    /// `TEXT` cannot hold them, and a row that can never be written would stall the
    /// writer). Sets the [`TRUNCATED_DETAIL`] detail if anything was cut.
    pub(crate) fn bounded(mut self) -> Self {
        let mut cut = false;
        for field in [
            &mut self.actor,
            &mut self.target,
            &mut self.request_id,
            &mut self.reason,
        ]
        .into_iter()
        .flatten()
        {
            cut |= bound_text(field);
        }
        if self.details.len() > MAX_DETAILS
            || self
                .details
                .iter()
                .any(|(k, v)| needs_bounding(k) || needs_bounding(v))
        {
            let keep = MAX_DETAILS - 1;
            cut |= self.details.len() > keep;
            let mut details = BTreeMap::new();
            for (mut key, mut value) in std::mem::take(&mut self.details).into_iter().take(keep) {
                cut |= bound_text(&mut key);
                cut |= bound_text(&mut value);
                details.insert(key, value);
            }
            self.details = details;
        }
        if cut {
            self.details
                .insert(TRUNCATED_DETAIL.to_owned(), "true".to_owned());
        }
        self
    }
}

fn needs_bounding(text: &str) -> bool {
    text.len() > MAX_TEXT_LEN || text.contains('\0')
}

/// Cuts `text` to [`MAX_TEXT_LEN`] bytes at a character boundary and replaces NULs.
/// Returns whether anything was cut.
fn bound_text(text: &mut String) -> bool {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{fffd}");
    }
    if text.len() <= MAX_TEXT_LEN {
        return false;
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn kind_names_are_unique_dotted_and_round_trip() {
        let mut seen = HashSet::new();
        for kind in EventKind::ALL {
            let name = kind.as_str();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(
                name.split('.').count() >= 2
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{name}"
            );
            assert_eq!(name.parse::<EventKind>(), Ok(*kind));
        }
        assert_eq!("auth.login".parse::<EventKind>(), Err(UnknownKind));
    }

    #[test]
    fn names_required_by_the_spec_exist() {
        for name in [
            "auth.login.succeeded",
            "auth.login.failed",
            "auth.lockout",
            "auth.mfa.enabled",
            "auth.mfa.disabled",
            "token.issued",
            "token.refreshed",
            "token.reuse_detected",
            "token.revoked",
            "session.revoked",
            "admin.user.created",
            "policy.denied",
            "key.rotated",
            "vault.secret.set",
            "vault.secret.removed",
            "config.reloaded",
            "instance.initialized",
        ] {
            assert!(name.parse::<EventKind>().is_ok(), "{name}");
        }
    }

    #[test]
    fn outcome_round_trips() {
        for o in [Outcome::Success, Outcome::Failure, Outcome::Denied] {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
        }
        assert_eq!("ok".parse::<Outcome>(), Err(UnknownOutcome));
    }

    #[test]
    fn oversized_fields_are_cut_at_char_boundaries_and_marked() {
        let long = "é".repeat(MAX_TEXT_LEN); // 2 bytes each
        let event = AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
            .actor(long.clone())
            .detail("k", "v")
            .bounded();
        let actor = event.actor.unwrap();
        assert_eq!(actor.len(), MAX_TEXT_LEN);
        assert!(long.starts_with(&actor));
        assert_eq!(event.details[TRUNCATED_DETAIL], "true");
        assert_eq!(event.details["k"], "v");
    }

    #[test]
    fn too_many_details_are_cut_and_marked() {
        let mut event = AuditEvent::new(EventKind::PolicyDenied, Outcome::Denied);
        for i in 0..100 {
            event = event.detail(format!("k{i:03}"), "v");
        }
        let event = event.bounded();
        assert_eq!(event.details.len(), MAX_DETAILS);
        assert_eq!(event.details[TRUNCATED_DETAIL], "true");
    }

    #[test]
    fn nul_is_replaced_and_small_events_are_untouched() {
        let event = AuditEvent::new(EventKind::AuthLoginFailed, Outcome::Failure)
            .actor("a\0b")
            .detail("x\0", "y")
            .bounded();
        assert_eq!(event.actor.as_deref(), Some("a\u{fffd}b"));
        assert!(event.details.contains_key("x\u{fffd}"));
        assert!(!event.details.contains_key(TRUNCATED_DETAIL));

        let plain = AuditEvent::new(EventKind::TokenIssued, Outcome::Success)
            .actor("alice")
            .detail("kid", "abc");
        assert_eq!(plain.clone().bounded(), plain);
    }
}
