//! An upgraded connection (WebSocket) between a client and an instance: bytes copied both ways until
//! either side closes, or until neither has sent a byte for the idle limit — so tunnels whose peers
//! vanished without a close do not pile up.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Copies both ways; `Err(TimedOut)` when idle for `idle`.
pub(crate) async fn copy_until_idle<A, B>(a: A, b: B, idle: Duration) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    // Milliseconds after `start` of the last byte read from either side.
    let last = Arc::new(AtomicU64::new(0));
    let mut a = Stamped::new(a, start, Arc::clone(&last));
    let mut b = Stamped::new(b, start, Arc::clone(&last));
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let quiet_until = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            copied = &mut copy => return copied.map(|_| ()),
            () = tokio::time::sleep_until(quiet_until) => {
                // Bytes may have passed meanwhile: then wait on from the newer stamp.
                if start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle <= Instant::now() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
        }
    }
}

/// A connection that notes when it last read a byte.
struct Stamped<T> {
    inner: T,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Stamped<T> {
    fn new(inner: T, start: Instant, last: Arc<AtomicU64>) -> Stamped<T> {
        Stamped { inner, start, last }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stamped<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = u64::try_from(this.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            this.last.store(now, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test(start_paused = true)]
    async fn bytes_keep_a_tunnel_open_and_silence_closes_it() {
        let (client, mut client_far) = duplex(64);
        let (instance, mut instance_far) = duplex(64);
        let tunnel = tokio::spawn(copy_until_idle(client, instance, Duration::from_secs(60)));
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(40)).await;
            client_far.write_all(b"ping").await.expect("write");
            let mut got = [0u8; 4];
            instance_far.read_exact(&mut got).await.expect("relayed");
            assert_eq!(&got, b"ping");
        }
        assert!(!tunnel.is_finished(), "closed while bytes were passing");
        let ended = tunnel.await.expect("joined");
        assert_eq!(ended.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
    }
}
