//! The fast path's response head parser and rewriter (`h1::response_head::parse`).

use crate::h1::fuzzing_access as h1;

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub end: usize,
    pub status: u16,
    pub body: ResponseBody,
    pub close: bool,
    pub event_stream: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedResponse {
    /// The head; the client's head is in `out`.
    Complete(ResponseHead),
    Informational(usize),
    Partial,
    Invalid(&'static str),
}

/// What the proxy adds to the client's response head.
#[derive(Debug, Clone, Copy)]
pub struct ClientHead<'a> {
    pub head_request: bool,
    pub set_cookie: Option<&'a [u8]>,
    pub close: bool,
}

/// Parses the response head at the start of `buf`; when complete, the client's head is written to `out`.
pub fn parse_response_head(
    buf: &[u8],
    client: &ClientHead<'_>,
    out: &mut Vec<u8>,
) -> ParsedResponse {
    let client = h1::ClientHead {
        head_request: client.head_request,
        set_cookie: client.set_cookie,
        hsts_max_age: None,
        close: client.close,
    };
    match h1::parse_response_head(buf, &client, out) {
        h1::ParsedResponse::Complete(head) => ParsedResponse::Complete(ResponseHead {
            end: head.end,
            status: head.status,
            body: match head.body {
                h1::ResponseBody::Empty => ResponseBody::Empty,
                h1::ResponseBody::Length(n) => ResponseBody::Length(n),
                h1::ResponseBody::Chunked => ResponseBody::Chunked,
                h1::ResponseBody::UntilClose => ResponseBody::UntilClose,
            },
            close: head.close,
            event_stream: head.event_stream,
        }),
        h1::ParsedResponse::Informational(len) => ParsedResponse::Informational(len),
        h1::ParsedResponse::Partial => ParsedResponse::Partial,
        h1::ParsedResponse::Invalid(why) => ParsedResponse::Invalid(why),
    }
}
