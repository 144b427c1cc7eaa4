//! Edge settings: response security headers, identity-claim headers, forward-auth,
//! rate limits, and the header rules of routes (injected and overridden headers).
//!
//! Header names the operator writes are checked against what Rampart itself owns:
//! the framing of the message, hop-by-hop headers, the forwarding headers it rebuilds
//! from trusted proxies, and the `X-Rampart-*` identity headers. A configured value
//! for one of those would corrupt the message or forge what Rampart asserts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Validator, Zero, entry_key, is_valid_name, sanitize_name};
use crate::config::{
    AUTH_RATE_CLASS, ForwardAuthConfig, GENERAL_RATE_CLASS, HeaderOverrides, HeadersConfig, Hsts,
    IdentityConfig, RateClass, RateKey, RateLimitBackend, RateLimitConfig,
};
use crate::error::{REDACTED, quote};
use crate::raw::{
    RawForwardAuth, RawHeaders, RawIdentity, RawRateLimit, RawRouteHeaders, default_rate_classes,
};
use crate::units;

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are
/// removed at every hop.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that frame or route a message; Rampart derives them from the message.
const FRAMING: &[&str] = &["host", "content-length", "transfer-encoding"];

/// Forwarding headers Rampart rebuilds from trusted proxies only (F-CLIENTIP), besides
/// every `x-forwarded-*`.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
];

/// The prefix of the identity headers Rampart asserts to upstreams (F-IDHEADERS).
const IDENTITY_PREFIX: &str = "x-rampart-";

/// A year: the default HSTS `max-age`, and the shortest the browsers' preload lists
/// accept (hstspreload.org).
const ONE_YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Why a header name cannot be configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reserved {
    Framing,
    HopByHop,
    Forwarding,
    Identity,
}

impl Reserved {
    /// Which reserved group `name` (lower-case) belongs to, if any.
    pub(super) fn of(name: &str) -> Option<Self> {
        if FRAMING.contains(&name) {
            Some(Self::Framing)
        } else if HOP_BY_HOP.contains(&name) {
            Some(Self::HopByHop)
        } else if FORWARDING.contains(&name) || name.starts_with("x-forwarded-") {
            Some(Self::Forwarding)
        } else if name.starts_with(IDENTITY_PREFIX) {
            Some(Self::Identity)
        } else {
            None
        }
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            Self::Framing => {
                "Rampart sets this header from the message itself: it frames or routes the message, and a configured value would corrupt it"
            }
            Self::HopByHop => {
                "a hop-by-hop header describes one connection and is removed at every hop (RFC 9110 §7.6.1)"
            }
            Self::Forwarding => {
                "Rampart rebuilds the forwarding headers itself, believing only trusted proxies (F-CLIENTIP)"
            }
            Self::Identity => {
                "X-Rampart-* headers carry the identity Rampart asserts to the upstream, and a configured one could forge it"
            }
        }
    }
}

impl Validator<'_> {
    pub(super) fn headers(&mut self, raw: RawHeaders) -> HeadersConfig {
        let max_age = self.parse("headers.hsts_max_age", &raw.hsts_max_age, units::duration);
        if raw.hsts_preload {
            if !raw.hsts {
                self.problem(
                    "headers.hsts_preload",
                    Some("true".to_owned()),
                    "preload asks browsers to build in the HSTS policy, but headers.hsts = false sends none",
                    "set headers.hsts = true, or hsts_preload = false",
                );
            }
            if !raw.hsts_include_subdomains {
                self.problem(
                    "headers.hsts_include_subdomains",
                    Some("false".to_owned()),
                    "hsts_preload = true needs includeSubDomains: the preload lists refuse a policy without it",
                    "set hsts_include_subdomains = true, or hsts_preload = false",
                );
            }
            if max_age.is_some_and(|age| age < ONE_YEAR) {
                self.problem(
                    "headers.hsts_max_age",
                    Some(quote(&raw.hsts_max_age)),
                    "shorter than 365d: with hsts_preload = true the preload lists require a max-age of at least a year",
                    "use \"365d\" (the default) or longer, or set hsts_preload = false",
                );
            }
        }
        let content_security_policy = raw.content_security_policy.as_deref().and_then(|text| {
            self.parse("headers.content_security_policy", text, units::header_value)
        });
        let permissions_policy = self
            .parse(
                "headers.permissions_policy",
                &raw.permissions_policy,
                units::header_value,
            )
            .unwrap_or_default();
        HeadersConfig {
            hsts: raw.hsts.then(|| Hsts {
                max_age: max_age.unwrap_or(ONE_YEAR),
                include_subdomains: raw.hsts_include_subdomains,
                preload: raw.hsts_preload,
            }),
            content_security_policy,
            referrer_policy: raw.referrer_policy,
            permissions_policy,
            frame_options: raw.frame_options,
            cross_origin_opener_policy: raw.cross_origin_opener_policy,
            cross_origin_resource_policy: raw.cross_origin_resource_policy,
        }
    }

    pub(super) fn identity(&mut self, raw: RawIdentity) -> IdentityConfig {
        let mut strip_headers: Vec<String> = Vec::new();
        for (j, text) in raw.strip_headers.iter().enumerate() {
            let key = format!("identity.strip_headers[{j}]");
            let Some(name) = self.parse(&key, text, units::header_name) else {
                continue;
            };
            if FRAMING.contains(&name.as_str()) {
                self.problem(
                    key,
                    Some(quote(text)),
                    "Rampart needs this header to frame or route the request, and stripping it would break every request",
                    "remove it from identity.strip_headers",
                );
                continue;
            }
            if !strip_headers.contains(&name) {
                strip_headers.push(name);
            }
        }
        IdentityConfig { strip_headers }
    }

    pub(super) fn forward_auth(&mut self, raw: RawForwardAuth) -> ForwardAuthConfig {
        let mut redirect_allowlist: Vec<String> = Vec::new();
        for (j, text) in raw.redirect_allowlist.iter().enumerate() {
            let key = format!("forward_auth.redirect_allowlist[{j}]");
            if let Some(origin) = self.parse(&key, text, units::redirect_origin)
                && !redirect_allowlist.contains(&origin)
            {
                redirect_allowlist.push(origin);
            }
        }
        let signin_url = raw
            .signin_url
            .as_deref()
            .and_then(|text| self.parse("forward_auth.signin_url", text, units::signin_url));
        ForwardAuthConfig {
            enabled: raw.enabled,
            redirect_allowlist,
            signin_url,
        }
    }

    /// `redis` says whether `[redis]` has a URL.
    pub(super) fn rate_limit(&mut self, raw: RawRateLimit, redis: bool) -> RateLimitConfig {
        if raw.backend == RateLimitBackend::Redis && !redis {
            self.problem(
                "rate_limit.backend",
                Some(quote("redis")),
                "the redis backend needs redis.url, which is not set",
                "set redis.url (or redis.url_file, RAMPART_REDIS_URL, or \"redis.url\" in the secrets file), or use backend = \"memory\"",
            );
        }
        let mut classes = BTreeMap::new();
        for (name, class) in raw.classes {
            let base = entry_key("rate_limit.classes", &name);
            if !is_valid_name(&name) {
                self.problem(
                    base.clone(),
                    None,
                    "rate class names use only a-z, 0-9, _ and -",
                    format!(
                        "rename it, e.g. [rate_limit.classes.{}]",
                        sanitize_name(&name)
                    ),
                );
            }
            let per = self.duration(&format!("{base}.per"), &class.per, Zero::Refused);
            // The auth class guards endpoints that run before anyone is signed in;
            // counting by principal or token there would count nothing.
            if name == AUTH_RATE_CLASS && class.key != RateKey::Ip {
                self.problem(
                    format!("{base}.key"),
                    Some(quote(rate_key_name(class.key))),
                    "the auth class limits sign-in, TOTP, recovery-code and magic-link requests, which come before there is a principal or token to count by",
                    "use key = \"ip\" (the default)",
                );
            }
            classes.insert(
                name,
                RateClass {
                    rate: class.rate,
                    per,
                    burst: class.burst.unwrap_or(class.rate),
                    key: class.key,
                },
            );
        }
        let missing: Vec<&str> = [GENERAL_RATE_CLASS, AUTH_RATE_CLASS]
            .into_iter()
            .filter(|name| !classes.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            let defaults = default_rate_classes();
            let tables: Vec<String> = missing
                .iter()
                .filter_map(|name| {
                    defaults.get(*name).map(|d| {
                        format!(
                            "[rate_limit.classes.{name}] with rate = {}, burst = {}",
                            d.rate,
                            d.burst.unwrap_or(d.rate)
                        )
                    })
                })
                .collect();
            self.problem(
                "rate_limit.classes",
                None,
                format!(
                    "no {} class: defining any class replaces the defaults, and Rampart's own endpoints use general (its API) and auth (sign-in, TOTP, recovery codes, magic links)",
                    missing.join(" or ")
                ),
                format!("add {} (the defaults)", tables.join(" and ")),
            );
        }
        RateLimitConfig {
            enabled: raw.enabled,
            backend: raw.backend,
            fallback: raw.fallback,
            classes,
        }
    }

    /// `routes[i].inject_headers`; `upstream` names the route's upstream for a fix.
    pub(super) fn inject_headers(
        &mut self,
        base: &str,
        raw: BTreeMap<String, String>,
        upstream: &str,
    ) -> BTreeMap<String, String> {
        let field = format!("{base}.inject_headers");
        let mut out = BTreeMap::new();
        for (text, value) in raw {
            let key = entry_key(&field, &text);
            let Some(name) = self.header_name_at(&key, &text) else {
                continue;
            };
            if let Some(reserved) = Reserved::of(&name) {
                let fix = if name == "host" {
                    format!(
                        "to send the client's Host, set upstreams.{upstream}.preserve_host = true"
                    )
                } else {
                    "inject another header, such as \"X-Api-Key\"".to_owned()
                };
                self.problem(key, None, reserved.message(), fix);
                continue;
            }
            // The value is never shown: a value that is not a vault reference is most
            // likely the credential itself, pasted in.
            let secret = match units::vault_reference(&value) {
                Ok(secret) => secret,
                Err(invalid) => {
                    self.problem(key, Some(REDACTED.to_owned()), invalid.message, invalid.fix);
                    continue;
                }
            };
            if out.insert(name, secret).is_some() {
                self.problem(
                    key,
                    None,
                    "another entry names the same header (header names are case-insensitive)",
                    "keep one entry per header",
                );
            }
        }
        out
    }

    /// `[routes.headers]`.
    pub(super) fn header_overrides(&mut self, base: &str, raw: RawRouteHeaders) -> HeaderOverrides {
        let field = format!("{base}.headers.set");
        let mut set = BTreeMap::new();
        for (text, value) in raw.set {
            let key = entry_key(&field, &text);
            let Some(name) = self.header_name_at(&key, &text) else {
                continue;
            };
            if let Some(reserved) =
                Reserved::of(&name).filter(|r| matches!(r, Reserved::Framing | Reserved::HopByHop))
            {
                self.problem(key, None, reserved.message(), "remove it from the table");
                continue;
            }
            let Some(value) = self.parse(&key, &value, units::header_value) else {
                continue;
            };
            if set.insert(name, value).is_some() {
                self.problem(
                    key,
                    None,
                    "another entry names the same header (header names are case-insensitive)",
                    "keep one entry per header",
                );
            }
        }
        let mut remove: Vec<String> = Vec::new();
        for (j, text) in raw.remove.iter().enumerate() {
            let key = format!("{base}.headers.remove[{j}]");
            let Some(name) = self.parse(&key, text, units::header_name) else {
                continue;
            };
            if let Some(reserved) =
                Reserved::of(&name).filter(|r| matches!(r, Reserved::Framing | Reserved::HopByHop))
            {
                self.problem(
                    key,
                    Some(quote(text)),
                    reserved.message(),
                    "remove it from the list",
                );
                continue;
            }
            if set.contains_key(&name) {
                self.problem(
                    key,
                    Some(quote(text)),
                    format!("{base}.headers.set also sets this header"),
                    "keep the header in one of set and remove",
                );
                continue;
            }
            if !remove.contains(&name) {
                remove.push(name);
            }
        }
        HeaderOverrides { set, remove }
    }

    /// A header name written as a table key; the key already shows it, so the
    /// problem has no value.
    pub(super) fn header_name_at(&mut self, key: &str, text: &str) -> Option<String> {
        match units::header_name(text) {
            Ok(name) => Some(name),
            Err(invalid) => {
                self.problem(key, None, invalid.message, invalid.fix);
                None
            }
        }
    }
}

fn rate_key_name(key: RateKey) -> &'static str {
    match key {
        RateKey::Ip => "ip",
        RateKey::Principal => "principal",
        RateKey::Token => "token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers() {
        assert_eq!(Reserved::of("host"), Some(Reserved::Framing));
        assert_eq!(Reserved::of("transfer-encoding"), Some(Reserved::Framing));
        assert_eq!(Reserved::of("upgrade"), Some(Reserved::HopByHop));
        assert_eq!(Reserved::of("x-forwarded-for"), Some(Reserved::Forwarding));
        assert_eq!(Reserved::of("cf-connecting-ip"), Some(Reserved::Forwarding));
        assert_eq!(Reserved::of("x-rampart-user"), Some(Reserved::Identity));
        assert_eq!(Reserved::of("x-api-key"), None);
        assert_eq!(Reserved::of("authorization"), None);
    }
}
