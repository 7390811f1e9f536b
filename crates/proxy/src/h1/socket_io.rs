//! Waiting on and writing to the two sockets of an exchange: writes that go out in as few `writev`s as
//! the kernel takes, and waits on the instance that keep an eye on the client at the same time.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::h1::connection::Input;
use crate::h1::deadline::LazyDeadline;

/// What interrupted a wait on the instance.
pub(super) enum Waited {
    Read(io::Result<usize>),
    ClientGone,
    TimedOut,
}

/// Writes every slice, in as few `writev`s as the socket allows; on failure, says how much was written.
pub(super) async fn write_all(
    stream: &mut TcpStream,
    mut slices: &mut [IoSlice<'_>],
) -> Result<(), (usize, io::Error)> {
    let mut written = 0;
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match stream.write_vectored(slices).await {
            Ok(0) => return Err((written, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(error) => return Err((written, error)),
        }
    }
    Ok(())
}

/// Waits for bytes from the instance while watching the client (bytes it pipelines are kept in `input`;
/// its end of stream ends the wait) and, when given, a deadline.
pub(super) async fn wait_instance(
    instance: &mut TcpStream,
    into: &mut [u8],
    client: &mut TcpStream,
    input: &mut Input,
    mut deadline: Option<(&mut LazyDeadline, Instant)>,
) -> Waited {
    poll_fn(|cx| {
        let mut read = ReadBuf::new(into);
        if let Poll::Ready(result) = std::pin::Pin::new(&mut *instance).poll_read(cx, &mut read) {
            return Poll::Ready(Waited::Read(result.map(|()| read.filled().len())));
        }
        if watch_client(cx, client, input).is_ready() {
            return Poll::Ready(Waited::ClientGone);
        }
        if let Some((timer, at)) = &mut deadline
            && timer.poll_passed(cx, *at).is_ready()
        {
            return Poll::Ready(Waited::TimedOut);
        }
        Poll::Pending
    })
    .await
}

/// Ready when the client has gone (end of stream or error). Bytes it sent meanwhile (pipelined requests)
/// are appended to `input` while there is room; when there is none, the client is not read until later.
fn watch_client(cx: &mut Context<'_>, client: &TcpStream, input: &mut Input) -> Poll<()> {
    while input.has_room() {
        match client.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) => match client.try_read(&mut input.buf[input.end..]) {
                Ok(0) => return Poll::Ready(()),
                Ok(n) => input.end += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(()),
            },
        }
    }
    Poll::Pending
}
