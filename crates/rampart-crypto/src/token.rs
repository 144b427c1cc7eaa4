//! Opaque credentials: API tokens, session ids, refresh tokens, recovery codes.
//!
//! All are random bearer secrets. The database stores only their SHA-256
//! ([`hash_token`]): a plain fast hash is right here because the inputs carry 80 to
//! 256 bits of entropy, so there is nothing to brute-force (unlike passwords), and a
//! lookup by hash must be fast. Comparisons of hashes use [`token_hash_eq`].
//!
//! Presented tokens are parsed strictly — exact prefix, exact length, exact alphabet,
//! canonical encoding — so garbage is refused before any database lookup and one
//! secret has exactly one spelling.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::random::{self, RandomError};
use crate::secret::{SecretString, ct_eq};

/// Prefix of API tokens: makes them recognizable to secret scanners and to people.
pub const API_TOKEN_PREFIX: &str = "rmp_";

/// Random bytes in API tokens, session ids and refresh tokens (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// Length of the base64url body of a 32-byte token.
const BODY_LEN: usize = 43;

/// Total length of an API token: prefix plus 43 base64url characters.
pub const API_TOKEN_LEN: usize = API_TOKEN_PREFIX.len() + BODY_LEN;

/// Number of recovery codes issued at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Characters of entropy in a recovery code: 16 × 5 bits = 80 bits.
const RECOVERY_CODE_CHARS: usize = 16;

// ASVS V6.5.2 asks for at least 64 bits of entropy per recovery code.
const _: () = assert!(
    RECOVERY_CODE_CHARS * 5 >= 64,
    "recovery codes need >= 64 bits"
);

/// Characters per dash-separated group when displayed.
const RECOVERY_GROUP_LEN: usize = 4;

/// Crockford's base32 alphabet, lower case: no `i`, `l`, `o`, `u`, so codes read
/// aloud or copied by hand are unambiguous. 32 symbols, so `byte & 31` is uniform.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Longest raw input considered when parsing a recovery code (spaces and dashes
/// included); anything longer is refused unread.
const MAX_RECOVERY_INPUT: usize = 64;

/// Length of a token hash.
pub const TOKEN_HASH_LEN: usize = 32;

/// Why a presented token was refused. Never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token does not start with the expected prefix.
    #[error("token has the wrong prefix")]
    WrongPrefix,
    /// The token has the wrong length.
    #[error("token has the wrong length")]
    WrongLength,
    /// The token contains characters outside its alphabet, or is not canonically
    /// encoded.
    #[error("token contains invalid characters")]
    InvalidEncoding,
}

/// An API token: `rmp_` followed by 256 random bits in base64url.
#[derive(Clone)]
pub struct ApiToken(SecretString);

impl ApiToken {
    /// A new random token. Show it to the user once; store [`Self::hash`].
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(SecretString::new(format!(
            "{API_TOKEN_PREFIX}{}",
            random::token::<TOKEN_BYTES>()?
        ))))
    }

    /// Parses a presented token: exact prefix, length and canonical base64url body.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let body = text
            .strip_prefix(API_TOKEN_PREFIX)
            .ok_or(TokenError::WrongPrefix)?;
        check_random_body(body)?;
        Ok(Self(SecretString::from(text)))
    }

    /// The token text.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value to store and look up.
    pub fn hash(&self) -> [u8; TOKEN_HASH_LEN] {
        hash_token(self.0.expose_secret())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({API_TOKEN_PREFIX}[redacted])")
    }
}

/// A session id: 256 random bits in base64url (43 characters), for the session
/// cookie.
#[derive(Clone)]
pub struct SessionId(SecretString);

impl SessionId {
    /// A new random session id.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(SecretString::new(random::token::<TOKEN_BYTES>()?)))
    }

    /// Parses a presented session id (e.g. from a cookie).
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        check_random_body(text)?;
        Ok(Self(SecretString::from(text)))
    }

    /// The id text, for the cookie.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value to store and look up.
    pub fn hash(&self) -> [u8; TOKEN_HASH_LEN] {
        hash_token(self.0.expose_secret())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// A refresh token: 256 random bits in base64url (43 characters).
#[derive(Clone)]
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// A new random refresh token.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(SecretString::new(random::token::<TOKEN_BYTES>()?)))
    }

    /// Parses a presented refresh token.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        check_random_body(text)?;
        Ok(Self(SecretString::from(text)))
    }

    /// The token text.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value to store and look up.
    pub fn hash(&self) -> [u8; TOKEN_HASH_LEN] {
        hash_token(self.0.expose_secret())
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// A single-use recovery code: 80 random bits as 16 Crockford base32 characters,
/// shown as four dash-separated groups (`7k2m-q9xd-4hwp-0tcz`).
#[derive(Clone)]
pub struct RecoveryCode(SecretString);

impl RecoveryCode {
    /// Parses a code as a person might type it: case-insensitive, dashes and spaces
    /// ignored, and the Crockford look-alikes `o` → `0`, `i`/`l` → `1` accepted.
    /// Anything else outside the alphabet, or a wrong number of characters, is
    /// refused.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.len() > MAX_RECOVERY_INPUT {
            return Err(TokenError::WrongLength);
        }
        let mut symbols = Zeroizing::new(Vec::with_capacity(RECOVERY_CODE_CHARS));
        for c in text.chars() {
            let c = match c.to_ascii_lowercase() {
                '-' | ' ' => continue,
                'o' => '0',
                'i' | 'l' => '1',
                c => c,
            };
            let byte = u8::try_from(c).map_err(|_| TokenError::InvalidEncoding)?;
            if !RECOVERY_ALPHABET.contains(&byte) {
                return Err(TokenError::InvalidEncoding);
            }
            symbols.push(byte);
        }
        if symbols.len() != RECOVERY_CODE_CHARS {
            return Err(TokenError::WrongLength);
        }
        Ok(Self(format_recovery_code(&symbols)))
    }

    /// The canonical form, `xxxx-xxxx-xxxx-xxxx`, lower case.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value to store and look up (hash of the canonical form, so any accepted
    /// spelling of the code matches).
    pub fn hash(&self) -> [u8; TOKEN_HASH_LEN] {
        hash_token(self.0.expose_secret())
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

/// A fresh set of [`RECOVERY_CODE_COUNT`] recovery codes.
pub fn generate_recovery_codes() -> Result<Vec<RecoveryCode>, RandomError> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let mut raw = Zeroizing::new([0u8; RECOVERY_CODE_CHARS]);
            random::fill(raw.as_mut_slice())?;
            let symbols: Zeroizing<Vec<u8>> = Zeroizing::new(
                raw.iter()
                    .map(|b| RECOVERY_ALPHABET[usize::from(b & 31)])
                    .collect(),
            );
            Ok(RecoveryCode(format_recovery_code(&symbols)))
        })
        .collect()
}

/// SHA-256 of a token's text: what the database stores instead of the token.
pub fn hash_token(token: &str) -> [u8; TOKEN_HASH_LEN] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two token hashes in constant time.
pub fn token_hash_eq(a: &[u8; TOKEN_HASH_LEN], b: &[u8; TOKEN_HASH_LEN]) -> bool {
    ct_eq(a, b)
}

/// 43 base64url characters that decode canonically to 32 bytes.
fn check_random_body(body: &str) -> Result<(), TokenError> {
    if body.len() != BODY_LEN {
        return Err(TokenError::WrongLength);
    }
    let mut decoded = Zeroizing::new([0u8; TOKEN_BYTES]);
    // decode_slice refuses characters outside the URL-safe alphabet, padding and
    // non-zero trailing bits (the last of 43 characters carries 2 unused bits).
    match URL_SAFE_NO_PAD.decode_slice(body, decoded.as_mut_slice()) {
        Ok(TOKEN_BYTES) => Ok(()),
        _ => Err(TokenError::InvalidEncoding),
    }
}

fn format_recovery_code(symbols: &[u8]) -> SecretString {
    let mut out =
        String::with_capacity(RECOVERY_CODE_CHARS + RECOVERY_CODE_CHARS / RECOVERY_GROUP_LEN);
    for (i, symbol) in symbols.iter().enumerate() {
        if i > 0 && i % RECOVERY_GROUP_LEN == 0 {
            out.push('-');
        }
        out.push(char::from(*symbol));
    }
    SecretString::new(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn api_tokens_have_prefix_length_and_entropy() {
        let t = ApiToken::generate().unwrap();
        let text = t.expose_secret();
        assert!(text.starts_with("rmp_"));
        assert_eq!(text.len(), API_TOKEN_LEN);
        assert_eq!(URL_SAFE_NO_PAD.decode(&text[4..]).unwrap().len(), 32);
        assert_ne!(text, ApiToken::generate().unwrap().expose_secret());
        let parsed = ApiToken::parse(text).unwrap();
        assert_eq!(parsed.hash(), t.hash());
    }

    #[test]
    fn api_token_parsing_is_strict() {
        let good = ApiToken::generate().unwrap().expose_secret().to_owned();
        let body = &good[4..];
        let cases = [
            (format!("rmx_{body}"), TokenError::WrongPrefix),
            (format!("RMP_{body}"), TokenError::WrongPrefix),
            (body.to_owned(), TokenError::WrongPrefix),
            (String::new(), TokenError::WrongPrefix),
            ("rmp_".to_owned(), TokenError::WrongLength),
            (format!("{good}A"), TokenError::WrongLength),
            (good[..good.len() - 1].to_owned(), TokenError::WrongLength),
            (format!(" {good}"), TokenError::WrongPrefix),
            (format!("rmp_+{}", &body[1..]), TokenError::InvalidEncoding),
            (format!("rmp_/{}", &body[1..]), TokenError::InvalidEncoding),
            (format!("rmp_={}", &body[1..]), TokenError::InvalidEncoding),
            (format!("rmp_é{}", &body[2..]), TokenError::InvalidEncoding),
        ];
        for (case, expected) in cases {
            assert_eq!(ApiToken::parse(&case).err(), Some(expected), "{case:?}");
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // 32 zero bytes encode as 42 'A's and a final 'A'; 'B' differs only in the
        // two unused bits and must not be a second spelling of the same token.
        let canonical = format!("rmp_{}", "A".repeat(43));
        assert!(ApiToken::parse(&canonical).is_ok());
        let sloppy = format!("rmp_{}B", "A".repeat(42));
        assert_eq!(
            ApiToken::parse(&sloppy).err(),
            Some(TokenError::InvalidEncoding)
        );
    }

    #[test]
    fn session_ids_and_refresh_tokens() {
        let s = SessionId::generate().unwrap();
        assert_eq!(s.expose_secret().len(), 43);
        assert_eq!(
            SessionId::parse(s.expose_secret()).unwrap().hash(),
            s.hash()
        );
        let r = RefreshToken::generate().unwrap();
        assert_eq!(
            RefreshToken::parse(r.expose_secret()).unwrap().hash(),
            r.hash()
        );
        for bad in [
            "",
            "short",
            &"A".repeat(44),
            &format!("{}!", "A".repeat(42)),
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
            assert!(RefreshToken::parse(bad).is_err(), "{bad:?}");
        }
        // An API token is not a session id.
        let api = ApiToken::generate().unwrap();
        assert!(SessionId::parse(api.expose_secret()).is_err());
    }

    #[test]
    fn recovery_codes_are_grouped_distinct_and_80_bits() {
        let codes = generate_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let distinct: HashSet<&str> = codes.iter().map(RecoveryCode::expose_secret).collect();
        assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
        for code in &codes {
            let text = code.expose_secret();
            assert_eq!(text.len(), 19, "{text}");
            let groups: Vec<&str> = text.split('-').collect();
            assert_eq!(groups.len(), 4);
            assert!(groups.iter().all(|g| g.len() == 4));
            assert!(
                text.bytes()
                    .all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b))
            );
            assert_eq!(RecoveryCode::parse(text).unwrap().hash(), code.hash());
        }
    }

    #[test]
    fn recovery_codes_parse_like_people_type_them() {
        let canonical = RecoveryCode::parse("7k2m-q9xd-4hwp-0tc1").unwrap();
        for typed in [
            "7K2M-Q9XD-4HWP-0TC1",
            "7k2mq9xd4hwp0tc1",
            "7k2m q9xd 4hwp 0tc1",
            "7k2m-q9xd-4hwp-OtcI",
            "7k2m-q9xd-4hwp-0tcL",
        ] {
            let parsed = RecoveryCode::parse(typed).unwrap();
            assert_eq!(parsed.expose_secret(), "7k2m-q9xd-4hwp-0tc1", "{typed}");
            assert!(token_hash_eq(&parsed.hash(), &canonical.hash()));
        }
        for (bad, expected) in [
            ("7k2m-q9xd-4hwp-0tc", TokenError::WrongLength),
            ("7k2m-q9xd-4hwp-0tc12", TokenError::WrongLength),
            ("7k2m-q9xd-4hwp-0tcu", TokenError::InvalidEncoding),
            ("7k2m_q9xd_4hwp_0tc1", TokenError::InvalidEncoding),
            ("7k2m-q9xd-4hwp-0tcé", TokenError::InvalidEncoding),
            ("", TokenError::WrongLength),
        ] {
            assert_eq!(RecoveryCode::parse(bad).err(), Some(expected), "{bad:?}");
        }
        let long = "-".repeat(MAX_RECOVERY_INPUT + 1);
        assert_eq!(
            RecoveryCode::parse(&long).err(),
            Some(TokenError::WrongLength)
        );
    }

    #[test]
    fn hashing_and_comparison() {
        // SHA-256("abc"), FIPS 180-2 Appendix B.1.
        assert_eq!(
            hex::encode(hash_token("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let a = hash_token("rmp_a");
        let b = hash_token("rmp_b");
        assert!(token_hash_eq(&a, &a));
        assert!(!token_hash_eq(&a, &b));
    }

    #[test]
    fn debug_is_redacted() {
        let api = ApiToken::generate().unwrap();
        assert_eq!(format!("{api:?}"), "ApiToken(rmp_[redacted])");
        let s = SessionId::generate().unwrap();
        assert!(!format!("{s:?}").contains(s.expose_secret()));
        let codes = generate_recovery_codes().unwrap();
        assert!(!format!("{:?}", codes[0]).contains(codes[0].expose_secret()));
    }

    proptest::proptest! {
        #[test]
        fn prop_parsers_never_panic(text in ".{0,80}") {
            let _ = ApiToken::parse(&text);
            let _ = SessionId::parse(&text);
            let _ = RefreshToken::parse(&text);
            let _ = RecoveryCode::parse(&text);
        }

        #[test]
        fn prop_any_32_bytes_round_trip(bytes in proptest::prelude::any::<[u8; 32]>()) {
            let text = format!("{API_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
            let parsed = ApiToken::parse(&text).unwrap();
            proptest::prop_assert_eq!(parsed.expose_secret(), text.as_str());
            proptest::prop_assert!(SessionId::parse(&text[4..]).is_ok());
        }
    }
}
