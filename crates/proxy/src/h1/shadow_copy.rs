//! The body-less copy of a fast-path request that a mirror sends to its shadow release, built as the hyper
//! path builds it (same forwarding headers and request id as the primary, plus `X-Slipway-Shadow`). Only
//! mirrored requests pay for building a `HeaderMap`.

use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri, Version};

use crate::backend::Backend;
use crate::forward::{X_SLIPWAY_SHADOW, authority_value};
use crate::h1::request_head::{HeaderKind, HeaderSpan, RequestHead};
use crate::headers::{self, X_REQUEST_ID};
use crate::request_body::RequestBody;

pub(crate) fn request(
    buf: &[u8],
    head: &RequestHead,
    spans: &[HeaderSpan],
    client_ip: &HeaderValue,
    tls: bool,
    request_id: &[u8; 32],
    shadow: &Backend,
) -> Request<RequestBody> {
    let mut map = HeaderMap::with_capacity(spans.len() + 6);
    for span in spans {
        let name = span.name.of(buf);
        let dropped = matches!(
            span.kind,
            HeaderKind::HopByHop | HeaderKind::TransferEncoding | HeaderKind::ContentLength
        ) || (span.kind == HeaderKind::Other && head.is_connection_named(buf, name));
        if dropped {
            continue;
        }
        // httparse already checked names and values; nothing is lost here.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(span.value.of(buf)),
        ) {
            map.append(name, value);
        }
    }
    let host = HeaderValue::from_bytes(head.host.of(buf)).ok();
    if !head.has_request_id
        && let Ok(id) = HeaderValue::from_bytes(request_id)
    {
        map.insert(X_REQUEST_ID.clone(), id);
    }
    headers::add_forwarded(&mut map, client_ip, host.as_ref(), tls);
    map.insert(X_SLIPWAY_SHADOW.clone(), HeaderValue::from_static("1"));
    if host.is_none() {
        map.insert(HOST, authority_value(shadow));
    }
    let mut copy = Request::new(RequestBody::Empty);
    *copy.method_mut() = Method::from_bytes(head.method.of(buf)).unwrap_or(Method::GET);
    *copy.uri_mut() = Uri::try_from(head.target.of(buf)).unwrap_or_else(|_| Uri::from_static("/"));
    *copy.version_mut() = Version::HTTP_11;
    *copy.headers_mut() = map;
    copy
}
