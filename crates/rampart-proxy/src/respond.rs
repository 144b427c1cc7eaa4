//! Phase `respond()`: the response header policy for proxied responses (F-HEADERS).
//!
//! Computed once per route at start: the defaults from `[headers]` that apply when
//! the upstream set none, the route's `[routes.headers]` overrides and removals, and
//! HSTS (only when the client used HTTPS). Authenticated responses get
//! `Cache-Control: no-store` so a shared cache never serves one user's page to another.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rampart_config::{HeaderOverrides, HeadersConfig};

/// A route's response header policy.
#[derive(Debug, Clone, Default)]
pub struct HeaderPolicy {
    defaults: Vec<(HeaderName, HeaderValue)>,
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
    hsts: Option<HeaderValue>,
    sets_cache_control: bool,
}

impl HeaderPolicy {
    /// The policy for a route from the global `[headers]` and its overrides. Values
    /// were validated by the configuration; an unparsable one is skipped.
    pub fn new(global: &HeadersConfig, overrides: &HeaderOverrides) -> Self {
        let mut defaults = vec![
            pair("x-content-type-options", "nosniff"),
            pair("x-frame-options", global.frame_options.as_str()),
            pair("referrer-policy", global.referrer_policy.as_str()),
            pair("permissions-policy", &global.permissions_policy),
            pair(
                "cross-origin-opener-policy",
                global.cross_origin_opener_policy.as_str(),
            ),
            pair(
                "cross-origin-resource-policy",
                global.cross_origin_resource_policy.as_str(),
            ),
        ];
        if let Some(csp) = &global.content_security_policy {
            defaults.push(pair("content-security-policy", csp));
        }
        let set: Vec<(HeaderName, HeaderValue)> = overrides
            .set
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        let sets_cache_control = set.iter().any(|(name, _)| name == header::CACHE_CONTROL);
        Self {
            defaults: defaults.into_iter().flatten().collect(),
            remove: overrides
                .remove
                .iter()
                .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                .collect(),
            set,
            hsts: global
                .hsts
                .as_ref()
                .and_then(|h| HeaderValue::from_str(&h.header_value()).ok()),
            sets_cache_control,
        }
    }

    /// Applies the policy to a proxied response's headers.
    pub fn apply(&self, headers: &mut HeaderMap, https: bool, authenticated: bool) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.defaults {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        if https && let Some(hsts) = &self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        if authenticated && !self.sets_cache_control {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

fn pair(name: &'static str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::from_static(name),
        HeaderValue::from_str(value).ok()?,
    ))
}
