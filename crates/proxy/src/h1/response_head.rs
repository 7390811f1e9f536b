//! Reading an instance's response head and writing the one the client gets.
//!
//! The head is parsed with `httparse` and rewritten in one pass into the outgoing buffer (the lines kept
//! are copied as the instance wrote them, unless one ends in a bare LF): hop-by-hop headers (and those
//! `Connection` names) are dropped, the framing is decided as RFC 9112 §6.3 says, and the
//! proxy's own headers (sticky cookie, `Date` when missing, `Connection: close`) are added. A response whose
//! framing could be read two ways (differing `Content-Length`s, an unknown transfer coding) is refused,
//! never guessed at.

use std::io::Write;
use std::mem::MaybeUninit;

use http::StatusCode;

use crate::h1::framing::parse_length;
use crate::h1::request_head::{name_is, trim};
use crate::http_date;

/// Response headers accepted from an instance (hyper's client limit).
const MAX_HEADERS: usize = 100;

/// Headers named by the instance's `Connection` header that are stripped; a response naming more is
/// refused.
const MAX_CONNECTION_TOKENS: usize = 8;

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseBody {
    /// HEAD responses, 204, 304.
    Empty,
    Length(u64),
    /// Relayed as it is, chunk framing included.
    Chunked,
    /// Until the instance closes; relayed to the client re-framed as chunks.
    UntilClose,
}

/// A final response head, already rewritten into the outgoing buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseHead {
    /// Where the head ends in the instance's buffer.
    pub(crate) end: usize,
    pub(crate) status: u16,
    pub(crate) body: ResponseBody,
    /// The instance closes the connection after this response (or may: HTTP/1.0).
    pub(crate) close: bool,
    /// `text/event-stream`: a long-lived stream for draining.
    pub(crate) event_stream: bool,
    /// Where the app's `Slipway-Flags` value is in the instance's buffer (the header itself is dropped):
    /// the variants it served, counted per variant (`flag_variants`).
    pub(crate) flags: Option<(usize, usize)>,
}

#[derive(Debug)]
pub(crate) enum ParsedResponse {
    Complete(ResponseHead),
    /// A 1xx interim response of this many bytes: skipped (the client never asked for it: requests with
    /// `Expect` go to hyper).
    Informational(usize),
    Partial,
    Invalid(&'static str),
}

/// What the proxy adds to the client's response head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientHead<'a> {
    /// The request was a HEAD: no body follows whatever the headers say.
    pub(crate) head_request: bool,
    /// A sticky cookie to set.
    pub(crate) set_cookie: Option<&'a [u8]>,
    /// `Strict-Transport-Security: max-age=` this (the app's own is replaced), over TLS only.
    pub(crate) hsts_max_age: Option<u64>,
    /// The client connection closes after this response.
    pub(crate) close: bool,
}

/// Parses the response head at the start of `buf` and, when complete, writes the client's head to `out`.
pub(crate) fn parse(buf: &[u8], client: &ClientHead<'_>, out: &mut Vec<u8>) -> ParsedResponse {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut storage,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return ParsedResponse::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return ParsedResponse::Invalid("sent too many response headers");
        }
        Err(_) => return ParsedResponse::Invalid("sent an invalid response head"),
    };
    let (Some(version), Some(status)) = (response.version, response.code) else {
        return ParsedResponse::Invalid("sent an invalid response head");
    };
    if status == 101 {
        return ParsedResponse::Invalid("switched protocols without being asked to");
    }
    if (100..200).contains(&status) {
        return ParsedResponse::Informational(len);
    }

    let mut length: Option<u64> = None;
    let mut coding: Option<&[u8]> = None;
    // HTTP/1.0 closes unless it says keep-alive.
    let mut close = version == 0;
    let mut named: [&[u8]; MAX_CONNECTION_TOKENS] = [b""; MAX_CONNECTION_TOKENS];
    let mut named_len = 0;
    let mut has_date = false;
    let mut event_stream = false;
    let mut flags = None;
    // Each name is classified once; the rewrite below reuses it.
    let mut kinds = [Kind::Other; MAX_HEADERS];
    for (header, kind) in response.headers.iter().zip(kinds.iter_mut()) {
        *kind = kind_of(header.name.as_bytes());
        let value = header.value;
        match kind {
            Kind::ContentLength => {
                // A list of equal lengths is one length (RFC 9110 §8.6); anything else is refused.
                // (Most values are one number: read without splitting.)
                let mut read = |element: &[u8]| match (parse_length(element), length) {
                    (Some(n), None) => {
                        length = Some(n);
                        true
                    }
                    (Some(n), Some(m)) => n == m,
                    (None, _) => false,
                };
                let valid = if value.contains(&b',') {
                    value.split(|&b| b == b',').all(&mut read)
                } else {
                    read(value)
                };
                if !valid {
                    return ParsedResponse::Invalid("sent an invalid Content-Length");
                }
            }
            Kind::TransferEncoding => {
                if coding.is_some() {
                    return ParsedResponse::Invalid("sent several Transfer-Encoding headers");
                }
                coding = Some(trim(value));
            }
            Kind::Connection => {
                for token in value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        close &= version != 0;
                    } else if !token.is_empty() {
                        if named_len == MAX_CONNECTION_TOKENS {
                            return ParsedResponse::Invalid("named too many Connection options");
                        }
                        named[named_len] = token;
                        named_len += 1;
                    }
                }
            }
            Kind::Date => has_date = true,
            Kind::ContentType => {
                event_stream =
                    value.len() >= 17 && value[..17].eq_ignore_ascii_case(b"text/event-stream");
            }
            Kind::SlipwayFlags => {
                let at = value.as_ptr() as usize - buf.as_ptr() as usize;
                flags.get_or_insert((at, at + value.len()));
            }
            Kind::HopByHop | Kind::Hsts | Kind::Other => {}
        }
    }
    if coding.is_some() && version == 0 {
        // RFC 9112 §6.1: an HTTP/1.0 message with a transfer coding has faulty framing.
        return ParsedResponse::Invalid("sent Transfer-Encoding in an HTTP/1.0 response");
    }
    let body = if client.head_request || status == 204 || status == 304 {
        ResponseBody::Empty
    } else if let Some(coding) = coding {
        let last = coding.rsplit(|&b| b == b',').next().map_or(&b""[..], trim);
        if !last.eq_ignore_ascii_case(b"chunked") {
            return ParsedResponse::Invalid("sent a transfer coding the proxy cannot frame");
        }
        ResponseBody::Chunked
    } else if let Some(n) = length {
        ResponseBody::Length(n)
    } else {
        ResponseBody::UntilClose
    };
    // Both framing headers: the transfer coding wins (RFC 9112 §6.3), but an instance that sends both may
    // frame its next response differently too, so its connection is not reused.
    let close = close || body == ResponseBody::UntilClose || (coding.is_some() && length.is_some());

    out.clear();
    out.reserve(len + 128);
    // Kept lines go out as the instance wrote them, each run of adjacent ones in one copy; a line is
    // rewritten only when it does not end in CRLF. A line ends where the next header's name starts (the
    // last one before the blank line that ends the head).
    let line_start = |at: usize| {
        response.headers.get(at).map_or(len.saturating_sub(2), |h| {
            h.name.as_ptr() as usize - buf.as_ptr() as usize
        })
    };
    let mut run = 0..0;
    let status_end = line_start(0);
    match response.reason {
        Some(reason)
            if version == 1 && !reason.is_empty() && buf[..status_end].ends_with(b"\r\n") =>
        {
            run = 0..status_end;
        }
        reason => {
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(&[
                b'0' + (status / 100) as u8,
                b'0' + (status / 10 % 10) as u8,
                b'0' + (status % 10) as u8,
                b' ',
            ]);
            let reason = reason.filter(|r| !r.is_empty()).unwrap_or_else(|| {
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
            });
            out.extend_from_slice(reason.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    let named = &named[..named_len];
    for (at, (header, kind)) in response.headers.iter().zip(kinds).enumerate() {
        let name = header.name.as_bytes();
        let dropped = match kind {
            Kind::HopByHop | Kind::Connection | Kind::TransferEncoding | Kind::SlipwayFlags => true,
            // With a transfer coding, Content-Length must not reach the client (RFC 9112 §6.3).
            Kind::ContentLength if coding.is_some() => true,
            // The proxy's own replaces it.
            Kind::Hsts if client.hsts_max_age.is_some() => true,
            _ => !named.is_empty() && named.iter().any(|n| n.eq_ignore_ascii_case(name)),
        };
        if dropped {
            continue;
        }
        let (start, end) = (line_start(at), line_start(at + 1));
        if buf[..end].ends_with(b"\r\n") {
            if run.end != start {
                out.extend_from_slice(&buf[run]);
                run = start..start;
            }
            run.end = end;
        } else {
            out.extend_from_slice(&buf[run]);
            run = end..end;
            put_header(out, name, header.value);
        }
    }
    out.extend_from_slice(&buf[run]);
    if let Some(cookie) = client.set_cookie {
        put_header(out, b"set-cookie", cookie);
    }
    if let Some(max_age) = client.hsts_max_age {
        // Written in place: no string made per response.
        out.extend_from_slice(b"strict-transport-security: max-age=");
        let _ = write!(out, "{max_age}");
        out.extend_from_slice(b"\r\n");
    }
    match (body, coding) {
        (ResponseBody::UntilClose, _) => put_header(out, b"transfer-encoding", b"chunked"),
        (_, Some(coding)) if status != 204 && status != 304 => {
            put_header(out, b"transfer-encoding", coding);
        }
        _ => {}
    }
    if !has_date {
        put_header(out, b"date", &http_date::now());
    }
    if client.close {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    ParsedResponse::Complete(ResponseHead {
        end: len,
        status,
        body,
        close,
        event_stream,
        flags,
    })
}

/// The response headers the proxy reads or drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ContentLength,
    TransferEncoding,
    Connection,
    /// Describes the instance's connection, not the message: dropped.
    HopByHop,
    Date,
    ContentType,
    /// `Strict-Transport-Security`: replaced by the proxy's own when the app asks for HSTS.
    Hsts,
    /// The app's note to the proxy of the flag variants it served; never reaches the client.
    SlipwayFlags,
    Other,
}

/// By length first, so most names cost one comparison at most.
fn kind_of(name: &[u8]) -> Kind {
    let is = |known: &[u8]| name_is(name, known);
    match name.len() {
        2 if is(b"te") => Kind::HopByHop,
        4 if is(b"date") => Kind::Date,
        7 if is(b"upgrade") || is(b"trailer") => Kind::HopByHop,
        10 if is(b"connection") => Kind::Connection,
        10 if is(b"keep-alive") => Kind::HopByHop,
        12 if is(b"content-type") => Kind::ContentType,
        13 if is(b"slipway-flags") => Kind::SlipwayFlags,
        14 if is(b"content-length") => Kind::ContentLength,
        16 if is(b"proxy-connection") => Kind::HopByHop,
        17 if is(b"transfer-encoding") => Kind::TransferEncoding,
        25 if is(b"strict-transport-security") => Kind::Hsts,
        _ => Kind::Other,
    }
}

// Inlined: called for every header written on the hot path (out of line it cost ~800 instructions a request).
#[inline(always)]
pub(crate) fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: ClientHead<'static> = ClientHead {
        head_request: false,
        set_cookie: None,
        hsts_max_age: None,
        close: false,
    };

    fn complete(raw: &[u8], client: &ClientHead<'_>) -> (ResponseHead, String) {
        let mut out = Vec::new();
        match parse(raw, client, &mut out) {
            ParsedResponse::Complete(head) => (head, String::from_utf8(out).expect("ascii")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rewrites_hop_by_hop_and_adds_ours() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\nokNEXT";
        let client = ClientHead {
            set_cookie: Some(b"c=v2"),
            close: true,
            ..PLAIN
        };
        let (head, text) = complete(raw, &client);
        assert_eq!(
            (head.status, head.body, head.close),
            (200, ResponseBody::Length(2), false)
        );
        assert_eq!(&raw[head.end..], b"okNEXT");
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nset-cookie: c=v2\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn kept_lines_go_as_written_and_bare_line_feeds_become_crlf() {
        // As written: the instance's spacing and case, in copies of whole runs of lines.
        let raw = b"HTTP/1.1 201 Made\r\nX-A:1\r\nx-b:  two  \r\nConnection: keep-alive\r\nContent-Length: 0\r\nDate: d\r\n\r\n";
        let (_, text) = complete(raw, &PLAIN);
        assert_eq!(
            text,
            "HTTP/1.1 201 Made\r\nX-A:1\r\nx-b:  two  \r\nContent-Length: 0\r\nDate: d\r\n\r\n"
        );
        // A line that ends in a bare LF (the status line, a header, the last header, the blank line) is
        // written again with CRLF, so the client never gets a bare LF; an HTTP/1.0 status line says 1.1.
        let raw = b"HTTP/1.0 200 OK\nX-A: 1\r\nX-B: 2\nContent-Length: 0\r\nDate: d\n\r\n";
        let (_, text) = complete(raw, &PLAIN);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 0\r\nDate: d\r\n\r\n"
        );
        let raw = b"HTTP/1.1 200 OK\r\nDate: d\r\nContent-Length: 0\r\n\n";
        let (_, text) = complete(raw, &PLAIN);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nDate: d\r\nContent-Length: 0\r\n\r\n"
        );
        // No headers at all, and no reason phrase.
        let (_, text) = complete(b"HTTP/1.1 204 \r\n\r\n", &PLAIN);
        assert!(
            text.starts_with("HTTP/1.1 204 No Content\r\ndate: "),
            "{text}"
        );
    }

    #[test]
    fn the_apps_flag_note_is_found_and_dropped() {
        let raw = b"HTTP/1.1 200 OK\r\nSlipway-Flags: a=on\r\nContent-Length: 0\r\nslipway-flags: b=off\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n";
        let (head, text) = complete(raw, &PLAIN);
        let (from, to) = head.flags.expect("found");
        assert_eq!(&raw[from..to], b"a=on", "the first one counts");
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n"
        );
    }

    #[test]
    fn hsts_replaces_the_apps_own() {
        let raw = b"HTTP/1.1 204 No Content\r\nStrict-Transport-Security: max-age=1\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n";
        let client = ClientHead {
            hsts_max_age: Some(600),
            ..PLAIN
        };
        let (_, text) = complete(raw, &client);
        assert_eq!(
            text,
            "HTTP/1.1 204 No Content\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nstrict-transport-security: max-age=600\r\n\r\n"
        );
        // Without it (plain HTTP), the app's header passes.
        let (_, text) = complete(raw, &PLAIN);
        assert!(
            text.contains("Strict-Transport-Security: max-age=1\r\n"),
            "{text}"
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (head, text) = complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            &PLAIN,
        );
        assert_eq!(head.body, ResponseBody::Chunked);
        assert!(
            text.contains("transfer-encoding: chunked") && !text.contains("Content-Length"),
            "{text}"
        );
        // The instance framed ambiguously: its connection is not pooled again.
        assert!(head.close);
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n", &PLAIN);
        assert_eq!((head.body, head.close), (ResponseBody::Length(2), false));
        let (head, text) = complete(b"HTTP/1.1 200 OK\r\n\r\n", &PLAIN);
        assert_eq!((head.body, head.close), (ResponseBody::UntilClose, true));
        assert!(
            text.contains("transfer-encoding: chunked\r\ndate: "),
            "{text}"
        );
        let head_request = ClientHead {
            head_request: true,
            ..PLAIN
        };
        let (head, text) = complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            &head_request,
        );
        assert_eq!(head.body, ResponseBody::Empty);
        assert!(text.contains("Content-Length: 5"), "{text}");
        for status in ["204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {status}\r\nDate: x\r\n\r\n");
            assert_eq!(complete(raw.as_bytes(), &PLAIN).0.body, ResponseBody::Empty);
        }
        let (head, _) = complete(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &PLAIN);
        assert!(head.close);
        let (head, _) = complete(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            &PLAIN,
        );
        assert!(!head.close);
    }

    #[test]
    fn interim_and_invalid_responses() {
        let mut out = Vec::new();
        assert!(matches!(
            parse(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200",
                &PLAIN,
                &mut out
            ),
            ParsedResponse::Informational(40)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Le", &PLAIN, &mut out),
            ParsedResponse::Partial
        ));
        for raw in [
            &b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw, &PLAIN, &mut out), ParsedResponse::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn event_streams_are_recognised() {
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n", &PLAIN);
        assert!(head.event_stream);
    }
}
