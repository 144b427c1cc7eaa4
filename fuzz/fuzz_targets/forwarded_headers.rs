//! Forwarded headers from a trusted proxy: resolution never panics, and an untrusted
//! peer's headers never change the client address.
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rampart_http::client_ip::{TrustedProxies, resolve};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, chunk) in data.split(|b| *b == b'\n').enumerate() {
        let name = ["x-forwarded-for", "forwarded", "x-forwarded-proto", "cf-connecting-ip"][i % 4];
        if let Ok(value) = HeaderValue::from_bytes(chunk) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("cidr")]);
    let untrusted: IpAddr = "203.0.113.9".parse().expect("ip");
    assert_eq!(resolve(untrusted, false, &headers, &trusted).ip, untrusted);
    let _ = resolve("10.1.2.3".parse().expect("ip"), false, &headers, &trusted);
});
