//! TLS termination: the HTTPS listener. Each connection is handshaken with the caller's rustls config
//! (certificates, ALPN, resumption: the daemon's), then served as a plain connection is — HTTP/1.1 by
//! the fast path (`h1`, which hands what it does not serve to hyper behind its gate), HTTP/2 by hyper —
//! with the same route table, metrics and drains.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::h1;
use crate::proxy::{Proxy, client_ip, next_client};
use crate::shared::ConnState;

/// The ALPN protocol of an ACME TLS-ALPN-01 validation (RFC 8737): the handshake is the whole answer.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// Certificates made while a client waits (on-demand TLS): given the name a ClientHello asks for, before
/// the handshake goes on, it resolves once a certificate for that name is in place — or will not be (a
/// name not approved, a CA that failed): the handshake then goes on with what there is.
pub trait OnDemandCerts: Send + Sync + 'static {
    fn prepare<'a>(&'a self, name: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

impl Proxy {
    /// Accepts TLS connections on `listener` until `shutdown` is cancelled, then lets in-flight requests
    /// finish (as [`Proxy::serve`] does). A failed handshake (no certificate for the name, a client speaking
    /// plain HTTP, a timeout) ends that connection only.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        on_demand: Option<Arc<dyn OnDemandCerts>>,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let acceptor = TlsAcceptor::from(config.clone());
        let connections = TaskTracker::new();
        let stop = Arc::new(h1::StopSignal::new());
        let admission = &self.shared.admission;
        while let Some((stream, peer)) = next_client(&listener, &shutdown).await {
            // Over the limits: closed before the handshake (there is no plain-text page to send on TLS).
            let Ok(ticket) = admission.admit(peer.ip()) else {
                continue;
            };
            let conn = Arc::new(ConnState {
                shared: Arc::clone(&self.shared),
                client_ip: client_ip(peer),
                tls: true,
            });
            let handshake = Handshake {
                acceptor: acceptor.clone(),
                config: config.clone(),
                on_demand: on_demand.clone(),
            };
            let served = serve_connection(stream, handshake, conn, Arc::clone(&stop));
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

/// What a TLS connection's handshake needs.
struct Handshake {
    acceptor: TlsAcceptor,
    config: Arc<rustls::ServerConfig>,
    on_demand: Option<Arc<dyn OnDemandCerts>>,
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

impl Handshake {
    /// The handshake, within `patience` for each of the client's parts; `Err(stream)`: the client
    /// spoke plain HTTP; `Ok(None)`: it went away or failed (logged).
    async fn run(
        &self,
        stream: TcpStream,
        patience: Duration,
        client: &http::HeaderValue,
    ) -> Result<Option<TlsStream>, TcpStream> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(patience, stream.peek(&mut first)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Ok(None),
        }
        if first[0] != TLS_HANDSHAKE {
            return Err(stream);
        }
        let done = match &self.on_demand {
            None => tokio::time::timeout(patience, self.acceptor.accept(stream)).await,
            Some(on_demand) => {
                // The ClientHello first: a certificate for its name may have to be made before the
                // handshake can go on (bounded by the maker, not by `patience`).
                let acceptor = rustls::server::Acceptor::default();
                let start =
                    match tokio::time::timeout(patience, LazyConfigAcceptor::new(acceptor, stream))
                        .await
                    {
                        Ok(Ok(start)) => start,
                        Ok(Err(error)) => {
                            debug!(?client, %error, "TLS handshake failed");
                            return Ok(None);
                        }
                        Err(_) => return Ok(None),
                    };
                let hello = start.client_hello();
                let acme = hello
                    .alpn()
                    .is_some_and(|mut p| p.any(|p| p == ACME_TLS_ALPN));
                if let Some(name) = hello.server_name().filter(|_| !acme).map(str::to_owned) {
                    on_demand.prepare(&name).await;
                }
                tokio::time::timeout(patience, start.into_stream(self.config.clone())).await
            }
        };
        match done {
            Ok(Ok(tls)) => Ok(Some(tls)),
            Ok(Err(error)) => {
                // No certificate for the name, no common version or suite, a client that gave up.
                debug!(?client, %error, "TLS handshake failed");
                Ok(None)
            }
            Err(_) => {
                debug!(?client, "TLS handshake did not finish in time");
                Ok(None)
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    handshake: Handshake,
    conn: Arc<ConnState>,
    stop: Arc<h1::StopSignal>,
) {
    let patience = conn.shared.options.head_timeout;
    let tls = match handshake.run(stream, patience, &conn.client_ip).await {
        Ok(Some(tls)) => tls,
        Ok(None) => return,
        Err(plain) => return refuse_plain_http(plain).await,
    };
    if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
        return;
    }
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        // HTTP/2: hyper's own framing, no HTTP/1 heads to check.
        return h1::serve_hyper(tls, conn, stop.token(), None).await;
    }
    // HTTP/1.1 (chosen by ALPN, or no ALPN at all): the fast path, as on plain connections.
    h1::serve_connection(tls, conn, stop).await;
}

/// A client that spoke plain HTTP to the TLS port gets a plain-text 400 saying so, then the connection
/// closes.
async fn refuse_plain_http(mut stream: TcpStream) {
    let message = "this port speaks HTTPS: use an https:// URL";
    let page = h1::page_bytes(StatusCode::BAD_REQUEST, message);
    let write = tokio::time::timeout(Duration::from_millis(500), stream.write_all(&page));
    if matches!(write.await, Ok(Ok(()))) {
        h1::linger_and_close(stream).await;
    }
}
