//! Reading a client's request head in place, checking it, and deciding whether the fast path may serve it.
//!
//! The head is parsed with `httparse` (as hyper does) straight from the connection's buffer; what the rest
//! of the fast path needs is kept as offsets into that buffer, so nothing is copied or allocated. Every head
//! on a connection passes here, also those hyper then serves: a head that is not HTTP/1.x syntax, or whose
//! body could be framed two ways (`framing`), is refused with a clear 400 (431 when too large, 501 for an
//! unknown transfer coding, 505 for a later HTTP version) and the connection closed — hyper would close it
//! without a word, or guess. A valid request this parser is not sure about is *handed off*: hyper serves
//! it (upgrades, h2c, `Expect`, HTTP/1.0, absolute-form targets, many `Connection` options...), and the
//! next head on the connection comes back here (`gate`).

use std::mem::MaybeUninit;

use http::StatusCode;

pub(crate) use crate::h1::framing::RequestBody;
use crate::h1::framing::{FramingFields, Refusal};
use crate::request_headers::RequestHeaders;

/// Headers a request may have (hyper's limit); more is a 431.
pub(crate) const MAX_HEADERS: usize = 100;

/// Longest request head accepted (hyper's default buffer limit); longer is a 431.
pub(crate) const MAX_HEAD: usize = 8192 + 4096 * 100;

/// Headers named by `Connection` that the fast path strips itself; more go to hyper.
const MAX_CONNECTION_TOKENS: usize = 4;

/// A byte range of the connection's buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.start..self.end]
    }

    fn within(base: &[u8], part: &[u8], offset: usize) -> Span {
        // `part` is a subslice of `base` (httparse returns slices of its input).
        let start = part.as_ptr() as usize - base.as_ptr() as usize + offset;
        Span {
            start,
            end: start + part.len(),
        }
    }
}

/// The headers the proxy reads or rewrites; everything else is forwarded untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    Host,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XRequestId,
    XSlipwayRelease,
    /// Framing, re-written by the proxy.
    TransferEncoding,
    ContentLength,
    /// Describes this hop only (RFC 9110 §7.6.1): never forwarded.
    HopByHop,
    Other,
}

fn kind_of(name: &[u8]) -> HeaderKind {
    const HOP_BY_HOP: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
    ];
    let is = |known: &[u8]| name_is(name, known);
    match name.len() {
        4 if is(b"host") => HeaderKind::Host,
        12 if is(b"x-request-id") => HeaderKind::XRequestId,
        15 if is(b"x-forwarded-for") => HeaderKind::XForwardedFor,
        16 if is(b"x-forwarded-host") => HeaderKind::XForwardedHost,
        17 if is(b"x-forwarded-proto") => HeaderKind::XForwardedProto,
        17 if is(b"x-slipway-release") => HeaderKind::XSlipwayRelease,
        17 if is(b"transfer-encoding") => HeaderKind::TransferEncoding,
        14 if is(b"content-length") => HeaderKind::ContentLength,
        2 | 7 | 10 | 16 | 18 | 19 if HOP_BY_HOP.iter().any(|h| is(h)) => HeaderKind::HopByHop,
        _ => HeaderKind::Other,
    }
}

/// One header of the request, as offsets into the buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
    pub(crate) kind: HeaderKind,
}

/// A request's headers as routing reads them (see `request_headers`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanHeaders<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) headers: &'a [HeaderSpan],
}

/// A request head the fast path can serve.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    /// Where the head ends in the buffer (its body, or the next request, starts there).
    pub(crate) end: usize,
    pub(crate) method: Span,
    /// The origin-form target (path and query).
    pub(crate) target: Span,
    /// The path alone (before `?`).
    pub(crate) path: Span,
    /// The `Host` value. Always there: the fast path serves HTTP/1.1 only, where it is required
    /// (`check_host`); HTTP/1.0 goes to hyper.
    pub(crate) host: Span,
    /// The `X-Slipway-Release` value.
    pub(crate) preview: Option<Span>,
    pub(crate) body: RequestBody,
    /// The one `Content-Length` the instance gets (the client's, checked), also when it is 0.
    pub(crate) declared_length: Option<u64>,
    /// The client asked to close the connection after this exchange.
    pub(crate) close: bool,
    pub(crate) has_request_id: bool,
    /// Extra hop-by-hop headers named by `Connection`.
    connection_named: [Span; MAX_CONNECTION_TOKENS],
    connection_named_len: usize,
}

impl RequestHead {
    /// True when `Connection` named this header, so it must not be forwarded.
    pub(crate) fn is_connection_named(&self, buf: &[u8], name: &[u8]) -> bool {
        self.connection_named[..self.connection_named_len]
            .iter()
            .any(|token| token.of(buf).eq_ignore_ascii_case(name))
    }

    pub(crate) fn framing(&self) -> Framing {
        Framing {
            end: self.end,
            body: self.body,
            then: Then::Requests,
        }
    }
}

/// Where a valid request ends, so that the next one can be checked too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// Where the head ends in the buffer.
    pub(crate) end: usize,
    pub(crate) body: RequestBody,
    /// What follows the request.
    pub(crate) then: Then,
}

/// What follows a request on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// The next request.
    Requests,
    /// The answer decides: after a switch of protocols, bytes that are not HTTP/1.
    Upgrade,
    /// Bytes that are not HTTP/1 (the h2c preface started HTTP/2).
    Opaque,
}

/// What the bytes received so far hold.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A valid request the fast path serves.
    Complete(RequestHead),
    /// The head is not complete yet: read more.
    Partial,
    /// A valid request hyper serves (see the module doc).
    Handoff(Framing),
    /// Not a request the proxy forwards: answer this and close.
    Reject(StatusCode, &'static str),
}

/// The h2c prior-knowledge preface starts this way (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// Parses the head starting at `buf[start..]`, filling `headers` (cleared first).
///
/// Every request head is checked here, also those hyper then serves: whatever could be framed two ways is
/// refused (`framing`), as are heads RFC 9112 says a server must answer with 400 (no `Host` in HTTP/1.1, more
/// than one, an invalid one).
pub(crate) fn parse(buf: &[u8], start: usize, headers: &mut Vec<HeaderSpan>) -> Parsed {
    let bytes = &buf[start..];
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(bytes, &mut storage) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) => {
            return Parsed::Reject(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request head is too long",
            );
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Reject(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request has too many headers",
            );
        }
        Err(httparse::Error::Version) if bytes.starts_with(H2_PREFACE) => {
            return Parsed::Handoff(Framing {
                end: start,
                body: RequestBody::None,
                then: Then::Opaque,
            });
        }
        Err(httparse::Error::Version) if names_a_later_http(bytes) => {
            return Parsed::Reject(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "only HTTP/1.0 and HTTP/1.1 are spoken here (or HTTP/2 with TLS or prior knowledge)",
            );
        }
        Err(httparse::Error::Version) => {
            return Parsed::Reject(StatusCode::BAD_REQUEST, "malformed request line");
        }
        Err(_) => return Parsed::Reject(StatusCode::BAD_REQUEST, "malformed request head"),
    };
    let (Some(method), Some(target), Some(minor_version)) =
        (request.method, request.path, request.version)
    else {
        return Parsed::Reject(StatusCode::BAD_REQUEST, "malformed request line");
    };
    if method == "CONNECT" {
        // A tunnel through a reverse proxy to its apps has no use, and would end the checks on the
        // connection.
        return Parsed::Reject(StatusCode::NOT_IMPLEMENTED, "CONNECT is not supported here");
    }
    // Valid requests the fast path leaves to hyper: HTTP/1.0, other target forms.
    let mut handoff = minor_version == 0 || !is_plain_origin_form(target.as_bytes());
    // An upgrade needs both headers; only then may what follows stop being HTTP/1 (and the proxy closes
    // the connection when the instance does not switch: `forward::respond`).
    let (mut upgrade, mut connection_upgrade) = (false, false);
    let path_len = target.find('?').unwrap_or(target.len());
    let target = Span::within(bytes, target.as_bytes(), start);
    let mut head = RequestHead {
        end: start + len,
        method: Span::within(bytes, method.as_bytes(), start),
        target,
        path: Span {
            start: target.start,
            end: target.start + path_len,
        },
        host: Span::default(),
        preview: None,
        body: RequestBody::None,
        declared_length: None,
        close: false,
        has_request_id: false,
        connection_named: [Span::default(); MAX_CONNECTION_TOKENS],
        connection_named_len: 0,
    };
    headers.clear();
    let mut framing = FramingFields::default();
    let mut hosts = 0;
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        let value = Span::within(bytes, header.value, start);
        let kind = kind_of(name);
        match kind {
            HeaderKind::Host => {
                hosts += 1;
                head.host = value;
            }
            HeaderKind::XSlipwayRelease if head.preview.is_none() => head.preview = Some(value),
            HeaderKind::XRequestId => head.has_request_id = true,
            HeaderKind::TransferEncoding => framing.transfer_encoding(header.value),
            HeaderKind::ContentLength => framing.content_length(header.value),
            HeaderKind::HopByHop
                if name.eq_ignore_ascii_case(b"connection")
                    && !head.read_connection(header.value, bytes, start) =>
            {
                handoff = true;
                connection_upgrade |= header
                    .value
                    .split(|&b| b == b',')
                    .any(|token| trim(token).eq_ignore_ascii_case(b"upgrade"));
            }
            HeaderKind::Other if name.eq_ignore_ascii_case(b"expect") => handoff = true,
            HeaderKind::Other if name.eq_ignore_ascii_case(b"upgrade") => {
                handoff = true;
                upgrade = true;
            }
            _ => {}
        }
        headers.push(HeaderSpan {
            name: Span::within(bytes, name, start),
            value,
            // Forwarded as it is.
            kind: if kind == HeaderKind::XSlipwayRelease {
                HeaderKind::Other
            } else {
                kind
            },
        });
    }
    if let Err((status, message)) = check_host(hosts, head.host.of(buf), minor_version) {
        return Parsed::Reject(status, message);
    }
    head.declared_length = framing.declared_length();
    head.body = match framing.body(minor_version) {
        Ok(body) => body,
        Err((status, message)) => return Parsed::Reject(status, message),
    };
    if handoff {
        return Parsed::Handoff(Framing {
            then: if upgrade && connection_upgrade {
                Then::Upgrade
            } else {
                Then::Requests
            },
            ..head.framing()
        });
    }
    Parsed::Complete(head)
}

/// RFC 9112 §3.2: exactly one `Host` in HTTP/1.1 (at most one in 1.0), with a valid value.
fn check_host(count: usize, value: &[u8], minor_version: u8) -> Result<(), Refusal> {
    match count {
        0 if minor_version == 0 => Ok(()),
        0 => Err((
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request needs a Host header",
        )),
        1 if is_valid_host(value) => Ok(()),
        1 => Err((StatusCode::BAD_REQUEST, "invalid Host header")),
        _ => Err((StatusCode::BAD_REQUEST, "more than one Host header")),
    }
}

/// A `Host` value: a reg-name, IPv4 or bracketed IPv6 literal, and an optional port (RFC 3986 §3.2.2). Empty
/// is allowed (a target without authority).
fn is_valid_host(host: &[u8]) -> bool {
    const HOST: [bool; 256] = byte_set(b"-._~!$&'()*+,;=:[]%");
    host.iter().all(|&b| HOST[usize::from(b)])
}

/// The bytes in `others` plus ASCII letters and digits, as a table (one lookup per byte on the hot path).
const fn byte_set(others: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut b = 0;
    while b < 256 {
        set[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < others.len() {
        set[others[i] as usize] = true;
        i += 1;
    }
    set
}

/// The request line names a version after HTTP/1 (`HTTP/2.0`, `HTTP/3`): 505 rather than 400.
fn names_a_later_http(bytes: &[u8]) -> bool {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let version = trim(line.strip_suffix(b"\r").unwrap_or(line))
        .rsplit(|&b| b == b' ')
        .next()
        .unwrap_or_default();
    match version.strip_prefix(b"HTTP/") {
        Some([major, ..]) => (b'2'..=b'9').contains(major),
        _ => false,
    }
}

impl RequestHead {
    /// Reads one `Connection` header: `close`, `keep-alive`, and the extra headers it names. False when
    /// hyper should handle it (an upgrade, or more names than the fast path keeps).
    fn read_connection(&mut self, value: &[u8], bytes: &[u8], start: usize) -> bool {
        for token in value.split(|&b| b == b',') {
            let token = trim(token);
            if token.is_empty() || token.eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            // Naming a header the proxy itself reads or writes changes what it must send: hyper's path
            // handles that.
            let ours = !matches!(kind_of(token), HeaderKind::Other | HeaderKind::HopByHop);
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if ours
                || token.eq_ignore_ascii_case(b"upgrade")
                || self.connection_named_len == MAX_CONNECTION_TOKENS
            {
                return false;
            } else {
                self.connection_named[self.connection_named_len] =
                    Span::within(bytes, token, start);
                self.connection_named_len += 1;
            }
        }
        true
    }
}

/// A path (and query) of only the characters every parser reads the same way: unreserved, sub-delims,
/// `:@/?%`. Anything else (fragments, quotes, braces, non-ASCII...) goes to hyper, which accepts or rejects
/// it as before.
fn is_plain_origin_form(target: &[u8]) -> bool {
    const PLAIN: [bool; 256] = byte_set(b"-._~!$&'()*+,;=:@/?%");
    target.first() == Some(&b'/')
        && target.len() <= 8 * 1024
        && target.iter().all(|&b| PLAIN[usize::from(b)])
}

/// Whether a header name (or a name listed in a header value) is `known`, which is written in lowercase
/// letters and `-`, ignoring ASCII case. Setting bit 0x20 lowercases a letter and leaves `-` as it is,
/// and the only other byte it turns into a letter or `-` is CR, which a parsed head holds only at line
/// ends; so one OR and one compare per eight bytes decide, where `eq_ignore_ascii_case` lowercases both
/// sides byte by byte.
#[inline(always)]
pub(crate) fn name_is(name: &[u8], known: &[u8]) -> bool {
    debug_assert!(known.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    if name.len() != known.len() {
        return false;
    }
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
    let (mut names, mut knowns) = (name.chunks_exact(8), known.chunks_exact(8));
    (&mut names)
        .zip(&mut knowns)
        .all(|(n, k)| word(n) | 0x2020_2020_2020_2020 == word(k))
        && names
            .remainder()
            .iter()
            .zip(knowns.remainder())
            .all(|(n, k)| n | 0x20 == *k)
}

/// Strips optional whitespace (SP / HTAB) around a value or list element.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

impl RequestHeaders for SpanHeaders<'_> {
    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.of(self.buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.of(self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &[u8]) -> (RequestHead, Vec<HeaderSpan>) {
        let mut headers = Vec::new();
        match parse(raw, 0, &mut headers) {
            Parsed::Complete(head) => (head, headers),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn handoff(raw: &[u8]) -> Option<Framing> {
        match parse(raw, 0, &mut Vec::new()) {
            Parsed::Handoff(framing) => Some(framing),
            _ => None,
        }
    }

    fn rejected(raw: &[u8]) -> Option<u16> {
        match parse(raw, 0, &mut Vec::new()) {
            Parsed::Reject(status, _) => Some(status.as_u16()),
            _ => None,
        }
    }

    #[test]
    fn names_compare_ignoring_case_only() {
        for known in [
            "host",
            "content-length",
            "x-forwarded-proto",
            "te",
            "proxy-authorization",
        ] {
            assert!(name_is(known.as_bytes(), known.as_bytes()));
            assert!(name_is(
                known.to_ascii_uppercase().as_bytes(),
                known.as_bytes()
            ));
            // Every byte but the right letter (either case) or `-` fails, wherever it stands.
            for at in 0..known.len() {
                for b in 0..=255u8 {
                    let mut name = known.as_bytes().to_vec();
                    let fits = b.to_ascii_lowercase() == name[at] || b == b'\r' && name[at] == b'-';
                    name[at] = b;
                    assert_eq!(
                        name_is(&name, known.as_bytes()),
                        fits,
                        "{known} with {b:#x} at {at}"
                    );
                }
            }
        }
        assert!(!name_is(b"hosts", b"host"));
    }

    #[test]
    fn plain_get_is_read_in_place() {
        let raw = b"GET /a/b?x=1 HTTP/1.1\r\nHost: app.test:8080\r\nX-Request-Id: r1\r\nAccept: */*\r\n\r\nNEXT";
        let (head, headers) = complete(raw);
        assert_eq!(head.end, raw.len() - 4);
        assert_eq!(head.method.of(raw), b"GET");
        assert_eq!(head.target.of(raw), b"/a/b?x=1");
        assert_eq!(head.path.of(raw), b"/a/b");
        assert_eq!(head.host.of(raw), b"app.test:8080");
        assert!(head.has_request_id && !head.close);
        assert_eq!(head.body, RequestBody::None);
        assert_eq!(headers.len(), 3);
        assert_eq!(headers[2].kind, HeaderKind::Other);
    }

    #[test]
    fn head_at_an_offset_keeps_absolute_spans() {
        let raw = b"leftoverGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut headers = Vec::new();
        let Parsed::Complete(head) = parse(raw, 8, &mut headers) else {
            panic!("complete");
        };
        assert_eq!((head.method.of(raw), head.end), (&b"GET"[..], raw.len()));
        assert_eq!(headers[0].value.of(raw), b"h");
    }

    #[test]
    fn partial_until_the_blank_line() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: h\r\n", 0, &mut Vec::new()),
            Parsed::Partial
        ));
        let endless = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD]].concat();
        assert_eq!(rejected(&endless), Some(431));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert_eq!(
            rejected(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Some(431)
        );
    }

    #[test]
    fn bodies_and_connection_options() {
        let (head, _) = complete(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: close, X-Hop\r\n\r\n",
        );
        assert_eq!(head.body, RequestBody::Length(12));
        assert!(head.close);
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\nConnection: X-Hop\r\n\r\n";
        let (head, _) = complete(raw);
        assert_eq!(head.body, RequestBody::Chunked);
        assert!(head.is_connection_named(raw, b"x-hop"));
        let (head, _) = complete(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            (head.body, head.declared_length),
            (RequestBody::None, Some(0))
        );
        let (head, _) = complete(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        );
        assert_eq!(head.body, RequestBody::Length(3));
    }

    #[test]
    fn unusual_valid_requests_go_to_hyper_with_their_framing() {
        for raw in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /{x} HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: a, b, c, d, e\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Request-Id\r\n\r\n",
        ] {
            let framing = handoff(raw);
            let expected = Framing {
                end: raw.len(),
                body: RequestBody::None,
                then: Then::Requests,
            };
            assert_eq!(
                framing,
                Some(expected),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let raw =
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(handoff(raw).map(|f| f.body), Some(RequestBody::Length(3)));
        let preface = handoff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").map(|f| (f.end, f.then));
        assert_eq!(preface, Some((0, Then::Opaque)));
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: keep-alive, upgrade\r\n\r\n",
        ] {
            let then = handoff(raw).map(|f| f.then);
            assert_eq!(
                then,
                Some(Then::Upgrade),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // `Upgrade` without `Connection: upgrade` asks for nothing: the next head is still checked.
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(handoff(raw).map(|f| f.then), Some(Then::Requests));
    }

    #[test]
    fn heads_rfc_9112_refuses_get_400_and_are_never_handed_on() {
        for (raw, status) in [
            (&b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"[..], 400),
            (b"G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
            (b"GET / HTTP/3\r\nHost: h\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", 501),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            // Invalid framing is refused even where hyper would serve the request.
            (b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nContent-Length: x\r\n\r\n", 400),
        ] {
            assert_eq!(rejected(raw), Some(status), "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
