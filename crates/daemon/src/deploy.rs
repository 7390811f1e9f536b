//! Starting a rollout from the API: take the app's deploy lock, freeze the artifact, record the release,
//! hand it to the controller. Any failure before the controller has it gives the lock back, so a failed
//! `deploy` never leaves the app locked or half-recorded.

use crate::clock::now_ms;
use crate::controller::{Command, ControllerHandle};
use crate::wire::{DeployAccepted, DeployRequest, RollbackRequest};
use slipway_core::release::{ReleaseStatus, Version};
use slipway_core::spec::AppSpec;
use slipway_store::{ArtifactStore, NewRelease, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The one lock per app that makes rollouts exclusive.
pub fn lock_name(app: &str) -> String {
    format!("deploy:{app}")
}

/// Why a request was refused, with the HTTP status it maps to.
pub enum Refusal {
    BadRequest(String),
    Conflict(String),
    NotFound(String),
    Internal(String),
}

pub struct Deployer {
    pub store: Arc<Store>,
    pub artifacts: Arc<ArtifactStore>,
    pub artifact_gate: Arc<std::sync::Mutex<()>>,
    pub controller: ControllerHandle,
    pub daemon_id: String,
    pub state_dir: PathBuf,
}

impl Deployer {
    pub async fn deploy(&self, req: DeployRequest) -> Result<DeployAccepted, Refusal> {
        let path = PathBuf::from(&req.config);
        let spec = slipway_config::load(&path).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let label = req.label.clone();
        let app = spec.app.clone();
        if let Some(w) = req.canary
            && !(1..=100).contains(&w)
        {
            return Err(Refusal::BadRequest(format!(
                "--canary {w}: the weight must be 1 to 100 (percent)"
            )));
        }
        let spec_sticky = match &spec.deploy.strategy {
            slipway_core::spec::Strategy::Canary(c) => c.sticky.clone(),
            _ => None,
        };
        let holder = format!(
            "deploy by {} ({})",
            req.who,
            label.as_deref().unwrap_or("no label")
        );
        let strategy = req.canary.map(|weight| canary_hold(weight, &spec_sticky));
        self.under_lock(&app, &holder, async {
            let release = self.freeze_and_record(spec, &req).await?;
            self.hand_over(release, false, strategy).await
        })
        .await
    }

    /// Runs `work` holding the app's deploy lock, and gives the lock back if `work` fails: a refused or
    /// failed request never leaves the app locked. On success the rollout owns the lock until it ends.
    async fn under_lock(
        &self,
        app: &str,
        holder: &str,
        work: impl std::future::Future<Output = Result<DeployAccepted, Refusal>>,
    ) -> Result<DeployAccepted, Refusal> {
        self.lock(app, holder)?;
        let result = work.await;
        if result.is_err() {
            let _ = self.store.release_lock(&lock_name(app));
        }
        result
    }

    pub async fn rollback(
        &self,
        app: &str,
        req: RollbackRequest,
    ) -> Result<DeployAccepted, Refusal> {
        let target = self.rollback_target(app, req.to)?;
        let holder = format!("rollback to v{} by {}", target.version, req.who);
        self.under_lock(app, &holder, async {
            let artifacts = self.artifacts.clone();
            let digest = target.artifact.clone();
            let exists = tokio::task::spawn_blocking(move || artifacts.exists(&digest))
                .await
                .unwrap_or(false);
            if !exists {
                Err(Refusal::Conflict(format!(
                    "the artifact of v{} ({}) is no longer in the store; it was pruned",
                    target.version, target.artifact
                )))
            } else {
                let new = NewRelease {
                    app: app.to_string(),
                    label: target.label.clone(),
                    artifact: target.artifact.clone(),
                    spec: target.spec.clone(),
                    created_at: now_ms() as i64,
                    created_by: req.who.clone(),
                    message: req
                        .message
                        .clone()
                        .or(Some(format!("rollback to v{}", target.version))),
                    rollback_of: Some(target.version),
                };
                match self.store.create_release(new) {
                    Ok(release) => self.hand_over(release, true, None).await,
                    Err(e) => Err(Refusal::Internal(e.to_string())),
                }
            }
        })
        .await
    }

    /// `retry`: roll out again the newest release, when its rollout failed or was aborted.
    pub async fn retry(
        &self,
        app: &str,
        req: crate::wire::RetryRequest,
    ) -> Result<DeployAccepted, Refusal> {
        let internal = |e: StoreError| Refusal::Internal(e.to_string());
        let newest = self
            .store
            .releases(app)
            .map_err(internal)?
            .into_iter()
            .next();
        let Some(release) = newest.filter(|r| r.status == ReleaseStatus::Failed) else {
            return Err(Refusal::Conflict(format!(
                "{app}'s newest release did not fail: nothing to retry (see `slipway history`)"
            )));
        };
        let holder = format!("retry of v{} by {}", release.version, req.who);
        let version = release.version;
        self.under_lock(app, &holder, async {
            self.store
                .set_release_status(app, version, ReleaseStatus::Pending, None)
                .map_err(|e| Refusal::Internal(e.to_string()))?;
            self.hand_over(release, false, None).await
        })
        .await
    }

    /// `rollback` without `--to`: the release that was stable before the current one.
    fn rollback_target(
        &self,
        app: &str,
        to: Option<Version>,
    ) -> Result<slipway_core::release::Release, Refusal> {
        let internal = |e: StoreError| Refusal::Internal(e.to_string());
        let releases = self.store.releases(app).map_err(internal)?;
        if releases.is_empty() {
            return Err(Refusal::NotFound(format!("{app} has no releases")));
        }
        let stable = self.store.stable(app).map_err(internal)?;
        let found = match to {
            Some(v) => releases.into_iter().find(|r| r.version == v),
            None => releases
                .into_iter()
                .find(|r| Some(r.version) != stable && r.status == ReleaseStatus::Superseded),
        };
        found.ok_or_else(|| {
            Refusal::NotFound(match to {
                Some(v) => format!("{app} has no release v{v}; see `slipway history`"),
                None => format!(
                    "{app} has no earlier release that served traffic; see `slipway history`"
                ),
            })
        })
    }

    fn lock(&self, app: &str, holder: &str) -> Result<(), Refusal> {
        match self
            .store
            .acquire_lock(&lock_name(app), holder, &self.daemon_id, now_ms() as i64)
        {
            Ok(()) => Ok(()),
            Err(StoreError::LockHeld {
                holder, since_ms, ..
            }) => Err(Refusal::Conflict(format!(
                "another rollout of {app} is in progress: {holder}, started {}; \
                 wait for it, or stop it with `slipway abort`",
                crate::clock::describe_ms(since_ms)
            ))),
            Err(e) => Err(Refusal::Internal(e.to_string())),
        }
    }

    async fn freeze_and_record(
        &self,
        spec: AppSpec,
        req: &DeployRequest,
    ) -> Result<slipway_core::release::Release, Refusal> {
        let artifacts = self.artifacts.clone();
        let dir = spec.artifact.path.clone();
        let exclude = spec.artifact.exclude.clone();
        let skip = vec![self.state_dir.clone()];
        let gate = self.artifact_gate.clone();
        let frozen = tokio::task::spawn_blocking(move || {
            let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
            let frozen = artifacts.freeze(&dir, &exclude, &skip)?;
            artifacts.checkout(&frozen.digest)?;
            Ok::<_, StoreError>(frozen)
        })
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
        .map_err(|e| {
            Refusal::BadRequest(format!(
                "cannot freeze {}: {e}",
                spec.artifact.path.display()
            ))
        })?;
        let new = NewRelease {
            app: spec.app.clone(),
            label: req.label.clone(),
            artifact: frozen.digest,
            spec,
            created_at: now_ms() as i64,
            created_by: req.who.clone(),
            message: req.message.clone(),
            rollback_of: None,
        };
        self.store
            .create_release(new)
            .map_err(|e| Refusal::Internal(e.to_string()))
    }

    async fn hand_over(
        &self,
        release: slipway_core::release::Release,
        rollback: bool,
        strategy: Option<slipway_core::spec::Strategy>,
    ) -> Result<DeployAccepted, Refusal> {
        let (reply, answer) = oneshot::channel();
        let app = release.app.clone();
        let version = release.version;
        self.controller
            .send(Command::Start {
                release: Box::new(release),
                rollback,
                strategy,
                reply,
            })
            .map_err(Refusal::Internal)?;
        match answer.await {
            Ok(Ok(rollout)) => Ok(DeployAccepted {
                app,
                release: version,
                rollout,
            }),
            Ok(Err(e)) => {
                let _ =
                    self.store
                        .set_release_status(&app, version, ReleaseStatus::Failed, Some(&e));
                Err(Refusal::Conflict(e))
            }
            Err(_) => Err(Refusal::Internal("the controller stopped".into())),
        }
    }
}

/// `deploy --canary N`: a canary at N %, held until the pipeline ramps, promotes or rolls back.
fn canary_hold(
    weight: u32,
    sticky: &Option<slipway_core::spec::Sticky>,
) -> slipway_core::spec::Strategy {
    use slipway_core::spec::{CanarySpec, CanaryStep, Strategy};
    Strategy::Canary(CanarySpec {
        steps: vec![CanaryStep::Weight(weight), CanaryStep::Pause(None)],
        sticky: sticky.clone(),
        background_analysis: None,
    })
}
