//! Ed25519 (`EdDSA`) JSON Web Tokens with a rotating keyring.
//!
//! Hand-built on ed25519-dalek, base64url and serde_json rather than a general JWT
//! library, because the safest JWT verifier is one that only knows one algorithm.
//! Verification is a fixed sequence, each step with its own error:
//!
//! 1. size (at most [`MAX_TOKEN_LEN`]) and shape: exactly three segments, each strict
//!    base64url without padding;
//! 2. header: a JSON object without duplicate members; `alg` must be exactly `EdDSA`
//!    (so `none`, `HS256` keyed with the public key, `RS256`, `ES256` are all refused
//!    before any key is touched — RFC 8725 §2.1, §3.1); headers that would make a
//!    verifier fetch or trust a key from the token itself (`jku`, `x5u`, `jwk`, `x5c`)
//!    or demand extensions (`crit`) are refused, never followed; `typ` must be `JWT`;
//!    `kid` must name a key of this keyring;
//! 3. signature: `verify_strict` over the encoded `header.payload` bytes (rejects
//!    small-order keys and non-canonical signatures, so tokens are not malleable);
//! 4. claims, only once authenticated: `exp` required, `nbf` and `iat` checked when
//!    present, `iss` and `aud` must match the [`Validation`], with a small leeway.
//!
//! A rotated-out key keeps verifying until its `valid_until` (set it to at least the
//! longest token lifetime) and is published in the JWKS until then.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::{DeserializeOwned, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::random::{self, RandomError};
use crate::secret::{SecretArray, SecretString};

/// Longest token accepted, in bytes. Rampart's tokens are a few hundred bytes; the
/// bound keeps hostile input from costing memory or time before it is refused.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The only `alg` this module signs or accepts (RFC 8037 §3.1).
pub const ALGORITHM: &str = "EdDSA";

/// Default clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u32 = 30;

/// Header parameters that point at, carry or demand things outside this keyring.
/// Their presence means the token was not made by Rampart; they are refused.
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// Why a token was refused, or a key could not be used.
///
/// Messages never echo token content (it is attacker-controlled and may be large).
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not exactly three dot-separated segments.
    #[error("token must have exactly three segments")]
    WrongSegmentCount,
    /// A segment is not strict base64url without padding.
    #[error("token segment is not valid unpadded base64url")]
    Base64,
    /// The header is not a JSON object, or has a duplicate member.
    #[error("token header is not a valid JSON object")]
    MalformedHeader,
    /// The header has no `alg`.
    #[error("token header has no algorithm")]
    MissingAlgorithm,
    /// `alg` is `none` (an unsigned token).
    #[error("unsigned tokens (alg \"none\") are refused")]
    AlgNone,
    /// `alg` is something other than `EdDSA`.
    #[error("token algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    /// A header that would fetch, embed or demand outside key material or extensions.
    #[error("token header {0:?} is refused")]
    ForbiddenHeader(&'static str),
    /// `typ` is missing or not `JWT`.
    #[error("token type is not JWT")]
    UnexpectedType,
    /// The header has no `kid`.
    #[error("token header has no key id")]
    MissingKid,
    /// `kid` names no key of this keyring.
    #[error("token key id is unknown")]
    UnknownKid,
    /// `kid` names a rotated-out key whose grace period has ended.
    #[error("token was signed with a retired key")]
    RetiredKey,
    /// The signature does not verify (tampered header or payload, wrong key).
    #[error("token signature is invalid")]
    BadSignature,
    /// The payload is not a JSON object, or has a duplicate member.
    #[error("token claims are not a valid JSON object")]
    MalformedClaims,
    /// A required claim is absent.
    #[error("token has no {0:?} claim")]
    MissingClaim(&'static str),
    /// A registered claim has the wrong type (e.g. a non-integer `exp`).
    #[error("token claim {0:?} has an invalid value")]
    InvalidClaim(&'static str),
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the expected issuer.
    #[error("token issuer does not match")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("token audience does not match")]
    WrongAudience,
    /// The claims do not have the shape the caller asked for.
    #[error("token claims do not have the expected shape")]
    ClaimsShape,
    /// The claims to sign could not be serialized.
    #[error("claims could not be serialized")]
    Serialize,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// A PKCS#8 key could not be read or written.
    #[error("invalid PKCS#8 Ed25519 private key")]
    Pkcs8,
    /// No randomness for a new key.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// What a token must say about who issued it and for whom, and how much clock skew
/// to tolerate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// Required value of `iss`.
    pub issuer: String,
    /// Value that `aud` (a string or an array of strings) must contain.
    pub audience: String,
    /// Seconds of tolerance for `exp`, `nbf` and `iat`.
    pub leeway_secs: u32,
}

impl Validation {
    /// Expects `issuer` and `audience`, with [`DEFAULT_LEEWAY_SECS`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// Sets the clock-skew tolerance.
    pub fn with_leeway(mut self, secs: u32) -> Self {
        self.leeway_secs = secs;
        self
    }
}

/// An Ed25519 signing key and its key id (the RFC 7638 JWK thumbprint of its public
/// key, so the id is derived, never chosen, and cannot collide by accident).
pub struct JwtSigningKey {
    kid: String,
    key: SigningKey,
}

impl JwtSigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, RandomError> {
        let seed = SecretArray::new(random::bytes::<32>()?);
        Ok(Self::from_seed(&seed))
    }

    /// The key whose 32-byte RFC 8032 private key (seed) is `seed`.
    pub fn from_seed(seed: &SecretArray<32>) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed.expose_secret()))
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`): v1 as written
    /// by `openssl genpkey -algorithm Ed25519` and [`Self::to_pkcs8_pem`], or v2 (RFC
    /// 5958, with the public key, which must match the private key).
    pub fn from_pkcs8_pem(pem: &SecretString) -> Result<Self, JwtError> {
        let key = SigningKey::from_pkcs8_pem(pem.expose_secret()).map_err(|_| JwtError::Pkcs8)?;
        Ok(Self::from_signing_key(key))
    }

    /// Writes the key as PKCS#8 v1 PEM, the form OpenSSL writes and reads.
    ///
    /// v1 leaves out the public key on purpose: OpenSSL 3.0 cannot load the v2
    /// (RFC 5958 `OneAsymmetricKey`) form that includes it, and the public key is
    /// recomputed from the seed anyway.
    pub fn to_pkcs8_pem(&self) -> Result<SecretString, JwtError> {
        let keypair = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let pem = keypair
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| JwtError::Pkcs8)?;
        Ok(SecretString::from(pem.as_str()))
    }

    /// The key id: the base64url JWK thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    fn from_signing_key(key: SigningKey) -> Self {
        Self {
            kid: jwk_thumbprint(&key.verifying_key()),
            key,
        }
    }
}

impl fmt::Debug for JwtSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSigningKey({:?}, [redacted])", self.kid)
    }
}

/// A rotated-out public key, accepted until `valid_until_unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    /// The public key.
    pub key: VerifyingKey,
    /// Its key id.
    pub kid: String,
    /// Last Unix time (seconds, inclusive) at which tokens signed by it verify.
    pub valid_until_unix: i64,
}

/// The active signing key plus recently rotated-out public keys.
#[derive(Debug)]
pub struct Keyring {
    active: JwtSigningKey,
    previous: Vec<PreviousKey>,
}

impl Keyring {
    /// A keyring with one key.
    pub fn new(active: JwtSigningKey) -> Self {
        Self {
            active,
            previous: Vec::new(),
        }
    }

    /// A keyring restored from storage.
    pub fn with_previous(active: JwtSigningKey, previous: Vec<PreviousKey>) -> Self {
        Self { active, previous }
    }

    /// The key new tokens are signed with.
    pub fn active(&self) -> &JwtSigningKey {
        &self.active
    }

    /// The rotated-out keys (including any whose grace has ended but were not pruned).
    pub fn previous(&self) -> &[PreviousKey] {
        &self.previous
    }

    /// Signs `claims` (any serializable JSON object with an integer `exp`) with the
    /// active key. The header is exactly `{"alg":"EdDSA","kid":...,"typ":"JWT"}`.
    ///
    /// Refuses claims without `exp`: a token that never expires cannot be contained.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, JwtError> {
        let claims = serde_json::to_value(claims).map_err(|_| JwtError::Serialize)?;
        let Value::Object(map) = &claims else {
            return Err(JwtError::Serialize);
        };
        match map.get("exp") {
            Some(Value::Number(n)) if n.as_i64().is_some() => {}
            Some(_) => return Err(JwtError::InvalidClaim("exp")),
            None => return Err(JwtError::MissingClaim("exp")),
        }
        let payload = serde_json::to_vec(&claims).map_err(|_| JwtError::Serialize)?;
        // The kid is a base64url thumbprint, so it needs no JSON escaping.
        let header = format!(
            r#"{{"alg":"{ALGORITHM}","kid":"{}","typ":"JWT"}}"#,
            self.active.kid
        );
        let mut token = String::with_capacity(header.len() * 2 + payload.len() * 2 + 90);
        URL_SAFE_NO_PAD.encode_string(header.as_bytes(), &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self
            .active
            .key
            .try_sign(token.as_bytes())
            .map_err(|_| JwtError::Signing)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }

    /// Verifies `token` and returns its claims. See the module documentation for the
    /// exact sequence of checks.
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
        now_unix: i64,
    ) -> Result<C, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLong);
        }
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(JwtError::WrongSegmentCount);
        };

        let header = parse_object(&decode_segment(header_b64)?).ok_or(JwtError::MalformedHeader)?;
        let key = self.key_for_header(&header, now_unix)?;

        let signature: [u8; 64] = decode_segment(signature_b64)?
            .try_into()
            .map_err(|_| JwtError::BadSignature)?;
        // The signing input is the encoded bytes as received, never re-serialized JSON.
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        key.verify_strict(
            &token.as_bytes()[..signing_input_len],
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| JwtError::BadSignature)?;

        let claims =
            parse_object(&decode_segment(payload_b64)?).ok_or(JwtError::MalformedClaims)?;
        check_claims(&claims, validation, now_unix)?;
        serde_json::from_value(Value::Object(claims)).map_err(|_| JwtError::ClaimsShape)
    }

    /// The JSON Web Key Set to publish: the active key and every previous key still
    /// within its grace period at `now_unix`.
    pub fn jwks(&self, now_unix: i64) -> Value {
        let mut keys = vec![public_jwk(&self.active.verifying_key(), &self.active.kid)];
        keys.extend(
            self.previous
                .iter()
                .filter(|p| now_unix <= p.valid_until_unix)
                .map(|p| public_jwk(&p.key, &p.kid)),
        );
        serde_json::json!({ "keys": keys })
    }

    /// Makes `new_key` active; the old active key keeps verifying for `grace_secs`
    /// (use at least the longest token lifetime). Keys whose grace has ended are
    /// dropped.
    pub fn rotate(&mut self, new_key: JwtSigningKey, grace_secs: u64, now_unix: i64) {
        let old = std::mem::replace(&mut self.active, new_key);
        if old.kid != self.active.kid {
            let grace = i64::try_from(grace_secs).unwrap_or(i64::MAX);
            self.previous.push(PreviousKey {
                key: old.verifying_key(),
                kid: old.kid.clone(),
                valid_until_unix: now_unix.saturating_add(grace),
            });
        }
        let active_kid = self.active.kid.clone();
        self.previous.retain(|p| p.kid != active_kid);
        self.prune(now_unix);
    }

    /// Drops previous keys whose grace period ended before `now_unix`.
    pub fn prune(&mut self, now_unix: i64) {
        self.previous.retain(|p| now_unix <= p.valid_until_unix);
    }

    /// Header checks, in order; returns the key the signature must verify under.
    fn key_for_header(
        &self,
        header: &Map<String, Value>,
        now_unix: i64,
    ) -> Result<VerifyingKey, JwtError> {
        match header.get("alg") {
            Some(Value::String(alg)) if alg == ALGORITHM => {}
            Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") => {
                return Err(JwtError::AlgNone);
            }
            Some(_) => return Err(JwtError::UnsupportedAlgorithm),
            None => return Err(JwtError::MissingAlgorithm),
        }
        if let Some(name) = FORBIDDEN_HEADERS.iter().find(|h| header.contains_key(**h)) {
            return Err(JwtError::ForbiddenHeader(name));
        }
        match header.get("typ") {
            Some(Value::String(typ)) if typ == "JWT" => {}
            _ => return Err(JwtError::UnexpectedType),
        }
        let kid = match header.get("kid") {
            Some(Value::String(kid)) => kid,
            Some(_) => return Err(JwtError::MalformedHeader),
            None => return Err(JwtError::MissingKid),
        };
        if *kid == self.active.kid {
            return Ok(self.active.verifying_key());
        }
        match self.previous.iter().find(|p| p.kid == *kid) {
            Some(p) if now_unix <= p.valid_until_unix => Ok(p.key),
            Some(_) => Err(JwtError::RetiredKey),
            None => Err(JwtError::UnknownKid),
        }
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256) of the
/// canonical JWK `{"crv":"Ed25519","kty":"OKP","x":"..."}` (members sorted, no spaces).
pub fn jwk_thumbprint(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public JWK for `key` (RFC 8037 §2) as published in the JWKS.
pub fn public_jwk(key: &VerifyingKey, kid: &str) -> Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    })
}

/// Strict base64url: URL-safe alphabet, no padding, no whitespace, canonical trailing
/// bits (the engine refuses non-zero leftover bits, so each token has one encoding).
fn decode_segment(segment: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Base64)
}

fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<StrictObject>(bytes)
        .ok()
        .map(|o| o.0)
}

fn check_claims(
    claims: &Map<String, Value>,
    validation: &Validation,
    now_unix: i64,
) -> Result<(), JwtError> {
    let leeway = i64::from(validation.leeway_secs);

    // RFC 7519 §4.1.4: the current time must be before `exp`.
    let exp = numeric_date(claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if now_unix >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now_unix.saturating_add(leeway) < nbf
    {
        return Err(JwtError::NotYetValid);
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now_unix.saturating_add(leeway)
    {
        return Err(JwtError::IssuedInFuture);
    }

    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == validation.issuer => {}
        Some(Value::String(_)) => return Err(JwtError::WrongIssuer),
        Some(_) => return Err(JwtError::InvalidClaim("iss")),
        None => return Err(JwtError::MissingClaim("iss")),
    }

    // RFC 7519 §4.1.3: `aud` is a string or an array of strings.
    let audience_matches = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == validation.audience,
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                match aud {
                    Value::String(aud) => found |= *aud == validation.audience,
                    _ => return Err(JwtError::InvalidClaim("aud")),
                }
            }
            found
        }
        Some(_) => return Err(JwtError::InvalidClaim("aud")),
        None => return Err(JwtError::MissingClaim("aud")),
    };
    if !audience_matches {
        return Err(JwtError::WrongAudience);
    }
    Ok(())
}

/// A NumericDate claim as whole seconds. Fractions are refused: Rampart never issues
/// them, and accepting floats invites rounding disagreements between verifiers.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(JwtError::InvalidClaim(name)),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

/// A JSON object that refuses duplicate member names.
///
/// RFC 8259 leaves duplicates undefined; parsers disagree on which one wins, which
/// is exactly the ambiguity an attacker needs (`{"alg":"EdDSA","alg":"none"}`).
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(A::Error::custom("duplicate member"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(StrictObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use serde::{Deserialize, Serialize};

    use super::*;

    const JOSE_VECTORS: &str = include_str!("../testdata/rfc-jose-vectors.json");
    const NOW: i64 = 1_700_000_000;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        iss: String,
        aud: Value,
        exp: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        nbf: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        iat: Option<i64>,
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-1".into(),
            iss: "https://rampart.test".into(),
            aud: Value::from("app"),
            exp: NOW + 300,
            nbf: None,
            iat: Some(NOW),
        }
    }

    fn validation() -> Validation {
        Validation::new("https://rampart.test", "app")
    }

    fn keyring() -> Keyring {
        Keyring::new(JwtSigningKey::generate().unwrap())
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with an arbitrary header, signed (validly) by `key`.
    fn forge(key: &JwtSigningKey, header: &Value, claims: &Claims) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(&serde_json::to_vec(claims).unwrap())
        );
        let sig = key.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    fn verify(ring: &Keyring, token: &str) -> Result<Claims, JwtError> {
        ring.verify::<Claims>(token, &validation(), NOW)
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        assert_eq!(verify(&ring, &token).unwrap(), claims());
    }

    #[test]
    fn header_is_exactly_alg_kid_typ() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(header).unwrap(),
            format!(
                r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#,
                ring.active().kid()
            )
        );
    }

    #[test]
    fn signing_refuses_claims_without_exp() {
        let ring = keyring();
        assert!(matches!(
            ring.sign(&serde_json::json!({"sub": "x"})),
            Err(JwtError::MissingClaim("exp"))
        ));
        assert!(matches!(
            ring.sign(&serde_json::json!({"exp": "soon"})),
            Err(JwtError::InvalidClaim("exp"))
        ));
        assert!(matches!(
            ring.sign(&"not an object"),
            Err(JwtError::Serialize)
        ));
    }

    #[test]
    fn alg_none_is_refused_with_and_without_signature() {
        let ring = keyring();
        let kid = ring.active().kid().to_owned();
        let payload = b64(&serde_json::to_vec(&claims()).unwrap());
        for alg in ["none", "None", "NONE"] {
            let header = b64(serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"})
                .to_string()
                .as_bytes());
            let unsigned = format!("{header}.{payload}.");
            assert!(matches!(verify(&ring, &unsigned), Err(JwtError::AlgNone)));
            // With a signature that is valid for these bytes under the real key.
            let input = format!("{header}.{payload}");
            let sig = ring.active().key.sign(input.as_bytes());
            let signed = format!("{input}.{}", b64(&sig.to_bytes()));
            assert!(matches!(verify(&ring, &signed), Err(JwtError::AlgNone)));
        }
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        // The classic algorithm-confusion attack: HMAC with the public key as secret.
        let ring = keyring();
        let public = ring.active().verifying_key();
        let header = serde_json::json!({"alg": "HS256", "kid": ring.active().kid(), "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(&serde_json::to_vec(&claims()).unwrap())
        );
        for secret in [
            public.as_bytes().to_vec(),
            b64(public.as_bytes()).into_bytes(),
            public_jwk(&public, ring.active().kid())
                .to_string()
                .into_bytes(),
        ] {
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
            assert!(matches!(
                verify(&ring, &token),
                Err(JwtError::UnsupportedAlgorithm)
            ));
        }
    }

    #[test]
    fn other_algorithms_are_refused_even_with_a_valid_signature() {
        let ring = keyring();
        for alg in [
            "RS256", "ES256", "HS256", "EdDSA ", "eddsa", "Ed25519", "PS256",
        ] {
            let header = serde_json::json!({"alg": alg, "kid": ring.active().kid(), "typ": "JWT"});
            let token = forge(ring.active(), &header, &claims());
            assert!(
                matches!(verify(&ring, &token), Err(JwtError::UnsupportedAlgorithm)),
                "{alg}"
            );
        }
        let no_alg = serde_json::json!({"kid": ring.active().kid(), "typ": "JWT"});
        assert!(matches!(
            verify(&ring, &forge(ring.active(), &no_alg, &claims())),
            Err(JwtError::MissingAlgorithm)
        ));
        let numeric = serde_json::json!({"alg": 1, "kid": ring.active().kid(), "typ": "JWT"});
        assert!(matches!(
            verify(&ring, &forge(ring.active(), &numeric, &claims())),
            Err(JwtError::UnsupportedAlgorithm)
        ));
    }

    #[test]
    fn tampered_payload_is_refused() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims();
        evil.sub = "admin".into();
        let evil_payload = b64(&serde_json::to_vec(&evil).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], evil_payload, parts[2]);
        assert!(matches!(
            verify(&ring, &tampered),
            Err(JwtError::BadSignature)
        ));
    }

    #[test]
    fn tampered_header_is_refused() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header = serde_json::json!({
            "alg": "EdDSA", "kid": ring.active().kid(), "typ": "JWT", "extra": 1
        });
        let tampered = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        assert!(matches!(
            verify(&ring, &tampered),
            Err(JwtError::BadSignature)
        ));
    }

    #[test]
    fn every_bit_flip_in_the_signature_is_refused() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let (input, sig_b64) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
        for byte in 0..sig.len() {
            for bit in 0..8 {
                let mut bad = sig.clone();
                bad[byte] ^= 1 << bit;
                let token = format!("{input}.{}", b64(&bad));
                assert!(matches!(verify(&ring, &token), Err(JwtError::BadSignature)));
            }
        }
    }

    #[test]
    fn non_canonical_signature_is_refused() {
        // S + L (the group order) verifies under lax verification but is a second
        // encoding of the same signature; verify_strict must refuse it.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let (input, sig_b64) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
        let mut carry = 0u16;
        for (s, l) in sig[32..].iter_mut().zip(L) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        let token = format!("{input}.{}", b64(&sig));
        assert!(matches!(verify(&ring, &token), Err(JwtError::BadSignature)));
    }

    #[test]
    fn unknown_and_missing_kid_are_refused() {
        let ring = keyring();
        let stranger = JwtSigningKey::generate().unwrap();
        let foreign = Keyring::new(stranger).sign(&claims()).unwrap();
        assert!(matches!(verify(&ring, &foreign), Err(JwtError::UnknownKid)));

        let no_kid = serde_json::json!({"alg": "EdDSA", "typ": "JWT"});
        assert!(matches!(
            verify(&ring, &forge(ring.active(), &no_kid, &claims())),
            Err(JwtError::MissingKid)
        ));
        let numeric_kid = serde_json::json!({"alg": "EdDSA", "kid": 7, "typ": "JWT"});
        assert!(matches!(
            verify(&ring, &forge(ring.active(), &numeric_kid, &claims())),
            Err(JwtError::MalformedHeader)
        ));
    }

    #[test]
    fn key_carrying_and_critical_headers_are_refused() {
        let ring = keyring();
        let kid = ring.active().kid().to_owned();
        let jwk = public_jwk(&ring.active().verifying_key(), &kid);
        for (name, value) in [
            ("jku", Value::from("https://evil.example/jwks.json")),
            ("x5u", Value::from("https://evil.example/cert.pem")),
            ("jwk", jwk),
            ("x5c", serde_json::json!(["MIIB..."])),
            ("crit", serde_json::json!(["exp"])),
        ] {
            let mut header = serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"});
            header[name] = value;
            let token = forge(ring.active(), &header, &claims());
            assert!(
                matches!(verify(&ring, &token), Err(JwtError::ForbiddenHeader(n)) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn typ_must_be_jwt() {
        let ring = keyring();
        for header in [
            serde_json::json!({"alg": "EdDSA", "kid": ring.active().kid()}),
            serde_json::json!({"alg": "EdDSA", "kid": ring.active().kid(), "typ": "at+jwt"}),
        ] {
            assert!(matches!(
                verify(&ring, &forge(ring.active(), &header, &claims())),
                Err(JwtError::UnexpectedType)
            ));
        }
    }

    #[test]
    fn expiry_is_required_and_enforced_with_leeway() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let exp = NOW + 300;
        let at = |now| ring.verify::<Claims>(&token, &validation(), now);
        assert!(at(exp - 1).is_ok());
        assert!(at(exp + 29).is_ok(), "within the 30 s leeway");
        assert!(matches!(at(exp + 30), Err(JwtError::Expired)));
        let strict = validation().with_leeway(0);
        assert!(matches!(
            ring.verify::<Claims>(&token, &strict, exp),
            Err(JwtError::Expired)
        ));

        let no_exp = serde_json::json!({"iss": "https://rampart.test", "aud": "app"});
        let header = serde_json::json!({"alg": "EdDSA", "kid": ring.active().kid(), "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(no_exp.to_string().as_bytes())
        );
        let sig = ring.active().key.sign(input.as_bytes());
        let token = format!("{input}.{}", b64(&sig.to_bytes()));
        assert!(matches!(
            ring.verify::<Value>(&token, &validation(), NOW),
            Err(JwtError::MissingClaim("exp"))
        ));
    }

    #[test]
    fn nbf_and_iat_in_the_future_are_refused() {
        let ring = keyring();
        let future_nbf = Claims {
            nbf: Some(NOW + 120),
            ..claims()
        };
        let token = ring.sign(&future_nbf).unwrap();
        assert!(matches!(verify(&ring, &token), Err(JwtError::NotYetValid)));
        assert!(
            ring.verify::<Claims>(&token, &validation(), NOW + 100)
                .is_ok()
        );

        let future_iat = Claims {
            iat: Some(NOW + 120),
            ..claims()
        };
        let token = ring.sign(&future_iat).unwrap();
        assert!(matches!(
            verify(&ring, &token),
            Err(JwtError::IssuedInFuture)
        ));
    }

    #[test]
    fn fractional_or_string_dates_are_refused() {
        let ring = keyring();
        for exp in [Value::from(1.7e9 + 0.5), Value::from("1700000300")] {
            let header =
                serde_json::json!({"alg": "EdDSA", "kid": ring.active().kid(), "typ": "JWT"});
            let body = serde_json::json!({"iss": "https://rampart.test", "aud": "app", "exp": exp});
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(body.to_string().as_bytes())
            );
            let sig = ring.active().key.sign(input.as_bytes());
            let token = format!("{input}.{}", b64(&sig.to_bytes()));
            assert!(matches!(
                ring.verify::<Value>(&token, &validation(), NOW),
                Err(JwtError::InvalidClaim("exp"))
            ));
        }
    }

    #[test]
    fn issuer_must_match() {
        let ring = keyring();
        let token = ring
            .sign(&Claims {
                iss: "https://evil.test".into(),
                ..claims()
            })
            .unwrap();
        assert!(matches!(verify(&ring, &token), Err(JwtError::WrongIssuer)));
    }

    #[test]
    fn audience_string_or_array_must_contain_the_expected_value() {
        let ring = keyring();
        let with_aud = |aud: Value| ring.sign(&Claims { aud, ..claims() }).unwrap();
        assert!(verify(&ring, &with_aud(serde_json::json!(["other", "app"]))).is_ok());
        for wrong in [
            Value::from("other"),
            serde_json::json!(["other"]),
            serde_json::json!([]),
            Value::from("App"),
        ] {
            assert!(
                matches!(
                    verify(&ring, &with_aud(wrong.clone())),
                    Err(JwtError::WrongAudience)
                ),
                "{wrong}"
            );
        }
        for invalid in [Value::from(1), serde_json::json!(["app", 1])] {
            assert!(matches!(
                verify(&ring, &with_aud(invalid)),
                Err(JwtError::InvalidClaim("aud"))
            ));
        }
    }

    #[test]
    fn rotated_key_verifies_only_within_its_grace() {
        let mut ring = keyring();
        let old_token = ring.sign(&claims()).unwrap();
        let old_kid = ring.active().kid().to_owned();
        ring.rotate(JwtSigningKey::generate().unwrap(), 600, NOW);
        assert_ne!(ring.active().kid(), old_kid);

        // Within grace: accepted, and published.
        assert!(verify(&ring, &old_token).is_ok());
        let kids: Vec<String> = ring.jwks(NOW)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kids, vec![ring.active().kid().to_owned(), old_kid.clone()]);

        // After grace (use a generous validation so only the key is at issue).
        let later = NOW + 601;
        let long_lived =
            Keyring::with_previous(JwtSigningKey::generate().unwrap(), ring.previous().to_vec());
        let token = old_token;
        assert!(matches!(
            long_lived.verify::<Claims>(&token, &validation().with_leeway(1000), later),
            Err(JwtError::RetiredKey)
        ));
        assert_eq!(long_lived.jwks(later)["keys"].as_array().unwrap().len(), 1);

        // New tokens use the new key.
        let new_token = ring.sign(&claims()).unwrap();
        assert!(verify(&ring, &new_token).is_ok());
        ring.prune(later);
        assert!(ring.previous().is_empty());
    }

    #[test]
    fn rotating_to_the_same_key_keeps_no_duplicate() {
        let seed = SecretArray::new([5u8; 32]);
        let mut ring = Keyring::new(JwtSigningKey::from_seed(&seed));
        ring.rotate(JwtSigningKey::from_seed(&seed), 600, NOW);
        assert!(ring.previous().is_empty());
    }

    #[test]
    fn jwks_lists_public_keys_only() {
        let ring = keyring();
        let jwks = ring.jwks(NOW);
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], ring.active().kid());
        assert_eq!(
            key["x"],
            b64(ring.active().verifying_key().as_bytes()).as_str()
        );
        assert!(key.get("d").is_none());
    }

    #[test]
    fn structural_garbage_is_refused_without_panicking() {
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        type Expect = fn(&JwtError) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            ("".into(), |e| matches!(e, JwtError::WrongSegmentCount)),
            ("a.b".into(), |e| matches!(e, JwtError::WrongSegmentCount)),
            (format!("{token}.x"), |e| {
                matches!(e, JwtError::WrongSegmentCount)
            }),
            ("x".repeat(MAX_TOKEN_LEN + 1), |e| {
                matches!(e, JwtError::TooLong)
            }),
            (format!("{}=.{}.{}", parts[0], parts[1], parts[2]), |e| {
                matches!(e, JwtError::Base64)
            }),
            (format!("{}.{}.{}==", parts[0], parts[1], parts[2]), |e| {
                matches!(e, JwtError::Base64)
            }),
            (format!(" {}.{}.{}", parts[0], parts[1], parts[2]), |e| {
                matches!(e, JwtError::Base64)
            }),
            (
                format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
                |e| matches!(e, JwtError::Base64),
            ),
            (
                format!("{}.{}./{}", parts[0], parts[1], &parts[2][1..]),
                |e| matches!(e, JwtError::Base64),
            ),
            // Non-zero leftover bits in the last character: a second encoding of the
            // same bytes, refused so every token has exactly one spelling.
            (
                format!("{}.{}.{}", parts[0], parts[1], non_canonical(parts[2])),
                |e| matches!(e, JwtError::Base64),
            ),
            (format!("{}.{}.{}", b64(b"[]"), parts[1], parts[2]), |e| {
                matches!(e, JwtError::MalformedHeader)
            }),
            (format!("{}.{}.{}", b64(b"{"), parts[1], parts[2]), |e| {
                matches!(e, JwtError::MalformedHeader)
            }),
            (
                format!("{}.{}.{}", parts[0], parts[1], b64(&[0; 63])),
                |e| matches!(e, JwtError::BadSignature),
            ),
        ];
        for (token, expected) in cases {
            let err = verify(&ring, &token).unwrap_err();
            assert!(expected(&err), "{token:.60}: {err:?}");
        }
    }

    /// Sets a leftover bit in the final base64url character of a 64-byte value
    /// (86 characters; the last one carries 4 data bits and 2 zero bits).
    fn non_canonical(segment: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = segment.as_bytes()[segment.len() - 1];
        let index = ALPHABET.iter().position(|c| *c == last).unwrap();
        let flipped = ALPHABET[index ^ 1] as char;
        format!("{}{flipped}", &segment[..segment.len() - 1])
    }

    #[test]
    fn duplicate_members_are_refused() {
        let ring = keyring();
        let kid = ring.active().kid();
        let header = format!(r#"{{"alg":"EdDSA","alg":"none","kid":"{kid}","typ":"JWT"}}"#);
        let body = serde_json::to_string(&claims()).unwrap();
        let token_for = |header: &str, body: &str| {
            let input = format!("{}.{}", b64(header.as_bytes()), b64(body.as_bytes()));
            let sig = ring.active().key.sign(input.as_bytes());
            format!("{input}.{}", b64(&sig.to_bytes()))
        };
        assert!(matches!(
            verify(&ring, &token_for(&header, &body)),
            Err(JwtError::MalformedHeader)
        ));
        let good_header = format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}"#);
        let dup_body = body.replacen('{', &format!(r#"{{"exp":{},"#, NOW + 99_999), 1);
        assert!(matches!(
            verify(&ring, &token_for(&good_header, &dup_body)),
            Err(JwtError::MalformedClaims)
        ));
        assert!(verify(&ring, &token_for(&good_header, &body)).is_ok());
    }

    #[test]
    fn claims_of_the_wrong_shape_are_refused() {
        #[derive(Debug, Deserialize)]
        struct NeedsRole {
            #[allow(dead_code)]
            role: String,
        }
        let ring = keyring();
        let token = ring.sign(&claims()).unwrap();
        assert!(matches!(
            ring.verify::<NeedsRole>(&token, &validation(), NOW),
            Err(JwtError::ClaimsShape)
        ));
    }

    #[test]
    fn pkcs8_pem_round_trip_and_openssl_compatibility() {
        let key = JwtSigningKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(
            pem.expose_secret()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        // v1, 48 bytes of DER: the exact shape `openssl genpkey` produces.
        assert!(
            pem.expose_secret().contains("\nMC4CAQAwBQYDK2VwBCIEI"),
            "{}",
            pem.expose_secret()
        );
        let back = JwtSigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.kid(), key.kid());

        // RFC 8410 §10.3: the form `openssl genpkey -algorithm Ed25519` writes
        // (PKCS#8 v1, no public key). The RFC's published example key, kept with the
        // other test vectors.
        let openssl = SecretString::from(include_str!("../tests/vectors/rfc8410-ed25519.pem"));
        let key = JwtSigningKey::from_pkcs8_pem(&openssl).unwrap();
        // RFC 8410 §10.1 gives the matching public key.
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"
        );

        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(matches!(
                JwtSigningKey::from_pkcs8_pem(&SecretString::from(bad)),
                Err(JwtError::Pkcs8)
            ));
        }
    }

    #[test]
    fn debug_shows_only_the_kid() {
        let key = JwtSigningKey::from_seed(&SecretArray::new([0x42; 32]));
        let text = format!("{key:?}");
        assert!(text.contains(key.kid()));
        assert!(!text.contains("66"), "{text}");
    }

    #[test]
    fn rfc8037_vectors() {
        let v: Value = serde_json::from_str(JOSE_VECTORS).unwrap();
        let case = v["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "rfc8037-A.4-EdDSA")
            .unwrap();
        let d = URL_SAFE_NO_PAD
            .decode(case["jwk"]["d"].as_str().unwrap())
            .unwrap();
        let key = JwtSigningKey::from_seed(&SecretArray::new(d.try_into().unwrap()));

        // A.2: public key and A.3: RFC 7638 thumbprint (our kid).
        assert_eq!(
            b64(key.verifying_key().as_bytes()),
            case["jwk"]["x"].as_str().unwrap()
        );
        assert_eq!(key.kid(), case["jwk_thumbprint_rfc7638"].as_str().unwrap());

        // A.4: Ed25519 is deterministic, so signing reproduces the signature exactly.
        let token = case["token"].as_str().unwrap();
        let (input, sig_b64) = token.rsplit_once('.').unwrap();
        let sig = key.key.sign(input.as_bytes());
        assert_eq!(b64(&sig.to_bytes()), sig_b64);
        let payload = URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap();
        assert_eq!(payload, case["payload_text"].as_str().unwrap().as_bytes());

        // A.5: the signature verifies (strictly) with the public key.
        let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD.decode(sig_b64).unwrap().try_into().unwrap();
        assert!(
            key.verifying_key()
                .verify_strict(input.as_bytes(), &Signature::from_bytes(&sig_bytes))
                .is_ok()
        );

        // It is a raw JWS (no typ, no kid, plain-text payload): not a Rampart JWT.
        let ring = Keyring::new(key);
        assert!(matches!(
            ring.verify::<Value>(token, &validation(), NOW),
            Err(JwtError::UnexpectedType)
        ));
    }

    #[test]
    fn rfc7515_and_7519_vectors_are_refused() {
        let v: Value = serde_json::from_str(JOSE_VECTORS).unwrap();
        let ring = keyring();
        for case in v["vectors"].as_array().unwrap() {
            let token = case["token"].as_str().unwrap();
            let result = ring.verify::<Value>(token, &validation(), NOW);
            let expected_ok = match case["id"].as_str().unwrap() {
                "rfc7515-A.1-HS256" | "rfc7515-A.3-ES256" => {
                    matches!(result, Err(JwtError::UnsupportedAlgorithm))
                }
                "rfc7519-6.1-unsecured" => matches!(result, Err(JwtError::AlgNone)),
                "rfc8037-A.4-EdDSA" => matches!(result, Err(JwtError::UnexpectedType)),
                other => panic!("unexpected vector {other}"),
            };
            assert!(expected_ok, "{}: {result:?}", case["id"]);
        }
    }

    proptest::proptest! {
        #[test]
        fn prop_arbitrary_text_never_panics(token in ".{0,400}") {
            let ring = Keyring::new(JwtSigningKey::from_seed(&SecretArray::new([1; 32])));
            proptest::prop_assert!(ring.verify::<Value>(&token, &validation(), NOW).is_err());
        }

        #[test]
        fn prop_token_shaped_garbage_never_panics(
            token in "[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}"
        ) {
            let ring = Keyring::new(JwtSigningKey::from_seed(&SecretArray::new([1; 32])));
            proptest::prop_assert!(ring.verify::<Value>(&token, &validation(), NOW).is_err());
        }

        #[test]
        fn prop_sign_verify_round_trip(sub in ".{0,64}", ttl in 1i64..100_000) {
            let ring = Keyring::new(JwtSigningKey::from_seed(&SecretArray::new([2; 32])));
            let claims = Claims { sub, exp: NOW + ttl, ..claims() };
            let token = ring.sign(&claims).unwrap();
            proptest::prop_assert_eq!(verify(&ring, &token).unwrap(), claims);
        }
    }
}
