//! CORS per route (F-CORS): exact origins only, correct preflights, `Vary: Origin`.
//!
//! Origins are compared as whole `scheme://host[:port]` strings, lower-case, so no
//! suffix (`evil-example.com`), prefix (`example.com.evil.net`) or scheme
//! (`http://` for `https://`) confusion is possible; `null` is never allowed;
//! credentials are allowed only with explicit origins (the configuration refuses `*`
//! with credentials).

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use rampart_config::{CorsConfig, CorsOrigin};

/// A route's CORS policy.
#[derive(Debug, Clone)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
    credentials: bool,
    methods: Vec<Method>,
    allow_methods: HeaderValue,
    allow_headers: Vec<String>,
    allow_headers_value: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

/// What to do with a request, CORS-wise.
#[derive(Debug)]
pub enum CorsOutcome {
    /// Not a CORS request (no `Origin`), or the route has no CORS policy.
    NotCors,
    /// A preflight: answer it directly with this response.
    Preflight(http::Response<()>),
    /// An actual request from an allowed origin: add these headers to the response.
    Allowed(Vec<(header::HeaderName, HeaderValue)>),
    /// An actual request from an origin that is not allowed: forward it, but without
    /// CORS headers, so the browser withholds the response from the script.
    NotAllowed,
}

impl Cors {
    /// Compiles a route's `[routes.cors]`.
    pub fn new(config: &CorsConfig) -> Self {
        let any = config
            .allow_origins
            .iter()
            .any(|o| matches!(o, CorsOrigin::Any));
        let origins = config
            .allow_origins
            .iter()
            .filter_map(|o| match o {
                CorsOrigin::Exact(origin) => Some(origin.to_ascii_lowercase()),
                CorsOrigin::Any => None,
            })
            .collect();
        let methods: Vec<Method> = config
            .allow_methods
            .iter()
            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
            .collect();
        let join = |items: &[String]| {
            (!items.is_empty())
                .then(|| HeaderValue::from_str(&items.join(", ")).ok())
                .flatten()
        };
        Self {
            any,
            origins,
            credentials: config.allow_credentials,
            allow_methods: HeaderValue::from_str(
                &methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .unwrap_or(HeaderValue::from_static("GET")),
            methods,
            allow_headers_value: join(&config.allow_headers),
            allow_headers: config
                .allow_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            expose_headers: join(&config.expose_headers),
            max_age: HeaderValue::from(config.max_age.as_secs()),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        if origin.eq_ignore_ascii_case("null") {
            return false;
        }
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether `origin` is named exactly and credentials are allowed: such an origin
    /// may send cookie-authenticated requests (the wildcard never qualifies).
    pub fn allows_credentialed(&self, origin: &str) -> bool {
        self.credentials
            && !origin.eq_ignore_ascii_case("null")
            && self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Classifies a request.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> CorsOutcome {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return CorsOutcome::NotCors;
        };
        let preflight = method == Method::OPTIONS
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !self.allows(origin) {
            return if preflight {
                CorsOutcome::Preflight(self.refusal())
            } else {
                CorsOutcome::NotAllowed
            };
        }
        let allow_origin = if self.any && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            match HeaderValue::from_str(origin) {
                Ok(value) => value,
                Err(_) => return CorsOutcome::NotAllowed,
            }
        };
        let mut out = vec![(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin)];
        if self.credentials {
            out.push((
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        if !preflight {
            if let Some(expose) = &self.expose_headers {
                out.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone()));
            }
            return CorsOutcome::Allowed(out);
        }
        let requested_method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok())
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        if !requested_method.is_some_and(|m| self.methods.contains(&m)) {
            return CorsOutcome::Preflight(self.refusal());
        }
        let requested_headers_ok = headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .all(|h| self.allow_headers.contains(&h));
        if !requested_headers_ok {
            return CorsOutcome::Preflight(self.refusal());
        }
        out.push((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        ));
        if let Some(allow) = &self.allow_headers_value {
            out.push((header::ACCESS_CONTROL_ALLOW_HEADERS, allow.clone()));
        }
        out.push((header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone()));
        let mut response = http::Response::new(());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.headers_mut().insert(header::VARY, vary());
        for (name, value) in out {
            response.headers_mut().insert(name, value);
        }
        CorsOutcome::Preflight(response)
    }

    /// A refused preflight: no CORS headers, so the browser blocks the request.
    fn refusal(&self) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.headers_mut().insert(header::VARY, vary());
        response
    }
}

/// `Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers`:
/// responses differ by origin, so caches must keep them apart.
pub fn vary() -> HeaderValue {
    HeaderValue::from_static(
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors::new(&CorsConfig {
            allow_origins: origins
                .iter()
                .map(|o| {
                    if *o == "*" {
                        CorsOrigin::Any
                    } else {
                        CorsOrigin::Exact((*o).to_owned())
                    }
                })
                .collect(),
            allow_credentials: credentials,
            allow_methods: vec!["GET".to_owned(), "POST".to_owned()],
            allow_headers: vec!["content-type".to_owned(), "x-csrf-token".to_owned()],
            expose_headers: vec![],
            max_age: Duration::from_secs(600),
        })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_exact_origins_are_allowed() {
        let c = cors(&["https://app.example.com", "tauri://localhost"], true);
        for origin in [
            "https://evil-app.example.com",
            "https://app.example.com.evil.net",
            "http://app.example.com",
            "https://app.example.com:8443",
            "null",
        ] {
            let h = headers(&[("origin", Box::leak(origin.to_owned().into_boxed_str()))]);
            assert!(
                matches!(c.check(&Method::GET, &h), CorsOutcome::NotAllowed),
                "{origin}"
            );
        }
        match c.check(&Method::GET, &headers(&[("origin", "tauri://localhost")])) {
            CorsOutcome::Allowed(h) => {
                assert!(h.contains(&(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("tauri://localhost")
                )));
                assert!(h.contains(&(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true")
                )));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preflight_checks_method_and_headers() {
        let c = cors(&["https://app.example.com"], true);
        let ok = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "Content-Type, X-CSRF-Token",
            ),
        ]);
        match c.check(&Method::OPTIONS, &ok) {
            CorsOutcome::Preflight(r) => {
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
                assert_eq!(
                    r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
                    "https://app.example.com"
                );
                assert_eq!(r.headers()[header::ACCESS_CONTROL_MAX_AGE], "600");
                assert!(
                    r.headers()[header::VARY]
                        .to_str()
                        .unwrap()
                        .contains("Origin")
                );
            }
            other => panic!("{other:?}"),
        }
        let bad_method = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "DELETE"),
        ]);
        match c.check(&Method::OPTIONS, &bad_method) {
            CorsOutcome::Preflight(r) => assert!(
                !r.headers()
                    .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            ),
            other => panic!("{other:?}"),
        }
        let bad_header = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-evil"),
        ]);
        match c.check(&Method::OPTIONS, &bad_header) {
            CorsOutcome::Preflight(r) => assert!(
                !r.headers()
                    .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_exact_origins_with_credentials_may_send_cookies() {
        let c = cors(&["https://app.example.com"], true);
        assert!(c.allows_credentialed("https://app.example.com"));
        assert!(!c.allows_credentialed("https://evil.example.com"));
        assert!(!c.allows_credentialed("null"));
        assert!(
            !cors(&["https://app.example.com"], false)
                .allows_credentialed("https://app.example.com")
        );
        assert!(!cors(&["*"], false).allows_credentialed("https://app.example.com"));
    }

    #[test]
    fn wildcard_without_credentials_answers_star() {
        let c = cors(&["*"], false);
        match c.check(
            &Method::GET,
            &headers(&[("origin", "https://anything.example")]),
        ) {
            CorsOutcome::Allowed(h) => assert!(h.contains(&(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*")
            ))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.check(&Method::GET, &headers(&[("origin", "null")])),
            CorsOutcome::NotAllowed
        ));
    }
}
