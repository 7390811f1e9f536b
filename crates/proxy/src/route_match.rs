//! Route rules' request matching (A/B tests, internal testing): all the rule's headers and cookies must be
//! present with exactly the given values.
//!
//! Rules are compiled once per table (header names parsed), and cookies are looked up by scanning the
//! `Cookie` header(s) in place, without building a map: only apps with rules or a cookie-sticky pay for it.

use http::header::HeaderName;
use slipway_core::spec::RouteMatch;

use crate::request_headers::RequestHeaders;

/// A [`RouteMatch`] ready for per-request checks.
#[derive(Debug, Clone)]
pub(crate) struct CompiledMatch {
    headers: Vec<(HeaderName, String)>,
    cookies: Vec<(String, String)>,
}

impl CompiledMatch {
    /// `None` when a header name is not a valid HTTP header name (no request could match it).
    pub(crate) fn compile(matcher: &RouteMatch) -> Option<CompiledMatch> {
        let headers = matcher
            .headers
            .iter()
            .map(|(name, value)| {
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .ok()
                    .map(|name| (name, value.clone()))
            })
            .collect::<Option<Vec<_>>>()?;
        let cookies = matcher
            .cookies
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Some(CompiledMatch { headers, cookies })
    }

    pub(crate) fn matches(&self, headers: &impl RequestHeaders) -> bool {
        self.headers.iter().all(|(name, want)| {
            headers
                .first(name.as_str())
                .is_some_and(|got| got == want.as_bytes())
        }) && self
            .cookies
            .iter()
            .all(|(name, want)| cookie(headers, name) == Some(want.as_str()))
    }
}

/// The value of cookie `name` in the request's `Cookie` header(s) (HTTP/2 may split them), surrounding
/// quotes removed.
pub(crate) fn cookie<'a>(headers: &'a impl RequestHeaders, name: &str) -> Option<&'a str> {
    for value in headers.values("cookie") {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for pair in value.split(';') {
            if let Some((key, found)) = pair.split_once('=')
                && key.trim() == name
            {
                let found = found.trim();
                let found = found
                    .strip_prefix('"')
                    .and_then(|f| f.strip_suffix('"'))
                    .unwrap_or(found);
                return Some(found);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cookies_are_found_in_any_cookie_header() {
        let h = headers(&[("cookie", "a=1; b = \"two\""), ("cookie", "c=3")]);
        assert_eq!(cookie(&h, "a"), Some("1"));
        assert_eq!(cookie(&h, "b"), Some("two"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "d"), None);
        assert_eq!(cookie(&HeaderMap::new(), "a"), None);
    }

    #[test]
    fn all_headers_and_cookies_must_match() {
        let mut m = RouteMatch::default();
        m.headers.insert("X-Beta".to_owned(), "yes".to_owned());
        m.cookies.insert("group".to_owned(), "b".to_owned());
        let c = CompiledMatch::compile(&m).expect("valid");
        assert!(c.matches(&headers(&[("x-beta", "yes"), ("cookie", "x=1; group=b")])));
        assert!(!c.matches(&headers(&[("x-beta", "yes")])));
        assert!(!c.matches(&headers(&[("x-beta", "YES"), ("cookie", "group=b")])));
        assert!(
            CompiledMatch::compile(&RouteMatch::default())
                .expect("empty")
                .matches(&HeaderMap::new())
        );
        let mut bad = RouteMatch::default();
        bad.headers.insert("bad header".to_owned(), "x".to_owned());
        assert!(CompiledMatch::compile(&bad).is_none());
    }
}
