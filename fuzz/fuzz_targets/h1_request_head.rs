//! The fast path's request head parser: any bytes, at any offset in the connection's buffer, give one of
//! Complete / Partial / Handoff / Reject without a panic, and:
//! - every span lies within the head it came from; the head ends inside the buffer;
//! - the answer does not depend on where the head starts in the buffer, nor on the bytes after it;
//! - every strict prefix of a head it accepts is Partial (how TCP splits a head changes nothing);
//! - an accepted head has one framing: no `Content-Length` with `Transfer-Encoding`, and values without
//!   CR, LF or NUL;
//! - the head forwarded to the instance is itself a head this parser accepts, with the same method,
//!   target and body framing (what the instance reads is what the proxy decided).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_proxy::fuzzing::{ParsedRequest, RequestBody, parse_request_head};
use std::ops::Range;

fuzz_target!(|data: &[u8]| {
    // The first byte puts the head at an offset, as a pipelined request after another one.
    let Some((&offset, bytes)) = data.split_first() else {
        return;
    };
    let offset = usize::from(offset % 16);
    let parsed = parse_request_head(bytes, 0);

    let mut shifted = vec![b'x'; offset];
    shifted.extend_from_slice(bytes);
    assert_eq!(
        shift(parse_request_head(&shifted, offset), offset),
        parsed,
        "the answer moved with the offset"
    );

    let end = match &parsed {
        ParsedRequest::Complete(head) => {
            check_complete(bytes, head);
            head.end
        }
        ParsedRequest::Handoff { end, .. } => *end,
        ParsedRequest::Partial => {
            assert!(
                bytes.len() < 8192 + 4096 * 100,
                "an over-long head is Partial"
            );
            return;
        }
        ParsedRequest::Reject(status, _) => {
            assert!(
                matches!(status, 400 | 431 | 501 | 505),
                "refused with {status}"
            );
            return;
        }
    };
    assert!(end <= bytes.len());
    if end == 0 {
        // An h2c preface: nothing of it is read as HTTP/1.
        return;
    }
    assert_eq!(
        parse_request_head(&bytes[..end], 0),
        parsed,
        "the bytes after the head changed it"
    );
    for cut in [end - 1, end / 2, end.saturating_sub(3)] {
        assert_eq!(
            parse_request_head(&bytes[..cut], 0),
            ParsedRequest::Partial,
            "a prefix of {end} bytes cut at {cut} is not Partial"
        );
    }
});

fn check_complete(bytes: &[u8], head: &slipway_proxy::fuzzing::RequestHead) {
    let within = |r: &Range<usize>| {
        assert!(
            r.start <= r.end && r.end <= head.end,
            "{r:?} outside the head of {}",
            head.end
        )
    };
    within(&head.method);
    within(&head.target);
    within(&head.path);
    head.host.iter().chain(&head.preview).for_each(within);
    assert!(!head.method.is_empty() && bytes[head.target.start] == b'/');
    assert!(head.path.start == head.target.start && head.path.end <= head.target.end);
    let mut lengths = 0;
    let mut codings = 0;
    for (name, value) in &head.headers {
        within(name);
        within(value);
        let name = &bytes[name.clone()];
        let value = &bytes[value.clone()];
        assert!(
            !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "{value:?}"
        );
        lengths += usize::from(name.eq_ignore_ascii_case(b"content-length"));
        codings += usize::from(name.eq_ignore_ascii_case(b"transfer-encoding"));
    }
    assert!(
        lengths == 0 || codings == 0,
        "both framing headers accepted"
    );
    match head.body {
        RequestBody::Chunked => assert!(codings > 0 && head.declared_length.is_none()),
        RequestBody::Length(n) => assert!(n > 0 && head.declared_length == Some(n)),
        RequestBody::None => {
            assert!(codings == 0 && matches!(head.declared_length, None | Some(0)))
        }
    }

    check_forwarded(bytes, head);
}

/// What the instance gets is one head, read as httparse (hyper's parser) reads it, with the proxy's
/// framing and nothing hop-by-hop; and this parser reads it back to the same request (unless the headers
/// the proxy adds take it past the 100 headers it accepts).
fn check_forwarded(bytes: &[u8], head: &slipway_proxy::fuzzing::RequestHead) {
    let forwarded = &head.forwarded;
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut storage);
    let status = request.parse(forwarded);
    assert!(
        matches!(status, Ok(httparse::Status::Complete(n)) if n == forwarded.len()),
        "the forwarded head does not parse: {status:?} {:?}",
        String::from_utf8_lossy(forwarded)
    );
    assert_eq!(
        request.method.map(str::as_bytes),
        Some(&bytes[head.method.clone()])
    );
    assert_eq!(
        request.path.map(str::as_bytes),
        Some(&bytes[head.target.clone()])
    );
    let values = |name: &str| {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect::<Vec<_>>()
    };
    for hop in [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "upgrade",
    ] {
        assert!(values(hop).is_empty(), "{hop} reached the instance");
    }
    assert_eq!(values("host").len(), 1, "the instance gets one Host");
    let lengths = values("content-length");
    let codings = values("transfer-encoding");
    match head.body {
        RequestBody::Chunked => assert!(lengths.is_empty() && codings == [b"chunked"]),
        _ => {
            let declared = head.declared_length.map(|n| n.to_string());
            assert!(codings.is_empty());
            assert_eq!(
                lengths,
                declared.iter().map(String::as_bytes).collect::<Vec<_>>()
            );
        }
    }
    match parse_request_head(forwarded, 0) {
        ParsedRequest::Complete(again) => {
            assert_eq!(again.end, forwarded.len());
            assert_eq!(
                again.body, head.body,
                "the instance frames the body otherwise"
            );
            assert_eq!(again.declared_length, head.declared_length);
        }
        ParsedRequest::Reject(431, _) if request.headers.len() > 100 => {}
        other => panic!(
            "the forwarded head {:?} parses as {other:?}",
            String::from_utf8_lossy(forwarded)
        ),
    }
}

/// The answer for a head at `offset`, with its positions moved back to offset 0.
fn shift(parsed: ParsedRequest, offset: usize) -> ParsedRequest {
    let back = |r: Range<usize>| r.start - offset..r.end - offset;
    match parsed {
        ParsedRequest::Complete(mut head) => {
            head.end -= offset;
            head.method = back(head.method);
            head.target = back(head.target);
            head.path = back(head.path);
            head.host = head.host.map(back);
            head.preview = head.preview.map(back);
            for (name, value) in &mut head.headers {
                *name = back(name.clone());
                *value = back(value.clone());
            }
            ParsedRequest::Complete(head)
        }
        ParsedRequest::Handoff { end, body, then } => ParsedRequest::Handoff {
            end: end - offset,
            body,
            then,
        },
        other => other,
    }
}
