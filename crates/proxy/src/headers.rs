//! Header rewriting between client and instance: hop-by-hop headers removed, `X-Forwarded-*` and
//! `X-Request-Id` added.
//!
//! Hop-by-hop headers describe one connection (RFC 9110 §7.6.1) and must not be forwarded; the proxy owns
//! keep-alive on both sides. The common case (no hop-by-hop header at all) is checked with one pass over
//! the names, so most requests pay no hash lookups here.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use http::header::{CONNECTION, HeaderName, HeaderValue, UPGRADE};

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static X_SLIPWAY_RELEASE: HeaderName = HeaderName::from_static("x-slipway-release");

/// Most common first: removal stops once every one present is gone.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Removes hop-by-hop headers, including those the `Connection` header names. With `keep_upgrade`, the
/// upgrade handshake (`Connection: upgrade` + `Upgrade`) is kept, since the instance must see it.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut present = headers.keys().filter(|name| is_hop_by_hop(name)).count();
    if present == 0 {
        return;
    }
    let upgrade = if keep_upgrade {
        headers.get(UPGRADE).cloned()
    } else {
        None
    };
    // Extra headers named by `Connection` (rare: only allocate when there are some).
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        for token in value.to_str().unwrap_or("").split(',') {
            let token = token.trim();
            if token.is_empty() || HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(token)) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        if present == 0 {
            break;
        }
        if headers.remove(name).is_some() {
            present -= 1;
        }
    }
    if let Some(upgrade) = upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, upgrade);
    }
}

/// True when the request asks to switch protocols (`Connection: upgrade` and an `Upgrade` header).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// Adds `X-Forwarded-For` (appending `client_ip`), `X-Forwarded-Proto` (`https` when the client came over
/// TLS), `X-Forwarded-Host` and an `X-Request-Id` when the client sent none.
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    host: Option<&HeaderValue>,
    tls: bool,
) {
    let forwarded_for = if headers.contains_key(&X_FORWARDED_FOR) {
        let mut joined = Vec::new();
        for value in headers.get_all(&X_FORWARDED_FOR) {
            joined.extend_from_slice(value.as_bytes());
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(client_ip.as_bytes());
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client_ip.clone())
    } else {
        client_ip.clone()
    };
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    let proto = if tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), new_request_id());
    }
}

/// Per-process random prefix; with a counter after it, ids are unique without coordination.
/// The first half of every request id this process makes: random, written out once.
static REQUEST_ID_PREFIX: LazyLock<[u8; 16]> = LazyLock::new(|| hex(rand::random::<u64>()));
static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique 32-hex-digit request id.
pub(crate) fn new_request_id() -> HeaderValue {
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&request_id()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A unique request id as 32 lowercase hex digits: the process's random prefix, then a counter.
pub(crate) fn request_id() -> [u8; 32] {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 32];
    id[..16].copy_from_slice(&*REQUEST_ID_PREFIX);
    id[16..].copy_from_slice(&hex(n));
    id
}

fn hex(word: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, byte) in word.to_be_bytes().into_iter().enumerate() {
        digits[2 * i] = HEX[usize::from(byte >> 4)];
        digits[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn keeps_upgrade_handshake() {
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(
            h.get("connection").map(|v| v.as_bytes()),
            Some(&b"upgrade"[..])
        );
        assert_eq!(
            h.get("upgrade").map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        assert!(!wants_upgrade(&map(&[("connection", "close")])));
    }

    #[test]
    fn forwarded_headers() {
        let ip = HeaderValue::from_static("10.0.0.9");
        let host = HeaderValue::from_static("app.test");
        let mut h = map(&[("x-forwarded-for", "1.1.1.1"), ("x-request-id", "abc")]);
        add_forwarded(&mut h, &ip, Some(&host), false);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.test");
        assert_eq!(h["x-request-id"], "abc");
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &ip, None, true);
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        assert_eq!(h["x-request-id"].len(), 32);
    }

    #[test]
    fn request_ids_differ() {
        assert_ne!(new_request_id(), new_request_id());
    }
}
