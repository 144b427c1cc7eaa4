//! Identity settings: authentication policy, password hashing, API tokens, second
//! factors, magic links, CSRF origins and roles.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use rampart_crypto::password::Argon2Limits;
use rampart_crypto::totp::MAX_SKEW_STEPS;

use super::{Validator, Zero, is_valid_name, sanitize_name};
use crate::config::{
    ApiTokensConfig, AuthConfig, CsrfConfig, LockoutConfig, MagicLinkConfig, PasswordConfig,
    RoleConfig, TotpConfig,
};
use crate::error::{REDACTED, quote};
use crate::guard::MIN_TOKEN_CHARS;
use crate::raw::{RawApiTokens, RawAuth, RawCsrf, RawMagicLink, RawPassword, RawRole, RawTotp};
use crate::secrets::Sources;
use crate::units;

/// Argon2id settings the OWASP Password Storage Cheat Sheet lists as equivalent,
/// as (memory KiB, passes), all with one lane. A configuration is accepted when it
/// meets at least one of them in both memory and passes: memory and time trade
/// against each other, and these are the trade-offs OWASP vouches for.
const OWASP_ARGON2ID_MINIMUMS: &[(u32, u32)] = &[
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// Shortest and longest `auth.password_min_length`. Below 8 characters a password
/// falls to offline guessing (NIST SP 800-63B §3.1.1.2 sets 8 as the floor); above
/// 128 the minimum would refuse most passphrase managers' output.
const PASSWORD_MIN_LENGTH: std::ops::RangeInclusive<u32> = 8..=128;

/// Longest `auth.setup_token_ttl`: the token is printed to the log at first start,
/// and anyone who reads the log while it is valid can claim the admin account.
const MAX_SETUP_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest `magic_link.ttl`: a link in a mailbox is a login credential, and mail is
/// stored, forwarded and synced to many devices.
const MAX_MAGIC_LINK_TTL: Duration = Duration::from_secs(3600);

impl Validator<'_> {
    pub(super) fn auth(&mut self, raw: RawAuth, sources: &Sources) -> AuthConfig {
        if !PASSWORD_MIN_LENGTH.contains(&raw.password_min_length) {
            let message = if raw.password_min_length < *PASSWORD_MIN_LENGTH.start() {
                "too short: passwords under 8 characters fall to offline guessing (NIST SP 800-63B)"
            } else {
                "too long: a minimum above 128 characters refuses what password managers generate"
            };
            self.problem(
                "auth.password_min_length",
                Some(raw.password_min_length.to_string()),
                message,
                "use a number from 8 to 128; the default is 12",
            );
        }
        let setup_token_ttl =
            self.duration("auth.setup_token_ttl", &raw.setup_token_ttl, Zero::Refused);
        if setup_token_ttl > MAX_SETUP_TOKEN_TTL {
            self.problem(
                "auth.setup_token_ttl",
                Some(quote(&raw.setup_token_ttl)),
                "longer than 24h: the setup token is printed to the log, and anyone who can read the log can claim the first admin account while it is valid",
                "use at most \"24h\"; the default is \"1h\" (restart Rampart to print a new token)",
            );
        }
        let max_concurrent_hashes = usize::try_from(raw.max_concurrent_hashes)
            .ok()
            .and_then(NonZeroUsize::new)
            .unwrap_or_else(|| {
                // `0`: one hash per CPU, the most that can make progress at once.
                std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
            });
        let lockout = LockoutConfig {
            max_failures: raw.lockout.max_failures,
            window: self.duration("auth.lockout.window", &raw.lockout.window, Zero::Refused),
            duration: self.duration(
                "auth.lockout.duration",
                &raw.lockout.duration,
                Zero::Refused,
            ),
        };
        AuthConfig {
            registration: raw.registration,
            danger_accept_query_tokens: raw.danger_accept_query_tokens,
            password_min_length: usize::try_from(raw.password_min_length).unwrap_or(usize::MAX),
            setup_token_ttl,
            invite_ttl: self.duration("auth.invite_ttl", &raw.invite_ttl, Zero::Refused),
            max_concurrent_hashes,
            lockout,
            password: self.password(raw.password, sources),
        }
    }

    fn password(&mut self, raw: RawPassword, sources: &Sources) -> PasswordConfig {
        let (m, t, p) = (
            raw.memory_kib.get(),
            raw.iterations.get(),
            raw.parallelism.get(),
        );
        let limits = Argon2Limits::default();
        let mut within_limits = true;
        for (key, value, max, unit) in [
            ("auth.password.memory_kib", m, limits.max_memory_kib, " KiB"),
            ("auth.password.iterations", t, limits.max_iterations, ""),
            ("auth.password.parallelism", p, limits.max_parallelism, ""),
        ] {
            if value > max {
                within_limits = false;
                self.problem(
                    key,
                    Some(value.to_string()),
                    format!(
                        "above the most Rampart accepts ({max}{unit}): a stored hash asking for more is refused as an attempt to exhaust the server"
                    ),
                    format!("use at most {max}; the default is m=19456, t=2, p=1"),
                );
            }
        }
        if within_limits && !meets_owasp_minimum(m, t) {
            let lowest_memory = OWASP_ARGON2ID_MINIMUMS
                .iter()
                .map(|(m, _)| *m)
                .min()
                .unwrap_or(0);
            if m < lowest_memory {
                self.problem(
                    "auth.password.memory_kib",
                    Some(m.to_string()),
                    format!(
                        "below the OWASP minimum for Argon2id ({lowest_memory} KiB even with 5 passes): stolen hashes would be cheap to crack"
                    ),
                    "use one of the OWASP settings m=47104/t=1, m=19456/t=2, m=12288/t=3, m=9216/t=4, m=7168/t=5; the default is m=19456, t=2",
                );
            } else {
                let passes = passes_needed(m);
                let memory = memory_needed(t);
                self.problem(
                    "auth.password.iterations",
                    Some(t.to_string()),
                    format!(
                        "with memory_kib = {m}, below the OWASP minimum for Argon2id: stolen hashes would be cheap to crack"
                    ),
                    format!(
                        "set iterations = {passes}, or memory_kib = {memory} (OWASP settings: m=47104/t=1, m=19456/t=2, m=12288/t=3, m=9216/t=4, m=7168/t=5)"
                    ),
                );
            }
        }
        let pepper = sources.resolve(
            "auth.password.pepper",
            raw.pepper,
            raw.pepper_file.as_deref(),
            self.problems,
        );
        if let Some(pepper) = &pepper
            && pepper.value.expose_secret().chars().count() < MIN_TOKEN_CHARS
        {
            // A short pepper is a mistake in every mode: there is no convenience in
            // it, and changing it later invalidates every password hash.
            self.problem(
                "auth.password.pepper",
                Some(REDACTED.to_owned()),
                format!(
                    "the pepper from {} is shorter than {MIN_TOKEN_CHARS} characters",
                    pepper.origin
                ),
                "generate one with `openssl rand -hex 32` (64 characters), or remove the pepper",
            );
        }
        PasswordConfig {
            memory_kib: raw.memory_kib,
            iterations: raw.iterations,
            parallelism: raw.parallelism,
            pepper,
        }
    }

    pub(super) fn api_tokens(&mut self, raw: RawApiTokens) -> ApiTokensConfig {
        let default_ttl = self.duration("api_tokens.default_ttl", &raw.default_ttl, Zero::Refused);
        let max_ttl = self.duration("api_tokens.max_ttl", &raw.max_ttl, Zero::Refused);
        if max_ttl < default_ttl && !max_ttl.is_zero() {
            self.problem(
                "api_tokens.max_ttl",
                Some(quote(&raw.max_ttl)),
                format!("shorter than api_tokens.default_ttl ({})", raw.default_ttl),
                "raise max_ttl or lower default_ttl",
            );
        }
        ApiTokensConfig {
            allow_admin: raw.allow_admin,
            default_ttl,
            max_ttl,
        }
    }

    pub(super) fn totp(&mut self, raw: RawTotp) -> TotpConfig {
        let issuer = raw.issuer.trim().to_owned();
        if issuer.is_empty() || issuer.contains(':') || issuer.chars().any(char::is_control) {
            self.problem(
                "totp.issuer",
                Some(quote(&raw.issuer)),
                "authenticator apps need a non-empty issuer without ':' (it separates issuer and account in the otpauth label)",
                "name the service, such as \"Example Corp\"; the default is \"Rampart\"",
            );
        }
        let skew = u8::try_from(raw.skew)
            .ok()
            .filter(|s| *s <= MAX_SKEW_STEPS)
            .unwrap_or_else(|| {
                self.problem(
                    "totp.skew",
                    Some(raw.skew.to_string()),
                    format!(
                        "more than {MAX_SKEW_STEPS} steps: each step accepts two more codes per attempt, helping guessers (RFC 6238 §6 recommends at most 1)"
                    ),
                    "use 0, 1 or 2; the default is 1",
                );
                MAX_SKEW_STEPS
            });
        TotpConfig { issuer, skew }
    }

    pub(super) fn magic_link(&mut self, raw: RawMagicLink) -> MagicLinkConfig {
        let ttl = self.duration("magic_link.ttl", &raw.ttl, Zero::Refused);
        if ttl > MAX_MAGIC_LINK_TTL {
            self.problem(
                "magic_link.ttl",
                Some(quote(&raw.ttl)),
                "longer than 1h: a link in a mailbox logs in whoever opens it, and mail is stored, forwarded and synced",
                "use at most \"1h\"; the default is \"15m\"",
            );
        }
        MagicLinkConfig {
            enabled: raw.enabled,
            ttl,
        }
    }

    pub(super) fn csrf(&mut self, raw: RawCsrf) -> CsrfConfig {
        let allowed_origins = raw
            .allowed_origins
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                self.parse(
                    &format!("csrf.allowed_origins[{i}]"),
                    text,
                    units::exact_origin,
                )
            })
            .collect();
        CsrfConfig { allowed_origins }
    }

    pub(super) fn roles(&mut self, raw: BTreeMap<String, RawRole>) -> BTreeMap<String, RoleConfig> {
        let mut roles = BTreeMap::new();
        for (name, role) in raw {
            if !is_valid_name(&name) {
                self.problem(
                    format!("roles.{}", quote(&name)),
                    None,
                    "role names use only a-z, 0-9, _ and -",
                    format!("rename it, e.g. [roles.{}]", sanitize_name(&name)),
                );
            }
            let permissions = role
                .permissions
                .iter()
                .enumerate()
                .filter_map(|(i, text)| {
                    self.parse(
                        &format!("roles.{name}.permissions[{i}]"),
                        text,
                        units::permission,
                    )
                })
                .collect();
            // The admin role asks for a second factor unless the operator says
            // otherwise, even when [roles.admin] is written without the key: a
            // redefined admin role must not silently lose MFA.
            let require_mfa = role.require_mfa.unwrap_or(name == "admin");
            roles.insert(
                name,
                RoleConfig {
                    permissions,
                    require_mfa,
                },
            );
        }
        roles
    }
}

/// Whether Argon2id with `memory_kib` and `iterations` meets one of the OWASP
/// settings.
fn meets_owasp_minimum(memory_kib: u32, iterations: u32) -> bool {
    OWASP_ARGON2ID_MINIMUMS
        .iter()
        .any(|(m, t)| memory_kib >= *m && iterations >= *t)
}

/// The fewest passes that meet an OWASP setting with `memory_kib` of memory.
fn passes_needed(memory_kib: u32) -> u32 {
    OWASP_ARGON2ID_MINIMUMS
        .iter()
        .filter(|(m, _)| memory_kib >= *m)
        .map(|(_, t)| *t)
        .min()
        .unwrap_or(5)
}

/// The least memory that meets an OWASP setting with `iterations` passes.
fn memory_needed(iterations: u32) -> u32 {
    OWASP_ARGON2ID_MINIMUMS
        .iter()
        .filter(|(_, t)| iterations >= *t)
        .map(|(m, _)| *m)
        .min()
        .unwrap_or(47_104)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owasp_settings_and_only_what_dominates_them_are_accepted() {
        for (m, t) in OWASP_ARGON2ID_MINIMUMS {
            assert!(meets_owasp_minimum(*m, *t), "m={m} t={t}");
            assert!(!meets_owasp_minimum(m - 1, *t), "m={} t={t}", m - 1);
        }
        assert!(meets_owasp_minimum(65_536, 1));
        assert!(meets_owasp_minimum(7_168, 10));
        assert!(!meets_owasp_minimum(19_455, 2));
        assert!(!meets_owasp_minimum(12_288, 2));
        assert!(!meets_owasp_minimum(6_000, 10));
        assert_eq!(passes_needed(19_456), 2);
        assert_eq!(passes_needed(12_000), 4);
        assert_eq!(memory_needed(1), 47_104);
        assert_eq!(memory_needed(3), 12_288);
    }

    #[test]
    fn the_default_is_the_crypto_crates_owasp_setting() {
        let owasp = rampart_crypto::Argon2Params::OWASP;
        assert!(OWASP_ARGON2ID_MINIMUMS.contains(&(owasp.memory_kib, owasp.iterations)));
    }

    #[test]
    fn documented_limits_match_the_hasher() {
        // The `auth.password.*` doc comments state these maxima.
        let limits = Argon2Limits::default();
        assert_eq!(
            (
                limits.max_memory_kib,
                limits.max_iterations,
                limits.max_parallelism
            ),
            (262_144, 10, 8)
        );
        assert_eq!(MAX_SKEW_STEPS, 2);
    }
}
