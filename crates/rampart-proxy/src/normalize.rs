//! Path normalization (F-NORMALIZE).
//!
//! The policy decision and the upstream must see the same path. Any difference is a
//! bypass: `/public/..%2fadmin` matched as public but served as `/admin`, or
//! `/admin;x=1` matched by nothing but routed by a Java upstream to `/admin`. So the
//! raw request path is decoded once, dot segments are resolved, and it is re-encoded
//! canonically; the canonical form is used for routing *and* sent upstream. Forms that
//! different servers interpret differently are refused with 400 instead of guessed:
//! encoded `/` and `\`, raw `\`, `;` path parameters, NUL and control bytes, double
//! encoding, invalid or overlong UTF-8, and `..` above the root.

use std::fmt::Write as _;

/// Longest path accepted, in bytes of the raw request target.
pub const MAX_PATH_BYTES: usize = 8 * 1024;

/// Why a path was refused. Every variant is a client error (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (asterisk or authority form).
    #[error("the path must start with '/'")]
    NotAbsolute,
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("the path is too long")]
    TooLong,
    /// `%2F`: an encoded slash is a separator to some servers and not to others.
    #[error("the path contains an encoded '/' (%2F)")]
    EncodedSlash,
    /// `\` or `%5C`: a separator on Windows upstreams.
    #[error("the path contains a backslash")]
    Backslash,
    /// NUL or another control character, raw or encoded.
    #[error("the path contains a control character")]
    ControlCharacter,
    /// `;` starts path parameters in Java servers (`/admin;x=/`), hiding the real path.
    #[error("the path contains ';' path parameters")]
    PathParameter,
    /// `%25` followed by hex digits: decoded twice, it would mean something else.
    #[error("the path is percent-encoded twice")]
    DoubleEncoding,
    /// A `%` not followed by two hex digits.
    #[error("the path contains an invalid percent escape")]
    InvalidEscape,
    /// The decoded bytes are not UTF-8 (including overlong encodings like `%C0%AE`).
    #[error("the path is not valid UTF-8")]
    InvalidUtf8,
    /// `..` would climb above the root.
    #[error("the path climbs above the root")]
    AboveRoot,
    /// A `#` reached the server; fragments are never sent by well-behaved clients.
    #[error("the path contains a fragment")]
    Fragment,
}

/// A normalized path: decoded once, dot segments resolved, duplicate slashes
/// collapsed, re-encoded canonically (unreserved characters literal, everything else
/// `%XX` with upper-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath(String);

impl CanonicalPath {
    /// The canonical, percent-encoded path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this path lies under `prefix` on a segment boundary, ignoring ASCII
    /// case. `prefix` must itself be canonical and have no trailing slash (except the
    /// root `/`). `/health` covers `/health` and `/health/x` but not `/healthz-admin`.
    ///
    /// Case is ignored so that a stricter route on `/admin` also governs `/ADMIN`,
    /// which case-insensitive upstreams would serve as the same resource.
    pub fn starts_with_segment(&self, prefix: &str) -> bool {
        if prefix == "/" {
            return true;
        }
        let path = self.0.as_bytes();
        let prefix = prefix.as_bytes();
        if path.len() < prefix.len() || !path[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return false;
        }
        path.len() == prefix.len() || path[prefix.len()] == b'/'
    }
}

/// Normalizes a raw request path (the part before `?`).
pub fn normalize(raw: &str) -> Result<CanonicalPath, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if raw.contains('#') {
        return Err(PathError::Fragment);
    }
    let mut stack: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    let mut segments = raw[1..].split('/').peekable();
    while let Some(raw_segment) = segments.next() {
        let is_last = segments.peek().is_none();
        let segment = decode_segment(raw_segment)?;
        match segment.as_str() {
            "" => {
                if is_last {
                    trailing_slash = true;
                }
            }
            "." => {
                if is_last {
                    trailing_slash = true;
                }
            }
            ".." => {
                if stack.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                if is_last {
                    trailing_slash = true;
                }
            }
            _ => stack.push(segment),
        }
    }
    let mut out = String::with_capacity(raw.len());
    for segment in &stack {
        out.push('/');
        encode_segment(segment, &mut out);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(CanonicalPath(out))
}

/// Normalizes a configured route prefix: canonical, without trailing slash.
pub fn normalize_prefix(raw: &str) -> Result<String, PathError> {
    let canonical = normalize(raw)?;
    let text = canonical.0;
    if text.len() > 1 && text.ends_with('/') {
        return Ok(text[..text.len() - 1].to_owned());
    }
    Ok(text)
}

/// The path forms an attacker uses to make the policy and the upstream disagree,
/// and what Rampart makes of each: a canonical path both see, or a refusal. Shared
/// by the unit tests below and the gateway's integration tests, which drive every
/// form through the real server to a recording upstream.
pub const PATH_FORMS: &[(&str, Result<&str, PathError>)] = &[
    // Plain and canonical forms.
    ("/", Ok("/")),
    ("/a/b", Ok("/a/b")),
    ("/a/b/", Ok("/a/b/")),
    // Dot segments, raw and encoded.
    ("/a/./b", Ok("/a/b")),
    ("/a/../b", Ok("/b")),
    ("/public/../admin", Ok("/admin")),
    ("/a/b/..", Ok("/a/")),
    ("/a/.", Ok("/a/")),
    ("/%2e/admin", Ok("/admin")),
    ("/public/%2e%2e/admin", Ok("/admin")),
    ("/public/%2E%2E/admin", Ok("/admin")),
    ("/public/.%2e/admin", Ok("/admin")),
    ("/..", Err(PathError::AboveRoot)),
    ("/../etc/passwd", Err(PathError::AboveRoot)),
    ("/a/../../b", Err(PathError::AboveRoot)),
    ("/%2e%2e/admin", Err(PathError::AboveRoot)),
    // Duplicate slashes.
    ("//admin", Ok("/admin")),
    ("/public//admin", Ok("/public/admin")),
    ("///", Ok("/")),
    // Encoded separators and backslashes.
    ("/public%2fadmin", Err(PathError::EncodedSlash)),
    ("/public%2Fadmin", Err(PathError::EncodedSlash)),
    ("/public/..%2fadmin", Err(PathError::EncodedSlash)),
    ("/public%5cadmin", Err(PathError::Backslash)),
    ("/public%5Cadmin", Err(PathError::Backslash)),
    ("/public\\admin", Err(PathError::Backslash)),
    ("/public/..\\admin", Err(PathError::Backslash)),
    // Double encoding.
    ("/public/%252e%252e/admin", Err(PathError::DoubleEncoding)),
    ("/%252fadmin", Err(PathError::DoubleEncoding)),
    ("/100%25", Ok("/100%25")),
    // Path parameters (Java servers' `;jsessionid` confusion).
    ("/admin;x=1", Err(PathError::PathParameter)),
    ("/public/..;/admin", Err(PathError::PathParameter)),
    ("/admin%3bx", Err(PathError::PathParameter)),
    // NUL and control characters.
    ("/admin%00.html", Err(PathError::ControlCharacter)),
    ("/admin%0a", Err(PathError::ControlCharacter)),
    ("/admin%7f", Err(PathError::ControlCharacter)),
    // Invalid and overlong UTF-8.
    ("/%c0%ae%c0%ae/admin", Err(PathError::InvalidUtf8)),
    ("/%c0%af", Err(PathError::InvalidUtf8)),
    ("/%ff", Err(PathError::InvalidUtf8)),
    ("/caf%c3%a9", Ok("/caf%C3%A9")),
    // Broken escapes.
    ("/a%", Err(PathError::InvalidEscape)),
    ("/a%2", Err(PathError::InvalidEscape)),
    ("/a%zz", Err(PathError::InvalidEscape)),
    // Unreserved characters needlessly encoded are decoded.
    ("/%61dmin", Ok("/admin")),
    ("/a%2Db", Ok("/a-b")),
    // Case is preserved (matching ignores it, see `starts_with_segment`).
    ("/ADMIN", Ok("/ADMIN")),
    // Reserved characters encoded stay encoded; literal query marks are data.
    ("/a%3fb", Ok("/a%3Fb")),
    ("/a%23b", Ok("/a%23b")),
    // Fragments and non-absolute forms.
    ("/a#frag", Err(PathError::Fragment)),
    ("*", Err(PathError::NotAbsolute)),
    ("admin", Err(PathError::NotAbsolute)),
];

fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex_value),
                    bytes.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return Err(PathError::InvalidEscape);
                };
                let value = (hi << 4) | lo;
                match value {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::Backslash),
                    b';' => return Err(PathError::PathParameter),
                    b'%' if is_hex_pair(bytes.get(i + 3..i + 5)) => {
                        return Err(PathError::DoubleEncoding);
                    }
                    _ => {}
                }
                decoded.push(value);
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            _ => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    if decoded.iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)
}

fn is_hex_pair(pair: Option<&[u8]>) -> bool {
    matches!(pair, Some([a, b]) if hex_value(*a).is_some() && hex_value(*b).is_some())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Characters left literal in a canonical segment: RFC 3986 `pchar` minus `;` (which is
/// refused) and minus `%` (always encoded).
fn is_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn encode_segment(segment: &str, out: &mut String) {
    for b in segment.bytes() {
        if is_literal(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}")).0
    }

    #[test]
    fn prefix_boundaries_are_segments() {
        let path = normalize("/healthz-admin").unwrap();
        assert!(!path.starts_with_segment("/health"));
        assert!(normalize("/health").unwrap().starts_with_segment("/health"));
        assert!(
            normalize("/health/x")
                .unwrap()
                .starts_with_segment("/health")
        );
        assert!(
            normalize("/ADMIN/users")
                .unwrap()
                .starts_with_segment("/admin")
        );
        assert!(normalize("/anything").unwrap().starts_with_segment("/"));
    }

    #[test]
    fn prefixes_lose_their_trailing_slash() {
        assert_eq!(normalize_prefix("/api/").unwrap(), "/api");
        assert_eq!(normalize_prefix("/").unwrap(), "/");
    }

    #[test]
    fn path_forms_normalize_or_are_refused() {
        assert!(PATH_FORMS.len() >= 40);
        for (raw, expected) in PATH_FORMS {
            let actual = normalize(raw).map(|p| p.0);
            let expected = expected.map(str::to_owned);
            assert_eq!(actual, expected, "path {raw:?}");
        }
    }

    #[test]
    fn normalization_is_idempotent() {
        for (raw, expected) in PATH_FORMS {
            if expected.is_ok() {
                let once = normalize(raw).unwrap();
                assert_eq!(normalize(once.as_str()).unwrap(), once, "path {raw:?}");
            }
        }
    }

    #[test]
    fn overlong_paths_are_refused() {
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(normalize(&long), Err(PathError::TooLong));
    }

    #[test]
    fn encoding_is_canonical() {
        assert_eq!(ok("/a%41"), "/aA");
        assert_eq!(ok("/a%7e"), "/a~");
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/a%3fb"), "/a%3Fb");
        assert_eq!(ok("/a%20b"), "/a%20b");
    }
}
