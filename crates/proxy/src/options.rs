//! The proxy's timeouts and limits, and which HTTP/1.1 path serves clients.

use std::time::Duration;

/// How patient the proxy is with instances and clients, and how many client connections it holds.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Time allowed to open a TCP connection to an instance (then 502, or a retry for body-less requests).
    pub connect_timeout: Duration,
    /// Time allowed from sending a request until the instance's response headers arrive (then 504).
    /// Response bodies may stream for longer.
    pub response_timeout: Duration,
    /// How long an idle keep-alive connection to an instance stays in the pool.
    pub idle_pool_timeout: Duration,
    /// Time a client has to send a whole request head, counted from when its connection became idle (new,
    /// or its last response sent). A head begun and not finished then gets a 408 (slowloris); an idle
    /// keep-alive connection just closes.
    pub head_timeout: Duration,
    /// How long a stream may carry no bytes before the proxy closes it: a WebSocket (either way), or a
    /// response body (an event stream) the instance sends nothing of.
    pub stream_idle_timeout: Duration,
    /// Client connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Client connections open at once from one IP address; one more is answered 503 and closed.
    pub max_connections_per_client: usize,
    /// Serve plain HTTP/1.1 requests on the fast path (`h1`). Off, hyper serves every request (slower);
    /// the same checks of each request head apply either way. For comparisons, and as a way out should the
    /// fast path misbehave.
    pub fast_path: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            idle_pool_timeout: Duration::from_secs(90),
            head_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(600),
            max_connections: 10_000,
            max_connections_per_client: 1_000,
            fast_path: true,
        }
    }
}
