//! Personal data and TOTP secrets at rest, and the rules for what users may type.
//!
//! E-mail addresses and display names are sealed with AES-256-GCM under the active
//! PII data key; TOTP secrets under the TOTP data key. The associated data binds a
//! per-field label and the user id (`rampart-user-email-v1:<id>`), so a ciphertext
//! copied onto another user's row, or into another column, does not open. E-mail
//! lookups use the blind index (HMAC-SHA256 under the BlindIndex data key) of the
//! normalized address.

use std::sync::Arc;

use rampart_core::identity::UserId;
use rampart_core::keys::{DataKeys, KeyPurpose};
use rampart_crypto::blind_index::normalize_email;
use rampart_crypto::envelope::{self, EnvelopeError};
use rampart_crypto::{BlindIndex, BlindIndexKey, KeyId, SecretBytes};

/// Longest e-mail address (RFC 5321 §4.5.3.1.3 path limit minus the brackets).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// Why a field could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Sealing or opening failed: the data was modified, moved to another row, or
    /// sealed under a key this instance does not have.
    #[error("sealed {field} cannot be opened or written")]
    Envelope {
        /// Which field.
        field: &'static str,
        /// The envelope error.
        #[source]
        source: EnvelopeError,
    },
    /// The envelope names a key this instance does not hold for the purpose.
    #[error("sealed {field} names an unknown key")]
    UnknownKey {
        /// Which field.
        field: &'static str,
    },
    /// The plaintext is not UTF-8.
    #[error("sealed {field} is not text")]
    NotText {
        /// Which field.
        field: &'static str,
    },
}

/// The fields sealed per user, each with its purpose and AAD label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    Email,
    DisplayName,
    TotpSecret,
}

impl Field {
    fn purpose(self) -> KeyPurpose {
        match self {
            Self::Email | Self::DisplayName => KeyPurpose::Pii,
            Self::TotpSecret => KeyPurpose::Totp,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Email => "rampart-user-email-v1:",
            Self::DisplayName => "rampart-user-display-name-v1:",
            Self::TotpSecret => "rampart-user-totp-v1:",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::DisplayName => "display name",
            Self::TotpSecret => "TOTP secret",
        }
    }
}

/// Seals and opens per-user fields; computes blind indexes.
pub(crate) struct Sealer {
    keys: Arc<DataKeys>,
    index: BlindIndexKey,
}

impl Sealer {
    pub(crate) fn new(keys: Arc<DataKeys>) -> Self {
        let index = BlindIndexKey::new(keys.active(KeyPurpose::BlindIndex).key.clone());
        Self { keys, index }
    }

    /// Seals `plaintext` for `field` of `user` under the purpose's active key.
    pub(crate) fn seal(
        &self,
        field: Field,
        user: &UserId,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let key = self.keys.active(field.purpose());
        envelope::seal(key, &aad(field, user), plaintext).map_err(|source| SealError::Envelope {
            field: field.name(),
            source,
        })
    }

    /// Opens a sealed field of `user`.
    pub(crate) fn open(
        &self,
        field: Field,
        user: &UserId,
        sealed: &[u8],
    ) -> Result<SecretBytes, SealError> {
        let name = field.name();
        let key_id = envelope::key_id(sealed)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .ok_or(SealError::UnknownKey { field: name })?;
        let key = self
            .keys
            .for_purpose(field.purpose(), &key_id)
            .ok_or(SealError::UnknownKey { field: name })?;
        envelope::open(key, &aad(field, user), sealed).map_err(|source| SealError::Envelope {
            field: name,
            source,
        })
    }

    /// Opens a sealed text field.
    pub(crate) fn open_text(
        &self,
        field: Field,
        user: &UserId,
        sealed: &[u8],
    ) -> Result<String, SealError> {
        let bytes = self.open(field, user, sealed)?;
        String::from_utf8(bytes.expose_secret().to_vec()).map_err(|_| SealError::NotText {
            field: field.name(),
        })
    }

    /// The blind index of an e-mail address (normalized first).
    pub(crate) fn email_index(&self, email: &str) -> BlindIndex {
        self.index.email(email)
    }

    /// The blind index of a login name that matched no account: the lockout subject
    /// for it, so the database never holds the attacker-typed text.
    pub(crate) fn login_name_index(&self, name: &str) -> BlindIndex {
        let normalized = normalize_email(name);
        self.index.index("login-name", normalized.as_bytes())
    }
}

fn aad(field: Field, user: &UserId) -> Vec<u8> {
    let mut aad = field.label().as_bytes().to_vec();
    aad.extend_from_slice(user.as_str().as_bytes());
    aad
}

/// Checks an e-mail address a user typed and returns it trimmed: one `@`, a
/// non-empty local part of at most 64 bytes, a dotted domain, no spaces or control
/// characters, at most [`MAX_EMAIL_LEN`] bytes. Deliverability is not checked.
pub(crate) fn valid_email(text: &str) -> Option<String> {
    let email = text.trim();
    if email.len() > MAX_EMAIL_LEN {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let sane = |s: &str| {
        !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "@<>\"(),;:[]\\".contains(c))
    };
    let domain_ok = sane(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    (sane(local) && local.len() <= 64 && domain_ok).then(|| email.to_owned())
}

/// Checks a display name: trimmed, 1 to [`MAX_DISPLAY_NAME_CHARS`] characters, no
/// control characters (it ends up in headers and logs).
pub(crate) fn valid_display_name(text: &str) -> Option<String> {
    let name = text.trim();
    let count = name.chars().count();
    ((1..=MAX_DISPLAY_NAME_CHARS).contains(&count) && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::testing;

    async fn sealer() -> Sealer {
        Sealer::new(testing::data_keys().await)
    }

    #[tokio::test]
    async fn fields_are_bound_to_user_and_column() {
        let s = sealer().await;
        let alice = UserId::generate();
        let bob = UserId::generate();
        let sealed = s.seal(Field::Email, &alice, b"alice@example.com").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert_eq!(
            s.open_text(Field::Email, &alice, &sealed).unwrap(),
            "alice@example.com"
        );
        assert!(s.open(Field::Email, &bob, &sealed).is_err());
        assert!(s.open(Field::DisplayName, &alice, &sealed).is_err());
        // A TOTP secret is sealed under another purpose's key.
        assert!(s.open(Field::TotpSecret, &alice, &sealed).is_err());
    }

    #[tokio::test]
    async fn email_index_is_normalized_and_separate_from_login_names() {
        let s = sealer().await;
        assert_eq!(
            s.email_index("Alice@Example.com "),
            s.email_index("alice@example.com")
        );
        assert_ne!(
            s.email_index("alice@example.com"),
            s.login_name_index("alice@example.com")
        );
    }

    #[test]
    fn email_and_display_name_rules() {
        assert_eq!(valid_email(" a@b.co ").as_deref(), Some("a@b.co"));
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@.co",
            "a@b.co.",
            "a b@c.de",
            "a@b@c.de",
            "a@b..de",
            "a\r\n@b.de",
        ] {
            assert_eq!(valid_email(bad), None, "{bad:?}");
        }
        assert_eq!(valid_email(&format!("{}@b.de", "a".repeat(65))), None);
        assert_eq!(valid_display_name("  Ada L. ").as_deref(), Some("Ada L."));
        assert_eq!(valid_display_name(" "), None);
        assert_eq!(valid_display_name("a\nb"), None);
        assert_eq!(valid_display_name(&"é".repeat(101)), None);
    }
}
