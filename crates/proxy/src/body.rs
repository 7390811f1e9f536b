//! The body the proxy returns to clients (the one it sends to instances is in `request_body`).
//!
//! A small enum rather than a boxed trait object, so forwarding allocates nothing for bodies. The
//! response body carries the backend's [`Lease`], released when the body ends or is dropped: `in_flight`
//! therefore counts requests that are still streaming their response. It also carries the connection the
//! response came on, handed back to the backend's idle pool as soon as the body has ended (never when it
//! was cut short: hyper closes such a connection). For a mirrored request it also carries the primary's
//! [`PrimaryTap`], which digests the chunks going by for the shadow comparison.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::backend::Lease;
use crate::pool::Sender;
use crate::shadow::PrimaryTap;

/// A response body on its way to the client: an instance's streamed body, or one of our own pages.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Upstream {
        body: Incoming,
        lease: Lease,
        /// The connection, until it goes back to the pool.
        connection: Option<Sender>,
        /// Only on mirrored requests (boxed: the common case pays one pointer).
        tap: Option<Box<PrimaryTap>>,
    },
    Full(Option<Bytes>),
}

impl ResponseBody {
    pub(crate) fn upstream(
        body: Incoming,
        lease: Lease,
        connection: Sender,
        tap: Option<Box<PrimaryTap>>,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            inner: Inner::Upstream {
                body,
                lease,
                connection: Some(connection),
                tap,
            },
        };
        // A body-less response (HEAD, 204, 304, `content-length: 0`) may never be polled.
        body.finish_if_ended();
        body
    }

    /// Once the instance's body has ended: release the lease and return the connection to the pool.
    fn finish_if_ended(&mut self) {
        if let Inner::Upstream {
            body,
            lease,
            connection,
            tap,
        } = &mut self.inner
            && body.is_end_stream()
        {
            finish(lease, connection, tap);
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

fn finish(lease: &mut Lease, connection: &mut Option<Sender>, tap: &mut Option<Box<PrimaryTap>>) {
    if let Some(tap) = tap {
        tap.end(true);
    }
    lease.release();
    if let Some(sender) = connection.take() {
        lease
            .backend()
            .pool
            .checkin(sender, std::time::Instant::now());
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // hyper stops polling a body that says it has ended, so its last frame may not have been followed
        // by a `None`.
        self.finish_if_ended();
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
            Inner::Upstream {
                body,
                lease,
                connection,
                tap,
            } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => finish(lease, connection, tap),
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(tap) = tap
                            && let Some(data) = frame.data_ref()
                        {
                            tap.observe(data);
                        }
                        if body.is_end_stream() {
                            finish(lease, connection, tap);
                        }
                    }
                    Poll::Ready(Some(Err(_))) => {
                        if let Some(tap) = tap {
                            tap.end(false);
                        }
                        lease.release();
                        *connection = None;
                    }
                    _ => {}
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
