//! HTTP/1.1 over TLS, served by the fast path: keep-alive and pipelined requests, request bodies read from
//! the TLS stream while the instance is written to, large responses that fill the socket, the forwarding
//! headers and HSTS — the same behaviour as on plain connections.

mod common;

use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use slipway_proxy::{AppRoute, ProxyOptions, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

const HOST: &str = "app.test";

/// A proxy serving TLS for `app.test` (a self-signed certificate) with `app`'s route; its client config.
struct TlsProxy {
    addr: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
    shutdown: CancellationToken,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn tls_proxy(app: AppRoute) -> TlsProxy {
    let made = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).expect("certificate");
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];

    let proxy = slipway_proxy::Proxy::new(ProxyOptions::default());
    proxy.routes().publish(RouteTable::of([app])).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        proxy
            .serve_tls(listener, Arc::new(server), None, token)
            .await
    });
    TlsProxy {
        addr,
        client: Arc::new(client),
        shutdown,
    }
}

async fn connect(proxy: &TlsProxy) -> TlsStream<TcpStream> {
    // A small receive window, so that the proxy's writes fill the socket and have to wait.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(proxy.addr).await.expect("connect");
    let name = ServerName::try_from(HOST).expect("name");
    TlsConnector::from(proxy.client.clone())
        .connect(name, tcp)
        .await
        .expect("handshake")
}

/// Reads one response with a `Content-Length` body: (head, body). A response that stops coming fails
/// the test after a generous deadline instead of hanging it.
async fn read_response(tls: &mut TlsStream<TcpStream>, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    tokio::time::timeout(READ_DEADLINE, read_response_now(tls, pending))
        .await
        .expect("the response stopped coming")
}

const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

async fn read_response_now(
    tls: &mut TlsStream<TcpStream>,
    pending: &mut Vec<u8>,
) -> (String, Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).expect("ascii head");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            while pending.len() < end + 4 + length {
                let n = tls.read(&mut chunk).await.expect("read body");
                assert!(n > 0, "closed in the body");
                pending.extend_from_slice(&chunk[..n]);
            }
            let body = pending[end + 4..end + 4 + length].to_vec();
            pending.drain(..end + 4 + length);
            return (head.to_ascii_lowercase(), body);
        }
        let n = tls.read(&mut chunk).await.expect("read head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn keep_alive_pipelining_bodies_and_headers_over_tls() {
    let echo = backend(|req| async move {
        use http_body_util::BodyExt;
        let get = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let proto = get("x-forwarded-proto");
        let path = req.uri().path().to_owned();
        let body = req.into_body().collect().await.expect("body").to_bytes();
        let mut response = if path == "/big" {
            text(vec![b'x'; 4 * 1024 * 1024])
        } else {
            text(format!("{proto}|{path}|{}", body.len()))
        };
        // The app's own HSTS: the proxy's replaces it.
        response.headers_mut().insert(
            "strict-transport-security",
            http::HeaderValue::from_static("max-age=1"),
        );
        response
    })
    .await;
    let app = AppRoute {
        hosts: vec![HOST.to_owned()],
        groups: vec![group(1, 1, &[&instance("a", &echo)])],
        hsts_max_age: Some(600),
        ..AppRoute::new("web")
    };
    let proxy = tls_proxy(app).await;
    let mut tls = connect(&proxy).await;
    let mut pending = Vec::new();

    // Keep-alive: three requests in turn on one connection.
    for i in 0..3 {
        let request = format!("GET /n{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        tls.write_all(request.as_bytes()).await.expect("write");
        let (head, body) = read_response(&mut tls, &mut pending).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(String::from_utf8(body).unwrap(), format!("https|/n{i}|0"));
        let hsts: Vec<_> = head
            .lines()
            .filter(|l| l.starts_with("strict-transport-security"))
            .collect();
        assert_eq!(hsts, ["strict-transport-security: max-age=600"], "{head}");
    }

    // Two requests in one write, the second with a chunked body; answered in order.
    let pipelined = format!(
        "GET /first HTTP/1.1\r\nHost: {HOST}\r\n\r\nPOST /second HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    );
    tls.write_all(pipelined.as_bytes()).await.expect("write");
    let (_, first) = read_response(&mut tls, &mut pending).await;
    assert_eq!(String::from_utf8(first).unwrap(), "https|/first|0");
    // The rest of the body comes later: the proxy reads it from the TLS stream as it arrives.
    tls.write_all(b"6\r\n world\r\n0\r\n\r\n")
        .await
        .expect("write");
    let (_, second) = read_response(&mut tls, &mut pending).await;
    assert_eq!(String::from_utf8(second).unwrap(), "https|/second|11");

    // A large body from the instance, written to the client through backpressure, read whole before the
    // next request is sent: the last of it must not wait in the TLS stream's buffer for a next write.
    let request = format!("GET /big HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let (_, big) = read_response(&mut tls, &mut pending).await;
    assert_eq!(big.len(), 4 * 1024 * 1024);
    assert!(big.iter().all(|&b| b == b'x'));
    let request = format!("GET /after HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let (_, after) = read_response(&mut tls, &mut pending).await;
    assert_eq!(String::from_utf8(after).unwrap(), "https|/after|0");
    assert_eq!(
        echo.accepted(),
        1,
        "one pooled instance connection served all"
    );
}

#[tokio::test]
async fn a_tls_client_is_not_redirected_and_a_closing_request_closes() {
    let ok = ok_backend().await;
    let app = AppRoute {
        hosts: vec![HOST.to_owned()],
        groups: vec![group(1, 1, &[&instance("a", &ok)])],
        redirect_https: true,
        ..AppRoute::new("web")
    };
    let proxy = tls_proxy(app).await;
    let mut tls = connect(&proxy).await;
    let request = format!("GET /x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    // Read to the end: the proxy closes after the answer (a TLS close, or the socket's end).
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.ends_with("ok"), "{answer}");
}
