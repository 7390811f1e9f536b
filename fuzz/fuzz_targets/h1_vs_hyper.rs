//! Differential: the proxy's framing decision against hyper's, on the same bytes. Whenever the proxy's
//! parser accepts a request (to serve it, or to hand it to hyper) and the body it frames is complete in
//! the input, hyper — reading the same head, the body as the proxy framed it, and a sentinel request
//! right after — must see the same payload, and then the sentinel as the next
//! request (when it reads one). Where they differ, one of them would read the next request from the middle of this one's
//! body: the gate (`h1/gate.rs`) relies on this never happening. hyper may refuse what the proxy accepts
//! (it is then stricter, which cannot desynchronise anything); the proxy refusing what hyper accepts is
//! the point of it.
#![no_main]

use std::cell::RefCell;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use libfuzzer_sys::fuzz_target;
use slipway_proxy::fuzzing::{ChunkedDecoder, ParsedRequest, RequestBody, parse_request_head};
use tokio::io::AsyncWriteExt;

const SENTINEL: &[u8] = b"GET /sentinel HTTP/1.1\r\nHost: s\r\n\r\n";

thread_local! {
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"),
    );
}

/// What hyper's server handed to its service: (method, target, payload) per request.
type Seen = Arc<Mutex<Vec<(String, String, Result<Vec<u8>, ()>)>>>;

fuzz_target!(|data: &[u8]| {
    let (end, body) = match parse_request_head(data, 0) {
        ParsedRequest::Complete(head) => (head.end, head.body),
        ParsedRequest::Handoff { end, body, then } => {
            // After an upgrade or the h2c preface the bytes are not HTTP/1 requests any more.
            if then != slipway_proxy::fuzzing::Then::Requests {
                return;
            }
            (end, body)
        }
        ParsedRequest::Partial | ParsedRequest::Reject(..) => return,
    };
    // The message as the proxy frames it: head, then the body up to where the proxy says it ends.
    let rest = &data[end..];
    let (body_len, payload) = match body {
        RequestBody::None => (0, Vec::new()),
        RequestBody::Length(n) => match usize::try_from(n) {
            Ok(n) if n <= rest.len() => (n, rest[..n].to_vec()),
            _ => return,
        },
        RequestBody::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut payload = Vec::new();
            match decoder.feed(rest, |d| payload.extend_from_slice(d)) {
                Ok(used) if decoder.is_done() => (used, payload),
                _ => return,
            }
        }
    };
    let head = std::str::from_utf8(&data[..end]).ok();
    let mut wire = data[..end + body_len].to_vec();
    wire.extend_from_slice(SENTINEL);

    let seen: Seen = Arc::default();
    RUNTIME.with(|rt| rt.borrow().block_on(serve_once(wire, seen.clone())));
    let seen = seen.lock().expect("seen");
    if seen.is_empty() {
        // hyper refused the head: stricter than the proxy here, which cannot desynchronise anything.
        return;
    }
    let (method, target, got) = &seen[0];
    let Ok(got) = got else {
        // hyper could not read the body the proxy framed whole: stricter, same as above.
        return;
    };
    assert_eq!(got, &payload, "hyper read another payload for {head:?}");
    assert!(
        !method.is_empty() && !target.is_empty(),
        "hyper read no request line for {head:?}"
    );
    // hyper may close after this request (HTTP/1.0, `Connection: close`), but if it reads another one,
    // it is the sentinel, where the proxy says the next request starts — never bytes of this body.
    let next: Vec<&str> = seen[1..].iter().map(|s| s.1.as_str()).collect();
    assert!(
        next.is_empty() || next == ["/sentinel"],
        "after {head:?} hyper read {next:?} where the proxy reads the sentinel"
    );
});

/// Serves `wire` with hyper's HTTP/1 server (as the hand-off does) and records what it read.
async fn serve_once(wire: Vec<u8>, seen: Seen) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let method = req.method().to_string();
            let target = req.uri().to_string();
            let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec());
            seen.lock().expect("seen").push((method, target, body.map_err(|_| ())));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    // Half-close: the end of the client's bytes must not stop hyper before it has read all of them.
    let connection = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(hyper_util::rt::TokioIo::new(server), service);
    let mut client = client;
    let writer = async move {
        let _ = client.write_all(&wire).await;
        // Keep the client side open until hyper is done with what it was sent; then close it.
        let _ = client.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink).await;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        tokio::join!(connection, writer)
    })
    .await;
}
