//! Who the client is, network-wise (F-CLIENTIP).
//!
//! Forwarded headers are claims made by whoever sent the request. They are believed
//! only when the TCP peer is a configured trusted proxy, and then read right to left:
//! the client is the right-most address that is not itself a trusted proxy. A spoofed
//! `X-Forwarded-For` from an untrusted peer changes nothing — the peer address is used
//! for rate limits and audit — so a client cannot reset or split its own budget.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The networks whose forwarded headers are believed, and optionally the one
/// single-value header (`CF-Connecting-IP`, `X-Real-IP`) they set instead of
/// `X-Forwarded-For`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    client_ip_header: Option<http::HeaderName>,
}

impl TrustedProxies {
    /// Trust the given networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self {
            networks,
            client_ip_header: None,
        }
    }

    /// Read the client address from `header` (set by the trusted proxy) instead of
    /// walking `X-Forwarded-For`.
    pub fn with_client_ip_header(mut self, header: Option<http::HeaderName>) -> Self {
        self.client_ip_header = header;
        self
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// The scheme the client used, as far as Rampart can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS (direct TLS, or a trusted proxy said so).
    Https,
}

/// The resolved client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client address used for limits, lockouts and audit.
    pub ip: IpAddr,
    /// The scheme the client used.
    pub scheme: Scheme,
    /// Whether the request came through a trusted proxy.
    pub via_trusted_proxy: bool,
}

/// Resolves the client from the TCP peer, the transport and (if the peer is trusted)
/// the forwarded headers.
pub fn resolve(
    peer: IpAddr,
    direct_tls: bool,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> ClientInfo {
    let peer = canonical(peer);
    let direct_scheme = if direct_tls {
        Scheme::Https
    } else {
        Scheme::Http
    };
    if !trusted.contains(peer) {
        return ClientInfo {
            ip: peer,
            scheme: direct_scheme,
            via_trusted_proxy: false,
        };
    }
    if let Some(name) = &trusted.client_ip_header {
        // The trusted proxy states the client in one header; an absent or unparsable
        // value leaves the proxy itself as the client (never a client's claim).
        let ip = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_ip(v.trim()))
            .unwrap_or(peer);
        return ClientInfo {
            ip,
            scheme: forwarded_proto(headers).unwrap_or(direct_scheme),
            via_trusted_proxy: true,
        };
    }
    let hops = forwarded_for(headers);
    let mut ip = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(addr) => {
                ip = *addr;
                if !trusted.contains(*addr) {
                    break;
                }
            }
            // An unparsable hop ends the walk: nothing to its left can be trusted, and
            // the last trusted hop is the best-known client address.
            None => break,
        }
    }
    let scheme = forwarded_proto(headers).unwrap_or(direct_scheme);
    ClientInfo {
        ip,
        scheme,
        via_trusted_proxy: true,
    }
}

/// The hops of `X-Forwarded-For` if present, else of `Forwarded: for=` (RFC 7239),
/// left to right; `None` marks an unparsable hop.
///
/// `X-Forwarded-For` comes first because it is what proxies append to (nginx,
/// HAProxy, Caddy, Traefik, Envoy, cloud load balancers), while most of them pass a
/// client's own `Forwarded` header through untouched: preferring `Forwarded` would
/// let any client behind such a proxy name its own address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    if headers.contains_key("x-forwarded-for") {
        return headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| match v.to_str() {
                Ok(text) => text.split(',').map(|hop| parse_ip(hop.trim())).collect(),
                Err(_) => vec![None],
            })
            .collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text
                .split(',')
                .filter_map(|element| {
                    element.split(';').find_map(|pair| {
                        let (key, value) = pair.trim().split_once('=')?;
                        key.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| parse_forwarded_node(value.trim()))
                    })
                })
                .collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The scheme the nearest trusted proxy reports, from the same family of headers as
/// the address: with `X-Forwarded-For` present, only `X-Forwarded-Proto` (a client's
/// `Forwarded: proto=` passed through is not believed); otherwise `proto=` of the
/// right-most `Forwarded` element that has one, else `X-Forwarded-Proto`.
fn forwarded_proto(headers: &HeaderMap) -> Option<Scheme> {
    let from_forwarded = if headers.contains_key("x-forwarded-for") {
        None
    } else {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("proto")
                        .then(|| value.trim().trim_matches('"').to_owned())
                })
            })
            .next_back()
    };
    let text = match from_forwarded {
        Some(proto) => proto,
        None => headers.get("x-forwarded-proto")?.to_str().ok()?.to_owned(),
    };
    // With several proxies the value may be a list; the right-most is the nearest.
    let last = text.rsplit(',').next()?.trim();
    if last.eq_ignore_ascii_case("https") {
        Some(Scheme::Https)
    } else if last.eq_ignore_ascii_case("http") {
        Some(Scheme::Http)
    } else {
        None
    }
}

fn parse_forwarded_node(value: &str) -> Option<IpAddr> {
    let value = value.trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        let inner = rest.split(']').next()?;
        return inner.parse().ok().map(canonical);
    }
    parse_ip(value)
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // "1.2.3.4:5678" — some proxies append the port.
    text.parse::<std::net::SocketAddr>()
        .ok()
        .map(|sa| canonical(sa.ip()))
}

/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry, so one
/// client cannot appear as two keys.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_change_nothing() {
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let info = resolve(ip("203.0.113.9"), false, &h, &trusted());
        assert_eq!(info.ip, ip("203.0.113.9"));
        assert_eq!(info.scheme, Scheme::Http);
        assert!(!info.via_trusted_proxy);
    }

    #[test]
    fn right_most_untrusted_hop_is_the_client() {
        // The client prepended a fake hop; the trusted proxy appended the real one.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        let info = resolve(ip("10.0.0.1"), false, &h, &trusted());
        assert_eq!(info.ip, ip("198.51.100.7"));
    }

    #[test]
    fn multiple_header_lines_are_one_list() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let info = resolve(ip("10.0.0.1"), false, &h, &trusted());
        assert_eq!(info.ip, ip("198.51.100.7"));
    }

    #[test]
    fn unparsable_hop_stops_at_last_trusted() {
        let h = headers(&[("x-forwarded-for", "not-an-ip, 10.0.0.3")]);
        let info = resolve(ip("10.0.0.1"), false, &h, &trusted());
        assert_eq!(info.ip, ip("10.0.0.3"));
    }

    #[test]
    fn forwarded_is_read_when_no_x_forwarded_for_is_present() {
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.5",
        )]);
        let info = resolve(ip("10.0.0.1"), false, &h, &trusted());
        assert_eq!(info.ip, ip("2001:db8::1"));
        assert_eq!(info.scheme, Scheme::Https);
    }

    #[test]
    fn a_client_sent_forwarded_header_passed_through_a_proxy_is_not_believed() {
        // nginx appended the real address to X-Forwarded-For and passed the client's
        // own Forwarded header through unchanged.
        let h = headers(&[
            ("forwarded", "for=6.6.6.6;proto=https"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let info = resolve(ip("10.0.0.1"), false, &h, &trusted());
        assert_eq!(info.ip, ip("198.51.100.7"));
        assert_eq!(info.scheme, Scheme::Http);
    }

    #[test]
    fn forwarded_proto_is_read_like_forwarded_for() {
        let h = headers(&[("forwarded", "for=198.51.100.7;proto=https")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), false, &h, &trusted()).scheme,
            Scheme::Https
        );
        let h = headers(&[(
            "forwarded",
            "for=198.51.100.7;proto=https, for=10.0.0.2;proto=http",
        )]);
        assert_eq!(
            resolve(ip("10.0.0.1"), false, &h, &trusted()).scheme,
            Scheme::Http
        );
        assert_eq!(
            resolve(ip("203.0.113.1"), false, &h, &trusted()).scheme,
            Scheme::Http
        );
    }

    #[test]
    fn trusted_proto_sets_https() {
        let h = headers(&[("x-forwarded-proto", "https")]);
        let info = resolve(ip("10.0.0.1"), false, &h, &trusted());
        assert_eq!(info.scheme, Scheme::Https);
    }

    #[test]
    fn client_ip_header_is_believed_only_from_trusted_peers() {
        let trusted = trusted()
            .with_client_ip_header(Some(http::HeaderName::from_static("cf-connecting-ip")));
        let h = headers(&[
            ("cf-connecting-ip", "198.51.100.23"),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        assert_eq!(
            resolve(ip("10.0.0.1"), false, &h, &trusted).ip,
            ip("198.51.100.23")
        );
        assert_eq!(
            resolve(ip("203.0.113.1"), false, &h, &trusted).ip,
            ip("203.0.113.1")
        );
        let garbage = headers(&[("cf-connecting-ip", "not an ip")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), false, &garbage, &trusted).ip,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv6_is_ipv4() {
        let info = resolve(
            ip("::ffff:203.0.113.9"),
            true,
            &HeaderMap::new(),
            &trusted(),
        );
        assert_eq!(info.ip, ip("203.0.113.9"));
        assert_eq!(info.scheme, Scheme::Https);
    }
}
