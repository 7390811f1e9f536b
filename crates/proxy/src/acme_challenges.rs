//! HTTP-01 answers: the ACME client (in the daemon) publishes a token's key authorization here while its
//! order is pending, and the proxy serves it at `/.well-known/acme-challenge/{token}` on every listener,
//! before routing, so a CA can validate a host whose app is not deployed yet.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The path prefix CAs fetch HTTP-01 answers from (RFC 8555 §8.3).
pub(crate) const PREFIX: &str = "/.well-known/acme-challenge/";

/// Pending HTTP-01 answers, by token. Cheap to clone (one shared map).
#[derive(Debug, Clone, Default)]
pub struct AcmeChallenges {
    // A lock is fine here: only challenge requests read it, never the routing path.
    answers: Arc<RwLock<HashMap<String, String>>>,
}

impl AcmeChallenges {
    /// Serves `key_authorization` for `token` until [`AcmeChallenges::remove`].
    pub fn insert(&self, token: &str, key_authorization: &str) {
        let mut answers = self.answers.write().unwrap_or_else(|e| e.into_inner());
        answers.insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        let mut answers = self.answers.write().unwrap_or_else(|e| e.into_inner());
        answers.remove(token);
    }

    /// The answer for a request path under [`PREFIX`], if one is pending.
    pub(crate) fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(PREFIX)?;
        let answers = self.answers.read().unwrap_or_else(|e| e.into_inner());
        answers.get(token).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_pending_tokens() {
        let challenges = AcmeChallenges::default();
        challenges.insert("tok", "tok.thumb");
        assert_eq!(
            challenges
                .answer("/.well-known/acme-challenge/tok")
                .as_deref(),
            Some("tok.thumb")
        );
        assert_eq!(challenges.answer("/.well-known/acme-challenge/other"), None);
        assert_eq!(challenges.answer("/tok"), None);
        challenges.remove("tok");
        assert_eq!(challenges.answer("/.well-known/acme-challenge/tok"), None);
    }
}
