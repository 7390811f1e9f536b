//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`, so the tests see exactly what went over the
//! wire: no pooling or retries that could hide a failed request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connect failed (nothing listening any more).
    Refused(String),
    /// A reused keep-alive connection was closed before any byte of the answer: the server may never have
    /// read the request (clients retry these for idempotent requests).
    ClosedIdle(String),
    /// The connection broke during the exchange, or the answer was malformed.
    Broken(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(e) => write!(f, "connect failed: {e}"),
            Failure::ClosedIdle(e) => write!(f, "idle connection closed: {e}"),
            Failure::Broken(e) => write!(f, "broken exchange: {e}"),
        }
    }
}

/// One client connection, reused while the server keeps it alive.
pub struct Conn {
    addr: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
    /// Whether the current connection already carried an answer.
    reused: bool,
}

const IO_TIMEOUT: Duration = Duration::from_secs(60);

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            reader: None,
            reused: false,
        }
    }

    /// GET `path` with extra headers, keeping the connection for the next request when allowed.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, Failure> {
        if self.reader.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT)
                .map_err(|e| Failure::Refused(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            self.reader = Some(BufReader::new(stream));
            self.reused = false;
        }
        let result = self.exchange(path, headers);
        match &result {
            Ok(r)
                if !r
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close")) =>
            {
                self.reused = true;
            }
            _ => self.reader = None,
        }
        result
    }

    fn exchange(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, Failure> {
        let reused = self.reused;
        let addr = self.addr;
        let reader = self.reader.as_mut().expect("connected");
        let mut request = format!("GET {path} HTTP/1.1\r\nUser-Agent: slipway-e2e\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            request.push_str(&format!("Host: {addr}\r\n"));
        }
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        let early = |e: std::io::Error| {
            if reused {
                Failure::ClosedIdle(e.to_string())
            } else {
                Failure::Broken(e.to_string())
            }
        };
        reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(early)?;
        let mut status_line = String::new();
        match reader.read_line(&mut status_line) {
            Ok(0) if reused => return Err(Failure::ClosedIdle("EOF before the answer".into())),
            Ok(0) => return Err(Failure::Broken("EOF before the answer".into())),
            Ok(_) => {}
            Err(e) => return Err(early(e)),
        }
        let broken = |e: std::io::Error| Failure::Broken(e.to_string());
        let status = status_of(&status_line)?;
        let mut headers = read_headers(reader)?;
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).map_err(broken)? == 0 {
                    return Err(Failure::Broken("EOF in a chunked body".into()));
                }
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| Failure::Broken(format!("bad chunk size {size:?}")))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).map_err(broken)? == 0
                            || line.trim().is_empty()
                        {
                            break;
                        }
                    }
                    break;
                }
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).map_err(broken)?;
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = find("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| Failure::Broken(format!("bad content-length {len:?}")))?;
            body.resize(len, 0);
            reader.read_exact(&mut body).map_err(broken)?;
        } else if status != 204 && status != 304 {
            reader.read_to_end(&mut body).map_err(broken)?;
            headers.push(("connection".into(), "close".into()));
        }
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Response, Failure> {
    Conn::new(addr).get(path, headers)
}

/// "v2" from the demo app's "hello from v2"; the whole body otherwise.
pub fn version_of(r: &Response) -> String {
    let body = r.body.trim();
    body.strip_prefix("hello from ").unwrap_or(body).to_string()
}

/// One request of any method on its own connection (`Connection: close`). With `read_body` false only
/// the status and headers are read (an event stream never ends), and the connection is dropped.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    read_body: bool,
) -> Result<Response, Failure> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| Failure::Refused(e.to_string()))?;
    request_on(stream, method, path, headers, body, read_body)
}

/// [`request`] on a connection the caller opened (e.g. from another local address).
pub fn request_on(
    stream: TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    read_body: bool,
) -> Result<Response, Failure> {
    let broken = |e: std::io::Error| Failure::Broken(e.to_string());
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let host = stream.peer_addr().map_err(broken)?;
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(text.as_bytes())
        .map_err(broken)?;
    let mut status_line = String::new();
    if reader.read_line(&mut status_line).map_err(broken)? == 0 {
        return Err(Failure::Broken("EOF before the answer".into()));
    }
    let status = status_of(&status_line)?;
    let headers = read_headers(&mut reader)?;
    let mut raw = Vec::new();
    if read_body {
        reader.read_to_end(&mut raw).map_err(broken)?;
    }
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked { unchunk(&raw) } else { raw };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A whole chunked body, already read to its end, without its framing.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        let start = end + 2;
        if size == 0 || start + size > raw.len() {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

/// The status code of an HTTP/1.1 status line.
fn status_of(status_line: &str) -> Result<u16, Failure> {
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Failure::Broken(format!("bad status line {status_line:?}")))
}

/// Header lines up to the blank line ending a head, as (name, value) pairs.
fn read_headers(reader: &mut impl BufRead) -> Result<Vec<(String, String)>, Failure> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader
            .read_line(&mut line)
            .map_err(|e| Failure::Broken(e.to_string()))?
            == 0
        {
            return Err(Failure::Broken("EOF in the headers".into()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}
