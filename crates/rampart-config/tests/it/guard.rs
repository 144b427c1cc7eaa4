//! Guardrails: production refuses, dev warns, every check is always listed.

use std::collections::BTreeMap;

use rampart_config::{
    CHECK_IDS, Check, Config, Status, StorageBackend, UpstreamMode, file_checks, from_toml_str,
    guardrails, refuses_start,
};

use crate::{KEY_HEX, PEPPER, TOKEN, env, load_err, problem, secret_file, toml_path};

/// A production-ready baseline: key and token from the environment, loopback
/// listener behind a trusted proxy.
fn base_env() -> BTreeMap<String, String> {
    env(&[
        ("RAMPART_MASTER_KEY_HEX", KEY_HEX),
        ("RAMPART_METRICS_TOKEN", TOKEN),
        ("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1"),
    ])
}

fn config(mode: &str, text: &str, vars: &[(&str, &str)]) -> Config {
    let mut all = base_env();
    for (k, v) in vars {
        all.insert((*k).to_owned(), (*v).to_owned());
    }
    from_toml_str(&format!("mode = \"{mode}\"\n{text}"), &all)
        .unwrap_or_else(|e| panic!("config should load:\n{e}"))
}

fn check(config: &Config, id: &str) -> Check {
    guardrails(config)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// Production refuses with a clear finding; dev only warns.
fn assert_dev_only(id: &str, text: &str, vars: &[(&str, &str)], finding_mentions: &str) {
    let production = config("production", text, vars);
    let checks = guardrails(&production);
    let c = checks.iter().find(|c| c.id == id).unwrap();
    assert_eq!(c.status, Status::Fail, "{id} in production: {c:?}");
    assert!(c.finding.contains(finding_mentions), "{id}: {}", c.finding);
    assert!(!c.fix.is_empty());
    assert!(refuses_start(&checks));

    let dev = config("dev", text, vars);
    let c = check(&dev, id);
    assert_eq!(c.status, Status::Warn, "{id} in dev: {c:?}");
}

#[test]
fn baseline_passes_every_check_and_lists_them_all() {
    let config = config("production", "", &[]);
    let checks = guardrails(&config);
    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    let expected: Vec<&str> = CHECK_IDS
        .iter()
        .copied()
        .filter(|id| *id != "file.permissions")
        .collect();
    assert_eq!(ids, expected);
    for c in &checks {
        assert_eq!(c.status, Status::Pass, "{c:?}");
    }
    assert!(!refuses_start(&checks));
}

#[test]
fn listen_exposed() {
    assert_dev_only(
        "listen.exposed",
        "",
        &[
            ("RAMPART_SERVER_LISTEN", "0.0.0.0:9171"),
            ("RAMPART_SERVER_TRUSTED_PROXIES", ""),
        ],
        "0.0.0.0:9171",
    );
    let mut vars = base_env();
    vars.remove("RAMPART_SERVER_TRUSTED_PROXIES");
    vars.insert("RAMPART_SERVER_LISTEN".into(), "0.0.0.0:9171".into());
    let exposed = from_toml_str("", &vars).unwrap();
    assert_eq!(check(&exposed, "listen.exposed").status, Status::Fail);
    vars.insert("RAMPART_SERVER_TRUSTED_PROXIES".into(), "10.0.0.0/8".into());
    let proxied = from_toml_str("", &vars).unwrap();
    assert_eq!(check(&proxied, "listen.exposed").status, Status::Pass);
}

#[test]
fn tls_none_is_a_warning_even_in_production() {
    let mut vars = base_env();
    vars.remove("RAMPART_SERVER_TRUSTED_PROXIES");
    let config = from_toml_str("", &vars).unwrap();
    let c = check(&config, "tls.none");
    assert_eq!(c.status, Status::Warn);
    assert!(c.fix.contains("trusted_proxies"));
    assert_eq!(check(&config, "listen.exposed").status, Status::Pass);
    assert!(!refuses_start(&guardrails(&config)));
}

#[test]
fn metrics_unauthenticated() {
    let mut vars = base_env();
    vars.remove("RAMPART_METRICS_TOKEN");
    vars.insert("RAMPART_METRICS_LISTEN".into(), "0.0.0.0:9172".into());
    let config = from_toml_str("", &vars).unwrap();
    let c = check(&config, "metrics.unauthenticated");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("0.0.0.0:9172"));
    vars.insert("RAMPART_MODE".into(), "dev".into());
    let dev = from_toml_str("", &vars).unwrap();
    assert_eq!(check(&dev, "metrics.unauthenticated").status, Status::Warn);

    // On the loopback main listener without a token: a warning.
    vars.remove("RAMPART_METRICS_LISTEN");
    vars.insert("RAMPART_MODE".into(), "production".into());
    let main = from_toml_str("", &vars).unwrap();
    assert_eq!(check(&main, "metrics.unauthenticated").status, Status::Warn);
    // On a separate loopback listener: fine.
    vars.insert("RAMPART_METRICS_LISTEN".into(), "127.0.0.1:9172".into());
    let separate = from_toml_str("", &vars).unwrap();
    assert_eq!(
        check(&separate, "metrics.unauthenticated").status,
        Status::Pass
    );
}

#[test]
fn dev_simulated_login() {
    assert_dev_only(
        "dev.simulated_login",
        "[dev]\nsimulate_user = \"admin\"\n",
        &[],
        "admin",
    );
}

#[test]
fn secrets_placeholder() {
    assert_dev_only(
        "secrets.placeholder",
        "",
        &[("RAMPART_METRICS_TOKEN", "changeme")],
        "metrics.token",
    );
    assert_dev_only(
        "secrets.placeholder",
        "[storage]\nbackend = \"postgres\"\n",
        &[(
            "RAMPART_STORAGE_URL",
            "postgres://rampart:ChangeMe@db/rampart",
        )],
        "storage.url",
    );
    assert_dev_only(
        "secrets.placeholder",
        "",
        &[("RAMPART_MASTER_KEY_HEX", &"0".repeat(64))],
        "master_key_hex",
    );
    assert_dev_only(
        "secrets.placeholder",
        "",
        &[(
            "RAMPART_METRICS_TOKEN",
            "rampart-example-metrics-token-0123456789",
        )],
        "metrics.token",
    );
    let c = check(
        &config("production", "", &[("RAMPART_METRICS_TOKEN", "dev-token")]),
        "secrets.placeholder",
    );
    assert!(!c.finding.contains("dev-token"), "values are never shown");
}

#[test]
fn secrets_weak() {
    assert_dev_only(
        "secrets.weak",
        "",
        &[("RAMPART_METRICS_TOKEN", "Xk29fmQ1pz")],
        "shorter than 32",
    );
}

#[test]
fn pepper_placeholder_and_weakness() {
    let repeated = "0".repeat(40);
    assert_dev_only(
        "secrets.placeholder",
        "",
        &[("RAMPART_AUTH_PASSWORD_PEPPER", &repeated)],
        "auth.password.pepper",
    );
    assert_dev_only(
        "secrets.placeholder",
        "",
        &[(
            "RAMPART_AUTH_PASSWORD_PEPPER",
            "rampart-example-metrics-token-0123456789",
        )],
        "auth.password.pepper",
    );
    let strong = config(
        "production",
        "",
        &[("RAMPART_AUTH_PASSWORD_PEPPER", PEPPER)],
    );
    assert_eq!(check(&strong, "secrets.placeholder").status, Status::Pass);
    assert_eq!(check(&strong, "secrets.weak").status, Status::Pass);

    // A short pepper is a load error; on a config built by hand the check fails in
    // every mode, like the other conditions that are load errors.
    for mode in ["production", "dev"] {
        let mut config = config(mode, "", &[("RAMPART_AUTH_PASSWORD_PEPPER", PEPPER)]);
        if let Some(pepper) = config.auth.password.pepper.as_mut() {
            pepper.value = rampart_crypto::SecretString::from("xyzzy-pepper");
        }
        let c = check(&config, "secrets.weak");
        assert_eq!(c.status, Status::Fail, "{mode}");
        assert!(c.finding.contains("auth.password.pepper"), "{}", c.finding);
        assert!(!c.finding.contains("xyzzy"), "values are never shown");
    }
}

#[test]
fn pepper_inline_is_reported() {
    let config = config(
        "production",
        &format!("[auth.password]\npepper = \"{PEPPER}\"\n"),
        &[],
    );
    let c = check(&config, "secrets.inline");
    assert_eq!(c.status, Status::Warn);
    assert!(c.finding.contains("auth.password.pepper"));
}

#[test]
fn api_tokens_admin_warns_in_every_mode() {
    for mode in ["production", "dev"] {
        let config = config(mode, "[api_tokens]\nallow_admin = true\n", &[]);
        let checks = guardrails(&config);
        let c = checks.iter().find(|c| c.id == "api_tokens.admin").unwrap();
        assert_eq!(c.status, Status::Warn, "{mode}");
        assert!(c.finding.contains("allow_admin = true"), "{}", c.finding);
        assert!(c.fix.contains("allow_admin = false"));
        assert!(!refuses_start(&checks));
    }
    let default = config("production", "", &[]);
    assert_eq!(check(&default, "api_tokens.admin").status, Status::Pass);
}

#[test]
fn roles_admin_mfa_warns_in_every_mode() {
    for mode in ["production", "dev"] {
        for (text, vars) in [
            ("[roles.admin]\nrequire_mfa = false\n", &[][..]),
            ("", &[("RAMPART_ROLES_ADMIN_REQUIRE_MFA", "false")][..]),
        ] {
            let config = config(mode, text, vars);
            let checks = guardrails(&config);
            let c = checks.iter().find(|c| c.id == "roles.admin_mfa").unwrap();
            assert_eq!(c.status, Status::Warn, "{mode}: {c:?}");
            assert!(
                c.finding.contains("roles.admin.require_mfa = false"),
                "{}",
                c.finding
            );
            assert_eq!(c.fix, "set require_mfa = true on [roles.admin]");
            assert!(!refuses_start(&checks));
        }
    }
    // A role with administrator power under another name is held to the same rule.
    let renamed = config(
        "production",
        "[roles.admin]\npermissions = [\"*\"]\n[roles.root]\npermissions = [\"admin\"]\n[roles.viewer]\npermissions = [\"users:read\"]\n",
        &[],
    );
    let c = check(&renamed, "roles.admin_mfa");
    assert_eq!(c.status, Status::Warn);
    assert!(c.finding.contains("roles.root.require_mfa = false"));
    assert!(!c.finding.contains("admin.require_mfa") && !c.finding.contains("viewer"));
    // Written without require_mfa, admin keeps MFA.
    let admin_only = config("production", "[roles.admin]\npermissions = [\"*\"]\n", &[]);
    assert_eq!(check(&admin_only, "roles.admin_mfa").status, Status::Pass);
}

#[test]
fn secrets_inline_warns_in_every_mode() {
    for mode in ["production", "dev"] {
        let config = config(mode, "[redis]\nurl = \"redis://cache:6379\"\n", &[]);
        let c = check(&config, "secrets.inline");
        assert_eq!(c.status, Status::Warn);
        assert!(c.finding.contains("redis.url"));
    }
}

#[test]
fn auth_query_tokens() {
    assert_dev_only(
        "auth.query_tokens",
        "[auth]\ndanger_accept_query_tokens = true\n",
        &[],
        "danger_accept_query_tokens",
    );
}

#[test]
fn storage_empty_url_is_a_load_error_and_a_failed_check() {
    for mode in ["production", "dev"] {
        let err = load_err(&format!(
            "mode = \"{mode}\"\n[storage]\nbackend = \"postgres\"\n"
        ));
        let p = problem(&err, "storage.url");
        assert_eq!(
            p.message,
            "storage.url is empty but storage.backend = postgres"
        );
        assert!(p.fix.contains("postgres://"));
    }
    let mut config = config("dev", "", &[]);
    assert_eq!(check(&config, "storage.empty_url").status, Status::Pass);
    config.storage.backend = StorageBackend::Postgres;
    let c = check(&config, "storage.empty_url");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("storage.backend = postgres"));
}

#[test]
fn upstream_tls_is_a_load_error_and_a_failed_check() {
    let err = load_err("[upstreams.api]\nurl = \"http://10.0.0.5:8080\"\nmode = \"tls\"\n");
    assert!(
        problem(&err, "upstreams.api.url")
            .message
            .contains("https://")
    );
    assert!(
        problem(&err, "upstreams.api.ca_cert")
            .message
            .contains("CA")
    );

    let mut config = config(
        "production",
        "[upstreams.api]\nurl = \"http://10.0.0.5:8080\"\n",
        &[],
    );
    assert_eq!(check(&config, "upstream.tls").status, Status::Pass);
    if let Some(api) = config.upstreams.get_mut("api") {
        api.mode = UpstreamMode::Tls;
    }
    let c = check(&config, "upstream.tls");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("upstreams.api"));
}

#[test]
fn upstream_tls_with_ca_loads() {
    let dir = tempfile::tempdir().unwrap();
    let ca = secret_file(dir.path(), "ca.pem", "ca");
    let cert = secret_file(dir.path(), "client.pem", "cert");
    let key = secret_file(dir.path(), "client.key", "key");
    let config = config(
        "production",
        &format!(
            "[upstreams.api]\nurl = \"https://10.0.0.5:8443\"\nmode = \"tls\"\nca_cert = {}\nclient_cert = {}\nclient_key = {}\n",
            toml_path(&ca),
            toml_path(&cert),
            toml_path(&key)
        ),
        &[],
    );
    assert_eq!(check(&config, "upstream.tls").status, Status::Pass);
    assert!(
        config
            .secret_files()
            .contains(&("upstreams.api.client_key".to_owned(), key))
    );
}

#[test]
fn jwt_ephemeral_keys() {
    assert_dev_only(
        "jwt.ephemeral_keys",
        "[jwt]\ndanger_ephemeral_keys = true\n",
        &[],
        "danger_ephemeral_keys",
    );
}

#[test]
fn master_key_missing() {
    let mut vars = base_env();
    vars.remove("RAMPART_MASTER_KEY_HEX");
    let production = from_toml_str("", &vars).unwrap();
    let c = check(&production, "master_key.missing");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.contains("openssl rand -hex 32"));
    let dev = from_toml_str("mode = \"dev\"", &vars).unwrap();
    let c = check(&dev, "master_key.missing");
    assert_eq!(c.status, Status::Warn);
    assert!(c.finding.contains("deterministic development key"));
}

#[test]
fn master_key_inline() {
    let mut vars = base_env();
    vars.remove("RAMPART_MASTER_KEY_HEX");
    let text = format!("master_key_hex = \"{KEY_HEX}\"\n");
    let production = from_toml_str(&text, &vars).unwrap();
    let c = check(&production, "master_key.inline");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("config file"));
    let dev = from_toml_str(&format!("mode = \"dev\"\n{text}"), &vars).unwrap();
    assert_eq!(check(&dev, "master_key.inline").status, Status::Warn);
    // From the environment it is fine.
    let from_env = config("production", "", &[]);
    assert_eq!(check(&from_env, "master_key.inline").status, Status::Pass);
}

#[test]
fn cookies_insecure() {
    assert_dev_only(
        "cookies.insecure",
        "[session]\ncookie_secure = false\n",
        &[],
        "cookie_secure = false",
    );
}

#[test]
fn email_outbox() {
    assert_dev_only(
        "email.outbox",
        "[email]\ntransport = \"outbox\"\n",
        &[],
        "outbox",
    );
}

#[test]
fn cors_credentials_wildcard_always_passes_on_a_loaded_config() {
    let config = config(
        "production",
        "[upstreams.a]\nurl = \"http://127.0.0.1:1\"\n[[routes]]\nname = \"a\"\nupstream = \"a\"\n[routes.cors]\nallow_origins = [\"*\"]\n",
        &[],
    );
    assert_eq!(
        check(&config, "cors.credentials_wildcard").status,
        Status::Pass
    );
    let mut broken = config.clone();
    if let Some(cors) = broken.routes[0].cors.as_mut() {
        cors.allow_credentials = true;
    }
    assert_eq!(
        check(&broken, "cors.credentials_wildcard").status,
        Status::Fail
    );
}

#[test]
fn danger_accept_invalid_certs() {
    assert_dev_only(
        "danger.accept_invalid_certs",
        "[upstreams.api]\nurl = \"https://10.0.0.5\"\ndanger_accept_invalid_certs = true\n",
        &[],
        "api",
    );
}

#[test]
fn file_permissions_are_checked_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), "master.key", KEY_HEX);
    let mut vars = base_env();
    vars.remove("RAMPART_MASTER_KEY_HEX");
    let config = from_toml_str(&format!("master_key_path = {}\n", toml_path(&key)), &vars).unwrap();
    let checks = file_checks(&config);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].id, "file.permissions");
    assert_eq!(checks[0].status, Status::Pass);

    // Loosened after start: doctor catches it.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let checks = file_checks(&config);
    assert_eq!(checks[0].status, Status::Fail);
    assert!(checks[0].finding.contains("master_key_path"));
    assert!(checks[0].finding.contains(&key.display().to_string()));
    assert_eq!(checks[0].fix, format!("chmod 600 {}", key.display()));
    assert!(refuses_start(&checks));

    let none = config_without_files();
    let checks = file_checks(&none);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, Status::Pass);
}

fn config_without_files() -> Config {
    config("production", "", &[])
}

#[test]
fn rate_limit_disabled_warns_in_every_mode() {
    for mode in ["production", "dev"] {
        let config = config(mode, "[rate_limit]\nenabled = false\n", &[]);
        let checks = guardrails(&config);
        let c = checks
            .iter()
            .find(|c| c.id == "rate_limit.disabled")
            .unwrap();
        assert_eq!(c.status, Status::Warn, "{mode}");
        assert!(c.finding.contains("rate_limit.enabled = false"));
        assert!(c.fix.contains("rate_limit.enabled = true"));
        assert!(!refuses_start(&checks));
    }
    let default = config("production", "", &[]);
    assert_eq!(check(&default, "rate_limit.disabled").status, Status::Pass);
}

#[test]
fn rate_limit_redis_without_url_is_a_load_error_and_a_failed_check() {
    let err = load_err("[rate_limit]\nbackend = \"redis\"\n");
    assert!(
        problem(&err, "rate_limit.backend")
            .message
            .contains("needs redis.url")
    );
    for mode in ["production", "dev"] {
        let mut config = config(
            mode,
            "[rate_limit]\nbackend = \"redis\"\n",
            &[("RAMPART_REDIS_URL", "redis://cache.internal:6379")],
        );
        assert_eq!(
            check(&config, "rate_limit.redis_without_url").status,
            Status::Pass
        );
        config.redis = None;
        let c = check(&config, "rate_limit.redis_without_url");
        assert_eq!(c.status, Status::Fail, "{mode}");
        assert!(c.finding.contains("rate_limit.backend = redis"));
    }
}
