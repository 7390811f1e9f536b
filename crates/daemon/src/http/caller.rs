//! Who the audit trail records for an API request. On TCP the daemon knows the caller by its token, so
//! the token's name is recorded and what the client claims to be (`who` in the body, free text) is kept
//! only as a detail; on the unix socket there is no token, and the client's `who` stands.

use crate::http::auth::Identity;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// The caller's identity, when the request came through the token check (`api::require_token`).
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Identity>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, Infallible> {
        Ok(Caller(parts.extensions.get::<Identity>().cloned()))
    }
}

impl Caller {
    /// The name to record for a change the client attributes to `claimed`:
    /// `alice (deployer via tcp; client said bob@laptop)` over TCP, `claimed` on the socket.
    pub fn who(&self, claimed: &str) -> String {
        let Some(id) = &self.0 else {
            return claimed.to_string();
        };
        let claimed = claimed.trim();
        if claimed.is_empty() || claimed == id.name {
            format!("{} ({} via tcp)", id.name, id.role.as_str())
        } else {
            format!(
                "{} ({} via tcp; client said {claimed})",
                id.name,
                id.role.as_str()
            )
        }
    }

    /// For requests that carry no `who` (promote, pause, abort…): the recorded name over TCP, `None` on
    /// the socket, where such requests have never been attributed.
    pub fn tcp_who(&self) -> Option<String> {
        self.0.as_ref().map(|_| self.who(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::auth::Role;

    fn alice() -> Caller {
        Caller(Some(Identity {
            name: "alice".into(),
            role: Role::Deployer,
        }))
    }

    #[test]
    fn over_tcp_the_token_names_the_caller() {
        assert_eq!(
            alice().who("bob@laptop"),
            "alice (deployer via tcp; client said bob@laptop)"
        );
        assert_eq!(alice().who("alice"), "alice (deployer via tcp)");
        assert_eq!(alice().who("  "), "alice (deployer via tcp)");
        assert_eq!(
            alice().tcp_who().as_deref(),
            Some("alice (deployer via tcp)")
        );
    }

    #[test]
    fn on_the_socket_the_client_says_who_it_is() {
        assert_eq!(Caller(None).who("bob@laptop"), "bob@laptop");
        assert_eq!(Caller(None).tcp_who(), None);
    }
}
