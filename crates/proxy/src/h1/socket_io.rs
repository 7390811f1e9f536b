//! Waiting on and writing to the two sockets of an exchange: writes that go out in as few system calls
//! as the kernel takes, and waits on the instance that keep an eye on the client at the same time.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
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

/// Body bytes up to this many are copied behind the head and sent with it by one `send` rather than
/// as a second slice of a `writev`: a `writev` on a socket takes the file layer's path (its checks, the
/// slice array copied in), which costs more than copying a small body (docs/benchmarks.md).
const COPY_BEHIND_HEAD: usize = 4096;

/// Writes `head`, unless it has been written already (it is empty once written), and then `data`, like
/// [`write_all`]; a small `data` goes copied behind the head.
pub(super) async fn write_head_and<W: AsyncWrite + Unpin>(
    stream: &mut W,
    head: &mut Vec<u8>,
    data: &[u8],
) -> Result<(), (usize, io::Error)> {
    if head.is_empty() {
        return write_all(stream, &mut [IoSlice::new(data)]).await;
    }
    let written = if data.len() <= COPY_BEHIND_HEAD {
        head.extend_from_slice(data);
        write_all(stream, &mut [IoSlice::new(head)]).await
    } else {
        write_all(stream, &mut [IoSlice::new(head), IoSlice::new(data)]).await
    };
    if written.is_ok() {
        head.clear();
    }
    written
}

/// Writes every slice, in as few system calls as the socket allows, and flushes (a TLS stream may hold
/// the last records back; a plain socket's flush does nothing); on failure, says how much was written.
/// What is left in one slice goes by `write` (`send` on a plain socket), more by `writev`.
pub(super) async fn write_all<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> Result<(), (usize, io::Error)> {
    let mut written = 0;
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let wrote = if slices[1..].iter().all(|slice| slice.is_empty()) {
            stream.write(&slices[0]).await
        } else {
            stream.write_vectored(slices).await
        };
        match wrote {
            Ok(0) => return Err((written, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(error) => return Err((written, error)),
        }
    }
    let _ = written;
    Ok(())
}

/// Waits for bytes from the instance while watching the client (bytes it pipelines are kept in `input`;
/// its end of stream ends the wait) and, when given, a deadline.
pub(super) async fn wait_instance<S: AsyncRead + Unpin>(
    instance: &mut TcpStream,
    into: &mut [u8],
    client: &mut S,
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
fn watch_client<S: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    client: &mut S,
    input: &mut Input,
) -> Poll<()> {
    while input.has_room() {
        let mut read = ReadBuf::new(&mut input.buf[input.end..]);
        match std::pin::Pin::new(&mut *client).poll_read(cx, &mut read) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(())) if !read.filled().is_empty() => input.end += read.filled().len(),
            // End of stream, or a failed connection.
            Poll::Ready(_) => return Poll::Ready(()),
        }
    }
    Poll::Pending
}
