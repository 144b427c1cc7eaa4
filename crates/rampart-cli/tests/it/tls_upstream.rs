//! Upstream TLS (`mode = "tls"`, F-UPSTREAM) on the real binary: Rampart verifies
//! the upstream's certificate against `ca_cert` and presents `client_cert` to an
//! upstream that requires one (mTLS). Every refusal — no client certificate, a
//! server certificate from another CA or for another name — is a 502 envelope and
//! no request reaches the upstream. `danger_accept_invalid_certs` works only where
//! the docs say (dev mode, with a warning) and production refuses to start with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rampart_testkit::client::client;
use rampart_testkit::process::{Rampart, WAIT, run};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::Notify;

use crate::common::{bin, env, production_config, write};
use crate::tls_direct::{Ca, Leaf, Purpose};

/// What the test upstream saw.
#[derive(Default)]
struct Seen {
    /// The client certificate of every completed handshake.
    client_certs: Vec<CertificateDer<'static>>,
    /// Every refused handshake, with rustls' reason.
    refused: Vec<String>,
    /// Paths of the HTTP requests that arrived.
    requests: Vec<String>,
}

/// An HTTPS upstream (hyper + tokio-rustls) that requires a client certificate
/// issued by `client_ca`.
struct TlsUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsUpstream {
    async fn start(server: &Leaf, client_ca: &Ca) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(client_ca.der()).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server.der.clone()],
                PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let task = tokio::spawn({
            let seen = Arc::clone(&seen);
            let changed = Arc::clone(&changed);
            async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let seen = Arc::clone(&seen);
                    let changed = Arc::clone(&changed);
                    tokio::spawn(async move {
                        let tls = match acceptor.accept(tcp).await {
                            Ok(tls) => tls,
                            Err(error) => {
                                seen.lock().unwrap().refused.push(error.to_string());
                                changed.notify_waiters();
                                return;
                            }
                        };
                        if let Some(certs) = tls.get_ref().1.peer_certificates() {
                            seen.lock().unwrap().client_certs.push(certs[0].clone());
                        }
                        let service = service_fn(move |request: http::Request<_>| {
                            let seen = Arc::clone(&seen);
                            let changed = Arc::clone(&changed);
                            async move {
                                seen.lock()
                                    .unwrap()
                                    .requests
                                    .push(request.uri().path().to_owned());
                                changed.notify_waiters();
                                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                    Bytes::from_static(b"mtls ok"),
                                )))
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            }
        });
        Self {
            addr,
            seen,
            changed,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// Waits until `count` handshakes were refused; returns their reasons.
    async fn refused(&self, count: usize) -> Vec<String> {
        tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.changed.notified();
                {
                    let seen = self.seen.lock().unwrap();
                    if seen.refused.len() >= count {
                        return seen.refused.clone();
                    }
                }
                notified.await;
            }
        })
        .await
        .expect("the upstream never refused a handshake")
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// PEM files in a test directory.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn ca(&self, ca: &Ca, name: &str) -> PathBuf {
        let path = self.path().join(format!("{name}.pem"));
        write(&path, &ca.pem(), 0o644);
        path
    }
}

/// `[upstreams.<name>]` in tls mode (with `ca_cert`, the client identity and any
/// `more` keys) plus a public route `/<name>` to it.
fn upstream_toml(
    name: &str,
    url: &str,
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
    more: &str,
) -> String {
    let mut toml = format!("[upstreams.{name}]\nurl = \"{url}\"\nmode = \"tls\"\n");
    if let Some(ca) = ca {
        toml.push_str(&format!("ca_cert = \"{}\"\n", ca.display()));
    }
    if let Some((cert, key)) = client {
        toml.push_str(&format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            cert.display(),
            key.display()
        ));
    }
    toml.push_str(more);
    toml.push_str(&format!(
        "\n[[routes]]\nname = \"{name}\"\npath_prefix = \"/{name}\"\nupstream = \"{name}\"\nauth = \"public\"\n\n"
    ));
    toml
}

async fn serve(files: &Files, extra: &str, env_pairs: &[(&str, &str)]) -> (Rampart, SocketAddr) {
    let config = production_config(files.path(), extra);
    let rampart = Rampart::spawn(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(env_pairs),
    );
    let addr = rampart.listening().await;
    (rampart, addr)
}

async fn stop(mut rampart: Rampart) {
    rampart.terminate();
    assert_eq!(rampart.wait().await.code(), Some(0));
}

/// Asserts a 502 `upstream_error` envelope and returns the request id.
async fn assert_502(addr: SocketAddr, path: &str) -> String {
    let response = client()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502, "{path}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_error", "{body}");
    body["error"]["request_id"]
        .as_str()
        .expect("request id in the envelope")
        .to_owned()
}

/// The error of the `request failed` log line of a request id.
async fn failure_log(rampart: &Rampart, request_id: &str) -> String {
    let line = rampart
        .wait_for_log(|v| v["message"] == "request failed" && v["request_id"] == request_id)
        .await;
    line["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn mtls_upstream_is_reached_with_the_client_certificate() {
    let files = Files::new();
    let server_ca = Ca::new("Upstream server CA");
    let client_ca = Ca::new("Upstream client CA");
    let upstream = TlsUpstream::start(
        &server_ca.issue(&["127.0.0.1"], 10, Purpose::Server),
        &client_ca,
    )
    .await;
    let client_leaf = client_ca.issue(&["rampart.internal"], 11, Purpose::Client);
    let (cert, key) = client_leaf.write(files.path(), "client");
    let ca = files.ca(&server_ca, "server-ca");
    let (rampart, addr) = serve(
        &files,
        &upstream_toml(
            "secure",
            &upstream.url(),
            Some(&ca),
            Some((&cert, &key)),
            "",
        ),
        &[],
    )
    .await;

    for _ in 0..3 {
        let response = client()
            .get(format!("http://{addr}/secure/hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "mtls ok");
    }
    {
        let seen = upstream.seen.lock().unwrap();
        assert_eq!(seen.requests, vec!["/secure/hello"; 3]);
        assert!(seen.refused.is_empty(), "{:?}", seen.refused);
        // The configured client certificate was presented, and the pooled
        // connection reused: one handshake for three requests.
        assert_eq!(seen.client_certs, vec![client_leaf.der.clone()]);
    }
    stop(rampart).await;
}

#[tokio::test]
async fn without_a_client_certificate_the_mtls_upstream_refuses_with_a_502() {
    let files = Files::new();
    let server_ca = Ca::new("Upstream server CA");
    let client_ca = Ca::new("Upstream client CA");
    let upstream = TlsUpstream::start(
        &server_ca.issue(&["127.0.0.1"], 20, Purpose::Server),
        &client_ca,
    )
    .await;
    // A client certificate from a CA the upstream does not trust is no better.
    let stranger = Ca::new("Someone else's CA").issue(&["rampart.internal"], 21, Purpose::Client);
    let (cert, key) = stranger.write(files.path(), "stranger");
    let ca = files.ca(&server_ca, "server-ca");
    let extra = format!(
        "{}{}",
        upstream_toml("anonymous", &upstream.url(), Some(&ca), None, ""),
        upstream_toml(
            "stranger",
            &upstream.url(),
            Some(&ca),
            Some((&cert, &key)),
            ""
        ),
    );
    let (rampart, addr) = serve(&files, &extra, &[]).await;

    let id = assert_502(addr, "/anonymous/hello").await;
    let refused = upstream.refused(1).await;
    assert!(
        refused[0].contains("peer sent no certificates"),
        "{refused:?}"
    );
    let logged = failure_log(&rampart, &id).await;
    // The log says why (TLS 1.3: the upstream's alert arrives after the handshake).
    assert!(logged.contains("upstream anonymous failed"), "{logged}");
    assert!(logged.contains("CertificateRequired"), "{logged}");

    assert_502(addr, "/stranger/hello").await;
    let refused = upstream.refused(2).await;
    assert!(refused[1].contains("UnknownIssuer"), "{refused:?}");

    assert!(upstream.seen.lock().unwrap().requests.is_empty());
    stop(rampart).await;
}

#[tokio::test]
async fn an_upstream_certificate_from_another_ca_or_for_another_name_is_refused_with_a_502() {
    let files = Files::new();
    let trusted = Ca::new("Trusted upstream CA");
    let client_ca = Ca::new("Upstream client CA");
    let (cert, key) = client_ca
        .issue(&["rampart.internal"], 31, Purpose::Client)
        .write(files.path(), "client");
    // Signed by a CA Rampart was not told to trust: an impostor on the path.
    let impostor = TlsUpstream::start(
        &Ca::new("Impostor CA").issue(&["127.0.0.1"], 32, Purpose::Server),
        &client_ca,
    )
    .await;
    // Signed by the right CA, but for another host.
    let misnamed = TlsUpstream::start(
        &trusted.issue(&["other.internal"], 33, Purpose::Server),
        &client_ca,
    )
    .await;
    let ca = files.ca(&trusted, "trusted-ca");
    let extra = format!(
        "{}{}",
        upstream_toml(
            "impostor",
            &impostor.url(),
            Some(&ca),
            Some((&cert, &key)),
            ""
        ),
        upstream_toml(
            "misnamed",
            &misnamed.url(),
            Some(&ca),
            Some((&cert, &key)),
            ""
        ),
    );
    let (rampart, addr) = serve(&files, &extra, &[]).await;

    let id = assert_502(addr, "/impostor/hello").await;
    let logged = failure_log(&rampart, &id).await;
    assert!(logged.contains("UnknownIssuer"), "{logged}");
    let id = assert_502(addr, "/misnamed/hello").await;
    let logged = failure_log(&rampart, &id).await;
    assert!(
        logged.contains("certificate not valid for name"),
        "{logged}"
    );

    // Rampart broke off the handshakes: no client certificate was handed to either
    // impostor, and no request (with its headers and cookies) reached them.
    for upstream in [&impostor, &misnamed] {
        let seen = upstream.seen.lock().unwrap();
        assert!(seen.requests.is_empty());
        assert!(seen.client_certs.is_empty());
    }
    stop(rampart).await;
}

#[tokio::test]
async fn danger_accept_invalid_certs_is_refused_in_production_and_skips_verification_in_dev() {
    let files = Files::new();
    let trusted = Ca::new("Trusted upstream CA");
    let client_ca = Ca::new("Upstream client CA");
    let (cert, key) = client_ca
        .issue(&["rampart.internal"], 41, Purpose::Client)
        .write(files.path(), "client");
    let impostor = TlsUpstream::start(
        &Ca::new("Impostor CA").issue(&["127.0.0.1"], 42, Purpose::Server),
        &client_ca,
    )
    .await;
    let ca = files.ca(&trusted, "trusted-ca");
    let extra = upstream_toml(
        "lab",
        &impostor.url(),
        Some(&ca),
        Some((&cert, &key)),
        "danger_accept_invalid_certs = true\n",
    );
    let config = production_config(files.path(), &extra);

    // Production: refused at start, with the check id and its fix.
    let (code, _, stderr) = run(
        &bin(),
        &["serve", "--migrate", "--config", config.to_str().unwrap()],
        &env(&[]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("[danger.accept_invalid_certs]"), "{stderr}");
    // Doctor names it too.
    let (_, stdout, stderr) = run(
        &bin(),
        &["doctor", "--config", config.to_str().unwrap()],
        &env(&[]),
    )
    .await;
    assert!(
        format!("{stdout}{stderr}").contains("danger.accept_invalid_certs"),
        "{stdout}{stderr}"
    );

    // Dev mode: starts with a warning, and the certificate is not verified — the
    // impostor is reached. This is what the option does; it is why production refuses.
    let (rampart, addr) = serve(&files, &extra, &[("RAMPART_MODE", "dev")]).await;
    let warning = rampart
        .wait_for_log(|v| v["check"] == "danger.accept_invalid_certs")
        .await;
    assert_eq!(warning["level"], "WARN");
    let response = client()
        .get(format!("http://{addr}/lab/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "mtls ok");
    // The client certificate is still presented.
    assert_eq!(impostor.seen.lock().unwrap().client_certs.len(), 1);
    stop(rampart).await;
}

#[tokio::test]
async fn serve_refuses_tls_mode_without_https_or_ca_and_unusable_client_keys() {
    let files = Files::new();
    let ca = files.ca(&Ca::new("Upstream CA"), "ca");
    let client_ca = Ca::new("Upstream client CA");
    let (cert, key) = client_ca
        .issue(&["rampart.internal"], 51, Purpose::Client)
        .write(files.path(), "client");
    let open_key = files.path().join("open.key");
    write(&open_key, &std::fs::read_to_string(&key).unwrap(), 0o644);
    let (other_cert, _) = client_ca
        .issue(&["rampart.internal"], 52, Purpose::Client)
        .write(files.path(), "other");
    let cases = [
        (
            upstream_toml("api", "http://127.0.0.1:9", Some(&ca), None, ""),
            vec!["upstreams.api.url", "mode = \"tls\" needs an https:// URL"],
        ),
        (
            upstream_toml("api", "https://127.0.0.1:9", None, None, ""),
            vec![
                "upstreams.api.ca_cert",
                "mode = \"tls\" needs the CA that signed the upstream's certificate",
            ],
        ),
        (
            upstream_toml(
                "api",
                "https://127.0.0.1:9",
                Some(&ca),
                Some((&cert, &open_key)),
                "",
            ),
            vec!["upstreams.api.client_key", "chmod 600"],
        ),
        (
            // A key that does not belong to the client certificate.
            upstream_toml(
                "api",
                "https://127.0.0.1:9",
                Some(&ca),
                Some((&other_cert, &key)),
                "",
            ),
            vec!["upstream api: cannot use client certificate"],
        ),
    ];
    for (extra, expected) in cases {
        let config = production_config(files.path(), &extra);
        let (code, _, stderr) = run(
            &bin(),
            &["serve", "--migrate", "--config", config.to_str().unwrap()],
            &env(&[]),
        )
        .await;
        assert_eq!(code, 2, "{extra}\n{stderr}");
        for needle in expected {
            assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
        }
        // The key file is never echoed.
        let key_text = std::fs::read_to_string(&key).unwrap();
        let key_body = key_text.lines().nth(1).unwrap();
        assert!(!stderr.contains(key_body), "{stderr}");
    }
}
