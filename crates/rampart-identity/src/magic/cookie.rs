//! The binding cookie: ties a magic link to the browser that asked for it.
//!
//! Its name mirrors the session cookie's: `rampart_magic` with the strongest prefix
//! `session.cookie_secure` and `session.domain` allow (`__Host-` by default), and it
//! carries the same `Secure` and `Domain` so it reaches the same hosts. It is always
//! `HttpOnly`, `Path=/` and `SameSite=Strict`: the only request that needs it back is
//! the consume `POST`, which comes from Rampart's own page (same site), or from an
//! API client that keeps its cookies.

use std::time::Duration;

use rampart_config::SessionConfig;

use super::Binding;

/// The cookie's name without prefix.
pub const BINDING_COOKIE_BASE_NAME: &str = "rampart_magic";

/// How the binding cookie is written and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingCookie {
    /// The name, prefix included.
    pub name: String,
    /// `Secure`.
    pub secure: bool,
    /// `Domain`, when sessions are shared with subdomains.
    pub domain: Option<String>,
    /// `Max-Age`: the link lifetime (`magic_link.ttl`).
    pub max_age: Duration,
}

impl BindingCookie {
    /// The cookie for `[session]` and a link lifetime of `ttl`.
    pub fn from_config(session: &SessionConfig, ttl: Duration) -> Self {
        Self {
            name: format!("{}{BINDING_COOKIE_BASE_NAME}", session.cookie_prefix()),
            secure: session.cookie_secure,
            domain: session.domain.clone(),
            max_age: ttl,
        }
    }

    /// `Set-Cookie` carrying `binding`.
    pub fn set(&self, binding: &Binding) -> String {
        self.render(binding.expose_secret(), self.max_age.as_secs())
    }

    /// `Set-Cookie` removing the cookie (after a successful sign-in).
    pub fn clear(&self) -> String {
        self.render("", 0)
    }

    fn render(&self, value: &str, max_age: u64) -> String {
        let mut out = format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict",
            self.name
        );
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        out
    }

    /// The raw value of the cookie from `Cookie` headers, if present (validated by
    /// [`Binding::parse`] later, so a malformed value is one more invalid link).
    pub fn read<'a>(&self, cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<String> {
        for header in cookie_headers {
            let Ok(text) = std::str::from_utf8(header) else {
                continue;
            };
            for pair in text.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim() == self.name {
                    return Some(value.trim().trim_matches('"').to_owned());
                }
            }
        }
        None
    }

    /// The binding from `Cookie` headers if it is well-formed.
    pub fn binding<'a>(&self, cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<Binding> {
        self.read(cookie_headers)
            .as_deref()
            .and_then(Binding::parse)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rampart_config::SameSite;

    use super::*;

    fn session(secure: bool, domain: Option<&str>) -> SessionConfig {
        SessionConfig {
            cookie_secure: secure,
            same_site: SameSite::Lax,
            domain: domain.map(str::to_owned),
            idle_timeout: Duration::from_secs(60),
            absolute_timeout: Duration::from_secs(600),
            cookie_name_override: None,
        }
    }

    #[test]
    fn names_and_attributes_follow_the_session_flags() {
        let ttl = Duration::from_secs(900);
        let binding = Binding::generate().unwrap();
        let host = BindingCookie::from_config(&session(true, None), ttl);
        assert_eq!(host.name, "__Host-rampart_magic");
        assert_eq!(
            host.set(&binding),
            format!(
                "__Host-rampart_magic={}; Path=/; Max-Age=900; HttpOnly; SameSite=Strict; Secure",
                binding.expose_secret()
            )
        );
        let shared = BindingCookie::from_config(&session(true, Some("example.com")), ttl);
        assert_eq!(shared.name, "__Secure-rampart_magic");
        assert!(
            shared
                .set(&binding)
                .ends_with("; Secure; Domain=example.com")
        );
        let plain = BindingCookie::from_config(&session(false, None), ttl);
        assert_eq!(plain.name, "rampart_magic");
        assert!(!plain.set(&binding).contains("Secure"));
        assert_eq!(
            plain.clear(),
            "rampart_magic=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn reading() {
        let cookie = BindingCookie::from_config(&session(true, None), Duration::from_secs(60));
        let binding = Binding::generate().unwrap();
        let header = format!(
            "a=b; rampart_magic=x; __Host-rampart_magic={}",
            binding.expose_secret()
        );
        let headers = [header.as_bytes()];
        assert_eq!(
            cookie.binding(headers.into_iter()).unwrap().hash(),
            binding.hash()
        );
        let garbage = [b"__Host-rampart_magic=nope".as_slice()];
        assert_eq!(cookie.read(garbage.into_iter()).as_deref(), Some("nope"));
        assert!(cookie.binding(garbage.into_iter()).is_none());
        assert!(cookie.read([b"x=y".as_slice()].into_iter()).is_none());
    }
}
