//! Secret newtypes.
//!
//! A secret can be moved and dropped but not printed, serialized or compared with
//! `==`. Its memory is zeroized on drop. Reading it needs an explicit
//! [`SecretString::expose_secret`], which makes every use greppable.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// A secret UTF-8 string: a password, a token, a database URL with credentials.
///
/// `Debug` and `Display` print `[redacted]`; the buffer is zeroized on drop.
#[derive(Clone, Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps an owned string. The caller's `String` is moved, not copied.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret value. Call sites are the audit trail of where secrets flow.
    pub fn expose_secret(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Compares with `other` in time independent of where the two differ.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(self.0.as_bytes(), other)
    }

    /// Removes surrounding whitespace in place (files usually end in a newline).
    pub fn trimmed(self) -> Self {
        let trimmed = self.0.trim();
        if trimmed.len() == self.0.len() {
            return self;
        }
        Self::new(trimmed.to_owned())
    }

    /// The last `n` characters, for masked display such as `••••abcd`.
    ///
    /// Returns nothing for short secrets: showing 4 characters of an 8-character
    /// secret would reveal half of it.
    pub fn masked(&self, n: usize) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < n.saturating_mul(4) {
            return "••••".to_owned();
        }
        let tail: String = chars[chars.len() - n..].iter().collect();
        format!("••••{tail}")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// Secret bytes: key material, raw tokens.
///
/// `Debug` prints the length only; the buffer is zeroized on drop.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps an owned buffer.
    pub fn new(value: Vec<u8>) -> Self {
        Self(Zeroizing::new(value))
    }

    /// Copies a slice into a new secret buffer.
    pub fn from_slice(value: &[u8]) -> Self {
        Self::new(value.to_vec())
    }

    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in constant time.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(self.0.as_slice(), other)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

/// A fixed-size secret array, zeroized on drop. Used for keys whose size is part
/// of their type (AES-256 keys, Ed25519 seeds, the master key).
pub struct SecretArray<const N: usize>(Box<[u8; N]>);

impl<const N: usize> SecretArray<N> {
    /// Takes ownership of `bytes`; the caller's copy should be zeroized by the caller.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(Box::new(bytes))
    }

    /// The key bytes.
    pub fn expose_secret(&self) -> &[u8; N] {
        &self.0
    }

    /// Compares with `other` in constant time.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(self.0.as_slice(), other)
    }
}

impl<const N: usize> Clone for SecretArray<N> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<const N: usize> Drop for SecretArray<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> fmt::Debug for SecretArray<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretArray<{N}>([redacted])")
    }
}

/// Constant-time equality of two byte strings.
///
/// The length is not secret (it is compared first, in variable time); the contents
/// are compared without an early exit, so timing does not reveal the first
/// differing byte.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = SecretString::from("hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "SecretString([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        let b = SecretBytes::from_slice(b"key-material");
        assert!(!format!("{b:?}").contains("key"));
        let a = SecretArray::new([7u8; 32]);
        assert!(!format!("{a:?}").contains('7'));
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(SecretString::from("x").ct_eq(b"x"));
    }

    #[test]
    fn masked_shows_only_a_short_tail() {
        assert_eq!(
            SecretString::from("sk_live_0123456789abcd").masked(4),
            "••••abcd"
        );
        assert_eq!(SecretString::from("short").masked(4), "••••");
    }

    #[test]
    fn trimmed_removes_trailing_newline() {
        assert_eq!(SecretString::from("abc\n").trimmed().expose_secret(), "abc");
    }
}
