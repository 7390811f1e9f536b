//! Tokens: made from 32 random bytes, shown once, kept only as a SHA-256 (in the store), and checked in
//! constant time. The `api-token` file of earlier versions still works, as an admin token named
//! `api-token`.

use crate::http::auth::{Identity, Role};
use sha2::{Digest, Sha256};
use slipway_store::Store;
use std::sync::Arc;

/// The name the legacy file token goes by (in the audit trail, on the dashboard).
pub const LEGACY_NAME: &str = "api-token";

/// A new token: `slw_` and 64 hex digits (the prefix makes a leaked one easy to grep for).
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("slw_{}", hex::encode(bytes))
}

/// What the store keeps of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal, in a time that depends only on the lengths (the hashes compared always have the same one).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token name: short, plain, safe to show anywhere.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != LEGACY_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Recognises callers by their token.
pub struct Authenticator {
    /// The legacy admin token (the `api-token` file or `serve --token`).
    legacy: String,
    store: Arc<Store>,
}

impl Authenticator {
    pub fn new(legacy: String, store: Arc<Store>) -> Authenticator {
        Authenticator { legacy, store }
    }

    /// Who presents this token, if anyone. Every stored hash is compared, so the time taken does not
    /// say which (if any) matched.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        if token.is_empty() {
            return None;
        }
        let mut found = None;
        if same(token.as_bytes(), self.legacy.as_bytes()) {
            found = Some(Identity {
                name: LEGACY_NAME.into(),
                role: Role::Admin,
            });
        }
        let presented = hash(token);
        let known = match self.store.token_hashes() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("cannot read the tokens: {e}");
                Vec::new()
            }
        };
        for (name, role, stored) in known {
            if same(presented.as_bytes(), stored.as_bytes())
                && let Some(role) = Role::parse(&role)
            {
                found = Some(Identity { name, role });
            }
        }
        if let Some(id) = &found
            && id.name != LEGACY_NAME
        {
            let _ = self
                .store
                .token_used(&id.name, crate::clock::now_ms() as i64);
        }
        found
    }

    /// The current role of a named token (`None` once revoked): sessions re-check it on every request.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        if name == LEGACY_NAME {
            return Some(Role::Admin);
        }
        self.store
            .token_role(name)
            .ok()
            .flatten()
            .and_then(|r| Role::parse(&r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        (dir, Authenticator::new("legacy-secret".into(), store))
    }

    #[test]
    fn stored_tokens_and_the_legacy_token_are_recognised() {
        let (_dir, auth) = authenticator();
        let token = generate();
        assert!(token.starts_with("slw_") && token.len() == 68);
        assert_ne!(token, generate());
        auth.store
            .create_token("ci", "deployer", &hash(&token), "test", 1)
            .unwrap();
        assert_eq!(
            auth.identify(&token),
            Some(Identity {
                name: "ci".into(),
                role: Role::Deployer
            })
        );
        assert_eq!(auth.identify("legacy-secret").unwrap().role, Role::Admin);
        assert_eq!(auth.identify("nope"), None);
        assert_eq!(auth.identify(""), None);
        assert_eq!(auth.identify(&hash(&token)), None, "the hash is no token");
        assert_eq!(auth.role_of("ci"), Some(Role::Deployer));
        auth.store.revoke_token("ci").unwrap();
        assert_eq!(auth.identify(&token), None);
        assert_eq!(auth.role_of("ci"), None);
    }

    #[test]
    fn names_are_plain() {
        assert!(valid_name("alice@laptop") && valid_name("ci-bot_2"));
        assert!(!valid_name("") && !valid_name("a b") && !valid_name("<x>"));
        assert!(!valid_name(LEGACY_NAME));
    }
}
