//! The watch's rollback: when the controller finds a promoted release clearly worse than the one it
//! replaced (`control/watch.rs`), it asks for this; it is `slipway rollback --to v<replaced>` by
//! "slipway watch" — the same path as an operator's: the app's lock, the artifact and images checked, a
//! new release made from the replaced one (history only grows), the `rollback_cmd` if any, and a rollout
//! that switches as soon as that release is ready (a route swap while a blue-green release is warm).
//!
//! The app may be busy when it is asked (another deploy's release phase holds its lock, a rollout runs):
//! the rollback waits for the app to be free, for up to [`PATIENCE`], as long as the regressed release
//! still serves — if what held the app replaced it, there is nothing left to roll back. Any other
//! refusal (the artifact was pruned) is recorded as an event at once.

use crate::clock::now_ms;
use crate::control::watch_round::WatchRollback;
use crate::error::Error;
use crate::locks::lock_name;
use crate::ops::deploy::Deployer;
use slipway_api::{DeployAccepted, RollbackRequest};
use slipway_core::release::Version;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Who the rollback's release is made by.
pub const WHO: &str = "slipway watch";

/// How long a rollback waits for a busy app.
const PATIENCE: Duration = Duration::from_secs(300);
/// How often it looks again meanwhile.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Carries out each rollback the controller asks for, each in its own task (a `rollback_cmd` of one
/// app does not hold up another's); ends when the controller does.
pub async fn run(deployer: Arc<Deployer>, mut requests: mpsc::UnboundedReceiver<WatchRollback>) {
    while let Some(asked) = requests.recv().await {
        let deployer = deployer.clone();
        tokio::spawn(carry_out(deployer, asked));
    }
}

/// What the app looks like to a waiting rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AppNow {
    stable: Option<Version>,
    rollout_running: bool,
    locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// The app is free and the regressed release serves: roll back now.
    RollBack,
    /// Busy: look again later.
    Wait,
    /// Something else replaced the regressed release meanwhile: nothing to roll back.
    Replaced(Option<Version>),
    /// Busy for longer than the rollback may wait.
    GaveUp,
}

/// Pure: what a waiting rollback does next.
fn next(regressed: Version, app: AppNow, waited: Duration) -> Next {
    if app.stable != Some(regressed) {
        return Next::Replaced(app.stable);
    }
    if !app.rollout_running && !app.locked {
        return Next::RollBack;
    }
    if waited >= PATIENCE {
        Next::GaveUp
    } else {
        Next::Wait
    }
}

async fn carry_out(deployer: Arc<Deployer>, asked: WatchRollback) {
    let started = now_ms();
    let mut told_waiting = false;
    loop {
        let waited = Duration::from_millis(now_ms().saturating_sub(started));
        let step = match app_now(&deployer, &asked.app) {
            Ok(app) => next(asked.regressed, app, waited),
            Err(e) => return failed(&deployer, &asked, &e.message),
        };
        match step {
            Next::RollBack => match roll_back(&deployer, &asked).await {
                Ok(accepted) => return done(&deployer, &asked, &accepted),
                // Taken by someone else between the look and the lock: wait again.
                Err(e) if e.message.contains("another rollout of") && waited < PATIENCE => {}
                Err(e) => return failed(&deployer, &asked, &e.message),
            },
            Next::Wait => {
                if !told_waiting {
                    told_waiting = true;
                    let text = format!(
                        "v{} is busy (a deploy or rollout holds it): the rollback to v{} waits for it, up to {} s",
                        asked.regressed,
                        asked.to,
                        PATIENCE.as_secs()
                    );
                    deployer.event(
                        &asked.app,
                        Some(asked.regressed),
                        "watch_rollback_waiting",
                        &text,
                    );
                }
            }
            Next::Replaced(now) => {
                let now = now.map_or_else(|| "none".to_string(), |v| format!("v{v}"));
                let text = format!(
                    "no rollback to v{}: v{} no longer serves (the stable release is {now})",
                    asked.to, asked.regressed
                );
                deployer.event(
                    &asked.app,
                    Some(asked.regressed),
                    "watch_rollback_skipped",
                    &text,
                );
                return;
            }
            Next::GaveUp => {
                let why = format!("the app stayed busy for {} s", PATIENCE.as_secs());
                return failed(&deployer, &asked, &why);
            }
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

fn app_now(deployer: &Deployer, app: &str) -> Result<AppNow, Error> {
    let internal = |e: slipway_store::StoreError| Error::internal(e.to_string());
    let store = &deployer.store;
    Ok(AppNow {
        stable: store.stable(app).map_err(internal)?,
        rollout_running: store.active_rollout(app).map_err(internal)?.is_some(),
        locked: store.lock(&lock_name(app)).map_err(internal)?.is_some(),
    })
}

async fn roll_back(deployer: &Deployer, asked: &WatchRollback) -> Result<DeployAccepted, Error> {
    let req = RollbackRequest {
        to: Some(asked.to),
        who: WHO.to_string(),
        message: Some(format!(
            "rollback to v{}: v{} {}",
            asked.to, asked.regressed, asked.reason
        )),
    };
    deployer.rollback(&asked.app, req).await
}

fn done(deployer: &Deployer, asked: &WatchRollback, accepted: &DeployAccepted) {
    let text = format!(
        "v{} (made from v{}) replaces v{}, which regressed after promotion",
        accepted.release, asked.to, asked.regressed
    );
    deployer.event(&asked.app, Some(accepted.release), "watch_rollback", &text);
}

fn failed(deployer: &Deployer, asked: &WatchRollback, why: &str) {
    let text = format!(
        "cannot roll back to v{}: {why}; v{} keeps serving",
        asked.to, asked.regressed
    );
    deployer.event(
        &asked.app,
        Some(asked.regressed),
        "watch_rollback_failed",
        &text,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: AppNow = AppNow {
        stable: Some(7),
        rollout_running: false,
        locked: false,
    };

    #[test]
    fn rolls_back_when_free_waits_while_busy_and_stops_when_replaced_or_out_of_patience() {
        let soon = Duration::from_secs(3);
        assert_eq!(next(7, FREE, soon), Next::RollBack);
        let locked = AppNow {
            locked: true,
            ..FREE
        };
        let rolling = AppNow {
            rollout_running: true,
            ..FREE
        };
        assert_eq!(next(7, locked, soon), Next::Wait);
        assert_eq!(next(7, rolling, soon), Next::Wait);
        assert_eq!(next(7, locked, PATIENCE), Next::GaveUp);
        // A deploy that held the app replaced v7: the rollback would undo it.
        let replaced = AppNow {
            stable: Some(8),
            locked: true,
            ..FREE
        };
        assert_eq!(next(7, replaced, soon), Next::Replaced(Some(8)));
        // Free but no longer serving v7 (rolled back by hand): nothing to do either.
        assert_eq!(
            next(
                7,
                AppNow {
                    stable: Some(6),
                    ..FREE
                },
                soon
            ),
            Next::Replaced(Some(6))
        );
    }
}
