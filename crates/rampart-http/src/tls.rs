//! Direct TLS (F-TLS): rustls with the ring provider, TLS 1.2+ with AEAD cipher
//! suites and ephemeral key exchange only, ALPN for h2 and http/1.1.
//!
//! What the listener offers is pinned here rather than inherited from rustls'
//! defaults, so a dependency update cannot widen it unnoticed; `tests/it/tls_direct.rs`
//! in `rampart-cli` runs testssl against the result and fails on any finding rated
//! MEDIUM or worse. rustls brings the rest of the hardening by construction: no
//! renegotiation, no TLS compression, no CBC or RSA key exchange, no SSLv2/3, TLS 1.0
//! or 1.1, no 0-RTT unless enabled (it is not), TLS 1.3 downgrade sentinels.
//!
//! The same PEM loaders serve the upstream client identity (`rampart-proxy`), so a
//! private key file is read and reported one way everywhere: mode-checked, and never
//! quoted in an error.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use rustls::SupportedCipherSuite;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain could not be read or is empty.
    #[error("cannot read certificate chain {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The private key could not be read (permissions are checked too). The reason
    /// never quotes the file's content.
    #[error("cannot read private key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the combination (for example a key that does not belong to the
    /// certificate).
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Lowest protocol version to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// The cipher suites the listener offers, strongest first. All are AEAD with
/// ephemeral (EC)DHE key exchange, i.e. forward secret — Mozilla's "intermediate"
/// profile, minus the finite-field DHE suites rustls never implemented. TLS 1.2 is
/// kept for clients that lack 1.3 (`min_version = "1.3"` drops it).
pub const CIPHER_SUITES: &[SupportedCipherSuite] = &[
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// ALPN protocols offered, preferred first (RFC 7301; RFC 9113 §3.2 for `h2`).
pub const ALPN_PROTOCOLS: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A server certificate loaded from disk and checked, ready to serve.
pub struct ServerTls {
    /// The configuration for the acceptor.
    pub config: rustls::ServerConfig,
    /// SHA-256 fingerprint of the leaf certificate, written as
    /// `openssl x509 -noout -fingerprint -sha256` prints it, so an operator can tell
    /// from the log which certificate is being served after a reload.
    pub fingerprint: String,
}

/// Builds the server configuration from PEM files: the certificate chain (leaf
/// first) and its private key. The key file must be private (mode 0600 or stricter)
/// and must belong to the leaf certificate — a mismatch, as when a reload catches a
/// certificate replaced before its key, is refused rather than served.
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    min_version: MinVersion,
) -> Result<ServerTls, TlsError> {
    let chain = certificate_chain(cert_path)?;
    let fingerprint = chain.first().map(fingerprint).unwrap_or_default();
    let key = private_key(key_path)?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    // The server's order decides: the negotiated suite is the strongest both sides
    // have, whatever order a client lists them in (testssl rates a server without
    // its own order HIGH). The cost is that a client without AES hardware gets
    // AES-GCM rather than the faster ChaCha20 when it offers both.
    config.ignore_client_order = true;
    // No 0-RTT: early data is replayable, and proxied requests are not all idempotent.
    config.max_early_data_size = 0;
    Ok(ServerTls {
        config,
        fingerprint,
    })
}

/// The ring provider restricted to [`CIPHER_SUITES`] and the elliptic-curve groups
/// X25519, P-256 and P-384.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..rustls::crypto::ring::default_provider()
    }
}

/// Reads a PEM certificate chain (leaf first). An empty file is an error.
pub fn certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(describe_pem_error(&e)))?;
    if chain.is_empty() {
        return Err(error("no certificate found".to_owned()));
    }
    Ok(chain)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1) from a secret file: the mode
/// and owner are checked first, and errors describe the problem without quoting the
/// file — a malformed PEM line may be key material.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let error = |reason: String| TlsError::Key {
        path: path.display().to_string(),
        reason,
    };
    let pem = rampart_crypto::secret_file::read_bytes(path).map_err(|e| error(e.to_string()))?;
    PrivateKeyDer::from_pem_slice(pem.expose_secret()).map_err(|e| match e {
        pem::Error::NoItemsFound => error("no private key found".to_owned()),
        other => error(describe_pem_error(&other)),
    })
}

/// The SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// Describes a PEM parse error without the bytes some variants carry: the `Display`
/// of `IllegalSectionStart` prints the offending line, which in a key file can be
/// the key itself (a key pasted onto its `BEGIN` line).
fn describe_pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_owned(),
        pem::Error::Io(io) => io.to_string(),
        pem::Error::NoItemsFound => "no PEM section found".to_owned(),
        pem::Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        _ => "not a valid PEM file".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn write(&self, name: &str, content: &str, mode: u32) -> std::path::PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_a_matching_pair_with_pinned_versions_suites_and_alpn() {
        let files = Files::new();
        let (cert, key) = self_signed();
        let cert = files.write("cert.pem", &cert, 0o644);
        let key = files.write("key.pem", &key, 0o600);
        let tls = server_config(&cert, &key, MinVersion::Tls12).unwrap();
        assert_eq!(
            tls.config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(tls.config.max_early_data_size, 0);
        assert!(tls.config.ignore_client_order);
        assert_eq!(tls.fingerprint.len(), 32 * 3 - 1);
        let suites = &tls.config.crypto_provider().cipher_suites;
        assert_eq!(suites.len(), CIPHER_SUITES.len());
        for suite in suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"),
                "{name} is not AEAD"
            );
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name} is not forward secret"
            );
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let files = Files::new();
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let cert = files.write("cert.pem", &cert, 0o644);
        let key = files.write("key.pem", &other_key, 0o600);
        let error = server_config(&cert, &key, MinVersion::Tls12)
            .err()
            .expect("mismatch refused");
        assert!(matches!(error, TlsError::Rustls(_)), "{error}");
    }

    #[test]
    fn an_open_key_file_is_refused_with_the_fix() {
        let files = Files::new();
        let (cert, key) = self_signed();
        let cert = files.write("cert.pem", &cert, 0o644);
        let key = files.write("key.pem", &key, 0o644);
        let error = server_config(&cert, &key, MinVersion::Tls12)
            .err()
            .expect("open key refused");
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn empty_or_garbage_certificates_are_refused() {
        let files = Files::new();
        let (_, key) = self_signed();
        let key = files.write("key.pem", &key, 0o600);
        for content in ["", "not a certificate\n"] {
            let cert = files.write("cert.pem", content, 0o644);
            let error = server_config(&cert, &key, MinVersion::Tls12)
                .err()
                .expect("refused");
            assert!(matches!(error, TlsError::Certificate { .. }), "{error}");
        }
    }

    #[test]
    fn a_malformed_key_file_is_refused_without_quoting_it() {
        let files = Files::new();
        let secret = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
        for content in [
            format!("-----BEGIN PRIVATE KEY-----{secret}\n-----END PRIVATE KEY-----\n"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}!!\n-----END PRIVATE KEY-----\n"),
            format!("{secret}\n"),
        ] {
            let key = files.write("key.pem", &content, 0o600);
            let error = private_key(&key).expect_err("refused");
            let text = error.to_string();
            assert!(matches!(error, TlsError::Key { .. }), "{text}");
            assert!(!text.contains(secret), "the key file was quoted: {text}");
            assert!(!text.contains("MIGH"), "the key file was quoted: {text}");
        }
    }
}
