//! TLS termination: the HTTPS listener. Each connection is handshaken with the caller's rustls config
//! (certificates, ALPN, resumption: the daemon's), then served by hyper — HTTP/2 or HTTP/1.1 as ALPN
//! chose — through the same `forward` path, route table, metrics and drains as plain connections.
//!
//! The fast path (`h1`) reads a `TcpStream`; TLS connections skip it and go to hyper directly, where
//! HTTP/2 has to go anyway.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::admission::Admission;
use crate::forward::serve_request;
use crate::h1;
use crate::proxy::{Proxy, client_ip};
use crate::shared::ConnState;

/// The ALPN protocol of an ACME TLS-ALPN-01 validation (RFC 8737): the handshake is the whole answer.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

impl Proxy {
    /// Accepts TLS connections on `listener` until `shutdown` is cancelled, then lets in-flight requests
    /// finish (as [`Proxy::serve`] does). A failed handshake (no certificate for the name, a client speaking
    /// plain HTTP, a timeout) ends that connection only.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let acceptor = TlsAcceptor::from(config);
        let connections = TaskTracker::new();
        let options = &self.shared.options;
        let admission = Admission::new(options.max_connections, options.max_connections_per_client);
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        warn!(%error, "accept failed on the TLS listener");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            // Over the limits: closed before the handshake (there is no plain-text page to send on TLS).
            let Ok(ticket) = admission.admit(peer.ip()) else {
                continue;
            };
            if let Err(error) = stream.set_nodelay(true) {
                debug!(%error, "could not set TCP_NODELAY");
            }
            let conn = Arc::new(ConnState {
                shared: Arc::clone(&self.shared),
                client_ip: client_ip(peer),
                tls: true,
            });
            let served = serve_connection(stream, acceptor.clone(), conn, shutdown.clone());
            connections.spawn(async move {
                served.await;
                drop(ticket);
            });
        }
        drop(listener);
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    conn: Arc<ConnState>,
    stop: CancellationToken,
) {
    let patience = conn.shared.options.head_timeout;
    let handshake = async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 0 {
            return Ok(None);
        }
        if first[0] != TLS_HANDSHAKE {
            return Ok(Some(Err(stream)));
        }
        acceptor.accept(stream).await.map(|tls| Some(Ok(tls)))
    };
    let tls = match tokio::time::timeout(patience, handshake).await {
        Ok(Ok(Some(Ok(tls)))) => tls,
        Ok(Ok(Some(Err(plain)))) => return refuse_plain_http(plain).await,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            // No certificate for the name, no common version or suite, a client that gave up.
            debug!(client = ?conn.client_ip, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(client = ?conn.client_ip, "TLS handshake did not finish in time");
            return;
        }
    };
    if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
        return;
    }
    let shared = Arc::clone(&conn.shared);
    let service = service_fn(move |req| serve_request(Arc::clone(&conn), req));
    let connection = shared
        .server
        .serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        debug!(%error, "TLS client connection ended with an error");
    }
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
