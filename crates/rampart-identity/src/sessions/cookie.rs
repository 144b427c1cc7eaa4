//! The session cookie: its `Set-Cookie` value and reading it back from `Cookie`.

use std::time::Duration;

use rampart_config::{SameSite, SessionConfig};
use rampart_crypto::token::SessionId;

/// How the session cookie is written (from `[session]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// The cookie's name, with the prefix its flags call for (`__Host-` by default).
    pub name: String,
    /// `Secure` (false only in dev over plain HTTP).
    pub secure: bool,
    /// `SameSite`.
    pub same_site: SameSite,
    /// `Domain`, when the session is shared with subdomains.
    pub domain: Option<String>,
}

impl CookieSettings {
    /// The settings of `[session]`.
    pub fn from_config(config: &SessionConfig) -> Self {
        Self {
            name: config.cookie_name().into_owned(),
            secure: config.cookie_secure,
            same_site: config.same_site,
            domain: config.domain.clone(),
        }
    }

    /// `Set-Cookie` for a new session id that the browser keeps for `max_age` (the
    /// absolute timeout: the cookie never outlives the session).
    ///
    /// `HttpOnly` keeps it from scripts (XSS cannot read it), `Path=/` and no `Domain`
    /// make it host-only, as the `__Host-` prefix demands.
    pub fn set(&self, id: &SessionId, max_age: Duration) -> String {
        self.render(id.expose_secret(), max_age.as_secs())
    }

    /// `Set-Cookie` that removes the cookie (logout, ended session).
    pub fn clear(&self) -> String {
        self.render("", 0)
    }

    fn render(&self, value: &str, max_age: u64) -> String {
        let mut out = format!("{}={value}; Path=/; Max-Age={max_age}; HttpOnly", self.name);
        out.push_str(match self.same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
            SameSite::None => "; SameSite=None",
        });
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        out
    }

    /// The session id from the request's `Cookie` headers: the first cookie with
    /// this name whose value is a well-formed session id. Malformed values are
    /// ignored (a cookie is client input), so garbage never reaches the database.
    pub fn read<'a>(&self, cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<SessionId> {
        for header in cookie_headers {
            let Ok(text) = std::str::from_utf8(header) else {
                continue;
            };
            for pair in text.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim() != self.name {
                    continue;
                }
                let value = value.trim().trim_matches('"');
                if let Ok(id) = SessionId::parse(value) {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Whether any `Cookie` header carries a cookie of this name at all.
    pub fn present<'a>(&self, cookie_headers: impl Iterator<Item = &'a [u8]>) -> bool {
        cookie_headers
            .filter_map(|h| std::str::from_utf8(h).ok())
            .flat_map(|t| t.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, _)| name.trim() == self.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn settings() -> CookieSettings {
        CookieSettings {
            name: "__Host-rampart_session".to_owned(),
            secure: true,
            same_site: SameSite::Lax,
            domain: None,
        }
    }

    #[test]
    fn host_cookie_attributes() {
        let id = SessionId::generate().unwrap();
        let header = settings().set(&id, Duration::from_secs(3600));
        assert_eq!(
            header,
            format!(
                "__Host-rampart_session={}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure",
                id.expose_secret()
            )
        );
        assert!(!header.contains("Domain"));
        let cleared = settings().clear();
        assert!(cleared.starts_with("__Host-rampart_session=; Path=/; Max-Age=0;"));
    }

    #[test]
    fn domain_and_same_site_variants() {
        let s = CookieSettings {
            name: "__Secure-rampart_session".to_owned(),
            secure: true,
            same_site: SameSite::Strict,
            domain: Some("example.com".to_owned()),
        };
        let header = s.clear();
        assert!(header.contains("; SameSite=Strict; Secure; Domain=example.com"));
        let dev = CookieSettings {
            name: "rampart_session".to_owned(),
            secure: false,
            same_site: SameSite::None,
            domain: None,
        };
        assert!(!dev.clear().contains("Secure"));
    }

    #[test]
    fn reads_the_named_well_formed_cookie_only() {
        let id = SessionId::generate().unwrap();
        let good = format!("a=b; __Host-rampart_session={}; c=d", id.expose_secret());
        let read = settings().read([good.as_bytes()].into_iter()).unwrap();
        assert_eq!(read.expose_secret(), id.expose_secret());
        // Look-alike names and malformed values are ignored.
        for bad in [
            format!("rampart_session={}", id.expose_secret()),
            "__Host-rampart_session=../../etc".to_owned(),
            "__Host-rampart_session=".to_owned(),
        ] {
            assert!(
                settings().read([bad.as_bytes()].into_iter()).is_none(),
                "{bad}"
            );
        }
        let two = format!(
            "__Host-rampart_session=garbage; __Host-rampart_session={}",
            id.expose_secret()
        );
        assert!(settings().read([two.as_bytes()].into_iter()).is_some());
        assert!(settings().present([b"__Host-rampart_session=x".as_slice()].into_iter()));
    }

    proptest::proptest! {
        #[test]
        fn reading_any_header_never_panics(header in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = settings().read([header.as_slice()].into_iter());
            let _ = settings().present([header.as_slice()].into_iter());
        }

        #[test]
        fn set_then_read_round_trips(other in "[a-z]{1,8}=[a-zA-Z0-9]{0,12}") {
            let id = SessionId::generate().unwrap();
            let line = settings().set(&id, Duration::from_secs(60));
            let pair = line.split(';').next().unwrap();
            let header = format!("{other}; {pair}");
            let read = settings().read([header.as_bytes()].into_iter()).unwrap();
            proptest::prop_assert_eq!(read.expose_secret(), id.expose_secret());
        }
    }
}
