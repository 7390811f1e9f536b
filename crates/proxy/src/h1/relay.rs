//! Relaying a response body from the instance to the client as it arrives, by its framing: exactly
//! `Content-Length` bytes, chunked bodies verbatim up to their last chunk, and bodies that end when the
//! instance closes re-framed as chunks (so the client connection stays open). Each read is written on at
//! once, so streams (SSE) are never held back.
//!
//! The instance connection can be pooled again only if the response ended exactly where its framing said
//! (bytes beyond it would be read as the next response).

use std::io::IoSlice;

use tokio::time::Instant;

use crate::h1::chunked::ChunkedDecoder;
use crate::h1::connection::Client;
use crate::h1::deadline::LazyDeadline;
use crate::h1::gate::ClientStream;
use crate::h1::response_head::{ResponseBody, ResponseHead};
use crate::h1::socket_io::{Waited, wait_instance, write_all, write_head_and};
use crate::instance_socket::InstanceSocket;
use crate::shadow::PrimaryTap;

/// How relaying the body went.
pub(super) enum Relayed {
    /// The whole response reached the client; the connection can be pooled again if `reusable`.
    Complete { reusable: bool },
    /// Cut short (by the instance or the client): the client connection closes.
    Broken,
}

impl<S: ClientStream> Client<S> {
    /// Sends the response head (in `out`) and its body: `reply[response.end..filled]` first, then the rest
    /// as the instance sends it. `tap` sees the payload (a mirrored request's primary side).
    pub(super) async fn relay(
        &mut self,
        socket: &mut InstanceSocket,
        response: &ResponseHead,
        filled: usize,
        tap: &mut Option<Box<PrimaryTap>>,
    ) -> Relayed {
        let mut observe = |data: &[u8]| {
            if let Some(tap) = tap {
                tap.observe(data);
            }
        };
        let mut part = response.end..filled;
        match response.body {
            ResponseBody::Empty => {
                let mut slices = [IoSlice::new(&self.out)];
                if write_all(&mut self.stream, &mut slices).await.is_err() {
                    return Relayed::Broken;
                }
                Relayed::Complete {
                    reusable: part.is_empty(),
                }
            }
            ResponseBody::Length(length) => {
                let mut left = length;
                loop {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(part.len());
                    let data = &self.reply[part.start..part.start + take];
                    observe(data);
                    if write_head_and(&mut self.stream, &mut self.out, data)
                        .await
                        .is_err()
                    {
                        return Relayed::Broken;
                    }
                    left -= take as u64;
                    if left == 0 {
                        return Relayed::Complete {
                            reusable: take == part.len(),
                        };
                    }
                    match self.read_more(socket).await {
                        Some(n) => part = 0..n,
                        None => return Relayed::Broken,
                    }
                }
            }
            ResponseBody::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                loop {
                    let Ok(used) = decoder.feed(&self.reply[part.clone()], &mut observe) else {
                        return Relayed::Broken;
                    };
                    let data = &self.reply[part.start..part.start + used];
                    if write_head_and(&mut self.stream, &mut self.out, data)
                        .await
                        .is_err()
                    {
                        return Relayed::Broken;
                    }
                    if decoder.is_done() {
                        return Relayed::Complete {
                            reusable: used == part.len(),
                        };
                    }
                    match self.read_more(socket).await {
                        Some(n) => part = 0..n,
                        None => return Relayed::Broken,
                    }
                }
            }
            ResponseBody::UntilClose => {
                let mut head: &[u8] = &self.out;
                loop {
                    let data = &self.reply[part.clone()];
                    observe(data);
                    let mut size = [0u8; 18];
                    let size = chunk_size_line(data.len(), &mut size);
                    let (size, crlf): (&[u8], &[u8]) = if data.is_empty() {
                        (&[], &[])
                    } else {
                        (size, b"\r\n")
                    };
                    let mut slices = [
                        IoSlice::new(head),
                        IoSlice::new(size),
                        IoSlice::new(data),
                        IoSlice::new(crlf),
                    ];
                    if write_all(&mut self.stream, &mut slices).await.is_err() {
                        return Relayed::Broken;
                    }
                    head = &[];
                    match self.read_more(socket).await {
                        Some(n) => part = 0..n,
                        None => {
                            // Only the instance closing ends such a body: that is its end, not a failure,
                            // unless the client is the one that went away.
                            let mut last = [IoSlice::new(b"0\r\n\r\n")];
                            if self.client_gone
                                || write_all(&mut self.stream, &mut last).await.is_err()
                            {
                                return Relayed::Broken;
                            }
                            return Relayed::Complete { reusable: false };
                        }
                    }
                }
            }
        }
    }

    /// The next bytes of the body into the start of `reply`; `None` when the instance closed or failed,
    /// or the client went away (`client_gone`).
    async fn read_more(&mut self, socket: &mut InstanceSocket) -> Option<usize> {
        // A body the instance stops sending (an event stream gone quiet) ends after the idle limit.
        let idle_until = Instant::now() + self.conn.shared.options.stream_idle_timeout;
        let timer = self
            .stream_timer
            .get_or_insert_with(|| LazyDeadline::new(idle_until));
        let waited = wait_instance(
            &mut socket.stream,
            &mut self.reply,
            &mut self.stream,
            &mut self.input,
            Some((timer, idle_until)),
        )
        .await;
        match waited {
            Waited::Read(Ok(n)) if n > 0 => Some(n),
            Waited::ClientGone => {
                self.client_gone = true;
                None
            }
            _ => None,
        }
    }
}

/// `len` in hex followed by CRLF: a chunk's size line.
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 16;
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_lines_are_hex() {
        let mut buf = [0u8; 18];
        assert_eq!(chunk_size_line(0, &mut buf), b"0\r\n");
        assert_eq!(chunk_size_line(255, &mut buf), b"ff\r\n");
        assert_eq!(
            chunk_size_line(usize::MAX, &mut buf),
            b"ffffffffffffffff\r\n"
        );
    }
}
