//! Upstreams, routes and their CORS policies.

use std::collections::BTreeMap;
use std::time::Duration;

use super::policy::RawPolicy;
use super::{Validator, Zero, is_valid_name, sanitize_name};
use crate::config::{
    ClientIdentity, CorsConfig, GENERAL_RATE_CLASS, RouteAuth, RouteConfig, UpstreamConfig,
    UpstreamMode,
};
use crate::error::quote;
use crate::raw::{RawCors, RawRoute, RawUpstream};
use crate::secrets::check_secret_file;
use crate::suggest::did_you_mean;
use crate::units;

impl Validator<'_> {
    pub(super) fn upstream(&mut self, name: &str, raw: RawUpstream) -> Option<UpstreamConfig> {
        let base = format!("upstreams.{name}");
        if !is_valid_name(name) {
            self.problem(
                format!("upstreams.{}", quote(name)),
                None,
                "upstream names use only a-z, 0-9, _ and -",
                format!("rename it, e.g. [upstreams.{}]", sanitize_name(name)),
            );
        }
        let key = |k: &str| format!("{base}.{k}");
        let url = self.parse(&key("url"), &raw.url, units::upstream_url);
        if let Some(url) = &url
            && raw.mode == UpstreamMode::Tls
        {
            if url.scheme() != "https" {
                self.problem(
                    key("url"),
                    Some(quote(&raw.url)),
                    "mode = \"tls\" needs an https:// URL",
                    "use https://, or mode = \"plain\" for a plain-HTTP upstream",
                );
            }
            if raw.ca_cert.is_none() {
                self.problem(
                    key("ca_cert"),
                    None,
                    "mode = \"tls\" needs the CA that signed the upstream's certificate",
                    format!("set {base}.ca_cert = \"/etc/rampart/{name}-ca.pem\""),
                );
            }
        }
        if let Some(ca) = &raw.ca_cert {
            self.existing_file(&key("ca_cert"), ca);
        }
        let client_cert = match (raw.client_cert, raw.client_key) {
            (Some(cert_path), Some(key_path)) => {
                self.existing_file(&key("client_cert"), &cert_path);
                check_secret_file(&key("client_key"), &key_path, self.problems);
                if raw.mode != UpstreamMode::Tls {
                    self.problem(
                        key("mode"),
                        Some(quote("plain")),
                        "a client certificate is configured but mode is not \"tls\"",
                        format!("set {base}.mode = \"tls\""),
                    );
                }
                Some(ClientIdentity {
                    cert_path,
                    key_path,
                })
            }
            (Some(_), None) => {
                self.problem(
                    key("client_key"),
                    None,
                    "client_cert is set without client_key",
                    "set both client_cert and client_key, or neither",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    key("client_cert"),
                    None,
                    "client_key is set without client_cert",
                    "set both client_cert and client_key, or neither",
                );
                None
            }
            (None, None) => None,
        };
        let connect_timeout =
            self.duration(&key("connect_timeout"), &raw.connect_timeout, Zero::Refused);
        let read_timeout = self.duration(&key("read_timeout"), &raw.read_timeout, Zero::Refused);
        let pool_idle_timeout = self.duration(
            &key("pool_idle_timeout"),
            &raw.pool_idle_timeout,
            Zero::Refused,
        );
        Some(UpstreamConfig {
            url: url?,
            mode: raw.mode,
            ca_cert: raw.ca_cert,
            client_cert,
            connect_timeout,
            read_timeout,
            pool_idle_timeout,
            pool_max_idle: raw.pool_max_idle,
            http2: raw.http2,
            danger_accept_invalid_certs: raw.danger_accept_invalid_certs,
            preserve_host: raw.preserve_host,
        })
    }

    pub(super) fn routes(
        &mut self,
        raw: Vec<RawRoute>,
        ctx: &RouteContext<'_>,
    ) -> Vec<RouteConfig> {
        let upstreams = ctx.upstreams;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut routes = Vec::with_capacity(raw.len());
        for (i, route) in raw.into_iter().enumerate() {
            let base = format!("routes[{i}]");
            let key = |k: &str| format!("{base}.{k}");
            let name = route.name.trim().to_owned();
            if name.is_empty() {
                self.problem(
                    key("name"),
                    Some(quote(&route.name)),
                    "the route name is empty",
                    "give every route a unique name",
                );
            } else if let Some(first) = seen.insert(name.clone(), i) {
                self.problem(
                    key("name"),
                    Some(quote(&name)),
                    format!("routes[{first}] has the same name"),
                    "give every route a unique name",
                );
            }
            let host = route
                .host
                .as_deref()
                .and_then(|text| self.parse(&key("host"), text, units::host));
            if !route.path_prefix.starts_with('/') || route.path_prefix.contains(['?', '#', ' ']) {
                self.problem(
                    key("path_prefix"),
                    Some(quote(&route.path_prefix)),
                    "a path prefix starts with / and has no query, fragment or spaces",
                    "use a path such as \"/api\"",
                );
            }
            if !upstreams.contains(&route.upstream) {
                let names: Vec<&str> = upstreams.iter().map(String::as_str).collect();
                let fix = if names.is_empty() {
                    format!(
                        "define [upstreams.{}] with its url",
                        sanitize_name(&route.upstream)
                    )
                } else {
                    format!(
                        "use one of: {}, or define [upstreams.{}]",
                        names.join(", "),
                        sanitize_name(&route.upstream)
                    )
                };
                self.problem(
                    key("upstream"),
                    Some(quote(&route.upstream)),
                    format!(
                        "no upstream by that name{}",
                        did_you_mean(&route.upstream, names.iter().copied())
                    ),
                    fix,
                );
            }
            let body_limit = route
                .body_limit
                .as_deref()
                .map(|text| self.size(&key("body_limit"), text));
            let cors = route.cors.map(|cors| self.cors(&key("cors"), cors));
            let public = route.auth == RouteAuth::Public;
            let policy = self.route_policy(
                &base,
                route.auth,
                RawPolicy {
                    roles: route.roles,
                    permissions: route.permissions,
                    require_mfa: route.require_mfa,
                    attributes: route.attributes,
                    tenant: route.tenant,
                },
                ctx.roles,
            );
            let rate_class = self.rate_class(&base, route.rate_class, ctx.rate_classes);
            for (field, limit, what) in [
                (
                    "quota_per_minute",
                    route.quota_per_minute,
                    "a per-principal quota",
                ),
                (
                    "concurrency_limit",
                    route.concurrency_limit,
                    "a per-principal concurrency limit",
                ),
            ] {
                if let (true, Some(limit)) = (public, limit) {
                    self.not_on_public_route(&base, field, Some(limit.to_string()), what);
                }
            }
            let timeout = route
                .timeout
                .as_deref()
                .map(|text| self.route_timeout(&key("timeout"), text, ctx));
            let inject_headers = self.inject_headers(&base, route.inject_headers, &route.upstream);
            let headers = self.header_overrides(&base, route.headers);
            routes.push(RouteConfig {
                name,
                host,
                path_prefix: route.path_prefix,
                upstream: route.upstream,
                auth: route.auth,
                strip_prefix: route.strip_prefix,
                body_limit,
                cors,
                policy,
                rate_class,
                quota_per_minute: route.quota_per_minute,
                concurrency_limit: route.concurrency_limit,
                timeout,
                inject_headers,
                headers,
                identity_headers: route.identity_headers,
            });
        }
        routes
    }

    /// `routes[i].rate_class`: a class in `[rate_limit.classes]`, `general` when
    /// absent. Only a name written on the route is checked here; a missing `general`
    /// class is reported once, at `rate_limit.classes`.
    fn rate_class(&mut self, base: &str, raw: Option<String>, classes: &[String]) -> String {
        let Some(name) = raw else {
            return GENERAL_RATE_CLASS.to_owned();
        };
        if !classes.contains(&name) {
            let names: Vec<&str> = classes.iter().map(String::as_str).collect();
            self.problem(
                format!("{base}.rate_class"),
                Some(quote(&name)),
                format!(
                    "no rate class by that name{}",
                    did_you_mean(&name, names.iter().copied())
                ),
                format!(
                    "use one of: {}, or define [rate_limit.classes.{}]",
                    names.join(", "),
                    sanitize_name(&name)
                ),
            );
        }
        name
    }

    /// A route's time to the response head, which the request timeout would cut off
    /// if it were longer.
    fn route_timeout(&mut self, key: &str, text: &str, ctx: &RouteContext<'_>) -> Duration {
        let timeout = self.duration(key, text, Zero::Refused);
        let (limit, limit_text) = ctx.request_timeout;
        if timeout > limit && !limit.is_zero() {
            self.problem(
                key,
                Some(quote(text)),
                format!(
                    "longer than server.request_timeout ({limit_text}): the whole request is cut off first"
                ),
                format!(
                    "use at most {}, or raise server.request_timeout",
                    quote(limit_text)
                ),
            );
        }
        timeout
    }

    fn cors(&mut self, base: &str, raw: RawCors) -> CorsConfig {
        if raw.allow_origins.is_empty() {
            self.problem(
                format!("{base}.allow_origins"),
                None,
                "no origins are allowed, so the CORS table has no effect",
                format!("list the origins, or remove [{base}]"),
            );
        }
        let mut allow_origins = Vec::new();
        for (j, text) in raw.allow_origins.iter().enumerate() {
            let key = format!("{base}.allow_origins[{j}]");
            // `*` and `null` with credentials is a hard error in every mode: it would
            // let any site read authenticated responses, and dropping the entry
            // silently would hide a broken intent.
            let wildcard_like = text.trim() == "*" || text.trim().eq_ignore_ascii_case("null");
            if raw.allow_credentials && wildcard_like {
                self.problem(
                    key,
                    Some(quote(text)),
                    "allow_credentials = true with this origin would let any site make authenticated requests and read the answers",
                    "list the exact origins (\"https://app.example.com\"), or set allow_credentials = false",
                );
                continue;
            }
            if let Some(origin) = self.parse(&key, text, units::origin) {
                allow_origins.push(origin);
            }
        }
        let allow_methods = self.tokens(
            base,
            "allow_methods",
            &raw.allow_methods,
            str::to_ascii_uppercase,
        );
        let allow_headers = self.tokens(
            base,
            "allow_headers",
            &raw.allow_headers,
            str::to_ascii_lowercase,
        );
        let expose_headers = self.tokens(
            base,
            "expose_headers",
            &raw.expose_headers,
            str::to_ascii_lowercase,
        );
        if raw.allow_credentials {
            for (field, list) in [
                ("allow_headers", &allow_headers),
                ("expose_headers", &expose_headers),
            ] {
                if let Some(j) = list.iter().position(|h| h == "*") {
                    self.problem(
                        format!("{base}.{field}[{j}]"),
                        Some(quote("*")),
                        "with allow_credentials = true browsers read \"*\" as a header literally named *",
                        "list the header names",
                    );
                }
            }
        }
        CorsConfig {
            allow_origins,
            allow_credentials: raw.allow_credentials,
            allow_methods,
            allow_headers,
            expose_headers,
            max_age: self.duration(&format!("{base}.max_age"), &raw.max_age, Zero::Allowed),
        }
    }

    fn tokens(
        &mut self,
        base: &str,
        field: &str,
        values: &[String],
        normalize: fn(&str) -> String,
    ) -> Vec<String> {
        values
            .iter()
            .enumerate()
            .filter_map(|(j, text)| {
                self.parse(&format!("{base}.{field}[{j}]"), text, units::http_token)
                    .map(|token| normalize(&token))
            })
            .collect()
    }
}

/// What routes are checked against: the names defined elsewhere in the file and
/// the request timeout.
pub(super) struct RouteContext<'a> {
    /// Upstream names in the file.
    pub upstreams: &'a [String],
    /// Role names in `[roles]` (or the defaults).
    pub roles: &'a [String],
    /// Rate class names in `[rate_limit.classes]` (or the defaults).
    pub rate_classes: &'a [String],
    /// `server.request_timeout`, parsed and as written.
    pub request_timeout: (Duration, &'a str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CorsOrigin;
    use crate::error::Problems;

    #[test]
    fn cors_origin_rules() {
        let mut problems = Problems::default();
        let mut v = Validator {
            problems: &mut problems,
        };
        let cors = v.cors(
            "routes[0].cors",
            RawCors {
                allow_origins: vec!["https://a.example".to_owned(), "*".to_owned()],
                ..RawCors::default()
            },
        );
        assert!(problems.is_empty());
        assert_eq!(cors.allow_origins[1], CorsOrigin::Any);
        assert_eq!(
            cors.allow_methods,
            ["GET", "POST", "PUT", "PATCH", "DELETE"]
        );
    }
}
