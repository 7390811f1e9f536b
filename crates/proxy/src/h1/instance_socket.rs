//! A keep-alive connection to an instance as the fast path uses it: just the socket. No task drives it
//! and it has no buffer of its own (a response is read into the client connection's buffer), so an idle
//! one costs a file descriptor and nothing else.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::debug;

use crate::pool::{ConnectError, Reusable};

#[derive(Debug)]
pub(crate) struct InstanceSocket {
    pub(crate) stream: TcpStream,
}

impl InstanceSocket {
    /// Opens a connection to `addr` within `timeout`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<InstanceSocket, ConnectError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ConnectError::TimedOut(timeout)),
            Ok(Err(error)) => return Err(ConnectError::Io(error)),
            Ok(Ok(stream)) => stream,
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, %addr, "could not set TCP_NODELAY");
        }
        Ok(InstanceSocket { stream })
    }
}

impl Reusable for InstanceSocket {
    /// An idle connection has nothing to read: if the reactor saw it readable, the instance closed it (or
    /// sent something unasked, which makes it unusable too). Costs a syscall only in that case.
    fn is_closed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => {
                let mut byte = [0u8; 1];
                !matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    fn is_known_closed(&self) -> bool {
        false
    }

    fn is_ready(&self) -> bool {
        true
    }
}
