//! Validating where a sign-in may send the browser back to (open-redirect defence).
//!
//! A return URL comes from the request that needed a sign-in — an attacker can craft
//! it. It is accepted only as a same-site path (`/…`, not `//…` or `/\…`) or as an
//! absolute `https://` (or, for origins configured with `http://`, `http://`) URL whose
//! exact origin is allowed: the origin of `public_url`, the hosts of the routes, and
//! `forward_auth.redirect_allowlist`. Anything else — other hosts, look-alike
//! suffixes, user-info tricks, other schemes, control characters — becomes `/`.

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
}
