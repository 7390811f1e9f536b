//! Dashboard logins: a random session id in an HttpOnly, SameSite=Strict cookie (Path=/ui), the server
//! keeping only its hash with the token's name, role, a per-session CSRF token and an expiry. Kept in
//! memory: a daemon restart logs everyone out, which is the safe direction. Time is an input.

use crate::http::auth::{Identity, Role};
use crate::http::tokens::{hash, same};
use axum::http::{HeaderMap, header};
use std::collections::HashMap;
use std::sync::Mutex;

pub const COOKIE: &str = "slipway_session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The token's name: the user, in the audit trail.
    pub name: String,
    pub role: Role,
    /// Sent back with every form; a cross-site form cannot know it.
    pub csrf: String,
    /// Unix ms.
    pub expires_at: u64,
}

impl Session {
    pub fn csrf_ok(&self, presented: &str) -> bool {
        same(presented.as_bytes(), self.csrf.as_bytes())
    }

    pub fn can_act(&self) -> bool {
        self.role >= Role::Deployer
    }
}

pub struct Sessions {
    ttl_ms: u64,
    by_hash: Mutex<HashMap<String, Session>>,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    pub fn new(ttl_ms: u64) -> Sessions {
        Sessions {
            ttl_ms: ttl_ms.max(1),
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `who`; returns the id for the cookie (the only place it is kept).
    pub fn create(&self, who: Identity, now: u64) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            name: who.name,
            role: who.role,
            csrf: random_hex(),
            expires_at: now + self.ttl_ms,
        };
        let mut map = self.map();
        map.retain(|_, s| s.expires_at > now);
        map.insert(hash(&id), session.clone());
        (id, session)
    }

    /// Logging in: `previous`, the session id the browser presented (if any), ends, and a new one
    /// begins. So an id known before a login (a shared machine, a planted cookie) is never valid after
    /// it; and since ids are only ever made here, a client cannot choose its own.
    pub fn login(&self, previous: Option<&str>, who: Identity, now: u64) -> (String, Session) {
        if let Some(old) = previous {
            self.remove(old);
        }
        self.create(who, now)
    }

    /// The live session with this id; an expired one is forgotten.
    pub fn get(&self, id: &str, now: u64) -> Option<Session> {
        let key = hash(id);
        let mut map = self.map();
        match map.get(&key) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map().remove(&hash(id));
    }
}

/// The session id from the request's cookies.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// `Secure` when the dashboard is served over TLS (`serve --api-tls-cert`): a browser would not send a
/// Secure cookie back over the plain listener.
pub fn set_cookie(id: &str, ttl_ms: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl_ms.div_ceil(1000),
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            name: "alice".into(),
            role: Role::Deployer,
        }
    }

    #[test]
    fn sessions_expire_and_are_kept_by_hash() {
        let sessions = Sessions::new(1_000);
        let (id, s) = sessions.create(alice(), 10_000);
        assert_eq!(s.expires_at, 11_000);
        assert!(
            !sessions.map().contains_key(&id),
            "the id itself is not kept"
        );
        assert_eq!(
            sessions.get(&id, 10_999).map(|s| s.name),
            Some("alice".into())
        );
        assert_eq!(sessions.get(&id, 11_000), None);
        assert_eq!(
            sessions.get(&id, 10_500),
            None,
            "an expired session is gone"
        );
        assert_eq!(sessions.get("made-up", 10_000), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_are_checked() {
        let sessions = Sessions::new(1_000);
        let (a, sa) = sessions.create(alice(), 0);
        let (b, sb) = sessions.create(alice(), 0);
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert!(sa.csrf_ok(&sa.csrf) && !sa.csrf_ok(&sb.csrf) && !sa.csrf_ok(""));
        sessions.remove(&a);
        assert_eq!(sessions.get(&a, 1), None);
        assert!(sessions.get(&b, 1).is_some());
    }

    #[test]
    fn a_login_ends_the_session_the_browser_had_and_never_adopts_its_id() {
        let sessions = Sessions::new(1_000);
        let (before, _) = sessions.create(alice(), 0);
        let (after, _) = sessions.login(Some(&before), alice(), 1);
        assert_ne!(before, after);
        assert_eq!(sessions.get(&before, 2), None, "the old id is dead");
        assert!(sessions.get(&after, 2).is_some());
        // An id the client made up (or planted) is not taken over: a fresh one is issued.
        let (fresh, _) = sessions.login(Some("planted-id"), alice(), 3);
        assert_ne!(fresh, "planted-id");
        assert_eq!(sessions.get("planted-id", 4), None);
        assert!(sessions.get(&after, 4).is_some(), "other sessions go on");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped() {
        assert!(set_cookie("abc", 2_500, true).ends_with("; Secure"));
        let c = set_cookie("abc", 2_500, false);
        assert!(!c.contains("Secure"));
        assert!(c.starts_with("slipway_session=abc;"));
        for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=3"] {
            assert!(c.contains(part), "{c}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; slipway_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_id(&h).as_deref(), Some("xyz"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
