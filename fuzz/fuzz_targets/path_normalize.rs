//! Request paths: normalization never panics, and its output is a fixed point
//! (normalizing a canonical path changes nothing), so policy and upstream agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_proxy::normalize::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(canonical) = normalize(raw) {
        let again = normalize(canonical.as_str()).expect("a canonical path normalizes");
        assert_eq!(again, canonical);
    }
});
