//! Long-lived and non-HTTP/1 traffic: SSE arrives event by event and counts as a stream, upgraded
//! connections are tunnelled and count as streams, and h2c clients are served.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use slipway_proxy::ProxyOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

#[tokio::test]
async fn sse_events_arrive_one_at_a_time() {
    // The backend sends event 1, then waits until the test has seen it before sending event 2.
    let next = Arc::new(Notify::new());
    let gate = next.clone();
    let sse = backend(move |_req| {
        let gate = gate.clone();
        async move {
            let events = futures_util::stream::unfold(0u8, move |n| {
                let gate = gate.clone();
                async move {
                    match n {
                        0 => Some((Ok(Frame::data(Bytes::from_static(b"data: 1\n\n"))), 1)),
                        1 => {
                            gate.notified().await;
                            Some((Ok(Frame::data(Bytes::from_static(b"data: 2\n\n"))), 2))
                        }
                        _ => None,
                    }
                }
            });
            let mut response = Response::new(StreamBody::new(events).boxed());
            response
                .headers_mut()
                .insert("content-type", "text/event-stream".parse().expect("ct"));
            response
        }
    })
    .await;
    let inst = instance("sse-1", &sse);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;

    let request = Request::get(format!("http://{}/events", p.addr))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let response = client().request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body
        .frame()
        .await
        .expect("frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&first[..], b"data: 1\n\n");
    // While streaming, the response is a stream, not an in-flight request.
    assert_eq!((inst.in_flight(), inst.streams()), (0, 1));
    next.notify_one();
    let second = body
        .frame()
        .await
        .expect("frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&second[..], b"data: 2\n\n");
    while let Some(frame) = body.frame().await {
        frame.expect("trailing frame");
    }
    wait_until("the SSE stream is no longer counted", || {
        inst.streams() == 0
    })
    .await;
}

#[tokio::test]
async fn upgraded_connection_echoes_and_counts_as_stream() {
    let echo = backend(|mut req| async move {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut response = text("");
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert("connection", "upgrade".parse().expect("h"));
        response
            .headers_mut()
            .insert("upgrade", "echo".parse().expect("h"));
        response
    })
    .await;
    let inst = instance("ws-1", &echo);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;

    let mut stream = TcpStream::connect(p.addr).await.expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .expect("write handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "response head too long");
        stream.read_exact(&mut byte).await.expect("read head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");

    for message in [&b"hello"[..], b"through the proxy"] {
        stream.write_all(message).await.expect("write");
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.expect("read echo");
        assert_eq!(back, message);
    }
    assert_eq!((inst.in_flight(), inst.streams()), (0, 1));
    drop(stream);
    wait_until("the upgraded connection is no longer counted", || {
        inst.streams() == 0
    })
    .await;
}

#[tokio::test]
async fn h2c_client_is_forwarded_to_http1_instance() {
    let echo = backend(|req| async move {
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        text(format!("{:?} {host}", req.version()))
    })
    .await;
    let p = proxy(ProxyOptions::default()).await;
    let mut table = one_app("web", vec![group(1, 1, &[&instance("a", &echo)])]);
    std::sync::Arc::make_mut(&mut table.apps[0]).hosts = vec!["localhost".to_owned()];
    p.routes.publish(table).await;

    let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let port = p.addr.port();
    for _ in 0..3 {
        let request = Request::get(format!("http://localhost:{port}/"))
            .body(Full::new(Bytes::new()))
            .expect("req");
        let response = h2.request(request).await.expect("h2 response");
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status(), StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!("HTTP/1.1 localhost:{port}")
        );
    }
}
