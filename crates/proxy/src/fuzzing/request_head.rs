//! The fast path's request head parser (`h1::request_head::parse`), with its answer as plain data.

use std::ops::Range;

use crate::h1::fuzzing_access as h1;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    None,
    Length(u64),
    Chunked,
}

/// A head the fast path serves; every range is into the buffer given to [`parse_request_head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub end: usize,
    pub method: Range<usize>,
    pub target: Range<usize>,
    pub path: Range<usize>,
    pub host: Option<Range<usize>>,
    pub preview: Option<Range<usize>>,
    pub body: RequestBody,
    pub declared_length: Option<u64>,
    pub close: bool,
    pub has_request_id: bool,
    /// Each header's name and value, in order.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// The head the instance gets (`h1::forward_head`), from client 10.0.0.9 with request id `fuzz-id`.
    pub forwarded: Vec<u8>,
}

/// What follows a request on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Requests,
    /// Depends on the answer (a switch of protocols).
    Upgrade,
    /// Bytes that are not HTTP/1.
    Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRequest {
    Complete(RequestHead),
    Partial,
    /// Valid, served by hyper: where the head ends, its body, and what follows it.
    Handoff {
        end: usize,
        body: RequestBody,
        then: Then,
    },
    Reject(u16, &'static str),
}

/// Parses the head starting at `buf[start..]`.
pub fn parse_request_head(buf: &[u8], start: usize) -> ParsedRequest {
    let mut headers = Vec::new();
    match h1::parse_request_head(buf, start, &mut headers) {
        h1::Parsed::Complete(head) => {
            let mut forwarded = Vec::new();
            let forwarding = h1::Forwarding {
                client_ip: b"10.0.0.9",
                request_id: b"fuzz-id",
                tls: false,
            };
            h1::write_forwarded_head(&mut forwarded, buf, &head, &headers, &forwarding);
            ParsedRequest::Complete(RequestHead {
                end: head.end,
                method: range(head.method),
                target: range(head.target),
                path: range(head.path),
                host: Some(range(head.host)),
                preview: head.preview.map(range),
                body: body(head.body),
                declared_length: head.declared_length,
                close: head.close,
                has_request_id: head.has_request_id,
                headers: headers
                    .iter()
                    .map(|h| (range(h.name), range(h.value)))
                    .collect(),
                forwarded,
            })
        }
        h1::Parsed::Partial => ParsedRequest::Partial,
        h1::Parsed::Handoff(framing) => ParsedRequest::Handoff {
            end: framing.end,
            body: body(framing.body),
            then: match framing.then {
                h1::Then::Requests => Then::Requests,
                h1::Then::Upgrade => Then::Upgrade,
                h1::Then::Opaque => Then::Opaque,
            },
        },
        h1::Parsed::Reject(status, message) => ParsedRequest::Reject(status.as_u16(), message),
    }
}

fn range(span: h1::Span) -> Range<usize> {
    span.start..span.end
}

fn body(body: h1::RequestBody) -> RequestBody {
    match body {
        h1::RequestBody::None => RequestBody::None,
        h1::RequestBody::Length(n) => RequestBody::Length(n),
        h1::RequestBody::Chunked => RequestBody::Chunked,
    }
}
