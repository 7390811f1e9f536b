//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never on in a real build).
//!
//! The parsers and the route lookup are crate-private; these thin wrappers give a fuzzer the same calls
//! the proxy makes, with owned, plain answers it can check, and change none of the logic behind them.

mod chunked;
mod request_head;
mod response_head;
mod route;

pub use chunked::{ChunkedDecoder, ChunkedError};
pub use request_head::{ParsedRequest, RequestBody, RequestHead, Then, parse_request_head};
pub use response_head::{
    ClientHead, ParsedResponse, ResponseBody, ResponseHead, parse_response_head,
};
pub use route::{Routed, Router, RoutingRequest};
