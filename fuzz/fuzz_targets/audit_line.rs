//! Audit JSON lines (files and exports handed to `rampart audit verify`): parsing
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_core::audit::format::Entry;

fuzz_target!(|data: &[u8]| {
    let _ = Entry::parse_line(data);
});
