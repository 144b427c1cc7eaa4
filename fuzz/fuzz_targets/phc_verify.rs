//! Stored password hashes (PHC strings from the database or an import): parsing never
//! panics, and parameters above the limits are refused before any hashing.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_crypto::SecretString;
use rampart_crypto::password::{PasswordConfig, PasswordHasher};

fn hasher() -> &'static PasswordHasher {
    static HASHER: OnceLock<PasswordHasher> = OnceLock::new();
    HASHER.get_or_init(|| PasswordHasher::new(PasswordConfig::default()).expect("hasher"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(phc) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hasher().verify(&SecretString::from("password"), phc);
});
