//! Bodies on their way through the gateway, streamed and never buffered whole.
//!
//! - [`LimitedBody`]: the client's request body, counted as it streams. `Content-Length`
//!   is checked before anything is sent, but chunked bodies have no length: the
//!   wrapper fails the stream at the first byte over the limit. A shared
//!   [`BodyWatch`] records how the body ended — finished, over the limit, or broken
//!   by the client (malformed chunking, a dropped connection) — so the gateway
//!   answers 413 or 400 instead of the 502 the aborted upstream request would
//!   otherwise produce, and 408 instead of 504 when the client, not the upstream,
//!   was slow.
//! - [`prefetch`]: waits for the first body frame before the upstream is contacted,
//!   so a body whose framing is broken from the start (or whose first chunk is
//!   already over the limit) never opens an upstream request at all.
//! - [`IdleTimeout`]: the upstream's response body, failed when no bytes arrive for
//!   the upstream's `read_timeout` — an upstream that sends a head and then stalls
//!   cannot hold a client connection forever.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body grew past its limit.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit in bytes.
    pub limit: u64,
}

/// The upstream sent no response bytes within its `read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the upstream sent no response bytes for {0:?}")]
pub struct ResponseStalled(pub Duration);

/// How a request body ended, shared between the body and the gateway.
#[derive(Debug, Clone)]
pub struct BodyWatch(Arc<WatchState>);

#[derive(Debug)]
struct WatchState {
    state: AtomicU8,
    /// The last poll found no data from the client yet (not set while the upstream
    /// simply is not reading).
    waiting: AtomicBool,
}

impl Default for BodyWatch {
    /// Not started: the body has not been wrapped yet.
    fn default() -> Self {
        Self(Arc::new(WatchState {
            state: AtomicU8::new(NOT_STARTED),
            waiting: AtomicBool::new(false),
        }))
    }
}

const NOT_STARTED: u8 = 0;
const RECEIVING: u8 = 1;
const FINISHED: u8 = 2;
const OVERFLOWED: u8 = 3;
const CLIENT_FAILED: u8 = 4;

impl BodyWatch {
    /// Whether the limit was exceeded.
    pub fn overflowed(&self) -> bool {
        self.state() == OVERFLOWED
    }

    /// Whether the client's body broke off (malformed framing, connection lost).
    pub fn client_failed(&self) -> bool {
        self.state() == CLIENT_FAILED
    }

    /// Whether the body is unfinished and was last waiting for bytes from the
    /// client — the client, not the upstream, is what a request is waiting on.
    pub fn waiting_for_client(&self) -> bool {
        self.state() == RECEIVING && self.0.waiting.load(Ordering::Acquire)
    }

    fn state(&self) -> u8 {
        self.0.state.load(Ordering::Acquire)
    }

    fn set(&self, state: u8) {
        self.0.state.store(state, Ordering::Release);
    }

    fn waiting(&self, waiting: bool) {
        self.0.waiting.store(waiting, Ordering::Release);
    }
}

pin_project_lite::pin_project! {
    /// A body that errors once more than `limit` bytes have passed.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        remaining: u64,
        limit: u64,
        watch: BodyWatch,
    }
}

impl<B: Body> LimitedBody<B> {
    /// Wraps `inner`; `watch` learns how it ends.
    pub fn new(inner: B, limit: u64, watch: BodyWatch) -> Self {
        watch.set(if inner.is_end_stream() {
            FINISHED
        } else {
            RECEIVING
        });
        Self {
            inner,
            remaining: limit,
            limit,
            watch,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if this.watch.overflowed() {
            return Poll::Ready(Some(Err(Box::new(BodyTooLarge { limit: *this.limit }))));
        }
        let polled = this.inner.poll_frame(cx);
        this.watch.waiting(polled.is_pending());
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    if len > *this.remaining {
                        this.watch.set(OVERFLOWED);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: *this.limit,
                        }))));
                    }
                    *this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.watch.set(CLIENT_FAILED);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.watch.set(FINISHED);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Awaits the first frame of `body` (if it has one) and returns a body that yields it
/// again, followed by the rest. An error here — broken framing, a first chunk over
/// the limit, a client that went away — is returned before anything was sent
/// upstream.
pub async fn prefetch<B>(mut body: B) -> Result<Prefetched<B>, BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Ok(Prefetched { first: None, body });
    }
    let first = match body.frame().await {
        None => None,
        Some(Ok(frame)) => Some(frame),
        Some(Err(error)) => return Err(error.into()),
    };
    Ok(Prefetched { first, body })
}

pin_project_lite::pin_project! {
    /// A body whose first frame was already read by [`prefetch`].
    pub struct Prefetched<B> {
        first: Option<Frame<Bytes>>,
        #[pin]
        body: B,
    }
}

impl<B> Body for Prefetched<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Some(frame) = this.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        this.body.poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| {
                u64::try_from(data.remaining()).unwrap_or(u64::MAX)
            });
        let rest = self.body.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(first));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(first));
        }
        hint
    }
}

pin_project_lite::pin_project! {
    /// A response body that fails when no frame arrives for `limit`.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        limit: Duration,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        armed: bool,
    }
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            sleep: None,
            armed: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + *this.limit;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !*this.armed {
                    sleep.as_mut().reset(deadline);
                    *this.armed = true;
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(Box::new(ResponseStalled(*this.limit)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    fn chunks(
        n: usize,
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>>> {
        StreamBody::new(futures_util::stream::iter(
            (0..n).map(|_| Ok(Frame::data(Bytes::from_static(b"0123456789")))),
        ))
    }

    #[tokio::test]
    async fn overflow_is_detected_while_streaming() {
        let watch = BodyWatch::default();
        let limited = LimitedBody::new(chunks(5), 25, watch.clone());
        assert_eq!(watch.state(), RECEIVING);
        assert!(limited.collect().await.is_err());
        assert!(watch.overflowed());
    }

    #[tokio::test]
    async fn body_within_limit_passes() {
        let watch = BodyWatch::default();
        let body = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let limited = LimitedBody::new(body, 5, watch.clone());
        let bytes = limited.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(watch.state(), FINISHED);
    }

    #[tokio::test]
    async fn a_broken_client_body_is_the_clients_fault() {
        let broken = StreamBody::new(futures_util::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Err(std::io::Error::other("invalid chunk size line")),
        ]));
        let watch = BodyWatch::default();
        assert!(
            LimitedBody::new(broken, 100, watch.clone())
                .collect()
                .await
                .is_err()
        );
        assert!(watch.client_failed());
    }

    #[tokio::test]
    async fn a_body_is_waiting_for_the_client_only_while_it_has_sent_nothing_new() {
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(
            Bytes::from_static(b"abc"),
        ))]);
        let body = StreamBody::new(first.chain(futures_util::stream::pending()));
        let watch = BodyWatch::default();
        let mut limited = LimitedBody::new(body, 100, watch.clone());
        assert!(limited.frame().await.unwrap().is_ok());
        // The upstream has not asked for more yet: not the client's delay.
        assert!(!watch.waiting_for_client());
        assert!(futures_util::poll!(limited.frame()).is_pending());
        assert!(watch.waiting_for_client());
    }

    #[tokio::test]
    async fn prefetch_replays_the_first_frame_and_keeps_the_length() {
        let body = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let prefetched = prefetch(body).await.unwrap();
        assert_eq!(prefetched.size_hint().exact(), Some(5));
        let bytes = prefetched.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        let failing = StreamBody::new(futures_util::stream::iter([Err::<Frame<Bytes>, _>(
            std::io::Error::other("bad chunk"),
        )]));
        assert!(prefetch(failing).await.is_err());
    }

    #[tokio::test]
    async fn a_stalled_response_body_fails_after_the_idle_limit() {
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(
            Bytes::from_static(b"x"),
        ))]);
        let stalled = StreamBody::new(first.chain(futures_util::stream::pending()));
        let mut body = IdleTimeout::new(stalled, Duration::from_millis(100));
        assert!(body.frame().await.unwrap().is_ok());
        let started = tokio::time::Instant::now();
        assert!(body.frame().await.unwrap().is_err());
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
