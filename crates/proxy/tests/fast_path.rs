//! The HTTP/1.1 fast path's edge cases, through raw sockets on both sides where the bytes matter:
//! pipelining, chunked bodies both ways, bodies that end with the connection, `Connection: close` from
//! either side, connections closed under a request (retry only when safe), HEAD/204/304 and 1xx, clear
//! 400/431 answers to heads that cannot be read, and the hand-off to hyper (an upgrade after plain
//! requests).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use slipway_proxy::{Backend, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What a scripted instance does with the n-th request (0-based) on a connection, given its head.
enum Script {
    Reply(Vec<u8>),
    /// Reply, then close the connection.
    ReplyAndClose(Vec<u8>),
    /// Close without answering.
    Close,
}

/// A hand-written HTTP/1.1 instance following `script`; counts accepted connections; stopped on drop.
struct ScriptedInstance {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Drop for ScriptedInstance {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn scripted<F>(script: F) -> ScriptedInstance
where
    F: Fn(&str, usize) -> Script + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let (count, token, script) = (accepted.clone(), stop.clone(), Arc::new(script));
    tokio::spawn(async move {
        loop {
            let mut stream = tokio::select! {
                () = token.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
            };
            count.fetch_add(1, Ordering::SeqCst);
            let (token, script) = (token.clone(), script.clone());
            tokio::spawn(async move {
                let serve = async {
                    let mut pending = Vec::new();
                    for n in 0.. {
                        let Some(head) = read_request(&mut stream, &mut pending).await else {
                            return;
                        };
                        let (reply, close) = match script(&head, n) {
                            Script::Reply(reply) => (reply, false),
                            Script::ReplyAndClose(reply) => (reply, true),
                            Script::Close => return,
                        };
                        if stream.write_all(&reply).await.is_err() || close {
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = token.cancelled() => {}
                    () = serve => {}
                }
            });
        }
    });
    ScriptedInstance {
        addr,
        accepted,
        stop,
    }
}

/// Reads one request (head, and a `Content-Length` body) from `stream`; `None` at end of stream.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            while pending.len() < end + 4 + length {
                let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
                pending.extend_from_slice(&buf[..n]);
            }
            pending.drain(..end + 4 + length);
            return Some(head);
        }
        let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        pending.extend_from_slice(&buf[..n]);
    }
}

async fn proxy_to(name: &str, addr: SocketAddr) -> (TestProxy, Arc<Backend>) {
    let inst = Backend::new(name, addr);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    (p, inst)
}

/// Sends `raw` on a new connection and reads until the proxy closes it.
async fn raw_round_trip(proxy: SocketAddr, raw: &[&[u8]]) -> String {
    let mut stream = TcpStream::connect(proxy).await.expect("connect");
    for part in raw {
        stream.write_all(part).await.expect("write");
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads one response with a `Content-Length` body (or none, for a 101) from a kept connection.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        let read =
            tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut byte)).await;
        read.expect("response head in time").expect("read head");
        seen.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("read body");
    (head, String::from_utf8_lossy(&body).into_owned())
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let be = backend(|req| async move { text(req.uri().path().to_owned()) }).await;
    let (p, inst) = proxy_to("web-1", be.addr).await;
    let answer = raw_round_trip(
        p.addr,
        &[b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"],
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
    let (one, two, three) = (
        answer.find("/one").expect("one"),
        answer.find("/two").expect("two"),
        answer.find("/three").expect("three"),
    );
    assert!(one < two && two < three, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn chunked_request_body_reaches_the_instance_whole() {
    let be = echo_backend().await;
    let (p, _inst) = proxy_to("web-1", be.addr).await;
    let answer = raw_round_trip(
        p.addr,
        &[
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhel",
            b"lo\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        ],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("hello world"), "{answer}");
}

#[tokio::test]
async fn bodies_on_either_side_of_the_copy_behind_the_head_arrive_whole() {
    // Up to 4 KiB of body goes out in one write with its head (copied behind it), more as a second
    // slice: echoed both ways on one kept connection, every byte must arrive in order, once.
    let be = echo_backend().await;
    let (p, inst) = proxy_to("web-1", be.addr).await;
    let mut stream = TcpStream::connect(p.addr).await.expect("connect");
    for size in [0, 1, 4095, 4096, 4097, 70_000] {
        let body: String = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let request =
            format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n{body}");
        stream.write_all(request.as_bytes()).await.expect("write");
        let (head, echoed) = read_response(&mut stream).await;
        assert!(head.starts_with("http/1.1 200 ok"), "{size}: {head}");
        assert!(echoed == body, "{size}: {} bytes back", echoed.len());
    }
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn malformed_chunked_request_body_is_400() {
    let be = ok_backend().await;
    let (p, inst) = proxy_to("web-1", be.addr).await;
    let answer = raw_round_trip(
        p.addr,
        &[b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn chunked_and_close_delimited_responses_are_relayed() {
    let raw = scripted(|head, _| {
        if head.starts_with("GET /chunked ") {
            Script::Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n".to_vec())
        } else {
            Script::ReplyAndClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end".to_vec())
        }
    })
    .await;
    let (p, inst) = proxy_to("raw-1", raw.addr).await;
    let c = client();
    for _ in 0..2 {
        assert_eq!(
            get(&c, p.addr, "/chunked", &[]).await,
            Ok((StatusCode::OK, "abcdefg".to_owned()))
        );
    }
    assert_eq!(
        raw.accepted.load(Ordering::SeqCst),
        1,
        "chunked responses keep the connection"
    );
    for _ in 0..2 {
        assert_eq!(
            get(&c, p.addr, "/close", &[]).await,
            Ok((StatusCode::OK, "until the end".to_owned()))
        );
    }
    // The first close-delimited body ended the chunked responses' connection, the second its own.
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn instance_connection_close_is_not_pooled() {
    let raw = scripted(|_, _| {
        Script::ReplyAndClose(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        )
    })
    .await;
    let (p, inst) = proxy_to("raw-1", raw.addr).await;
    // One client connection throughout: the instance's `Connection: close` is not the client's.
    let mut stream = TcpStream::connect(p.addr).await.expect("connect");
    for _ in 0..3 {
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
            .await
            .expect("write");
        let (head, body) = read_response(&mut stream).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection"), "{head}");
        assert_eq!(body, "ok");
    }
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(inst.in_flight(), 0);
}

/// An instance whose every connection answers its first request ("ok"), then reads the next one and
/// closes without an answer: the keep-alive race, on demand.
async fn closes_under_the_second_request() -> ScriptedInstance {
    scripted(|_, n| {
        if n == 0 {
            Script::Reply(ok("ok"))
        } else {
            Script::Close
        }
    })
    .await
}

#[tokio::test]
async fn connection_closed_under_a_request_is_retried_only_when_safe() {
    // Each connection answers its first request, then reads the next one and closes without an answer.
    let raw = closes_under_the_second_request().await;
    let (p, inst) = proxy_to("raw-1", raw.addr).await;
    let c = client();
    let post = |body: &'static str| {
        Request::post(format!("http://{}/", p.addr))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request")
    };
    let first = c.request(post("a")).await.expect("first");
    assert_eq!(first.status(), StatusCode::OK);
    first.into_body().collect().await.expect("body");
    // The instance may have acted on the POST before closing: not retried.
    let second = c.request(post("b")).await.expect("second");
    assert_eq!(second.status(), StatusCode::BAD_GATEWAY);
    let page = second.into_body().collect().await.expect("page").to_bytes();
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("failed before sending a response"), "{page}");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 1);

    // A GET is idempotent: sent again on a new connection, whose first request is answered.
    assert_eq!(
        get(&c, p.addr, "/", &[]).await,
        Ok((StatusCode::OK, "ok".to_owned()))
    );
    assert_eq!(
        get(&c, p.addr, "/", &[]).await,
        Ok((StatusCode::OK, "ok".to_owned()))
    );
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn the_hyper_path_replays_like_the_fast_path() {
    // HTTP/1.0 requests go through hyper. Each instance connection answers its first request, then
    // closes under the next one — the keep-alive race, at once rather than after a long idle time.
    let raw = closes_under_the_second_request().await;
    let (p, inst) = proxy_to("raw-1", raw.addr).await;
    let get = b"GET / HTTP/1.0\r\nHost: app\r\n\r\n";
    let first = raw_round_trip(p.addr, &[get]).await;
    assert!(first.starts_with("HTTP/1.0 200"), "{first}");
    // The pooled connection closes under the second GET: one rule for both paths, so it is replayed
    // on a new connection instead of failing.
    let second = raw_round_trip(p.addr, &[get]).await;
    assert!(second.starts_with("HTTP/1.0 200"), "{second}");
    assert!(second.ends_with("ok"), "{second}");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
    // A POST may have been acted on: never replayed, on this path either.
    let post = b"POST / HTTP/1.0\r\nHost: app\r\nContent-Length: 1\r\n\r\nx";
    let third = raw_round_trip(p.addr, &[post]).await;
    assert!(third.starts_with("HTTP/1.0 502"), "{third}");
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn head_204_304_and_interim_responses_keep_the_connection() {
    let raw = scripted(|head, _| {
        let reply: &[u8] = if head.starts_with("HEAD ") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        } else if head.starts_with("GET /no-content ") {
            b"HTTP/1.1 204 No Content\r\n\r\n"
        } else if head.starts_with("GET /not-modified ") {
            b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
        } else if head.starts_with("GET /hints ") {
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        };
        Script::Reply(reply.to_vec())
    })
    .await;
    let (p, inst) = proxy_to("raw-1", raw.addr).await;
    let c = client();
    let head = send(&c, p.addr, Method::HEAD, "/", &[]).await;
    assert_eq!((head.status, head.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(head.headers["content-length"], "5");
    let no_content = send(&c, p.addr, Method::GET, "/no-content", &[]).await;
    assert_eq!(no_content.status, StatusCode::NO_CONTENT);
    let not_modified = send(&c, p.addr, Method::GET, "/not-modified", &[]).await;
    assert_eq!(
        (not_modified.status, not_modified.body.as_str()),
        (StatusCode::NOT_MODIFIED, "")
    );
    let hints = send(&c, p.addr, Method::GET, "/hints", &[]).await;
    assert_eq!(
        (hints.status, hints.body.as_str()),
        (StatusCode::OK, "hints")
    );
    assert_eq!(
        get(&c, p.addr, "/", &[]).await,
        Ok((StatusCode::OK, "hello".to_owned()))
    );
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn ambiguous_response_framing_is_502() {
    let raw = scripted(|_, _| {
        Script::Reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok".to_vec(),
        )
    })
    .await;
    let (p, inst) = proxy_to("raw-1", raw.addr).await;
    let (status, body) = get(&client(), p.addr, "/", &[]).await.expect("answer");
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body.contains("instance raw-1") && body.contains("Content-Length"),
        "{body}"
    );
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn malformed_and_oversized_heads_get_clear_answers() {
    let be = ok_backend().await;
    let (p, _inst) = proxy_to("web-1", be.addr).await;
    let answer = raw_round_trip(p.addr, &[b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"]).await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
    assert!(answer.contains("malformed request head"), "{answer}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(512 * 1024)
    );
    let answer = raw_round_trip(p.addr, &[huge.as_bytes()]).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = raw_round_trip(
        p.addr,
        &[format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(be.hits(), 0);
}

#[tokio::test]
async fn a_connection_moves_to_hyper_for_an_upgrade_after_plain_requests() {
    let echo = backend(|mut req| async move {
        if req.headers().get("upgrade").is_none() {
            return text("plain");
        }
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 256];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut response = text("");
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert("connection", "upgrade".parse().expect("h"));
        headers.insert("upgrade", "echo".parse().expect("h"));
        response
    })
    .await;
    let (p, inst) = proxy_to("ws-1", echo.addr).await;
    let mut stream = TcpStream::connect(p.addr).await.expect("connect");
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .expect("write");
        let (head, body) = read_response(&mut stream).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(body, "plain");
    }
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("write handshake");
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    stream.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.expect("echo");
    assert_eq!(&back, b"ping");
    assert_eq!((inst.in_flight(), inst.streams()), (0, 1));
    drop(stream);
    wait_until("the tunnel is no longer counted", || inst.streams() == 0).await;
}

#[tokio::test]
async fn idle_keep_alive_connections_close_at_shutdown() {
    let be = ok_backend().await;
    let (mut p, _inst) = proxy_to("web-1", be.addr).await;
    let mut stream = TcpStream::connect(p.addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200") && body == "ok", "{head}");
    p.shutdown.cancel();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed at shutdown")
        .expect("read");
    assert!(rest.is_empty());
    let serve = p.task.take().expect("serve task");
    tokio::time::timeout(Duration::from_secs(20), serve)
        .await
        .expect("serve returns")
        .expect("serve task")
        .expect("serve result");
}
