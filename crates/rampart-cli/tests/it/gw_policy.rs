//! Route policy and identity at the upstream (F-RBAC, F-TENANT, F-IDHEADERS), on
//! both backends: permissions, `require_mfa`, attributes, tenants from a header or
//! a claim; the `X-Rampart-*` headers and the signed assertion an upstream verifies
//! against the JWKS; Rampart's own credentials never forwarded.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Verifier as _;
use rampart_core::Clock as _;
use rampart_testkit::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_auth::{PASSWORD, enrol_totp, http, login, token_request, totp_code};
use crate::gw_routes::{bearer, denials, error_code, gateway, get, member, upstream_toml};
use crate::on_both_backends;
use crate::support::TestServer;

/// Verifies a compact EdDSA JWT against the server's JWKS, as an upstream would;
/// returns its claims.
pub async fn verify_with_jwks(server: &TestServer, jwt: &str) -> Value {
    let jwks: Value = http()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} not in the JWKS {jwks}", header["kid"]));
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(key["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap()
        .try_into()
        .unwrap();
    verifying
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .expect("the assertion's signature verifies against the JWKS");
    // A tampered payload does not.
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let mut forged = claims.clone();
    forged["roles"] = json!(["admin"]);
    let forged_payload = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(
        verifying
            .verify(
                format!("{}.{forged_payload}", parts[0]).as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .is_err()
    );
    claims
        .as_object_mut()
        .unwrap()
        .insert("_kid".into(), header["kid"].clone());
    claims
}

/// Request headers, as name/value pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn routes(upstream: &Upstream) -> String {
    format!(
        r#"{}
[[routes]]
name = "app"
path_prefix = "/app"
upstream = "billing"

[[routes]]
name = "invoke"
path_prefix = "/invoke"
upstream = "billing"
permissions = ["integration:invoke"]

[[routes]]
name = "secure"
path_prefix = "/secure"
upstream = "billing"
require_mfa = true

[[routes]]
name = "paid"
path_prefix = "/paid"
upstream = "billing"
attributes = {{ subscription = "active" }}

[[routes]]
name = "tenant-header"
path_prefix = "/t"
upstream = "billing"

[routes.tenant]
source = "header"
header = "X-Tenant-ID"
require = true

[[routes]]
name = "tenant-claim"
path_prefix = "/c"
upstream = "billing"

[routes.tenant]
source = "claim"
require = true
"#,
        upstream_toml("billing", upstream, "")
    )
}

on_both_backends!(
    upstream_gets_identity_headers_and_a_verifiable_assertion,
    |backend| {
        let upstream = Upstream::start().await;
        let server = gateway(backend, &routes(&upstream)).await;
        let alice = member(&server, "alice", &["user", "integrator"], &["acme"], &[]).await;

        // Bearer access token: consumed, so not forwarded.
        let token = bearer(&server, "alice").await;
        let response = get(
            &server,
            "/app/invoices",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("cookie", "theme=dark"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = upstream.last();
        assert_eq!(seen.header("x-rampart-user"), Some("alice"));
        assert_eq!(seen.header("x-rampart-user-id"), Some(alice.as_str()));
        assert_eq!(seen.header("x-rampart-roles"), Some("user,integrator"));
        assert_eq!(seen.header("x-rampart-auth-method"), Some("access_token"));
        assert_eq!(seen.header("x-rampart-mfa"), Some("false"));
        assert!(
            seen.header("x-rampart-tenant").is_none(),
            "the route is not tenant-scoped"
        );
        assert!(
            seen.header("authorization").is_none(),
            "the consumed bearer token was forwarded"
        );
        assert_eq!(
            seen.header("cookie"),
            Some("theme=dark"),
            "the app's own cookies stay"
        );
        assert!(!format!("{:?}", seen.headers).contains(&token));

        let assertion = seen.header("x-rampart-assertion").unwrap().to_owned();
        let claims = verify_with_jwks(&server, &assertion).await;
        assert_eq!(claims["aud"], "upstream:billing");
        assert_eq!(claims["token_use"], "assertion");
        assert_eq!(claims["sub"], alice.as_str());
        assert_eq!(claims["username"], "alice");
        assert_eq!(claims["roles"], json!(["user", "integrator"]));
        assert_eq!(claims["auth_method"], "access_token");
        assert_eq!(claims["mfa"], false);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!((2..=60).contains(&lifetime), "short-lived: {lifetime}");
        // The assertion is not an access token: Rampart itself refuses it.
        let refused = http()
            .get(server.url("/api/v1/auth/whoami"))
            .bearer_auth(&assertion)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

        // Session cookie: Rampart's cookie is cut out of `Cookie`, the others stay.
        let (browser, _) = login(&server, "alice").await;
        let session = browser.cookie.clone().unwrap();
        let response = get(
            &server,
            "/app/x",
            &[("cookie", &format!("theme=dark; {session}; lang=en"))],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = upstream.last();
        assert_eq!(seen.header("x-rampart-auth-method"), Some("session"));
        assert_eq!(seen.header("cookie"), Some("theme=dark; lang=en"));
        let session_value = session.split_once('=').unwrap().1;
        assert!(!format!("{:?}", seen.headers).contains(session_value));
        let claims = verify_with_jwks(&server, seen.header("x-rampart-assertion").unwrap()).await;
        assert_eq!(claims["auth_method"], "session");
        server.stop().await;
    }
);

on_both_backends!(
    permissions_mfa_and_attributes_are_enforced_and_audited,
    |backend| {
        let upstream = Upstream::start().await;
        let server = gateway(backend, &routes(&upstream)).await;
        member(
            &server,
            "ivan",
            &["integrator"],
            &[],
            &[("subscription", "active")],
        )
        .await;
        member(
            &server,
            "ulla",
            &["user"],
            &[],
            &[("subscription", "lapsed")],
        )
        .await;
        let ivan = format!("Bearer {}", bearer(&server, "ivan").await);
        let ulla = format!("Bearer {}", bearer(&server, "ulla").await);

        // Permissions (integration:invoke comes with the integrator role).
        assert_eq!(
            get(&server, "/invoke/run", &[("authorization", &ivan)])
                .await
                .status(),
            200
        );
        let refused = get(&server, "/invoke/run", &[("authorization", &ulla)]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_code(refused).await, "forbidden");

        // Attributes: an exact value.
        assert_eq!(
            get(&server, "/paid/x", &[("authorization", &ivan)])
                .await
                .status(),
            200
        );
        let lapsed = get(&server, "/paid/x", &[("authorization", &ulla)]).await;
        assert_eq!(lapsed.status(), StatusCode::FORBIDDEN);

        // require_mfa: a password-only token is refused; one with a second factor passes.
        let no_mfa = get(&server, "/secure/x", &[("authorization", &ivan)]).await;
        assert_eq!(no_mfa.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_code(no_mfa).await, "mfa_required");
        let before = upstream.seen().len();
        let secret = enrol_totp(&server, "ivan").await;
        server.clock.advance(Duration::from_secs(30));
        let response = token_request(
            &server,
            json!({
                "grant_type": "password",
                "username": "ivan",
                "password": PASSWORD,
                "totp_code": totp_code(&secret, server.clock.unix()),
            }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let with_mfa = format!("Bearer {}", body["access_token"].as_str().unwrap());
        let passed = get(&server, "/secure/x", &[("authorization", &with_mfa)]).await;
        assert_eq!(passed.status(), StatusCode::OK);
        assert_eq!(upstream.seen().len(), before + 1);
        assert_eq!(upstream.last().header("x-rampart-mfa"), Some("true"));
        let claims = crate::gw_policy::verify_with_jwks(
            &server,
            upstream.last().header("x-rampart-assertion").unwrap(),
        )
        .await;
        assert_eq!(claims["mfa"], true);

        let denials = denials(&server, 3).await;
        let reasons: Vec<(&str, &str, Option<&str>)> = denials
            .iter()
            .map(|d| (d.target.as_str(), d.reason.as_str(), d.actor.as_deref()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    "route:invoke",
                    "missing permission integration:invoke",
                    Some("ulla")
                ),
                (
                    "route:paid",
                    "attribute subscription must be active",
                    Some("ulla")
                ),
                (
                    "route:secure",
                    "the route requires a second factor",
                    Some("ivan")
                ),
            ]
        );
        server.stop().await;
    }
);

on_both_backends!(
    tenants_are_resolved_checked_and_forwarded_authoritatively,
    |backend| {
        let upstream = Upstream::start().await;
        let server = gateway(backend, &routes(&upstream)).await;
        member(&server, "alice", &["user"], &["acme", "globex"], &[]).await;
        member(&server, "bob", &["user"], &["acme"], &[]).await;
        let alice = format!("Bearer {}", bearer(&server, "alice").await);
        let bob = format!("Bearer {}", bearer(&server, "bob").await);

        // From the header: a membership, forwarded as X-Rampart-Tenant whatever the body,
        // a forged X-Rampart-Tenant or the assertion cache say.
        let response = http()
            .post(server.url("/t/orders"))
            .header("authorization", &bob)
            .header("x-tenant-id", "acme")
            .header("x-rampart-tenant", "globex")
            .json(&json!({"tenant_id": "globex", "tenant": "globex"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let seen = upstream.last();
        assert_eq!(seen.header("x-rampart-tenant"), Some("acme"));
        assert_eq!(seen.header("x-tenant-id"), Some("acme"));
        let claims = crate::gw_policy::verify_with_jwks(
            &server,
            seen.header("x-rampart-assertion").unwrap(),
        )
        .await;
        assert_eq!(claims["tenant"], "acme");
        // The body is the upstream's business, passed through untouched.
        assert!(String::from_utf8_lossy(&seen.body).contains("globex"));

        let before = upstream.seen().len();
        // (path, request headers, error code, audited reason)
        let cases: &[(&str, Headers, &str, &str)] = &[
            // Another tenant: not a member.
            (
                "/t/orders",
                &[("authorization", &bob), ("x-tenant-id", "globex")],
                "tenant_forbidden",
                "not a member of tenant globex",
            ),
            // No tenant named where one is required.
            (
                "/t/orders",
                &[("authorization", &bob)],
                "tenant_required",
                "the request names no tenant",
            ),
            // Two tenant headers.
            (
                "/t/orders",
                &[
                    ("authorization", &alice),
                    ("x-tenant-id", "acme"),
                    ("x-tenant-id", "globex"),
                ],
                "tenant_invalid",
                "more than one tenant header",
            ),
            // The query cannot name another tenant than the resolved one.
            (
                "/t/orders?tenant_id=globex",
                &[("authorization", &alice), ("x-tenant-id", "acme")],
                "tenant_mismatch",
                "query parameter tenant_id contradicts tenant acme",
            ),
            (
                "/t/orders?x=1&tenant=globex",
                &[("authorization", &alice), ("x-tenant-id", "acme")],
                "tenant_mismatch",
                "query parameter tenant contradicts tenant acme",
            ),
            // From a claim: Alice belongs to two tenants, so her token names none.
            (
                "/c/orders",
                &[("authorization", &alice), ("x-tenant-id", "acme")],
                "tenant_required",
                "the request names no tenant",
            ),
        ];
        for (path, headers, code, _) in cases {
            let mut request = http().get(server.url(path));
            for (name, value) in *headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} {headers:?}"
            );
            assert_eq!(error_code(response).await, *code, "{path}");
        }
        assert_eq!(
            upstream.seen().len(),
            before,
            "a refused tenant request reached the upstream"
        );
        let audited = denials(&server, cases.len()).await;
        let reasons: Vec<&str> = audited.iter().map(|d| d.reason.as_str()).collect();
        let expected: Vec<&str> = cases.iter().map(|c| c.3).collect();
        assert_eq!(reasons, expected);

        // The matching query value is fine.
        let ok = get(
            &server,
            "/t/orders?tenant_id=acme",
            &[("authorization", &alice), ("x-tenant-id", "acme")],
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK);

        // From the claim: Bob's single membership; his tenant header cannot move him, and
        // the upstream's copy of that header is rewritten to the resolved tenant.
        let response = get(
            &server,
            "/c/orders",
            &[("authorization", &bob), ("x-tenant-id", "globex")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = upstream.last();
        assert_eq!(seen.header("x-rampart-tenant"), Some("acme"));
        assert_eq!(seen.header("x-tenant-id"), Some("acme"));
        server.stop().await;
    }
);
