//! Starting a rollout from the API: take the app's deploy lock, freeze the artifact, record the release,
//! hand it to the controller. Any failure before the controller has it gives the lock back, so a failed
//! `deploy` never leaves the app locked or half-recorded.

use crate::clock::now_ms;
use crate::control::controller::{Command, ControllerHandle};
use crate::error::{Error, ErrorKind};
use crate::locks::lock_name;
use crate::ops::stable_watch::Watch;
use slipway_api::{DeployAccepted, DeployRequest, RollbackRequest};
use slipway_core::release::{ReleaseStatus, Version};
use slipway_core::spec::AppSpec;
use slipway_store::{ArtifactStore, NewRelease, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// What `[slo] hold_deploys` said of a deploy.
#[derive(Debug, PartialEq, Eq)]
enum SloPass {
    /// Nothing held it.
    Clear,
    /// `--override-slo` was given, but nothing held it.
    Unneeded,
    /// Held, and overridden: the text for the release's events.
    Overridden(String),
}

pub struct Deployer {
    pub store: Arc<Store>,
    pub artifacts: Arc<ArtifactStore>,
    pub artifact_gate: Arc<std::sync::Mutex<()>>,
    pub controller: ControllerHandle,
    pub daemon_id: String,
    pub state_dir: PathBuf,
    /// The Docker engine, for image processes (connected on first use).
    pub docker: slipway_docker::Connector,
    pub flags: Arc<crate::flags::Flags>,
    /// App folders sent before their deploy (`DeployRequest.upload`).
    pub uploads: Arc<crate::ops::uploads::Uploads>,
    /// `serve --kubernetes`: every process must run an image.
    pub on_kubernetes: bool,
    /// Where the release phase runs: this host, or a pod of the release's image.
    pub one_offs: Arc<crate::ops::one_off::OneOffs>,
    /// With `serve --kubernetes`: the cluster, whose image pull secrets log in to registries.
    #[cfg(feature = "kubernetes")]
    pub cluster: Option<slipway_kube::PodSupervisor>,
}

impl Deployer {
    pub async fn deploy(&self, mut req: DeployRequest) -> Result<DeployAccepted, Error> {
        // An uploaded folder is read here and frozen into the release, then removed (`claimed`).
        let (path, claimed) = match &req.upload {
            Some(id) => {
                let (path, claimed) = self.uploads.take(id, &req.config)?;
                (path, Some(claimed))
            }
            None => (PathBuf::from(&req.config), None),
        };
        let parsed = slipway_config::load_with_warnings(&path)
            .map_err(|e| Error::bad_request(e.to_string()))?;
        // What looked unintended in the file (file:line, with the fix): told with the answer.
        let config_warnings: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
        let mut spec = parsed.spec;
        let slo_override = self.slo_hold(&spec.app, &mut req).await?;
        let overrides = self.apply_overrides(&mut spec)?;
        if self.on_kubernetes {
            images_only(&spec)?;
            self.routed_apps_stay_in_their_namespace(&spec)?;
        }
        let label = req.label.clone();
        let app = spec.app.clone();
        if let Some(w) = req.canary
            && !(1..=100).contains(&w)
        {
            return Err(Error::bad_request(format!(
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
        let over = crate::ops::images::ImageOverride {
            image: req.image.clone(),
            build: req.build,
        };
        // GitOps: the folder's flags.json is checked before anything happens, applied once accepted.
        let flag_file = crate::flags::import::app_file(&path)?;
        let mut accepted = self
            .under_lock(&app, &holder, async {
                // Before anything is recorded: a missing image or engine fails the deploy here.
                let resolved = self.resolve_images(&mut spec, &over).await?;
                let upload = claimed.as_ref().map(|c| c.folder().to_path_buf());
                let (release, left_out) = self.freeze_and_record(spec, &req, upload).await?;
                if let SloPass::Overridden(text) = &slo_override {
                    let text = format!("v{} {text}", release.version);
                    self.event(&app, Some(release.version), "slo_override", &text);
                }
                for note in &left_out {
                    tracing::warn!(app = %app, "v{}: {note}", release.version);
                    let _ = self.store.add_event(
                        &app,
                        Some(release.version),
                        "artifact",
                        note,
                        now_ms() as i64,
                    );
                }
                for note in &resolved.notes {
                    let _ = self.store.add_event(
                        &app,
                        Some(release.version),
                        "image",
                        note,
                        now_ms() as i64,
                    );
                }
                let (warnings, phase) = self.before_traffic(&release, &req.who, req.strict).await?;
                let mut accepted = self.hand_over(release, false, strategy).await?;
                accepted.warnings = config_warnings;
                accepted.warnings.extend(overrides);
                if slo_override == SloPass::Unneeded {
                    accepted.warnings.push(
                        "--override-slo: the error budget is not spent, nothing was held (the reason is not recorded)"
                            .to_string(),
                    );
                }
                accepted.warnings.extend(left_out);
                accepted.warnings.extend(warnings);
                accepted.phase = phase;
                Ok(accepted)
            })
            .await?;
        if let Some((_, file)) = flag_file
            && let Err(refusal) = self.flags.apply_on_deploy(&accepted, &file, &req.who)
        {
            accepted.warnings.push(format!(
                "{} was not applied ({}); the flags stay as they were",
                crate::flags::import::APP_FILE,
                refusal.first_line()
            ));
        }
        Ok(accepted)
    }

    /// `[slo] hold_deploys`: refuses a deploy while the app's error budget is spent, unless
    /// `--override-slo "reason"` — then the reason goes into the release's message, and the returned
    /// text into its events. Rollbacks, `scale` and `config set` are never held: they are how a
    /// budget is saved.
    async fn slo_hold(&self, app: &str, req: &mut DeployRequest) -> Result<SloPass, Error> {
        let reason = match req.override_slo.as_deref().map(str::trim) {
            Some("") => {
                return Err(Error::bad_request(
                    "--override-slo needs a reason, e.g. --override-slo \"fix for the checkout errors\"",
                ));
            }
            other => other.map(str::to_string),
        };
        let hold = self.slo_hold_reason(app).await?;
        let (Some(hold), Some(reason)) = (hold.clone(), reason.clone()) else {
            return match hold {
                None if reason.is_some() => Ok(SloPass::Unneeded),
                Some(hold) => Err(Error::conflict(format!(
                    "{app}'s error budget is spent, so deploys are held ([slo] hold_deploys): {hold}.\n\
                     Roll back (`slipway rollback`), wait for the bad minutes to leave the window, or \
                     deploy a fix anyway with --override-slo \"why\" (recorded in the history)"
                ))),
                None => Ok(SloPass::Clear),
            };
        };
        req.message = Some(match req.message.take() {
            Some(m) => format!("{m} (SLO override: {reason})"),
            None => format!("SLO override: {reason}"),
        });
        Ok(SloPass::Overridden(format!(
            "deployed by {} over a spent error budget ({hold}): {reason}",
            req.who
        )))
    }

    /// What holds deploys of `app` now (`[slo] hold_deploys` with the budget spent), if anything.
    pub(crate) async fn slo_hold_reason(&self, app: &str) -> Result<Option<String>, Error> {
        let app = app.to_string();
        let slo = self
            .controller
            .ask(|reply| Command::Slo { app, reply })
            .await?;
        Ok(slo.and_then(|s| s.hold))
    }

    /// Rolls out a recorded release with its own strategy, after the guard and the release phase.
    pub(crate) async fn roll_out(
        &self,
        release: slipway_core::release::Release,
        who: &str,
    ) -> Result<DeployAccepted, Error> {
        let (warnings, phase) = self.before_traffic(&release, who, false).await?;
        let mut accepted = self.hand_over(release, false, None).await?;
        accepted.warnings = warnings;
        accepted.phase = phase;
        Ok(accepted)
    }

    /// What happens between recording a release and starting any instance of it: the migration guard,
    /// then the release phase. A failure marks the release failed (the stable release is untouched).
    async fn before_traffic(
        &self,
        release: &slipway_core::release::Release,
        who: &str,
        strict: bool,
    ) -> Result<(Vec<String>, Option<slipway_api::PhaseReport>), Error> {
        let app = &release.app;
        let version = release.version;
        let result = async {
            let stable = self.stable_release(app)?;
            let warnings = self.check_migrations(release, stable.as_ref()).await?;
            for w in &warnings {
                self.store
                    .add_event(app, Some(version), "migration_guard", w, now_ms() as i64)
                    .map_err(|e| Error::internal(e.to_string()))?;
            }
            if strict && !warnings.is_empty() {
                return Err(Error::conflict(format!(
                    "--strict: v{version}'s migrations would break the release still serving:\n{}\n\
                     split them: expand now (add, backfill), contract in a later release; or deploy without --strict",
                    warnings.join("\n")
                )));
            }
            let watch = self.before_phase(release, stable.as_ref()).await?;
            let mut phase = self.release_phase(release, who).await?;
            let watched = match (watch, &stable) {
                (Watch::Against(before), Some(stable)) => {
                    Some(self.watch_stable(release, stable, &before, who).await?)
                }
                (Watch::Skipped(why), _) => Some(why),
                _ => None,
            };
            if let Some(phase) = &mut phase {
                phase.stable_watch = watched;
            }
            Ok((warnings, phase))
        }
        .await;
        if let Err(refusal) = &result {
            let reason = refusal.first_line().to_string();
            let _ =
                self.store
                    .set_release_status(app, version, ReleaseStatus::Failed, Some(&reason));
        }
        result
    }

    /// A release made from the stable one (same artifact and label) with another spec, recorded in one
    /// transaction with `settings`, the app-level change that made it (`config set`, `scale`).
    pub(crate) fn record_derived(
        &self,
        stable: &slipway_core::release::Release,
        spec: AppSpec,
        who: &str,
        message: &str,
        settings: impl FnOnce(&slipway_store::Tx<'_>) -> slipway_store::Result<()>,
    ) -> Result<slipway_core::release::Release, Error> {
        self.store
            .transaction(|tx| {
                settings(tx)?;
                tx.create_release(NewRelease {
                    app: stable.app.clone(),
                    label: stable.label.clone(),
                    artifact: stable.artifact.clone(),
                    spec,
                    created_at: now_ms() as i64,
                    created_by: who.to_string(),
                    message: Some(message.to_string()),
                    rollback_of: None,
                })
            })
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// The app's stable release, if it has one.
    /// Records an event of the app (of one release, if `version`), and logs it.
    pub(crate) fn event(&self, app: &str, version: Option<Version>, kind: &str, message: &str) {
        tracing::info!(app, kind, "{message}");
        if let Err(e) = self
            .store
            .add_event(app, version, kind, message, now_ms() as i64)
        {
            tracing::error!("cannot record an event: {e}");
        }
    }

    pub(crate) fn stable_release(
        &self,
        app: &str,
    ) -> Result<Option<slipway_core::release::Release>, Error> {
        let internal = |e: StoreError| Error::internal(e.to_string());
        match self.store.stable(app).map_err(internal)? {
            Some(v) => self.store.release(app, v).map_err(internal),
            None => Ok(None),
        }
    }

    /// Runs `work` holding the app's deploy lock, and gives the lock back if `work` fails: a refused or
    /// failed request never leaves the app locked. On success the rollout owns the lock until it ends.
    pub(crate) async fn under_lock(
        &self,
        app: &str,
        holder: &str,
        work: impl std::future::Future<Output = Result<DeployAccepted, Error>>,
    ) -> Result<DeployAccepted, Error> {
        self.lock(app, holder)?;
        let result = work.await;
        if result.is_err() {
            let _ = self.store.release_lock(&lock_name(app));
        }
        result
    }

    pub async fn rollback(&self, app: &str, req: RollbackRequest) -> Result<DeployAccepted, Error> {
        let target = self.rollback_target(app, req.to)?;
        let holder = format!("rollback to v{} by {}", target.version, req.who);
        self.under_lock(app, &holder, async {
            let artifacts = self.artifacts.clone();
            let digest = target.artifact.clone();
            let exists = tokio::task::spawn_blocking(move || artifacts.exists(&digest))
                .await
                .unwrap_or(false);
            if !exists {
                Err(Error::conflict(format!(
                    "the artifact of v{} ({}) is no longer in the store; it was pruned",
                    target.version, target.artifact
                )))
            } else {
                // The very image IDs v<target> ran, whatever their tags point at now.
                self.check_images(&target.spec, target.version).await?;
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
                let release = self
                    .store
                    .create_release(new)
                    .map_err(|e| Error::internal(e.to_string()))?;
                let (warnings, phase) = self.before_rollback(&release, &req.who).await?;
                let mut accepted = self.hand_over(release, true, None).await?;
                accepted.warnings = warnings;
                accepted.phase = phase;
                Ok(accepted)
            }
        })
        .await
    }

    /// Before a rollback switches: the down migration of the release being left, if it declares one;
    /// otherwise a warning when that release had a release phase (its schema changes stay).
    async fn before_rollback(
        &self,
        release: &slipway_core::release::Release,
        who: &str,
    ) -> Result<(Vec<String>, Option<slipway_api::PhaseReport>), Error> {
        let Some(from) = self.stable_release(&release.app)? else {
            return Ok((Vec::new(), None));
        };
        let phase = self.rollback_phase(&from, release.version, who).await;
        if let Err(Error {
            kind: ErrorKind::Conflict,
            message: m,
        }) = &phase
        {
            let _ = self.store.set_release_status(
                &release.app,
                release.version,
                ReleaseStatus::Failed,
                m.lines().next(),
            );
        }
        let phase = phase?;
        let mut warnings = Vec::new();
        if phase.is_none() && from.spec.release_phase.cmd.is_some() {
            warnings.push(format!(
                "v{} has a release phase but no [release] rollback_cmd: the database schema stays as v{} left it",
                from.version, from.version
            ));
        }
        Ok((warnings, phase))
    }

    /// `retry`: roll out again the newest release, when its rollout failed or was aborted.
    pub async fn retry(
        &self,
        app: &str,
        req: slipway_api::RetryRequest,
    ) -> Result<DeployAccepted, Error> {
        let internal = |e: StoreError| Error::internal(e.to_string());
        let newest = self
            .store
            .releases(app)
            .map_err(internal)?
            .into_iter()
            .next();
        let Some(release) = newest.filter(|r| r.status == ReleaseStatus::Failed) else {
            return Err(Error::conflict(format!(
                "{app}'s newest release did not fail: nothing to retry (see `slipway history`)"
            )));
        };
        let holder = format!("retry of v{} by {}", release.version, req.who);
        let version = release.version;
        self.under_lock(app, &holder, async {
            self.check_images(&release.spec, version).await?;
            self.store
                .set_release_status(app, version, ReleaseStatus::Pending, None)
                .map_err(|e| Error::internal(e.to_string()))?;
            self.roll_out(release, &req.who).await
        })
        .await
    }

    /// `rollback` without `--to`: the release that was stable before the current one.
    fn rollback_target(
        &self,
        app: &str,
        to: Option<Version>,
    ) -> Result<slipway_core::release::Release, Error> {
        let internal = |e: StoreError| Error::internal(e.to_string());
        let releases = self.store.releases(app).map_err(internal)?;
        let stable = self.store.stable(app).map_err(internal)?;
        pick_rollback_target(app, releases, stable, to)
    }

    fn lock(&self, app: &str, holder: &str) -> Result<(), Error> {
        match self
            .store
            .acquire_lock(&lock_name(app), holder, &self.daemon_id, now_ms() as i64)
        {
            Ok(()) => Ok(()),
            Err(StoreError::LockHeld {
                holder, since_ms, ..
            }) => Err(Error::conflict(format!(
                "another rollout of {app} is in progress: {holder}, started {}; \
                 wait for it, or stop it with `slipway abort`",
                crate::clock::describe_ms(since_ms)
            ))),
            Err(e) => Err(Error::internal(e.to_string())),
        }
    }

    /// Freezes the folder and records the release; also returns what the freeze left out, and why.
    /// `upload`: the uploaded folder the config came in; an artifact inside it is the daemon's own,
    /// and its new files become blobs without a copy (`freeze_owned`).
    async fn freeze_and_record(
        &self,
        spec: AppSpec,
        req: &DeployRequest,
        upload: Option<PathBuf>,
    ) -> Result<(slipway_core::release::Release, Vec<String>), Error> {
        let artifacts = self.artifacts.clone();
        let dir = spec.artifact.path.clone();
        let exclude = spec.artifact.exclude.clone();
        let skip = vec![self.state_dir.clone()];
        let gate = self.artifact_gate.clone();
        let store = self.store.clone();
        let label = req.label.clone();
        let who = req.who.clone();
        let message = req.message.clone();
        let app_dir = spec.artifact.path.clone();
        // Frozen and recorded under the artifact gate: pruning (which takes it too) either sees the
        // release that keeps the artifact, or runs before it is frozen — never in between.
        let (release, frozen) = tokio::task::spawn_blocking(move || {
            let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
            let owned =
                upload.is_some_and(|upload| match (dir.canonicalize(), upload.canonicalize()) {
                    (Ok(dir), Ok(upload)) => dir.starts_with(upload),
                    _ => false,
                });
            let frozen = if owned {
                artifacts.freeze_owned(&dir, &exclude, &skip)
            } else {
                artifacts.freeze(&dir, &exclude, &skip)
            };
            let frozen = frozen
                .and_then(|frozen| artifacts.checkout(&frozen.digest).map(|_| frozen))
                .map_err(|e| {
                    Error::bad_request(format!("cannot freeze {}: {e}", app_dir.display()))
                })?;
            let new = NewRelease {
                app: spec.app.clone(),
                label,
                artifact: frozen.digest.clone(),
                spec,
                created_at: now_ms() as i64,
                created_by: who,
                message,
                rollback_of: None,
            };
            let release = store
                .create_release(new)
                .map_err(|e| Error::internal(e.to_string()))?;
            Ok::<_, Error>((release, frozen))
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        Ok((release, frozen.skipped))
    }

    pub(crate) async fn hand_over(
        &self,
        release: slipway_core::release::Release,
        rollback: bool,
        strategy: Option<slipway_core::spec::Strategy>,
    ) -> Result<DeployAccepted, Error> {
        let app = release.app.clone();
        let version = release.version;
        let started = self
            .controller
            .ask(|reply| Command::Start {
                release: Box::new(release),
                rollback,
                strategy,
                reply,
            })
            .await?;
        match started {
            Ok(rollout) => Ok(DeployAccepted {
                app,
                release: version,
                rollout,
                warnings: Vec::new(),
                phase: None,
            }),
            Err(e) => {
                let _ = self.store.set_release_status(
                    &app,
                    version,
                    ReleaseStatus::Failed,
                    Some(&e.message),
                );
                Err(e)
            }
        }
    }
}

/// `deploy --canary N`: a canary at N %, held until the pipeline ramps, promotes or rolls back.
/// On Kubernetes every process is a pod of an image: a `cmd` process is refused before anything is
/// recorded, with the fix.
impl Deployer {
    /// A gateway or a Service routes an app through Services in its namespace, which select pods
    /// there only: such an app cannot change namespace in a rollout (its traffic would go nowhere).
    fn routed_apps_stay_in_their_namespace(&self, spec: &AppSpec) -> Result<(), Error> {
        let Some(stable) = self.stable_release(&spec.app)? else {
            return Ok(());
        };
        let version = stable.version;
        let (new, old) = (&spec.kubernetes, &stable.spec.kubernetes);
        let routed =
            |k: &slipway_core::spec::KubernetesSpec| k.gateway.is_some() || k.service.is_some();
        if new.namespace == old.namespace || !(routed(new) || routed(old)) {
            return Ok(());
        }
        let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "the daemon's".into());
        Err(Error::bad_request(format!(
            "[kubernetes] namespace: v{version} of {} runs in {} and a gateway or Service routes it \
             through Services there, which cannot select pods in {}: keep namespace as it is, or \
             route the app through slipway's proxy (no gateway/service) while it moves",
            spec.app,
            name(&old.namespace),
            name(&new.namespace),
        )))
    }
}

fn images_only(spec: &AppSpec) -> Result<(), Error> {
    let commands: Vec<&str> = spec
        .processes
        .iter()
        .filter(|(_, p)| p.container.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    match commands.first() {
        None => Ok(()),
        Some(first) => Err(Error::bad_request(format!(
            "{} {} a command (`cmd`), and on Kubernetes every process runs an image: set \
             `image = \"...\"` (and `port`) in [processes.{first}] of slipway.toml, or deploy with \
             --image; see docs/kubernetes.md",
            commands.join(", "),
            if commands.len() == 1 { "is" } else { "are" }
        ))),
    }
}

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

/// Which release a rollback restores: `--to vN`, else the newest release that served before the
/// current stable one (superseded, not failed).
fn pick_rollback_target(
    app: &str,
    releases: Vec<slipway_core::release::Release>,
    stable: Option<Version>,
    to: Option<Version>,
) -> Result<slipway_core::release::Release, Error> {
    if releases.is_empty() {
        return Err(Error::not_found(format!("{app} has no releases")));
    }
    let found = match to {
        Some(v) => releases.into_iter().find(|r| r.version == v),
        None => releases
            .into_iter()
            .find(|r| Some(r.version) != stable && r.status == ReleaseStatus::Superseded),
    };
    found.ok_or_else(|| {
        Error::not_found(match to {
            Some(v) => format!("{app} has no release v{v}; see `slipway history`"),
            None => {
                format!("{app} has no earlier release that served traffic; see `slipway history`")
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support;
    use slipway_core::release::Release;
    use slipway_core::spec::{CanaryStep, Strategy};

    fn release(version: Version, status: ReleaseStatus) -> Release {
        let mut r = test_support::release("a", version, "[processes.web]\ncmd = \"serve\"");
        r.status = status;
        r
    }

    #[test]
    fn rollback_goes_to_the_newest_release_that_served_before() {
        // Newest first, as the store lists them.
        let history = || {
            vec![
                release(4, ReleaseStatus::Failed),
                release(3, ReleaseStatus::Active),
                release(2, ReleaseStatus::Superseded),
                release(1, ReleaseStatus::Superseded),
            ]
        };
        let back = pick_rollback_target("a", history(), Some(3), None).unwrap();
        assert_eq!(back.version, 2, "not the failed v4, not the stable v3");
        let to = pick_rollback_target("a", history(), Some(3), Some(1)).unwrap();
        assert_eq!(to.version, 1);
        let none = pick_rollback_target("a", history(), Some(3), Some(9)).unwrap_err();
        assert_eq!(none.kind, ErrorKind::NotFound);
        assert!(none.message.contains("slipway history"));
        let first = vec![release(1, ReleaseStatus::Active)];
        let nothing = pick_rollback_target("a", first, Some(1), None).unwrap_err();
        assert!(nothing.message.contains("no earlier release"), "{nothing}");
    }

    #[test]
    fn deploy_canary_holds_at_its_weight() {
        let Strategy::Canary(spec) = canary_hold(10, &None) else {
            panic!("a canary");
        };
        assert_eq!(
            spec.steps,
            [CanaryStep::Weight(10), CanaryStep::Pause(None)],
            "held until the pipeline ramps, promotes or rolls back"
        );
    }
}
