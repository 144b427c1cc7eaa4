//! Every stage reports its problems with key, value and fix, all of them at once.

use std::time::Duration;

use rampart_config::{LoadOptions, Mode, REDACTED, load};

use crate::{load as load_str, load_err, problem};

#[test]
fn defaults_load_and_are_typed() {
    let config = load_str("").unwrap();
    assert_eq!(config.mode, Mode::Production);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9171");
    assert_eq!(config.server.request_timeout, Duration::from_secs(60));
    assert_eq!(config.server.max_header_bytes, 32 * 1024);
    assert_eq!(config.server.body_limit, 1024 * 1024);
    assert_eq!(config.data_dir.to_str(), Some("/var/lib/rampart"));
    assert_eq!(config.jwt.issuer, "rampart");
    assert_eq!(config.jwt.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(config.redis.map(|_| ()), None);
    assert_eq!(
        config.email.outbox_path.to_str(),
        Some("/var/lib/rampart/outbox")
    );
    let dev = load_str("mode = \"dev\"").unwrap();
    assert_eq!(dev.data_dir.to_str(), Some("./rampart-data"));
    assert_eq!(
        dev.database_url().expose_secret(),
        "sqlite://./rampart-data/rampart.db"
    );
}

#[test]
fn a_full_config_parses_into_typed_values() {
    let config = load_str(
        r#"
        public_url = "https://auth.example.com"
        [server]
        listen = "0.0.0.0:8443"
        trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]
        header_read_timeout = "1h 30m"
        body_limit = "10 MB"
        [logging]
        level = "info,rampart_http=debug"
        format = "json"
        [upstreams.app]
        url = "http://127.0.0.1:3000/base"
        [[routes]]
        name = "app"
        host = "App.Example.com"
        path_prefix = "/api"
        upstream = "app"
        auth = "optional"
        body_limit = "32KiB"
        [routes.cors]
        allow_origins = ["https://app.example.com", "tauri://localhost"]
        allow_credentials = true
        allow_headers = ["X-Request-Id"]
        "#,
    )
    .unwrap();
    assert_eq!(config.server.trusted_proxies[1].to_string(), "192.0.2.7/32");
    assert_eq!(config.server.header_read_timeout, Duration::from_secs(5400));
    assert_eq!(config.server.body_limit, 10_000_000);
    assert_eq!(config.jwt.issuer, "https://auth.example.com");
    let route = &config.routes[0];
    assert_eq!(route.host.as_deref(), Some("app.example.com"));
    assert_eq!(route.body_limit, Some(32 * 1024));
    let cors = route.cors.as_ref().unwrap();
    assert_eq!(cors.allow_headers, ["x-request-id"]);
    assert_eq!(config.upstreams["app"].url.path(), "/base");
}

#[test]
fn unknown_top_level_key() {
    let err = load_err("lisen = \"127.0.0.1:1\"\n");
    let p = problem(&err, "lisen");
    assert_eq!(p.message, "unknown key");
    assert!(p.fix.contains("keys allowed here"), "{}", p.fix);
    let err = load_err("moed = \"dev\"\n");
    assert!(
        problem(&err, "moed")
            .message
            .contains("did you mean \"mode\"?")
    );
}

#[test]
fn unknown_nested_key_suggests_the_right_one() {
    let err = load_err(
        "[server]\nlistn = \"127.0.0.1:1\"\n[server.tls]\ncert_pth = \"/c\"\nkey_path = \"/k\"\n",
    );
    let p = problem(&err, "server.listn");
    assert_eq!(p.message, "unknown key; did you mean \"listen\"?");
    assert_eq!(p.fix, "rename it to server.listen");
    assert!(p.value.is_none(), "unknown keys never show their value");
    assert!(
        problem(&err, "server.tls.cert_pth")
            .message
            .contains("cert_path")
    );
    // The misspelled required key is not reported a second time as missing.
    assert!(!err.has_problem_at("server.tls.cert_path"), "{err}");
}

#[test]
fn a_typo_does_not_hide_problems_of_the_key_it_resembles() {
    let err = load_err("[server]\nlistn = \"x\"\nlisten = \"localhost:abc\"\n");
    problem(&err, "server.listn");
    assert_eq!(
        problem(&err, "server.listen").message,
        "not a socket address"
    );
}

#[test]
fn unknown_key_in_an_array_of_tables() {
    let err = load_err(
        r#"
        [upstreams.app]
        url = "http://127.0.0.1:3000"
        [[routes]]
        name = "a"
        upstream = "app"
        [[routes]]
        name = "b"
        upstream = "app"
        path_prefx = "/b"
        "#,
    );
    let p = problem(&err, "routes[1].path_prefx");
    assert!(p.message.contains("did you mean \"path_prefix\""));
    assert_eq!(err.problems().len(), 1, "{err}");
}

#[test]
fn unknown_key_in_a_named_upstream() {
    let err = load_err("[upstreams.app]\nurl = \"http://127.0.0.1:1\"\nconect_timeout = \"1s\"\n");
    assert!(
        problem(&err, "upstreams.app.conect_timeout")
            .message
            .contains("connect_timeout")
    );
}

#[test]
fn bad_duration() {
    let err = load_err("[server]\nrequest_timeout = \"soon\"\n");
    let p = problem(&err, "server.request_timeout");
    assert_eq!(p.value.as_deref(), Some("\"soon\""));
    assert_eq!(p.message, "not a duration");
    assert!(p.fix.contains("\"15m\""));
    let err = load_err("[session]\nidle_timeout = \"30\"\n");
    assert_eq!(
        problem(&err, "session.idle_timeout").message,
        "not a duration: the unit is missing"
    );
    let err = load_err("[jwt]\naccess_ttl = \"0s\"\n");
    assert_eq!(
        problem(&err, "jwt.access_ttl").message,
        "must be longer than zero"
    );
}

#[test]
fn bad_size() {
    let err = load_err("[server]\nbody_limit = \"lots\"\n");
    let p = problem(&err, "server.body_limit");
    assert_eq!(p.message, "not a size");
    assert!(p.fix.contains("\"1MiB\""));
    let err = load_err("[server]\nmax_header_bytes = \"100\"\n");
    assert!(
        problem(&err, "server.max_header_bytes")
            .message
            .contains("too small")
    );
}

#[test]
fn bad_cidr() {
    let err =
        load_err("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\", \"10.1.2.3/8\"]\n");
    let p = problem(&err, "server.trusted_proxies[1]");
    assert_eq!(p.message, "not an IP address or CIDR");
    let p = problem(&err, "server.trusted_proxies[2]");
    assert_eq!(p.message, "host bits are set after the prefix");
    assert!(p.fix.contains("\"10.0.0.0/8\"") && p.fix.contains("\"10.1.2.3\""));
}

#[test]
fn bad_urls() {
    let err = load_err(
        r#"
        public_url = "https://auth.example.com/login?next=1"
        [upstreams.app]
        url = "ftp://files.example.com"
        [upstreams.other]
        url = "not a url"
        "#,
    );
    assert!(problem(&err, "public_url").message.contains("origin"));
    assert_eq!(
        problem(&err, "upstreams.app.url").message,
        "the URL must start with http:// or https://"
    );
    assert_eq!(problem(&err, "upstreams.other.url").message, "not a URL");
}

#[test]
fn socket_address_problem_reads_as_documented() {
    let err = load_err("[server]\nlisten = \"localhost:abc\"\n");
    assert_eq!(
        err.to_string(),
        "server.listen = \"localhost:abc\": not a socket address — fix: use IP:PORT such as \"127.0.0.1:9171\" (or \"[::1]:9171\" for IPv6)"
    );
}

#[test]
fn wrong_type() {
    let err = load_err(
        "[server]\nmax_connections = \"many\"\n[metrics]\nenabled = 1\n[session]\nsame_site = \"lax-ish\"\n",
    );
    let p = problem(&err, "server.max_connections");
    assert_eq!(p.message, "expected a whole number, found a string");
    assert_eq!(
        p.fix,
        "write a whole number without quotes, e.g. max_connections = 10000"
    );
    assert_eq!(
        problem(&err, "metrics.enabled").message,
        "expected true or false, found a whole number"
    );
    let p = problem(&err, "session.same_site");
    assert!(
        p.message
            .starts_with("not one of \"lax\", \"strict\", \"none\""),
        "{}",
        p.message
    );
    let err = load_err("server = \"0.0.0.0:1\"\n");
    assert_eq!(problem(&err, "server").fix, "write it as a table: [server]");
    let err = load_err("routes = 5\n");
    assert_eq!(
        problem(&err, "routes").fix,
        "write each entry as [[routes]]"
    );
}

#[test]
fn several_problems_are_reported_together() {
    let err = load_err(
        r#"
        mode = "production"
        bogus = 1
        [server]
        listen = "localhost:abc"
        request_timeout = "soon"
        body_limit = "lots"
        trusted_proxies = ["nope"]
        max_headers = "x"
        [storage]
        backend = "postgres"
        [upstreams.app]
        url = "http://127.0.0.1:3000"
        [[routes]]
        name = "a"
        upstream = "ap"
        "#,
    );
    for key in [
        "bogus",
        "server.listen",
        "server.request_timeout",
        "server.body_limit",
        "server.trusted_proxies[0]",
        "server.max_headers",
        "storage.url",
        "routes[0].upstream",
    ] {
        problem(&err, key);
    }
    assert_eq!(err.problems().len(), 8, "{err}");
    assert_eq!(err.to_string().lines().count(), 8);
    let p = problem(&err, "routes[0].upstream");
    assert!(p.message.contains("did you mean \"app\""), "{}", p.message);
    assert_eq!(
        problem(&err, "storage.url").message,
        "storage.url is empty but storage.backend = postgres"
    );
}

#[test]
fn toml_syntax_error_points_at_the_line() {
    let err = load_err("mode = \"dev\"\n[server]\nlisten = \"127.0.0.1:1\nmax_headers = 5\n");
    assert_eq!(err.problems().len(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with("TOML syntax error at line 3, column"),
        "{text}"
    );
    assert!(
        !text.contains("listen"),
        "the offending line is not echoed: {text}"
    );
}

#[test]
fn problems_never_echo_secrets_or_the_config_text() {
    let text = r#"
        [storage]
        backend = "sqlite"
        url = "postgres://admin:hunter2-hunter2@db/rampart"
        [metrics]
        token = 1234567890123
        tokn = "misspelled-secret-value"
        [server]
        listen = "nope"
    "#;
    let err = load_err(text);
    let shown = err.to_string();
    for secret in ["hunter2", "1234567890123", "misspelled-secret-value"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert_eq!(
        problem(&err, "storage.url").value.as_deref(),
        Some(REDACTED)
    );
    assert_eq!(
        problem(&err, "metrics.token").value.as_deref(),
        Some(REDACTED)
    );
}

#[test]
fn routes_and_upstreams_are_cross_checked() {
    let err = load_err(
        r#"
        [upstreams.app]
        url = "http://127.0.0.1:3000"
        mode = "tls"
        client_cert = "/nonexistent/cert.pem"
        [upstreams."Bad Name"]
        url = "http://127.0.0.1:3001"
        [[routes]]
        name = "a"
        upstream = "app"
        path_prefix = "api"
        [[routes]]
        name = "a"
        upstream = "app"
        "#,
    );
    assert_eq!(
        problem(&err, "upstreams.app.url").message,
        "mode = \"tls\" needs an https:// URL"
    );
    assert!(
        problem(&err, "upstreams.app.ca_cert")
            .message
            .contains("needs the CA")
    );
    assert!(
        problem(&err, "upstreams.app.client_key")
            .message
            .contains("without client_key")
    );
    assert!(
        problem(&err, "upstreams.\"Bad Name\"")
            .message
            .contains("a-z")
    );
    assert!(
        problem(&err, "routes[0].path_prefix")
            .message
            .contains("starts with /")
    );
    assert!(
        problem(&err, "routes[1].name")
            .message
            .contains("routes[0] has the same name")
    );
}

#[test]
fn a_bad_upstream_is_reported_once_not_by_each_route() {
    let err =
        load_err("[upstreams.app]\nurl = \"nope\"\n[[routes]]\nname = \"a\"\nupstream = \"app\"\n");
    assert_eq!(err.problems().len(), 1, "{err}");
    problem(&err, "upstreams.app.url");
}

#[test]
fn same_site_none_needs_secure_cookies() {
    let err = load_err("[session]\nsame_site = \"none\"\ncookie_secure = false\n");
    assert!(
        problem(&err, "session.same_site")
            .message
            .contains("must be Secure")
    );
}

#[test]
fn invalid_log_filter() {
    let err = load_err("[logging]\nlevel = \"inof\"\n");
    assert!(
        problem(&err, "logging.level")
            .message
            .contains("did you mean \"info\"")
    );
}

#[test]
fn cors_wildcard_or_null_with_credentials_is_a_load_error_in_every_mode() {
    for mode in ["dev", "production"] {
        for origin in ["*", "null"] {
            let err = load_err(&format!(
                r#"
                mode = "{mode}"
                [upstreams.app]
                url = "http://127.0.0.1:3000"
                [[routes]]
                name = "a"
                upstream = "app"
                [routes.cors]
                allow_origins = ["https://ok.example", "{origin}"]
                allow_credentials = true
                "#
            ));
            let p = problem(&err, "routes[0].cors.allow_origins[1]");
            assert!(p.message.contains("any site"), "{}", p.message);
            assert!(p.fix.contains("exact origins"));
        }
    }
}

#[test]
fn cors_null_is_refused_even_without_credentials() {
    let err = load_err(
        "[upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n[[routes]]\nname = \"a\"\nupstream = \"app\"\n[routes.cors]\nallow_origins = [\"null\", \"https://x.example/\"]\n",
    );
    assert!(
        problem(&err, "routes[0].cors.allow_origins[0]")
            .message
            .contains("null")
    );
    assert!(
        problem(&err, "routes[0].cors.allow_origins[1]")
            .message
            .contains("trailing")
    );
}

#[test]
fn load_reads_the_file_and_honours_mode_override() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:7000\"\n").unwrap();
    let opts = LoadOptions {
        path: Some(path.clone()),
        env: Default::default(),
        mode_override: Some(Mode::Dev),
    };
    let config = load(&opts).unwrap();
    assert_eq!(config.mode, Mode::Dev);
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.server.listen.port(), 7000);

    std::fs::write(&path, "[server\n").unwrap();
    let err = load(&opts).unwrap_err();
    assert!(err.to_string().contains(&format!("in {}", path.display())));

    let missing = LoadOptions {
        path: Some(dir.path().join("absent.toml")),
        ..LoadOptions::default()
    };
    assert!(
        load(&missing)
            .unwrap_err()
            .to_string()
            .contains("cannot read the config file")
    );
}

#[test]
fn audit_without_the_database_is_refused() {
    let err = rampart_config::from_toml_str(
        "mode = \"dev\"\n[audit]\ndatabase = false\npath = \"/tmp/audit.jsonl\"\n",
        &std::collections::BTreeMap::new(),
    )
    .unwrap_err();
    assert!(err.has_problem_at("audit.database"), "{err}");
    assert!(
        err.to_string().contains("set audit.database = true"),
        "{err}"
    );
}
