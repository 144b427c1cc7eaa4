//! Gateway settings: route policy, tenants, rate limits, header injection and
//! overrides, security headers, identity headers, client IP and forward-auth.

use std::num::NonZeroU32;
use std::time::Duration;

use rampart_config::{
    AUTH_RATE_CLASS, ClientIpHeader, CrossOriginOpenerPolicy, CrossOriginResourcePolicy,
    FrameOptions, GENERAL_RATE_CLASS, Hsts, RateClass, RateKey, RateLimitBackend,
    RateLimitFallback, ReferrerPolicy, RoutePolicy, TenantRule, TenantSource,
};

use crate::{load, load_err, problem};

const APP: &str = "[upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n";

/// One route `r` to upstream `app`; `keys` are written inside `[[routes]]`.
fn route(keys: &str) -> String {
    format!("{APP}[[routes]]\nname = \"r\"\nupstream = \"app\"\n{keys}\n")
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn defaults_are_typed() {
    let config = load(&route("")).unwrap();

    let headers = &config.headers;
    let hsts = headers.hsts.unwrap();
    assert_eq!(
        hsts,
        Hsts {
            max_age: Duration::from_secs(365 * 86_400),
            include_subdomains: true,
            preload: false,
        }
    );
    assert_eq!(hsts.header_value(), "max-age=31536000; includeSubDomains");
    assert_eq!(headers.content_security_policy, None);
    assert_eq!(
        headers.referrer_policy,
        ReferrerPolicy::StrictOriginWhenCrossOrigin
    );
    assert_eq!(
        headers.referrer_policy.as_str(),
        "strict-origin-when-cross-origin"
    );
    assert_eq!(
        headers.permissions_policy,
        "camera=(), microphone=(), geolocation=()"
    );
    assert_eq!(headers.frame_options.as_str(), "DENY");
    assert_eq!(
        headers.cross_origin_opener_policy,
        CrossOriginOpenerPolicy::SameOrigin
    );
    assert_eq!(headers.cross_origin_resource_policy.as_str(), "same-origin");

    assert!(config.identity.strip_headers.is_empty());
    assert!(config.forward_auth.enabled);
    assert!(config.forward_auth.redirect_allowlist.is_empty());
    assert_eq!(config.signin_url(), None, "no public_url, no sign-in URL");
    assert_eq!(config.server.client_ip_header, None);
    assert!(!config.upstreams["app"].preserve_host);

    let limits = &config.rate_limit;
    assert!(limits.enabled);
    assert_eq!(limits.backend, RateLimitBackend::Memory);
    assert_eq!(limits.fallback, RateLimitFallback::Local);
    let per_second = |rate, burst| RateClass {
        rate: nz(rate),
        per: Duration::from_secs(1),
        burst: nz(burst),
        key: RateKey::Ip,
    };
    assert_eq!(limits.classes.len(), 2);
    assert_eq!(limits.classes[GENERAL_RATE_CLASS], per_second(20, 50));
    assert_eq!(limits.classes[AUTH_RATE_CLASS], per_second(5, 10));

    let route = &config.routes[0];
    assert_eq!(route.policy, RoutePolicy::default());
    assert!(route.policy.is_empty());
    assert_eq!(route.rate_class, "general");
    assert_eq!(route.quota_per_minute, None);
    assert_eq!(route.concurrency_limit, None);
    assert_eq!(route.timeout, None);
    assert!(route.inject_headers.is_empty());
    assert!(route.headers.set.is_empty() && route.headers.remove.is_empty());
    assert!(route.identity_headers);

    let with_public_url = load("public_url = \"https://auth.example.com\"").unwrap();
    assert_eq!(
        with_public_url.signin_url().unwrap().as_str(),
        "https://auth.example.com/login"
    );
}

#[test]
fn a_full_gateway_config_parses() {
    let config = load(
        r#"
        public_url = "https://auth.example.com"
        [server]
        trusted_proxies = ["10.0.0.0/8"]
        client_ip_header = "cf-connecting-ip"
        request_timeout = "2m"
        [headers]
        hsts_max_age = "730d"
        hsts_preload = true
        content_security_policy = "default-src 'self'"
        referrer_policy = "no-referrer"
        permissions_policy = "camera=()"
        frame_options = "SAMEORIGIN"
        cross_origin_opener_policy = "same-origin-allow-popups"
        cross_origin_resource_policy = "cross-origin"
        [identity]
        strip_headers = ["X-Remote-User", "remote-user", "x-remote-user"]
        [forward_auth]
        redirect_allowlist = ["HTTPS://App.Example.com", "http://localhost:5173"]
        signin_url = "https://login.example.com/signin"
        [rate_limit]
        backend = "redis"
        [rate_limit.classes.general]
        rate = 100
        burst = 200
        [rate_limit.classes.auth]
        rate = 3
        per = "1m"
        [rate_limit.classes.api]
        rate = 10
        per = "1s"
        burst = 20
        key = "token"
        [redis]
        url = "redis://cache:6379"
        [roles.admin]
        permissions = ["*"]
        [roles.billing-ops]
        permissions = ["billing:read"]
        [upstreams.app]
        url = "http://127.0.0.1:3000"
        preserve_host = true
        [[routes]]
        name = "billing"
        upstream = "app"
        roles = ["billing-ops", "admin", "admin"]
        permissions = ["billing:read"]
        require_mfa = true
        attributes = { subscription = "active", "org.tier" = "gold" }
        rate_class = "api"
        quota_per_minute = 600
        concurrency_limit = 8
        timeout = "90s"
        inject_headers = { "X-Api-Key" = "vault:third_party", Authorization = "vault:billing.token" }
        identity_headers = false
        [routes.tenant]
        source = "claim"
        claim = "org"
        require = true
        [routes.headers]
        set = { "Content-Security-Policy" = "default-src 'self'; img-src data:" }
        remove = ["X-Powered-By", "server"]
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        config.server.client_ip_header,
        Some(ClientIpHeader::CfConnectingIp)
    );
    assert_eq!(
        config.server.client_ip_header.unwrap().as_str(),
        "cf-connecting-ip"
    );
    let hsts = config.headers.hsts.unwrap();
    assert_eq!(
        hsts.header_value(),
        "max-age=63072000; includeSubDomains; preload"
    );
    assert_eq!(
        config.headers.content_security_policy.as_deref(),
        Some("default-src 'self'")
    );
    assert_eq!(config.headers.referrer_policy, ReferrerPolicy::NoReferrer);
    assert_eq!(config.headers.frame_options, FrameOptions::SameOrigin);
    assert_eq!(
        config.headers.cross_origin_opener_policy.as_str(),
        "same-origin-allow-popups"
    );
    assert_eq!(
        config.headers.cross_origin_resource_policy,
        CrossOriginResourcePolicy::CrossOrigin
    );
    assert_eq!(
        config.identity.strip_headers,
        ["x-remote-user", "remote-user"]
    );
    assert_eq!(
        config.forward_auth.redirect_allowlist,
        ["https://app.example.com", "http://localhost:5173"]
    );
    assert_eq!(
        config.signin_url().unwrap().as_str(),
        "https://login.example.com/signin"
    );

    let limits = &config.rate_limit;
    assert_eq!(limits.backend, RateLimitBackend::Redis);
    assert_eq!(
        limits.classes.keys().collect::<Vec<_>>(),
        ["api", "auth", "general"]
    );
    assert_eq!(
        limits.classes["auth"],
        RateClass {
            rate: nz(3),
            per: Duration::from_secs(60),
            burst: nz(3),
            key: RateKey::Ip,
        },
        "burst defaults to rate"
    );
    assert_eq!(limits.classes["api"].key, RateKey::Token);
    assert_eq!(limits.classes["general"].burst, nz(200));

    assert!(config.upstreams["app"].preserve_host);
    let route = &config.routes[0];
    assert_eq!(
        route.policy,
        RoutePolicy {
            roles: vec!["billing-ops".to_owned(), "admin".to_owned()],
            permissions: vec!["billing:read".to_owned()],
            require_mfa: true,
            attributes: [("org.tier", "gold"), ("subscription", "active")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            tenant: Some(TenantRule {
                source: TenantSource::Claim,
                header: "x-tenant-id".to_owned(),
                claim: "org".to_owned(),
                require: true,
            }),
        }
    );
    assert!(!route.policy.is_empty());
    assert_eq!(route.rate_class, "api");
    assert_eq!(route.quota_per_minute, Some(nz(600)));
    assert_eq!(route.concurrency_limit, Some(nz(8)));
    assert_eq!(route.timeout, Some(Duration::from_secs(90)));
    assert_eq!(
        route
            .inject_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [
            ("authorization", "billing.token"),
            ("x-api-key", "third_party")
        ]
    );
    assert_eq!(
        route.headers.set["content-security-policy"],
        "default-src 'self'; img-src data:"
    );
    assert_eq!(route.headers.remove, ["x-powered-by", "server"]);
    assert!(!route.identity_headers);
}

#[test]
fn policy_on_a_public_route_is_refused_key_by_key() {
    let err = load_err(&route(
        "auth = \"public\"\nroles = [\"user\"]\npermissions = [\"users:read\"]\nrequire_mfa = true\nattributes = { plan = \"pro\" }\nquota_per_minute = 60\nconcurrency_limit = 2\n[routes.tenant]\nrequire = true",
    ));
    for key in [
        "roles",
        "permissions",
        "require_mfa",
        "attributes",
        "tenant",
        "quota_per_minute",
        "concurrency_limit",
    ] {
        let p = problem(&err, &format!("routes[0].{key}"));
        assert!(
            p.message
                .starts_with("routes[0].auth = \"public\" lets anonymous callers in"),
            "{}",
            p.message
        );
        assert_eq!(
            p.fix,
            format!("set routes[0].auth = \"required\", or remove routes[0].{key}")
        );
    }
    assert_eq!(err.problems().len(), 7, "{err}");
    assert_eq!(
        problem(&err, "routes[0].require_mfa").value.as_deref(),
        Some("true")
    );
    assert_eq!(
        problem(&err, "routes[0].quota_per_minute").value.as_deref(),
        Some("60")
    );

    // The same policy on an optional or required route is fine.
    for auth in ["optional", "required"] {
        load(&route(&format!(
            "auth = \"{auth}\"\nroles = [\"user\"]\nrequire_mfa = true\nquota_per_minute = 60"
        )))
        .unwrap_or_else(|e| panic!("{auth}: {e}"));
    }
}

#[test]
fn route_roles_must_exist_and_permissions_parse() {
    let err = load_err(&route(
        "roles = [\"admn\", \"user\", \"auditor\"]\npermissions = [\"users:*\", \"users:read\"]",
    ));
    let p = problem(&err, "routes[0].roles[0]");
    assert_eq!(p.value.as_deref(), Some("\"admn\""));
    assert_eq!(p.message, "no role by that name; did you mean \"admin\"?");
    assert_eq!(p.fix, "use one of: admin, user, or define [roles.admn]");
    assert!(
        problem(&err, "routes[0].roles[2]")
            .fix
            .contains("define [roles.auditor]")
    );
    assert_eq!(
        problem(&err, "routes[0].permissions[0]").message,
        "not a permission"
    );
    assert_eq!(err.problems().len(), 3, "{err}");
}

#[test]
fn attribute_rules() {
    let err = load_err(&route(
        "attributes = { plan = \"\", \"bad name\" = \"x\", ok = \"yes\", tier = \"a\\nb\" }",
    ));
    let p = problem(&err, "routes[0].attributes.plan");
    assert!(p.message.contains("empty"), "{}", p.message);
    assert!(p.fix.contains("exact value"));
    assert!(
        problem(&err, "routes[0].attributes.\"bad name\"")
            .message
            .starts_with("attribute names are")
    );
    problem(&err, "routes[0].attributes.tier");
    assert_eq!(err.problems().len(), 3, "{err}");

    let err = load_err(&route("attributes = { tier = 3 }"));
    assert_eq!(
        problem(&err, "routes[0].attributes.tier").message,
        "expected a string, found a whole number"
    );
}

#[test]
fn tenant_rules() {
    let config = load(&route("[routes.tenant]")).unwrap();
    assert_eq!(
        config.routes[0].policy.tenant,
        Some(TenantRule {
            source: TenantSource::Header,
            header: "x-tenant-id".to_owned(),
            claim: "tenant".to_owned(),
            require: false,
        })
    );

    let err = load_err(&route(
        "[routes.tenant]\nsource = \"token\"\nheader = \"X-Rampart-Tenant\"\nclaim = \"org id\"",
    ));
    let p = problem(&err, "routes[0].tenant.source");
    assert!(p.message.starts_with("not one of \"header\", \"claim\""));
    let p = problem(&err, "routes[0].tenant.header");
    assert!(p.message.contains("X-Rampart-*"), "{}", p.message);
    assert!(p.fix.contains("X-Tenant-ID"));
    assert_eq!(
        problem(&err, "routes[0].tenant.claim").message,
        "not a claim name"
    );
    let err = load_err(&route("[routes.tenant]\nheader = \"X Tenant\""));
    assert!(
        problem(&err, "routes[0].tenant.header")
            .message
            .starts_with("not a header name")
    );
    let err = load_err(&route("[routes.tenant]\nheadr = \"x\""));
    assert!(
        problem(&err, "routes[0].tenant.headr")
            .message
            .contains("did you mean \"header\"")
    );
}

#[test]
fn rate_class_must_exist() {
    let err = load_err(&route("rate_class = \"genral\""));
    let p = problem(&err, "routes[0].rate_class");
    assert_eq!(
        p.message,
        "no rate class by that name; did you mean \"general\"?"
    );
    assert_eq!(
        p.fix,
        "use one of: auth, general, or define [rate_limit.classes.genral]"
    );
    let config = load(&route("rate_class = \"auth\"")).unwrap();
    assert_eq!(config.routes[0].rate_class, "auth");
}

#[test]
fn route_timeout_is_positive_and_within_the_request_timeout() {
    let err = load_err(&route("timeout = \"0s\""));
    assert_eq!(
        problem(&err, "routes[0].timeout").message,
        "must be longer than zero"
    );
    let err = load_err(&route("timeout = \"2m\""));
    let p = problem(&err, "routes[0].timeout");
    assert_eq!(p.value.as_deref(), Some("\"2m\""));
    assert_eq!(
        p.message,
        "longer than server.request_timeout (60s): the whole request is cut off first"
    );
    assert_eq!(
        p.fix,
        "use at most \"60s\", or raise server.request_timeout"
    );
    let err = load_err(&route("timeout = \"soon\""));
    assert_eq!(problem(&err, "routes[0].timeout").message, "not a duration");
}

#[test]
fn injected_headers_are_vault_references_to_headers_rampart_does_not_own() {
    let pasted = "sk_live_51HqXyZ0123456789abcdef";
    let err = load_err(&route(&format!(
        r#"inject_headers = {{ "X-Api-Key" = "{pasted}", "X-Other" = "vault:Bad Name", Host = "vault:h", "X-Rampart-User" = "vault:u", Connection = "vault:c", "X-Forwarded-For" = "vault:f", "Bad Header" = "vault:b" }}"#
    )));
    assert!(!err.to_string().contains(pasted), "{err}");
    let p = problem(&err, "routes[0].inject_headers.X-Api-Key");
    assert_eq!(p.value.as_deref(), Some(rampart_config::REDACTED));
    assert!(
        p.message.starts_with("not a vault reference"),
        "{}",
        p.message
    );
    assert!(p.fix.contains("rampart secrets set"));
    let p = problem(&err, "routes[0].inject_headers.X-Other");
    assert_eq!(p.value.as_deref(), Some(rampart_config::REDACTED));
    assert!(p.message.starts_with("not a vault secret name"));
    let p = problem(&err, "routes[0].inject_headers.Host");
    assert!(p.message.contains("frames or routes"), "{}", p.message);
    assert_eq!(
        p.fix,
        "to send the client's Host, set upstreams.app.preserve_host = true"
    );
    assert!(
        problem(&err, "routes[0].inject_headers.X-Rampart-User")
            .message
            .contains("forge")
    );
    assert!(
        problem(&err, "routes[0].inject_headers.Connection")
            .message
            .contains("hop-by-hop")
    );
    assert!(
        problem(&err, "routes[0].inject_headers.X-Forwarded-For")
            .message
            .contains("forwarding headers")
    );
    assert!(
        problem(&err, "routes[0].inject_headers.\"Bad Header\"")
            .message
            .starts_with("not a header name")
    );
    assert_eq!(err.problems().len(), 7, "{err}");

    let err = load_err(&route(
        r#"inject_headers = { "X-Api-Key" = "vault:a", "x-api-key" = "vault:b" }"#,
    ));
    let p = problem(&err, "routes[0].inject_headers.x-api-key");
    assert!(p.message.contains("same header"), "{}", p.message);
}

#[test]
fn route_header_overrides_are_checked() {
    let err = load_err(&route(
        "[routes.headers]\nset = { \"X-Frame-Options\" = \"SAMEORIGIN\\r\\nSet-Cookie: a=b\", \"Content-Length\" = \"1\", Server = \"\", \"X-Ok\" = \"1\" }\nremove = [\"x-ok\", \"Transfer-Encoding\", \"bad header\", \"x-powered-by\"]",
    ));
    let p = problem(&err, "routes[0].headers.set.X-Frame-Options");
    assert!(p.message.contains("no line breaks"), "{}", p.message);
    assert!(
        problem(&err, "routes[0].headers.set.Content-Length")
            .message
            .contains("frames or routes")
    );
    assert_eq!(
        problem(&err, "routes[0].headers.set.Server").message,
        "the header value is empty"
    );
    let p = problem(&err, "routes[0].headers.remove[0]");
    assert_eq!(p.message, "routes[0].headers.set also sets this header");
    assert!(
        problem(&err, "routes[0].headers.remove[1]")
            .message
            .contains("frames or routes")
    );
    problem(&err, "routes[0].headers.remove[2]");
    assert_eq!(err.problems().len(), 6, "{err}");
}

#[test]
fn security_headers_are_checked() {
    let err = load_err(
        "[headers]\nhsts = false\nhsts_preload = true\nhsts_include_subdomains = false\nhsts_max_age = \"30d\"\n",
    );
    assert!(
        problem(&err, "headers.hsts_preload")
            .message
            .contains("hsts = false")
    );
    assert!(
        problem(&err, "headers.hsts_include_subdomains")
            .fix
            .contains("hsts_include_subdomains = true")
    );
    let p = problem(&err, "headers.hsts_max_age");
    assert!(p.message.starts_with("shorter than 365d"), "{}", p.message);
    assert_eq!(p.value.as_deref(), Some("\"30d\""));

    // Without preload, any max-age is allowed, zero included (it clears the policy).
    let config = load("[headers]\nhsts_max_age = \"0s\"\n").unwrap();
    assert_eq!(
        config.headers.hsts.unwrap().header_value(),
        "max-age=0; includeSubDomains"
    );
    let config = load("[headers]\nhsts = false\n").unwrap();
    assert_eq!(config.headers.hsts, None);

    let err = load_err(
        "[headers]\nhsts_max_age = \"a year\"\ncontent_security_policy = \"default-src\\n'self'\"\npermissions_policy = \"\"\nframe_options = \"deny\"\nreferrer_policy = \"strict-origin-when-cross\"\n",
    );
    assert_eq!(
        problem(&err, "headers.hsts_max_age").message,
        "not a duration"
    );
    problem(&err, "headers.content_security_policy");
    assert_eq!(
        problem(&err, "headers.permissions_policy").message,
        "the header value is empty"
    );
    assert!(
        problem(&err, "headers.frame_options")
            .message
            .contains("did you mean \"DENY\"")
    );
    assert!(
        problem(&err, "headers.referrer_policy")
            .message
            .contains("did you mean \"strict-origin-when-cross-origin\"")
    );
    assert_eq!(err.problems().len(), 5, "{err}");
}

#[test]
fn identity_strip_headers_are_header_names() {
    let err =
        load_err("[identity]\nstrip_headers = [\"x-remote-user\", \"remote user\", \"Host\"]\n");
    assert!(
        problem(&err, "identity.strip_headers[1]")
            .message
            .starts_with("not a header name")
    );
    let p = problem(&err, "identity.strip_headers[2]");
    assert!(p.message.contains("frame or route"), "{}", p.message);
    assert_eq!(p.fix, "remove it from identity.strip_headers");
}

#[test]
fn client_ip_header_needs_trusted_proxies() {
    let err = load_err("[server]\nclient_ip_header = \"x-real-ip\"\n");
    let p = problem(&err, "server.client_ip_header");
    assert_eq!(p.value.as_deref(), Some("\"x-real-ip\""));
    assert!(p.fix.contains("server.trusted_proxies"));
    let err = load_err(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\nclient_ip_header = \"x-forwarded-for\"\n",
    );
    assert!(
        problem(&err, "server.client_ip_header")
            .message
            .starts_with("not one of \"cf-connecting-ip\", \"x-real-ip\"")
    );
    let config =
        load("[server]\ntrusted_proxies = [\"127.0.0.1\"]\nclient_ip_header = \"x-real-ip\"\n")
            .unwrap();
    assert_eq!(
        config.server.client_ip_header,
        Some(ClientIpHeader::XRealIp)
    );
}

#[test]
fn forward_auth_redirects_are_exact_web_origins() {
    let err = load_err(
        "[forward_auth]\nredirect_allowlist = [\"https://a.example/app\", \"tauri://localhost\", \"*\", \"https://ok.example\"]\nsignin_url = \"/login\"\n",
    );
    assert!(
        problem(&err, "forward_auth.redirect_allowlist[0]")
            .message
            .contains("no path")
    );
    assert!(
        problem(&err, "forward_auth.redirect_allowlist[1]")
            .message
            .contains("only http and https")
    );
    assert!(
        problem(&err, "forward_auth.redirect_allowlist[2]")
            .message
            .contains("every site")
    );
    assert_eq!(
        problem(&err, "forward_auth.signin_url").message,
        "not a URL"
    );
    assert_eq!(err.problems().len(), 4, "{err}");
    let err = load_err("[forward_auth]\nsignin_url = \"https://u:p@auth.example.com/login\"\n");
    assert!(
        problem(&err, "forward_auth.signin_url")
            .message
            .contains("credentials")
    );
    let config = load("[forward_auth]\nenabled = false\n").unwrap();
    assert!(!config.forward_auth.enabled);
}

#[test]
fn redis_backend_needs_redis() {
    for mode in ["dev", "production"] {
        let err = load_err(&format!(
            "mode = \"{mode}\"\n[rate_limit]\nbackend = \"redis\"\n"
        ));
        let p = problem(&err, "rate_limit.backend");
        assert_eq!(p.value.as_deref(), Some("\"redis\""));
        assert_eq!(
            p.message,
            "the redis backend needs redis.url, which is not set"
        );
        assert!(p.fix.contains("redis.url") && p.fix.contains("backend = \"memory\""));
    }
}

#[test]
fn defining_classes_replaces_the_defaults_but_general_and_auth_must_exist() {
    let err = load_err("[rate_limit.classes.api]\nrate = 10\n");
    let p = problem(&err, "rate_limit.classes");
    assert!(
        p.message.starts_with("no general or auth class"),
        "{}",
        p.message
    );
    assert_eq!(
        p.fix,
        "add [rate_limit.classes.general] with rate = 20, burst = 50 and [rate_limit.classes.auth] with rate = 5, burst = 10 (the defaults)"
    );
    // A route relying on the missing general class is not reported again.
    let err = load_err(&format!(
        "{}[rate_limit.classes.general]\nrate = 10\n",
        route("")
    ));
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(
        problem(&err, "rate_limit.classes")
            .message
            .starts_with("no auth class")
    );
}

#[test]
fn rate_class_rules() {
    let err = load_err(
        "[rate_limit.classes.general]\nrate = 1\nper = \"0s\"\n[rate_limit.classes.auth]\nrate = 1\nkey = \"principal\"\n[rate_limit.classes.\"Bad Name\"]\nrate = 1\n[rate_limit.classes.x]\nrate = 0\nkey = \"user\"\nevery = \"1s\"\n",
    );
    assert_eq!(
        problem(&err, "rate_limit.classes.general.per").message,
        "must be longer than zero"
    );
    let p = problem(&err, "rate_limit.classes.auth.key");
    assert_eq!(p.value.as_deref(), Some("\"principal\""));
    assert!(p.message.contains("before there is a principal"));
    assert_eq!(p.fix, "use key = \"ip\" (the default)");
    assert!(
        problem(&err, "rate_limit.classes.\"Bad Name\"")
            .fix
            .contains("[rate_limit.classes.bad-name]")
    );
    assert_eq!(
        problem(&err, "rate_limit.classes.x.rate").message,
        "out of range: must be between 1 and 4294967295"
    );
    assert!(
        problem(&err, "rate_limit.classes.x.key")
            .message
            .starts_with("not one of \"ip\", \"principal\", \"token\"")
    );
    problem(&err, "rate_limit.classes.x.every");
    let err = load_err("[rate_limit]\nfallback = \"none\"\n");
    assert!(
        problem(&err, "rate_limit.fallback")
            .message
            .starts_with("not one of \"local\"")
    );
}

#[test]
fn upstream_preserve_host() {
    let config = load(&format!("{APP}preserve_host = true\n")).unwrap();
    assert!(config.upstreams["app"].preserve_host);
}

#[test]
fn the_redis_key_prefix_namespaces_a_deployment() {
    let config = load("[redis]\nurl = \"redis://cache:6379\"\n").unwrap();
    assert_eq!(config.redis.unwrap().key_prefix, "rampart");
    let config =
        load("[redis]\nurl = \"redis://cache:6379\"\nkey_prefix = \"rampart-eu.prod:1\"\n")
            .unwrap();
    assert_eq!(config.redis.unwrap().key_prefix, "rampart-eu.prod:1");
    let long = "p".repeat(65);
    for bad in ["", "Rampart", "a b", "a*", "a{b}", long.as_str()] {
        let err = load_err(&format!(
            "[redis]\nurl = \"redis://cache:6379\"\nkey_prefix = \"{bad}\"\n"
        ));
        let p = problem(&err, "redis.key_prefix");
        assert_eq!(p.message, "not a valid key prefix", "{bad:?}");
        assert!(p.fix.contains("a-z"));
    }
}
