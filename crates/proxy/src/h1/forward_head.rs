//! Writing the request head an instance gets: the client's head with hop-by-hop headers dropped, and
//! `X-Forwarded-For/-Proto/-Host`, `X-Request-Id` and `Host` set as the hyper path sets them
//! (`headers::add_forwarded`), straight into one reused buffer.

use crate::h1::request_head::{HeaderKind, HeaderSpan, RequestBody, RequestHead};
use crate::h1::response_head::put_header;

/// What the proxy adds to a forwarded request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding<'a> {
    /// Appended to `X-Forwarded-For`.
    pub(crate) client_ip: &'a [u8],
    /// Sent as `X-Request-Id` when the client sent none.
    pub(crate) request_id: &'a [u8],
    /// The client connection is TLS: `X-Forwarded-Proto: https`.
    pub(crate) tls: bool,
}

pub(crate) fn write(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    headers: &[HeaderSpan],
    forwarding: &Forwarding<'_>,
) {
    out.clear();
    out.extend_from_slice(head.method.of(buf));
    out.push(b' ');
    out.extend_from_slice(head.target.of(buf));
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for = false;
    for header in headers {
        match header.kind {
            HeaderKind::HopByHop
            | HeaderKind::TransferEncoding
            | HeaderKind::ContentLength
            | HeaderKind::XForwardedFor
            | HeaderKind::XForwardedProto
            | HeaderKind::XForwardedHost => {
                forwarded_for |= header.kind == HeaderKind::XForwardedFor;
            }
            HeaderKind::Other if head.is_connection_named(buf, header.name.of(buf)) => {}
            _ => put_header(out, header.name.of(buf), header.value.of(buf)),
        }
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if forwarded_for {
        for header in headers
            .iter()
            .filter(|h| h.kind == HeaderKind::XForwardedFor)
        {
            out.extend_from_slice(header.value.of(buf));
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(forwarding.client_ip);
    out.extend_from_slice(if forwarding.tls {
        b"\r\nx-forwarded-proto: https\r\n".as_slice()
    } else {
        b"\r\nx-forwarded-proto: http\r\n"
    });
    put_header(out, b"x-forwarded-host", head.host.of(buf));
    if !head.has_request_id {
        put_header(out, b"x-request-id", forwarding.request_id);
    }
    // The framing the proxy decided on, in one header (lengths that agreed may have been several).
    if head.body == RequestBody::Chunked {
        put_header(out, b"transfer-encoding", b"chunked");
    } else if let Some(length) = head.declared_length {
        put_header(out, b"content-length", length.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1::request_head::{Parsed, parse};

    fn forwarded(raw: &[u8]) -> String {
        forwarded_over(raw, false)
    }

    fn forwarded_over(raw: &[u8], tls: bool) -> String {
        let mut headers = Vec::new();
        let Parsed::Complete(head) = parse(raw, 0, &mut headers) else {
            panic!("complete");
        };
        let mut out = Vec::new();
        let forwarding = Forwarding {
            client_ip: b"10.0.0.9",
            request_id: b"0123456789abcdef0123456789abcdef",
            tls,
        };
        write(&mut out, raw, &head, &headers, &forwarding);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn adds_forwarding_headers_and_drops_hop_by_hop() {
        let text = forwarded(b"GET /x?y=1 HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            text,
            "GET /x?y=1 HTTP/1.1\r\nHost: app.test\r\nAccept: */*\r\nx-forwarded-for: 1.1.1.1, 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: app.test\r\nx-request-id: 0123456789abcdef0123456789abcdef\r\n\r\n"
        );
    }

    #[test]
    fn keeps_the_clients_request_id_and_reframes_bodies() {
        let text = forwarded(
            b"POST / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(
            text,
            "POST / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        // Lengths that agree reach the instance as one.
        let text = forwarded(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX-Request-Id: a\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(
            text,
            "POST / HTTP/1.1\r\nHost: h\r\nX-Request-Id: a\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\ncontent-length: 2\r\n\r\n"
        );
    }

    #[test]
    fn says_https_for_a_tls_client_whatever_it_sent() {
        let text = forwarded_over(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: a\r\nX-Forwarded-Proto: http\r\n\r\n",
            true,
        );
        assert_eq!(
            text,
            "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: a\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: https\r\nx-forwarded-host: h\r\n\r\n"
        );
    }
}
