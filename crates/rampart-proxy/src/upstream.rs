//! Upstream clients: one pooled HTTP client per configured upstream.
//!
//! Bodies stream in both directions (nothing is buffered), connections are pooled and
//! kept alive, and every failure maps to a fault kind the client can act on:
//! refused or reset → 502, no answer in time → 504 — never a 400.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rampart_config::{UpstreamConfig, UpstreamMode};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use url::Url;

/// Why an upstream could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// The CA bundle could not be read or holds no certificate.
    #[error("upstream {upstream}: cannot use CA bundle {path}: {reason}")]
    CaBundle {
        /// Upstream name.
        upstream: String,
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The client certificate or key could not be used.
    #[error("upstream {upstream}: cannot use client certificate: {reason}")]
    ClientIdentity {
        /// Upstream name.
        upstream: String,
        /// What went wrong.
        reason: String,
    },
    /// No usable system trust roots for an `https://` upstream in plain mode.
    #[error("upstream {upstream}: no system CA certificates found; set mode = \"tls\" and ca_cert")]
    NoRoots {
        /// Upstream name.
        upstream: String,
    },
}

/// Why a request to an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connection refused, reset, TLS failure, or a malformed response. The message
    /// carries the whole cause chain (hyper's own text is only "client error
    /// (Connect)"), so the log says *why*: `invalid peer certificate: UnknownIssuer`,
    /// `received fatal alert: CertificateRequired`, `Connection refused`.
    #[error("upstream {upstream} failed: {}", cause_chain(source))]
    Failed {
        /// Upstream name.
        upstream: Arc<str>,
        /// The client error.
        source: hyper_util::client::legacy::Error,
    },
    /// No connection within `connect_timeout`, or no response head within
    /// `read_timeout` (or the route's `timeout`).
    #[error("upstream {upstream} did not answer within {timeout:?}")]
    Timeout {
        /// Upstream name.
        upstream: Arc<str>,
        /// The limit.
        timeout: Duration,
    },
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// A configured upstream and its connection pool.
#[derive(Clone)]
pub struct Upstream {
    name: Arc<str>,
    base: Url,
    client: HttpClient,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Upstream {
    /// Builds the client for `config`: reads CA bundle and client identity now, so a
    /// broken file fails the start rather than the first request.
    pub fn new(name: &str, config: &UpstreamConfig) -> Result<Self, UpstreamSetupError> {
        let tls = client_tls_config(name, config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = if config.http2 {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        let mut client = Client::builder(TokioExecutor::new());
        client
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle)
            .http2_only(config.http2);
        Ok(Self {
            name: Arc::from(name),
            base: config.url.clone(),
            client: client.build(connector),
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL requests are sent to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// How long the upstream may leave a response without sending bytes.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// The authority (`host[:port]`) of the base URL, for the `Host` header.
    pub fn authority(&self) -> String {
        match (self.base.host_str(), self.base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => String::new(),
        }
    }

    /// The full URI for a canonical path and raw query.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<http::Uri, http::Error> {
        let base_path = self.base.path().trim_end_matches('/');
        let mut target = String::with_capacity(base_path.len() + path.len() + 64);
        target.push_str(self.base.scheme());
        target.push_str("://");
        target.push_str(&self.authority());
        target.push_str(base_path);
        target.push_str(path);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        Ok(http::Uri::try_from(target)?)
    }

    /// Sends the request; the response body streams back unbuffered.
    pub async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendError> {
        match tokio::time::timeout(self.read_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            // A connection attempt that timed out is the upstream not answering in
            // time (504), like a response that never came; refused or reset is 502.
            Ok(Err(source)) if connect_timed_out(&source) => Err(SendError::Timeout {
                upstream: Arc::clone(&self.name),
                timeout: self.connect_timeout,
            }),
            Ok(Err(source)) => Err(SendError::Failed {
                upstream: Arc::clone(&self.name),
                source,
            }),
            Err(_) => Err(SendError::Timeout {
                upstream: Arc::clone(&self.name),
                timeout: self.read_timeout,
            }),
        }
    }
}

/// `error: cause: cause ...`, skipping causes whose text the previous one already
/// contains (io errors wrapping a rustls error repeat it).
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// Whether the client failed because connecting timed out (`connect_timeout`).
fn connect_timed_out(error: &hyper_util::client::legacy::Error) -> bool {
    if !error.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn client_tls_config(
    name: &str,
    config: &UpstreamConfig,
) -> Result<rustls::ClientConfig, UpstreamSetupError> {
    let roots = match (&config.mode, &config.ca_cert) {
        (UpstreamMode::Tls, Some(ca)) | (UpstreamMode::Plain, Some(ca)) => ca_roots(name, ca)?,
        (_, None) => system_roots(name)?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| UpstreamSetupError::ClientIdentity {
        upstream: name.to_owned(),
        reason: e.to_string(),
    })?;
    let builder = if config.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(danger::AcceptAnyCertificate::new()))
    } else {
        builder.with_root_certificates(roots)
    };
    // ALPN is set by the connector builder (enable_http1 / enable_http2).
    let tls = match &config.client_cert {
        Some(identity) => {
            // The shared loaders: the key file is mode-checked and never quoted in
            // an error (a malformed PEM line may be key material).
            let identity_error =
                |e: rampart_http::tls::TlsError| UpstreamSetupError::ClientIdentity {
                    upstream: name.to_owned(),
                    reason: e.to_string(),
                };
            let chain = rampart_http::tls::certificate_chain(&identity.cert_path)
                .map_err(identity_error)?;
            let key = rampart_http::tls::private_key(&identity.key_path).map_err(identity_error)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                UpstreamSetupError::ClientIdentity {
                    upstream: name.to_owned(),
                    reason: e.to_string(),
                }
            })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(tls)
}

fn ca_roots(name: &str, path: &std::path::Path) -> Result<RootCertStore, UpstreamSetupError> {
    let error = |reason: String| UpstreamSetupError::CaBundle {
        upstream: name.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("no certificate in the file".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| error(e.to_string()))?;
    }
    Ok(roots)
}

fn system_roots(name: &str) -> Result<RootCertStore, UpstreamSetupError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        tracing::warn!(
            upstream = name,
            "no system CA certificates found; https upstreams will fail verification"
        );
    }
    Ok(roots)
}

/// Certificate verification switched off, for `danger_accept_invalid_certs` only.
/// Doctor reports every upstream that uses it, and production refuses it.
mod danger {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub struct AcceptAnyCertificate(rustls::crypto::WebPkiSupportedAlgorithms);

    impl AcceptAnyCertificate {
        pub fn new() -> Self {
            Self(rustls::crypto::ring::default_provider().signature_verification_algorithms)
        }
    }

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }
}
