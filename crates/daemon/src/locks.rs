//! The names of the store's locks, written in one place because two layers meet on them: `ops` takes an
//! app's deploy lock before recording a release, the controller releases it when the rollout ends.

/// The one lock per app that makes rollouts exclusive.
pub fn lock_name(app: &str) -> String {
    format!("deploy:{app}")
}
