//! A request body that enforces a size limit while it streams.
//!
//! `Content-Length` is checked before anything is sent, but chunked bodies have no
//! length: this wrapper counts bytes as they pass and fails the stream at the first
//! byte over the limit, recording that it did so the gateway can answer 413 instead
//! of the 502 the aborted upstream request would otherwise produce.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body grew past its limit.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit in bytes.
    pub limit: u64,
}

/// Shared flag set when a [`LimitedBody`] overflowed.
#[derive(Debug, Clone, Default)]
pub struct Overflow(Arc<AtomicBool>);

impl Overflow {
    /// Whether the limit was exceeded.
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pin_project_lite::pin_project! {
    /// A body that errors once more than `limit` bytes have passed.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        remaining: u64,
        limit: u64,
        overflow: Overflow,
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`; returns the body and the flag that reports an overflow.
    pub fn new(inner: B, limit: u64) -> (Self, Overflow) {
        let overflow = Overflow::default();
        (
            Self {
                inner,
                remaining: limit,
                limit,
                overflow: overflow.clone(),
            },
            overflow,
        )
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    if len > *this.remaining {
                        this.overflow.0.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: *this.limit,
                        }))));
                    }
                    *this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
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

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn overflow_is_detected_while_streaming() {
        let chunks = futures_util::stream::iter(
            (0..5).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"0123456789")))),
        );
        let body = http_body_util::StreamBody::new(chunks);
        let (limited, overflow) = LimitedBody::new(body, 25);
        let result = limited.collect().await;
        assert!(result.is_err());
        assert!(overflow.happened());
    }

    #[tokio::test]
    async fn body_within_limit_passes() {
        let body = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let (limited, overflow) = LimitedBody::new(body, 5);
        let bytes = limited.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert!(!overflow.happened());
    }
}
