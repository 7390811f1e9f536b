//! A backend is one instance the proxy can send requests to, with the counters the controller watches to
//! drain it.
//!
//! Backends are created by the controller and shared (`Arc`) between route tables, so their counters survive
//! table swaps: a request that started against table N still decrements the same counter after table N+1 is
//! published. The counters are updated through a [`Lease`], whose `Drop` makes the decrement impossible to
//! forget on any error path.
//!
//! A backend also owns its idle keep-alive connections (see `pool`, one pool per kind of connection), so forwarding needs no pool lookup and
//! a backend that leaves every table takes its idle connections with it when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::uri::Authority;

use crate::instance_socket::InstanceSocket;
use crate::pool::{IDLE_CAPACITY, IdlePool, Sender};

/// One instance the proxy can send to.
#[derive(Debug)]
pub struct Backend {
    /// The controller's name for the instance (shown in error pages and logs).
    pub id: String,
    /// Where the instance listens (plain HTTP/1.1).
    pub addr: SocketAddr,
    /// `addr` as a URI authority, built once so forwarding does not format it per request.
    pub(crate) authority: Authority,
    /// Idle keep-alive connections to the instance, driven by hyper (upgrades, h2c, mirroring).
    pub(crate) pool: IdlePool<Sender>,
    /// Idle keep-alive connections used by the HTTP/1.1 fast path (plain sockets).
    pub(crate) sockets: IdlePool<InstanceSocket>,
    in_flight: AtomicUsize,
    streams: AtomicUsize,
}

impl Backend {
    /// A backend with zeroed counters.
    pub fn new(id: impl Into<String>, addr: SocketAddr) -> Arc<Backend> {
        // A SocketAddr always formats as a valid authority ("1.2.3.4:80" or "[::1]:80").
        let authority = Authority::try_from(addr.to_string().as_str())
            .unwrap_or_else(|_| Authority::from_static("127.0.0.1"));
        Arc::new(Backend {
            id: id.into(),
            addr,
            authority,
            pool: IdlePool::new(IDLE_CAPACITY),
            sockets: IdlePool::new(IDLE_CAPACITY),
            in_flight: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
        })
    }

    /// Ordinary requests currently being served by this backend, counted from the moment the proxy chose it
    /// until the response body has finished (or was dropped).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Long-lived connections: upgraded (WebSocket) connections, and SSE responses (`text/event-stream`)
    /// still streaming.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
}

/// Which counter a [`Lease`] currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Request,
    Stream,
    Nothing,
}

/// One unit of a backend's `in_flight` (or, after [`Lease::become_stream`], `streams`) counter, released on
/// drop.
#[derive(Debug)]
pub(crate) struct Lease {
    backend: Arc<Backend>,
    held: Held,
}

impl Lease {
    /// Counts a new request against `backend`.
    pub(crate) fn acquire(backend: &Arc<Backend>) -> Lease {
        backend.in_flight.fetch_add(1, Ordering::SeqCst);
        Lease {
            backend: Arc::clone(backend),
            held: Held::Request,
        }
    }

    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// The request turned into a long-lived stream (SSE response or upgraded connection): move it from
    /// `in_flight` to `streams`, so draining waits for it with the streams deadline instead.
    pub(crate) fn become_stream(&mut self) {
        if self.held == Held::Request {
            self.backend.streams.fetch_add(1, Ordering::SeqCst);
            self.backend.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.held = Held::Stream;
        }
    }

    /// Releases the count now (the lease stays alive but holds nothing).
    pub(crate) fn release(&mut self) {
        match self.held {
            Held::Request => {
                self.backend.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            Held::Stream => {
                self.backend.streams.fetch_sub(1, Ordering::SeqCst);
            }
            Held::Nothing => {}
        }
        self.held = Held::Nothing;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Arc<Backend> {
        Backend::new("web-1", "127.0.0.1:8080".parse().expect("addr"))
    }

    #[test]
    fn lease_counts_and_releases_on_drop() {
        let b = backend();
        let lease = Lease::acquire(&b);
        assert_eq!(b.in_flight(), 1);
        drop(lease);
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn stream_moves_counter_once() {
        let b = backend();
        let mut lease = Lease::acquire(&b);
        lease.become_stream();
        lease.become_stream();
        assert_eq!((b.in_flight(), b.streams()), (0, 1));
        lease.release();
        assert_eq!((b.in_flight(), b.streams()), (0, 0));
        drop(lease);
        assert_eq!((b.in_flight(), b.streams()), (0, 0));
    }

    #[test]
    fn authority_formats_ipv6() {
        let b = Backend::new("x", "[::1]:9000".parse().expect("addr"));
        assert_eq!(b.authority.as_str(), "[::1]:9000");
    }
}
