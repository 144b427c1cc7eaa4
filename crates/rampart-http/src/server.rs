//! The listener: accepts connections, enforces connection-level limits, terminates
//! TLS when configured, and drains in-flight requests on shutdown.
//!
//! Connection handling is written against hyper directly (not `axum::serve`) because
//! the limits that stop slowloris and header floods — header read timeout, header
//! count and size, connection cap — live at this level.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// Connection-level limits (F-LIMITS).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Time allowed to receive a request head. Also bounds how long an HTTP/1.1
    /// connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// HTTP/2 keep-alive ping timeout.
    pub keep_alive_timeout: Duration,
    /// Maximum number of request headers (HTTP/1.1).
    pub max_headers: usize,
    /// Maximum total size of the request head in bytes.
    pub max_header_bytes: usize,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
}

/// The peer address of the connection a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// How a request reached Rampart; HSTS and `Secure` cookies depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS terminated by Rampart.
    Tls,
}

/// A TLS server configuration that can be swapped at run time (certificate reload on
/// SIGHUP). New connections use the new configuration; existing ones are untouched.
#[derive(Clone)]
pub struct TlsHandle(Arc<ArcSwap<rustls::ServerConfig>>);

impl TlsHandle {
    /// Wraps an initial configuration.
    pub fn new(config: rustls::ServerConfig) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(config)))
    }

    /// Replaces the configuration for future handshakes.
    pub fn replace(&self, config: rustls::ServerConfig) {
        self.0.store(Arc::new(config));
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.0.load_full())
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains for at most
/// `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsHandle>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let draining = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let limits = Arc::clone(&limits);
        let watcher = draining.clone();
        tracker.spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let service = service_for(app, peer, Transport::Plain);
                    serve_http1(TokioIo::new(stream), service, &limits, watcher).await;
                }
                Some(tls) => {
                    let handshake = tokio::time::timeout(
                        limits.header_read_timeout,
                        tls.acceptor().accept(stream),
                    )
                    .await;
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let is_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let service = service_for(app, peer, Transport::Tls);
                    if is_h2 {
                        serve_http2(TokioIo::new(stream), service, &limits, watcher).await;
                    } else {
                        serve_http1(TokioIo::new(stream), service, &limits, watcher).await;
                    }
                }
            }
        });
    }

    drop(listener);
    tracing::info!(grace = ?limits.shutdown_grace, "shutting down: draining in-flight requests");
    draining.cancel();
    tracker.close();
    match tokio::time::timeout(limits.shutdown_grace, tracker.wait()).await {
        Ok(()) => tracing::info!("all connections drained"),
        Err(_) => tracing::warn!("shutdown grace elapsed with connections still open"),
    }
    Ok(())
}

/// The per-connection service: tags each request with the connection's peer address
/// and transport, then hands it to the router.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
    transport: Transport,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = tower::util::Oneshot<Router, http::Request<axum::body::Body>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(PeerAddr(self.peer));
        request.extensions_mut().insert(self.transport);
        self.app.clone().oneshot(request.map(axum::body::Body::new))
    }
}

type HyperService = ConnectionService;

fn service_for(app: Router, peer: SocketAddr, transport: Transport) -> HyperService {
    ConnectionService {
        app,
        peer,
        transport,
    }
}

async fn serve_http1<I>(
    io: TokioIo<I>,
    service: HyperService,
    limits: &Limits,
    draining: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true)
        .half_close(false);
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = draining.cancelled() => {
            // Finish the request in flight, then close instead of keeping alive.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

async fn serve_http2<I>(
    io: TokioIo<I>,
    service: HyperService,
    limits: &Limits,
    draining: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(limits.keep_alive_timeout / 2))
        .keep_alive_timeout(limits.keep_alive_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = draining.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
