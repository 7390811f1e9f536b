//! Keep-alive connections to one instance: opening them, and the bounded idle pools each [`Backend`] owns
//! (hyper connections for the hyper path, plain sockets for the HTTP/1.1 fast path in `h1`).
//!
//! Why our own pool rather than hyper-util's: that one is keyed by a hashed URI authority behind a mutex
//! and spawns a task per request to hand a connection back. Here the pool *is* the backend (no lookup), the
//! idle set is a lock-free bounded queue, and the only task is the one per connection that drives it. A
//! connection goes back when its response body has ended, and an idle connection the instance has closed,
//! or that has been idle longer than `idle_pool_timeout`, is dropped when a checkout meets it (lazily: with
//! no traffic at all, idle connections stay until the instance closes them or the backend is dropped).
//! Dropping a [`Backend`] drops its idle senders, which makes hyper close those connections.
//!
//! [`Backend`]: crate::backend::Backend

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use crate::options::ProxyOptions;
use crate::request_body::RequestBody;
use crate::retry::{Attempt, Failure};

/// The sending half of one HTTP/1.1 connection to an instance.
pub(crate) type Sender = SendRequest<RequestBody>;

/// Idle connections kept per backend; more are closed when they come back. Well above what one proxy
/// keeps busy against one instance, while bounding what an idle backend holds open.
pub(crate) const IDLE_CAPACITY: usize = 256;

/// Not-ready connections a checkout puts back before it gives up and lets the caller open a new one.
const MAX_REQUEUES: usize = 2;

/// A connection kept for reuse.
pub(crate) trait Reusable {
    /// The instance has closed it (or it broke): checked when it is taken from the pool.
    fn is_closed(&self) -> bool;
    /// Closed as far as is known without asking the socket: checked when it comes back.
    fn is_known_closed(&self) -> bool;
    /// Free for a new request right now.
    fn is_ready(&self) -> bool;
}

impl Reusable for Sender {
    fn is_closed(&self) -> bool {
        SendRequest::is_closed(self)
    }

    fn is_known_closed(&self) -> bool {
        SendRequest::is_closed(self)
    }

    fn is_ready(&self) -> bool {
        SendRequest::is_ready(self)
    }
}

/// One backend's idle connections, oldest first.
pub(crate) struct IdlePool<C> {
    idle: ArrayQueue<Idle<C>>,
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

impl<C> std::fmt::Debug for IdlePool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdlePool")
            .field("idle", &self.idle.len())
            .finish()
    }
}

impl<C: Reusable> IdlePool<C> {
    pub(crate) fn new(capacity: usize) -> IdlePool<C> {
        IdlePool {
            idle: ArrayQueue::new(capacity.max(1)),
        }
    }

    #[cfg(test)]
    /// Idle connections currently pooled (including ones not yet found closed or expired).
    pub(crate) fn len(&self) -> usize {
        self.idle.len()
    }

    /// A pooled connection ready for a request, idle for less than `max_idle` at `now`; `None` when the
    /// caller should open a new one. Closed and expired connections met on the way are dropped (closing
    /// them).
    pub(crate) fn checkout(&self, now: Instant, max_idle: Duration) -> Option<C> {
        let mut requeued = 0;
        // Bounded even if other threads keep returning connections meanwhile.
        for _ in 0..self.idle.capacity() {
            let idle = self.idle.pop()?;
            let idle_for = now.saturating_duration_since(idle.since);
            if idle_for >= max_idle || idle.conn.is_closed() {
                continue;
            }
            if idle.conn.is_ready() {
                return Some(idle.conn);
            }
            // Still finishing its previous exchange (possible on a multi-threaded runtime): keep it for a
            // later checkout rather than closing it.
            requeued += 1;
            if self.idle.push(idle).is_err() || requeued >= MAX_REQUEUES {
                return None;
            }
        }
        None
    }

    /// A connection for `attempt` of a request that arrived at `arrived`: a pooled one unless the retry
    /// rule asked for a new one, else one that `connect` opens within the request's `response_timeout`.
    /// Sets `attempt.pooled`; on failure, why (with what to tell the client after "instance X ...").
    pub(crate) async fn connection_for<F>(
        &self,
        attempt: &mut Attempt,
        arrived: tokio::time::Instant,
        options: &ProxyOptions,
        connect: impl FnOnce() -> F,
    ) -> Result<C, (Failure, String)>
    where
        F: Future<Output = Result<C, ConnectError>>,
    {
        let pooled = if attempt.fresh {
            None
        } else {
            self.checkout(arrived.into_std(), options.idle_pool_timeout)
        };
        attempt.pooled = pooled.is_some();
        if let Some(conn) = pooled {
            return Ok(conn);
        }
        let deadline = arrived + options.response_timeout;
        match tokio::time::timeout_at(deadline, connect()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err((Failure::Connect, error.describe())),
            Err(_) => Err((Failure::TimedOut, String::new())),
        }
    }

    /// Returns a connection whose response has been read completely. Dropped (closed) instead when it is
    /// already closed or the pool is full.
    pub(crate) fn checkin(&self, conn: C, now: Instant) {
        if conn.is_known_closed() {
            return;
        }
        let _ = self.idle.push(Idle { conn, since: now });
    }
}

/// Why a new connection could not be opened. Nothing of the request was sent in any of these cases.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Io(io::Error),
    TimedOut(Duration),
    Handshake(hyper::Error),
}

impl ConnectError {
    /// What to tell the client, after "instance X ...".
    pub(crate) fn describe(&self) -> String {
        match self {
            ConnectError::Io(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                "refused the connection".to_owned()
            }
            ConnectError::Io(error) => format!("could not be connected to: {error}"),
            ConnectError::TimedOut(timeout) => {
                format!("could not be connected to within {timeout:?}")
            }
            ConnectError::Handshake(error) => format!("could not be connected to: {error}"),
        }
    }
}

/// Opens a TCP connection to the instance at `addr` within `timeout` (`connect_timeout`), for either path.
pub(crate) async fn open_stream(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::TimedOut(timeout)),
        Ok(Err(error)) => return Err(ConnectError::Io(error)),
        Ok(Ok(stream)) => stream,
    };
    // Heads and small bodies go out in one write each: no reason to hold them back.
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%error, %addr, "could not set TCP_NODELAY");
    }
    Ok(stream)
}

/// Opens a connection to `addr` and spawns the task that drives it (until the instance closes it, an
/// error, or every [`Sender`] for it is dropped). Upgrades are enabled, so a `101` response hands the raw
/// connection over to the tunnel.
pub(crate) async fn connect(
    builder: &http1::Builder,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Sender, ConnectError> {
    let stream = open_stream(addr, timeout).await?;
    let (sender, connection) = builder
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            debug!(%error, %addr, "instance connection ended with an error");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection instance that answers every request on it with "ok" until the client closes.
    async fn instance() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            }
        });
        (addr, task)
    }

    async fn ready_sender() -> (Sender, tokio::task::JoinHandle<()>) {
        let (addr, task) = instance().await;
        let builder = http1::Builder::new();
        let mut sender = connect(&builder, addr, Duration::from_secs(5))
            .await
            .expect("connect");
        sender.ready().await.expect("ready");
        (sender, task)
    }

    #[tokio::test]
    async fn checkout_returns_what_was_checked_in() {
        let pool = IdlePool::<Sender>::new(4);
        assert!(
            pool.checkout(Instant::now(), Duration::from_secs(60))
                .is_none()
        );
        let (sender, _instance) = ready_sender().await;
        pool.checkin(sender, Instant::now());
        assert_eq!(pool.len(), 1);
        let reused = pool
            .checkout(Instant::now(), Duration::from_secs(60))
            .expect("pooled");
        assert!(reused.is_ready());
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test]
    async fn expired_connections_are_dropped_on_checkout() {
        let pool = IdlePool::<Sender>::new(4);
        let (sender, instance) = ready_sender().await;
        pool.checkin(sender, Instant::now());
        assert!(pool.checkout(Instant::now(), Duration::ZERO).is_none());
        assert_eq!(pool.len(), 0);
        // Dropping the only sender closes the connection: the instance sees EOF and its task ends.
        tokio::time::timeout(Duration::from_secs(20), instance)
            .await
            .expect("instance connection closed")
            .expect("instance task");
    }

    #[tokio::test]
    async fn full_pool_drops_extra_connections() {
        let pool = IdlePool::<Sender>::new(1);
        let (first, _a) = ready_sender().await;
        let (second, b) = ready_sender().await;
        pool.checkin(first, Instant::now());
        pool.checkin(second, Instant::now());
        assert_eq!(pool.len(), 1);
        tokio::time::timeout(Duration::from_secs(20), b)
            .await
            .expect("extra connection closed")
            .expect("instance task");
    }

    #[tokio::test]
    async fn refused_connect_says_so() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("addr")
        };
        let error = connect(&http1::Builder::new(), addr, Duration::from_secs(5))
            .await
            .expect_err("nothing listens");
        assert_eq!(error.describe(), "refused the connection");
    }
}
