//! Bearer tokens: verification never panics and never accepts a token that was not
//! signed by the keyring (a fresh random key here, so nothing may verify).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_crypto::jwt::{JwtSigningKey, Keyring, Validation};

fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| Keyring::new(JwtSigningKey::generate().expect("randomness")))
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let validation = Validation::new("rampart", "rampart");
    let verified = keyring().verify::<serde_json::Value>(token, &validation, 1_800_000_000);
    assert!(verified.is_err(), "a forged token verified");
});
