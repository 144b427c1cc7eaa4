//! Identity settings: defaults, typed values and every validation rule.

use std::time::Duration;

use rampart_config::{Config, RoleConfig, SecretOrigin, from_toml_str};

use crate::{PEPPER, env, load, load_env_err, load_err, problem, secret_file, toml_path};

fn roles(config: &Config) -> Vec<(&str, &RoleConfig)> {
    config
        .roles
        .iter()
        .map(|(name, role)| (name.as_str(), role))
        .collect()
}

#[test]
fn defaults_are_typed() {
    let config = load("").unwrap();
    let auth = &config.auth;
    assert_eq!(auth.password_min_length, 12);
    assert_eq!(auth.setup_token_ttl, Duration::from_secs(3600));
    assert_eq!(auth.invite_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(
        auth.max_concurrent_hashes,
        std::thread::available_parallelism().unwrap(),
        "0 means one per CPU"
    );
    assert_eq!(auth.lockout.max_failures.get(), 10);
    assert_eq!(auth.lockout.window, Duration::from_secs(900));
    assert_eq!(auth.lockout.duration, Duration::from_secs(900));
    assert_eq!(
        auth.password.argon2_params(),
        rampart_crypto::Argon2Params::OWASP
    );
    assert!(auth.password.pepper.is_none());

    let jwt = &config.jwt;
    assert_eq!(jwt.refresh_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(jwt.refresh_reuse_leeway, Duration::from_secs(5));
    assert_eq!(jwt.leeway, Duration::from_secs(30));
    assert_eq!(jwt.rotation_grace, jwt.access_ttl, "defaults to access_ttl");
    assert_eq!(jwt.assertion_ttl, Duration::from_secs(60));

    assert!(!config.api_tokens.allow_admin);
    assert_eq!(
        config.api_tokens.default_ttl,
        Duration::from_secs(90 * 86_400)
    );
    assert_eq!(config.api_tokens.max_ttl, Duration::from_secs(365 * 86_400));
    assert_eq!(config.totp.issuer, "Rampart");
    assert_eq!(config.totp.skew, 1);
    assert!(config.magic_link.enabled);
    assert_eq!(config.magic_link.ttl, Duration::from_secs(900));
    assert!(config.csrf.allowed_origins.is_empty());
    assert!(
        config.csrf_origins().is_empty(),
        "no public_url, no origins"
    );

    assert_eq!(
        roles(&config),
        [
            (
                "admin",
                &RoleConfig {
                    permissions: vec!["*".to_owned()],
                    require_mfa: true
                }
            ),
            (
                "user",
                &RoleConfig {
                    permissions: vec![],
                    require_mfa: false
                }
            ),
        ]
    );
    assert!(config.roles["admin"].is_admin_equivalent());
    assert_eq!(config.session.cookie_name(), "__Host-rampart_session");
}

#[test]
fn a_full_identity_config_parses() {
    let config = load(
        r#"
        public_url = "https://auth.example.com"
        [auth]
        password_min_length = 16
        setup_token_ttl = "30m"
        invite_ttl = "2d"
        max_concurrent_hashes = 3
        [auth.lockout]
        max_failures = 5
        window = "10m"
        duration = "1h"
        [auth.password]
        memory_kib = 47104
        iterations = 1
        parallelism = 2
        [jwt]
        access_ttl = "10m"
        refresh_ttl = "7d"
        refresh_reuse_leeway = "0s"
        leeway = "10s"
        rotation_grace = "1h"
        assertion_ttl = "30s"
        [api_tokens]
        default_ttl = "30d"
        max_ttl = "30d"
        [totp]
        issuer = " Example Corp "
        skew = 0
        [magic_link]
        enabled = false
        ttl = "1h"
        [csrf]
        allowed_origins = ["HTTPS://App.Example.com:443", "https://auth.example.com", "tauri://localhost"]
        [roles.admin]
        permissions = ["*"]
        [roles.support]
        permissions = ["users:read", "integration:invoke"]
        require_mfa = true
        [session]
        domain = "example.com"
        cookie_name = "__Secure-sid"
        "#,
    )
    .unwrap();
    assert_eq!(config.auth.password_min_length, 16);
    assert_eq!(config.auth.max_concurrent_hashes.get(), 3);
    assert_eq!(config.auth.lockout.duration, Duration::from_secs(3600));
    assert_eq!(config.auth.password.memory_kib.get(), 47_104);
    assert_eq!(config.auth.password.parallelism.get(), 2);
    assert_eq!(config.jwt.refresh_reuse_leeway, Duration::ZERO);
    assert_eq!(config.jwt.rotation_grace, Duration::from_secs(3600));
    assert_eq!(config.totp.issuer, "Example Corp");
    assert_eq!(config.totp.skew, 0);
    assert!(!config.magic_link.enabled);
    assert_eq!(
        config.csrf.allowed_origins,
        [
            "https://app.example.com",
            "https://auth.example.com",
            "tauri://localhost"
        ]
    );
    assert_eq!(
        config.csrf_origins(),
        [
            "https://auth.example.com",
            "https://app.example.com",
            "tauri://localhost"
        ],
        "public_url's origin first, without repeats"
    );
    // Defining roles replaces the defaults; `admin` still requires MFA by default.
    assert_eq!(config.roles.len(), 2);
    assert!(config.roles["admin"].require_mfa);
    assert_eq!(
        config.roles["support"].permissions,
        ["users:read", "integration:invoke"]
    );
    assert!(!config.roles["support"].is_admin_equivalent());
    assert_eq!(config.session.cookie_name(), "__Secure-sid");
}

#[test]
fn other_roles_do_not_require_mfa_by_default() {
    let config = load("[roles.ops]\npermissions = [\"admin\"]\n").unwrap();
    assert_eq!(
        roles(&config),
        [(
            "ops",
            &RoleConfig {
                permissions: vec!["admin".to_owned()],
                require_mfa: false
            }
        )]
    );
    let config = load("[roles.admin]\nrequire_mfa = false\n").unwrap();
    assert!(!config.roles["admin"].require_mfa);
    assert!(config.roles["admin"].permissions.is_empty());
}

#[test]
fn password_min_length_bounds() {
    for (value, says) in [(7, "too short"), (129, "too long"), (0, "too short")] {
        let err = load_err(&format!("[auth]\npassword_min_length = {value}\n"));
        let p = problem(&err, "auth.password_min_length");
        assert!(p.message.contains(says), "{}", p.message);
        assert_eq!(p.value.as_deref(), Some(value.to_string().as_str()));
        assert!(p.fix.contains("8 to 128"), "{}", p.fix);
    }
    for value in [8, 128] {
        load(&format!("[auth]\npassword_min_length = {value}\n")).unwrap();
    }
    let err = load_err("[auth]\npassword_min_length = -1\n");
    assert!(
        problem(&err, "auth.password_min_length")
            .message
            .contains("out of range")
    );
}

#[test]
fn auth_durations() {
    let err = load_err(
        "[auth]\nsetup_token_ttl = \"2d\"\ninvite_ttl = \"0s\"\n[auth.lockout]\nwindow = \"soon\"\nduration = \"0s\"\nmax_failures = 0\n",
    );
    let p = problem(&err, "auth.setup_token_ttl");
    assert!(p.message.contains("longer than 24h"), "{}", p.message);
    assert!(p.fix.contains("\"24h\""));
    assert_eq!(
        problem(&err, "auth.invite_ttl").message,
        "must be longer than zero"
    );
    assert_eq!(
        problem(&err, "auth.lockout.window").message,
        "not a duration"
    );
    assert_eq!(
        problem(&err, "auth.lockout.duration").message,
        "must be longer than zero"
    );
    assert!(
        problem(&err, "auth.lockout.max_failures")
            .message
            .starts_with("out of range: must be between 1 and")
    );
    assert_eq!(err.problems().len(), 5, "{err}");
}

#[test]
fn every_owasp_argon2_setting_is_accepted() {
    for (m, t) in [
        (47_104, 1),
        (19_456, 2),
        (12_288, 3),
        (9_216, 4),
        (7_168, 5),
        (262_144, 1),
        (7_168, 10),
    ] {
        let config = load(&format!(
            "[auth.password]\nmemory_kib = {m}\niterations = {t}\n"
        ))
        .unwrap_or_else(|e| panic!("m={m} t={t}: {e}"));
        assert_eq!(config.auth.password.argon2_params().memory_kib, m);
    }
}

#[test]
fn argon2_below_owasp_is_refused_with_the_fix() {
    let err = load_err("[auth.password]\nmemory_kib = 4096\n");
    let p = problem(&err, "auth.password.memory_kib");
    assert_eq!(p.value.as_deref(), Some("4096"));
    assert!(p.message.contains("OWASP minimum"), "{}", p.message);
    assert!(p.fix.contains("m=19456/t=2"), "{}", p.fix);

    // Enough memory for some setting, too few passes for it: the passes are named.
    let err = load_err("[auth.password]\niterations = 1\n");
    let p = problem(&err, "auth.password.iterations");
    assert!(p.message.contains("memory_kib = 19456"), "{}", p.message);
    assert!(
        p.fix
            .starts_with("set iterations = 2, or memory_kib = 47104"),
        "{}",
        p.fix
    );
    let err = load_err("[auth.password]\nmemory_kib = 12288\niterations = 2\n");
    assert!(
        problem(&err, "auth.password.iterations")
            .fix
            .starts_with("set iterations = 3, or memory_kib = 19456")
    );
    let err = load_err("[auth.password]\nparallelism = 0\n");
    assert!(
        problem(&err, "auth.password.parallelism")
            .message
            .starts_with("out of range: must be between 1 and")
    );
}

#[test]
fn argon2_above_the_stored_hash_limits_is_refused() {
    let err = load_err("[auth.password]\nmemory_kib = 300000\niterations = 11\nparallelism = 9\n");
    for (key, max) in [
        ("auth.password.memory_kib", "262144"),
        ("auth.password.iterations", "10"),
        ("auth.password.parallelism", "8"),
    ] {
        let p = problem(&err, key);
        assert!(p.message.contains(max), "{key}: {}", p.message);
        assert!(p.fix.contains(&format!("at most {max}")), "{}", p.fix);
    }
    assert_eq!(err.problems().len(), 3, "{err}");
}

#[test]
fn pepper_is_a_secret_with_every_source() {
    let config = from_toml_str("", &env(&[("RAMPART_AUTH_PASSWORD_PEPPER", PEPPER)])).unwrap();
    let pepper = config.auth.password.pepper.as_ref().unwrap();
    assert_eq!(pepper.value.expose_secret(), PEPPER);
    assert_eq!(
        pepper.origin,
        SecretOrigin::Env {
            var: "RAMPART_AUTH_PASSWORD_PEPPER".to_owned()
        }
    );
    assert!(
        config
            .secret_origins()
            .iter()
            .any(|(name, _)| *name == "auth.password.pepper")
    );

    let dir = tempfile::tempdir().unwrap();
    let file = secret_file(dir.path(), "pepper", &format!("{PEPPER}\n"));
    let config = load(&format!(
        "[auth.password]\npepper_file = {}\n",
        toml_path(&file)
    ))
    .unwrap();
    assert_eq!(
        config.auth.password.pepper.as_ref().unwrap().origin,
        SecretOrigin::File(file.clone())
    );
    assert!(
        config
            .secret_files()
            .contains(&("auth.password.pepper_file".to_owned(), file.clone()))
    );

    let json = secret_file(
        dir.path(),
        "secrets.json",
        &format!(r#"{{"auth.password.pepper": "{PEPPER}"}}"#),
    );
    let config = load(&format!("[secrets]\nfile = {}\n", toml_path(&json))).unwrap();
    assert_eq!(
        config.auth.password.pepper.as_ref().unwrap().origin,
        SecretOrigin::SecretsFile(json)
    );

    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    secret_file(&creds, "auth.password.pepper", PEPPER);
    let config = from_toml_str(
        "",
        &env(&[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(
        config.auth.password.pepper.as_ref().unwrap().origin,
        SecretOrigin::Credentials(creds.join("auth.password.pepper"))
    );

    let err = load_env_err(
        &format!("[auth.password]\npepper_file = {}\n", toml_path(&file)),
        &[("RAMPART_AUTH_PASSWORD_PEPPER", PEPPER)],
    );
    assert_eq!(
        problem(&err, "auth.password.pepper").fix,
        "keep one: remove auth.password.pepper or auth.password.pepper_file"
    );
}

#[test]
fn a_short_pepper_is_refused_in_every_mode_without_showing_it() {
    for mode in ["production", "dev"] {
        let err = load_env_err(
            &format!("mode = \"{mode}\"\n"),
            &[("RAMPART_AUTH_PASSWORD_PEPPER", "short-pepper-value")],
        );
        let p = problem(&err, "auth.password.pepper");
        assert_eq!(p.value.as_deref(), Some("[redacted]"));
        assert!(
            p.message.contains("$RAMPART_AUTH_PASSWORD_PEPPER")
                && p.message.contains("shorter than 32"),
            "{}",
            p.message
        );
        assert!(p.fix.contains("openssl rand -hex 32"));
        assert!(!err.to_string().contains("short-pepper-value"));
    }
}

#[test]
fn jwt_lifetimes() {
    let err = load_err(
        "[jwt]\naccess_ttl = \"1h\"\nrefresh_ttl = \"30m\"\nrefresh_reuse_leeway = \"2m\"\nleeway = \"10m\"\nrotation_grace = \"10m\"\n",
    );
    let p = problem(&err, "jwt.refresh_ttl");
    assert!(
        p.message.contains("shorter than jwt.access_ttl (1h)"),
        "{}",
        p.message
    );
    let p = problem(&err, "jwt.refresh_reuse_leeway");
    assert!(p.message.starts_with("longer than 1m"), "{}", p.message);
    assert_eq!(p.fix, "use at most \"1m\"; the default is \"5s\"");
    assert!(
        problem(&err, "jwt.leeway")
            .message
            .starts_with("longer than 5m")
    );
    let p = problem(&err, "jwt.rotation_grace");
    assert!(
        p.message.contains("shorter than jwt.access_ttl (1h)"),
        "{}",
        p.message
    );
    assert!(p.fix.contains("at least \"1h\""), "{}", p.fix);
    assert_eq!(err.problems().len(), 4, "{err}");

    let err = load_err("[jwt]\nassertion_ttl = \"10m\"\n");
    assert!(
        problem(&err, "jwt.assertion_ttl")
            .message
            .starts_with("longer than 5m")
    );
    let err = load_err("[jwt]\nassertion_ttl = \"0s\"\nrotation_grace = \"0s\"\n");
    problem(&err, "jwt.assertion_ttl");
    problem(&err, "jwt.rotation_grace");

    // The grace covers the longest-lived token, assertions included.
    let err =
        load_err("[jwt]\naccess_ttl = \"1m\"\nassertion_ttl = \"2m\"\nrotation_grace = \"1m\"\n");
    assert!(
        problem(&err, "jwt.rotation_grace")
            .message
            .contains("jwt.assertion_ttl (2m)")
    );
    let config = load("[jwt]\naccess_ttl = \"1m\"\nassertion_ttl = \"2m\"\n").unwrap();
    assert_eq!(config.jwt.rotation_grace, Duration::from_secs(120));
}

#[test]
fn api_token_lifetimes() {
    let err = load_err("[api_tokens]\ndefault_ttl = \"90d\"\nmax_ttl = \"30d\"\n");
    let p = problem(&err, "api_tokens.max_ttl");
    assert_eq!(p.message, "shorter than api_tokens.default_ttl (90d)");
    assert_eq!(p.fix, "raise max_ttl or lower default_ttl");
    let err = load_err("[api_tokens]\ndefault_ttl = \"0s\"\n");
    problem(&err, "api_tokens.default_ttl");
}

#[test]
fn totp_rules() {
    let err = load_err("[totp]\nskew = 3\nissuer = \"Example: Corp\"\n");
    let p = problem(&err, "totp.skew");
    assert_eq!(p.value.as_deref(), Some("3"));
    assert!(p.message.contains("RFC 6238"), "{}", p.message);
    assert_eq!(p.fix, "use 0, 1 or 2; the default is 1");
    assert!(problem(&err, "totp.issuer").message.contains("':'"));
    let err = load_err("[totp]\nissuer = \"  \"\nskew = 300\n");
    problem(&err, "totp.issuer");
    problem(&err, "totp.skew");
}

#[test]
fn magic_link_ttl_is_at_most_an_hour() {
    let err = load_err("[magic_link]\nttl = \"2h\"\n");
    let p = problem(&err, "magic_link.ttl");
    assert!(p.message.starts_with("longer than 1h"), "{}", p.message);
    assert_eq!(p.fix, "use at most \"1h\"; the default is \"15m\"");
    let err = load_err("[magic_link]\nttl = \"0s\"\n");
    problem(&err, "magic_link.ttl");
}

#[test]
fn csrf_origins_are_exact() {
    let err = load_err(
        "[csrf]\nallowed_origins = [\"*\", \"null\", \"https://app.example.com/\", \"app.example.com\", \"https://ok.example\"]\n",
    );
    let p = problem(&err, "csrf.allowed_origins[0]");
    assert!(p.message.contains("every site"), "{}", p.message);
    assert!(p.fix.contains("exact origins"));
    assert!(
        problem(&err, "csrf.allowed_origins[1]")
            .message
            .contains("null")
    );
    assert!(
        problem(&err, "csrf.allowed_origins[2]")
            .message
            .contains("trailing")
    );
    assert!(
        problem(&err, "csrf.allowed_origins[3]")
            .message
            .contains("scheme")
    );
    assert_eq!(err.problems().len(), 4, "{err}");
}

#[test]
fn role_names_and_permissions_are_checked() {
    let err = load_err(
        r#"
        [roles."Support Team"]
        permissions = ["users:read"]
        [roles.ops]
        permissions = ["users:read", "Users:Write", "users:*", ""]
        "#,
    );
    let p = problem(&err, "roles.\"Support Team\"");
    assert!(p.message.contains("a-z"), "{}", p.message);
    assert_eq!(p.fix, "rename it, e.g. [roles.support-team]");
    for i in [1, 2, 3] {
        let p = problem(&err, &format!("roles.ops.permissions[{i}]"));
        assert_eq!(p.message, "not a permission");
        assert!(p.fix.contains("users:read"), "{}", p.fix);
    }
    assert_eq!(err.problems().len(), 4, "{err}");
    let err = load_err("[roles.ops]\npermissions = \"*\"\nrequre_mfa = true\n");
    assert!(
        problem(&err, "roles.ops.requre_mfa")
            .message
            .contains("did you mean \"require_mfa\"")
    );
    assert_eq!(
        problem(&err, "roles.ops.permissions").message,
        "expected a list, found a string"
    );
}

#[test]
fn session_cookie_name_is_derived_from_the_flags() {
    let host_only = load("").unwrap();
    assert_eq!(host_only.session.cookie_name(), "__Host-rampart_session");
    let with_domain = load("[session]\ndomain = \"example.com\"\n").unwrap();
    assert_eq!(
        with_domain.session.cookie_name(),
        "__Secure-rampart_session"
    );
    let insecure = load("mode = \"dev\"\n[session]\ncookie_secure = false\n").unwrap();
    assert_eq!(insecure.session.cookie_name(), "rampart_session");
    let mut edited = host_only.clone();
    edited.session.domain = Some("example.com".to_owned());
    assert_eq!(edited.session.cookie_name(), "__Secure-rampart_session");
    let custom = load("[session]\ncookie_name = \"__Host-sid\"\n").unwrap();
    assert_eq!(custom.session.cookie_name(), "__Host-sid");
    assert_eq!(
        custom.session.cookie_name_override.as_deref(),
        Some("__Host-sid")
    );
    let plain = load("[session]\ncookie_secure = false\ncookie_name = \"sid\"\n").unwrap();
    assert_eq!(plain.session.cookie_name(), "sid");
}

#[test]
fn session_cookie_name_must_fit_its_flags() {
    let cases = [
        (
            "domain = \"example.com\"\ncookie_name = \"__Host-sid\"",
            "cannot have a Domain",
            "rename it to __Secure-sid, or remove session.domain",
        ),
        (
            "cookie_secure = false\ncookie_name = \"__Host-sid\"",
            "must be Secure",
            "set session.cookie_secure = true, or rename it to sid",
        ),
        (
            "cookie_secure = false\ncookie_name = \"__Secure-sid\"",
            "must be Secure",
            "set session.cookie_secure = true, or rename it to sid",
        ),
        (
            "cookie_name = \"sid\"",
            "must be named __Host-",
            "rename it to __Host-sid",
        ),
        (
            "cookie_name = \"__Secure-sid\"",
            "must be named __Host-",
            "rename it to __Host-sid",
        ),
        (
            "domain = \"example.com\"\ncookie_name = \"sid\"",
            "must be named __Secure-",
            "rename it to __Secure-sid",
        ),
        (
            "cookie_name = \"__host-sid\"",
            "written exactly __Host-",
            "rename it to __Host-sid",
        ),
        (
            "cookie_name = \"__Host-\"",
            "only a prefix",
            "rename it to __Host-rampart_session",
        ),
        (
            "cookie_name = \"my session\"",
            "not a cookie name",
            "use letters, digits",
        ),
    ];
    for (text, message, fix) in cases {
        let err = load_err(&format!("mode = \"dev\"\n[session]\n{text}\n"));
        let p = problem(&err, "session.cookie_name");
        assert!(p.message.contains(message), "{text}: {}", p.message);
        assert!(p.fix.starts_with(fix), "{text}: {}", p.fix);
        assert_eq!(err.problems().len(), 1, "{err}");
    }
}
