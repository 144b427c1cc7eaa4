//! `RAMPART_*` variables override every key, and unknown ones are refused.

use rampart_config::{Mode, RESERVED_ENV_VARS, SecretOrigin, from_toml_str};

use crate::{KEY_HEX, env, load_env_err, problem};

#[test]
fn documented_examples_override_the_file() {
    let config = from_toml_str(
        "[server]\nlisten = \"127.0.0.1:1\"\n[logging]\nlevel = \"warn\"\n",
        &env(&[
            ("RAMPART_SERVER_LISTEN", "127.0.0.1:9999"),
            ("RAMPART_LOGGING_LEVEL", "debug"),
            ("RAMPART_MODE", "dev"),
            ("RAMPART_STORAGE_URL", "sqlite:///tmp/x.db"),
            ("RAMPART_MASTER_KEY_HEX", KEY_HEX),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.listen.port(), 9999);
    assert_eq!(config.logging.level.as_str(), "debug");
    assert_eq!(config.mode, Mode::Dev);
    let url = config.storage.url.as_ref().unwrap();
    assert_eq!(
        url.origin,
        SecretOrigin::Env {
            var: "RAMPART_STORAGE_URL".to_owned()
        }
    );
    assert_eq!(
        config.master_key.as_ref().unwrap().origin,
        SecretOrigin::Env {
            var: "RAMPART_MASTER_KEY_HEX".to_owned()
        }
    );
}

#[test]
fn lists_integers_and_booleans_are_parsed_by_type() {
    let config = from_toml_str(
        "",
        &env(&[
            ("RAMPART_SERVER_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"),
            ("RAMPART_SERVER_MAX_CONNECTIONS", "42"),
            ("RAMPART_METRICS_ENABLED", "false"),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.trusted_proxies.len(), 2);
    assert_eq!(config.server.max_connections.get(), 42);
    assert!(!config.metrics.enabled);
}

#[test]
fn named_upstreams_and_indexed_routes() {
    let text = r#"
        [upstreams.billing-api]
        url = "http://127.0.0.1:3000"
        [[routes]]
        name = "billing"
        upstream = "billing-api"
    "#;
    let config = from_toml_str(
        text,
        &env(&[
            ("RAMPART_UPSTREAMS_BILLING_API_URL", "http://127.0.0.1:4000"),
            ("RAMPART_ROUTES_0_AUTH", "public"),
        ]),
    )
    .unwrap();
    assert_eq!(config.upstreams["billing-api"].url.port(), Some(4000));
    assert_eq!(config.routes[0].auth, rampart_config::RouteAuth::Public);
}

#[test]
fn unknown_variables_are_errors_naming_them() {
    let err = load_env_err(
        "",
        &[
            ("RAMPART_SERVER_LISTN", "127.0.0.1:1"),
            ("RAMPART_NONSENSE", "1"),
            ("RAMPART_UPSTREAMS_NOPE_URL", "http://x"),
        ],
    );
    let p = problem(&err, "RAMPART_SERVER_LISTN");
    assert!(
        p.message.contains("did you mean RAMPART_SERVER_LISTEN?"),
        "{}",
        p.message
    );
    assert!(p.value.is_none());
    problem(&err, "RAMPART_NONSENSE");
    assert!(
        problem(&err, "RAMPART_UPSTREAMS_NOPE_URL")
            .fix
            .contains("define them in the file")
    );
}

#[test]
fn reserved_and_foreign_variables_are_ignored() {
    assert!(RESERVED_ENV_VARS.contains(&"RAMPART_CONFIG"));
    let config = from_toml_str(
        "",
        &env(&[
            ("RAMPART_CONFIG", "/etc/rampart/rampart.toml"),
            ("PATH", "/usr/bin"),
            ("RAMPART_SERVER_LISTEN", ""),
        ]),
    )
    .unwrap();
    assert_eq!(
        config.server.listen.port(),
        9171,
        "empty variables do not override"
    );
}

#[test]
fn env_values_are_validated_like_file_values() {
    let err = load_env_err(
        "",
        &[
            ("RAMPART_SERVER_LISTEN", "localhost:abc"),
            ("RAMPART_SERVER_MAX_CONNECTIONS", "many"),
            ("RAMPART_MODE", "prod"),
        ],
    );
    assert_eq!(
        problem(&err, "server.listen").message,
        "not a socket address"
    );
    let p = problem(&err, "RAMPART_SERVER_MAX_CONNECTIONS");
    assert!(p.message.contains("not a whole number"));
    assert!(
        problem(&err, "mode")
            .message
            .contains("did you mean \"production\"")
    );
}

#[test]
fn secret_env_values_are_never_shown() {
    let err = load_env_err("", &[("RAMPART_STORAGE_URL", "mysql://root:hunter2@db/x")]);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn nested_identity_keys_are_overridden() {
    let config = from_toml_str(
        "[auth.lockout]\nmax_failures = 10\n",
        &env(&[
            ("RAMPART_AUTH_LOCKOUT_MAX_FAILURES", "3"),
            ("RAMPART_AUTH_PASSWORD_MIN_LENGTH", "14"),
            ("RAMPART_AUTH_PASSWORD_MEMORY_KIB", "47104"),
            ("RAMPART_AUTH_PASSWORD_ITERATIONS", "1"),
            ("RAMPART_JWT_REFRESH_REUSE_LEEWAY", "2s"),
            (
                "RAMPART_CSRF_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("RAMPART_SESSION_COOKIE_NAME", "__Host-sid"),
        ]),
    )
    .unwrap();
    assert_eq!(config.auth.lockout.max_failures.get(), 3);
    assert_eq!(config.auth.password_min_length, 14);
    assert_eq!(config.auth.password.memory_kib.get(), 47_104);
    assert_eq!(config.auth.password.iterations.get(), 1);
    assert_eq!(
        config.jwt.refresh_reuse_leeway,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        config.csrf.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(config.session.cookie_name(), "__Host-sid");

    let err = load_env_err("", &[("RAMPART_AUTH_LOCKOUT_MAX_FAILURES", "0")]);
    problem(&err, "auth.lockout.max_failures");
}

#[test]
fn default_roles_are_overridden_in_place() {
    // No [roles] table: the variable changes the default admin role and keeps the
    // rest of the defaults.
    let config = from_toml_str("", &env(&[("RAMPART_ROLES_ADMIN_REQUIRE_MFA", "false")])).unwrap();
    let admin = &config.roles["admin"];
    assert!(!admin.require_mfa);
    assert_eq!(admin.permissions, ["*"]);
    assert!(config.roles.contains_key("user"));

    let config = from_toml_str(
        "",
        &env(&[(
            "RAMPART_ROLES_USER_PERMISSIONS",
            "users:read, integration:invoke",
        )]),
    )
    .unwrap();
    assert_eq!(
        config.roles["user"].permissions,
        ["users:read", "integration:invoke"]
    );
    assert!(config.roles["admin"].require_mfa);
}

#[test]
fn roles_in_the_file_are_overridden_by_name() {
    let text = "[roles.admin]\npermissions = [\"*\"]\n[roles.billing-ops]\npermissions = [\"billing:read\"]\n";
    let config = from_toml_str(
        text,
        &env(&[
            ("RAMPART_ROLES_ADMIN_REQUIRE_MFA", "false"),
            ("RAMPART_ROLES_BILLING_OPS_REQUIRE_MFA", "true"),
        ]),
    )
    .unwrap();
    assert!(!config.roles["admin"].require_mfa);
    assert!(config.roles["billing-ops"].require_mfa);
    assert!(
        !config.roles.contains_key("user"),
        "a file with roles has no defaults"
    );

    // Roles the file does not define cannot be added, here: the file's roles
    // replace the defaults, so `user` is unknown too.
    let err = load_env_err(
        text,
        &[
            ("RAMPART_ROLES_USER_REQUIRE_MFA", "true"),
            ("RAMPART_ROLES_AUDITOR_PERMISSIONS", "audit:read"),
        ],
    );
    for var in [
        "RAMPART_ROLES_USER_REQUIRE_MFA",
        "RAMPART_ROLES_AUDITOR_PERMISSIONS",
    ] {
        assert!(
            problem(&err, var).fix.contains("define them in the file"),
            "{err}"
        );
    }
    let err = load_env_err("", &[("RAMPART_ROLES_ADMIN_REQUIRE_MFA", "maybe")]);
    assert!(
        problem(&err, "RAMPART_ROLES_ADMIN_REQUIRE_MFA")
            .message
            .contains("roles.admin.require_mfa")
    );
}

#[test]
fn gateway_keys_are_overridden() {
    let text = r#"
        [upstreams.app]
        url = "http://127.0.0.1:3000"
        [[routes]]
        name = "app"
        upstream = "app"
        inject_headers = { "X-Api-Key" = "vault:third_party" }
    "#;
    // No [rate_limit] table: the variable changes the default auth class and keeps
    // general; no [routes.tenant] table: the variable creates it.
    let config = from_toml_str(
        text,
        &env(&[
            ("RAMPART_RATE_LIMIT_CLASSES_AUTH_BURST", "20"),
            ("RAMPART_HEADERS_HSTS_MAX_AGE", "2d"),
            ("RAMPART_ROUTES_0_REQUIRE_MFA", "true"),
            ("RAMPART_ROUTES_0_ROLES", "admin, user"),
            ("RAMPART_ROUTES_0_TENANT_REQUIRE", "1"),
            ("RAMPART_ROUTES_0_INJECT_HEADERS_X_API_KEY", "vault:rotated"),
            ("RAMPART_ROUTES_0_HEADERS_REMOVE", "x-powered-by"),
            ("RAMPART_UPSTREAMS_APP_PRESERVE_HOST", "true"),
            ("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1"),
            ("RAMPART_SERVER_CLIENT_IP_HEADER", "x-real-ip"),
            (
                "RAMPART_IDENTITY_STRIP_HEADERS",
                "X-Remote-User, remote-user",
            ),
            (
                "RAMPART_FORWARD_AUTH_REDIRECT_ALLOWLIST",
                "https://a.example",
            ),
            ("RAMPART_RATE_LIMIT_ENABLED", "false"),
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let classes = &config.rate_limit.classes;
    assert_eq!(classes["auth"].burst.get(), 20);
    assert_eq!(
        classes["auth"].rate.get(),
        5,
        "the rest of the default stays"
    );
    assert_eq!(classes["general"].burst.get(), 50);
    assert!(!config.rate_limit.enabled);
    assert_eq!(
        config.headers.hsts.unwrap().max_age,
        std::time::Duration::from_secs(2 * 86_400)
    );
    let route = &config.routes[0];
    assert!(route.policy.require_mfa);
    assert_eq!(route.policy.roles, ["admin", "user"]);
    assert!(route.policy.tenant.as_ref().unwrap().require);
    assert_eq!(route.inject_headers["x-api-key"], "rotated");
    assert_eq!(route.headers.remove, ["x-powered-by"]);
    assert!(config.upstreams["app"].preserve_host);
    assert_eq!(
        config.server.client_ip_header,
        Some(rampart_config::ClientIpHeader::XRealIp)
    );
    assert_eq!(
        config.identity.strip_headers,
        ["x-remote-user", "remote-user"]
    );
    assert_eq!(
        config.forward_auth.redirect_allowlist,
        ["https://a.example"]
    );
}

#[test]
fn rate_classes_in_the_file_are_overridden_by_name() {
    let text = "[rate_limit.classes.general]\nrate = 20\n[rate_limit.classes.auth]\nrate = 5\n[rate_limit.classes.bulk-api]\nrate = 1\nper = \"1m\"\n";
    let config = from_toml_str(
        text,
        &env(&[
            ("RAMPART_RATE_LIMIT_CLASSES_AUTH_BURST", "3"),
            ("RAMPART_RATE_LIMIT_CLASSES_BULK_API_KEY", "token"),
        ]),
    )
    .unwrap();
    let classes = &config.rate_limit.classes;
    assert_eq!(classes.len(), 3, "the file's classes replace the defaults");
    assert_eq!(classes["auth"].burst.get(), 3);
    assert_eq!(classes["general"].burst.get(), 20, "burst defaults to rate");
    assert_eq!(classes["bulk-api"].key, rampart_config::RateKey::Token);

    let err = load_env_err(
        text,
        &[
            ("RAMPART_RATE_LIMIT_CLASSES_SEARCH_RATE", "9"),
            ("RAMPART_RATE_LIMIT_CLASSES_AUTH_BURST", "0"),
        ],
    );
    assert!(
        problem(&err, "RAMPART_RATE_LIMIT_CLASSES_SEARCH_RATE")
            .fix
            .contains("define them in the file")
    );
    assert_eq!(
        problem(&err, "rate_limit.classes.auth.burst").message,
        "out of range: must be between 1 and 4294967295"
    );
}

#[test]
fn table_entries_are_overridden_but_not_added() {
    let text = "[upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nname = \"app\"\nupstream = \"app\"\nattributes = { plan = \"pro\" }\n";
    let config =
        from_toml_str(text, &env(&[("RAMPART_ROUTES_0_ATTRIBUTES_PLAN", "team")])).unwrap();
    assert_eq!(config.routes[0].policy.attributes["plan"], "team");
    let err = load_env_err(
        text,
        &[
            ("RAMPART_ROUTES_0_ATTRIBUTES_TIER", "gold"),
            ("RAMPART_ROUTES_0_INJECT_HEADERS_X_API_KEY", "vault:k"),
        ],
    );
    for var in [
        "RAMPART_ROUTES_0_ATTRIBUTES_TIER",
        "RAMPART_ROUTES_0_INJECT_HEADERS_X_API_KEY",
    ] {
        assert!(problem(&err, var).fix.contains("not add new ones"), "{err}");
    }
}

#[test]
fn an_injected_credential_from_a_variable_is_never_shown() {
    let text = "[upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nname = \"app\"\nupstream = \"app\"\ninject_headers = { \"X-Api-Key\" = \"vault:k\" }\n";
    let err = load_env_err(
        text,
        &[(
            "RAMPART_ROUTES_0_INJECT_HEADERS_X_API_KEY",
            "sk_live_0123456789abcdef",
        )],
    );
    assert!(!err.to_string().contains("sk_live"), "{err}");
    problem(&err, "routes[0].inject_headers.X-Api-Key");
}
