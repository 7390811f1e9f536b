//! URLs that slipway calls: analysis endpoints (Prometheus, HTTP checks) and webhooks.
//!
//! They must be absolute `http`/`https` URLs: a check runs inside the daemon, which has no "current
//! page" to resolve a relative URL against. A webhook URL usually carries its credential in the path
//! (Slack's `/services/T…/B…/secret`), so messages about URLs only ever show the scheme and host.

use http::Uri;

/// Why a string is not a usable URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlProblem {
    Empty,
    /// No `scheme://`: a path, or `host:port/...`.
    Relative,
    /// A scheme other than http or https (the scheme alone, lowercased).
    Scheme(String),
    Invalid,
}

impl UrlProblem {
    /// A message fragment: "is not an absolute URL".
    pub(crate) fn message(&self) -> String {
        match self {
            UrlProblem::Empty => "is empty".into(),
            UrlProblem::Relative => "is not an absolute URL".into(),
            UrlProblem::Scheme(s) => format!("uses \"{s}\": only http and https are supported"),
            UrlProblem::Invalid => "is not a valid URL".into(),
        }
    }
}

/// Checks that `text` is an absolute http(s) URL with a host.
pub(crate) fn check_http(text: &str) -> Result<(), UrlProblem> {
    let t = text.trim();
    if t.is_empty() {
        return Err(UrlProblem::Empty);
    }
    if !t.contains("://") {
        return Err(UrlProblem::Relative);
    }
    let uri: Uri = t.parse().map_err(|_| UrlProblem::Invalid)?;
    let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(UrlProblem::Scheme(scheme));
    }
    match uri.host() {
        Some(h) if !h.is_empty() && t == text => Ok(()),
        _ => Err(UrlProblem::Invalid),
    }
}

/// `"https://hooks.slack.com"` for a webhook URL: what may be shown of it. `None` when it has no
/// recognisable host (then nothing of it is shown).
pub(crate) fn origin(text: &str) -> Option<String> {
    let uri: Uri = text.trim().parse().ok()?;
    let scheme = uri.scheme_str()?;
    let host = uri.host().filter(|h| !h.is_empty())?;
    Some(format!("{}://{host}", scheme.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_urls_pass() {
        for ok in [
            "http://127.0.0.1:9090",
            "https://hooks.slack.com/services/T000/B000/XXX",
            "http://localhost:9000/healthz?full=1",
            "HTTPS://Example.com/",
            "http://[::1]:9090/prom",
        ] {
            assert_eq!(check_http(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn relative_and_foreign_urls_fail() {
        assert_eq!(check_http(""), Err(UrlProblem::Empty));
        assert_eq!(check_http("/healthz"), Err(UrlProblem::Relative));
        assert_eq!(check_http("localhost:9090"), Err(UrlProblem::Relative));
        assert_eq!(
            check_http("ftp://example.com/x"),
            Err(UrlProblem::Scheme("ftp".into()))
        );
        assert_eq!(check_http("http://"), Err(UrlProblem::Invalid));
        assert_eq!(check_http("http://exa mple.com"), Err(UrlProblem::Invalid));
        assert_eq!(check_http(" http://example.com"), Err(UrlProblem::Invalid));
    }

    #[test]
    fn origin_keeps_scheme_and_host_only() {
        assert_eq!(
            origin("https://user:pw@hooks.slack.com:443/services/T/B/secret?x=1").as_deref(),
            Some("https://hooks.slack.com")
        );
        assert_eq!(origin("/services/T/B/secret"), None);
        assert_eq!(origin("not a url"), None);
    }
}
