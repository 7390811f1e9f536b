//! Who gets in over TCP: a presented token is checked under the brute-force limits of `throttle.rs`,
//! per client address, by both doors that take tokens (API requests and dashboard logins). A refused
//! token is logged with the client's address and the door, never with the token. The unix socket does
//! not come here: its callers are local and need no token.

use crate::http::auth::Identity;
use crate::http::throttle::{Attempts, Client, Limits, Verdict};
use crate::http::tokens::Authenticator;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Doorkeeper {
    auth: Arc<Authenticator>,
    attempts: Mutex<Attempts>,
    /// The throttle's clock: monotonic, so a wall-clock jump neither frees nor locks anyone.
    epoch: Instant,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// None was presented (not counted as an attempt).
    NoToken,
    Invalid,
    /// Too many failures from this address: try again after this long.
    Locked(Duration),
}

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up.
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Refusal::Locked(d) => Some(d.as_millis().div_ceil(1000).max(1) as u64),
            _ => None,
        }
    }
}

/// The TCP client's address (`None` on the unix socket).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Infallible> {
        Ok(ClientAddr::from_extensions(&parts.extensions))
    }
}

impl ClientAddr {
    pub fn from_extensions(ext: &axum::http::Extensions) -> ClientAddr {
        ClientAddr(ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
    }
}

impl Doorkeeper {
    pub fn new(auth: Arc<Authenticator>, limits: Limits) -> Doorkeeper {
        Doorkeeper {
            auth,
            attempts: Mutex::new(Attempts::new(limits)),
            epoch: Instant::now(),
        }
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who presents `token` from `from`, through `door` ("api", "dashboard login"). A locked-out
    /// address is refused before the token is looked at.
    pub async fn identify(
        &self,
        from: ClientAddr,
        token: String,
        door: &'static str,
    ) -> Result<Identity, Refusal> {
        let client = from.0.map(Client::of);
        if let Some(c) = client
            && let Verdict::Locked { retry_after_ms } = self.attempts().check(self.now(), c)
        {
            return Err(Refusal::Locked(Duration::from_millis(retry_after_ms)));
        }
        if token.is_empty() {
            return Err(Refusal::NoToken);
        }
        let auth = self.auth.clone();
        let found = tokio::task::spawn_blocking(move || auth.identify(&token))
            .await
            .ok()
            .flatten();
        let (Some(c), Some(ip)) = (client, from.0) else {
            return found.ok_or(Refusal::Invalid);
        };
        let verdict = self.attempts().attempt(self.now(), c, found.is_some());
        match (found, verdict) {
            (Some(id), Verdict::Open) => Ok(id),
            (None, Verdict::Open) => {
                tracing::warn!(client = %ip, door, "refused a token that is not valid");
                Err(Refusal::Invalid)
            }
            (found, Verdict::Locked { retry_after_ms }) => {
                if found.is_none() {
                    tracing::warn!(
                        client = %ip,
                        door,
                        "refused a token that is not valid; {ip} is locked out for {} s after repeated failures",
                        retry_after_ms.div_ceil(1000)
                    );
                }
                Err(Refusal::Locked(Duration::from_millis(retry_after_ms)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::auth::Role;

    fn keeper() -> (tempfile::TempDir, Doorkeeper) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(slipway_store::Store::open(&dir.path().join("db")).unwrap());
        let auth = Arc::new(Authenticator::new("legacy-secret".into(), store));
        let limits = Limits {
            failures: 2,
            lockout_ms: 3_600_000,
            ..Limits::default()
        };
        (dir, Doorkeeper::new(auth, limits))
    }

    #[tokio::test]
    async fn a_locked_out_address_is_refused_even_with_a_good_token_and_others_are_not() {
        let (_dir, k) = keeper();
        let from = ClientAddr(Some("192.0.2.7".parse().unwrap()));
        let other = ClientAddr(Some("192.0.2.8".parse().unwrap()));
        assert_eq!(
            k.identify(from, "nope".into(), "api").await,
            Err(Refusal::Invalid)
        );
        // No token at all is not a guess.
        assert_eq!(
            k.identify(from, String::new(), "api").await,
            Err(Refusal::NoToken)
        );
        let Err(locked @ Refusal::Locked(_)) = k.identify(from, "nope".into(), "api").await else {
            panic!("the second failure locks the address out")
        };
        assert_eq!(locked.retry_after_secs(), Some(3_600));
        assert!(matches!(
            k.identify(from, "legacy-secret".into(), "api").await,
            Err(Refusal::Locked(_))
        ));
        let id = k
            .identify(other, "legacy-secret".into(), "api")
            .await
            .unwrap();
        assert_eq!(id.role, Role::Admin);
        // Without an address (the unix socket never comes here, but a test router might) there is
        // nothing to count.
        for _ in 0..5 {
            assert_eq!(
                k.identify(ClientAddr(None), "nope".into(), "api").await,
                Err(Refusal::Invalid)
            );
        }
    }
}
