//! Who may do what over TCP: roles, and which role each API route needs. Pure: the middleware in
//! `api.rs` asks [`required_role`] and compares it with the caller's role.

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// Ordered: each role can do everything the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Steers rollouts: deploy, rollback, promote, pause, resume, abort, ramp, gate, retry, scale,
    /// config, cron runs.
    Deployer,
    /// Everything, including making and revoking tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "deployer" => Some(Role::Deployer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A caller the daemon recognised: the token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

/// The last path segments of the routes a deployer may call with POST.
const DEPLOYER_ACTIONS: &[&str] = &[
    "promote", "pause", "resume", "abort", "rollback", "ramp", "gate", "retry", "scale", "config",
];

/// The role a request needs. Reads need a viewer, except the token list; steering a rollout needs a
/// deployer; anything else (tokens, routes added later and not listed here) needs an admin, so a new
/// route is closed until someone decides otherwise.
pub fn required_role(method: &Method, path: &str) -> Role {
    let tokens = path == "/v1/tokens" || path.starts_with("/v1/tokens/");
    if tokens {
        return Role::Admin;
    }
    if method == Method::GET || method == Method::HEAD {
        return Role::Viewer;
    }
    if method == Method::POST {
        if path == "/v1/deploy" {
            return Role::Deployer;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["v1", "apps", _, action] if DEPLOYER_ACTIONS.contains(action) => {
                return Role::Deployer;
            }
            ["v1", "apps", _, "cron", _, "run"] => return Role::Deployer,
            // Releasing by flag is steering too; evaluation keys stay with admins.
            ["v1", "apps", _, "flags", _] | ["v1", "apps", _, "flag-set"] => {
                return Role::Deployer;
            }
            ["v1", "apps", _, "flags", _, "revert" | "ramp"] => return Role::Deployer,
            _ => {}
        }
    }
    Role::Admin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_need_a_viewer_steering_a_deployer_tokens_an_admin() {
        let get = |p: &str| required_role(&Method::GET, p);
        let post = |p: &str| required_role(&Method::POST, p);
        assert_eq!(get("/v1/apps"), Role::Viewer);
        assert_eq!(get("/v1/apps/shop/logs"), Role::Viewer);
        assert_eq!(get("/metrics"), Role::Viewer);
        assert_eq!(get("/v1/tokens"), Role::Admin);
        assert_eq!(post("/v1/tokens"), Role::Admin);
        assert_eq!(required_role(&Method::DELETE, "/v1/tokens/ci"), Role::Admin);
        assert_eq!(post("/v1/deploy"), Role::Deployer);
        for action in DEPLOYER_ACTIONS {
            assert_eq!(post(&format!("/v1/apps/shop/{action}")), Role::Deployer);
        }
        assert_eq!(post("/v1/apps/shop/cron/report/run"), Role::Deployer);
        assert_eq!(post("/v1/apps/shop/flags/new-checkout"), Role::Deployer);
        assert_eq!(
            post("/v1/apps/shop/flags/new-checkout/ramp"),
            Role::Deployer
        );
        assert_eq!(post("/v1/apps/shop/flag-set"), Role::Deployer);
        assert_eq!(post("/v1/apps/shop/flag-keys"), Role::Admin);
        // Unknown writes are closed to all but admins.
        assert_eq!(post("/v1/apps/shop/something-new"), Role::Admin);
        assert_eq!(required_role(&Method::DELETE, "/v1/apps/shop"), Role::Admin);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Deployer && Role::Deployer < Role::Admin);
        for r in [Role::Viewer, Role::Deployer, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
