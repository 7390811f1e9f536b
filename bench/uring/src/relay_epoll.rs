//! The relay over epoll: tokio's current-thread runtime, one task per client connection with its own
//! keep-alive connection to the backend — read, write, read, write per exchange, as the product's fast path.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::frame::{request_end, response_end};

pub fn run(listen: SocketAddr, backend: SocketAddr) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = serve(client, backend).await;
            });
        }
    })
}

async fn serve(mut client: TcpStream, backend: SocketAddr) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut instance = TcpStream::connect(backend).await?;
    instance.set_nodelay(true)?;
    let mut request = Buffer::new(16 * 1024);
    let mut response = Buffer::new(64 * 1024);
    loop {
        let Some(end) = request.fill_until(&mut client, request_end).await? else {
            return Ok(());
        };
        instance.write_all(&request.bytes[..end]).await?;
        request.consume(end);
        let Some(end) = response.fill_until(&mut instance, response_end).await? else {
            return Ok(());
        };
        client.write_all(&response.bytes[..end]).await?;
        response.consume(end);
    }
}

/// Bytes received from one side and not yet passed on.
struct Buffer {
    bytes: Vec<u8>,
    filled: usize,
}

impl Buffer {
    fn new(size: usize) -> Buffer {
        Buffer {
            bytes: vec![0; size],
            filled: 0,
        }
    }

    /// Reads from `from` until `end` finds a whole message; `None` at end of stream.
    async fn fill_until(
        &mut self,
        from: &mut TcpStream,
        end: fn(&[u8]) -> Option<usize>,
    ) -> io::Result<Option<usize>> {
        loop {
            if let Some(end) = end(&self.bytes[..self.filled]) {
                return Ok(Some(end));
            }
            match from.read(&mut self.bytes[self.filled..]).await? {
                0 => return Ok(None),
                n => self.filled += n,
            }
        }
    }

    /// Drops the first `n` bytes (passed on).
    fn consume(&mut self, n: usize) {
        self.bytes.copy_within(n..self.filled, 0);
        self.filled -= n;
    }
}
