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
    let (mut request, mut requested) = (vec![0u8; 16 * 1024], 0);
    let (mut response, mut responded) = (vec![0u8; 64 * 1024], 0);
    loop {
        let end = loop {
            if let Some(end) = request_end(&request[..requested]) {
                break end;
            }
            match client.read(&mut request[requested..]).await? {
                0 => return Ok(()),
                n => requested += n,
            }
        };
        instance.write_all(&request[..end]).await?;
        request.copy_within(end..requested, 0);
        requested -= end;
        let end = loop {
            if let Some(end) = response_end(&response[..responded]) {
                break end;
            }
            match instance.read(&mut response[responded..]).await? {
                0 => return Ok(()),
                n => responded += n,
            }
        };
        client.write_all(&response[..end]).await?;
        response.copy_within(end..responded, 0);
        responded -= end;
    }
}
