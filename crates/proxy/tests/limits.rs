//! The proxy's limits, each answering with its status: 408 for a head that does not arrive in time, 413
//! for a body over the app's limit, 503 for connections over the total or per-client limit — and
//! hundreds of slow clients holding connections open do not stop others being served, with memory per
//! connection bounded. (431 for heads too large is in `smuggling.rs`.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use common::*;
use slipway_proxy::{AppRoute, ProxyOptions, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn status_of(answer: &str) -> &str {
    answer.get(9..12).unwrap_or("")
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_gets_408_and_an_idle_connection_just_closes() {
    let backend = ok_backend().await;
    for fast_path in [true, false] {
        let p = proxy_to_one(
            ProxyOptions {
                head_timeout: Duration::from_millis(300),
                fast_path,
                ..ProxyOptions::default()
            },
            backend.addr,
        )
        .await;
        let slow = send_raw(p.addr, b"GET / HTTP/1.1\r\nHost: app\r\nX-Slow: 1").await;
        assert_eq!(status_of(&slow), "408", "fast path {fast_path}: {slow}");
        let mut idle = TcpStream::connect(p.addr).await.expect("connect");
        assert_eq!(
            read_until_closed(&mut idle).await,
            "",
            "fast path {fast_path}"
        );
        // After a response, the time counts from its end; the connection still closes quietly.
        let mut kept = TcpStream::connect(p.addr).await.expect("connect");
        kept.write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
            .await
            .expect("write");
        let answer = read_until_closed(&mut kept).await;
        assert_eq!(status_of(&answer), "200", "fast path {fast_path}: {answer}");
        assert!(!answer.contains("408"), "fast path {fast_path}: {answer}");
    }
}

#[tokio::test]
async fn a_body_over_the_apps_limit_gets_413_and_never_reaches_the_instance_whole() {
    // Counts the bodies the instance read to their end. (A chunked body is streamed, so the instance
    // may see the head of one that then goes over the limit — never its whole body.)
    let whole = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&whole);
    let backend = backend(move |req: Request<Incoming>| {
        let count = Arc::clone(&count);
        async move {
            if req.into_body().collect().await.is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
            text("ok")
        }
    })
    .await;
    for fast_path in [true, false] {
        let p = proxy(ProxyOptions {
            fast_path,
            ..ProxyOptions::default()
        })
        .await;
        let table = RouteTable::of([AppRoute {
            groups: vec![group(1, 1, &[&instance("a", &backend)])],
            max_body_size: Some(10),
            ..AppRoute::new("web")
        }]);
        p.routes.publish(table).await;
        let before = whole.load(Ordering::SeqCst);
        let post = |headers: &str, body: &str| {
            format!("POST / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n{headers}\r\n{body}")
        };
        for (request, status) in [
            (post("Content-Length: 11\r\n", "hello world"), "413"),
            (
                post(
                    "Transfer-Encoding: chunked\r\n",
                    "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
                ),
                "413",
            ),
            (post("Content-Length: 10\r\n", "helloworld"), "200"),
            (
                post(
                    "Transfer-Encoding: chunked\r\n",
                    "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
                ),
                "200",
            ),
        ] {
            let answer = send_raw(p.addr, request.as_bytes()).await;
            assert_eq!(
                status_of(&answer),
                status,
                "fast path {fast_path}: {request:?} → {answer}"
            );
        }
        // Only the two within the limit reached the instance whole.
        wait_until("the instance has read both bodies", || {
            whole.load(Ordering::SeqCst) - before >= 2
        })
        .await;
        assert_eq!(
            whole.load(Ordering::SeqCst) - before,
            2,
            "fast path {fast_path}"
        );
    }
}

#[tokio::test]
async fn connections_over_the_limits_get_503_and_slots_come_back() {
    let backend = ok_backend().await;
    for (options, allowed) in [
        (
            ProxyOptions {
                max_connections_per_client: 4,
                ..ProxyOptions::default()
            },
            4,
        ),
        (
            ProxyOptions {
                max_connections: 3,
                ..ProxyOptions::default()
            },
            3,
        ),
    ] {
        let p = proxy_to_one(options, backend.addr).await;
        let mut held = Vec::new();
        for _ in 0..allowed {
            // A request answered proves the connection was admitted before the next one is opened.
            let mut stream = TcpStream::connect(p.addr).await.expect("connect");
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0u8; 512];
            let n = stream.read(&mut buf).await.expect("read");
            assert_eq!(&buf[9..12.min(n)], b"200");
            held.push(stream);
        }
        let refused = send_raw(p.addr, b"GET / HTTP/1.1\r\nHost: app\r\n\r\n").await;
        assert_eq!(status_of(&refused), "503", "{refused}");
        drop(held.pop());
        // The slot comes back once the proxy has seen the close.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answer = send_raw(
                p.addr,
                b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
            )
            .await;
            if status_of(&answer) == "200" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slot never came back: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The resident set of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[tokio::test]
async fn hundreds_of_slow_clients_do_not_stop_others_and_cost_little_memory() {
    const SLOW: usize = 400;
    let backend = ok_backend().await;
    let p = proxy_to_one(ProxyOptions::default(), backend.addr).await;
    let c = client();
    // Warm up, so the first request's one-time allocations are not counted against slow clients.
    get(&c, p.addr, "/", &[]).await.expect("warm up");
    let before = rss_bytes();
    let mut slow = Vec::with_capacity(SLOW);
    for i in 0..SLOW {
        let mut stream = TcpStream::connect(p.addr).await.expect("connect");
        // A head begun and never finished (slowloris): each holds a connection and a buffer.
        let part = format!("GET /slow/{i} HTTP/1.1\r\nHost: app\r\nX-Slow: ");
        stream.write_all(part.as_bytes()).await.expect("write");
        slow.push(stream);
    }
    for _ in 0..50 {
        let (status, body) = get(&c, p.addr, "/", &[]).await.expect("served");
        assert_eq!((status.as_u16(), body.as_str()), (200, "ok"));
    }
    let grown = rss_bytes().saturating_sub(before);
    // About 10 KB each in buffers; 64 KB each would mean something holds far more than a head.
    assert!(
        grown < (SLOW as u64) * 64 * 1024,
        "{SLOW} slow connections grew the process by {grown} bytes"
    );
    // None of them reached the instance.
    assert_eq!(backend.hits(), 51);
}

#[tokio::test]
async fn an_event_stream_that_goes_quiet_is_closed_after_the_idle_limit() {
    // An instance that sends one event and then holds the stream open, silent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n8\r\ndata: 1\n\r\n";
            let _ = stream.write_all(head).await;
            held.push(stream);
        }
    });
    let p = proxy_to_one(
        ProxyOptions {
            stream_idle_timeout: Duration::from_millis(300),
            ..ProxyOptions::default()
        },
        addr,
    )
    .await;
    let answer = send_raw(p.addr, b"GET /events HTTP/1.1\r\nHost: app\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("data: 1"),
        "{answer}"
    );
    // Cut short: the last chunk never came, so the client can tell the stream did not end normally.
    assert!(!answer.ends_with("0\r\n\r\n"), "{answer}");
    silent.abort();
}
