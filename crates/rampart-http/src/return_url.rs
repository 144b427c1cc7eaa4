//! Validating where a sign-in may send the browser back to (open-redirect defence).
//!
//! A return URL comes from the request that needed a sign-in — an attacker can craft
//! it. It is accepted only as a same-site path (`/…`, not `//…` or `/\…`) or as an
//! absolute `https://` (or, for origins configured with `http://`, `http://`) URL whose
//! exact origin is allowed: the origin of `public_url`, the hosts of the routes, and
//! `forward_auth.redirect_allowlist`. Anything else — other hosts, look-alike
//! suffixes, user-info tricks, other schemes, control characters — becomes `/`.
//!
//! One set of allowed origins serves both ends of a sign-in: the gateway and
//! `/auth/verify` when they build the `rd` of the sign-in redirect, and the sign-in
//! page when it sends the browser back ([`ReturnUrls::for_config`]). The page checks
//! again because `rd` reaches it through the browser, where anyone can edit it.

use rampart_config::Config;
use url::Url;

/// The allowed return origins.
#[derive(Debug, Clone, Default)]
pub struct ReturnUrls {
    origins: Vec<String>,
}

impl ReturnUrls {
    /// Allowed origins, each `scheme://host[:port]` (lower-case; default ports
    /// omitted, as `Url::origin` serializes them).
    pub fn new(origins: impl IntoIterator<Item = String>) -> Self {
        Self {
            origins: origins
                .into_iter()
                .filter_map(|o| Url::parse(&o).ok())
                .map(|u| u.origin().ascii_serialization())
                .collect(),
        }
    }

    /// The origins a sign-in may return to under `config`: `public_url`'s, each route
    /// host's (`https`, and `http` too when Rampart itself is served over plain `http`
    /// in development), and `forward_auth.redirect_allowlist`.
    pub fn for_config(config: &Config) -> Self {
        let plain_http = config
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "http");
        let mut origins: Vec<String> = config
            .public_url
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect();
        for host in config.routes.iter().filter_map(|r| r.host.as_deref()) {
            origins.push(format!("https://{host}"));
            if plain_http {
                origins.push(format!("http://{host}"));
            }
        }
        origins.extend(config.forward_auth.redirect_allowlist.iter().cloned());
        Self::new(origins)
    }

    /// The validated return target: `candidate` if safe, else `/`.
    pub fn validate(&self, candidate: &str) -> String {
        self.check(candidate).unwrap_or_else(|| "/".to_owned())
    }

    fn check(&self, candidate: &str) -> Option<String> {
        if candidate.is_empty()
            || candidate.len() > 4096
            || candidate.chars().any(|c| c.is_control() || c == '\\')
        {
            return None;
        }
        if candidate.starts_with('/') {
            // `//host` and `/\host` are network-path references to another host.
            if candidate.starts_with("//") {
                return None;
            }
            return Some(candidate.to_owned());
        }
        let url = Url::parse(candidate).ok()?;
        if !matches!(url.scheme(), "https" | "http")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.host_str().is_none()
        {
            return None;
        }
        let origin = url.origin().ascii_serialization();
        self.origins.contains(&origin).then(|| url.to_string())
    }
}

/// The origin of a validated absolute return target (`https://app.example.com`), for
/// a page's `form-action`; `None` for a same-site path. Browsers apply `form-action`
/// to the redirect that follows a form post too, so a sign-in form must name the
/// origin it will send the browser back to.
pub fn target_origin(validated: &str) -> Option<String> {
    if validated.starts_with('/') {
        return None;
    }
    let origin = Url::parse(validated).ok()?.origin().ascii_serialization();
    // A serialized tuple origin is `scheme://host[:port]` in ASCII; anything else
    // (an opaque origin, `null`) is no source expression.
    origin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'.' | b'-' | b'[' | b']'))
        .then_some(origin)
        .filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> ReturnUrls {
        ReturnUrls::new([
            "https://auth.example.com".to_owned(),
            "https://app.example.com".to_owned(),
            "https://tools.example.com:8443".to_owned(),
        ])
    }

    #[test]
    fn same_site_paths_and_allowed_origins_pass() {
        let r = urls();
        assert_eq!(r.validate("/dashboard?tab=1"), "/dashboard?tab=1");
        assert_eq!(
            r.validate("https://app.example.com/x?y=1"),
            "https://app.example.com/x?y=1"
        );
        assert_eq!(
            r.validate("https://tools.example.com:8443/"),
            "https://tools.example.com:8443/"
        );
        assert_eq!(
            r.validate("HTTPS://APP.EXAMPLE.COM/"),
            "https://app.example.com/"
        );
    }

    #[test]
    fn open_redirect_payloads_fall_back_to_root() {
        let r = urls();
        for payload in [
            "https://evil.com",
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https://app.example.com.evil.com/",
            "https://evil-app.example.com/",
            "https://evil.com@app.example.com/",
            "https://app.example.com@evil.com/",
            "http://app.example.com/",
            "https://tools.example.com/",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https:evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "ftp://app.example.com/",
            "",
        ] {
            assert_eq!(r.validate(payload), "/", "{payload:?}");
        }
    }

    #[test]
    fn config_origins_are_public_url_route_hosts_and_the_allowlist() {
        let env = std::collections::BTreeMap::new();
        let config = rampart_config::from_toml_str(
            r#"mode = "dev"
public_url = "https://auth.example.com"

[upstreams.app]
url = "http://127.0.0.1:8080"

[[routes]]
name = "app"
host = "app.example.com"
path_prefix = "/"
upstream = "app"

[forward_auth]
redirect_allowlist = ["https://tools.example.com:8443"]
"#,
            &env,
        )
        .unwrap();
        let r = ReturnUrls::for_config(&config);
        for ok in [
            "https://auth.example.com/account",
            "https://app.example.com/x",
            "https://tools.example.com:8443/y",
        ] {
            assert_eq!(r.validate(ok), ok);
        }
        // Plain http only when Rampart itself is served over http (development).
        assert_eq!(r.validate("http://app.example.com/x"), "/");
        assert_eq!(r.validate("https://other.example.com/"), "/");
    }

    #[test]
    fn target_origins_for_form_action() {
        assert_eq!(
            target_origin("https://app.example.com/x?y=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            target_origin("https://tools.example.com:8443/").as_deref(),
            Some("https://tools.example.com:8443")
        );
        assert_eq!(target_origin("/dashboard"), None);
        assert_eq!(target_origin("/"), None);
    }
}
