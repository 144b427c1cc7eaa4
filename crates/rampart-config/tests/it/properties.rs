//! Properties over arbitrary input: loading never panics, secrets never leak.

use proptest::prelude::*;
use rampart_config::from_toml_str;

use crate::env;

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = from_toml_str(&text, &Default::default());
    }

    #[test]
    fn arbitrary_variables_never_panic(name in "RAMPART_[A-Z0-9_]{0,40}", value in "\\PC{0,40}") {
        let _ = from_toml_str("[upstreams.a]\nurl = \"http://127.0.0.1:1\"\n[[routes]]\nname = \"r\"\nupstream = \"a\"\n", &env(&[(&name, &value)]));
    }

    #[test]
    fn secret_values_never_appear_in_errors(secret in "[a-zA-Z0-9]{12,40}") {
        let text = format!(
            "[storage]\nbackend = \"postgres\"\nurl = \"mysql://u:{secret}@db/x\"\n[metrics]\ntoken = 12\ntokn = \"{secret}\"\n[server]\nlisten = \"nope\"\n"
        );
        let vars = env(&[
            ("RAMPART_REDIS_URL", secret.as_str()),
            ("RAMPART_MASTER_KEY_HEX", secret.as_str()),
            ("RAMPART_EMAIL_SMTP_PASSWORD", secret.as_str()),
        ]);
        let err = from_toml_str(&text, &vars).unwrap_err();
        prop_assert!(!err.to_string().contains(&secret));
        let debug = format!("{err:?}");
        prop_assert!(!debug.contains(&secret));
    }
}
