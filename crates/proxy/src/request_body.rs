//! The body of a request on its way to an instance (hyper path): the client's, streamed, or none.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};

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

/// A body-less copy of a request, for a replay (or a shadow).
pub(crate) fn copy_of(request: &Request<RequestBody>) -> Request<RequestBody> {
    let mut copy = Request::new(RequestBody::Empty);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = Version::HTTP_11;
    *copy.headers_mut() = request.headers().clone();
    copy
}
