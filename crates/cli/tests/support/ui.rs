//! The dashboard as a test client sees it: logging in with a token gives a session cookie, and every
//! page carries the session's CSRF token (in the logout form).

use super::http::{Response, get, request};
use std::net::SocketAddr;

pub const COOKIE: &str = "slipway_session";

/// A logged-in dashboard session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session id, the cookie's value.
    pub id: String,
    pub csrf: String,
}

impl Session {
    pub fn cookie(&self) -> String {
        format!("{COOKIE}={}", self.id)
    }
}

/// `POST /ui/login` with `token`, sending `cookie` (a session the browser already had) if given.
pub fn post_login(api: SocketAddr, token: &str, cookie: Option<&str>) -> Response {
    let body = format!("token={}", form_encode(token));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    request(api, "POST", "/ui/login", &headers, &body, true).expect("POST /ui/login")
}

/// The session id a login answer sets, if it set one.
pub fn session_id(answer: &Response) -> Option<String> {
    answer
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix(&format!("{COOKIE}=")))
        .and_then(|v| v.split(';').next())
        .filter(|id| !id.is_empty())
        .map(String::from)
}

/// Logs in (it must succeed) and reads the CSRF token from the overview page.
pub fn login(api: SocketAddr, token: &str) -> Session {
    let answer = post_login(api, token, None);
    assert_eq!(answer.status, 303, "login refused: {answer:?}");
    let id = session_id(&answer).unwrap_or_else(|| panic!("no session cookie: {answer:?}"));
    let cookie = format!("{COOKIE}={id}");
    let page = get(api, "/ui/", &[("Cookie", &cookie)]).expect("GET /ui/");
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on the page: {}", page.body))
        .to_string();
    Session { id, csrf }
}

/// Whether the answer sends the browser to the login page.
pub fn to_login(answer: &Response) -> bool {
    (300..400).contains(&answer.status)
        && answer
            .header("location")
            .is_some_and(|l| l.starts_with("/ui/login"))
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
