//! A keep-alive connection to an instance as the fast path uses it: just the socket. No task drives it
//! and it has no buffer of its own (a response is read into the client connection's buffer), so an idle
//! one costs a file descriptor and nothing else.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::pool::{ConnectError, Reusable, open_stream};

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
        let stream = open_stream(addr, timeout).await?;
        Ok(InstanceSocket { stream })
    }
}

impl Reusable for InstanceSocket {
    /// An idle connection has nothing to read: if the reactor saw it readable, the instance closed it (or
    /// sent something unasked, which makes it unusable too). `try_read` only makes the syscall in that
    /// case; otherwise it answers `WouldBlock` from the reactor's readiness at once.
    fn is_closed(&self) -> bool {
        let mut byte = [0u8; 1];
        !matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    fn is_known_closed(&self) -> bool {
        false
    }

    fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (InstanceSocket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let socket = InstanceSocket::connect(addr, Duration::from_secs(5))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (socket, server)
    }

    /// Polls `is_closed` until it says `closed` (the reactor has to see the event first).
    async fn until_closed_is(socket: &InstanceSocket, closed: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while socket.is_closed() != closed {
            assert!(
                tokio::time::Instant::now() < deadline,
                "is_closed never became {closed}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn idle_socket_is_open_until_the_instance_closes_it() {
        let (socket, server) = pair().await;
        assert!(!socket.is_closed());
        drop(server);
        until_closed_is(&socket, true).await;
    }

    #[tokio::test]
    async fn unasked_bytes_make_a_socket_unusable() {
        let (socket, mut server) = pair().await;
        server
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .await
            .expect("write");
        until_closed_is(&socket, true).await;
    }
}
