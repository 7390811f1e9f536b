//! Test harness: small hyper backends and a proxy on 127.0.0.1 port 0, with drop guards that stop them.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use slipway_proxy::{
    AppRoute, Backend, Proxy, ProxyOptions, ReleaseGroup, RouteHandle, RouteTable,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub type TestBody = BoxBody<Bytes, Infallible>;

pub fn text(body: impl Into<Bytes>) -> Response<TestBody> {
    Response::new(Full::new(body.into()).boxed())
}

/// A backend HTTP/1.1 server counting the requests it received; stopped on drop.
pub struct TestBackend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Connections currently open.
    pub open: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl TestBackend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes its connections.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn backend<F, Fut>(handler: F) -> TestBackend
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let handler = Arc::new(handler);
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (task_hits, task_stop) = (hits.clone(), stop.clone());
    let (task_accepted, task_open) = (accepted.clone(), open.clone());
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = task_stop.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
            };
            task_accepted.fetch_add(1, Ordering::SeqCst);
            let open = OpenGuard::new(task_open.clone());
            let (handler, hits, stop) = (handler.clone(), task_hits.clone(), task_stop.clone());
            tokio::spawn(async move {
                let _open = open;
                let service = service_fn(move |req| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                tokio::select! {
                    () = stop.cancelled() => {}
                    _ = conn => {}
                }
            });
        }
    });
    TestBackend {
        addr,
        hits,
        accepted,
        open,
        stop,
    }
}

/// Counts one open connection until dropped.
struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    fn new(open: Arc<AtomicUsize>) -> OpenGuard {
        open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(open)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A backend answering "ok" at once.
pub async fn ok_backend() -> TestBackend {
    backend(|_req| async { text("ok") }).await
}

/// A backend answering every request with its body.
pub async fn echo_backend() -> TestBackend {
    backend(|req| async move {
        let body = req.into_body().collect().await.expect("body").to_bytes();
        text(body)
    })
    .await
}

/// An address nothing listens on (connections are refused).
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// A running proxy; shut down (cancelled) on drop.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub routes: RouteHandle,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn proxy(options: ProxyOptions) -> TestProxy {
    let proxy = Proxy::new(options);
    let routes = proxy.routes();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { proxy.serve(listener, token).await });
    TestProxy {
        addr,
        routes,
        shutdown,
        task: Some(task),
    }
}

/// A proxy with `options` sending every request to the one instance at `addr` (app "web", release 1).
pub async fn proxy_to_one(options: ProxyOptions, addr: SocketAddr) -> TestProxy {
    let p = proxy(options).await;
    let only = Backend::new("only", addr);
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&only])]))
        .await;
    p
}

pub fn group(release: u64, weight: u32, backends: &[&Arc<Backend>]) -> ReleaseGroup {
    ReleaseGroup::new(
        release,
        weight,
        backends.iter().map(|b| Arc::clone(b)).collect(),
    )
}

pub fn instance(name: &str, backend: &TestBackend) -> Arc<Backend> {
    Backend::new(name, backend.addr)
}

pub fn one_app(name: &str, groups: Vec<ReleaseGroup>) -> RouteTable {
    RouteTable::of([AppRoute {
        groups,
        ..AppRoute::new(name)
    }])
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A GET through the proxy; returns status and body text, or the transport error.
pub async fn get(
    client: &TestClient,
    proxy: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, String), String> {
    let mut builder = Request::get(format!("http://{proxy}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Polls `condition` every few milliseconds until it holds, panicking with `what` after a generous deadline.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a client got back: status, headers and body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// A body-less request with any method through the proxy.
pub async fn send(
    client: &TestClient,
    proxy: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{proxy}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(Bytes::new())).expect("request");
    let response = client.request(request).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Everything the proxy sends on `stream` until it closes (or 20 s pass, which fails the test).
pub async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        // A reset after the answer still leaves the answer read.
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    });
    read.await.expect("the proxy closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

pub async fn send_raw(proxy: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.expect("connect");
    // The proxy may answer and close before all is written (a head too long): the answer is what counts.
    let _ = stream.write_all(bytes).await;
    read_until_closed(&mut stream).await
}
