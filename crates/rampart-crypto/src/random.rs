//! Randomness from the operating system.
//!
//! Randomness is an input to the domain (see `rampart_core::Rng`); this module is the
//! production source behind it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The OS random source failed. There is no safe fallback, so callers fail closed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `dest` from the OS CSPRNG.
pub fn fill(dest: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(dest).map_err(|_| RandomError)
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A URL-safe token carrying `N` random bytes (base64url, no padding).
pub fn token<const N: usize>() -> Result<String, RandomError> {
    let raw = bytes::<N>()?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_have_expected_length() {
        let a = token::<32>().unwrap();
        let b = token::<32>().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
