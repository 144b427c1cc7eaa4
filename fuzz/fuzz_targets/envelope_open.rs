//! Sealed data read back from storage: opening never panics and never succeeds for
//! bytes that were not sealed with the key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_crypto::envelope::{self, DataKey};

fn key() -> &'static DataKey {
    static KEY: OnceLock<DataKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::generate().expect("randomness"))
}

fuzz_target!(|data: &[u8]| {
    let _ = envelope::key_id(data);
    assert!(envelope::open(key(), b"fuzz", data).is_err(), "forged ciphertext opened");
});
