//! Body types: what the proxy sends to instances and what it returns to clients.
//!
//! Both are small enums rather than boxed trait objects, so forwarding allocates nothing for bodies. The
//! response body carries the backend's [`Lease`], released when the body ends or is dropped: `in_flight`
//! therefore counts requests that are still streaming their response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::backend::Lease;

/// A request body on its way to an instance.
#[derive(Debug)]
pub(crate) enum RequestBody {
    Incoming(Incoming),
    /// A body-less request rebuilt for a retry.
    Empty,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Incoming(body) => Pin::new(body).poll_frame(cx),
            RequestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Incoming(body) => body.is_end_stream(),
            RequestBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Incoming(body) => body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A response body on its way to the client: an instance's streamed body, or one of our own pages.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Upstream { body: Incoming, lease: Lease },
    Full(Option<Bytes>),
}

impl ResponseBody {
    pub(crate) fn upstream(body: Incoming, lease: Lease) -> ResponseBody {
        ResponseBody {
            inner: Inner::Upstream { body, lease },
        }
    }

    pub(crate) fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody {
            inner: Inner::Full(Some(bytes)),
        }
    }

    pub(crate) fn empty() -> ResponseBody {
        ResponseBody {
            inner: Inner::Full(None),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Upstream { body, lease } => {
                let polled = Pin::new(body).poll_frame(cx);
                if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    lease.release();
                }
                polled
            }
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream { body, .. } => body.is_end_stream(),
            Inner::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream { body, .. } => body.size_hint(),
            Inner::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
        }
    }
}
