//! `Cookie` headers: finding the session id never panics, and only a well-formed
//! 256-bit id is ever returned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_config::SameSite;
use rampart_identity::sessions::CookieSettings;

fuzz_target!(|data: &[u8]| {
    let settings = CookieSettings {
        name: "__Host-rampart_session".to_owned(),
        secure: true,
        same_site: SameSite::Lax,
        domain: None,
    };
    if let Some(id) = settings.read(std::iter::once(data)) {
        assert_eq!(id.expose_secret().len(), 43);
    }
});
