//! The client connection as hyper reads it after a hand-off: the bytes the fast path already read come
//! first, then the socket — and every request head in them is checked by `request_head` before hyper
//! sees a byte of it.
//!
//! So the rules of one parser hold for every request on every connection: hyper never reads a request
//! the fast path would refuse (it would close such a connection without an answer, or frame the body by
//! its own reading). The gate follows each request's framing to find where the next head starts: body
//! bytes pass as they arrive (a `Content-Length`'s worth, or up to the last chunk); after an upgrade
//! request nothing more passes until hyper's answer shows the switch (a 101; otherwise the connection
//! closes), and after a switch or the h2c preface everything passes unread. A refused head is never given to hyper: hyper
//! is asked to finish what it is doing and close (`refused`), and the refusal's page is written just
//! before the connection closes. A chunked body broken in the middle ends hyper's reading with an error:
//! the instance never receives a complete request.
//!
//! The gate also keeps the fast path's head timeout: hyper only starts its own once it has bytes of a
//! head, and the gate holds those back until the head is complete.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::h1::chunked::ChunkedDecoder;
use crate::h1::deadline::LazyDeadline;
use crate::h1::error_reply::{linger_and_close, page_bytes};
use crate::h1::request_head::{self, MAX_HEAD, Parsed, RequestBody, Then};

/// A client connection the gate reads: a plain socket, or a TLS stream after its handshake.
pub(crate) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ClientStream for S {}

/// What the next bytes from the client are.
enum Expect {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    /// After an upgrade request: nothing more is given to hyper until its answer shows whether the
    /// protocol switched (then `Opaque`); if not, hyper closes the connection (`forward::respond`) and
    /// what the client sent meanwhile is never read.
    AwaitUpgrade,
    /// Not HTTP/1 any more: passed on unread.
    Opaque,
}

/// The gate over a client stream `S`: a plain `TcpStream`, or a TLS stream after its handshake.
pub(crate) struct Gate<S: ClientStream> {
    /// Taken on drop after a refusal, to linger (see `error_reply::linger_and_close`).
    stream: Option<S>,
    /// Bytes received and not yet read by hyper: `buf[start..end]`, of which the first `released` may be.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    released: usize,
    expect: Expect,
    /// The page for a refused head, written when hyper closes the connection.
    refusal: Option<Vec<u8>>,
    /// The request whose body is passing asked for an upgrade.
    upgrade_after_body: bool,
    /// Tells the hand-off to shut hyper down gracefully (a head was refused).
    refused: Arc<Notify>,
    /// When the connection last wrote a response byte or started waiting for a head.
    idle_since: Instant,
    head_timeout: Duration,
    head_timer: LazyDeadline,
}

impl<S: ClientStream> Gate<S> {
    /// `read` holds what the fast path received and did not serve (from the start of a request head).
    pub(crate) fn new(
        read: Vec<u8>,
        stream: S,
        refused: Arc<Notify>,
        head_timeout: Duration,
    ) -> Gate<S> {
        let now = Instant::now();
        let end = read.len();
        let mut buf = read;
        buf.resize(buf.len().max(8 * 1024), 0);
        Gate {
            stream: Some(stream),
            buf,
            start: 0,
            end,
            released: 0,
            expect: Expect::Head,
            refusal: None,
            upgrade_after_body: false,
            refused,
            idle_since: now,
            head_timeout,
            head_timer: LazyDeadline::new(now + head_timeout),
        }
    }

    /// Decides what of the unread bytes hyper may read; `Err` for a broken chunked body.
    fn classify(&mut self) -> io::Result<()> {
        while self.released == 0 && self.start < self.end && self.refusal.is_none() {
            let waiting = &self.buf[self.start..self.end];
            match &mut self.expect {
                Expect::Opaque => self.released = waiting.len(),
                Expect::AwaitUpgrade => return Ok(()),
                Expect::Length(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(waiting.len());
                    *left -= n as u64;
                    self.released = n;
                    if *left == 0 {
                        self.expect_head();
                    }
                }
                Expect::Chunked(decoder) => {
                    let n = decoder.feed(waiting, |_| {}).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body")
                    })?;
                    self.released = n;
                    if decoder.is_done() {
                        self.expect_head();
                    }
                }
                Expect::Head => {
                    let parsed =
                        request_head::parse(&self.buf[..self.end], self.start, &mut Vec::new());
                    let framing = match parsed {
                        Parsed::Complete(head) => head.framing(),
                        Parsed::Handoff(framing) => framing,
                        Parsed::Partial => return Ok(()),
                        Parsed::Reject(status, message) => {
                            self.refusal = Some(page_bytes(status, message));
                            self.refused.notify_one();
                            return Ok(());
                        }
                    };
                    self.released = framing.end - self.start;
                    self.upgrade_after_body = framing.then == Then::Upgrade;
                    self.expect = match framing.body {
                        _ if framing.then == Then::Opaque => Expect::Opaque,
                        RequestBody::None if self.upgrade_after_body => Expect::AwaitUpgrade,
                        RequestBody::None => Expect::Head,
                        RequestBody::Length(n) => Expect::Length(n),
                        RequestBody::Chunked => Expect::Chunked(ChunkedDecoder::new()),
                    };
                }
            }
        }
        Ok(())
    }

    /// The request's body has passed: the next head, or the answer to an upgrade.
    fn expect_head(&mut self) {
        if self.upgrade_after_body {
            self.expect = Expect::AwaitUpgrade;
            return;
        }
        self.expect = Expect::Head;
        self.idle_since = Instant::now();
    }

    /// hyper writes `data`: the answer to an upgrade request shows whether the protocol switched.
    fn saw_written(&mut self, data: &[u8]) {
        match self.expect {
            Expect::AwaitUpgrade if data.starts_with(b"HTTP/1.1 101 ") => {
                self.expect = Expect::Opaque
            }
            Expect::Head => self.idle_since = Instant::now(),
            _ => {}
        }
    }

    /// Makes room for more bytes: unread ones moved to the front, the buffer grown for a long head.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() && self.buf.len() <= MAX_HEAD {
            self.buf.resize((self.buf.len() * 2).min(MAX_HEAD + 1), 0);
        }
    }

    /// The client's stream (only taken on drop: never missing while hyper polls).
    fn stream(&mut self) -> io::Result<Pin<&mut S>> {
        self.stream
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl<S: ClientStream> AsyncRead for Gate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let gate = self.get_mut();
        loop {
            gate.classify()?;
            if gate.released > 0 {
                let n = gate.released.min(out.remaining());
                out.put_slice(&gate.buf[gate.start..gate.start + n]);
                gate.start += n;
                gate.released -= n;
                return Poll::Ready(Ok(()));
            }
            if gate.refusal.is_some() {
                // hyper is being shut down (`refused`): nothing more to read, but no end of stream
                // either, which would cut short a response still being written.
                return Poll::Pending;
            }
            let waiting_for_head = matches!(gate.expect, Expect::Head);
            gate.make_room();
            if gate.end == gate.buf.len() {
                // Full of bytes hyper may not read yet (after an upgrade request): wait for its answer.
                return Poll::Pending;
            }
            let mut read = ReadBuf::new(&mut gate.buf[gate.end..]);
            let polled = gate
                .stream
                .as_mut()
                .map(|s| Pin::new(s).poll_read(cx, &mut read));
            let n = read.filled().len();
            match polled {
                Some(Poll::Ready(Ok(()))) if n == 0 => return Poll::Ready(Ok(())),
                Some(Poll::Ready(Ok(()))) => gate.end += n,
                Some(Poll::Ready(Err(error))) => return Poll::Ready(Err(error)),
                Some(Poll::Pending) | None => {
                    if waiting_for_head {
                        let deadline = gate.idle_since + gate.head_timeout;
                        ready!(gate.head_timer.poll_passed(cx, deadline));
                        // No complete head in time: end of stream, which hyper closes on — with a 408
                        // first when a head was begun (slowloris), as on the fast path.
                        if gate.start < gate.end {
                            let message = "the request head did not arrive in time";
                            gate.refusal = Some(page_bytes(StatusCode::REQUEST_TIMEOUT, message));
                        }
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: ClientStream> AsyncWrite for Gate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let gate = self.get_mut();
        let written = ready!(gate.stream()?.poll_write(cx, data));
        gate.saw_written(data);
        Poll::Ready(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let gate = self.get_mut();
        let written = ready!(gate.stream()?.poll_write_vectored(cx, bufs));
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            gate.saw_written(first);
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream()?.poll_flush(cx)
    }

    /// Writes a refused head's page first: hyper has finished the responses before it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let gate = self.get_mut();
        while let (Some(page), Some(stream)) = (&mut gate.refusal, &mut gate.stream) {
            if page.is_empty() {
                break;
            }
            let n = ready!(Pin::new(stream).poll_write(cx, page))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            page.drain(..n);
        }
        gate.stream()?.poll_shutdown(cx)
    }
}

impl<S: ClientStream> Drop for Gate<S> {
    fn drop(&mut self) {
        // hyper may stop without shutting the connection down (still deciding between HTTP/1 and h2c, it
        // just stops): a refusal's page is written here then. And the client may have sent bytes nobody
        // read (a refused head, what followed a refused upgrade, pipelined requests after a close):
        // closing now would reset the connection and lose the last answer, so the socket lingers first.
        // (Handed-off connections are few; the fast path's own closes do not come here.)
        let page = self.refusal.take().unwrap_or_default();
        if let Some(mut stream) = self.stream.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if stream.write_all(&page).await.is_ok() {
                    linger_and_close(stream).await;
                }
            });
        }
    }
}
