//! The watch's rollback: when the controller finds a promoted release clearly worse than the one it
//! replaced (`control/watch.rs`), it asks for this; it is `slipway rollback --to v<replaced>` by
//! "slipway watch" — the same path as an operator's: the app's lock, the artifact and images checked, a
//! new release made from the replaced one (history only grows), the `rollback_cmd` if any, and a rollout
//! that switches as soon as that release is ready (a route swap while a blue-green release is warm).
//! A refusal (another rollout holds the lock, the artifact was pruned) is recorded as an event.

use crate::control::watch_round::WatchRollback;
use crate::ops::deploy::Deployer;
use slipway_api::RollbackRequest;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Who the rollback's release is made by.
pub const WHO: &str = "slipway watch";

/// Carries out each rollback the controller asks for, each in its own task (a `rollback_cmd` of one
/// app does not hold up another's); ends when the controller does.
pub async fn run(deployer: Arc<Deployer>, mut requests: mpsc::UnboundedReceiver<WatchRollback>) {
    while let Some(asked) = requests.recv().await {
        let deployer = deployer.clone();
        tokio::spawn(async move {
            let req = RollbackRequest {
                to: Some(asked.to),
                who: WHO.to_string(),
                message: Some(format!(
                    "rollback to v{}: v{} {}",
                    asked.to, asked.regressed, asked.reason
                )),
            };
            match deployer.rollback(&asked.app, req).await {
                Ok(accepted) => deployer.event(
                    &asked.app,
                    Some(accepted.release),
                    "watch_rollback",
                    &format!(
                        "v{} (made from v{}) replaces v{}, which regressed after promotion",
                        accepted.release, asked.to, asked.regressed
                    ),
                ),
                Err(e) => deployer.event(
                    &asked.app,
                    Some(asked.regressed),
                    "watch_rollback_failed",
                    &format!(
                        "cannot roll back to v{}: {}; v{} keeps serving",
                        asked.to, e.message, asked.regressed
                    ),
                ),
            }
        });
    }
}
