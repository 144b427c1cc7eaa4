//! Password hashing (Argon2id, PHC strings) and the policy for new passwords.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
//! parameters travel with each hash and can be raised later: a successful login
//! against a hash made with other parameters reports
//! [`Verification::ValidNeedsRehash`] and the caller stores a fresh hash.
//!
//! Threats this module handles:
//!
//! - **Stored-hash denial of service.** A PHC string names its own cost; one row with
//!   `m=4294967295` would make a login allocate 4 TiB. Parameters above
//!   [`Argon2Limits`] are refused *before* any hashing.
//! - **Unbounded input.** Passwords longer than [`MAX_PASSWORD_BYTES`] are refused, so
//!   the cost of a login attempt is bounded (Argon2 pre-hashes the password, but the
//!   bytes still arrive, are copied and hashed).
//! - **User enumeration by timing.** [`PasswordHasher::dummy_verify`] costs the same
//!   as a real verification and is used when the user does not exist (ASVS V6.3.8).
//! - **Database-only compromise.** An optional pepper (Argon2's secret input `K`)
//!   kept outside the database makes stolen hashes useless to crack without it. Its
//!   id is recorded in the PHC `keyid` field (metadata only; not part of the hash),
//!   so the pepper can be rotated while old hashes keep verifying.
//!
//! Passwords are hashed exactly as typed: no trimming, case folding, normalization or
//! truncation (ASVS V6.2.8). Hashing is synchronous and CPU-heavy; callers run it on a
//! bounded blocking pool.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, PasswordHasher as _, Version};
use zeroize::Zeroizing;

use crate::random::{self, RandomError};
use crate::secret::{SecretBytes, SecretString, ct_eq};

/// Longest password accepted, in bytes. Bounds the work an attacker can request per
/// login attempt while leaving room for any passphrase a person would type.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Default minimum length of a new password, in characters (Unicode scalar values).
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 12;

/// Salt length for new hashes (RFC 9106 §3.1 recommends 128 bits).
pub const SALT_LEN: usize = 16;

/// Hash (tag) length for new hashes.
pub const HASH_LEN: usize = 32;

/// Longest stored PHC string considered. Real ones are ~100 bytes; anything much longer
/// is corrupt or hostile and is refused without parsing.
const MAX_PHC_LEN: usize = 256;

/// Shortest pepper accepted, in bytes.
const MIN_PEPPER_LEN: usize = 16;

/// The password the dummy hash is made from. Its value does not matter: the dummy
/// hash protects nothing, it only has to cost the same as a real one.
const DUMMY_PASSWORD: &str = "rampart-dummy-password-for-unknown-users";

/// The bundled deny list, most common first. See the file header for its source.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Why hashing or verification failed. Messages never contain the password or the
/// stored hash.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password is longer than {max_bytes} bytes")]
    TooLong {
        /// The limit.
        max_bytes: usize,
    },
    /// The stored hash is not a well-formed Argon2 PHC string.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// The stored hash uses an algorithm other than Argon2 (bcrypt, scrypt, ...).
    #[error("stored password hash uses an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The stored hash names an Argon2 version other than 0x10 or 0x13.
    #[error("stored password hash uses an unsupported Argon2 version")]
    UnsupportedVersion,
    /// The stored hash asks for more work than the configured maxima allow. Refused
    /// before hashing: it is either corrupt or an attempt to exhaust the server.
    #[error(
        "stored password hash asks for m={memory_kib} KiB, t={iterations}, p={parallelism}, above the configured maxima"
    )]
    ExceedsLimits {
        /// Memory requested, KiB.
        memory_kib: u32,
        /// Passes requested.
        iterations: u32,
        /// Lanes requested.
        parallelism: u32,
    },
    /// The stored hash was made with a pepper this process does not have.
    #[error("stored password hash uses pepper {id:?}, which is not configured")]
    UnknownPepper {
        /// The pepper id recorded in the hash.
        id: String,
    },
    /// The hashing configuration is unusable (reported at startup).
    #[error("invalid password hashing configuration: {0}")]
    InvalidConfig(&'static str),
    /// Argon2 itself failed (for example, memory could not be allocated).
    #[error("password hashing failed")]
    Hashing,
    /// No randomness for the salt.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Why a new password was refused. Shown to the user, so the messages are actionable
/// and never echo the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer characters than the minimum.
    #[error("the password must have at least {min_chars} characters")]
    TooShort {
        /// The minimum, in characters.
        min_chars: usize,
    },
    /// More bytes than [`MAX_PASSWORD_BYTES`].
    #[error("the password must be at most {max_bytes} bytes long")]
    TooLong {
        /// The limit, in bytes.
        max_bytes: usize,
    },
    /// On the list of commonly used (and therefore guessed) passwords.
    #[error("this password is too common; choose another one")]
    Common,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches and the hash uses the current parameters.
    Valid,
    /// The password matches, but the hash should be replaced by a fresh
    /// [`PasswordHasher::hash`] of the same password (older algorithm, version,
    /// parameters or pepper).
    ValidNeedsRehash,
    /// The password does not match.
    Invalid,
}

/// Argon2 cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Number of passes (`t`).
    pub iterations: u32,
    /// Degree of parallelism, lanes (`p`).
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP Password Storage Cheat Sheet minimum for Argon2id: 19 MiB, 2 passes,
    /// 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// The most work a stored hash may ask for. Also bounds the current parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Limits {
    /// Largest `m`, KiB.
    pub max_memory_kib: u32,
    /// Largest `t`.
    pub max_iterations: u32,
    /// Largest `p`.
    pub max_parallelism: u32,
}

impl Default for Argon2Limits {
    /// 256 MiB, 10 passes, 8 lanes: well above any sensible setting (so hashes
    /// imported from other systems still verify) and far below a denial of service.
    fn default() -> Self {
        Self {
            max_memory_kib: 256 * 1024,
            max_iterations: 10,
            max_parallelism: 8,
        }
    }
}

/// A pepper: Argon2's secret input, kept outside the database.
pub struct Pepper {
    id: String,
    secret: SecretBytes,
}

impl Pepper {
    /// `id` names the pepper in the PHC string (1 to 8 ASCII letters or digits, the
    /// PHC `keyid` limit); `secret` must be at least 16 bytes.
    pub fn new(id: &str, secret: SecretBytes) -> Result<Self, PasswordError> {
        if id.is_empty()
            || id.len() > argon2::Params::MAX_KEYID_LEN
            || !id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(PasswordError::InvalidConfig(
                "a pepper id must be 1 to 8 ASCII letters or digits",
            ));
        }
        if secret.len() < MIN_PEPPER_LEN {
            return Err(PasswordError::InvalidConfig(
                "a pepper must be at least 16 bytes",
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            secret,
        })
    }

    /// The pepper's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pepper({:?}, [redacted])", self.id)
    }
}

/// Everything [`PasswordHasher::new`] needs.
#[derive(Debug, Default)]
pub struct PasswordConfig {
    /// Parameters for new hashes.
    pub params: Argon2Params,
    /// Maxima for stored hashes (and for `params`).
    pub limits: Argon2Limits,
    /// The pepper for new hashes, if any.
    pub pepper: Option<Pepper>,
    /// Former peppers, kept so hashes made with them still verify (and get rehashed).
    pub retired_peppers: Vec<Pepper>,
}

/// A PHC-format password hash, as stored in the database.
///
/// Not a secret in the sense of a key, but an offline-cracking target: `Debug` shows
/// the algorithm and parameters only.
#[derive(Clone, PartialEq, Eq)]
pub struct PhcHash(String);

impl PhcHash {
    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PHC string, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "$argon2id$v=19$m=..,t=..,p=..$salt$hash": keep the first four fields.
        let visible: Vec<&str> = self.0.splitn(5, '$').take(4).collect();
        write!(f, "PhcHash({}$[redacted])", visible.join("$"))
    }
}

/// Hashes and verifies passwords with one configuration.
///
/// Cheap to share (`Send + Sync`); build one at startup.
#[derive(Debug)]
pub struct PasswordHasher {
    current: Argon2Params,
    /// `current` with the pepper's key id, ready for new hashes.
    argon2_params: argon2::Params,
    limits: Argon2Limits,
    pepper: Option<Pepper>,
    retired_peppers: Vec<Pepper>,
    /// A hash made with the current settings, verified against on the unknown-user
    /// path. Made on first use: hashing at construction would slow every startup.
    dummy: OnceLock<Option<PhcHash>>,
}

impl PasswordHasher {
    /// Checks the configuration: parameters valid for Argon2 and within the limits,
    /// pepper ids unique.
    pub fn new(config: PasswordConfig) -> Result<Self, PasswordError> {
        let PasswordConfig {
            params,
            limits,
            pepper,
            retired_peppers,
        } = config;
        if params.memory_kib > limits.max_memory_kib
            || params.iterations > limits.max_iterations
            || params.parallelism > limits.max_parallelism
        {
            return Err(PasswordError::InvalidConfig(
                "the Argon2 parameters exceed the configured maxima",
            ));
        }
        let mut builder = argon2::ParamsBuilder::new();
        builder
            .m_cost(params.memory_kib)
            .t_cost(params.iterations)
            .p_cost(params.parallelism)
            .output_len(HASH_LEN);
        if let Some(pepper) = &pepper {
            let key_id = argon2::KeyId::new(pepper.id.as_bytes())
                .map_err(|_| PasswordError::InvalidConfig("invalid pepper id"))?;
            builder.keyid(key_id);
        }
        let argon2_params = builder.build().map_err(|_| {
            PasswordError::InvalidConfig(
                "invalid Argon2 parameters (need t >= 1, p >= 1, m >= 8 * p KiB)",
            )
        })?;
        let mut ids: Vec<&str> = pepper
            .iter()
            .chain(retired_peppers.iter())
            .map(Pepper::id)
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != count {
            return Err(PasswordError::InvalidConfig("pepper ids must be unique"));
        }
        Ok(Self {
            current: params,
            argon2_params,
            limits,
            pepper,
            retired_peppers,
            dummy: OnceLock::new(),
        })
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> Argon2Params {
        self.current
    }

    /// Hashes `password` with Argon2id, the current parameters, a random 128-bit
    /// salt and the current pepper.
    pub fn hash(&self, password: &SecretString) -> Result<PhcHash, PasswordError> {
        check_length(password)?;
        let salt = random::bytes::<SALT_LEN>()?;
        let context = match &self.pepper {
            Some(pepper) => Argon2::new_with_secret(
                pepper.secret.expose_secret(),
                Algorithm::Argon2id,
                Version::V0x13,
                self.argon2_params.clone(),
            )
            .map_err(|_| PasswordError::InvalidConfig("pepper too long"))?,
            None => Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                self.argon2_params.clone(),
            ),
        };
        let phc = context
            .hash_password_with_salt(password.expose_secret().as_bytes(), &salt)
            .map_err(|_| PasswordError::Hashing)?;
        Ok(PhcHash(phc.to_string()))
    }

    /// Checks `password` against a stored PHC string.
    ///
    /// Argon2id, Argon2i and Argon2d hashes (versions 0x10 and 0x13) verify; anything
    /// but Argon2id v0x13 with the current parameters, salt length, hash length and
    /// pepper is [`Verification::ValidNeedsRehash`] on success. A malformed hash, or
    /// one above the limits, is an error and costs no hashing.
    pub fn verify(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<Verification, PasswordError> {
        check_length(password)?;
        let stored = StoredHash::parse(stored, &self.limits)?;
        let pepper = match &stored.pepper_id {
            None => None,
            Some(id) => {
                Some(
                    self.pepper_by_id(id)
                        .ok_or_else(|| PasswordError::UnknownPepper {
                            id: String::from_utf8_lossy(id).into_owned(),
                        })?,
                )
            }
        };
        let params = argon2::Params::new(
            stored.memory_kib,
            stored.iterations,
            stored.parallelism,
            Some(stored.hash.len()),
        )
        .map_err(|_| PasswordError::MalformedHash)?;
        let context = match pepper {
            Some(pepper) => Argon2::new_with_secret(
                pepper.secret.expose_secret(),
                stored.algorithm,
                stored.version,
                params,
            )
            .map_err(|_| PasswordError::Hashing)?,
            None => Argon2::new(stored.algorithm, stored.version, params),
        };
        let mut computed = Zeroizing::new(vec![0u8; stored.hash.len()]);
        context
            .hash_password_into(
                password.expose_secret().as_bytes(),
                &stored.salt,
                &mut computed,
            )
            .map_err(|_| PasswordError::Hashing)?;
        if !ct_eq(&computed, &stored.hash) {
            return Ok(Verification::Invalid);
        }
        if self.is_current(&stored) {
            Ok(Verification::Valid)
        } else {
            Ok(Verification::ValidNeedsRehash)
        }
    }

    /// Spends the time of a real verification, for the path where the user does not
    /// exist, so response time does not reveal which accounts exist.
    ///
    /// The outcome is discarded; the caller reports "invalid credentials" either way.
    pub fn dummy_verify(&self, password: &SecretString) {
        let dummy = self
            .dummy
            .get_or_init(|| self.hash(&SecretString::from(DUMMY_PASSWORD)).ok());
        match dummy {
            Some(hash) => {
                let _ = self.verify(password, hash.as_str());
            }
            // Hashing the dummy failed (no randomness): hashing the password costs the
            // same work with the same parameters.
            None => {
                let _ = self.hash(password);
            }
        }
    }

    fn pepper_by_id(&self, id: &[u8]) -> Option<&Pepper> {
        self.pepper
            .iter()
            .chain(self.retired_peppers.iter())
            .find(|p| p.id.as_bytes() == id)
    }

    fn is_current(&self, stored: &StoredHash) -> bool {
        let current_pepper = self.pepper.as_ref().map(|p| p.id.as_bytes());
        stored.algorithm == Algorithm::Argon2id
            && stored.version == Version::V0x13
            && stored.memory_kib == self.current.memory_kib
            && stored.iterations == self.current.iterations
            && stored.parallelism == self.current.parallelism
            && stored.salt.len() >= SALT_LEN
            && stored.hash.len() == HASH_LEN
            && stored.pepper_id.as_deref() == current_pepper
    }
}

/// Checks a password a user is choosing (sign-up, change, reset).
///
/// Rules (NIST SP 800-63B §3.1.1.2, ASVS V6.2): at least `min_chars` characters
/// (see [`DEFAULT_MIN_PASSWORD_CHARS`]), at most [`MAX_PASSWORD_BYTES`] bytes, and not
/// on the bundled list of common passwords (compared case-insensitively). No
/// composition rules: they do not make passwords stronger, only harder to remember.
pub fn check_new_password(
    password: &SecretString,
    min_chars: usize,
) -> Result<(), PasswordPolicyError> {
    let text = password.expose_secret();
    // Length in bytes first: it is O(1) and bounds the work of the checks below.
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordPolicyError::TooLong {
            max_bytes: MAX_PASSWORD_BYTES,
        });
    }
    if text.chars().count() < min_chars {
        return Err(PasswordPolicyError::TooShort { min_chars });
    }
    // The lower-cased copy is as secret as the password.
    let lowered = Zeroizing::new(text.to_lowercase());
    if common_passwords().contains(lowered.as_str()) {
        return Err(PasswordPolicyError::Common);
    }
    Ok(())
}

fn check_length(password: &SecretString) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong {
            max_bytes: MAX_PASSWORD_BYTES,
        });
    }
    Ok(())
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// A stored PHC string, parsed and checked against the limits.
struct StoredHash {
    algorithm: Algorithm,
    version: Version,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    pepper_id: Option<Vec<u8>>,
    salt: Vec<u8>,
    hash: Zeroizing<Vec<u8>>,
}

impl StoredHash {
    fn parse(text: &str, limits: &Argon2Limits) -> Result<Self, PasswordError> {
        if text.len() > MAX_PHC_LEN {
            return Err(PasswordError::MalformedHash);
        }
        let phc = phc::PasswordHash::new(text).map_err(|_| PasswordError::MalformedHash)?;
        let algorithm = match phc.algorithm.as_str() {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            "argon2d" => Algorithm::Argon2d,
            _ => return Err(PasswordError::UnsupportedAlgorithm),
        };
        // libargon2 omits `v=` for version 1.0 hashes (its encoder predates the field).
        let version = match phc.version {
            None | Some(0x10) => Version::V0x10,
            Some(0x13) => Version::V0x13,
            Some(_) => return Err(PasswordError::UnsupportedVersion),
        };

        let (mut m, mut t, mut p, mut keyid) = (None, None, None, None);
        for (name, value) in phc.params.iter() {
            let slot = match name.as_str() {
                "m" => &mut m,
                "t" => &mut t,
                "p" => &mut p,
                "keyid" => {
                    if keyid.is_some() {
                        return Err(PasswordError::MalformedHash);
                    }
                    let mut buf = [0u8; argon2::Params::MAX_KEYID_LEN];
                    let id = value
                        .b64_decode(&mut buf)
                        .map_err(|_| PasswordError::MalformedHash)?;
                    keyid = Some(id.to_vec());
                    continue;
                }
                // `data` (associated data) and anything else: not something Rampart
                // or libargon2 writes; refusing is safer than guessing.
                _ => return Err(PasswordError::MalformedHash),
            };
            // A repeated parameter is ambiguous (which one counts?): refuse it.
            if slot.is_some() {
                return Err(PasswordError::MalformedHash);
            }
            *slot = Some(value.decimal().map_err(|_| PasswordError::MalformedHash)?);
        }
        let (Some(memory_kib), Some(iterations), Some(parallelism)) = (m, t, p) else {
            return Err(PasswordError::MalformedHash);
        };
        if memory_kib > limits.max_memory_kib
            || iterations > limits.max_iterations
            || parallelism > limits.max_parallelism
        {
            return Err(PasswordError::ExceedsLimits {
                memory_kib,
                iterations,
                parallelism,
            });
        }
        let salt = phc.salt.ok_or(PasswordError::MalformedHash)?;
        if salt.len() < argon2::MIN_SALT_LEN {
            return Err(PasswordError::MalformedHash);
        }
        let hash = phc.hash.ok_or(PasswordError::MalformedHash)?;
        Ok(Self {
            algorithm,
            version,
            memory_kib,
            iterations,
            parallelism,
            pepper_id: keyid,
            salt: salt.to_vec(),
            hash: Zeroizing::new(hash.as_bytes().to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    const VECTORS: &str = include_str!("../testdata/argon2-vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    /// Cheap parameters so tests that hash many times stay fast.
    fn cheap() -> Argon2Params {
        Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn hasher_with(params: Argon2Params) -> PasswordHasher {
        PasswordHasher::new(PasswordConfig {
            params,
            ..PasswordConfig::default()
        })
        .unwrap()
    }

    fn pepper(id: &str, byte: u8) -> Pepper {
        Pepper::new(id, SecretBytes::new(vec![byte; 32])).unwrap()
    }

    fn pw(text: &str) -> SecretString {
        SecretString::from(text)
    }

    #[test]
    fn rfc9106_tags_via_the_raw_api() {
        let v = vectors();
        let inputs = &v["rfc9106"]["inputs"];
        let bytes = |name: &str| hex::decode(inputs[name].as_str().unwrap()).unwrap();
        let (password, salt, secret, ad) = (
            bytes("password_hex"),
            bytes("salt_hex"),
            bytes("secret_hex"),
            bytes("associated_data_hex"),
        );
        let tags = v["rfc9106"]["tags"].as_array().unwrap();
        assert_eq!(tags.len(), 3);
        for tag in tags {
            let algorithm = match tag["type"].as_str().unwrap() {
                "Argon2d" => Algorithm::Argon2d,
                "Argon2i" => Algorithm::Argon2i,
                "Argon2id" => Algorithm::Argon2id,
                other => panic!("unknown type {other}"),
            };
            let params = argon2::ParamsBuilder::new()
                .m_cost(inputs["memory_kib"].as_u64().unwrap() as u32)
                .t_cost(inputs["passes"].as_u64().unwrap() as u32)
                .p_cost(inputs["lanes"].as_u64().unwrap() as u32)
                .data(argon2::AssociatedData::new(&ad).unwrap())
                .output_len(inputs["tag_length"].as_u64().unwrap() as usize)
                .build()
                .unwrap();
            let context =
                Argon2::new_with_secret(&secret, algorithm, Version::V0x13, params).unwrap();
            let mut out = [0u8; 32];
            context
                .hash_password_into(&password, &salt, &mut out)
                .unwrap();
            assert_eq!(
                hex::encode(out),
                tag["tag_hex"].as_str().unwrap(),
                "{}",
                tag["type"]
            );
        }
    }

    #[test]
    fn every_valid_phc_vector_verifies() {
        let hasher = hasher_with(Argon2Params::OWASP);
        let v = vectors();
        let valid = v["phc_valid"].as_array().unwrap();
        assert_eq!(valid.len(), 9);
        for case in valid {
            let phc = case["phc"].as_str().unwrap();
            let result = hasher
                .verify(&pw(case["password"].as_str().unwrap()), phc)
                .unwrap();
            // None of them uses the current (OWASP) parameters, and some are Argon2i
            // or version 0x10: all verify, all need a rehash.
            assert_eq!(result, Verification::ValidNeedsRehash, "{phc}");
        }
    }

    #[test]
    fn matching_parameters_verify_as_valid_without_rehash() {
        // phc_valid[0] is argon2id v19 m=65536,t=2,p=1 with a 32-byte tag, but an
        // 8-byte salt ("somesalt"): below the 16 bytes new hashes use, so rehash.
        let hasher = hasher_with(Argon2Params {
            memory_kib: 65_536,
            iterations: 2,
            parallelism: 1,
        });
        let v = vectors();
        let case = &v["phc_valid"][0];
        assert_eq!(
            hasher
                .verify(
                    &pw(case["password"].as_str().unwrap()),
                    case["phc"].as_str().unwrap()
                )
                .unwrap(),
            Verification::ValidNeedsRehash
        );
        // A fresh hash with those parameters is current.
        let fresh = hasher.hash(&pw("password")).unwrap();
        assert_eq!(
            hasher.verify(&pw("password"), fresh.as_str()).unwrap(),
            Verification::Valid
        );
    }

    #[test]
    fn every_wrong_password_vector_is_invalid() {
        let hasher = hasher_with(Argon2Params::OWASP);
        let v = vectors();
        let wrong = v["phc_wrong_password"].as_array().unwrap();
        assert_eq!(wrong.len(), 3);
        for case in wrong {
            let result = hasher
                .verify(
                    &pw(case["password"].as_str().unwrap()),
                    case["phc"].as_str().unwrap(),
                )
                .unwrap();
            assert_eq!(result, Verification::Invalid, "{case}");
        }
    }

    #[test]
    fn every_malformed_vector_is_refused_before_hashing() {
        let hasher = hasher_with(Argon2Params::OWASP);
        let v = vectors();
        let malformed = v["phc_malformed"].as_array().unwrap();
        assert_eq!(malformed.len(), 10);
        for case in malformed {
            let phc = case.as_str().unwrap();
            let err = hasher.verify(&pw("password"), phc).unwrap_err();
            assert!(
                matches!(
                    err,
                    PasswordError::MalformedHash
                        | PasswordError::UnsupportedVersion
                        | PasswordError::ExceedsLimits { .. }
                ),
                "{phc}: {err:?}"
            );
        }
        // The DoS vector in particular is refused for its parameters.
        let dos = malformed.last().unwrap().as_str().unwrap();
        assert!(matches!(
            hasher.verify(&pw("password"), dos),
            Err(PasswordError::ExceedsLimits {
                memory_kib: 4_294_967_295,
                ..
            })
        ));
    }

    #[test]
    fn other_malformed_inputs_are_refused() {
        let hasher = hasher_with(cheap());
        let good = hasher.hash(&pw("password")).unwrap().into_string();
        let cases = [
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E".to_owned(),
            good.replace("m=64", "m=64,data=AAAA"),
            good.replace("m=64", "m=64,x=1"),
            good.replace("t=1", "t=0"),
            good.replace("p=1", "p=0"),
            good.replace("m=64", "m=4"),
            good.replace("v=19", "v=20"),
            format!("{good}$extra"),
            format!("{}{}", good, "A".repeat(300)),
            good.rsplit_once('$').unwrap().0.to_owned(),
            "argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAA".to_owned(),
            "$argon2id$v=19$m=64,t=1,p=1$c29tZQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ];
        for case in &cases {
            let result = hasher.verify(&pw("password"), case);
            assert!(
                matches!(
                    result,
                    Err(PasswordError::MalformedHash
                        | PasswordError::UnsupportedAlgorithm
                        | PasswordError::UnsupportedVersion)
                ),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn new_hashes_are_argon2id_v19_with_the_configured_parameters() {
        let hasher = hasher_with(Argon2Params::OWASP);
        let hash = hasher.hash(&pw("correct horse battery staple")).unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        assert_eq!(
            hasher
                .verify(&pw("correct horse battery staple"), hash.as_str())
                .unwrap(),
            Verification::Valid
        );
        assert_eq!(
            hasher
                .verify(&pw("correct horse battery stapl"), hash.as_str())
                .unwrap(),
            Verification::Invalid
        );
        let again = hasher.hash(&pw("correct horse battery staple")).unwrap();
        assert_ne!(hash, again, "salts must differ");
    }

    #[test]
    fn parameter_changes_trigger_rehash() {
        let old = hasher_with(cheap());
        let hash = old.hash(&pw("pw")).unwrap();
        for params in [
            Argon2Params {
                memory_kib: 128,
                ..cheap()
            },
            Argon2Params {
                iterations: 2,
                ..cheap()
            },
            Argon2Params {
                parallelism: 2,
                ..cheap()
            },
        ] {
            let new = hasher_with(params);
            assert_eq!(
                new.verify(&pw("pw"), hash.as_str()).unwrap(),
                Verification::ValidNeedsRehash,
                "{params:?}"
            );
            assert_eq!(
                new.verify(&pw("wrong"), hash.as_str()).unwrap(),
                Verification::Invalid
            );
        }
    }

    #[test]
    fn passwords_are_verified_exactly_as_typed() {
        let hasher = hasher_with(cheap());
        let hash = hasher.hash(&pw("Pass Word ")).unwrap();
        for variant in [
            "Pass Word",
            "pass word ",
            "PASS WORD ",
            " Pass Word ",
            "Pass Word  ",
        ] {
            assert_eq!(
                hasher.verify(&pw(variant), hash.as_str()).unwrap(),
                Verification::Invalid,
                "{variant:?}"
            );
        }
        // Long passphrases (64+ characters) work in full: no truncation.
        let long = "x".repeat(200);
        let hash = hasher.hash(&pw(&long)).unwrap();
        assert_eq!(
            hasher.verify(&pw(&"x".repeat(199)), hash.as_str()).unwrap(),
            Verification::Invalid
        );
        assert_eq!(
            hasher.verify(&pw(&long), hash.as_str()).unwrap(),
            Verification::Valid
        );
    }

    #[test]
    fn overlong_passwords_are_refused_before_hashing() {
        let hasher = hasher_with(cheap());
        let hash = hasher.hash(&pw("pw")).unwrap();
        let max = "a".repeat(MAX_PASSWORD_BYTES);
        assert!(hasher.hash(&pw(&max)).is_ok());
        let over = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            hasher.hash(&pw(&over)),
            Err(PasswordError::TooLong { .. })
        ));
        assert!(matches!(
            hasher.verify(&pw(&over), hash.as_str()),
            Err(PasswordError::TooLong { .. })
        ));
    }

    #[test]
    fn pepper_is_required_recorded_and_rotatable() {
        let peppered = PasswordHasher::new(PasswordConfig {
            params: cheap(),
            pepper: Some(pepper("p1", 1)),
            ..PasswordConfig::default()
        })
        .unwrap();
        let hash = peppered.hash(&pw("pw")).unwrap();
        assert!(hash.as_str().contains("keyid="), "{}", hash.as_str());
        assert_eq!(
            peppered.verify(&pw("pw"), hash.as_str()).unwrap(),
            Verification::Valid
        );

        // Without the pepper the hash cannot be checked at all.
        let unpeppered = hasher_with(cheap());
        assert!(matches!(
            unpeppered.verify(&pw("pw"), hash.as_str()),
            Err(PasswordError::UnknownPepper { ref id }) if id == "p1"
        ));

        // Same id, different secret: the hash does not verify.
        let impostor = PasswordHasher::new(PasswordConfig {
            params: cheap(),
            pepper: Some(pepper("p1", 2)),
            ..PasswordConfig::default()
        })
        .unwrap();
        assert_eq!(
            impostor.verify(&pw("pw"), hash.as_str()).unwrap(),
            Verification::Invalid
        );

        // Rotated: p1 retired, p2 current. Old hashes verify and need a rehash.
        let rotated = PasswordHasher::new(PasswordConfig {
            params: cheap(),
            pepper: Some(pepper("p2", 3)),
            retired_peppers: vec![pepper("p1", 1)],
            ..PasswordConfig::default()
        })
        .unwrap();
        assert_eq!(
            rotated.verify(&pw("pw"), hash.as_str()).unwrap(),
            Verification::ValidNeedsRehash
        );

        // Unpeppered hashes verify under a peppered config, and need a rehash.
        let plain = unpeppered.hash(&pw("pw")).unwrap();
        assert_eq!(
            peppered.verify(&pw("pw"), plain.as_str()).unwrap(),
            Verification::ValidNeedsRehash
        );
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let over = PasswordHasher::new(PasswordConfig {
            params: Argon2Params {
                memory_kib: 1 << 20,
                ..Argon2Params::OWASP
            },
            ..PasswordConfig::default()
        });
        assert!(matches!(over, Err(PasswordError::InvalidConfig(_))));
        let zero = PasswordHasher::new(PasswordConfig {
            params: Argon2Params {
                iterations: 0,
                ..Argon2Params::OWASP
            },
            ..PasswordConfig::default()
        });
        assert!(matches!(zero, Err(PasswordError::InvalidConfig(_))));
        let duplicate = PasswordHasher::new(PasswordConfig {
            params: cheap(),
            pepper: Some(pepper("p1", 1)),
            retired_peppers: vec![pepper("p1", 2)],
            ..PasswordConfig::default()
        });
        assert!(matches!(duplicate, Err(PasswordError::InvalidConfig(_))));
        assert!(Pepper::new("", SecretBytes::new(vec![0; 32])).is_err());
        assert!(Pepper::new("toolong12", SecretBytes::new(vec![0; 32])).is_err());
        assert!(Pepper::new("p$", SecretBytes::new(vec![0; 32])).is_err());
        assert!(Pepper::new("p1", SecretBytes::new(vec![0; 15])).is_err());
    }

    #[test]
    fn dummy_verify_costs_about_as_much_as_a_real_verification() {
        let hasher = hasher_with(Argon2Params::OWASP);
        let hash = hasher.hash(&pw("real password")).unwrap();
        hasher.dummy_verify(&pw("warm-up")); // builds the dummy hash once
        // Interleaved runs, fastest of each: robust against other tests competing for
        // the CPU while one side is being measured.
        let mut real = std::time::Duration::MAX;
        let mut dummy = std::time::Duration::MAX;
        for _ in 0..4 {
            let start = std::time::Instant::now();
            let _ = hasher.verify(&pw("guess"), hash.as_str());
            real = real.min(start.elapsed());
            let start = std::time::Instant::now();
            hasher.dummy_verify(&pw("guess"));
            dummy = dummy.min(start.elapsed());
        }
        assert!(
            dummy * 2 > real && real * 2 > dummy,
            "real {real:?} vs dummy {dummy:?}"
        );
    }

    #[test]
    fn debug_hides_salt_and_hash() {
        let hasher = hasher_with(cheap());
        let hash = hasher.hash(&pw("pw")).unwrap();
        let text = format!("{hash:?}");
        let tag = hash.as_str().rsplit('$').next().unwrap();
        assert!(text.contains("m=64,t=1,p=1"), "{text}");
        assert!(!text.contains(tag), "{text}");
        assert!(!format!("{:?}", pepper("p1", 0x41)).contains("65"));
    }

    #[test]
    fn policy_length_rules() {
        let min = DEFAULT_MIN_PASSWORD_CHARS;
        assert_eq!(
            check_new_password(&pw("short"), min),
            Err(PasswordPolicyError::TooShort { min_chars: 12 })
        );
        // Characters, not bytes: 11 two-byte characters are too short...
        assert!(matches!(
            check_new_password(&pw(&"é".repeat(11)), min),
            Err(PasswordPolicyError::TooShort { .. })
        ));
        // ...and 12 are enough.
        assert_eq!(check_new_password(&pw(&"é".repeat(12)), min), Ok(()));
        assert_eq!(check_new_password(&pw("vault-Quill-93-orbit"), min), Ok(()));
        assert_eq!(
            check_new_password(&pw(&"a".repeat(MAX_PASSWORD_BYTES + 1)), min),
            Err(PasswordPolicyError::TooLong { max_bytes: 1024 })
        );
        assert_eq!(
            check_new_password(&pw(&"ab".repeat(MAX_PASSWORD_BYTES / 2)), min),
            Ok(())
        );
    }

    #[test]
    fn policy_refuses_common_passwords_case_insensitively() {
        assert!(common_passwords().len() >= 10_000);
        for common in ["password", "PassWord", "123456", "qwerty", "Iloveyou"] {
            assert_eq!(
                check_new_password(&pw(common), 1),
                Err(PasswordPolicyError::Common),
                "{common}"
            );
        }
        // Long entries from the list are refused at the default minimum too.
        for common in ["1qaz2wsx3edc", "qwertyuiop123", "QAZWSXEDCRFV"] {
            if common_passwords().contains(common.to_lowercase().as_str()) {
                assert_eq!(
                    check_new_password(&pw(common), DEFAULT_MIN_PASSWORD_CHARS),
                    Err(PasswordPolicyError::Common),
                    "{common}"
                );
            }
        }
        assert_eq!(check_new_password(&pw("password "), 1), Ok(()));
    }

    #[test]
    fn the_deny_list_file_is_clean() {
        let entries: Vec<&str> = COMMON_PASSWORDS
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect();
        assert!(entries.len() >= 10_000);
        assert_eq!(entries.len(), common_passwords().len(), "no duplicates");
        for entry in entries {
            assert!(!entry.is_empty());
            assert_eq!(entry, entry.to_lowercase(), "lower-case: {entry}");
            assert_eq!(entry, entry.trim(), "no stray whitespace: {entry:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn prop_stored_hash_parser_never_panics(text in "\\$[a-z0-9$=,+/A-Z-]{0,120}") {
            let _ = StoredHash::parse(&text, &Argon2Limits::default());
        }

        #[test]
        fn prop_policy_never_panics(text in ".{0,64}", min in 0usize..40) {
            let _ = check_new_password(&pw(&text), min);
        }
    }
}
