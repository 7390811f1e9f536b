//! What every connection of one proxy shares, and what one client connection carries.

use std::sync::Arc;

use http::HeaderValue;
use hyper::client::conn::http1;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;

use crate::acme_challenges::AcmeChallenges;
use crate::admission::Admission;
use crate::options::ProxyOptions;
use crate::route_handle::RouteHandle;

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub(crate) routes: RouteHandle,
    /// How hyper serves the connections the fast path hands over (HTTP/1.1 and h2c).
    pub(crate) server: auto::Builder<TokioExecutor>,
    /// How connections to instances are set up (HTTP/1.1).
    pub(crate) client: http1::Builder,
    pub(crate) options: ProxyOptions,
    /// HTTP-01 answers for the ACME client's pending orders.
    pub(crate) challenges: AcmeChallenges,
    /// The connections held, counted across every listener (plain and TLS) against one limit.
    pub(crate) admission: Arc<Admission>,
}

/// State of one client connection.
pub(crate) struct ConnState {
    pub(crate) shared: Arc<Shared>,
    /// The client's IP, formatted once per connection for `X-Forwarded-For`.
    pub(crate) client_ip: HeaderValue,
    /// The client came over TLS: `X-Forwarded-Proto: https`, HSTS, no redirect to HTTPS.
    pub(crate) tls: bool,
}
