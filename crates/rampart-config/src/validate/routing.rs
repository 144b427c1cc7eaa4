//! Upstreams, routes and their CORS policies.

use std::collections::BTreeMap;

use super::{Validator, Zero, is_valid_name, sanitize_name};
use crate::config::{ClientIdentity, CorsConfig, RouteConfig, UpstreamConfig, UpstreamMode};
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
        })
    }

    pub(super) fn routes(&mut self, raw: Vec<RawRoute>, upstreams: &[String]) -> Vec<RouteConfig> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut routes = Vec::with_capacity(raw.len());
        for (i, route) in raw.into_iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
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
            routes.push(RouteConfig {
                name,
                host,
                path_prefix: route.path_prefix,
                upstream: route.upstream,
                auth: route.auth,
                strip_prefix: route.strip_prefix,
                body_limit,
                cors,
            });
        }
        routes
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
