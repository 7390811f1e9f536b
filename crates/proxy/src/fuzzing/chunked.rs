//! The fast path's chunked-body decoder (`h1::chunked`), as the relay feeds it.

use crate::h1::fuzzing_access as h1;

/// The body's framing is broken: the connection cannot be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedError;

/// Where one chunked message stands.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder(h1::ChunkedDecoder);

impl ChunkedDecoder {
    #[allow(clippy::new_without_default)]
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder(h1::ChunkedDecoder::new())
    }

    pub fn is_done(&self) -> bool {
        self.0.is_done()
    }

    /// How many bytes of `input` belong to the message; `data` gets the payload bytes, in order.
    pub fn feed(&mut self, input: &[u8], data: impl FnMut(&[u8])) -> Result<usize, ChunkedError> {
        self.0.feed(input, data).map_err(|_| ChunkedError)
    }
}
