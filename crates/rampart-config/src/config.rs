//! The validated configuration.
//!
//! Every field has the type of what it means: a `SocketAddr`, a `Url`, a `Duration`, an
//! `IpNet`, an enum. A `Config` can only be obtained from [`crate::load`] (or built by
//! hand in tests), so code that receives one never re-checks it. Secrets are
//! [`SecretString`] or [`MasterKey`], whose `Debug` is redacted, so `{:?}` of a whole
//! `Config` is safe to log.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use rampart_crypto::SecretString;
use rampart_crypto::master_key::MasterKey;
use rampart_crypto::password::Argon2Params;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `dev` or `production`; decides defaults and whether guardrails fail or warn.
    pub mode: Mode,
    /// The config file that was read, if any.
    pub source: Option<PathBuf>,
    /// Where Rampart keeps its state (SQLite database, outbox, audit file defaults).
    pub data_dir: PathBuf,
    /// The external origin of Rampart (`https://auth.example.com/`), if configured.
    pub public_url: Option<Url>,
    /// The operator's master key and where it came from; `None` when none was given.
    /// Use [`Config::master_key`], which applies the development fallback.
    pub master_key: Option<MasterKeySource>,
    /// The listener.
    pub server: ServerConfig,
    /// Log level and format.
    pub logging: LoggingConfig,
    /// The JSON secrets file, if any.
    pub secrets: SecretsConfig,
    /// The database.
    pub storage: StorageConfig,
    /// Redis, when configured.
    pub redis: Option<RedisConfig>,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// Browser sessions.
    pub session: SessionConfig,
    /// Authentication policy.
    pub auth: AuthConfig,
    /// Rampart's own access tokens.
    pub jwt: JwtConfig,
    /// Long-lived API tokens.
    pub api_tokens: ApiTokensConfig,
    /// Time-based one-time passwords.
    pub totp: TotpConfig,
    /// Login by emailed link.
    pub magic_link: MagicLinkConfig,
    /// Origins trusted for cookie-authenticated unsafe requests.
    pub csrf: CsrfConfig,
    /// Roles by name (`[a-z0-9_-]+`).
    pub roles: BTreeMap<String, RoleConfig>,
    /// Outgoing mail.
    pub email: EmailConfig,
    /// Development-only conveniences.
    pub dev: DevConfig,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes, in match order.
    pub routes: Vec<RouteConfig>,
    /// Security headers added to responses.
    pub headers: HeadersConfig,
    /// Client request headers treated as identity claims.
    pub identity: IdentityConfig,
    /// The forward-auth endpoint for reverse proxies.
    pub forward_auth: ForwardAuthConfig,
    /// Request rate limits.
    pub rate_limit: RateLimitConfig,
}

impl Config {
    /// The master key to use: the operator's, or in dev mode the deterministic
    /// development key. `None` only in production without a key, which the
    /// `master_key.missing` guardrail refuses.
    pub fn master_key(&self) -> Option<MasterKey> {
        match (&self.master_key, self.mode) {
            (Some(source), _) => Some(source.key.clone()),
            (None, Mode::Dev) => Some(MasterKey::development()),
            (None, Mode::Production) => None,
        }
    }

    /// The database URL: `storage.url` when set, else the SQLite file
    /// `<data_dir>/rampart.db`.
    pub fn database_url(&self) -> SecretString {
        match &self.storage.url {
            Some(url) => url.value.clone(),
            None => SecretString::new(format!(
                "sqlite://{}",
                self.data_dir.join("rampart.db").display()
            )),
        }
    }

    /// Every secret that was resolved, by its dotted name, with its origin — for
    /// `rampart doctor`. Values are not included.
    pub fn secret_origins(&self) -> Vec<(&'static str, &SecretOrigin)> {
        let mut out = Vec::new();
        if let Some(key) = &self.master_key {
            out.push(("master_key_hex", &key.origin));
        }
        if let Some(url) = &self.storage.url {
            out.push(("storage.url", &url.origin));
        }
        if let Some(redis) = &self.redis {
            out.push(("redis.url", &redis.url.origin));
        }
        if let Some(token) = &self.metrics.token {
            out.push(("metrics.token", &token.origin));
        }
        if let Some(password) = self.email.smtp.as_ref().and_then(|s| s.password.as_ref()) {
            out.push(("email.smtp.password", &password.origin));
        }
        if let Some(pepper) = &self.auth.password.pepper {
            out.push(("auth.password.pepper", &pepper.origin));
        }
        out
    }

    /// The origins whose cookie-authenticated unsafe requests are accepted: the
    /// origin of `public_url` (when set) followed by `csrf.allowed_origins`, without
    /// repeats. Same form as the `Origin` header: `https://auth.example.com`.
    pub fn csrf_origins(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let public = self
            .public_url
            .as_ref()
            .map(|url| url.origin().ascii_serialization());
        for origin in public
            .into_iter()
            .chain(self.csrf.allowed_origins.iter().cloned())
        {
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
        out
    }

    /// Where browsers are sent to sign in: `forward_auth.signin_url`, else
    /// `<public_url>/login`; `None` when neither `public_url` nor a sign-in URL is
    /// configured.
    pub fn signin_url(&self) -> Option<Url> {
        match &self.forward_auth.signin_url {
            Some(url) => Some(url.clone()),
            None => self
                .public_url
                .as_ref()
                .and_then(|url| url.join("login").ok()),
        }
    }

    /// Every secret file in use, labelled by the key that names it: the master key
    /// file, `*_file` companions, the secrets file, the TLS key, upstream client keys
    /// and the JWT signing key. Credentials from `$CREDENTIALS_DIRECTORY` are not
    /// listed: systemd owns their modes.
    pub fn secret_files(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for (name, origin) in self.secret_origins() {
            if let SecretOrigin::File(path) = origin {
                let label = crate::secrets::companion_of(name).unwrap_or(name);
                out.push((label.to_owned(), path.clone()));
            }
        }
        if let Some(file) = &self.secrets.file {
            out.push(("secrets.file".to_owned(), file.clone()));
        }
        if let Some(tls) = &self.server.tls {
            out.push(("server.tls.key_path".to_owned(), tls.key_path.clone()));
        }
        for (name, upstream) in &self.upstreams {
            if let Some(identity) = &upstream.client_cert {
                out.push((
                    format!("upstreams.{name}.client_key"),
                    identity.key_path.clone(),
                ));
            }
        }
        if let Some(path) = &self.jwt.signing_key_path {
            out.push(("jwt.signing_key_path".to_owned(), path.clone()));
        }
        out
    }
}

/// Development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Development: dev-only conveniences are allowed (and reported as warnings).
    Dev,
    /// Production: every guardrail is enforced at start.
    #[default]
    Production,
}

/// Where a secret's value came from. Paths are not secret and are shown by doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// Written as a literal in the TOML config. `in_file` is true when that TOML was
    /// read from a file, false when it was given as text (`from_toml_str`).
    Inline {
        /// Whether the TOML came from a file on disk.
        in_file: bool,
    },
    /// From a `RAMPART_*` environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// From the file named by the companion key (`storage.url_file`, `master_key_path`).
    File(PathBuf),
    /// From the JSON secrets file (`secrets.file`).
    SecretsFile(PathBuf),
    /// From systemd's `$CREDENTIALS_DIRECTORY`.
    Credentials(PathBuf),
}

impl SecretOrigin {
    /// Whether the value was written into the TOML config, where secrets do not belong.
    pub fn is_inline(&self) -> bool {
        matches!(self, Self::Inline { .. })
    }
}

/// Where the value came from, for doctor's report: `the config file`,
/// `$RAMPART_STORAGE_URL`, `file /run/secrets/db-url`, ...
impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline { in_file: true } => f.write_str("the config file"),
            Self::Inline { in_file: false } => f.write_str("the config text"),
            Self::Env { var } => write!(f, "${var}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::SecretsFile(path) => write!(f, "secrets file {}", path.display()),
            Self::Credentials(path) => write!(f, "credential {}", path.display()),
        }
    }
}

/// A secret string and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedSecret {
    /// The value; `Debug` prints `[redacted]`.
    pub value: SecretString,
    /// Its source.
    pub origin: SecretOrigin,
}

/// The operator's master key and where it came from.
#[derive(Debug, Clone)]
pub struct MasterKeySource {
    /// The key; `Debug` prints `[redacted]`.
    pub key: MasterKey,
    /// Its source.
    pub origin: SecretOrigin,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the main listener.
    pub listen: SocketAddr,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Most concurrent connections.
    pub max_connections: NonZeroU32,
    /// Time allowed to receive the request head (slowloris defence).
    pub header_read_timeout: Duration,
    /// Time allowed for a whole request.
    pub request_timeout: Duration,
    /// Idle time before a keep-alive connection is closed.
    pub keep_alive_timeout: Duration,
    /// Largest request head in bytes.
    pub max_header_bytes: u64,
    /// Most request headers.
    pub max_headers: NonZeroUsize,
    /// Default largest request body in bytes.
    pub body_limit: u64,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Direct TLS, when configured.
    pub tls: Option<TlsConfig>,
    /// A single-value client-IP header believed from trusted proxies instead of
    /// walking `X-Forwarded-For`; only set together with `trusted_proxies`.
    pub client_ip_header: Option<ClientIpHeader>,
}

/// A single-value header in which a trusted proxy names the client IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `CF-Connecting-IP`, set by Cloudflare.
    CfConnectingIp,
    /// `X-Real-IP`, set by nginx (`proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
}

impl ClientIpHeader {
    /// The header name, lower-case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CfConnectingIp => "cf-connecting-ip",
            Self::XRealIp => "x-real-ip",
        }
    }
}

/// `[server.tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key (mode-checked).
    pub key_path: PathBuf,
    /// Lowest TLS version accepted.
    pub min_version: TlsVersion,
}

/// Lowest accepted TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    V1_3,
}

/// `[logging]`.
#[derive(Debug, Clone)]
pub struct LoggingConfig {
    /// A validated `tracing` filter.
    pub level: LogFilter,
    /// Output format.
    pub format: LogFormat,
}

/// A `tracing` filter that was checked: a level, or comma-separated `target=level`
/// directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(pub(crate) String);

impl LogFilter {
    /// The filter text, for `EnvFilter::try_new`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[secrets]`.
#[derive(Debug, Clone, Default)]
pub struct SecretsConfig {
    /// The JSON secrets file that was read, if any.
    pub file: Option<PathBuf>,
}

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Which database.
    pub backend: StorageBackend,
    /// The database URL; `None` means the SQLite default (see
    /// [`Config::database_url`]). Always `Some` for PostgreSQL.
    pub url: Option<ResolvedSecret>,
    /// Largest pool size.
    pub max_connections: NonZeroU32,
    /// Connections kept open.
    pub min_connections: u32,
    /// Time to wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// SQLite busy timeout.
    pub busy_timeout: Duration,
}

/// Database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// Embedded single-node SQLite.
    #[default]
    Sqlite,
    /// PostgreSQL, for replicas.
    Postgres,
}

/// `[redis]`, present when `redis.url` is set.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The Redis URL.
    pub url: ResolvedSecret,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time to wait for a reply before falling back to local state.
    pub response_timeout: Duration,
    /// Namespace of Rampart's Redis keys and channels (`a-z0-9_.:-`, 1 to 64).
    pub key_prefix: String,
}

/// `[metrics]`.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Whether `/metrics` is served.
    pub enabled: bool,
    /// A separate listener for `/metrics`; `None` serves it on the main listener.
    pub listen: Option<SocketAddr>,
    /// Bearer token required on `/metrics`.
    pub token: Option<ResolvedSecret>,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Write audit records to the database.
    pub database: bool,
    /// Also write them as JSON lines to this file.
    pub path: Option<PathBuf>,
    /// Sign a checkpoint after this many records.
    pub checkpoint_every: NonZeroU32,
    /// ...or after this much time.
    pub checkpoint_interval: Duration,
    /// Records buffered before writers wait.
    pub queue_capacity: NonZeroUsize,
}

/// `[session]`.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Set `Secure` on the session cookie.
    pub cookie_secure: bool,
    /// The cookie's `SameSite`.
    pub same_site: SameSite,
    /// The cookie's `Domain`, lower-case.
    pub domain: Option<String>,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login regardless of use.
    pub absolute_timeout: Duration,
    /// `session.cookie_name` as configured; its prefix fits the flags above. Use
    /// [`SessionConfig::cookie_name`] for the name to set.
    pub cookie_name_override: Option<String>,
}

impl SessionConfig {
    /// The session cookie's name: `session.cookie_name` when configured, else
    /// `rampart_session` with the strongest prefix the flags allow — `__Host-` for a
    /// Secure host-only cookie, `__Secure-` for a Secure cookie with a `Domain`, none
    /// for a plain-HTTP cookie. Browsers refuse a prefixed cookie whose attributes
    /// do not match, and honour the prefix as a promise that no subdomain or plain
    /// HTTP page set it.
    pub fn cookie_name(&self) -> Cow<'_, str> {
        match &self.cookie_name_override {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!(
                "{}{SESSION_COOKIE_BASE_NAME}",
                self.cookie_prefix()
            )),
        }
    }

    /// The cookie-name prefix these flags call for: `__Host-`, `__Secure-` or `""`.
    pub fn cookie_prefix(&self) -> &'static str {
        cookie_prefix_for(self.cookie_secure, self.domain.is_some())
    }
}

/// Cookie `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SameSite {
    /// Sent on top-level navigations from other sites.
    #[default]
    Lax,
    /// Never sent cross-site.
    Strict,
    /// Always sent; requires `Secure`.
    None,
}

/// `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Who may create an account.
    pub registration: Registration,
    /// Accept access tokens in the query string (leaks them to logs and referrers).
    pub danger_accept_query_tokens: bool,
    /// Shortest new password, in characters; 8 to 128.
    pub password_min_length: usize,
    /// Validity of the one-time first-admin setup token.
    pub setup_token_ttl: Duration,
    /// Validity of an invitation.
    pub invite_ttl: Duration,
    /// Most Argon2 computations at once (`0` in the file is resolved to the number
    /// of CPUs at load).
    pub max_concurrent_hashes: NonZeroUsize,
    /// Lockout after failed logins.
    pub lockout: LockoutConfig,
    /// Password hashing.
    pub password: PasswordConfig,
}

/// `[auth.lockout]`: failures are counted per account and, separately, per client IP.
#[derive(Debug, Clone)]
pub struct LockoutConfig {
    /// Failures within `window` that trigger a lockout.
    pub max_failures: NonZeroU32,
    /// The span in which failures are counted.
    pub window: Duration,
    /// How long a lockout lasts.
    pub duration: Duration,
}

/// `[auth.password]`: Argon2id cost and pepper. The cost meets one of the OWASP
/// minimums and stays within [`Argon2Limits::default`](rampart_crypto::password::Argon2Limits).
#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// Memory cost `m`, KiB.
    pub memory_kib: NonZeroU32,
    /// Passes `t`.
    pub iterations: NonZeroU32,
    /// Lanes `p`.
    pub parallelism: NonZeroU32,
    /// The pepper (at least 32 characters), when configured.
    pub pepper: Option<ResolvedSecret>,
}

impl PasswordConfig {
    /// The cost parameters for the password hasher.
    pub fn argon2_params(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.memory_kib.get(),
            iterations: self.iterations.get(),
            parallelism: self.parallelism.get(),
        }
    }
}

/// Registration policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Only holders of an invite.
    #[default]
    InviteOnly,
    /// Only admins create accounts.
    Closed,
}

/// `[jwt]`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Ed25519 PKCS#8 PEM signing key file (mode-checked), when keys are file-based.
    pub signing_key_path: Option<PathBuf>,
    /// Generate a fresh in-memory key at each start (dev only).
    pub danger_ephemeral_keys: bool,
    /// Refresh token lifetime; at least `access_ttl`.
    pub refresh_ttl: Duration,
    /// Window in which a reused refresh token yields the same successor instead of
    /// counting as theft; zero disables it.
    pub refresh_reuse_leeway: Duration,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// How long a rotated-out signing key keeps verifying; at least `access_ttl`
    /// and `assertion_ttl` (defaults to `access_ttl`).
    pub rotation_grace: Duration,
    /// Lifetime of the identity assertion sent to upstreams.
    pub assertion_ttl: Duration,
}

/// `[api_tokens]`.
#[derive(Debug, Clone)]
pub struct ApiTokensConfig {
    /// Whether API tokens may carry the admin role's permissions.
    pub allow_admin: bool,
    /// Lifetime of a new token when none is asked for.
    pub default_ttl: Duration,
    /// Longest lifetime of a new token; at least `default_ttl`.
    pub max_ttl: Duration,
}

/// `[totp]`.
#[derive(Debug, Clone)]
pub struct TotpConfig {
    /// Issuer shown in authenticator apps; non-empty, without `:`.
    pub issuer: String,
    /// Steps accepted either side of the current one; at most
    /// [`rampart_crypto::totp::MAX_SKEW_STEPS`].
    pub skew: u8,
}

/// `[magic_link]`.
#[derive(Debug, Clone)]
pub struct MagicLinkConfig {
    /// Whether login by emailed link is offered.
    pub enabled: bool,
    /// Link validity; at most one hour.
    pub ttl: Duration,
}

/// `[csrf]`.
#[derive(Debug, Clone, Default)]
pub struct CsrfConfig {
    /// Extra exact origins `scheme://host[:port]`, lower-case, never `*` or `null`.
    /// See [`Config::csrf_origins`] for the full list.
    pub allowed_origins: Vec<String>,
}

/// `[roles.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    /// Permissions: `*` (all), or `:`-joined lower-case words (`admin`,
    /// `users:read`).
    pub permissions: Vec<String>,
    /// Whether holders must pass a second factor at login.
    pub require_mfa: bool,
}

impl RoleConfig {
    /// Whether the role carries administrator power: `*` or `admin`.
    pub fn is_admin_equivalent(&self) -> bool {
        self.permissions.iter().any(|p| p == "*" || p == "admin")
    }
}

/// `[email]`.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// How mail leaves.
    pub transport: EmailTransport,
    /// `From` address.
    pub from: Option<String>,
    /// Where the outbox transport writes mail.
    pub outbox_path: PathBuf,
    /// The SMTP relay; `None` when `email.smtp.host` is not set (mail disabled unless
    /// the outbox is used).
    pub smtp: Option<SmtpConfig>,
}

/// Mail transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailTransport {
    /// Send through `[email.smtp]`.
    #[default]
    Smtp,
    /// Write to a file (dev only).
    Outbox,
}

/// `[email.smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: NonZeroU16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login user.
    pub username: Option<String>,
    /// Login password.
    pub password: Option<ResolvedSecret>,
    /// Time allowed per SMTP exchange.
    pub timeout: Duration,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (local relays only).
    None,
}

/// `[dev]`.
#[derive(Debug, Clone, Default)]
pub struct DevConfig {
    /// Authenticate every request as this user.
    pub simulate_user: Option<String>,
}

/// `[upstreams.<name>]`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Base URL (http or https).
    pub url: Url,
    /// `plain` or `tls`.
    pub mode: UpstreamMode,
    /// CA bundle the upstream's certificate must chain to (`tls` mode).
    pub ca_cert: Option<PathBuf>,
    /// Client certificate for mTLS.
    pub client_cert: Option<ClientIdentity>,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time to wait for response bytes.
    pub read_timeout: Duration,
    /// Idle pooled connections are closed after this.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle: usize,
    /// Speak HTTP/2 to the upstream.
    pub http2: bool,
    /// Skip certificate verification.
    pub danger_accept_invalid_certs: bool,
    /// Send the client's `Host` instead of the URL's authority.
    pub preserve_host: bool,
}

/// How Rampart connects to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamMode {
    /// As the URL says: `http://`, or `https://` verified against the system roots.
    #[default]
    Plain,
    /// `https://` verified against `ca_cert` only, optionally with a client certificate.
    Tls,
}

/// A client certificate and its key, which only make sense together.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key (mode-checked).
    pub key_path: PathBuf,
}

/// `[[routes]]`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Unique name.
    pub name: String,
    /// Exact host to match, lower-case.
    pub host: Option<String>,
    /// Path prefix to match; starts with `/`.
    pub path_prefix: String,
    /// Name of the upstream; always one of [`Config::upstreams`].
    pub upstream: String,
    /// Authentication requirement.
    pub auth: RouteAuth,
    /// Remove `path_prefix` before forwarding.
    pub strip_prefix: bool,
    /// Body limit overriding `server.body_limit`.
    pub body_limit: Option<u64>,
    /// CORS policy; `None` answers no CORS.
    pub cors: Option<CorsConfig>,
    /// Who may use the route beyond `auth`: roles, permissions, MFA, attributes,
    /// tenant. Always empty on a [`RouteAuth::Public`] route.
    pub policy: RoutePolicy,
    /// The rate class limiting the route; always one of
    /// [`RateLimitConfig::classes`] (`general` unless configured).
    pub rate_class: String,
    /// Requests per minute allowed to each principal on this route. Never set on a
    /// public route.
    pub quota_per_minute: Option<NonZeroU32>,
    /// Requests of one principal in flight at once on this route. Never set on a
    /// public route.
    pub concurrency_limit: Option<NonZeroU32>,
    /// Time to the upstream's response head; `None` uses the upstream's
    /// `read_timeout`. At most `server.request_timeout`.
    pub timeout: Option<Duration>,
    /// Headers added to upstream requests from the vault: lower-case header name →
    /// vault secret name (`a-z0-9_.-`, 1 to 64 characters, without `vault:`).
    pub inject_headers: BTreeMap<String, String>,
    /// Response header overrides.
    pub headers: HeaderOverrides,
    /// Send `X-Rampart-*` and the signed assertion upstream for authenticated
    /// requests.
    pub identity_headers: bool,
}

/// A route's access policy (F-RBAC, F-TENANT), checked after authentication.
/// Every requirement must hold; an empty policy admits every caller `auth` admits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    /// The principal needs at least one of these roles (any-of); empty: no role
    /// needed. Each is one of [`Config::roles`].
    pub roles: Vec<String>,
    /// The principal needs every one of these permissions (all-of).
    pub permissions: Vec<String>,
    /// The session must have passed a second factor.
    pub require_mfa: bool,
    /// Attributes the principal must have, each with exactly this value.
    pub attributes: BTreeMap<String, String>,
    /// Where the tenant comes from, when the route is tenant-scoped.
    pub tenant: Option<TenantRule>,
}

impl RoutePolicy {
    /// Whether the policy requires nothing beyond the route's `auth`.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
            && self.permissions.is_empty()
            && !self.require_mfa
            && self.attributes.is_empty()
            && self.tenant.is_none()
    }
}

/// `[routes.tenant]`: where a request's tenant comes from. The principal must
/// belong to it either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRule {
    /// Which of `header` and `claim` is used.
    pub source: TenantSource,
    /// The request header naming the tenant, lower-case.
    pub header: String,
    /// The token claim holding the tenant.
    pub claim: String,
    /// Refuse requests that name no tenant (`require_tenant_header`).
    pub require: bool,
}

/// Where the tenant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantSource {
    /// A request header the client sets (`X-Tenant-ID`).
    #[default]
    Header,
    /// A claim of the principal's token.
    Claim,
}

/// `[routes.headers]`: response header overrides for one route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOverrides {
    /// Headers set on responses, replacing any other value: lower-case name →
    /// value (visible ASCII).
    pub set: BTreeMap<String, String>,
    /// Headers removed from responses, lower-case. Never also in `set`.
    pub remove: Vec<String>,
}

/// A route's authentication requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteAuth {
    /// No authentication.
    Public,
    /// Identity passed on when present.
    Optional,
    /// Unauthenticated requests are refused.
    #[default]
    Required,
}

/// `[routes.cors]`.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Allowed origins.
    pub allow_origins: Vec<CorsOrigin>,
    /// Send `Access-Control-Allow-Credentials: true`. Never together with
    /// [`CorsOrigin::Any`].
    pub allow_credentials: bool,
    /// Allowed methods, upper-case.
    pub allow_methods: Vec<String>,
    /// Allowed request headers, lower-case.
    pub allow_headers: Vec<String>,
    /// Response headers exposed to scripts, lower-case.
    pub expose_headers: Vec<String>,
    /// Preflight cache lifetime.
    pub max_age: Duration,
}

/// One allowed CORS origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigin {
    /// `*`: any origin, only without credentials.
    Any,
    /// An exact origin `scheme://host[:port]`, lower-case.
    Exact(String),
}

/// `[headers]`: security headers added to responses (F-HEADERS). Routes override
/// them with [`RouteConfig::headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersConfig {
    /// `Strict-Transport-Security`, when enabled. Only ever sent on HTTPS (direct
    /// TLS, or `X-Forwarded-Proto: https` from a trusted proxy): on plain HTTP a
    /// network attacker could strip or forge it anyway (RFC 6797 §7.2).
    pub hsts: Option<Hsts>,
    /// Default `Content-Security-Policy` for proxied responses that carry none.
    /// Rampart's own API always sends `default-src 'none'`.
    pub content_security_policy: Option<String>,
    /// `Referrer-Policy`.
    pub referrer_policy: ReferrerPolicy,
    /// `Permissions-Policy`, non-empty, visible ASCII.
    pub permissions_policy: String,
    /// `X-Frame-Options`.
    pub frame_options: FrameOptions,
    /// `Cross-Origin-Opener-Policy`.
    pub cross_origin_opener_policy: CrossOriginOpenerPolicy,
    /// `Cross-Origin-Resource-Policy`.
    pub cross_origin_resource_policy: CrossOriginResourcePolicy,
}

/// HTTP Strict Transport Security (RFC 6797). With `preload`, `include_subdomains`
/// is set and `max_age` is at least a year (the hstspreload.org requirements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age`; whole seconds are sent.
    pub max_age: Duration,
    /// Add `includeSubDomains`.
    pub include_subdomains: bool,
    /// Add `preload`.
    pub preload: bool,
}

impl Hsts {
    /// The header value: `max-age=31536000; includeSubDomains`.
    pub fn header_value(&self) -> String {
        let mut value = format!("max-age={}", self.max_age.as_secs());
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        value
    }
}

/// `Referrer-Policy` values (W3C Referrer Policy §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrerPolicy {
    /// Never send a referrer.
    NoReferrer,
    /// The full URL, except from HTTPS to HTTP.
    NoReferrerWhenDowngrade,
    /// The origin only.
    Origin,
    /// The full URL same-origin, the origin cross-origin.
    OriginWhenCrossOrigin,
    /// The full URL same-origin, nothing cross-origin.
    SameOrigin,
    /// The origin only, and nothing from HTTPS to HTTP.
    StrictOrigin,
    /// The full URL same-origin, the origin cross-origin, nothing from HTTPS to HTTP.
    #[default]
    StrictOriginWhenCrossOrigin,
    /// The full URL everywhere, tokens in query strings included.
    UnsafeUrl,
}

impl ReferrerPolicy {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoReferrer => "no-referrer",
            Self::NoReferrerWhenDowngrade => "no-referrer-when-downgrade",
            Self::Origin => "origin",
            Self::OriginWhenCrossOrigin => "origin-when-cross-origin",
            Self::SameOrigin => "same-origin",
            Self::StrictOrigin => "strict-origin",
            Self::StrictOriginWhenCrossOrigin => "strict-origin-when-cross-origin",
            Self::UnsafeUrl => "unsafe-url",
        }
    }
}

/// `X-Frame-Options` values (RFC 7034).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum FrameOptions {
    /// No site may frame the response.
    #[default]
    #[serde(rename = "DENY")]
    Deny,
    /// Only the same origin may frame the response.
    #[serde(rename = "SAMEORIGIN")]
    SameOrigin,
}

impl FrameOptions {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "DENY",
            Self::SameOrigin => "SAMEORIGIN",
        }
    }
}

/// `Cross-Origin-Opener-Policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CrossOriginOpenerPolicy {
    /// Cross-origin documents get their own browsing context group.
    #[default]
    SameOrigin,
    /// As `same-origin`, but popups this page opens keep a reference to it.
    SameOriginAllowPopups,
    /// No isolation.
    UnsafeNone,
}

impl CrossOriginOpenerPolicy {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameOrigin => "same-origin",
            Self::SameOriginAllowPopups => "same-origin-allow-popups",
            Self::UnsafeNone => "unsafe-none",
        }
    }
}

/// `Cross-Origin-Resource-Policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CrossOriginResourcePolicy {
    /// Only the same origin may load the response.
    #[default]
    SameOrigin,
    /// Only the same site may load the response.
    SameSite,
    /// Any origin may load the response.
    CrossOrigin,
}

impl CrossOriginResourcePolicy {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameOrigin => "same-origin",
            Self::SameSite => "same-site",
            Self::CrossOrigin => "cross-origin",
        }
    }
}

/// `[identity]` (F-IDHEADERS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Extra client request headers stripped on every route as identity claims,
    /// lower-case, without repeats. The built-in ones (`x-rampart-*`,
    /// `x-forwarded-*`, `forwarded`, `x-real-ip`, `cf-connecting-ip`,
    /// `true-client-ip`) are not listed here; they are always stripped.
    pub strip_headers: Vec<String>,
}

/// `[forward_auth]` (F-FWDAUTH).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardAuthConfig {
    /// Whether the forward-auth endpoint is served.
    pub enabled: bool,
    /// Extra exact origins `http(s)://host[:port]`, lower-case, a sign-in may
    /// redirect back to, besides the origin of `public_url` and the hosts of the
    /// routes.
    pub redirect_allowlist: Vec<String>,
    /// The configured sign-in page; see [`Config::signin_url`] for the default.
    pub signin_url: Option<Url>,
}

/// The rate class used by routes that name none, and by Rampart's own API.
pub const GENERAL_RATE_CLASS: &str = "general";

/// The rate class of Rampart's sign-in, TOTP, recovery-code and magic-link
/// endpoints.
pub const AUTH_RATE_CLASS: &str = "auth";

/// `[rate_limit]` (F-RATELIMIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Whether limits are enforced.
    pub enabled: bool,
    /// Where counters live.
    pub backend: RateLimitBackend,
    /// What limits requests while Redis is failing.
    pub fallback: RateLimitFallback,
    /// Rate classes by name; always contains [`GENERAL_RATE_CLASS`] and
    /// [`AUTH_RATE_CLASS`].
    pub classes: BTreeMap<String, RateClass>,
}

/// One rate class: a GCRA limit of `rate` requests per `per`, with bursts of up to
/// `burst` requests, counted per `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateClass {
    /// Sustained requests per `per`.
    pub rate: NonZeroU32,
    /// The period of `rate`; longer than zero.
    pub per: Duration,
    /// Most requests allowed at once.
    pub burst: NonZeroU32,
    /// What is counted.
    pub key: RateKey,
}

/// What a rate class counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateKey {
    /// The client IP (after `server.trusted_proxies`).
    #[default]
    Ip,
    /// The authenticated principal; anonymous requests are counted by IP.
    Principal,
    /// The API token; requests without one are counted by IP.
    Token,
}

/// Where rate-limit counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// In this instance's memory.
    #[default]
    Memory,
    /// In Redis, shared by replicas (needs `redis.url`).
    Redis,
}

/// What limits requests while the Redis backend is failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitFallback {
    /// An in-memory limiter takes over at once; Redis is retried.
    #[default]
    Local,
}

/// The session cookie's name before its prefix.
pub(crate) const SESSION_COOKIE_BASE_NAME: &str = "rampart_session";

/// Cookie-name prefix for a Secure, host-only cookie with `Path=/` (RFC 6265bis §4.1.3.2).
pub(crate) const HOST_PREFIX: &str = "__Host-";

/// Cookie-name prefix for a Secure cookie (RFC 6265bis §4.1.3.1).
pub(crate) const SECURE_PREFIX: &str = "__Secure-";

/// The strongest cookie-name prefix a cookie with these flags can carry.
pub(crate) fn cookie_prefix_for(secure: bool, domain: bool) -> &'static str {
    match (secure, domain) {
        (true, false) => HOST_PREFIX,
        (true, true) => SECURE_PREFIX,
        (false, _) => "",
    }
}
