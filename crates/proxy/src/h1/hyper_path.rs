//! Client connections served by hyper: behind the gate, connections the fast path handed off (plain or
//! TLS) — every request head still checked by the fast path's parser first (`gate`), so one set of rules
//! holds on every listener — and, as they are, HTTP/2 connections over TLS.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::forward::serve_request;
use crate::h1::gate::{ClientStream, Gate};
use crate::shared::ConnState;

/// Serves `stream` with hyper, `read` (bytes already received, from the start of a request head) first;
/// on `stop`, or when a head is refused, lets hyper finish gracefully.
pub(crate) async fn serve_gated<S: ClientStream>(
    read: Vec<u8>,
    stream: S,
    conn: Arc<ConnState>,
    stop: &CancellationToken,
) {
    let refused = Arc::new(Notify::new());
    let head_timeout = conn.shared.options.head_timeout;
    let gate = Gate::new(read, stream, Arc::clone(&refused), head_timeout);
    serve_hyper(gate, conn, stop, Some(&refused)).await;
}

/// Serves `io` with hyper (HTTP/1.1 with upgrades, h2c, or HTTP/2 as ALPN chose) through `forward`; on
/// `stop`, or when `refused` rings, lets hyper finish what it is doing and close.
pub(crate) async fn serve_hyper<S: ClientStream>(
    io: S,
    conn: Arc<ConnState>,
    stop: &CancellationToken,
    refused: Option<&Notify>,
) {
    let shared = Arc::clone(&conn.shared);
    let service = service_fn(move |req| serve_request(Arc::clone(&conn), req));
    let connection = shared
        .server
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let refusal = async {
        match refused {
            Some(refused) => refused.notified().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = refusal => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        debug!(%error, "client connection ended with an error");
    }
}
