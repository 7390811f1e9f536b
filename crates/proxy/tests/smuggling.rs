//! Request smuggling and malformed messages (RFC 9112), sent through the proxy to a strict recording
//! instance. One table runs against both HTTP/1.1 paths (the fast path, and hyper serving every request):
//! each probe must get the same answer from both, nothing refused may reach the instance, and nothing
//! sent after a probe on the same connection may be read as a request of its own unless the probe was
//! served — so no probe can desynchronise the proxy from the instance.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::*;
use slipway_proxy::ProxyOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request as the instance read it: method, target, its headers (lowercased names) and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

/// What the instance saw: whole requests, and anything it could not frame in one clear way.
#[derive(Default)]
struct Record {
    requests: Vec<Seen>,
    violations: Vec<String>,
}

/// An HTTP/1.1 server stricter than the RFC: exactly one framing header, in its simplest form, CRLF
/// line ends only, chunk extensions and trailers refused. It answers each whole request `200 ok` and
/// records it; anything else is a violation, and the connection closes.
struct Recorder {
    addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    stop: CancellationToken,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = CancellationToken::new();
        let (token, shared) = (stop.clone(), Arc::clone(&record));
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
                };
                let (token, shared) = (token.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = serve_strictly(stream, shared) => {}
                    }
                });
            }
        });
        Recorder { addr, record, stop }
    }

    fn take(&self) -> Record {
        std::mem::take(&mut *self.record.lock().expect("record"))
    }
}

async fn serve_strictly(mut stream: TcpStream, record: Arc<Mutex<Record>>) {
    let mut pending = Vec::new();
    loop {
        match strict_request(&pending) {
            Framed::Whole(seen, used) => {
                pending.drain(..used);
                record.lock().expect("record").requests.push(seen);
                let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if stream.write_all(ok).await.is_err() {
                    return;
                }
                continue;
            }
            Framed::Violation(what) => {
                record.lock().expect("record").violations.push(what);
                return;
            }
            Framed::Partial => {}
        }
        let mut buf = [0u8; 8192];
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
            // An incomplete request at the end is not one the instance acted on.
            _ => return,
        }
    }
}

enum Framed {
    Whole(Seen, usize),
    Partial,
    Violation(String),
}

fn strict_request(bytes: &[u8]) -> Framed {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Framed::Partial;
    };
    let head = &bytes[..head_end + 4];
    if head.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r')
        || head.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
    {
        return Framed::Violation(format!("bare CR or LF in {head:?}"));
    }
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut storage);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return Framed::Violation("an unparsable head".to_owned());
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let body_start = head_end + 4;
    let (lengths, codings) = (values("content-length"), values("transfer-encoding"));
    let (payload, end) = match (&lengths[..], &codings[..]) {
        ([], []) => (Vec::new(), body_start),
        (&[length], []) if !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit()) => {
            let Ok(n) = length.parse::<usize>() else {
                return Framed::Violation(format!("length {length}"));
            };
            if bytes.len() < body_start + n {
                return Framed::Partial;
            }
            (bytes[body_start..body_start + n].to_vec(), body_start + n)
        }
        ([], &["chunked"]) => match dechunk(&bytes[body_start..]) {
            Ok(Some((payload, used))) => (payload, body_start + used),
            Ok(None) => return Framed::Partial,
            Err(what) => return Framed::Violation(what),
        },
        (lengths, codings) => {
            return Framed::Violation(format!(
                "framing Content-Length {lengths:?} Transfer-Encoding {codings:?}"
            ));
        }
    };
    let seen = Seen {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers,
        payload,
    };
    Framed::Whole(seen, end)
}

/// A chunked body of bare hex sizes, no extensions, no trailers: `(payload, bytes used)`.
fn dechunk(body: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut payload = Vec::new();
    let mut at = 0;
    loop {
        let Some(line) = body[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&body[at..at + line]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size, 16).map_err(|_| format!("chunk size {size:?}"))?;
        at += line + 2;
        if size == 0 {
            return match body.get(at..at + 2) {
                None | Some([b'\r']) => Ok(None),
                Some(b"\r\n") => Ok(Some((payload, at + 2))),
                Some(other) => Err(format!("trailer {other:?}")),
            };
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        payload.extend_from_slice(&body[at..at + size]);
        if &body[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk without CRLF".to_owned());
        }
        at += size + 2;
    }
}

/// What a probe must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status from the proxy, the connection closed, nothing at the instance.
    Refused(u16),
    /// Served: the instance gets one request with this payload, framed its simplest way.
    Served(&'static [u8]),
}

const FOLLOW_UP: &[u8] = b"GET /next HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n";

fn probes() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let post = |headers: &str, body: &[u8]| {
        [
            format!("POST /probe HTTP/1.1\r\nHost: app\r\n{headers}\r\n").as_bytes(),
            body,
        ]
        .concat()
    };
    let raw = |text: &[u8]| text.to_vec();
    let many_headers: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let long_header = format!("X-Long: {}\r\n", "a".repeat(420 * 1024));
    let long_extension = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(20 * 1024));
    vec![
        // Both framing headers, either order: refused, never executed.
        (
            "cl+te",
            post(
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
            Refused(400),
        ),
        (
            "te+cl",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                b"0\r\n\r\n",
            ),
            Refused(400),
        ),
        (
            "cl+te on expect",
            post(
                "Expect: 100-continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
            Refused(400),
        ),
        (
            "lengths differ",
            post("Content-Length: 4\r\nContent-Length: 5\r\n", b"abcde"),
            Refused(400),
        ),
        (
            "length list differs",
            post("Content-Length: 4, 5\r\n", b"abcde"),
            Refused(400),
        ),
        (
            "signed length",
            post("Content-Length: +4\r\n", b"abcd"),
            Refused(400),
        ),
        (
            "length with junk",
            post("Content-Length: 4x\r\n", b"abcd"),
            Refused(400),
        ),
        (
            "hex length",
            post("Content-Length: 0x4\r\n", b"abcd"),
            Refused(400),
        ),
        (
            "empty length",
            post("Content-Length: \r\n", b""),
            Refused(400),
        ),
        (
            "overflowing length",
            post("Content-Length: 99999999999999999999\r\n", b""),
            Refused(400),
        ),
        (
            "coding not chunked",
            post("Transfer-Encoding: gzip\r\n", b"abcd"),
            Refused(400),
        ),
        (
            "chunked not last",
            post("Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"),
            Refused(400),
        ),
        (
            "chunked twice",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
            Refused(400),
        ),
        (
            "unknown coding",
            post("Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"),
            Refused(501),
        ),
        (
            "xchunked",
            post("Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
            Refused(400),
        ),
        (
            "chunked with vertical tab",
            post("Transfer-Encoding: chunked\x0b\r\n", b"0\r\n\r\n"),
            Refused(400),
        ),
        (
            "te in http/1.0",
            raw(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Refused(400),
        ),
        (
            "obs-fold",
            post(
                "X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                b"abcd",
            ),
            Refused(400),
        ),
        (
            "space before colon",
            post("Content-Length : 4\r\n", b"abcd"),
            Refused(400),
        ),
        (
            "bare CR",
            post("X-A: 1\rContent-Length: 4\r\n", b"abcd"),
            Refused(400),
        ),
        ("NUL in value", post("X-A: 1\x00\r\n", b""), Refused(400)),
        ("bad header name", post("X@A: 1\r\n", b""), Refused(400)),
        (
            "bad method",
            raw(b"G(T / HTTP/1.1\r\nHost: app\r\n\r\n"),
            Refused(400),
        ),
        (
            "space in target",
            raw(b"GET /a b HTTP/1.1\r\nHost: app\r\n\r\n"),
            Refused(400),
        ),
        (
            "bad version",
            raw(b"GET / HTTP/1.x\r\nHost: app\r\n\r\n"),
            Refused(400),
        ),
        (
            "later version",
            raw(b"GET / HTTP/2.0\r\nHost: app\r\n\r\n"),
            Refused(505),
        ),
        ("no host", raw(b"GET / HTTP/1.1\r\n\r\n"), Refused(400)),
        (
            "two hosts",
            raw(b"GET / HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n"),
            Refused(400),
        ),
        (
            "bad host",
            raw(b"GET / HTTP/1.1\r\nHost: app/x\r\n\r\n"),
            Refused(400),
        ),
        ("too many headers", post(&many_headers, b""), Refused(431)),
        ("head too long", post(&long_header, b""), Refused(431)),
        (
            "bad chunk size",
            post("Transfer-Encoding: chunked\r\n", b"zz\r\nab\r\n0\r\n\r\n"),
            Refused(400),
        ),
        (
            "overflowing chunk size",
            post(
                "Transfer-Encoding: chunked\r\n",
                b"10000000000000000\r\na\r\n0\r\n\r\n",
            ),
            Refused(400),
        ),
        (
            "bare LF in chunk line",
            post("Transfer-Encoding: chunked\r\n", b"4\nabcd\r\n0\r\n\r\n"),
            Refused(400),
        ),
        (
            "chunk without CRLF",
            post("Transfer-Encoding: chunked\r\n", b"4\r\nabcdXX0\r\n\r\n"),
            Refused(400),
        ),
        (
            "quoted CRLF in extension",
            post(
                "Transfer-Encoding: chunked\r\n",
                b"4;a=\"\r\n\"\r\nabcd\r\n0\r\n\r\n",
            ),
            Refused(400),
        ),
        (
            "long extension",
            post("Transfer-Encoding: chunked\r\n", long_extension.as_bytes()),
            Refused(400),
        ),
        (
            "trailer without colon",
            post(
                "Transfer-Encoding: chunked\r\n",
                b"0\r\nnot a field\r\n\r\n",
            ),
            Refused(400),
        ),
        // Valid, or normalised as RFC 9112 allows: the instance gets the payload in one clear framing.
        (
            "length",
            post("Content-Length: 4\r\n", b"abcd"),
            Served(b"abcd"),
        ),
        (
            "equal lengths",
            post("Content-Length: 4\r\nContent-Length: 4\r\n", b"abcd"),
            Served(b"abcd"),
        ),
        (
            "equal length list",
            post("Content-Length: 4, 4\r\n", b"abcd"),
            Refused(400),
        ),
        (
            "chunked",
            post(
                "Transfer-Encoding: Chunked\r\n",
                b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n",
            ),
            Served(b"abcd"),
        ),
        (
            "http/1.0 length",
            raw(b"POST /probe HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nabcd"),
            Served(b"abcd"),
        ),
        (
            "expect 100-continue",
            post("Expect: 100-continue\r\nContent-Length: 4\r\n", b"abcd"),
            Served(b"abcd"),
        ),
        (
            "bare LF line ends",
            raw(b"POST /probe HTTP/1.1\nHost: app\nContent-Length: 4\n\nabcd"),
            Served(b"abcd"),
        ),
    ]
}

/// Sends `bytes` and a follow-up request on one connection; returns the statuses answered, in order.
async fn exchange(proxy: SocketAddr, bytes: &[u8]) -> Vec<u16> {
    // Written together: a pipelined request right behind the probe.
    let text = send_raw(proxy, &[bytes, FOLLOW_UP].concat()).await;
    text.match_indices("HTTP/1.")
        .filter_map(|(at, _)| text.get(at + 9..at + 12)?.parse().ok())
        .filter(|&status| status != 100)
        .collect()
}

async fn run_table(fast_path: bool) {
    let recorder = Recorder::start().await;
    let p = proxy_to_one(
        ProxyOptions {
            fast_path,
            ..ProxyOptions::default()
        },
        recorder.addr,
    )
    .await;
    let mut failures = Vec::new();
    for (name, bytes, expect) in probes() {
        let statuses = exchange(p.addr, &bytes).await;
        let record = recorder.take();
        let targets: Vec<&str> = record.requests.iter().map(|s| s.target.as_str()).collect();
        let ok = match expect {
            Expect::Refused(status) => statuses == [status] && record.requests.is_empty(),
            Expect::Served(payload) => {
                statuses == [200, 200]
                    && targets == ["/probe", "/next"]
                    && record.requests[0].payload == payload
            }
        };
        if !ok || !record.violations.is_empty() {
            failures.push(format!(
                "{name}: expected {expect:?}, client got {statuses:?}, instance saw {targets:?}, violations {:?}",
                record.violations
            ));
        }
    }
    let path = if fast_path { "fast path" } else { "hyper path" };
    assert!(failures.is_empty(), "{path}:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_fast_path_refuses_every_ambiguous_request() {
    run_table(true).await;
}

#[tokio::test]
async fn the_hyper_path_refuses_the_same_requests() {
    run_table(false).await;
}

#[tokio::test]
async fn a_request_after_a_hand_off_is_checked_too() {
    // An HTTP/1.0 keep-alive request goes to hyper; the smuggling attempt behind it on the same
    // connection must still be refused, and the instance see only the first.
    let recorder = Recorder::start().await;
    let p = proxy_to_one(ProxyOptions::default(), recorder.addr).await;
    let first = b"GET /first HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let smuggled =
        b"POST /probe HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n";
    let statuses = exchange(p.addr, &[&first[..], &smuggled[..]].concat()).await;
    let record = recorder.take();
    let targets: Vec<&str> = record.requests.iter().map(|s| s.target.as_str()).collect();
    assert_eq!((statuses, targets), (vec![200, 400], vec!["/first"]));
    assert!(record.violations.is_empty(), "{:?}", record.violations);
}

/// An instance that answers the first request on each connection with `first`, and any later one with
/// `REUSED` — which a client must only ever see if `first` left the connection in a clear state.
async fn answers_first_with(
    first: &'static [u8],
) -> (SocketAddr, Arc<Mutex<usize>>, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(Mutex::new(0));
    let stop = CancellationToken::new();
    let (count, token) = (Arc::clone(&accepted), stop.clone());
    tokio::spawn(async move {
        loop {
            let mut stream = tokio::select! {
                () = token.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
            };
            *count.lock().expect("count") += 1;
            tokio::spawn(async move {
                let mut pending = Vec::new();
                for n in 0.. {
                    let head_end = loop {
                        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        let mut buf = [0u8; 4096];
                        match stream.read(&mut buf).await {
                            Ok(read) if read > 0 => pending.extend_from_slice(&buf[..read]),
                            _ => return,
                        }
                    };
                    pending.drain(..head_end);
                    let answer: &[u8] = if n == 0 {
                        first
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nREUSED"
                    };
                    // A response without a length ends when the connection does.
                    let framed = String::from_utf8_lossy(answer).contains("-Length:")
                        || String::from_utf8_lossy(answer).contains("Transfer-Encoding:");
                    if stream.write_all(answer).await.is_err() || !framed {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted, stop)
}

/// The status and body of one GET through the proxy, on a new client connection.
async fn get_once(proxy: SocketAddr) -> (u16, String) {
    let request = b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n";
    let text = send_raw(proxy, request).await;
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn an_ambiguous_response_never_poisons_a_pooled_connection() {
    // (response, what the client gets): whatever the instance sent, the connection is not used again,
    // so the next request never reads the leftovers (or `REUSED`) as its response.
    let cases: [(&'static [u8], u16); 6] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled", 200),
        (b"HTTP/1.1 200 OK\r\n\r\nok", 200),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok", 502),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n folded\r\n\r\nok", 502),
    ];
    for fast_path in [true, false] {
        for (response, status) in cases {
            let (addr, accepted, stop) = answers_first_with(response).await;
            let p = proxy_to_one(
                ProxyOptions {
                    fast_path,
                    ..ProxyOptions::default()
                },
                addr,
            )
            .await;
            let what = format!(
                "fast path {fast_path}, {:?}",
                String::from_utf8_lossy(response)
            );
            for _ in 0..2 {
                let (got, body) = get_once(p.addr).await;
                assert_eq!(got, status, "{what}");
                assert!(
                    !body.contains("REUSED") && !body.contains("smuggled"),
                    "{what}: {body}"
                );
            }
            if status == 200 {
                assert_eq!(*accepted.lock().expect("count"), 2, "{what}");
            }
            stop.cancel();
        }
    }
}

#[tokio::test]
async fn what_follows_a_refused_upgrade_is_never_read_as_a_request() {
    // The instance answers the upgrade request 200 (no switch): the bytes the client sent after it,
    // meant for the new protocol — here a smuggling attempt — must not reach the instance.
    let recorder = Recorder::start().await;
    for fast_path in [true, false] {
        let p = proxy_to_one(
            ProxyOptions {
                fast_path,
                ..ProxyOptions::default()
            },
            recorder.addr,
        )
        .await;
        let upgrade =
            b"GET /chat HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let after = b"POST /probe HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let statuses = exchange(p.addr, &[&upgrade[..], &after[..]].concat()).await;
        let record = recorder.take();
        let targets: Vec<&str> = record.requests.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(
            (statuses, targets),
            (vec![200], vec!["/chat"]),
            "fast path {fast_path}"
        );
    }
}
