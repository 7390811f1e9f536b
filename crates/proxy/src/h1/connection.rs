//! One client connection on the fast path: read a request head into the connection's buffer, serve the
//! exchange (`exchange`), and go on with the next request — or hand the connection to hyper when a request
//! needs what only the hyper path does (see `request_head`). A hand-off happens only between exchanges, so
//! hyper starts on a fresh request, with the bytes already read given back first.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::StatusCode;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tracing::debug;

use crate::h1::deadline::LazyDeadline;
use crate::h1::gate::ClientStream;
use crate::h1::hyper_path::serve_gated;
use crate::h1::request_head::{self, HeaderSpan, MAX_HEAD, Parsed};
use crate::shared::ConnState;

/// The client buffer's starting size: room for a typical head (and pipelined requests after it).
const INPUT_SIZE: usize = 8 * 1024;

/// Bytes received from the client and not yet consumed.
pub(super) struct Input {
    pub(super) buf: Vec<u8>,
    /// Where the current request (or the next one) starts.
    pub(super) start: usize,
    /// End of the bytes received.
    pub(super) end: usize,
}

impl Input {
    fn new() -> Input {
        Input {
            buf: vec![0; INPUT_SIZE],
            start: 0,
            end: 0,
        }
    }

    /// Moves the unread bytes to the front (between requests only: spans of the current head would move).
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Room to read into, growing the buffer for a long head.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() && self.buf.len() <= MAX_HEAD {
            self.buf.resize((self.buf.len() * 2).min(MAX_HEAD + 1), 0);
        }
        &mut self.buf[self.end..]
    }

    pub(super) fn has_room(&self) -> bool {
        self.end < self.buf.len()
    }

    /// Reads what the client sent; `Ok(0)` at end of stream.
    pub(super) fn poll_fill<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(self.spare());
        let polled = Pin::new(stream).poll_read(cx, &mut read);
        let n = read.filled().len();
        match polled {
            Poll::Ready(Ok(())) => {
                self.end += n;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Drops `n` bytes at `at` (request body bytes already forwarded); what follows moves up.
    pub(super) fn remove(&mut self, at: usize, n: usize) {
        if n > 0 {
            self.buf.copy_within(at + n..self.end, at);
            self.end -= n;
        }
    }
}

/// How long an idle keep-alive connection may still send a request once the proxy stops.
const STOP_IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Tells connections the proxy is shutting down: they finish the exchange in progress and close.
///
/// Checking a `CancellationToken` takes a lock, and waiting on it one more per poll; this is checked on
/// every request, so it is a flag, and each connection registers on the token once, only to be woken.
pub(crate) struct StopSignal {
    stopping: AtomicBool,
    token: CancellationToken,
}

impl StopSignal {
    pub(crate) fn new() -> StopSignal {
        StopSignal {
            stopping: AtomicBool::new(false),
            token: CancellationToken::new(),
        }
    }

    /// The flag first, then the wake-up: a woken connection always sees it.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Cancelled on `stop`: for what waits on a token (hyper's connections).
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// A client connection — a plain socket, or a TLS stream after its handshake — and the buffers its
/// exchanges reuse.
pub(super) struct Client<S> {
    pub(super) stream: S,
    pub(super) conn: Arc<ConnState>,
    pub(super) stop: Arc<StopSignal>,
    /// Polled once, while idle, so that `stop` wakes this task; later checks read the flag.
    stop_wait: Pin<Box<WaitForCancellationFutureOwned>>,
    stop_registered: bool,
    pub(super) input: Input,
    /// The current request's headers, as offsets into `input`.
    pub(super) headers: Vec<HeaderSpan>,
    /// Heads being written (to the instance, then to the client).
    pub(super) out: Vec<u8>,
    /// What the instance sends back.
    pub(super) reply: Vec<u8>,
    head_timer: LazyDeadline,
    pub(super) response_timer: LazyDeadline,
    /// For response bodies that go quiet (`stream_idle_timeout`); made on first use.
    pub(super) stream_timer: Option<LazyDeadline>,
    /// When the connection last became idle (waiting for a request head).
    idle_since: Instant,
    /// The client went away during an exchange.
    pub(super) client_gone: bool,
}

/// What waiting for more of a request head gave.
enum HeadRead {
    More,
    /// End of stream, an error, shutdown while idle, or an idle connection's time is up.
    Closed,
    /// A head begun did not arrive whole in time.
    TimedOut,
}

/// After an exchange: serve the next request, or close.
pub(super) enum Next {
    KeepAlive,
    Close,
    /// The request (still unread in the buffer) is served by the hyper path, and so is the rest of the
    /// connection.
    HandOff,
}

/// Serves one accepted client connection until it closes (or `stop`, between requests).
pub(crate) async fn serve_connection<S: ClientStream>(
    stream: S,
    conn: Arc<ConnState>,
    stop: Arc<StopSignal>,
) {
    let now = Instant::now();
    let response_timeout = conn.shared.options.response_timeout;
    let head_timeout = conn.shared.options.head_timeout;
    let mut client = Client {
        stream,
        conn,
        stop_wait: Box::pin(stop.token.clone().cancelled_owned()),
        stop_registered: false,
        stop,
        input: Input::new(),
        headers: Vec::with_capacity(16),
        out: Vec::with_capacity(1024),
        reply: vec![0; super::exchange::REPLY_SIZE],
        head_timer: LazyDeadline::new(now + head_timeout),
        response_timer: LazyDeadline::new(now + response_timeout),
        stream_timer: None,
        idle_since: now,
        client_gone: false,
    };
    if !client.conn.shared.options.fast_path {
        return Box::pin(client.hand_off()).await;
    }
    loop {
        client.input.compact();
        let parsed = if client.input.end == 0 {
            Parsed::Partial
        } else {
            request_head::parse(
                &client.input.buf[..client.input.end],
                0,
                &mut client.headers,
            )
        };
        match parsed {
            Parsed::Complete(head) => {
                crate::busy_poll::traffic_seen();
                let end = head.end;
                match client.exchange(&head).await {
                    Next::KeepAlive => {
                        client.input.start = end;
                        client.idle_since = Instant::now();
                    }
                    Next::Close => return,
                    Next::HandOff => return Box::pin(client.hand_off()).await,
                }
            }
            Parsed::Partial => match client.read_head_bytes().await {
                HeadRead::More => {}
                HeadRead::Closed => return,
                HeadRead::TimedOut => {
                    let message = "the request head did not arrive in time";
                    return client.reject(StatusCode::REQUEST_TIMEOUT, message).await;
                }
            },
            // Boxed: hyper's connection future is large, and a connection that never hands off should not carry
            // its size (it is copied when the task is spawned and when it ends).
            Parsed::Handoff(_) => return Box::pin(client.hand_off()).await,
            Parsed::Reject(status, message) => return client.reject(status, message).await,
        }
    }
}

impl<S: ClientStream> Client<S> {
    /// Waits for more of a request head.
    async fn read_head_bytes(&mut self) -> HeadRead {
        let idle = self.input.end == 0;
        let mut deadline = self.idle_since + self.conn.shared.options.head_timeout;
        poll_fn(|cx| {
            match self.input.poll_fill(&mut self.stream, cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(HeadRead::Closed),
                Poll::Ready(Ok(_)) => return Poll::Ready(HeadRead::More),
                Poll::Ready(Err(error)) => {
                    debug!(%error, "client connection failed");
                    return Poll::Ready(HeadRead::Closed);
                }
                Poll::Pending => {}
            }
            if idle {
                let stopping = self.stop.is_stopping()
                    || (!self.stop_registered && self.stop_wait.as_mut().poll(cx).is_ready());
                self.stop_registered = true;
                if stopping {
                    // The client may be sending its next request right now: closing under it would
                    // fail that request. It gets a moment to send one (answered, with
                    // `Connection: close`); a connection that stays quiet closes then.
                    deadline = deadline.min(Instant::now() + STOP_IDLE_GRACE);
                }
            }
            if self.head_timer.poll_passed(cx, deadline).is_ready() {
                debug!("client sent no complete request head in time");
                // An idle keep-alive connection just closes; a head begun and not finished (slowloris)
                // gets its 408.
                return Poll::Ready(if idle {
                    HeadRead::Closed
                } else {
                    HeadRead::TimedOut
                });
            }
            Poll::Pending
        })
        .await
    }

    /// Serves the rest of the connection with hyper (the hyper path in `forward`), bytes already read
    /// first, every request head still checked here (`gate`); on shutdown, or when a head is refused, lets
    /// hyper finish gracefully.
    async fn hand_off(self) {
        let read = self.input.buf[self.input.start..self.input.end].to_vec();
        serve_gated(read, self.stream, self.conn, &self.stop.token).await;
    }
}
