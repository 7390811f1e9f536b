//! The proxy's own answers on the fast path: its pages (404, 502, 503, 504 and 400/431 for heads that
//! cannot be read), written as the hyper path writes them (`pages`), and counted against the target's
//! release when an instance was picked.

use std::io::IoSlice;
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::admission::Full;
use crate::h1::connection::{Client, Next};
use crate::h1::gate::ClientStream;
use crate::h1::request_head::{RequestBody, RequestHead};
use crate::h1::response_head::put_header;
use crate::h1::socket_io::write_all;
use crate::http_date;
use crate::pages;
use crate::release_metrics::micros_since;
use crate::route_table::Target;
use crate::shadow::PrimaryTap;

impl<S: ClientStream> Client<S> {
    /// Answers with one of the proxy's pages (before any instance was asked, or after it failed). A
    /// request body that was not read closes the connection: its bytes cannot be told from the next request.
    pub(super) async fn page(
        &mut self,
        head: &RequestHead,
        status: StatusCode,
        message: &str,
    ) -> Next {
        let close = self.closes_after(head) || head.body != RequestBody::None;
        self.write_page(status, message, close).await
    }

    /// Answers a head that cannot be read, and closes: where the next request would start is unknown.
    pub(super) async fn reject(mut self, status: StatusCode, message: &str) {
        if let Next::Close = self.write_page(status, message, true).await {
            linger_and_close(self.stream).await;
        }
    }

    async fn write_page(&mut self, status: StatusCode, message: &str, close: bool) -> Next {
        let text = pages::text(status, message);
        write_page_head(&mut self.out, status, text.len(), close);
        let mut slices = [IoSlice::new(&self.out), IoSlice::new(text.as_bytes())];
        match write_all(&mut self.stream, &mut slices).await {
            Ok(()) if !close => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    /// A proxy error page after a pick, counted as a failure of the target's release (and the primary side
    /// of a mirrored request).
    pub(super) async fn failed(
        &mut self,
        head: &RequestHead,
        target: &Target,
        arrived: Instant,
        tap: Option<Box<PrimaryTap>>,
        status: StatusCode,
        message: &str,
    ) -> Next {
        let micros = micros_since(arrived.into_std());
        target.metrics.record_failure(status.as_u16(), micros);
        if let Some(mut tap) = tap {
            tap.head(status, micros);
            tap.end(false);
        }
        self.page(head, status, message).await
    }
}

/// A page's head (its text follows), as the hyper path writes pages.
fn write_page_head(out: &mut Vec<u8>, status: StatusCode, text_len: usize, close: bool) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    put_header(out, b"content-type", pages::CONTENT_TYPE_VALUE.as_bytes());
    put_header(out, b"cache-control", pages::CACHE_CONTROL_VALUE.as_bytes());
    put_header(out, b"content-length", text_len.to_string().as_bytes());
    put_header(out, b"date", &http_date::now());
    if close {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// The whole page refusing a request, closing the connection.
pub(crate) fn page_bytes(status: StatusCode, message: &str) -> Vec<u8> {
    let text = pages::text(status, message);
    let mut page = Vec::with_capacity(256 + text.len());
    write_page_head(&mut page, status, text.len(), true);
    page.extend_from_slice(text.as_bytes());
    page
}

/// Closes a connection after its last answer. The client may still be sending (a huge head): what it
/// sends is read and dropped for a moment, since closing with unread bytes would reset the connection
/// before the client reads the answer.
pub(crate) async fn linger_and_close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    const LINGER: Duration = Duration::from_secs(2);
    if stream.shutdown().await.is_ok() {
        let mut discard = [0u8; 4096];
        let drain = async {
            while let Ok(n) = stream.read(&mut discard).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

/// Answers a connection over a limit (`admission`) with a 503 and closes it, without reading a request.
pub(crate) async fn refuse_connection(mut stream: TcpStream, full: Full) {
    let message = match full {
        Full::Total => "the proxy holds as many connections as it may; try again shortly",
        Full::Client => "too many connections from your address; try again shortly",
    };
    let page = page_bytes(StatusCode::SERVICE_UNAVAILABLE, message);
    let write = tokio::time::timeout(Duration::from_millis(500), stream.write_all(&page));
    if matches!(write.await, Ok(Ok(()))) {
        linger_and_close(stream).await;
    }
}
