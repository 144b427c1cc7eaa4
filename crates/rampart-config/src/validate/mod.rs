//! Stage 5: `RawConfig` → `Config`, parsing every string and checking every rule
//! that spans more than one key.
//!
//! This is `TryFrom<RawConfig> for Config` in spirit, written as a function with an
//! accumulator: a value that does not parse is reported and replaced by a fallback so
//! that the rest of the config is still checked, and the caller discards the
//! resulting `Config` whenever a problem was recorded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    AuditConfig, Config, DevConfig, EmailConfig, EmailTransport, HOST_PREFIX, JwtConfig, LogFilter,
    LoggingConfig, MetricsConfig, Mode, RedisConfig, SECURE_PREFIX, SESSION_COOKIE_BASE_NAME,
    SameSite, SecretsConfig, ServerConfig, SessionConfig, SmtpConfig, StorageBackend,
    StorageConfig, TlsConfig, UpstreamConfig, cookie_prefix_for,
};
use crate::env::EnvOrigins;
use crate::error::{Problems, REDACTED, quote};
use crate::raw::{
    RawAudit, RawEmail, RawJwt, RawMetrics, RawRedis, RawServer, RawSession, RawStorage,
};
use crate::secrets::{Sources, check_secret_file};
use crate::units::{self, Invalid};

mod edge;
mod identity;
mod policy;
mod routing;

/// Where the TOML came from and what the environment set, for secret origins.
pub(crate) struct Provenance<'a> {
    pub source: Option<PathBuf>,
    pub env: &'a BTreeMap<String, String>,
    pub env_origins: EnvOrigins,
}

/// Builds the validated config, recording every problem in `problems`.
pub(crate) fn validate(
    raw: crate::raw::RawConfig,
    provenance: Provenance<'_>,
    problems: &mut Problems,
) -> Config {
    let in_file = provenance.source.is_some();
    let sources = Sources::new(
        raw.secrets.file.as_deref(),
        provenance.env,
        provenance.env_origins,
        in_file,
        problems,
    );
    let mut v = Validator { problems };
    let mode = raw.mode;
    let data_dir = raw.data_dir.unwrap_or_else(|| match mode {
        Mode::Production => PathBuf::from("/var/lib/rampart"),
        Mode::Dev => PathBuf::from("./rampart-data"),
    });
    let public_url = raw
        .public_url
        .as_deref()
        .and_then(|text| v.parse("public_url", text, units::public_url));
    let master_key = sources.master_key(
        raw.master_key_hex,
        raw.master_key_path.as_deref(),
        v.problems,
    );
    let request_timeout_text = raw.server.request_timeout.clone();
    let server = v.server(raw.server);
    let level = v
        .parse("logging.level", &raw.logging.level, units::log_filter)
        .unwrap_or_else(|| LogFilter("info".to_owned()));
    let storage = v.storage(raw.storage, &sources);
    let redis = v.redis(raw.redis, &sources);
    let metrics = v.metrics(raw.metrics, server.listen, &sources);
    let audit = v.audit(raw.audit);
    let session = v.session(raw.session);
    let jwt = v.jwt(raw.jwt, public_url.as_ref());
    let auth = v.auth(raw.auth, &sources);
    let api_tokens = v.api_tokens(raw.api_tokens);
    let totp = v.totp(raw.totp);
    let magic_link = v.magic_link(raw.magic_link);
    let csrf = v.csrf(raw.csrf);
    let roles = v.roles(raw.roles);
    let headers = v.headers(raw.headers);
    let identity = v.identity(raw.identity);
    let forward_auth = v.forward_auth(raw.forward_auth);
    // Routes are checked against the class names in the file, like upstreams below.
    let rate_classes: Vec<String> = raw.rate_limit.classes.keys().cloned().collect();
    let rate_limit = v.rate_limit(raw.rate_limit, redis.is_some());
    let email = v.email(raw.email, &data_dir, &sources);
    let simulate_user = raw.dev.simulate_user.and_then(|user| {
        let user = user.trim().to_owned();
        if user.is_empty() {
            v.problem(
                "dev.simulate_user",
                Some(quote(&user)),
                "the user name is empty",
                "name an existing user, or remove the key",
            );
            return None;
        }
        Some(user)
    });
    // Routes are checked against the names in the file: an upstream with a bad URL
    // is reported once, not again by every route that uses it.
    let upstream_names: Vec<String> = raw.upstreams.keys().cloned().collect();
    let upstreams: BTreeMap<String, UpstreamConfig> = raw
        .upstreams
        .into_iter()
        .filter_map(|(name, upstream)| v.upstream(&name, upstream).map(|u| (name, u)))
        .collect();
    let role_names: Vec<String> = roles.keys().cloned().collect();
    let routes = v.routes(
        raw.routes,
        &routing::RouteContext {
            upstreams: &upstream_names,
            roles: &role_names,
            rate_classes: &rate_classes,
            request_timeout: (server.request_timeout, &request_timeout_text),
        },
    );

    Config {
        mode,
        source: provenance.source,
        data_dir,
        public_url,
        master_key,
        server,
        logging: LoggingConfig {
            level,
            format: raw.logging.format,
        },
        secrets: SecretsConfig {
            file: raw.secrets.file,
        },
        storage,
        redis,
        metrics,
        audit,
        session,
        auth,
        jwt,
        api_tokens,
        totp,
        magic_link,
        csrf,
        roles,
        email,
        dev: DevConfig { simulate_user },
        upstreams,
        routes,
        headers,
        identity,
        forward_auth,
        rate_limit,
    }
}

/// Parses values and records problems; fallbacks keep the walk going.
struct Validator<'p> {
    problems: &'p mut Problems,
}

/// Whether a duration of zero is meaningful for the key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Zero {
    Allowed,
    Refused,
}

impl Validator<'_> {
    fn problem(
        &mut self,
        key: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(key, value, message, fix);
    }

    fn parse<T>(
        &mut self,
        key: &str,
        text: &str,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        match parse(text) {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.problem(key, Some(quote(text)), invalid.message, invalid.fix);
                None
            }
        }
    }

    fn duration(&mut self, key: &str, text: &str, zero: Zero) -> Duration {
        let Some(value) = self.parse(key, text, units::duration) else {
            return Duration::ZERO;
        };
        if value.is_zero() && zero == Zero::Refused {
            self.problem(
                key,
                Some(quote(text)),
                "must be longer than zero",
                "use a positive duration such as \"10s\"",
            );
        }
        value
    }

    /// A duration with an upper bound; `limit` is the bound and how it is written,
    /// `why` the harm of a longer value.
    fn at_most(
        &mut self,
        key: &str,
        text: &str,
        zero: Zero,
        (limit, limit_text): (Duration, &str),
        why: &str,
        default: &str,
    ) -> Duration {
        let value = self.duration(key, text, zero);
        if value > limit {
            self.problem(
                key,
                Some(quote(text)),
                format!("longer than {limit_text}: {why}"),
                format!("use at most \"{limit_text}\"; the default is \"{default}\""),
            );
        }
        value
    }

    fn size(&mut self, key: &str, text: &str) -> u64 {
        self.parse(key, text, units::size).unwrap_or(0)
    }

    /// A file that must exist (certificates, CA bundles); read later by others.
    fn existing_file(&mut self, key: &str, path: &Path) {
        if !path.is_file() {
            self.problem(
                key,
                Some(quote(&path.display().to_string())),
                "no such file",
                "correct the path, or create the file",
            );
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let listen = self
            .parse("server.listen", &raw.listen, units::socket_addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9171)));
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                self.parse(&format!("server.trusted_proxies[{i}]"), text, units::cidr)
            })
            .collect();
        let max_header_bytes = self.size("server.max_header_bytes", &raw.max_header_bytes);
        if max_header_bytes != 0 && max_header_bytes < 1024 {
            self.problem(
                "server.max_header_bytes",
                Some(quote(&raw.max_header_bytes)),
                "too small: browsers routinely send a few KiB of headers",
                "use at least \"1KiB\"; the default is \"32KiB\"",
            );
        }
        if let Some(header) = raw.client_ip_header
            && raw.trusted_proxies.is_empty()
        {
            self.problem(
                "server.client_ip_header",
                Some(quote(header.as_str())),
                "the header is believed only from server.trusted_proxies, and none are listed, so it would never be used",
                "list the proxy that sets it in server.trusted_proxies, or remove server.client_ip_header",
            );
        }
        let tls = raw.tls.map(|tls| {
            self.existing_file("server.tls.cert_path", &tls.cert_path);
            check_secret_file("server.tls.key_path", &tls.key_path, self.problems);
            TlsConfig {
                cert_path: tls.cert_path,
                key_path: tls.key_path,
                min_version: tls.min_version,
            }
        });
        ServerConfig {
            listen,
            trusted_proxies,
            max_connections: raw.max_connections,
            header_read_timeout: self.duration(
                "server.header_read_timeout",
                &raw.header_read_timeout,
                Zero::Refused,
            ),
            request_timeout: self.duration(
                "server.request_timeout",
                &raw.request_timeout,
                Zero::Refused,
            ),
            keep_alive_timeout: self.duration(
                "server.keep_alive_timeout",
                &raw.keep_alive_timeout,
                Zero::Refused,
            ),
            max_header_bytes,
            max_headers: raw.max_headers,
            body_limit: self.size("server.body_limit", &raw.body_limit),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                &raw.shutdown_grace,
                Zero::Allowed,
            ),
            tls,
            client_ip_header: raw.client_ip_header,
        }
    }

    fn storage(&mut self, raw: RawStorage, sources: &Sources) -> StorageConfig {
        let url = sources.resolve(
            "storage.url",
            raw.url,
            raw.url_file.as_deref(),
            self.problems,
        );
        match (&url, raw.backend) {
            (None, StorageBackend::Postgres) => self.problem(
                "storage.url",
                None,
                "storage.url is empty but storage.backend = postgres",
                "set storage.url (or storage.url_file, RAMPART_STORAGE_URL, or \"storage.url\" in the secrets file) to postgres://USER:PASSWORD@HOST:5432/rampart?sslmode=verify-full",
            ),
            (Some(url), backend) => {
                let scheme = url
                    .value
                    .expose_secret()
                    .split_once(':')
                    .map(|(s, _)| s.to_ascii_lowercase())
                    .unwrap_or_default();
                let (fits, expected) = match backend {
                    StorageBackend::Sqlite => (scheme == "sqlite", "sqlite://"),
                    StorageBackend::Postgres => {
                        (matches!(scheme.as_str(), "postgres" | "postgresql"), "postgres://")
                    }
                };
                if !fits {
                    let backend_name = match backend {
                        StorageBackend::Sqlite => "sqlite",
                        StorageBackend::Postgres => "postgres",
                    };
                    self.problem(
                        "storage.url",
                        Some(REDACTED.to_owned()),
                        format!(
                            "storage.backend = {backend_name} needs a {expected} URL"
                        ),
                        format!(
                            "use a {expected} URL, or set storage.backend to match the URL"
                        ),
                    );
                }
            }
            (None, StorageBackend::Sqlite) => {}
        }
        if raw.min_connections > raw.max_connections.get() {
            self.problem(
                "storage.min_connections",
                Some(raw.min_connections.to_string()),
                format!(
                    "larger than storage.max_connections ({})",
                    raw.max_connections
                ),
                "lower min_connections or raise max_connections",
            );
        }
        StorageConfig {
            backend: raw.backend,
            url,
            max_connections: raw.max_connections,
            min_connections: raw.min_connections,
            acquire_timeout: self.duration(
                "storage.acquire_timeout",
                &raw.acquire_timeout,
                Zero::Refused,
            ),
            busy_timeout: self.duration("storage.busy_timeout", &raw.busy_timeout, Zero::Allowed),
        }
    }

    fn redis(&mut self, raw: RawRedis, sources: &Sources) -> Option<RedisConfig> {
        let connect_timeout =
            self.duration("redis.connect_timeout", &raw.connect_timeout, Zero::Refused);
        let response_timeout = self.duration(
            "redis.response_timeout",
            &raw.response_timeout,
            Zero::Refused,
        );
        let url = sources.resolve("redis.url", raw.url, raw.url_file.as_deref(), self.problems)?;
        let scheme = url
            .value
            .expose_secret()
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(
            scheme.as_deref(),
            Some("redis" | "rediss" | "redis+unix" | "unix")
        ) {
            self.problem(
                "redis.url",
                Some(REDACTED.to_owned()),
                "not a Redis URL",
                "use redis://HOST:6379 or rediss://HOST:6380 (TLS)",
            );
        }
        let key_prefix = raw.key_prefix.trim().to_owned();
        let valid_prefix = (1..=64).contains(&key_prefix.len())
            && key_prefix.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'.' | b':' | b'-')
            });
        if !valid_prefix {
            self.problem(
                "redis.key_prefix",
                Some(quote(&raw.key_prefix)),
                "not a valid key prefix",
                "use 1 to 64 characters from a-z, 0-9, _ . : and -, e.g. \"rampart\" or \"rampart-prod\"",
            );
        }
        Some(RedisConfig {
            url,
            connect_timeout,
            response_timeout,
            key_prefix,
        })
    }

    fn metrics(&mut self, raw: RawMetrics, main: SocketAddr, sources: &Sources) -> MetricsConfig {
        let listen = raw
            .listen
            .as_deref()
            .and_then(|text| self.parse("metrics.listen", text, units::socket_addr));
        if listen == Some(main) {
            self.problem(
                "metrics.listen",
                raw.listen.as_deref().map(quote),
                "the same address as server.listen",
                "use another port, or remove metrics.listen to serve /metrics on the main listener",
            );
        }
        let token = sources.resolve(
            "metrics.token",
            raw.token,
            raw.token_file.as_deref(),
            self.problems,
        );
        MetricsConfig {
            enabled: raw.enabled,
            listen,
            token,
        }
    }

    fn audit(&mut self, raw: RawAudit) -> AuditConfig {
        if !raw.database {
            self.problem(
                "audit.database",
                Some("false".to_owned()),
                "the audit chain lives in the database (every process and replica appends to it); a file alone cannot be shared or cross-checked",
                "set audit.database = true; add audit.path to also keep a per-process JSON-lines copy",
            );
        }
        AuditConfig {
            database: raw.database,
            path: raw.path,
            checkpoint_every: raw.checkpoint_every,
            checkpoint_interval: self.duration(
                "audit.checkpoint_interval",
                &raw.checkpoint_interval,
                Zero::Refused,
            ),
            queue_capacity: raw.queue_capacity,
        }
    }

    fn session(&mut self, raw: RawSession) -> SessionConfig {
        if raw.same_site == SameSite::None && !raw.cookie_secure {
            self.problem(
                "session.same_site",
                Some(quote("none")),
                "SameSite=None cookies must be Secure, and browsers drop them otherwise",
                "set session.cookie_secure = true, or use same_site = \"lax\"",
            );
        }
        let domain = raw
            .domain
            .as_deref()
            .and_then(|text| self.parse("session.domain", text, units::host));
        let idle_timeout = self.duration("session.idle_timeout", &raw.idle_timeout, Zero::Refused);
        let absolute_timeout = self.duration(
            "session.absolute_timeout",
            &raw.absolute_timeout,
            Zero::Refused,
        );
        if idle_timeout > absolute_timeout && !absolute_timeout.is_zero() {
            self.problem(
                "session.idle_timeout",
                Some(quote(&raw.idle_timeout)),
                format!(
                    "longer than session.absolute_timeout ({})",
                    raw.absolute_timeout
                ),
                "make idle_timeout shorter than absolute_timeout",
            );
        }
        let cookie_name_override = raw.cookie_name.as_deref().and_then(|text| {
            self.session_cookie_name(text, raw.cookie_secure, raw.domain.is_some())
        });
        SessionConfig {
            cookie_secure: raw.cookie_secure,
            same_site: raw.same_site,
            domain,
            idle_timeout,
            absolute_timeout,
            cookie_name_override,
        }
    }

    /// A configured session cookie name, which must carry the prefix its flags call
    /// for.
    ///
    /// Browsers refuse to store a `__Host-` cookie with a `Domain` or without
    /// `Secure`, and a `__Secure-` cookie without `Secure`; a name without the prefix
    /// the flags allow gives up the prefix's promise that neither a subdomain nor a
    /// plain-HTTP page set the cookie (cookie tossing, session fixation).
    fn session_cookie_name(&mut self, text: &str, secure: bool, domain: bool) -> Option<String> {
        let key = "session.cookie_name";
        let name = self.parse(key, text, units::cookie_name)?;
        let value = Some(quote(&name));
        let lower = name.to_ascii_lowercase();
        let (prefix, rest) = [HOST_PREFIX, SECURE_PREFIX]
            .into_iter()
            .find(|p| lower.starts_with(&p.to_ascii_lowercase()))
            .map_or(("", name.as_str()), |p| {
                (p, name.get(p.len()..).unwrap_or_default())
            });
        let rest = if rest.is_empty() {
            SESSION_COOKIE_BASE_NAME
        } else {
            rest
        };
        let expected = cookie_prefix_for(secure, domain);
        if !prefix.is_empty() && !name.starts_with(prefix) {
            self.problem(
                key,
                value,
                format!("the prefix must be written exactly {prefix}: browsers disagree on other spellings"),
                format!("rename it to {prefix}{rest}"),
            );
            return None;
        }
        if prefix == HOST_PREFIX && domain {
            self.problem(
                key,
                value,
                "a __Host- cookie cannot have a Domain, and browsers refuse to store it with session.domain set",
                format!("rename it to {SECURE_PREFIX}{rest}, or remove session.domain"),
            );
            return None;
        }
        if !prefix.is_empty() && !secure {
            self.problem(
                key,
                value,
                format!("a {prefix} cookie must be Secure, and browsers refuse to store it with session.cookie_secure = false"),
                format!("set session.cookie_secure = true, or rename it to {rest}"),
            );
            return None;
        }
        if prefix.len() == name.len() {
            self.problem(
                key,
                value,
                "the name is only a prefix",
                format!("rename it to {prefix}{SESSION_COOKIE_BASE_NAME}"),
            );
            return None;
        }
        if prefix != expected {
            let flags = if domain {
                "Secure with session.domain"
            } else {
                "Secure and host-only"
            };
            self.problem(
                key,
                value,
                format!("a {flags} session cookie must be named {expected}...: the prefix makes browsers refuse a cookie of that name set by a subdomain or over plain HTTP"),
                format!("rename it to {expected}{rest}"),
            );
            return None;
        }
        Some(name)
    }

    fn jwt(&mut self, raw: RawJwt, public_url: Option<&url::Url>) -> JwtConfig {
        let issuer = match raw.issuer {
            Some(issuer) if issuer.trim().is_empty() => {
                self.problem(
                    "jwt.issuer",
                    Some(quote(&issuer)),
                    "the issuer is empty",
                    "remove the key to use the default, or name the issuer",
                );
                issuer
            }
            Some(issuer) => issuer,
            None => public_url
                .map(|url| url.origin().ascii_serialization())
                .unwrap_or_else(|| "rampart".to_owned()),
        };
        if raw.audience.trim().is_empty() {
            self.problem(
                "jwt.audience",
                Some(quote(&raw.audience)),
                "the audience is empty",
                "remove the key to use \"rampart\", or name the audience",
            );
        }
        if let Some(path) = &raw.signing_key_path {
            check_secret_file("jwt.signing_key_path", path, self.problems);
            if raw.danger_ephemeral_keys {
                self.problem(
                    "jwt.danger_ephemeral_keys",
                    Some("true".to_owned()),
                    "contradicts jwt.signing_key_path",
                    "remove one of the two",
                );
            }
        }
        let access_ttl = self.duration("jwt.access_ttl", &raw.access_ttl, Zero::Refused);
        let refresh_ttl = self.duration("jwt.refresh_ttl", &raw.refresh_ttl, Zero::Refused);
        if refresh_ttl < access_ttl && !refresh_ttl.is_zero() {
            self.problem(
                "jwt.refresh_ttl",
                Some(quote(&raw.refresh_ttl)),
                format!(
                    "shorter than jwt.access_ttl ({}): the refresh token would expire before the access token it renews",
                    raw.access_ttl
                ),
                "raise refresh_ttl or lower access_ttl",
            );
        }
        let refresh_reuse_leeway = self.at_most(
            "jwt.refresh_reuse_leeway",
            &raw.refresh_reuse_leeway,
            Zero::Allowed,
            (Duration::from_secs(60), "1m"),
            "a stolen refresh token replayed within this window is not detected as reuse",
            "5s",
        );
        let leeway = self.at_most(
            "jwt.leeway",
            &raw.leeway,
            Zero::Allowed,
            (Duration::from_secs(300), "5m"),
            "clocks kept by NTP differ by seconds, and every second of leeway extends every token's life",
            "30s",
        );
        let assertion_ttl = self.at_most(
            "jwt.assertion_ttl",
            &raw.assertion_ttl,
            Zero::Refused,
            (Duration::from_secs(300), "5m"),
            "an assertion is a bearer credential for upstreams, and a long life widens the window to replay a leaked one",
            "60s",
        );
        let rotation_grace = match &raw.rotation_grace {
            Some(text) => {
                let grace = self.duration("jwt.rotation_grace", text, Zero::Refused);
                let (longest, longest_key, longest_text) = if assertion_ttl > access_ttl {
                    (assertion_ttl, "jwt.assertion_ttl", &raw.assertion_ttl)
                } else {
                    (access_ttl, "jwt.access_ttl", &raw.access_ttl)
                };
                if grace < longest && !grace.is_zero() {
                    self.problem(
                        "jwt.rotation_grace",
                        Some(quote(text)),
                        format!(
                            "shorter than {longest_key} ({longest_text}): tokens signed just before a key rotation would be refused before they expire"
                        ),
                        format!(
                            "use at least {}, or remove the key to use jwt.access_ttl",
                            quote(longest_text)
                        ),
                    );
                }
                grace
            }
            None => access_ttl.max(assertion_ttl),
        };
        JwtConfig {
            issuer,
            audience: raw.audience,
            access_ttl,
            signing_key_path: raw.signing_key_path,
            danger_ephemeral_keys: raw.danger_ephemeral_keys,
            refresh_ttl,
            refresh_reuse_leeway,
            leeway,
            rotation_grace,
            assertion_ttl,
        }
    }

    fn email(&mut self, raw: RawEmail, data_dir: &Path, sources: &Sources) -> EmailConfig {
        if let Some(from) = &raw.from
            && !from.contains('@')
        {
            self.problem(
                "email.from",
                Some(quote(from)),
                "not an email address",
                "use an address such as \"Rampart <rampart@example.com>\"",
            );
        }
        let smtp = raw.smtp;
        let timeout = self.duration("email.smtp.timeout", &smtp.timeout, Zero::Refused);
        let password = sources.resolve(
            "email.smtp.password",
            smtp.password,
            smtp.password_file.as_deref(),
            self.problems,
        );
        let smtp = match smtp.host {
            Some(host) => {
                let host = self
                    .parse("email.smtp.host", &host, units::host)
                    .unwrap_or(host);
                match (&smtp.username, &password) {
                    (Some(_), None) => self.problem(
                        "email.smtp.password",
                        None,
                        "email.smtp.username is set but the password is not",
                        "set email.smtp.password (or password_file), or remove the username",
                    ),
                    (None, Some(_)) => self.problem(
                        "email.smtp.username",
                        None,
                        "email.smtp.password is set but the username is not",
                        "set email.smtp.username",
                    ),
                    _ => {}
                }
                if raw.transport == EmailTransport::Smtp && raw.from.is_none() {
                    self.problem(
                        "email.from",
                        None,
                        "SMTP is configured but email.from is not",
                        "set email.from = \"Rampart <rampart@example.com>\"",
                    );
                }
                Some(SmtpConfig {
                    host,
                    port: smtp.port,
                    tls: smtp.tls,
                    username: smtp.username,
                    password,
                    timeout,
                })
            }
            None => {
                if smtp.username.is_some() || password.is_some() {
                    self.problem(
                        "email.smtp.host",
                        None,
                        "SMTP credentials are set but email.smtp.host is not",
                        "set email.smtp.host, or remove the credentials",
                    );
                }
                None
            }
        };
        EmailConfig {
            transport: raw.transport,
            from: raw.from,
            outbox_path: raw.outbox_path.unwrap_or_else(|| data_dir.join("outbox")),
            smtp,
        }
    }
}

/// Whether a name chosen by the operator (upstream, role) is `[a-z0-9_-]+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The key of the entry `name` of the table at `field` (`routes[0].inject_headers`),
/// written as the schema check writes it: quoted unless a plain word.
fn entry_key(field: &str, name: &str) -> String {
    crate::schema_check::key_path(field, name)
}

/// A name made valid for a suggestion in a fix.
fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "name".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("billing-api_2"));
        assert!(!is_valid_name("Bad Name"));
        assert!(!is_valid_name(""));
        assert_eq!(sanitize_name("My API"), "my-api");
        assert_eq!(sanitize_name(""), "name");
    }
}
