//! The HTTP/1.1 fast path: keep-alive requests served without hyper, on plain and TLS connections alike
//! (the client side is any `ClientStream`; instances are always plain sockets).
//!
//! hyper's generality (a task and a channel per connection on each side, header maps, boxed timers) cost
//! about 60 % more CPU per request than nginx. For the common request — HTTP/1.1, origin-form target, no
//! upgrade, no `Expect` — this module does the same work directly: the head is parsed in place into the
//! connection's buffer, routed by the same table, rewritten into one buffer and written with the body in
//! one `send` to a pooled plain socket; the response head is parsed and rewritten the same way, and the
//! body relayed by its framing. Metrics, leases (drain), retries, error pages, mirroring and sticky
//! cookies, HSTS and `X-Forwarded-Proto` behave as on the hyper path (`forward`), which still serves everything else: a connection
//! whose request the fast path is unsure about is handed to hyper whole, before any answer to it.

mod chunked;
mod connection;
mod deadline;
mod error_reply;
mod exchange;
mod forward_head;
mod framing;
mod gate;
mod hyper_path;
mod relay;
mod request_head;
mod response_head;
mod shadow_copy;
mod socket_io;

pub(crate) use connection::{StopSignal, serve_connection};
pub(crate) use error_reply::{linger_and_close, page_bytes, refuse_connection};
pub(crate) use hyper_path::serve_hyper;

// The fuzz targets reach the parsers through `crate::fuzzing` (feature `fuzzing` only).
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing_access {
    pub(crate) use super::chunked::ChunkedDecoder;
    pub(crate) use super::forward_head::{Forwarding, write as write_forwarded_head};
    pub(crate) use super::framing::RequestBody;
    pub(crate) use super::request_head::{Parsed, Span, Then, parse as parse_request_head};
    pub(crate) use super::response_head::{
        ClientHead, ParsedResponse, ResponseBody, parse as parse_response_head,
    };
}
