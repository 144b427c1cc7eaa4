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
                    let service = service_for(app, peer, Transport::Plain, &limits);
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
                    let service = service_for(app, peer, Transport::Tls, &limits);
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

/// A request the listener refused after reading its head. The edge service
/// ([`crate::edge::Edge`]) answers it — with the request id, the security
/// headers and `Connection: close` — and no handler or upstream ever sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadRefusal {
    /// More header lines than `server.max_headers`, or a head (request line and
    /// header lines) over `server.max_header_bytes`: 431.
    TooLarge,
    /// A `Transfer-Encoding` other than one `chunked`: 400. The HTTP parser already
    /// refuses a final coding other than `chunked` and conflicting `Content-Length`s,
    /// and lets `chunked` override `Content-Length` (removing it, closing the
    /// connection after the response, RFC 9112 §6.3); what is left is a list such as
    /// `gzip, chunked`, whose inner coding an upstream would never learn of once the
    /// hop-by-hop header is gone.
    Framing,
}

impl HeadRefusal {
    /// The response status.
    pub fn status(self) -> http::StatusCode {
        match self {
            Self::TooLarge => http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Framing => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks a parsed request head against the configured limits and the framing
/// Rampart forwards.
///
/// The HTTP/1.1 parser's own limits are set to twice the configured ones (a hard
/// ceiling that bounds memory): it answers heads beyond that itself, with a bare 431
/// and no envelope. Between the configured limit and the ceiling this check refuses
/// with the envelope. The head size is the request line and header lines as
/// `name: value\r\n`, which is at most what the client sent.
pub fn check_head<B>(request: &http::Request<B>, limits: &Limits) -> Option<HeadRefusal> {
    let headers = request.headers();
    if headers.len() > limits.max_headers {
        return Some(HeadRefusal::TooLarge);
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let header_lines: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    if request_line + header_lines + 2 > limits.max_header_bytes {
        return Some(HeadRefusal::TooLarge);
    }
    let mut codings = headers.get_all(http::header::TRANSFER_ENCODING).iter();
    if let Some(first) = codings.next() {
        let single_chunked = first
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if !single_chunked || codings.next().is_some() {
            return Some(HeadRefusal::Framing);
        }
    }
    None
}

/// The per-connection service: tags each request with the connection's peer address
/// and transport (and a [`HeadRefusal`] if its head is refused), then hands it to the
/// router.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
    transport: Transport,
    limits: Arc<Limits>,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = tower::util::Oneshot<Router, http::Request<axum::body::Body>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        if let Some(refusal) = check_head(&request, &self.limits) {
            request.extensions_mut().insert(refusal);
        }
        request.extensions_mut().insert(PeerAddr(self.peer));
        request.extensions_mut().insert(self.transport);
        self.app.clone().oneshot(request.map(axum::body::Body::new))
    }
}

type HyperService = ConnectionService;

fn service_for(
    app: Router,
    peer: SocketAddr,
    transport: Transport,
    limits: &Arc<Limits>,
) -> HyperService {
    ConnectionService {
        app,
        peer,
        transport,
        limits: Arc::clone(limits),
    }
}

/// The HTTP parser's hard ceiling for a configured head limit (see [`check_head`]).
fn parser_ceiling(configured: usize) -> usize {
    configured.saturating_mul(2)
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
        .max_headers(parser_ceiling(limits.max_headers))
        .max_header_size(parser_ceiling(limits.max_header_bytes))
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
        .max_header_list_size(
            u32::try_from(parser_ceiling(limits.max_header_bytes)).unwrap_or(u32::MAX),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_headers: usize, max_header_bytes: usize) -> Limits {
        Limits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(1),
            max_headers,
            max_header_bytes,
            shutdown_grace: Duration::from_secs(1),
        }
    }

    fn request(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::get("/a?b=c");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn heads_over_the_configured_limits_are_refused() {
        let ok = request(&[("host", "x"), ("accept", "*/*")]);
        assert_eq!(check_head(&ok, &limits(2, 1024)), None);
        let many = request(&[("host", "x"), ("accept", "*/*"), ("x-a", "1")]);
        assert_eq!(
            check_head(&many, &limits(2, 1024)),
            Some(HeadRefusal::TooLarge)
        );
        // "GET /a?b=c HTTP/1.1\r\n" (21) + "host: x\r\n" (9) + "\r\n" (2) = 32.
        let small = request(&[("host", "x")]);
        assert_eq!(check_head(&small, &limits(10, 32)), None);
        assert_eq!(
            check_head(&small, &limits(10, 31)),
            Some(HeadRefusal::TooLarge)
        );
    }

    #[test]
    fn only_a_single_chunked_transfer_coding_passes() {
        let lim = limits(100, 8192);
        for ok in ["chunked", "Chunked", " chunked "] {
            assert_eq!(
                check_head(&request(&[("transfer-encoding", ok)]), &lim),
                None
            );
        }
        for bad in ["gzip, chunked", "chunked, chunked", "identity", "gzip"] {
            assert_eq!(
                check_head(&request(&[("transfer-encoding", bad)]), &lim),
                Some(HeadRefusal::Framing),
                "{bad}"
            );
        }
        let twice = request(&[
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ]);
        assert_eq!(check_head(&twice, &lim), Some(HeadRefusal::Framing));
    }
}
