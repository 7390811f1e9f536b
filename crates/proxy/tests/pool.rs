//! The keep-alive pool to instances, seen from outside: connections are reused, instances that close them
//! cause no client-visible failure, idle ones expire, and a backend that leaves the table closes its own.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use slipway_proxy::{ProxyOptions, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn connection_is_reused_across_sequential_requests() {
    let be = ok_backend().await;
    let inst = instance("web-1", &be);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(
            get(&c, p.addr, "/", &[]).await,
            Ok((StatusCode::OK, "ok".to_owned()))
        );
    }
    assert_eq!(be.hits(), 20);
    assert_eq!(be.accepted(), 1);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn body_less_responses_reuse_the_connection() {
    let be = backend(|req| async move {
        let mut response = text("");
        if req.uri().path() == "/no-content" {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        response
    })
    .await;
    let inst = instance("web-1", &be);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    for path in ["/no-content", "/empty", "/no-content", "/empty"] {
        let (status, body) = get(&c, p.addr, path, &[]).await.expect("response");
        assert!(status.is_success() && body.is_empty(), "{status} {body:?}");
    }
    // HEAD: the instance sends a content-length but no body.
    let head = Request::head(format!("http://{}/", p.addr))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let response = c.request(head).await.expect("head");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(be.hits(), 5);
    assert_eq!(be.accepted(), 1);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn request_bodies_are_forwarded_on_pooled_connections() {
    let be = echo_backend().await;
    let inst = instance("web-1", &be);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    for i in 0..5 {
        let request = Request::post(format!("http://{}/", p.addr))
            .body(Full::new(Bytes::from(format!("payload {i}"))))
            .expect("req");
        let response = c.request(request).await.expect("response");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], format!("payload {i}").as_bytes());
    }
    assert_eq!(be.accepted(), 1);
}

/// How a raw instance treats its keep-alive connections.
#[derive(Clone, Copy)]
enum Rude {
    /// Closes each connection right after its first response, without saying `Connection: close`.
    CloseAfterResponse,
    /// Keeps the connection after the first response, then closes it on the next request unanswered.
    DropSecondRequest,
}

/// A hand-written HTTP/1.1 instance answering "ok", counting accepted connections and requests it closed
/// a connection under without an answer; stopped on drop.
struct RawInstance {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    unanswered: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Drop for RawInstance {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn raw_instance(rude: Rude) -> RawInstance {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let (count, token, dropped) = (accepted.clone(), stop.clone(), unanswered.clone());
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = token.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
            };
            count.fetch_add(1, Ordering::SeqCst);
            let (token, dropped) = (token.clone(), dropped.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    () = serve_rudely(stream, rude, &dropped) => {}
                }
            });
        }
    });
    RawInstance {
        addr,
        accepted,
        unanswered,
        stop,
    }
}

async fn serve_rudely(mut stream: TcpStream, rude: Rude, unanswered: &AtomicUsize) {
    if !read_head(&mut stream).await {
        return;
    }
    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    if stream.write_all(reply).await.is_err() {
        return;
    }
    if let Rude::DropSecondRequest = rude
        && read_head(&mut stream).await
    {
        unanswered.fetch_add(1, Ordering::SeqCst);
    }
    // Dropping the stream closes it.
}

/// Reads until the end of a request head (these requests have no body); false on EOF.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test]
async fn instance_closing_keep_alive_connections_fails_no_request() {
    let raw = raw_instance(Rude::CloseAfterResponse).await;
    let inst = slipway_proxy::Backend::new("rude-1", raw.addr);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    for i in 0..30 {
        assert_eq!(
            get(&c, p.addr, "/", &[]).await,
            Ok((StatusCode::OK, "ok".to_owned())),
            "request {i}"
        );
    }
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 30);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn request_lost_on_a_stale_connection_is_replayed_on_a_new_one() {
    let raw = raw_instance(Rude::DropSecondRequest).await;
    let inst = slipway_proxy::Backend::new("rude-1", raw.addr);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    for i in 0..3 {
        assert_eq!(
            get(&c, p.addr, "/", &[]).await,
            Ok((StatusCode::OK, "ok".to_owned())),
            "request {i}"
        );
        // Let the pooled connection age past the point where the proxy keeps a copy for a replay.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Each later request went first to the previous (now dropping) connection, then to a new one.
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(inst.in_flight(), 0);
}

/// The hyper path (here for an h2c client) follows the fast path's rule: an idempotent request whose
/// pooled connection closed before any byte of a response is replayed at once, however briefly the
/// connection sat idle; a POST that may have reached the instance is not.
#[tokio::test]
async fn hyper_path_replays_only_idempotent_requests_lost_on_a_pooled_connection() {
    let raw = raw_instance(Rude::DropSecondRequest).await;
    let inst = slipway_proxy::Backend::new("rude-1", raw.addr);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let h2: TestClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let send = |method: Method| {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}/", p.addr))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let h2 = h2.clone();
        async move {
            let response = h2.request(request).await.expect("h2 response");
            assert_eq!(response.version(), Version::HTTP_2);
            let status = response.status();
            response.into_body().collect().await.expect("body");
            status
        }
    };
    for i in 0..4 {
        assert_eq!(send(Method::GET).await, StatusCode::OK, "request {i}");
    }
    // Each GET after the first went to the previous connection, which closed under it, then to a new one.
    assert_eq!(raw.unanswered.load(Ordering::SeqCst), 3);
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 4);

    // The body-less POST meets the same fate, but the instance may have acted on it: not replayed.
    assert_eq!(send(Method::POST).await, StatusCode::BAD_GATEWAY);
    assert_eq!(raw.unanswered.load(Ordering::SeqCst), 4);
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 4);
    assert_eq!(inst.in_flight(), 0);
}

#[tokio::test]
async fn idle_connections_expire() {
    let be = ok_backend().await;
    let inst = instance("web-1", &be);
    let idle = Duration::from_millis(200);
    let p = proxy(ProxyOptions {
        idle_pool_timeout: idle,
        ..ProxyOptions::default()
    })
    .await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    assert!(get(&c, p.addr, "/", &[]).await.is_ok());
    assert_eq!(be.accepted(), 1);
    // Past the idle timeout, the pooled connection is not used again, and gets closed.
    tokio::time::sleep(idle * 2).await;
    assert!(get(&c, p.addr, "/", &[]).await.is_ok());
    assert_eq!(be.accepted(), 2);
    wait_until("the expired connection is closed", || be.open() == 1).await;
}

#[tokio::test]
async fn dropped_backend_closes_its_idle_connections() {
    let be = ok_backend().await;
    let inst = instance("web-1", &be);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let c = client();
    assert!(get(&c, p.addr, "/", &[]).await.is_ok());
    assert_eq!(be.open(), 1);
    p.routes.publish(RouteTable::default()).await;
    drop(inst);
    wait_until("the idle connection is closed", || be.open() == 0).await;
}

#[tokio::test]
async fn client_that_leaves_mid_body_does_not_poison_the_pool() {
    // An instance whose body never ends: the client gives up; the next request must not get that
    // connection.
    let be = backend(|req| async move {
        if req.uri().path() == "/endless" {
            let stream = futures_util::stream::pending::<
                Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
            >();
            let body = http_body_util::StreamBody::new(stream);
            return http::Response::new(body.boxed());
        }
        text("ok")
    })
    .await;
    let inst = instance("web-1", &be);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&inst])]))
        .await;
    let endless = client()
        .request(
            Request::get(format!("http://{}/endless", p.addr))
                .body(Full::new(Bytes::new()))
                .expect("req"),
        )
        .await
        .expect("headers");
    assert_eq!(endless.status(), StatusCode::OK);
    drop(endless);
    wait_until("the abandoned request is no longer in flight", || {
        inst.in_flight() == 0
    })
    .await;
    let c = client();
    assert_eq!(
        get(&c, p.addr, "/", &[]).await,
        Ok((StatusCode::OK, "ok".to_owned()))
    );
    assert_eq!(be.accepted(), 2);
}
