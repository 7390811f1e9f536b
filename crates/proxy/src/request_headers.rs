//! Reading a request's headers for routing, whichever side parsed them: hyper's `HeaderMap`, or the fast
//! path's offsets into its buffer (which would cost a map build per request to turn into a `HeaderMap`).

use http::HeaderMap;
/// The headers of one request, by lowercase name.
pub(crate) trait RequestHeaders {
    /// Every value of `name`, in order.
    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's;

    /// The first value of `name`.
    fn first<'s>(&'s self, name: &'s str) -> Option<&'s [u8]> {
        self.values(name).next()
    }
}

impl RequestHeaders for HeaderMap {
    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.get_all(name).into_iter().map(|value| value.as_bytes())
    }
}
