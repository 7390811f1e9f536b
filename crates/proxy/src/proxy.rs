//! The proxy server: accepts connections (HTTP/1.1 and h2c on one port), serves each on the HTTP/1.1 fast
//! path (`h1`), which hands to hyper (`forward`) what it does not serve itself, and shuts down gracefully.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::acme_challenges::AcmeChallenges;
use crate::admission::Admission;
use crate::h1;
use crate::options::ProxyOptions;
use crate::route_handle::RouteHandle;
use crate::route_table::RouteTable;
use crate::shared::{ConnState, Shared};

/// A reverse proxy routing by its [`RouteHandle`]'s table. Starts with an empty table (every request 404s).
pub struct Proxy {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("options", &self.shared.options)
            .finish()
    }
}

impl Proxy {
    pub fn new(options: ProxyOptions) -> Proxy {
        // hyper's defaults (vectored writes when the socket supports them) measured best in user time:
        // flattening head and body into one buffer cost more than the `writev` it saves. That was before
        // the kernel side was measured: on the fast path a `send` of a head with a small body copied
        // behind it beat `writev` by ~0.5 µs a request (docs/benchmarks.md, "send instead of writev");
        // the hyper path (HTTP/2, upgrades, held requests) has not been measured that way.
        let client = hyper::client::conn::http1::Builder::new();
        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.head_timeout)
            // Pipelined requests: one flush for the responses ready together, not one each.
            .pipeline_flush(true);
        server.http2().timer(TokioTimer::new());
        Proxy {
            shared: Arc::new(Shared {
                routes: RouteHandle::new(RouteTable::default()),
                server,
                client,
                admission: Admission::new(
                    options.max_connections,
                    options.max_connections_per_client,
                ),
                options,
                challenges: AcmeChallenges::default(),
            }),
        }
    }

    /// Where the ACME client publishes its HTTP-01 answers (served on every listener).
    pub fn acme_challenges(&self) -> AcmeChallenges {
        self.shared.challenges.clone()
    }

    /// The handle the controller publishes route tables through.
    pub fn routes(&self) -> RouteHandle {
        self.shared.routes.clone()
    }

    /// Accepts and serves until `shutdown` is cancelled; then stops accepting, lets in-flight requests
    /// finish (HTTP/1 connections close after their current response, HTTP/2 ones get GOAWAY), and returns
    /// when every connection is done. Upgraded (WebSocket) connections are not waited for: they belong to
    /// their instance's drain, not to the listener.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let connections = TaskTracker::new();
        let stop = Arc::new(h1::StopSignal::new());
        let admission = &self.shared.admission;
        while let Some((stream, peer)) = next_client(&listener, &shutdown).await {
            let ticket = match admission.admit(peer.ip()) {
                Ok(ticket) => ticket,
                Err(full) => {
                    // Not tracked: shutdown does not wait for a refusal.
                    tokio::spawn(h1::refuse_connection(stream, full));
                    continue;
                }
            };
            let conn = Arc::new(ConnState {
                shared: Arc::clone(&self.shared),
                client_ip: client_ip(peer),
                tls: false,
            });
            let served = h1::serve_connection(stream, conn, Arc::clone(&stop));
            connections.spawn(async move {
                served.await;
                drop(ticket);
            });
        }
        drop(listener);
        stop.stop();
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

/// The next client connection, with `TCP_NODELAY` set, or `None` once `shutdown` is cancelled. A failed
/// accept is usually transient (EMFILE, ECONNABORTED): logged, and tried again after a short pause
/// instead of spinning. Both listeners, plain and TLS, take their connections here.
pub(crate) async fn next_client(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(error) = stream.set_nodelay(true) {
                    debug!(%error, "could not set TCP_NODELAY");
                }
                return Some((stream, peer));
            }
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

pub(crate) fn client_ip(peer: SocketAddr) -> HeaderValue {
    // An IP address always formats as a valid header value.
    HeaderValue::from_str(&peer.ip().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}
