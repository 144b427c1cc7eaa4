//! Sign-in return URLs: validation never panics and only ever returns a same-site path
//! or a URL on an allowed origin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_http::return_url::ReturnUrls;

fuzz_target!(|data: &[u8]| {
    let Ok(candidate) = std::str::from_utf8(data) else {
        return;
    };
    let urls = ReturnUrls::new(["https://app.example.com".to_owned()]);
    let target = urls.validate(candidate);
    assert!(
        (target.starts_with('/') && !target.starts_with("//"))
            || target.starts_with("https://app.example.com/"),
        "{target}"
    );
});
