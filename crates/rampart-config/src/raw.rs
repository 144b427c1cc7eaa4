//! The configuration as written: TOML shapes, defaults, documentation.
//!
//! These structs are the single source of the schema. `schemars` turns them (and their
//! `///` comments) into the JSON schema that the schema check, the environment
//! overrides and `docs/CONFIG.md` are derived from. Values that need parsing
//! (durations, sizes, addresses, URLs) stay strings here and are parsed in
//! `validate`, where every failure can be reported with its key. Secrets are
//! [`SecretString`] from the moment serde sees them.
//!
//! `x-kind` annotates what a string means, for the reference docs; `x-default`
//! describes a default that depends on other settings.

use std::collections::BTreeMap;
use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use rampart_crypto::SecretString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{
    AUTH_RATE_CLASS, ClientIpHeader, CrossOriginOpenerPolicy, CrossOriginResourcePolicy,
    EmailTransport, FrameOptions, GENERAL_RATE_CLASS, LogFormat, Mode, RateKey, RateLimitBackend,
    RateLimitFallback, ReferrerPolicy, Registration, RouteAuth, SameSite, SmtpTls, StorageBackend,
    TenantSource, TlsVersion, UpstreamMode,
};

/// Rampart's configuration file.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    /// `dev` enables dev-only conveniences (reported as warnings); `production` refuses them at start.
    pub mode: Mode,
    /// Directory for Rampart's state: the SQLite database, the mail outbox, key files written by `rampart init`.
    #[schemars(extend("x-kind" = "path", "x-default" = "production: `/var/lib/rampart`; dev: `./rampart-data`"))]
    pub data_dir: Option<PathBuf>,
    /// External origin of Rampart (`https://auth.example.com`), used for links, redirects and cookie/origin checks. http or https, no path, no query.
    #[schemars(extend("x-kind" = "URL"))]
    pub public_url: Option<String>,
    /// The 32-byte master key as 64 hex characters. Never write it in the config file; use the env var, a secrets source or `master_key_path`.
    #[schemars(with = "Option<String>", extend("x-kind" = "secret"))]
    pub master_key_hex: Option<SecretString>,
    /// File holding the master key as 64 hex characters (mode 0600, owned by Rampart's user or root).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub master_key_path: Option<PathBuf>,
    /// The main listener.
    pub server: RawServer,
    /// Logging.
    pub logging: RawLogging,
    /// The JSON secrets file.
    pub secrets: RawSecrets,
    /// The database.
    pub storage: RawStorage,
    /// Redis (optional).
    pub redis: RawRedis,
    /// The Prometheus endpoint.
    pub metrics: RawMetrics,
    /// The audit log.
    pub audit: RawAudit,
    /// Browser sessions.
    pub session: RawSession,
    /// Authentication policy.
    pub auth: RawAuth,
    /// Rampart's own access tokens.
    pub jwt: RawJwt,
    /// Long-lived API tokens.
    pub api_tokens: RawApiTokens,
    /// Time-based one-time passwords (second factor).
    pub totp: RawTotp,
    /// Login by emailed link.
    pub magic_link: RawMagicLink,
    /// Cross-site request forgery defence for cookie-authenticated requests.
    pub csrf: RawCsrf,
    /// Roles by name (`[a-z0-9_-]+`). Without a `[roles]` table: `admin` (every permission, MFA required) and `user` (no permissions).
    #[serde(default = "default_roles")]
    pub roles: BTreeMap<String, RawRole>,
    /// Outgoing mail.
    pub email: RawEmail,
    /// Development-only conveniences.
    pub dev: RawDev,
    /// Upstream services by name (`[a-z0-9_-]+`).
    pub upstreams: BTreeMap<String, RawUpstream>,
    /// Routes, matched in order.
    pub routes: Vec<RawRoute>,
    /// Security headers added to responses.
    pub headers: RawHeaders,
    /// Client request headers treated as identity claims.
    pub identity: RawIdentity,
    /// The forward-auth endpoint that reverse proxies (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`) ask whether a request may pass.
    pub forward_auth: RawForwardAuth,
    /// Request rate limits.
    pub rate_limit: RawRateLimit,
}

/// `[server]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawServer {
    /// Address of the main listener, `IP:PORT`. Anything but loopback needs `server.tls` or `server.trusted_proxies` in production.
    #[schemars(extend("x-kind" = "socket address"))]
    pub listen: String,
    /// Proxies (CIDRs or bare IPs) whose `X-Forwarded-*`, `Forwarded` and `CF-Connecting-IP` headers are believed.
    #[schemars(extend("x-kind" = "list of CIDRs"))]
    pub trusted_proxies: Vec<String>,
    /// Most concurrent client connections.
    pub max_connections: NonZeroU32,
    /// Time allowed to receive a request's headers (slowloris defence).
    #[schemars(extend("x-kind" = "duration"))]
    pub header_read_timeout: String,
    /// Time allowed for a whole request, upstream included.
    #[schemars(extend("x-kind" = "duration"))]
    pub request_timeout: String,
    /// Idle time before a keep-alive connection is closed.
    #[schemars(extend("x-kind" = "duration"))]
    pub keep_alive_timeout: String,
    /// Largest request head (request line and headers); at least 1KiB.
    #[schemars(extend("x-kind" = "size"))]
    pub max_header_bytes: String,
    /// Most request headers.
    pub max_headers: NonZeroUsize,
    /// Default largest request body; routes may override it.
    #[schemars(extend("x-kind" = "size"))]
    pub body_limit: String,
    /// Time in-flight requests get to finish on shutdown.
    #[schemars(extend("x-kind" = "duration"))]
    pub shutdown_grace: String,
    /// Direct TLS termination (optional).
    pub tls: Option<RawTls>,
    /// A single-value header in which the trusted proxy names the client IP, `cf-connecting-ip` or `x-real-ip`, believed instead of walking `X-Forwarded-For`. Only believed from `trusted_proxies`, which must be set.
    pub client_ip_header: Option<ClientIpHeader>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9171".to_owned(),
            trusted_proxies: Vec::new(),
            max_connections: NonZeroU32::new(10_000).unwrap_or(NonZeroU32::MIN),
            header_read_timeout: "10s".to_owned(),
            request_timeout: "60s".to_owned(),
            keep_alive_timeout: "75s".to_owned(),
            max_header_bytes: "32KiB".to_owned(),
            max_headers: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            body_limit: "1MiB".to_owned(),
            shutdown_grace: "30s".to_owned(),
            tls: None,
            client_ip_header: None,
        }
    }
}

/// `[server.tls]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// PEM certificate chain; reloaded on SIGHUP.
    #[schemars(extend("x-kind" = "path"))]
    pub cert_path: PathBuf,
    /// PEM private key (mode 0600, owned by Rampart's user or root).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub key_path: PathBuf,
    /// Lowest TLS version accepted: `1.2` or `1.3`.
    #[serde(default)]
    pub min_version: TlsVersion,
}

/// `[logging]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLogging {
    /// A level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or comma-separated directives such as `info,rampart_http=debug`.
    #[schemars(extend("x-kind" = "log filter"))]
    pub level: String,
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Pretty,
        }
    }
}

/// `[secrets]`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSecrets {
    /// A JSON object mapping dotted secret names (`"storage.url"`) to values (mode 0600).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub file: Option<PathBuf>,
}

/// `[storage]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawStorage {
    /// `sqlite` (embedded, single node) or `postgres` (replicas).
    pub backend: StorageBackend,
    /// Database URL. Required for postgres (`postgres://user:pass@host/db?sslmode=verify-full`); for sqlite it overrides the default file.
    #[schemars(with = "Option<String>", extend("x-kind" = "secret", "x-default" = "sqlite: `sqlite://<data_dir>/rampart.db`"))]
    pub url: Option<SecretString>,
    /// File holding `storage.url` (mode 0600).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub url_file: Option<PathBuf>,
    /// Largest connection pool.
    pub max_connections: NonZeroU32,
    /// Connections kept open; at most `max_connections`.
    pub min_connections: u32,
    /// Time to wait for a pooled connection.
    #[schemars(extend("x-kind" = "duration"))]
    pub acquire_timeout: String,
    /// SQLite only: time to wait on a locked database.
    #[schemars(extend("x-kind" = "duration"))]
    pub busy_timeout: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Sqlite,
            url: None,
            url_file: None,
            max_connections: NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN),
            min_connections: 1,
            acquire_timeout: "5s".to_owned(),
            busy_timeout: "5s".to_owned(),
        }
    }
}

/// `[redis]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRedis {
    /// Redis URL (`redis://` or `rediss://`); absent means no Redis (rate limits and caches stay in memory).
    #[schemars(with = "Option<String>", extend("x-kind" = "secret"))]
    pub url: Option<SecretString>,
    /// File holding `redis.url` (mode 0600).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub url_file: Option<PathBuf>,
    /// Time to connect.
    #[schemars(extend("x-kind" = "duration"))]
    pub connect_timeout: String,
    /// Time to wait for a reply before falling back to local state.
    #[schemars(extend("x-kind" = "duration"))]
    pub response_timeout: String,
    /// Namespace of every Redis key and channel Rampart uses (`<prefix>:rl:…` rate-limit budgets, `<prefix>:invalidate` revocation fan-out): replicas of one deployment share it; deployments sharing a Redis use different ones. 1 to 64 of `a-z0-9_.:-`.
    pub key_prefix: String,
}

impl Default for RawRedis {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            connect_timeout: "2s".to_owned(),
            response_timeout: "500ms".to_owned(),
            key_prefix: "rampart".to_owned(),
        }
    }
}

/// `[metrics]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawMetrics {
    /// Serve Prometheus `/metrics`.
    pub enabled: bool,
    /// Separate listener for `/metrics` (`IP:PORT`); absent serves it on the main listener.
    #[schemars(extend("x-kind" = "socket address"))]
    pub listen: Option<String>,
    /// Bearer token required on `/metrics` (at least 32 characters).
    #[schemars(with = "Option<String>", extend("x-kind" = "secret"))]
    pub token: Option<SecretString>,
    /// File holding `metrics.token` (mode 0600).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub token_file: Option<PathBuf>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            token: None,
            token_file: None,
        }
    }
}

/// `[audit]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAudit {
    /// Write audit records to the database. Must stay `true`: the shared, hash-chained log lives in the database; `path` adds a per-process copy.
    pub database: bool,
    /// Also append them as JSON lines to this file.
    #[schemars(extend("x-kind" = "path"))]
    pub path: Option<PathBuf>,
    /// Sign a hash-chain checkpoint after this many records.
    pub checkpoint_every: NonZeroU32,
    /// ...or after this much time, whichever comes first.
    #[schemars(extend("x-kind" = "duration"))]
    pub checkpoint_interval: String,
    /// Records buffered in memory before writers wait.
    pub queue_capacity: NonZeroUsize,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            database: true,
            path: None,
            checkpoint_every: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            checkpoint_interval: "5m".to_owned(),
            queue_capacity: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// `[session]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSession {
    /// Mark the session cookie `Secure`. `false` is for plain-HTTP development only.
    pub cookie_secure: bool,
    /// Cookie `SameSite`: `lax`, `strict` or `none` (`none` requires `cookie_secure`).
    pub same_site: SameSite,
    /// Cookie `Domain`, to share the session with subdomains; absent keeps the cookie host-only (`__Host-` prefix).
    pub domain: Option<String>,
    /// A session unused this long ends.
    #[schemars(extend("x-kind" = "duration"))]
    pub idle_timeout: String,
    /// A session ends this long after login, used or not; at least `idle_timeout`.
    #[schemars(extend("x-kind" = "duration"))]
    pub absolute_timeout: String,
    /// Name of the session cookie. It must start with the prefix its flags call for, which browsers enforce: `__Host-` when Secure and host-only, `__Secure-` when Secure with a `domain`, neither when `cookie_secure = false`.
    #[schemars(extend("x-default" = "`__Host-rampart_session`; `__Secure-rampart_session` with a `domain`; `rampart_session` when `cookie_secure = false`"))]
    pub cookie_name: Option<String>,
}

impl Default for RawSession {
    fn default() -> Self {
        Self {
            cookie_secure: true,
            same_site: SameSite::Lax,
            domain: None,
            idle_timeout: "30m".to_owned(),
            absolute_timeout: "12h".to_owned(),
            cookie_name: None,
        }
    }
}

/// `[auth]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAuth {
    /// Who may create an account: `open`, `invite_only` or `closed`.
    pub registration: Registration,
    /// Accept access tokens in the query string. Tokens in URLs leak into logs and `Referer`; dev only.
    pub danger_accept_query_tokens: bool,
    /// Shortest new password, in characters: 8 to 128 (NIST SP 800-63B). No composition rules apply; common passwords are refused.
    pub password_min_length: u32,
    /// How long the one-time first-admin setup token, printed at first start, stays valid; at most 24h.
    #[schemars(extend("x-kind" = "duration"))]
    pub setup_token_ttl: String,
    /// How long an invitation stays valid.
    #[schemars(extend("x-kind" = "duration"))]
    pub invite_ttl: String,
    /// Most Argon2 computations at once (each takes `auth.password.memory_kib` of memory); further logins wait, so a login flood cannot starve the proxy. `0` means the number of CPUs.
    pub max_concurrent_hashes: u32,
    /// Lockout after repeated failed logins.
    pub lockout: RawLockout,
    /// Password hashing.
    pub password: RawPassword,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            registration: Registration::default(),
            danger_accept_query_tokens: false,
            password_min_length: 12,
            setup_token_ttl: "1h".to_owned(),
            invite_ttl: "7d".to_owned(),
            max_concurrent_hashes: 0,
            lockout: RawLockout::default(),
            password: RawPassword::default(),
        }
    }
}

/// `[auth.lockout]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLockout {
    /// Failed logins within `window` that lock an account out; counted per account and, separately, per client IP.
    pub max_failures: NonZeroU32,
    /// The span in which failures are counted.
    #[schemars(extend("x-kind" = "duration"))]
    pub window: String,
    /// How long a lockout lasts.
    #[schemars(extend("x-kind" = "duration"))]
    pub duration: String,
}

impl Default for RawLockout {
    fn default() -> Self {
        Self {
            max_failures: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            window: "15m".to_owned(),
            duration: "15m".to_owned(),
        }
    }
}

/// `[auth.password]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPassword {
    /// Argon2id memory cost in KiB (`m`). Together with `iterations` it must meet one of the OWASP minimums: m=47104/t=1, m=19456/t=2, m=12288/t=3, m=9216/t=4 or m=7168/t=5; at most 262144 (256 MiB).
    pub memory_kib: NonZeroU32,
    /// Argon2id passes (`t`); see `memory_kib` for the minimums; at most 10.
    pub iterations: NonZeroU32,
    /// Argon2id lanes (`p`); at most 8.
    pub parallelism: NonZeroU32,
    /// Pepper: a secret mixed into every new password hash and kept out of the database, so a stolen database alone cannot be cracked. At least 32 characters. Changing it invalidates existing hashes.
    #[schemars(with = "Option<String>", extend("x-kind" = "secret"))]
    pub pepper: Option<SecretString>,
    /// File holding `auth.password.pepper` (mode 0600).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub pepper_file: Option<PathBuf>,
}

impl Default for RawPassword {
    fn default() -> Self {
        let owasp = rampart_crypto::Argon2Params::OWASP;
        Self {
            memory_kib: NonZeroU32::new(owasp.memory_kib).unwrap_or(NonZeroU32::MIN),
            iterations: NonZeroU32::new(owasp.iterations).unwrap_or(NonZeroU32::MIN),
            parallelism: NonZeroU32::new(owasp.parallelism).unwrap_or(NonZeroU32::MIN),
            pepper: None,
            pepper_file: None,
        }
    }
}

/// `[jwt]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawJwt {
    /// `iss` of Rampart's tokens.
    #[schemars(extend("x-default" = "the origin of `public_url`, else `rampart`"))]
    pub issuer: Option<String>,
    /// `aud` of Rampart's tokens.
    pub audience: String,
    /// Access token lifetime.
    #[schemars(extend("x-kind" = "duration"))]
    pub access_ttl: String,
    /// Ed25519 PKCS#8 PEM signing key file (mode 0600); absent keeps the keyring in the database, sealed by the master key.
    #[schemars(extend("x-kind" = "secret file path"))]
    pub signing_key_path: Option<PathBuf>,
    /// Sign with a fresh in-memory key each start: every restart logs everybody out. Dev only.
    pub danger_ephemeral_keys: bool,
    /// Refresh token lifetime; at least `access_ttl`.
    #[schemars(extend("x-kind" = "duration"))]
    pub refresh_ttl: String,
    /// Parallel requests presenting the same refresh token within this window get the same successor instead of tripping reuse detection; at most 1m. `0s` treats every reuse as theft.
    #[schemars(extend("x-kind" = "duration"))]
    pub refresh_reuse_leeway: String,
    /// Clock skew allowed when checking `exp` and `nbf`; at most 5m.
    #[schemars(extend("x-kind" = "duration"))]
    pub leeway: String,
    /// How long tokens signed by a rotated-out key stay valid; at least `access_ttl` and `assertion_ttl`, so no token is refused before it expires.
    #[schemars(extend("x-kind" = "duration", "x-default" = "`access_ttl` (`assertion_ttl` if longer)"))]
    pub rotation_grace: Option<String>,
    /// Lifetime of the signed identity assertion sent to upstreams; at most 5m.
    #[schemars(extend("x-kind" = "duration"))]
    pub assertion_ttl: String,
}

impl Default for RawJwt {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: "rampart".to_owned(),
            access_ttl: "15m".to_owned(),
            signing_key_path: None,
            danger_ephemeral_keys: false,
            refresh_ttl: "30d".to_owned(),
            refresh_reuse_leeway: "5s".to_owned(),
            leeway: "30s".to_owned(),
            rotation_grace: None,
            assertion_ttl: "60s".to_owned(),
        }
    }
}

/// `[api_tokens]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawApiTokens {
    /// Let API tokens carry the admin role's permissions. A leaked admin token is a full takeover without a second factor; doctor warns (`api_tokens.admin`).
    pub allow_admin: bool,
    /// Lifetime of a new API token when none is asked for.
    #[schemars(extend("x-kind" = "duration"))]
    pub default_ttl: String,
    /// Longest lifetime a new API token may be given; at least `default_ttl`.
    #[schemars(extend("x-kind" = "duration"))]
    pub max_ttl: String,
}

impl Default for RawApiTokens {
    fn default() -> Self {
        Self {
            allow_admin: false,
            default_ttl: "90d".to_owned(),
            max_ttl: "365d".to_owned(),
        }
    }
}

/// `[totp]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTotp {
    /// Issuer shown in authenticator apps; no `:`.
    pub issuer: String,
    /// Time steps (30 s each) accepted either side of the current one, for clock drift: 0 to 2. Each step accepts two more codes per attempt, helping guessers (RFC 6238 §6 recommends at most 1).
    pub skew: u32,
}

impl Default for RawTotp {
    fn default() -> Self {
        Self {
            issuer: "Rampart".to_owned(),
            skew: 1,
        }
    }
}

/// `[magic_link]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawMagicLink {
    /// Offer login by a one-time link sent by email.
    pub enabled: bool,
    /// How long a link stays valid; at most 1h.
    #[schemars(extend("x-kind" = "duration"))]
    pub ttl: String,
}

impl Default for RawMagicLink {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: "15m".to_owned(),
        }
    }
}

/// `[csrf]`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCsrf {
    /// Origins `scheme://host[:port]` allowed to make cookie-authenticated unsafe requests (POST, PUT, PATCH, DELETE), in addition to the origin of `public_url`. `*` and `null` are refused.
    #[schemars(extend("x-kind" = "list of origins"))]
    pub allowed_origins: Vec<String>,
}

/// `[roles.<name>]`.
#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    /// Permissions granted: `*` (all), a word such as `admin`, or `resource:action` such as `users:read` or `integration:invoke` (lower-case `a-z0-9_-` words joined by `:`).
    #[serde(default)]
    #[schemars(extend("x-kind" = "list of permissions"))]
    pub permissions: Vec<String>,
    /// Require a second factor at login for holders of this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-default" = "`true` for the role named `admin`, else `false`"))]
    pub require_mfa: Option<bool>,
}

/// The roles used when the file has no `[roles]` table.
pub(crate) fn default_roles() -> BTreeMap<String, RawRole> {
    BTreeMap::from([
        (
            "admin".to_owned(),
            RawRole {
                permissions: vec!["*".to_owned()],
                require_mfa: Some(true),
            },
        ),
        ("user".to_owned(), RawRole::default()),
    ])
}

/// `[email]`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEmail {
    /// `smtp`, or `outbox` to write mail to a file instead (dev only).
    pub transport: EmailTransport,
    /// `From` address of Rampart's mail; required when SMTP is configured.
    pub from: Option<String>,
    /// File the outbox transport appends mail to.
    #[schemars(extend("x-kind" = "path", "x-default" = "`<data_dir>/outbox`"))]
    pub outbox_path: Option<PathBuf>,
    /// The SMTP relay.
    pub smtp: RawSmtp,
}

/// `[email.smtp]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSmtp {
    /// Relay host name; absent means SMTP is not configured (no mail is sent).
    pub host: Option<String>,
    /// Relay port.
    pub port: NonZeroU16,
    /// `starttls` (port 587), `tls` (port 465) or `none` (local relays only).
    pub tls: SmtpTls,
    /// Login user name.
    pub username: Option<String>,
    /// Login password.
    #[schemars(with = "Option<String>", extend("x-kind" = "secret"))]
    pub password: Option<SecretString>,
    /// File holding `email.smtp.password` (mode 0600).
    #[schemars(extend("x-kind" = "secret file path"))]
    pub password_file: Option<PathBuf>,
    /// Time allowed per SMTP exchange.
    #[schemars(extend("x-kind" = "duration"))]
    pub timeout: String,
}

impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            host: None,
            port: NonZeroU16::new(587).unwrap_or(NonZeroU16::MIN),
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            password_file: None,
            timeout: "10s".to_owned(),
        }
    }
}

/// `[dev]`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDev {
    /// Authenticate every request as this user, admin pages included. Dev only.
    pub simulate_user: Option<String>,
}

/// `[upstreams.<name>]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    /// Base URL, `http://` or `https://`; may carry a base path, no query or credentials.
    #[schemars(extend("x-kind" = "URL"))]
    pub url: String,
    /// `plain` (as the URL says, https verified against system roots) or `tls` (https verified against `ca_cert`, optional client certificate).
    #[serde(default)]
    pub mode: UpstreamMode,
    /// PEM CA bundle the upstream certificate must chain to; required in `tls` mode.
    #[schemars(extend("x-kind" = "path"))]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for mTLS; needs `client_key`.
    #[schemars(extend("x-kind" = "path"))]
    pub client_cert: Option<PathBuf>,
    /// PEM client private key (mode 0600); needs `client_cert`.
    #[schemars(extend("x-kind" = "secret file path"))]
    pub client_key: Option<PathBuf>,
    /// Time to connect.
    #[serde(default = "default_upstream_connect")]
    #[schemars(extend("x-kind" = "duration"))]
    pub connect_timeout: String,
    /// Time to wait for response bytes.
    #[serde(default = "default_upstream_read")]
    #[schemars(extend("x-kind" = "duration"))]
    pub read_timeout: String,
    /// Idle pooled connections are closed after this.
    #[serde(default = "default_upstream_pool_idle")]
    #[schemars(extend("x-kind" = "duration"))]
    pub pool_idle_timeout: String,
    /// Idle connections kept per upstream host.
    #[serde(default = "default_upstream_pool_max_idle")]
    pub pool_max_idle: usize,
    /// Speak HTTP/2 to the upstream.
    #[serde(default)]
    pub http2: bool,
    /// Skip verification of the upstream certificate. Anyone on the path can impersonate the upstream.
    #[serde(default)]
    pub danger_accept_invalid_certs: bool,
    /// Send the client's `Host` header instead of the authority of `url`, for applications that build links or pick a site from `Host`.
    #[serde(default)]
    pub preserve_host: bool,
}

fn default_upstream_connect() -> String {
    "5s".to_owned()
}

fn default_upstream_read() -> String {
    "60s".to_owned()
}

fn default_upstream_pool_idle() -> String {
    "90s".to_owned()
}

fn default_upstream_pool_max_idle() -> usize {
    64
}

/// `[[routes]]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// Unique name, used in logs, metrics and audit records.
    pub name: String,
    /// Exact host to match (no port, case-insensitive); absent matches any host.
    pub host: Option<String>,
    /// Path prefix to match, starting with `/`; matched after path normalization.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// Name of the upstream in `[upstreams]` that receives the requests.
    pub upstream: String,
    /// `public`, `optional` (identity passed when present) or `required`.
    #[serde(default)]
    pub auth: RouteAuth,
    /// Remove `path_prefix` from the path before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Largest request body on this route, overriding `server.body_limit`.
    #[schemars(extend("x-kind" = "size"))]
    pub body_limit: Option<String>,
    /// Cross-origin policy; absent sends no CORS headers.
    pub cors: Option<RawCors>,
    /// Roles of which the principal needs at least one (any-of); each must be defined in `[roles]`. Empty: no role needed. Not on a `public` route.
    #[serde(default)]
    #[schemars(extend("x-kind" = "list of role names"))]
    pub roles: Vec<String>,
    /// Permissions the principal needs, every one of them (all-of), written as in `[roles]`. Not on a `public` route.
    #[serde(default)]
    #[schemars(extend("x-kind" = "list of permissions"))]
    pub permissions: Vec<String>,
    /// Require that the session passed a second factor. Not on a `public` route.
    #[serde(default)]
    pub require_mfa: bool,
    /// Attributes the principal must have, each with exactly this value, e.g. `{ subscription = "active" }`. Not on a `public` route.
    #[serde(default)]
    #[schemars(extend("x-kind" = "table of name → string"))]
    pub attributes: BTreeMap<String, String>,
    /// Tenant scoping (optional). Not on a `public` route.
    pub tenant: Option<RawTenant>,
    /// Name of the class in `[rate_limit.classes]` that limits requests on this route.
    #[schemars(extend("x-default" = "`\"general\"`"))]
    pub rate_class: Option<String>,
    /// Requests per minute allowed to each principal on this route, besides the rate class. Not on a `public` route.
    pub quota_per_minute: Option<NonZeroU32>,
    /// Requests of one principal in flight at once on this route. Not on a `public` route.
    pub concurrency_limit: Option<NonZeroU32>,
    /// Time allowed until the upstream's response head arrives on this route; at most `server.request_timeout`.
    #[schemars(extend("x-kind" = "duration", "x-default" = "the upstream's `read_timeout`"))]
    pub timeout: Option<String>,
    /// Headers added to upstream requests from the vault: header name → `"vault:<secret-name>"`, e.g. `{ "X-Api-Key" = "vault:third_party" }`, so the credential never reaches a browser or the config file. Hop-by-hop, `host`, `content-length`, forwarding and `X-Rampart-*` headers are refused.
    #[serde(default)]
    #[schemars(extend("x-kind" = "table of header name → `\"vault:<secret-name>\"`"))]
    pub inject_headers: BTreeMap<String, String>,
    /// Response header overrides.
    #[serde(default)]
    pub headers: RawRouteHeaders,
    /// Send the `X-Rampart-*` identity headers and the signed assertion to the upstream for authenticated requests.
    #[serde(default = "default_true")]
    pub identity_headers: bool,
}

fn default_path_prefix() -> String {
    "/".to_owned()
}

fn default_true() -> bool {
    true
}

/// `[routes.tenant]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTenant {
    /// Where the tenant comes from: `header` (the request header `header`) or `claim` (the token claim `claim`). Either way the principal must belong to the tenant.
    pub source: TenantSource,
    /// Request header naming the tenant, with `source = "header"`.
    pub header: String,
    /// Token claim holding the tenant, with `source = "claim"`.
    pub claim: String,
    /// Refuse requests that name no tenant (`require_tenant_header`).
    pub require: bool,
}

impl Default for RawTenant {
    fn default() -> Self {
        Self {
            source: TenantSource::Header,
            header: "X-Tenant-ID".to_owned(),
            claim: "tenant".to_owned(),
            require: false,
        }
    }
}

/// `[routes.headers]`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRouteHeaders {
    /// Response headers set on this route's responses, replacing the upstream's value and Rampart's default: name → value, e.g. `{ "Content-Security-Policy" = "default-src 'self'" }`.
    #[schemars(extend("x-kind" = "table of header name → value"))]
    pub set: BTreeMap<String, String>,
    /// Response headers removed from this route's responses, e.g. `["x-powered-by"]`.
    #[schemars(extend("x-kind" = "list of header names"))]
    pub remove: Vec<String>,
}

/// `[routes.cors]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCors {
    /// Exact origins `scheme://host[:port]` (e.g. `https://app.example.com`, `tauri://localhost`), or `*` without credentials. `null` is never accepted.
    pub allow_origins: Vec<String>,
    /// Allow cookies and `Authorization` on cross-origin requests; needs explicit origins.
    pub allow_credentials: bool,
    /// Methods allowed cross-origin.
    pub allow_methods: Vec<String>,
    /// Request headers allowed cross-origin.
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read.
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight answer.
    #[schemars(extend("x-kind" = "duration"))]
    pub max_age: String,
}

impl Default for RawCors {
    fn default() -> Self {
        Self {
            allow_origins: Vec::new(),
            allow_credentials: false,
            allow_methods: ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(str::to_owned)
                .to_vec(),
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            max_age: "10m".to_owned(),
        }
    }
}

/// `[headers]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawHeaders {
    /// Send `Strict-Transport-Security`. Only ever sent on HTTPS: direct TLS, or `X-Forwarded-Proto: https` from a trusted proxy.
    pub hsts: bool,
    /// HSTS `max-age`, in whole seconds; `0s` tells browsers to forget the policy. At least `365d` with `hsts_preload`.
    #[schemars(extend("x-kind" = "duration"))]
    pub hsts_max_age: String,
    /// Add `includeSubDomains`: browsers then insist on HTTPS for every subdomain too.
    pub hsts_include_subdomains: bool,
    /// Add `preload`, consenting to browsers' built-in HSTS lists (hstspreload.org), which is slow to undo. Needs `hsts_include_subdomains` and an `hsts_max_age` of at least `365d`.
    pub hsts_preload: bool,
    /// Default `Content-Security-Policy` for proxied responses that carry none; absent adds none. Rampart's own API always sends `default-src 'none'`.
    pub content_security_policy: Option<String>,
    /// `Referrer-Policy`.
    pub referrer_policy: ReferrerPolicy,
    /// `Permissions-Policy`.
    pub permissions_policy: String,
    /// `X-Frame-Options`: `DENY` or `SAMEORIGIN`.
    pub frame_options: FrameOptions,
    /// `Cross-Origin-Opener-Policy`.
    pub cross_origin_opener_policy: CrossOriginOpenerPolicy,
    /// `Cross-Origin-Resource-Policy`.
    pub cross_origin_resource_policy: CrossOriginResourcePolicy,
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            hsts: true,
            hsts_max_age: "365d".to_owned(),
            hsts_include_subdomains: true,
            hsts_preload: false,
            content_security_policy: None,
            referrer_policy: ReferrerPolicy::StrictOriginWhenCrossOrigin,
            permissions_policy: "camera=(), microphone=(), geolocation=()".to_owned(),
            frame_options: FrameOptions::Deny,
            cross_origin_opener_policy: CrossOriginOpenerPolicy::SameOrigin,
            cross_origin_resource_policy: CrossOriginResourcePolicy::SameOrigin,
        }
    }
}

/// `[identity]`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawIdentity {
    /// Extra request headers stripped from every client request as identity claims, e.g. `["x-remote-user", "remote-user"]` when an upstream trusts such headers. Always stripped besides these: `x-rampart-*`, `x-forwarded-*`, `forwarded`, `x-real-ip`, `cf-connecting-ip`, `true-client-ip`.
    #[schemars(extend("x-kind" = "list of header names"))]
    pub strip_headers: Vec<String>,
}

/// `[forward_auth]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawForwardAuth {
    /// Serve the forward-auth endpoint.
    pub enabled: bool,
    /// Extra exact origins `scheme://host[:port]` (http or https) a sign-in may redirect back to, besides the origin of `public_url` and the hosts of `[[routes]]`; any other target is refused as an open redirect.
    #[schemars(extend("x-kind" = "list of origins"))]
    pub redirect_allowlist: Vec<String>,
    /// Sign-in page unauthenticated browsers are sent to: an http or https URL.
    #[schemars(extend("x-kind" = "URL", "x-default" = "`<public_url>/login`"))]
    pub signin_url: Option<String>,
}

impl Default for RawForwardAuth {
    fn default() -> Self {
        Self {
            enabled: true,
            redirect_allowlist: Vec::new(),
            signin_url: None,
        }
    }
}

/// `[rate_limit]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRateLimit {
    /// Enforce rate limits. `false` lifts every limit, sign-in included; doctor warns (`rate_limit.disabled`).
    pub enabled: bool,
    /// Where counters live: `memory` (this instance) or `redis` (shared by replicas; needs `redis.url`).
    pub backend: RateLimitBackend,
    /// What limits requests when Redis fails: `local`, an in-memory limiter that takes over at once while Redis is retried; a metric and a log line say so.
    pub fallback: RateLimitFallback,
    /// Rate classes by name (`[a-z0-9_-]+`). Without a `[rate_limit.classes]` table: `general` (20 per 1s, burst 50, per IP) and `auth` (5 per 1s, burst 10, per IP). Defining any class replaces both, and then `general` (routes without `rate_class`, Rampart's API) and `auth` (sign-in, TOTP, recovery-code and magic-link endpoints) must be defined too.
    pub classes: BTreeMap<String, RawRateClass>,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: RateLimitBackend::Memory,
            fallback: RateLimitFallback::Local,
            classes: default_rate_classes(),
        }
    }
}

/// `[rate_limit.classes.<name>]`.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateClass {
    /// Sustained requests allowed per `per`.
    pub rate: NonZeroU32,
    /// The period of `rate`.
    #[serde(default = "default_rate_per")]
    #[schemars(extend("x-kind" = "duration"))]
    pub per: String,
    /// Most requests allowed at once (the GCRA burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-default" = "`rate`"))]
    pub burst: Option<NonZeroU32>,
    /// What is counted: `ip` (the client IP), `principal` (the signed-in user) or `token` (the API token). Requests without a principal or token are counted by IP.
    #[serde(default)]
    pub key: RateKey,
}

fn default_rate_per() -> String {
    "1s".to_owned()
}

/// The rate classes used when the file has no `[rate_limit.classes]` table (SPEC
/// F-RATELIMIT).
pub(crate) fn default_rate_classes() -> BTreeMap<String, RawRateClass> {
    let class = |rate: u32, burst: u32| RawRateClass {
        rate: NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN),
        per: default_rate_per(),
        burst: NonZeroU32::new(burst),
        key: RateKey::Ip,
    };
    BTreeMap::from([
        (GENERAL_RATE_CLASS.to_owned(), class(20, 50)),
        (AUTH_RATE_CLASS.to_owned(), class(5, 10)),
    ])
}
