//! Handing the listening sockets from a running daemon to the new one an upgrade starts, as HAProxy's
//! seamless reload does: the sockets themselves change hands (`SCM_RIGHTS` over a unix socket in the
//! state dir), so they never close and connections that arrive meanwhile wait in their backlog.
//!
//! The conversation, one line each way, after the old daemon has started the new one with
//! `SLIPWAY_HANDOVER=<socket path>`:
//!
//! ```text
//! old → new   listeners proxy api-unix [api-tcp] [proxy-tls]   (+ the sockets, in that order)
//! new → old   take                                 (the new binary runs and has its sockets)
//! old → new   released                             (the old one stopped accepting, deciding and
//!                                                    watching instances; it finishes in-flight work)
//! new → old   serving <pid>                        (instances adopted, accepting)
//! ```
//!
//! Until `released` the old daemon can still say no and keep serving; after it, it is committed.

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::{UnixListener, UnixStream};

/// The variable that tells a starting daemon to take over from the one at that socket.
pub const ENV: &str = "SLIPWAY_HANDOVER";

/// How long each side waits for the other's next line.
pub const STEP: Duration = Duration::from_secs(30);
/// The old daemon lets the drains under way finish before `released` (streams may take minutes).
pub const RELEASE: Duration = Duration::from_secs(600);
/// The new daemon's start (store, adoption) happens between `released` and `serving`.
pub const START: Duration = Duration::from_secs(120);

/// The most sockets one hand-over carries.
const MAX_SOCKETS: usize = 8;

/// One listening socket and what it is for.
#[derive(Debug)]
pub struct Inherited {
    pub name: String,
    pub fd: OwnedFd,
}

/// The old daemon's side: a socket the new one connects to.
pub struct Offer {
    listener: UnixListener,
    path: PathBuf,
}

impl Offer {
    pub fn open(path: &Path) -> io::Result<Offer> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Offer {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub async fn accept(&self) -> io::Result<Peer> {
        let (stream, _) = self.listener.accept().await?;
        Ok(Peer::new(stream))
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Either side of the conversation.
pub struct Peer {
    stream: BufReader<UnixStream>,
}

impl Peer {
    fn new(stream: UnixStream) -> Peer {
        Peer {
            stream: BufReader::new(stream),
        }
    }

    /// The new daemon's side.
    pub async fn connect(path: &Path) -> io::Result<Peer> {
        Ok(Peer::new(UnixStream::connect(path).await?))
    }

    /// Sends the sockets with their names (names are single words).
    pub async fn send_listeners(&mut self, sockets: &[(&str, RawFd)]) -> io::Result<()> {
        let names: Vec<&str> = sockets.iter().map(|(name, _)| *name).collect();
        let line = format!("listeners {}\n", names.join(" "));
        let fds: Vec<RawFd> = sockets.iter().map(|(_, fd)| *fd).collect();
        let stream = self.stream.get_ref();
        loop {
            stream.writable().await?;
            let sent = stream.try_io(Interest::WRITABLE, || {
                let cmsg = [ControlMessage::ScmRights(&fds)];
                let iov = [IoSlice::new(line.as_bytes())];
                sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(n) if n == line.len() => return Ok(()),
                Ok(_) => return Err(io::Error::other("the socket list was cut short")),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives the sockets [`Peer::send_listeners`] sent, named.
    pub async fn receive_listeners(&mut self) -> io::Result<Vec<Inherited>> {
        let stream = self.stream.get_ref();
        let mut buf = [0u8; 1024];
        let (text, fds) = loop {
            stream.readable().await?;
            let received = stream.try_io(Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut space = nix::cmsg_space!([RawFd; MAX_SOCKETS]);
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)?;
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(received) = cmsg {
                        // SAFETY: the kernel just installed these descriptors in this process.
                        fds.extend(
                            received
                                .into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                Ok((msg.bytes, fds))
            });
            match received {
                Ok((n, fds)) => break (String::from_utf8_lossy(&buf[..n]).into_owned(), fds),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        let names = text
            .strip_suffix('\n')
            .and_then(|line| line.strip_prefix("listeners"))
            .ok_or_else(|| io::Error::other(format!("not a socket list: {text:?}")))?;
        let names: Vec<&str> = names.split_whitespace().collect();
        if names.len() != fds.len() {
            return Err(io::Error::other(format!(
                "{} socket names but {} sockets",
                names.len(),
                fds.len()
            )));
        }
        Ok(names
            .into_iter()
            .zip(fds)
            .map(|(name, fd)| Inherited {
                name: name.to_owned(),
                fd,
            })
            .collect())
    }

    pub async fn say(&mut self, line: &str) -> io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        stream.flush().await
    }

    /// The other side's next line, which must start with `word`; the rest of it is returned.
    pub async fn expect(&mut self, word: &str, limit: Duration) -> io::Result<String> {
        let mut line = String::new();
        let read = tokio::time::timeout(limit, self.stream.read_line(&mut line))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no `{word}` within {limit:?}"),
                )
            })??;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the other daemon hung up before `{word}`"),
            ));
        }
        let line = line.trim_end();
        match line.strip_prefix(word) {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(io::Error::other(format!("expected `{word}`, got {line:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_change_hands_with_their_names_and_still_accept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("handover.sock");
        let offer = Offer::open(&path).expect("offer");
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = proxy.local_addr().expect("addr");
        let api = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");

        let taker = tokio::spawn({
            let path = path.clone();
            async move {
                let mut peer = Peer::connect(&path).await.expect("connect");
                let got = peer.receive_listeners().await.expect("receive");
                peer.say("take").await.expect("say");
                let released = peer.expect("released", STEP).await.expect("released");
                (got, released)
            }
        });
        let mut peer = offer.accept().await.expect("accept");
        peer.send_listeners(&[("proxy", proxy.as_raw_fd()), ("api-tcp", api.as_raw_fd())])
            .await
            .expect("send");
        peer.expect("take", STEP).await.expect("take");
        peer.say("released").await.expect("say");
        let (got, released) = taker.await.expect("taker");
        assert_eq!(released, "");
        let names: Vec<&str> = got.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["proxy", "api-tcp"]);

        // The received descriptor is the same listening socket: a connection made to the address
        // is accepted on it after the sender's copy is closed.
        drop(proxy);
        let received = got.into_iter().next().expect("proxy").fd;
        let listener = std::net::TcpListener::from(received);
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        let (_conn, _) = listener.accept().expect("accept on the received socket");
    }

    #[tokio::test]
    async fn a_peer_that_hangs_up_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("handover.sock");
        let offer = Offer::open(&path).expect("offer");
        let client = tokio::spawn({
            let path = path.clone();
            async move { drop(Peer::connect(&path).await.expect("connect")) }
        });
        let mut peer = offer.accept().await.expect("accept");
        client.await.expect("client");
        let err = peer.expect("take", STEP).await.expect_err("hung up");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(offer);
        assert!(!path.exists(), "the offer's socket goes with it");
    }
}
