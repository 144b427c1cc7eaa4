//! Access tokens at the HTTP level (F-JWT): every forged or stale token is refused
//! with 401 on a protected endpoint, the JWKS publishes the keys, and a signing-key
//! rotation logs nobody out.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rampart_core::Clock as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::api_auth::{bearer_get, code, http, server, tokens, user};
use crate::on_both_backends;
use crate::support::TestServer;

const PROTECTED: &str = "/api/v1/auth/whoami";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// The server's active signing key, for forging.
fn signing_key(server: &TestServer) -> ed25519_dalek::SigningKey {
    let keyring = server.running().state().auth.tokens().signing().keyring();
    let pem = keyring.active().to_pkcs8_pem().unwrap();
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose_secret()).unwrap()
}

/// A token with any header and claims, validly signed by `key`.
fn forge(key: &ed25519_dalek::SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

on_both_backends!(forged_and_stale_tokens_are_refused, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (real, _) = tokens(&server, "alice").await;
    let parts: Vec<&str> = real.split('.').collect();
    let header = decode(parts[0]);
    let claims = decode(parts[1]);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    for claim in [
        "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "mfa", "sv",
    ] {
        assert!(claims.get(claim).is_some(), "{claim} missing: {claims}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    let key = signing_key(&server);
    let now = server.clock.unix();
    let with = |changes: Value| {
        let mut c = claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let kid = header["kid"].as_str().unwrap();

    // The control: a token forged exactly like Rampart's is accepted, so each refusal
    // below is caused by its one change.
    let control = forge(&key, &header, &with(json!({"jti": "control"})));
    assert_eq!(
        bearer_get(&server, PROTECTED, &control).await.status(),
        StatusCode::OK
    );

    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": kid, "typ": "JWT"})
            .to_string()
            .as_bytes()),
        parts[1]
    );
    let hs256 = {
        let public = key.verifying_key();
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "HS256", "kid": kid, "typ": "JWT"})
                .to_string()
                .as_bytes()),
            parts[1]
        );
        let mut mac = <Hmac<Sha256>>::new_from_slice(public.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let tampered = {
        let evil = with(json!({"sub": "0".repeat(32)}));
        format!(
            "{}.{}.{}",
            parts[0],
            b64(evil.to_string().as_bytes()),
            parts[2]
        )
    };
    let header_with = |extra: Value| {
        let mut h = header.clone();
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned),
        ("HS256 keyed with the public key", hs256),
        (
            "RS256 header",
            forge(&key, &header_with(json!({"alg": "RS256"})), &claims),
        ),
        (
            "ES256 header",
            forge(&key, &header_with(json!({"alg": "ES256"})), &claims),
        ),
        ("tampered payload", tampered),
        (
            "unknown kid",
            forge(&key, &header_with(json!({"kid": "nope"})), &claims),
        ),
        (
            "jku header",
            forge(
                &key,
                &header_with(json!({"jku": "https://evil.example/jwks"})),
                &claims,
            ),
        ),
        (
            "x5u header",
            forge(
                &key,
                &header_with(json!({"x5u": "https://evil.example/cert"})),
                &claims,
            ),
        ),
        (
            "embedded jwk",
            forge(
                &key,
                &header_with(
                    json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64(key.verifying_key().as_bytes())}}),
                ),
                &claims,
            ),
        ),
        (
            "expired",
            forge(
                &key,
                &header,
                &with(json!({"exp": now - 60, "iat": now - 960, "nbf": now - 960})),
            ),
        ),
        (
            "not yet valid",
            forge(&key, &header, &with(json!({"nbf": now + 3600}))),
        ),
        (
            "wrong issuer",
            forge(&key, &header, &with(json!({"iss": "https://evil.example"}))),
        ),
        (
            "wrong audience",
            forge(&key, &header, &with(json!({"aud": "someone-else"}))),
        ),
        ("no exp", {
            let mut c = claims.clone();
            c.as_object_mut().unwrap().remove("exp");
            forge(&key, &header, &c)
        }),
        (
            "older security version",
            forge(&key, &header, &with(json!({"sv": -1}))),
        ),
        (
            "unknown family",
            forge(&key, &header, &with(json!({"sid": "fam_nope"}))),
        ),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (case, token) in cases {
        let response = bearer_get(&server, PROTECTED, &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(code(response).await, "unauthenticated", "{case}");
    }
    // The real token expires with the clock.
    assert_eq!(
        bearer_get(&server, PROTECTED, &real).await.status(),
        StatusCode::OK
    );
    server.clock.advance(Duration::from_secs(900 + 31));
    assert_eq!(
        bearer_get(&server, PROTECTED, &real).await.status(),
        StatusCode::UNAUTHORIZED,
        "expired (also when cached)"
    );
    server.stop().await;
});

on_both_backends!(jwks_publishes_the_keys, |backend| {
    let server = server(backend, "").await;
    user(&server, "alice", &["user"]).await;
    let (access, _) = tokens(&server, "alice").await;
    let response = http()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = decode(access.split('.').next().unwrap())["kid"].clone();
    assert_eq!(keys[0]["kid"], kid);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert!(keys[0].get("d").is_none(), "no private part");
    // Documented in the OpenAPI document too.
    let doc: Value = http()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/.well-known/jwks.json"].is_object());
    server.stop().await;
});

on_both_backends!(
    rotation_keeps_old_tokens_valid_until_they_expire,
    |backend| {
        let server = server(backend, "").await;
        user(&server, "alice", &["user"]).await;
        let (before, _) = tokens(&server, "alice").await;
        let signing = server.running().state().auth.tokens().signing().clone();
        let old_keyring = signing.keyring();
        let rotation = signing.rotate().await.unwrap();
        // Nobody is logged out: the old token still works, new tokens use the new key.
        assert_eq!(
            bearer_get(&server, PROTECTED, &before).await.status(),
            StatusCode::OK
        );
        let (after, _) = tokens(&server, "alice").await;
        assert_eq!(
            decode(after.split('.').next().unwrap())["kid"],
            rotation.active_kid.as_str()
        );
        assert_eq!(
            bearer_get(&server, PROTECTED, &after).await.status(),
            StatusCode::OK
        );
        let jwks: Value = http()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

        // A token of the rotated-out key that has not expired (as a stolen old key could
        // mint) is refused once the key's grace is over.
        let claims = decode(after.split('.').nth(1).unwrap());
        let mut long = claims.clone();
        long["exp"] = json!(server.clock.unix() + 86_400);
        long["jti"] = json!("long");
        let minted = old_keyring.sign(&long).unwrap();
        assert_eq!(
            bearer_get(&server, PROTECTED, &minted).await.status(),
            StatusCode::OK,
            "within the grace"
        );
        server.clock.advance(Duration::from_secs(901 + 30));
        let minted = {
            let mut fresh = long.clone();
            fresh["jti"] = json!("long-2");
            old_keyring.sign(&fresh).unwrap()
        };
        assert_eq!(
            bearer_get(&server, PROTECTED, &minted).await.status(),
            StatusCode::UNAUTHORIZED,
            "rotated-out key past its grace"
        );
        server.stop().await;
    }
);
