//! Parsers for the values that are written as strings: durations, sizes, CIDRs,
//! socket addresses, URLs, CORS origins, log filters, host names, HTTP tokens,
//! header names and values, cookie names, role permissions and vault references.
//!
//! Each returns the typed value or an [`Invalid`] with a message and a fix; the
//! caller adds the key and the value. Messages never repeat the input (the caller
//! decides whether it may be shown), and the underlying parser's error text is not
//! used when it would quote the input.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::time::Duration;

use bytesize::ByteSize;
use ipnet::IpNet;
use url::Url;

use crate::config::{CorsOrigin, LogFilter};

/// Why a value did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub message: String,
    pub fix: String,
}

impl Invalid {
    fn new(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// A human-readable duration: `"10s"`, `"15m"`, `"1h 30m"`, `"500ms"`.
pub(crate) fn duration(text: &str) -> Result<Duration, Invalid> {
    let fix = "use a number and a unit, such as \"10s\", \"15m\" or \"1h 30m\"";
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit()) && trimmed != "0" {
        return Err(Invalid::new("not a duration: the unit is missing", fix));
    }
    humantime::parse_duration(trimmed).map_err(|_| Invalid::new("not a duration", fix))
}

/// A human-readable size in bytes: `"32KiB"`, `"1MiB"`, `"10 MB"`, or a plain number
/// of bytes.
pub(crate) fn size(text: &str) -> Result<u64, Invalid> {
    let fix = "use a number and a unit, such as \"32KiB\", \"1MiB\" or \"10 MB\"";
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('-') {
        return Err(Invalid::new("not a size", fix));
    }
    ByteSize::from_str(trimmed)
        .map(|s| s.as_u64())
        .map_err(|_| Invalid::new("not a size", fix))
}

/// A network in CIDR notation, or a bare IP meaning that single address (/32, /128).
///
/// A CIDR with host bits set (`10.0.0.1/8`) is refused rather than truncated: in a
/// trusted-proxy list it would silently trust a whole /8 when one host was meant.
pub(crate) fn cidr(text: &str) -> Result<IpNet, Invalid> {
    let trimmed = text.trim();
    if trimmed.contains('/') {
        let net = IpNet::from_str(trimmed).map_err(|_| {
            Invalid::new(
                "not a CIDR",
                "use a network such as \"10.0.0.0/8\" or a single IP such as \"192.0.2.10\"",
            )
        })?;
        if net.trunc() != net {
            return Err(Invalid::new(
                "host bits are set after the prefix",
                format!(
                    "write the network \"{}\", or the single address \"{}\"",
                    net.trunc(),
                    net.addr()
                ),
            ));
        }
        return Ok(net);
    }
    IpAddr::from_str(trimmed).map(IpNet::from).map_err(|_| {
        Invalid::new(
            "not an IP address or CIDR",
            "use a network such as \"10.0.0.0/8\" or a single IP such as \"192.0.2.10\"",
        )
    })
}

/// An `IP:PORT` socket address. Host names are refused: resolving them at start
/// would make the bound address depend on DNS.
pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, Invalid> {
    SocketAddr::from_str(text.trim()).map_err(|_| {
        Invalid::new(
            "not a socket address",
            "use IP:PORT such as \"127.0.0.1:9171\" (or \"[::1]:9171\" for IPv6)",
        )
    })
}

/// An upstream base URL: http or https, with a host, no credentials, query or
/// fragment. A base path is allowed.
pub(crate) fn upstream_url(text: &str) -> Result<Url, Invalid> {
    let url = http_url(text, "use a URL such as \"http://127.0.0.1:8080\"")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(
            "credentials in an upstream URL would be logged with it",
            "remove user:password@ from the URL and send the credential as an injected header",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Invalid::new(
            "an upstream URL cannot have a query or fragment",
            "remove everything from '?' or '#' on",
        ));
    }
    Ok(url)
}

/// Rampart's external origin: http or https, host and optional port only.
pub(crate) fn public_url(text: &str) -> Result<Url, Invalid> {
    let fix = "use the origin only, such as \"https://auth.example.com\"";
    let url = http_url(text, fix)?;
    let clean = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !clean {
        return Err(Invalid::new(
            "public_url must be an origin: no path, query, fragment or credentials",
            fix,
        ));
    }
    Ok(url)
}

/// A sign-in page: an absolute http or https URL without credentials or fragment.
pub(crate) fn signin_url(text: &str) -> Result<Url, Invalid> {
    let fix = "use a URL such as \"https://auth.example.com/login\"";
    let url = http_url(text, fix)?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(Invalid::new(
            "a sign-in URL cannot carry credentials or a fragment",
            fix,
        ));
    }
    Ok(url)
}

fn http_url(text: &str, fix: &str) -> Result<Url, Invalid> {
    let url = Url::parse(text.trim()).map_err(|_| Invalid::new("not a URL", fix))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid::new(
            "the URL must start with http:// or https://",
            fix,
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new("the URL has no host", fix));
    }
    Ok(url)
}

/// A CORS origin: `*`, or exactly `scheme://host[:port]` (custom schemes such as
/// `tauri://localhost` included). `null` is refused: sandboxed iframes and local
/// files send it, so anyone can produce it.
pub(crate) fn origin(text: &str) -> Result<CorsOrigin, Invalid> {
    let fix =
        "use an exact origin such as \"https://app.example.com\" or \"http://localhost:5173\"";
    let trimmed = text.trim();
    if trimmed == "*" {
        return Ok(CorsOrigin::Any);
    }
    if trimmed.eq_ignore_ascii_case("null") {
        return Err(Invalid::new(
            "the \"null\" origin is sent by sandboxed iframes and file:// pages, so any site can claim it",
            "remove \"null\" and list the real origins",
        ));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(Invalid::new("not an origin: the scheme is missing", fix));
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(Invalid::new(
            "not an origin: an origin has no path, query or credentials (not even a trailing /)",
            fix,
        ));
    }
    let url = Url::parse(trimmed).map_err(|_| Invalid::new("not an origin", fix))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Invalid::new("not an origin: the host is missing", fix))?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(CorsOrigin::Exact(format!(
        "{}://{}{port}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )))
}

/// An exact origin `scheme://host[:port]`, as [`origin`] but without `*`: for lists
/// that extend the user's session to other origins (CSRF), where a wildcard would
/// extend it to every site.
pub(crate) fn exact_origin(text: &str) -> Result<String, Invalid> {
    match origin(text)? {
        CorsOrigin::Exact(origin) => Ok(origin),
        CorsOrigin::Any => Err(Invalid::new(
            "\"*\" would let every site make requests with the user's session cookie",
            "list the exact origins, such as \"https://app.example.com\"",
        )),
    }
}

/// An origin a browser may be redirected to after sign-in: as [`exact_origin`], and
/// http or https only. A redirect is a navigation, and other schemes (`javascript:`,
/// app schemes) would hand the browser to something that is not a web page of ours.
pub(crate) fn redirect_origin(text: &str) -> Result<String, Invalid> {
    let origin = exact_origin(text)?;
    if !(origin.starts_with("https://") || origin.starts_with("http://")) {
        return Err(Invalid::new(
            "a sign-in redirect returns the browser to a web page: only http and https origins",
            "use an origin such as \"https://app.example.com\"",
        ));
    }
    Ok(origin)
}

/// The level names `tracing` accepts.
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// A `tracing` filter: a level, or comma-separated directives `level` or
/// `target=level`.
///
/// `EnvFilter` would read a misspelled level (`"inof"`) as a *target* and log
/// nothing; this accepts only the forms above so the typo is caught here. Span and
/// field filters (`target[span{field}]=level`) are not supported.
pub(crate) fn log_filter(text: &str) -> Result<LogFilter, Invalid> {
    let fix = "use a level (trace, debug, info, warn, error, off) or directives such as \"info,rampart_http=debug\"";
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new("the log filter is empty", fix));
    }
    for directive in trimmed.split(',').map(str::trim) {
        let (target, level) = match directive.rsplit_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, directive),
        };
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            let hint = crate::suggest::did_you_mean(level, LEVELS.iter().copied());
            return Err(Invalid::new(
                format!("\"{level}\" is not a log level{hint}"),
                fix,
            ));
        }
        if let Some(target) = target {
            let valid = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'));
            if !valid {
                return Err(Invalid::new(
                    format!(
                        "\"{target}\" is not a log target (a module path such as rampart_http)"
                    ),
                    fix,
                ));
            }
        }
    }
    Ok(LogFilter(trimmed.to_owned()))
}

/// A DNS host name (or IPv4 address), lower-cased; no port, scheme or path.
pub(crate) fn host(text: &str) -> Result<String, Invalid> {
    let lower = text.trim().to_ascii_lowercase();
    let valid = !lower.is_empty()
        && lower.len() <= 253
        && !lower.starts_with(['.', '-'])
        && !lower.ends_with(['.', '-'])
        && lower
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(lower)
    } else {
        Err(Invalid::new(
            "not a host name",
            "write the bare host, such as \"app.example.com\" (no scheme, port, path or leading dot)",
        ))
    }
}

/// An HTTP token (RFC 9110 §5.6.2), as used by method and header names.
pub(crate) fn http_token(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    let valid = !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Invalid::new(
            "not a valid HTTP method or header name",
            "use a name such as \"GET\" or \"X-Request-Id\"",
        ))
    }
}

/// A header name: an HTTP token (RFC 9110 §5.6.2), lower-cased as HTTP/2 requires.
pub(crate) fn header_name(text: &str) -> Result<String, Invalid> {
    http_token(text)
        .map(|name| name.to_ascii_lowercase())
        .map_err(|_| {
            Invalid::new(
                "not a header name: letters, digits and !#$%&'*+-.^_`|~ only",
                "use a name such as \"X-Api-Key\"",
            )
        })
}

/// A header value Rampart can send as written: non-empty, visible ASCII, spaces and
/// tabs (RFC 9110 §5.5 without obs-text). Line breaks would split the header
/// (response splitting); surrounding whitespace is removed.
pub(crate) fn header_value(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim_matches([' ', '\t']);
    if trimmed.is_empty() {
        return Err(Invalid::new(
            "the header value is empty",
            "write the value, or remove the header",
        ));
    }
    if trimmed
        .chars()
        .any(|c| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
    {
        return Err(Invalid::new(
            "not a header value: only visible ASCII characters, spaces and tabs (no line breaks)",
            "remove line breaks and non-ASCII characters (percent-encode them in URLs)",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Longest vault secret name, as `rampart_core::vault::MAX_NAME_LEN`.
const MAX_VAULT_NAME_LEN: usize = 64;

/// A vault reference `vault:<secret-name>`, returning the name: 1 to 64 characters
/// from `a-z`, `0-9`, `_`, `.`, `-` — the names `rampart secrets set` accepts
/// (`rampart_core::vault::SecretName`).
pub(crate) fn vault_reference(text: &str) -> Result<String, Invalid> {
    let Some(name) = text.trim().strip_prefix("vault:") else {
        return Err(Invalid::new(
            "not a vault reference: the value must be \"vault:<secret-name>\", so the credential stays in the vault and out of the config file",
            "store the credential with `rampart secrets set <name>` and write \"vault:<name>\"",
        ));
    };
    let valid = (1..=MAX_VAULT_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(Invalid::new(
            "not a vault secret name: 1 to 64 characters from a-z, 0-9, _, . and -",
            "write \"vault:<name>\" with the name given to `rampart secrets set`, such as \"vault:third_party\"",
        ))
    }
}

/// A cookie name: letters, digits, `-`, `_` and `.` — a conservative subset of the
/// RFC 6265 token that needs no quoting anywhere. Prefix rules are checked by the
/// caller, which knows the cookie's flags.
pub(crate) fn cookie_name(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    let valid = !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Invalid::new(
            "not a cookie name",
            "use letters, digits, -, _ and . only, such as \"__Host-rampart_session\"",
        ))
    }
}

/// A role permission: `*` (everything), or lower-case words of `a-z`, `0-9`, `_`
/// and `-` joined by `:` (`admin`, `users:read`, `integration:invoke`). Wildcards
/// inside a permission (`users:*`) are refused: only the whole-permission `*`
/// exists, so a role's power is always read off its list.
pub(crate) fn permission(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    if trimmed == "*" {
        return Ok(trimmed.to_owned());
    }
    let valid = trimmed.split(':').all(|word| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Invalid::new(
            "not a permission",
            "use \"*\" for all, a word such as \"admin\", or resource:action such as \"users:read\" (lower-case a-z, 0-9, _ and -)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            duration("15").unwrap_err().message,
            "not a duration: the unit is missing"
        );
        assert!(duration("soon").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1MiB").unwrap(), 1024 * 1024);
        assert_eq!(size("32KiB").unwrap(), 32 * 1024);
        assert_eq!(size("10 MB").unwrap(), 10_000_000);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("big").is_err());
        assert!(size("-1KiB").is_err());
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(cidr("::1").unwrap().to_string(), "::1/128");
        let err = cidr("10.0.0.1/8").unwrap_err();
        assert!(err.fix.contains("10.0.0.0/8") && err.fix.contains("10.0.0.1"));
        assert!(cidr("10.0.0.0/33").is_err());
        assert!(cidr("proxy").is_err());
    }

    #[test]
    fn urls() {
        assert!(upstream_url("http://127.0.0.1:8080/api").is_ok());
        assert!(upstream_url("ftp://x").is_err());
        assert!(upstream_url("http://u:p@x").is_err());
        assert!(public_url("https://auth.example.com").is_ok());
        assert!(public_url("https://auth.example.com/").is_ok());
        assert!(public_url("https://auth.example.com/app").is_err());
        assert!(public_url("https://auth.example.com/?a=b").is_err());
        assert!(public_url("auth.example.com").is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(origin("*").unwrap(), CorsOrigin::Any);
        assert_eq!(
            origin("HTTPS://App.Example.com:443").unwrap(),
            CorsOrigin::Exact("https://app.example.com".to_owned())
        );
        assert_eq!(
            origin("tauri://localhost").unwrap(),
            CorsOrigin::Exact("tauri://localhost".to_owned())
        );
        assert_eq!(
            origin("http://localhost:5173").unwrap(),
            CorsOrigin::Exact("http://localhost:5173".to_owned())
        );
        assert!(origin("null").is_err());
        assert!(origin("https://a.example/").is_err());
        assert!(origin("a.example").is_err());
        assert_eq!(
            exact_origin("https://App.example").unwrap(),
            "https://app.example"
        );
        assert!(
            exact_origin("*")
                .unwrap_err()
                .message
                .contains("every site")
        );
        assert!(exact_origin("null").is_err());
    }

    #[test]
    fn log_filters() {
        assert!(log_filter("info").is_ok());
        assert!(log_filter("WARN").is_ok());
        assert!(log_filter("info,rampart_http=debug,hyper::proto=warn").is_ok());
        assert!(
            log_filter("inof")
                .unwrap_err()
                .message
                .contains("did you mean \"info\"")
        );
        assert!(log_filter("rampart=loud").is_err());
        assert!(log_filter("=debug").is_err());
        assert!(log_filter("").is_err());
    }

    #[test]
    fn hosts_and_tokens() {
        assert_eq!(host("App.Example.com").unwrap(), "app.example.com");
        assert!(host("https://x").is_err());
        assert!(host("x:80").is_err());
        assert!(host(".example.com").is_err());
        assert!(http_token("X-Request-Id").is_ok());
        assert!(http_token("bad header").is_err());
        assert_eq!(header_name(" X-Api-Key ").unwrap(), "x-api-key");
        assert!(header_name("X Api").is_err());
        assert!(header_name("x:y").is_err());
    }

    #[test]
    fn header_values() {
        assert_eq!(
            header_value(" default-src 'self'; img-src * ").unwrap(),
            "default-src 'self'; img-src *"
        );
        assert!(header_value("").is_err());
        assert!(header_value("a\r\nSet-Cookie: x=1").is_err());
        assert!(header_value("caf\u{e9}").is_err());
        assert!(header_value("a\tb").is_ok());
    }

    #[test]
    fn vault_references() {
        assert_eq!(vault_reference("vault:third_party").unwrap(), "third_party");
        assert_eq!(vault_reference(" vault:a.b-c_1 ").unwrap(), "a.b-c_1");
        assert!(vault_reference("sk_live_123").is_err());
        assert!(vault_reference("vault:").is_err());
        assert!(vault_reference("vault:Upper").is_err());
        assert!(vault_reference(&format!("vault:{}", "a".repeat(65))).is_err());
        assert!(vault_reference(&format!("vault:{}", "a".repeat(64))).is_ok());
        assert!(vault_reference("Vault:x").is_err());
    }

    #[test]
    fn redirect_origins_and_signin_urls() {
        assert_eq!(
            redirect_origin("https://App.example.com").unwrap(),
            "https://app.example.com"
        );
        assert!(redirect_origin("tauri://localhost").is_err());
        assert!(redirect_origin("*").is_err());
        assert!(redirect_origin("https://a.example/path").is_err());
        assert!(signin_url("https://auth.example.com/login?x=1").is_ok());
        assert!(signin_url("https://u:p@auth.example.com/login").is_err());
        assert!(signin_url("/login").is_err());
    }

    #[test]
    fn cookie_names() {
        assert_eq!(cookie_name(" __Host-sid ").unwrap(), "__Host-sid");
        assert!(cookie_name("a b").is_err());
        assert!(cookie_name("sid;").is_err());
        assert!(cookie_name("").is_err());
    }

    #[test]
    fn permissions() {
        for ok in ["*", "admin", "users:read", "integration:invoke", "a-b_c:d1"] {
            assert_eq!(permission(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "Users:read",
            "users:",
            ":read",
            "users:*",
            "users read",
            "**",
        ] {
            assert!(permission(bad).is_err(), "{bad}");
        }
    }
}
