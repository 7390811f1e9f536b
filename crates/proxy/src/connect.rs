//! Opening a connection to an instance, for both forwarding paths: TCP within the connect timeout,
//! Nagle off (requests and answers are written whole), and why it failed in words for a 502 page.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::debug;

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

/// A TCP connection to `addr` within `timeout`.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::TimedOut(timeout)),
        Ok(Err(error)) => return Err(ConnectError::Io(error)),
        Ok(Ok(stream)) => stream,
    };
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%error, %addr, "could not set TCP_NODELAY");
    }
    Ok(stream)
}
