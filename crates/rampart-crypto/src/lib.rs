//! Rampart's cryptography.
//!
//! Everything here is pure computation over bytes and files: no HTTP, no SQL, no
//! configuration format. Secrets are newtypes ([`SecretString`], [`SecretBytes`],
//! [`SecretArray`]) that redact themselves in `Debug`/`Display`, zeroize on drop, and
//! must be exposed explicitly. Primitives come from RustCrypto and friends; nothing
//! here implements a primitive, it only composes them.
//!
//! | module          | what                                                        |
//! |-----------------|-------------------------------------------------------------|
//! | [`master_key`]  | the root key, from hex or a private file                    |
//! | [`kdf`]         | HKDF-SHA256: one key per purpose, key check value           |
//! | [`envelope`]    | AES-256-GCM envelopes with key ids; data-key wrapping       |
//! | [`password`]    | Argon2id PHC hashes, rehash detection, new-password policy  |
//! | [`jwt`]         | Ed25519 JWT keyring: sign, strict verify, rotate, JWKS      |
//! | [`totp`]        | RFC 6238 codes with skew window and replay refusal          |
//! | [`blind_index`] | HMAC-SHA256 lookup index for encrypted e-mail addresses     |
//! | [`token`]       | API tokens, session ids, refresh tokens, recovery codes     |
//! | [`random`]      | the OS CSPRNG                                               |
//! | [`secret`]      | secret newtypes and constant-time comparison                |
//! | [`secret_file`] | reading secrets from files with mode/owner checks           |

pub mod blind_index;
pub mod envelope;
pub mod jwt;
pub mod kdf;
pub mod master_key;
pub mod password;
pub mod random;
pub mod secret;
pub mod secret_file;
pub mod signing;
pub mod token;
pub mod totp;

pub use blind_index::{BlindIndex, BlindIndexKey};
pub use envelope::{DataKey, EnvelopeError, KeyId};
pub use jwt::{JwtError, JwtSigningKey, Keyring, PreviousKey, Validation};
pub use kdf::{derive_key, key_check_value};
pub use master_key::{MasterKey, MasterKeyError, MasterKeyKind};
pub use password::{
    Argon2Limits, Argon2Params, PasswordConfig, PasswordError, PasswordHasher, PasswordPolicyError,
    Pepper, PhcHash, Verification, check_new_password,
};
pub use random::RandomError;
pub use secret::{SecretArray, SecretBytes, SecretString, ct_eq};
pub use secret_file::SecretFileError;
pub use token::{
    ApiToken, RecoveryCode, RefreshToken, SessionId, TokenError, hash_token, token_hash_eq,
};
pub use totp::{Totp, TotpAlgorithm, TotpCheck, TotpError, TotpSecret};

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the server keeps in shared state must cross threads.
    #[test]
    fn shared_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MasterKey>();
        assert_send_sync::<DataKey>();
        assert_send_sync::<PasswordHasher>();
        assert_send_sync::<Keyring>();
        assert_send_sync::<Totp>();
        assert_send_sync::<BlindIndexKey>();
    }
}
