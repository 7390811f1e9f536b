//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never on in a real build).
//!
//! The parsers and the route lookup are crate-private; these thin wrappers give a fuzzer the same calls
//! the proxy makes, with owned, plain answers it can check, and change none of the logic behind them.

mod route;

pub use route::{Routed, Router, RoutingRequest};
