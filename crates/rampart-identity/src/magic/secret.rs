//! The two random values of a magic link: the code in the mailed link, and the
//! binding value in the requesting browser's cookie.
//!
//! Both are 256 random bits in base64url (43 characters), parsed strictly (exact
//! length, alphabet and canonical encoding), so garbage is refused before any database
//! lookup and a value has exactly one spelling. Only their SHA-256 is stored.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_core::identity::magic::MAGIC_HASH_LEN;
use rampart_crypto::random::{self, RandomError};
use rampart_crypto::{SecretString, hash_token};

/// Random bytes in a code or binding value.
const BYTES: usize = 32;
/// Their base64url length.
const TEXT_LEN: usize = 43;

/// The single-use code in a magic link (`?code=`).
#[derive(Clone)]
pub struct MagicCode(SecretString);

/// The value of the binding cookie set on the browser that asked for a link.
#[derive(Clone)]
pub struct Binding(SecretString);

macro_rules! random_secret {
    ($name:ident, $label:literal) => {
        impl $name {
            /// A new random value.
            pub fn generate() -> Result<Self, RandomError> {
                Ok(Self(SecretString::new(random::token::<BYTES>()?)))
            }

            /// Parses a presented value; `None` unless it is exactly 43 canonical
            /// base64url characters.
            pub fn parse(text: &str) -> Option<Self> {
                is_canonical(text).then(|| Self(SecretString::from(text)))
            }

            /// The text, for the link or the cookie.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// The value stored and compared.
            pub fn hash(&self) -> [u8; MAGIC_HASH_LEN] {
                hash_token(self.0.expose_secret())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($label, "([redacted])"))
            }
        }
    };
}

random_secret!(MagicCode, "MagicCode");
random_secret!(Binding, "Binding");

fn is_canonical(text: &str) -> bool {
    if text.len() != TEXT_LEN {
        return false;
    }
    // The engine refuses non-zero trailing bits, so `AAA…B` and `AAA…A` cannot both
    // decode to the same bytes.
    matches!(URL_SAFE_NO_PAD.decode(text), Ok(bytes) if bytes.len() == BYTES)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn generated_values_parse_and_differ() {
        let a = MagicCode::generate().unwrap();
        let b = MagicCode::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let parsed = MagicCode::parse(a.expose_secret()).unwrap();
        assert_eq!(parsed.hash(), a.hash());
        assert_eq!(a.hash(), hash_token(a.expose_secret()));
        assert!(Binding::parse(Binding::generate().unwrap().expose_secret()).is_some());
    }

    #[test]
    fn garbage_is_refused() {
        let good = MagicCode::generate().unwrap().expose_secret().to_owned();
        let mut non_canonical = good[..42].to_owned();
        // 'B' sets a trailing bit the 32 bytes do not have.
        non_canonical.push('B');
        for bad in [
            "",
            "short",
            &good[..42],
            &format!("{good}A"),
            &format!("{}+", &good[..42]),
            &format!("{}=", &good[..42]),
            &format!("{} ", &good[..42]),
            &non_canonical,
        ] {
            if bad == good {
                continue;
            }
            assert!(MagicCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let code = MagicCode::generate().unwrap();
        let shown = format!("{code:?} {:?}", Binding::generate().unwrap());
        assert!(!shown.contains(code.expose_secret()));
        assert!(shown.contains("[redacted]"));
    }
}
