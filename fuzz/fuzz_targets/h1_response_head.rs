//! The fast path's response head parser and rewriter: any bytes from an instance give Complete /
//! Informational / Partial / Invalid without a panic, and for a head it accepts:
//! - the head ends inside the buffer, the answer does not depend on the bytes after it, and every strict
//!   prefix of it is Partial (how the instance's writes are split changes nothing);
//! - the head the client gets is one complete HTTP/1.1 head with the same status, no hop-by-hop headers
//!   of the instance's, at most one framing header, and that framing agrees with the one the proxy
//!   relays the body by; with a close asked for, it says `Connection: close`.
//! - a body read until the instance closes never leaves the connection in the pool.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_proxy::fuzzing::{ClientHead, ParsedResponse, ResponseBody, parse_response_head};

const COOKIE: &[u8] = b"slipway_canary=v2; Path=/; HttpOnly; SameSite=Lax";

fuzz_target!(|data: &[u8]| {
    // The first byte is the request the response answers: HEAD or not, sticky cookie, client closing.
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let client = ClientHead {
        head_request: flags & 1 != 0,
        set_cookie: (flags & 2 != 0).then_some(COOKIE),
        close: flags & 4 != 0,
    };
    let mut out = Vec::new();
    let parsed = parse_response_head(bytes, &client, &mut out);
    let (end, head) = match parsed {
        ParsedResponse::Complete(head) => (head.end, head),
        ParsedResponse::Informational(len) => {
            assert!(len > 0 && len <= bytes.len());
            return;
        }
        ParsedResponse::Partial | ParsedResponse::Invalid(_) => return,
    };
    assert!(end > 0 && end <= bytes.len());
    let mut again = Vec::new();
    assert_eq!(
        parse_response_head(&bytes[..end], &client, &mut again),
        parsed
    );
    for cut in [end - 1, end / 2] {
        assert_eq!(
            parse_response_head(&bytes[..cut], &client, &mut Vec::new()),
            ParsedResponse::Partial,
            "a prefix of {end} bytes cut at {cut} is not Partial"
        );
    }
    if head.body == ResponseBody::UntilClose {
        assert!(
            head.close,
            "a response without a length would go back to the pool"
        );
    }

    // The client's head.
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    let status = response.parse(&out);
    assert!(
        matches!(status, Ok(httparse::Status::Complete(n)) if n == out.len()),
        "the client's head does not parse: {status:?} {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(response.version, Some(1));
    assert_eq!(response.code, Some(head.status));
    let values = |name: &str| {
        response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect::<Vec<_>>()
    };
    for hop in ["keep-alive", "te", "trailer", "upgrade", "proxy-connection"] {
        assert!(values(hop).is_empty(), "{hop} reached the client");
    }
    let connection = values("connection");
    assert!(connection.iter().all(|v| v.eq_ignore_ascii_case(b"close")));
    assert_eq!(!connection.is_empty(), client.close);
    let lengths = values("content-length");
    let codings = values("transfer-encoding");
    assert!(codings.len() <= 1, "several Transfer-Encoding headers");
    assert!(
        lengths.is_empty() || codings.is_empty(),
        "both framing headers"
    );
    let chunked_last = codings.first().is_some_and(|c| {
        let last = c.rsplit(|&b| b == b',').next().unwrap_or_default();
        last.trim_ascii().eq_ignore_ascii_case(b"chunked")
    });
    match head.body {
        ResponseBody::Chunked | ResponseBody::UntilClose => assert!(chunked_last),
        ResponseBody::Length(n) => {
            assert!(codings.is_empty());
            for value in lengths {
                for element in value.split(|&b| b == b',') {
                    let element = std::str::from_utf8(element.trim_ascii()).expect("digits");
                    assert_eq!(
                        element.parse::<u64>().ok(),
                        Some(n),
                        "the client reads another length"
                    );
                }
            }
        }
        ResponseBody::Empty => {}
    }
    if client.set_cookie.is_some() {
        assert!(values("set-cookie").contains(&COOKIE));
    }
});
