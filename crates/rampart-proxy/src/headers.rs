//! Header hygiene between client, Rampart and upstream.
//!
//! Order matters and is the point: first remove what describes the client's hop or
//! claims an identity (hop-by-hop headers, headers the client nominated in
//! `Connection`, forwarding headers, `X-Rampart-*`), *then* add Rampart's own. A client
//! can therefore never delete or pre-set a header that Rampart sets.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rampart_http::client_ip::{ClientInfo, Scheme};

/// Headers that describe a single connection (RFC 9110 §7.6.1) and are never
/// forwarded as-is.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers through which a client could claim a network identity or an authenticated
/// identity. Always removed from client requests; Rampart sets the canonical ones.
pub const CLIENT_IDENTITY: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
    "x-client-ip",
    "x-request-id",
];

/// The prefix of Rampart's identity headers; any client-sent header with it is removed.
pub const IDENTITY_PREFIX: &str = "x-rampart-";

/// Removes hop-by-hop headers, and every header the client listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let nominated: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in nominated {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Removes forwarding and identity claims made by the client, plus any extra header
/// names configured as identity headers.
pub fn strip_client_identity(headers: &mut HeaderMap, extra: &[HeaderName]) {
    for name in CLIENT_IDENTITY {
        headers.remove(*name);
    }
    for name in extra {
        headers.remove(name);
    }
    let prefixed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(IDENTITY_PREFIX))
        .cloned()
        .collect();
    for name in prefixed {
        headers.remove(name);
    }
}

/// Adds the canonical forwarding headers, rebuilt from what Rampart knows.
pub fn add_forwarding(
    headers: &mut HeaderMap,
    client: &ClientInfo,
    original_host: Option<&HeaderValue>,
    request_id: &HeaderValue,
) {
    let proto = match client.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let ip = client.ip.to_string();
    if let Ok(value) = HeaderValue::from_str(&ip) {
        headers.insert("x-forwarded-for", value.clone());
        headers.insert("x-real-ip", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    let node = if client.ip.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip
    };
    let mut forwarded = format!("for={node};proto={proto}");
    if let Some(host) = original_host.and_then(|h| h.to_str().ok()) {
        if let Ok(value) = HeaderValue::from_str(host) {
            headers.insert("x-forwarded-host", value);
        }
        if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            forwarded.push_str(";host=");
            forwarded.push_str(host);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert("forwarded", value);
    }
    headers.insert("x-request-id", request_id.clone());
}

/// Removes Rampart's credentials, so the upstream never holds a user's Rampart
/// session or token: the cookies named in `rampart_cookies` are cut out of `Cookie`
/// (other cookies stay), and a bearer token Rampart accepted is removed from
/// `Authorization`.
pub fn strip_rampart_credentials(
    headers: &mut HeaderMap,
    rampart_cookies: &[String],
    bearer_consumed: bool,
) {
    if bearer_consumed {
        headers.remove(header::AUTHORIZATION);
    }
    let cookies: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::COOKIE);
    for value in cookies {
        let Ok(text) = value.to_str() else {
            // Not text: cannot be Rampart's cookie; pass it through untouched.
            headers.append(header::COOKIE, value);
            continue;
        };
        let kept: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|pair| {
                !pair.is_empty()
                    && pair
                        .split_once('=')
                        .is_none_or(|(name, _)| !rampart_cookies.iter().any(|c| c == name.trim()))
            })
            .collect();
        if !kept.is_empty()
            && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        {
            headers.append(header::COOKIE, value);
        }
    }
}

/// The identity of an authenticated caller, as headers for the upstream.
pub struct IdentityHeaders<'a> {
    /// The username.
    pub username: &'a str,
    /// The user id.
    pub user_id: &'a str,
    /// Role names.
    pub roles: &'a [String],
    /// The resolved tenant.
    pub tenant: Option<&'a str>,
    /// How the caller authenticated.
    pub method: &'a str,
    /// Whether a second factor was passed.
    pub mfa: bool,
    /// The signed assertion JWT.
    pub assertion: Option<&'a str>,
}

/// Adds `X-Rampart-*` identity headers (after [`strip_client_identity`] removed any
/// the client sent).
pub fn add_identity(headers: &mut HeaderMap, identity: &IdentityHeaders<'_>) {
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("x-rampart-user", identity.username);
    put("x-rampart-user-id", identity.user_id);
    put("x-rampart-roles", &identity.roles.join(","));
    if let Some(tenant) = identity.tenant {
        put("x-rampart-tenant", tenant);
    }
    put("x-rampart-auth-method", identity.method);
    put("x-rampart-mfa", if identity.mfa { "true" } else { "false" });
    if let Some(assertion) = identity.assertion {
        put("x-rampart-assertion", assertion);
    }
}

/// Whether the request asks for a WebSocket upgrade (`Connection: upgrade` and
/// `Upgrade: websocket`).
pub fn wants_websocket(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade_websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    connection_upgrade && upgrade_websocket
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn connection_nominated_headers_are_removed_before_ours_are_added() {
        let mut h = map(&[
            ("connection", "keep-alive, x-forwarded-for, x-request-id"),
            ("keep-alive", "timeout=5"),
            ("x-app", "1"),
        ]);
        strip_hop_by_hop(&mut h);
        strip_client_identity(&mut h, &[]);
        let client = ClientInfo {
            ip: "203.0.113.5".parse::<IpAddr>().unwrap(),
            scheme: Scheme::Http,
            via_trusted_proxy: false,
        };
        add_forwarding(&mut h, &client, None, &HeaderValue::from_static("rid"));
        assert_eq!(h["x-forwarded-for"], "203.0.113.5");
        assert_eq!(h["x-request-id"], "rid");
        assert!(!h.contains_key("connection"));
        assert!(!h.contains_key("keep-alive"));
        assert_eq!(h["x-app"], "1");
    }

    #[test]
    fn identity_claims_are_stripped() {
        let mut h = map(&[
            ("x-rampart-user", "admin"),
            ("X-Rampart-Roles", "admin"),
            ("x-forwarded-for", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
            ("x-remote-user", "root"),
        ]);
        strip_client_identity(&mut h, &[HeaderName::from_static("x-remote-user")]);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn rampart_session_cookie_and_consumed_bearer_are_removed() {
        let mut h = map(&[
            (
                "cookie",
                "theme=dark; __Host-rampart_session=SECRET; lang=en",
            ),
            (
                "cookie",
                "__Host-rampart_session=SECRET2; __Host-rampart_magic=BIND",
            ),
            ("authorization", "Bearer rmp_xyz"),
        ]);
        strip_rampart_credentials(
            &mut h,
            &[
                "__Host-rampart_session".to_owned(),
                "__Host-rampart_magic".to_owned(),
            ],
            true,
        );
        let cookies: Vec<&str> = h
            .get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["theme=dark; lang=en"]);
        assert!(!h.contains_key("authorization"));
        let mut keep = map(&[("authorization", "Basic dXNlcjpwYXNz")]);
        strip_rampart_credentials(&mut keep, &["__Host-rampart_session".to_owned()], false);
        assert!(
            keep.contains_key("authorization"),
            "an app's own credential is not Rampart's"
        );
    }

    #[test]
    fn websocket_upgrade_is_recognised() {
        assert!(wants_websocket(&map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket")
        ])));
        assert!(!wants_websocket(&map(&[("upgrade", "websocket")])));
    }
}
