//! The body of a request on its way to an instance (hyper path): the client's, streamed, or none.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// A request body on its way to an instance.
#[derive(Debug)]
pub(crate) enum RequestBody {
    /// The client's, with how many more payload bytes the app accepts (`u64::MAX`: no limit).
    Incoming(Incoming, u64),
    /// A body-less request rebuilt for a retry.
    Empty,
}

/// The client's body went over the app's limit: the send fails with this, and the client gets a 413.
#[derive(Debug)]
pub(crate) struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body is larger than the app accepts")
    }
}

impl std::error::Error for TooLarge {}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            RequestBody::Incoming(body, left) => {
                let frame = ready!(Pin::new(body).poll_frame(cx));
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
                    && let Some(data) = data
                {
                    let len = data.len() as u64;
                    if len > *left {
                        return Poll::Ready(Some(Err(Box::new(TooLarge))));
                    }
                    *left -= len;
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            RequestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Incoming(body, _) => body.is_end_stream(),
            RequestBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Incoming(body, _) => body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A body-less copy of a request, for a replay (or a shadow).
pub(crate) fn copy_of(request: &Request<RequestBody>) -> Request<RequestBody> {
    let mut copy = Request::new(RequestBody::Empty);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = Version::HTTP_11;
    *copy.headers_mut() = request.headers().clone();
    copy
}
