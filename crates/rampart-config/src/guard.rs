//! Guardrails: the hardening checklist that needs only the configuration.
//!
//! Every condition always yields one [`Check`] — `Pass` when fine — so `rampart
//! doctor` can print the whole list and an operator sees what was verified, not only
//! what failed. Ids are stable (documented in `docs/CONFIG.md`; scripts may match on
//! them).
//!
//! Severity: in production a dev-only convenience or an exposure is `Fail` and
//! `serve` refuses to start ([`refuses_start`]); in dev mode the same finding is a
//! `Warn`, still reported. Conditions that are also load errors (empty database URL,
//! upstream TLS mistakes, CORS wildcard with credentials) are `Fail` in every mode;
//! they can only be seen on a `Config` built by hand. Advice that holds in every
//! mode (`tls.none`, `secrets.inline`, `api_tokens.admin`, `roles.admin_mfa`,
//! `rate_limit.disabled`) is a `Warn`.

use std::net::SocketAddr;

use rampart_crypto::SecretString;
use rampart_crypto::secret_file;
use serde::Serialize;

use crate::config::{
    Config, CorsOrigin, EmailTransport, Mode, RateLimitBackend, ResolvedSecret, StorageBackend,
    UpstreamMode,
};
use crate::secrets::describe_file_error;

/// The outcome of one check; ordered so the worst of a list is its `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Pass,
    /// Allowed, but worth changing.
    Warn,
    /// Refused: `serve` does not start.
    Fail,
}

/// One item of the checklist; serializes for `rampart doctor --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `listen.exposed`.
    pub id: &'static str,
    /// Pass, warn or fail.
    pub status: Status,
    /// What was found. Never contains a secret value.
    pub finding: String,
    /// What to do about it; empty when the check passes.
    pub fix: String,
}

/// Every check id [`guardrails`] and [`file_checks`] produce, in report order.
pub const CHECK_IDS: &[&str] = &[
    "listen.exposed",
    "tls.none",
    "metrics.unauthenticated",
    "dev.simulated_login",
    "secrets.placeholder",
    "secrets.weak",
    "secrets.inline",
    "auth.query_tokens",
    "api_tokens.admin",
    "roles.admin_mfa",
    "storage.empty_url",
    "upstream.tls",
    "jwt.ephemeral_keys",
    "master_key.missing",
    "master_key.inline",
    "cookies.insecure",
    "email.outbox",
    "cors.credentials_wildcard",
    "danger.accept_invalid_certs",
    "rate_limit.disabled",
    "rate_limit.redis_without_url",
    "file.permissions",
];

/// Secret values that are placeholders, not secrets (compared case-insensitively).
/// The `rampart-example-*` values are the ones Rampart's own docs use in examples.
pub const PLACEHOLDER_SECRETS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "dev-token",
    "secret",
    "password",
    "passwd",
    "admin",
    "root",
    "postgres",
    "redis",
    "example",
    "test",
    "token",
    "placeholder",
    "default",
    "letmein",
    "123456",
    "12345678",
    "rampart",
    "rampart-example-token",
    "rampart-example-password",
    "rampart-example-metrics-token-0123456789",
];

/// Shortest acceptable `metrics.token` and `auth.password.pepper`, in characters.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Runs every configuration guardrail. One check per id in [`CHECK_IDS`] except
/// `file.permissions` (see [`file_checks`]).
pub fn guardrails(config: &Config) -> Vec<Check> {
    let g = Guard { config };
    vec![
        g.listen_exposed(),
        g.tls_none(),
        g.metrics_unauthenticated(),
        g.dev_simulated_login(),
        g.secrets_placeholder(),
        g.secrets_weak(),
        g.secrets_inline(),
        g.auth_query_tokens(),
        g.api_tokens_admin(),
        g.roles_admin_mfa(),
        g.storage_empty_url(),
        g.upstream_tls(),
        g.jwt_ephemeral_keys(),
        g.master_key_missing(),
        g.master_key_inline(),
        g.cookies_insecure(),
        g.email_outbox(),
        g.cors_credentials_wildcard(),
        g.danger_accept_invalid_certs(),
        g.rate_limit_disabled(),
        g.rate_limit_redis_without_url(),
    ]
}

/// Checks mode and owner of every secret file in use ([`Config::secret_files`]):
/// `Pass`, or `Fail` with the exact `chmod`/`chown` command.
pub fn file_checks(config: &Config) -> Vec<Check> {
    let files = config.secret_files();
    if files.is_empty() {
        return vec![pass("file.permissions", "no secret files are configured")];
    }
    files
        .into_iter()
        .map(
            |(label, path)| match secret_file::check_permissions(&path) {
                Ok(_) => pass(
                    "file.permissions",
                    format!(
                        "{label}: {} is private (mode 0600 or stricter, owned by Rampart's user or root)",
                        path.display()
                    ),
                ),
                Err(err) => {
                    let (message, fix) = describe_file_error(&err);
                    Check {
                        id: "file.permissions",
                        status: Status::Fail,
                        finding: format!("{label}: {message}"),
                        fix,
                    }
                }
            },
        )
        .collect()
}

/// Whether `serve` must refuse to start: any check failed.
pub fn refuses_start(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// Whether `value` is a placeholder: listed in [`PLACEHOLDER_SECRETS`], empty, one
/// repeated character (all zeros included), or a URL whose password is one of those.
pub fn is_placeholder_secret(value: &SecretString) -> bool {
    let text = value.expose_secret().trim();
    if is_placeholder_text(text) {
        return true;
    }
    url::Url::parse(text)
        .ok()
        .and_then(|url| url.password().map(decode_percent))
        .is_some_and(|password| is_placeholder_text(&password))
}

struct Guard<'a> {
    config: &'a Config,
}

impl Guard<'_> {
    /// `Fail` in production, `Warn` in dev: the severity of dev-only conveniences.
    fn dev_only(&self) -> Status {
        match self.config.mode {
            Mode::Production => Status::Fail,
            Mode::Dev => Status::Warn,
        }
    }

    fn flagged(&self, id: &'static str, finding: String, fix: &str) -> Check {
        Check {
            id,
            status: self.dev_only(),
            finding,
            fix: fix.to_owned(),
        }
    }

    fn behind_tls_or_proxy(&self) -> bool {
        self.config.server.tls.is_some() || !self.config.server.trusted_proxies.is_empty()
    }

    fn listen_exposed(&self) -> Check {
        let listen = self.config.server.listen;
        if is_loopback(listen) || self.behind_tls_or_proxy() {
            return pass(
                "listen.exposed",
                format!(
                    "server.listen = {listen} is loopback, or TLS/trusted proxies are configured"
                ),
            );
        }
        self.flagged(
            "listen.exposed",
            format!("server.listen = {listen} is reachable from the network, with neither server.tls nor server.trusted_proxies: clients would send credentials in plain HTTP"),
            "configure [server.tls], or terminate TLS in a proxy and list it in server.trusted_proxies, or listen on 127.0.0.1",
        )
    }

    fn tls_none(&self) -> Check {
        let listen = self.config.server.listen;
        if is_loopback(listen) && !self.behind_tls_or_proxy() {
            return Check {
                id: "tls.none",
                status: Status::Warn,
                finding: format!("server.listen = {listen} is loopback, with no server.tls and no server.trusted_proxies"),
                fix: "deployment decision: terminate TLS in front of Rampart and list the proxy in server.trusted_proxies, or configure [server.tls]".to_owned(),
            };
        }
        pass(
            "tls.none",
            "TLS is configured, or a trusted proxy is listed",
        )
    }

    fn metrics_unauthenticated(&self) -> Check {
        let metrics = &self.config.metrics;
        if !metrics.enabled || metrics.token.is_some() {
            return pass(
                "metrics.unauthenticated",
                "metrics are disabled or need a bearer token",
            );
        }
        let served_on = metrics.listen.unwrap_or(self.config.server.listen);
        if !is_loopback(served_on) {
            return self.flagged(
                "metrics.unauthenticated",
                format!(
                    "/metrics is served on {served_on}, reachable from the network, without a token"
                ),
                "set metrics.token (or metrics.token_file), or move metrics.listen to 127.0.0.1",
            );
        }
        if metrics.listen.is_none() {
            return Check {
                id: "metrics.unauthenticated",
                status: Status::Warn,
                finding: "/metrics is served on the main listener without a token: a proxy in front forwards it to anyone".to_owned(),
                fix: "set metrics.token, or serve metrics on a separate loopback listener (metrics.listen = \"127.0.0.1:9172\")".to_owned(),
            };
        }
        pass(
            "metrics.unauthenticated",
            format!("/metrics is only on the loopback listener {served_on}"),
        )
    }

    fn dev_simulated_login(&self) -> Check {
        match &self.config.dev.simulate_user {
            Some(user) => self.flagged(
                "dev.simulated_login",
                format!("dev.simulate_user = \"{user}\": every request is authenticated as this user, admin pages included"),
                "remove dev.simulate_user",
            ),
            None => pass("dev.simulated_login", "no simulated login"),
        }
    }

    fn secrets_placeholder(&self) -> Check {
        let mut found: Vec<&str> = self
            .secrets()
            .into_iter()
            .filter(|(_, s)| is_placeholder_secret(&s.value))
            .map(|(name, _)| name)
            .collect();
        if self
            .config
            .master_key
            .as_ref()
            .is_some_and(|k| k.key.is_placeholder())
        {
            found.insert(0, "master_key_hex");
        }
        if found.is_empty() {
            return pass("secrets.placeholder", "no placeholder secrets");
        }
        self.flagged(
            "secrets.placeholder",
            format!(
                "placeholder or default values: {} (anyone can guess them)",
                found.join(", ")
            ),
            "generate real values, e.g. `openssl rand -hex 32` for the master key and tokens",
        )
    }

    fn secrets_weak(&self) -> Check {
        let short = |secret: &ResolvedSecret| {
            secret.value.expose_secret().chars().count() < MIN_TOKEN_CHARS
        };
        let mut weak = Vec::new();
        if self.config.metrics.token.as_ref().is_some_and(short) {
            weak.push(("metrics.token", self.dev_only()));
        }
        // A short pepper is also a load error, so only a hand-built config gets
        // here; like other load errors it fails in every mode.
        if self.config.auth.password.pepper.as_ref().is_some_and(short) {
            weak.push(("auth.password.pepper", Status::Fail));
        }
        let Some(status) = weak.iter().map(|(_, status)| *status).max() else {
            return pass("secrets.weak", "no short tokens");
        };
        let names: Vec<&str> = weak.iter().map(|(name, _)| *name).collect();
        Check {
            id: "secrets.weak",
            status,
            finding: format!(
                "shorter than {MIN_TOKEN_CHARS} characters: {}",
                names.join(", ")
            ),
            fix: "use a random value: `openssl rand -hex 32`".to_owned(),
        }
    }

    fn secrets_inline(&self) -> Check {
        let inline: Vec<&str> = self
            .config
            .secret_origins()
            .into_iter()
            .filter(|(_, origin)| origin.is_inline())
            .map(|(name, _)| name)
            .collect();
        if inline.is_empty() {
            return pass(
                "secrets.inline",
                "no secrets are written in the config file",
            );
        }
        Check {
            id: "secrets.inline",
            status: Status::Warn,
            finding: format!("secrets written in the config file: {}", inline.join(", ")),
            fix: "move them to files (the *_file keys, mode 0600), RAMPART_* variables, the secrets file or $CREDENTIALS_DIRECTORY".to_owned(),
        }
    }

    fn auth_query_tokens(&self) -> Check {
        if self.config.auth.danger_accept_query_tokens {
            return self.flagged(
                "auth.query_tokens",
                "auth.danger_accept_query_tokens = true: tokens in URLs end up in logs, history and Referer headers".to_owned(),
                "set auth.danger_accept_query_tokens = false; send tokens in Authorization: Bearer",
            );
        }
        pass(
            "auth.query_tokens",
            "tokens are accepted only in headers and cookies",
        )
    }

    /// Advice in every mode: the operator chose it, and it is not a dev convenience.
    fn api_tokens_admin(&self) -> Check {
        if self.config.api_tokens.allow_admin {
            return Check {
                id: "api_tokens.admin",
                status: Status::Warn,
                finding: "api_tokens.allow_admin = true: API tokens may carry the admin role's permissions, and a leaked token is a full takeover without a second factor".to_owned(),
                fix: "set api_tokens.allow_admin = false, and give automation a role with only the permissions it needs".to_owned(),
            };
        }
        pass(
            "api_tokens.admin",
            "API tokens never carry admin permissions",
        )
    }

    /// Advice in every mode. Covers the role named `admin` and any role that grants
    /// administrator power (`*` or `admin`) under another name.
    fn roles_admin_mfa(&self) -> Check {
        let without_mfa: Vec<&str> = self
            .config
            .roles
            .iter()
            .filter(|(name, role)| {
                !role.require_mfa && (name.as_str() == "admin" || role.is_admin_equivalent())
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if without_mfa.is_empty() {
            return pass(
                "roles.admin_mfa",
                "every administrator role requires a second factor",
            );
        }
        let keys: Vec<String> = without_mfa
            .iter()
            .map(|name| format!("roles.{name}.require_mfa = false"))
            .collect();
        Check {
            id: "roles.admin_mfa",
            status: Status::Warn,
            finding: format!(
                "{}: administrators log in with a password alone, so one phished or reused password is a full takeover",
                keys.join(", ")
            ),
            fix: format!(
                "set require_mfa = true on {}",
                without_mfa
                    .iter()
                    .map(|name| format!("[roles.{name}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn storage_empty_url(&self) -> Check {
        let storage = &self.config.storage;
        let empty = storage.url.as_ref().is_none_or(|u| u.value.is_empty());
        if storage.backend == StorageBackend::Postgres && empty {
            return fail(
                "storage.empty_url",
                "storage.url is empty but storage.backend = postgres",
                "set storage.url (or storage.url_file) to postgres://USER:PASSWORD@HOST:5432/rampart?sslmode=verify-full",
            );
        }
        pass("storage.empty_url", "the database URL is set where needed")
    }

    fn upstream_tls(&self) -> Check {
        let bad: Vec<String> = self
            .config
            .upstreams
            .iter()
            .filter(|(_, u)| u.mode == UpstreamMode::Tls)
            .filter_map(|(name, u)| {
                if u.url.scheme() != "https" {
                    Some(format!(
                        "upstreams.{name}: mode = \"tls\" with an http:// URL"
                    ))
                } else if u.ca_cert.is_none() {
                    Some(format!("upstreams.{name}: mode = \"tls\" without ca_cert"))
                } else {
                    None
                }
            })
            .collect();
        if bad.is_empty() {
            return pass(
                "upstream.tls",
                "every tls-mode upstream has an https URL and a CA",
            );
        }
        fail(
            "upstream.tls",
            bad.join("; "),
            "use an https:// URL and set ca_cert for every upstream with mode = \"tls\"",
        )
    }

    fn jwt_ephemeral_keys(&self) -> Check {
        if self.config.jwt.danger_ephemeral_keys {
            return self.flagged(
                "jwt.ephemeral_keys",
                "jwt.danger_ephemeral_keys = true: every restart invalidates every token, and replicas cannot verify each other's".to_owned(),
                "remove jwt.danger_ephemeral_keys; keys are then kept in the database, sealed by the master key",
            );
        }
        pass("jwt.ephemeral_keys", "signing keys are persistent")
    }

    fn master_key_missing(&self) -> Check {
        match (&self.config.master_key, self.config.mode) {
            (Some(_), _) => pass("master_key.missing", "a master key is configured"),
            (None, Mode::Production) => fail(
                "master_key.missing",
                "no master key: production needs one to seal data keys",
                "generate one with `openssl rand -hex 32 > /etc/rampart/master.key && chmod 600 /etc/rampart/master.key` and set RAMPART_MASTER_KEY_PATH (or run `rampart init`)",
            ),
            (None, Mode::Dev) => Check {
                id: "master_key.missing",
                status: Status::Warn,
                finding: "no master key: using the deterministic development key, which is public"
                    .to_owned(),
                fix: "set RAMPART_MASTER_KEY_PATH before storing anything you want to keep"
                    .to_owned(),
            },
        }
    }

    fn master_key_inline(&self) -> Check {
        match &self.config.master_key {
            Some(key) if key.origin.is_inline() => self.flagged(
                "master_key.inline",
                "master_key_hex is written in the config file: keys do not belong in config files, which get copied, committed and backed up".to_owned(),
                "move it to a file named by master_key_path (mode 0600), RAMPART_MASTER_KEY_HEX, the secrets file or $CREDENTIALS_DIRECTORY/master_key_hex",
            ),
            _ => pass("master_key.inline", "the master key is not in the config file"),
        }
    }

    fn cookies_insecure(&self) -> Check {
        if !self.config.session.cookie_secure {
            return self.flagged(
                "cookies.insecure",
                "session.cookie_secure = false: session cookies are sent over plain HTTP"
                    .to_owned(),
                "set session.cookie_secure = true (the default)",
            );
        }
        pass("cookies.insecure", "session cookies are Secure")
    }

    fn email_outbox(&self) -> Check {
        if self.config.email.transport == EmailTransport::Outbox {
            return self.flagged(
                "email.outbox",
                format!("email.transport = \"outbox\": mail (magic links included) is written to {} instead of being sent", self.config.email.outbox_path.display()),
                "set email.transport = \"smtp\" and configure [email.smtp]",
            );
        }
        pass("email.outbox", "mail is sent by SMTP")
    }

    fn cors_credentials_wildcard(&self) -> Check {
        let bad: Vec<&str> = self
            .config
            .routes
            .iter()
            .filter(|r| {
                r.cors.as_ref().is_some_and(|c| {
                    c.allow_credentials
                        && c.allow_origins.iter().any(|o| match o {
                            CorsOrigin::Any => true,
                            CorsOrigin::Exact(origin) => origin.eq_ignore_ascii_case("null"),
                        })
                })
            })
            .map(|r| r.name.as_str())
            .collect();
        if bad.is_empty() {
            return pass(
                "cors.credentials_wildcard",
                "no route allows credentials with a wildcard or null origin",
            );
        }
        fail(
            "cors.credentials_wildcard",
            format!(
                "routes {} allow credentials with \"*\" or \"null\" origins",
                bad.join(", ")
            ),
            "list exact origins, or set allow_credentials = false",
        )
    }

    fn danger_accept_invalid_certs(&self) -> Check {
        let names: Vec<&str> = self
            .config
            .upstreams
            .iter()
            .filter(|(_, u)| u.danger_accept_invalid_certs)
            .map(|(name, _)| name.as_str())
            .collect();
        if names.is_empty() {
            return pass(
                "danger.accept_invalid_certs",
                "every upstream certificate is verified",
            );
        }
        self.flagged(
            "danger.accept_invalid_certs",
            format!("upstreams {} skip certificate verification: anyone on the network path can impersonate them", names.join(", ")),
            "remove danger_accept_invalid_certs and set ca_cert with mode = \"tls\" for private CAs",
        )
    }

    /// Advice in every mode: an operator may rate-limit in front of Rampart, but
    /// then sign-in is only as guarded as that proxy is configured.
    fn rate_limit_disabled(&self) -> Check {
        if self.config.rate_limit.enabled {
            return pass("rate_limit.disabled", "rate limits are enforced");
        }
        Check {
            id: "rate_limit.disabled",
            status: Status::Warn,
            finding: "rate_limit.enabled = false: sign-in, TOTP, recovery-code and magic-link endpoints and every route take requests at any rate, which helps password guessing and floods".to_owned(),
            fix: "set rate_limit.enabled = true (the default), and tune [rate_limit.classes] instead".to_owned(),
        }
    }

    /// Also a load error; only a hand-built config gets here.
    fn rate_limit_redis_without_url(&self) -> Check {
        if self.config.rate_limit.backend == RateLimitBackend::Redis && self.config.redis.is_none()
        {
            return fail(
                "rate_limit.redis_without_url",
                "rate_limit.backend = redis but redis.url is not set",
                "set redis.url (or redis.url_file), or rate_limit.backend = \"memory\"",
            );
        }
        pass(
            "rate_limit.redis_without_url",
            "the rate-limit backend is configured",
        )
    }

    fn secrets(&self) -> Vec<(&'static str, &ResolvedSecret)> {
        let config = self.config;
        let mut out = Vec::new();
        if let Some(url) = &config.storage.url {
            out.push(("storage.url", url));
        }
        if let Some(redis) = &config.redis {
            out.push(("redis.url", &redis.url));
        }
        if let Some(token) = &config.metrics.token {
            out.push(("metrics.token", token));
        }
        if let Some(password) = config.email.smtp.as_ref().and_then(|s| s.password.as_ref()) {
            out.push(("email.smtp.password", password));
        }
        if let Some(pepper) = &config.auth.password.pepper {
            out.push(("auth.password.pepper", pepper));
        }
        out
    }
}

fn pass(id: &'static str, finding: impl Into<String>) -> Check {
    Check {
        id,
        status: Status::Pass,
        finding: finding.into(),
        fix: String::new(),
    }
}

fn fail(id: &'static str, finding: impl Into<String>, fix: &str) -> Check {
    Check {
        id,
        status: Status::Fail,
        finding: finding.into(),
        fix: fix.to_owned(),
    }
}

fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn is_placeholder_text(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return true;
    };
    chars.all(|c| c == first)
        || PLACEHOLDER_SECRETS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(text))
}

/// Percent-decodes a URL password (`p%40ss` → `p@ss`) for the placeholder check.
fn decode_percent(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognized() {
        for text in [
            "changeme",
            "CHANGEME",
            "dev-token",
            "0000000000000000",
            "aaaa",
            "rampart-example-token",
            "postgres://rampart:changeme@db/rampart",
            "redis://:pass%77ord@cache:6379",
            "postgres://postgres:postgres@db/rampart",
        ] {
            assert!(is_placeholder_secret(&SecretString::from(text)), "{text}");
        }
        for text in [
            "9f3a1c0e5b7d2a4c6e8f0a1b3c5d7e9f",
            "postgres://rampart:Xk29fmQ1pz@db/rampart",
            "redis://cache:6379",
        ] {
            assert!(!is_placeholder_secret(&SecretString::from(text)), "{text}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_percent("p%40ss%2"), "p@ss%2");
    }
}
