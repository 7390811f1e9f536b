//! What the controller does when it is told something: an operator command, an instance's state change,
//! a drain that finished. Each handler only updates state and the store; `converge` acts on it.

use crate::clock::now_ms;
use crate::control::app_state::AppState;
use crate::control::controller::{Command, Controller, Msg};
use crate::control::{formation_change, rollout_start};
use crate::error::Error;
use slipway_core::release::{Release, ReleaseStatus, Version};
use slipway_core::rollout::{Outcome, Signal};
use slipway_core::spec::Strategy;
use slipway_runtime::InstanceEvent;
use slipway_store::RolloutOutcome;

impl Controller {
    pub(crate) fn on_message(&mut self, msg: Msg) {
        match msg {
            Msg::Command(Command::Start {
                release,
                rollback,
                strategy,
                reply,
            }) => {
                let _ = reply.send(self.start_rollout(*release, rollback, strategy));
            }
            Msg::Command(Command::Adopt { release, reply }) => {
                let _ = reply.send(self.adopt(*release));
            }
            Msg::Command(Command::Signal { app, signal, reply }) => {
                let _ = reply.send(self.signal(&app, signal));
            }
            Msg::Command(Command::Maintenance { app, record, reply }) => {
                if let Some(state) = self.apps.get_mut(&app) {
                    state.maintenance = record.map(crate::control::app_state::InMaintenance::from);
                }
                let _ = reply.send(());
            }
            Msg::Command(Command::Status { app, reply }) => {
                let _ = reply.send(self.status(app.as_deref()));
            }
            Msg::Command(Command::Gate {
                app,
                template,
                for_ms,
                reply,
            }) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                match self.start_gate(&app, template, for_ms, tx) {
                    Ok(()) => {
                        tokio::spawn(async move {
                            let answer = rx
                                .await
                                .map_err(|_| Error::internal("the gate was dropped"));
                            let _ = reply.send(answer);
                        });
                    }
                    Err((_, why)) => {
                        let _ = reply.send(Err(Error::conflict(why)));
                    }
                }
            }
            Msg::Command(Command::Series { app, reply }) => {
                let _ = reply.send(self.apps.get(&app).map(|a| a.series.view()));
            }
            Msg::Command(Command::Slo { app, reply }) => {
                let _ = reply.send(self.slo_snapshot(&app, crate::clock::now_ms()));
            }
            Msg::Command(Command::Metrics { reply }) => {
                let _ = reply.send(crate::control::metrics_text::render(self));
            }
            Msg::Command(Command::FlagTraffic { app, reply }) => {
                let _ = reply.send(self.flag_traffic(&app));
            }
            Msg::External {
                app,
                session,
                results,
            } => self.on_external_results(&app, session, results),
            Msg::Command(Command::Shutdown { reply }) => {
                self.shutdown = Some(reply);
            }
            Msg::Command(Command::HandOver { reply }) => {
                self.hand_over = Some(reply);
            }
            Msg::Retired { app, id, notes } => {
                if let Some(a) = self.apps.get_mut(&app) {
                    a.instances.retain(|m| m.id != id);
                }
                for (kind, note) in notes {
                    self.event(&app, None, kind, &note);
                }
            }
            #[cfg(feature = "kubernetes")]
            Msg::TrafficFailed { app, reason } => {
                self.event(&app, None, "traffic_write_failed", &reason);
                // Its traffic is not where the rollout says: the rollout cannot go on.
                if let Some(r) = self.apps.get_mut(&app).and_then(|a| a.rollout.as_mut()) {
                    r.machine
                        .signal(slipway_core::rollout::Signal::Fail { reason });
                }
            }
        }
    }

    pub(crate) fn on_instance_event(&mut self, event: InstanceEvent) {
        let Some(app) = self.apps.get_mut(&event.app) else {
            return;
        };
        let container_addr = app
            .instances
            .iter()
            .find(|m| m.id == event.id)
            .and_then(|m| self.runtimes.address(m.runtime, &event.id));
        let notes = crate::control::instance_events::on_instance_event(app, &event, container_addr);
        for note in notes {
            self.event(&event.app, Some(note.release), note.kind, &note.text);
        }
    }

    fn start_rollout(
        &mut self,
        release: Release,
        rollback: bool,
        strategy: Option<Strategy>,
    ) -> Result<i64, Error> {
        let app_name = release.app.clone();
        let now = now_ms();
        let stable = self.apps.get(&app_name).and_then(|a| a.stable);
        let from = match stable {
            Some(v) => Some((v, self.release(&app_name, v)?.spec.web_replicas())),
            None => None,
        };
        let strategy = rollout_start::strategy_for(&release, rollback, strategy);
        let strategy_name = strategy.name();
        let none = AppState::default();
        let app = self.apps.get(&app_name).unwrap_or(&none);
        let machine = rollout_start::machine(app, &release, from, strategy, now)?;
        let mut state =
            serde_json::to_value(&machine).map_err(|e| Error::internal(e.to_string()))?;
        if rollback {
            state["rollback"] = serde_json::Value::Bool(true);
        }
        let record =
            self.store
                .start_rollout(&app_name, stable, release.version, &state, now as i64)?;
        let version = release.version;
        self.supersede_watch(&app_name, version, rollback, now);
        self.releases
            .insert((app_name.clone(), version), release.clone());
        let warm = self.apps.get(&app_name).and_then(|a| a.warm.as_ref());
        let warm = warm.and_then(|w| self.releases.get(&(app_name.clone(), w.version)));
        let warm = warm.cloned();
        let app = self.apps.entry(app_name.clone()).or_default();
        rollout_start::begin(app, record.id, machine, rollback, &release, warm.as_ref());
        let text = rollout_start::started_text(stable, &release, strategy_name);
        self.event(&app_name, Some(version), "rollout_started", &text);
        Ok(record.id)
    }

    /// A formation change: the new release runs exactly like the stable one, so its instances become the
    /// new release's (no restart), and the release becomes stable in one transaction with the lock.
    fn adopt(&mut self, release: Release) -> Result<(), Error> {
        let name = release.app.clone();
        let version = release.version;
        let old = match self.apps.get(&name).and_then(|a| a.stable) {
            Some(v) => Some(self.release(&name, v)?),
            None => None,
        };
        let none = AppState::default();
        let app = self.apps.get(&name).unwrap_or(&none);
        let stable = formation_change::check(app, old.as_ref(), &release)?;
        self.store.transaction(|tx| {
            tx.set_stable(&name, version)?;
            tx.release_lock(&crate::locks::lock_name(&name))
        })?;
        self.releases
            .insert((name.clone(), version), release.clone());
        if let Some(r) = self.releases.get_mut(&(name.clone(), version)) {
            r.status = ReleaseStatus::Active;
        }
        if let Some(r) = self.releases.get_mut(&(name.clone(), stable)) {
            r.status = ReleaseStatus::Superseded;
        }
        let app = self.apps.entry(name.clone()).or_default();
        formation_change::take_over(app, stable, version);
        let formation = slipway_core::spec::formation_text(&release.spec.formation());
        self.event(
            &name,
            Some(version),
            "scaled",
            &format!("v{version} ({formation}) replaces v{stable}: same bits and config, running instances kept"),
        );
        Ok(())
    }

    fn signal(&mut self, app: &str, signal: Signal) -> Result<(), Error> {
        let Some(r) = self.apps.get_mut(app).and_then(|a| a.rollout.as_mut()) else {
            return Err(Error::conflict(format!(
                "no rollout of {app} is in progress"
            )));
        };
        let what = match &signal {
            Signal::Promote => "promote",
            Signal::PromoteFull => "promote --full",
            Signal::Pause => "pause",
            Signal::Resume => "resume",
            Signal::SetWeight(_) => "ramp",
            Signal::Analysis { .. } => "analysis",
            Signal::Abort { .. } => "abort",
            Signal::Fail { .. } => "fail",
        };
        if r.machine.signal(signal) {
            let to = r.machine.to;
            self.event(
                app,
                Some(to),
                what,
                &format!("{what} of the rollout to v{to} accepted"),
            );
            Ok(())
        } else {
            Err(Error::conflict(format!(
                "cannot {what} now: the rollout to v{} is {}",
                r.machine.to,
                crate::control::status::phase_name(&r.machine.phase)
            )))
        }
    }

    /// Records the end of a rollout: one transaction for the rollout, the releases and the lock.
    pub(crate) fn finish_rollout(&mut self, app_name: &str) {
        let now = now_ms();
        let Some(app) = self.apps.get_mut(app_name) else {
            return;
        };
        let failure_before = app.last_failure.clone();
        let Some(ended) = crate::control::rollout_end::end_rollout(app, now) else {
            return;
        };
        let drill = self
            .release(app_name, ended.to)
            .is_ok_and(|r| r.spec.drill_fault.is_some());
        if drill && let Some(app) = self.apps.get_mut(app_name) {
            // A drill rolled back is no failure of the app: `status` keeps what it said before.
            app.last_failure = failure_before;
        }
        let (outcome, reason, to) = (ended.outcome, ended.reason.clone(), ended.to);
        let stored_outcome = match outcome {
            Outcome::Succeeded => RolloutOutcome::Succeeded,
            Outcome::Failed => RolloutOutcome::Failed,
            Outcome::Aborted => RolloutOutcome::Aborted,
        };
        let result = self.store.transaction(|tx| {
            tx.finish_rollout(ended.id, stored_outcome, reason.as_deref(), now as i64)?;
            match outcome {
                Outcome::Succeeded => tx.set_stable(app_name, to)?,
                _ => {
                    tx.set_release_status(app_name, to, ReleaseStatus::Failed, reason.as_deref())?
                }
            }
            tx.release_lock(&crate::locks::lock_name(app_name))?;
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!("cannot record the end of the rollout of {app_name}: {e}");
        }
        // A drill's rollback is the drill working: its report tells (and notifies only if it failed).
        if outcome != Outcome::Succeeded
            && !drill
            && let Ok(release) = self.release(app_name, to)
        {
            let text = format!(
                "slipway: {app_name} v{to} was {}: {}. {} keeps serving.",
                if outcome == Outcome::Aborted {
                    "aborted"
                } else {
                    "rolled back"
                },
                reason.as_deref().unwrap_or("no reason recorded"),
                ended
                    .from
                    .map_or("nothing".to_string(), |v| format!("v{v}"))
            );
            crate::notify::send(&self.http(), &release.spec.notify, text);
        }
        for (key, rel) in self.releases.iter_mut() {
            if key.0 == app_name && key.1 == to {
                rel.status = if outcome == Outcome::Succeeded {
                    ReleaseStatus::Active
                } else {
                    ReleaseStatus::Failed
                };
            }
        }
        let what = if drill { "drill rollout" } else { "rollout" };
        let text = match (outcome, &reason) {
            (Outcome::Succeeded, _) => format!("v{to} is serving 100% of traffic"),
            (_, Some(why)) => format!("{what} to v{to} {}: {why}", outcome.as_str()),
            (_, None) => format!("{what} to v{to} {}", outcome.as_str()),
        };
        self.event(
            app_name,
            Some(to),
            &format!("rollout_{}", outcome.as_str()),
            &text,
        );
        self.start_watch(app_name, &ended, now);
        self.prune_artifacts();
        self.forget_releases();
        // What the ended rollout freed (its release's counters, windows, cached releases) goes back
        // to the OS instead of staying in the allocator's arenas (`allocator.rs`).
        tokio::task::spawn_blocking(crate::allocator::release_free_memory);
    }

    /// The release, from the cache or the store.
    pub(crate) fn release(&mut self, app: &str, version: Version) -> Result<Release, Error> {
        let key = (app.to_string(), version);
        if let Some(r) = self.releases.get(&key) {
            return Ok(r.clone());
        }
        match self.store.release(app, version) {
            Ok(Some(r)) => {
                self.releases.insert(key, r.clone());
                Ok(r)
            }
            Ok(None) => Err(Error::not_found(format!("{app} has no release v{version}"))),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn event(&self, app: &str, release: Option<Version>, kind: &str, message: &str) {
        tracing::info!(app, kind, "{message}");
        if let Err(e) = self
            .store
            .add_event(app, release, kind, message, now_ms() as i64)
        {
            tracing::error!("cannot record an event: {e}");
        }
    }

    /// The releases each app still uses: its instances', the stable one, the warm one, the rollout's.
    fn in_use(&self) -> std::collections::HashMap<String, Vec<Version>> {
        let mut in_use: std::collections::HashMap<String, Vec<Version>> = Default::default();
        for (name, app) in &self.apps {
            let used = in_use.entry(name.clone()).or_default();
            used.extend(app.instances.iter().map(|m| m.release));
            used.extend(app.stable);
            used.extend(app.warm.as_ref().map(|w| w.version));
            if let Some(r) = &app.rollout {
                used.push(r.machine.to);
                used.extend(r.machine.from);
            }
        }
        in_use
    }

    /// The cache of releases keeps those in use and forgets the rest (`converge` loads what a plan
    /// needs again from the store), so the controller does not hold every release ever made.
    fn forget_releases(&mut self) {
        let in_use = self.in_use();
        self.releases
            .retain(|(app, v), _| in_use.get(app).is_some_and(|used| used.contains(v)));
    }

    /// Drops the artifacts no app needs any more (see `retention`), off the controller's task.
    fn prune_artifacts(&self) {
        let in_use = self.in_use();
        let store = self.store.clone();
        let artifacts = self.artifacts.clone();
        let gate = self.artifact_gate.clone();
        let docker = self.runtimes.containers.connector().clone();
        // On Kubernetes the nodes hold the images (their kubelets collect them), not an engine here.
        let on_engine = !self.runtimes.on_kubernetes();
        let pruning = tokio::task::spawn_blocking(move || {
            let mut images = Vec::new();
            let result = (|| -> Result<_, String> {
                // Held from reading which releases exist to the prune: a deploy records its release
                // under the same gate it froze the artifact under, so none is pruned in between.
                let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
                let mut all = Vec::new();
                for app in store.apps().map_err(|e| e.to_string())? {
                    // Not the whole history (it only grows, and this runs after every rollout):
                    // the releases retention decides on, which give the same answer.
                    let newest = store
                        .releases_for_retention(&app, 1, &[])
                        .map_err(|e| e.to_string())?;
                    let keep = crate::retention::keep_of(&newest);
                    let used = in_use.get(&app).cloned().unwrap_or_default();
                    let releases = store
                        .releases_for_retention(&app, keep, &used)
                        .map_err(|e| e.to_string())?;
                    let kept = crate::retention::kept_versions(&releases, keep, &used);
                    // (An app none of whose releases here runs an image has its images left
                    // alone, as before it ever ran one.)
                    if on_engine && releases.iter().any(|r| r.spec.uses_containers()) {
                        let ids = crate::retention::kept_images(&releases, &kept);
                        images.push((app.clone(), ids));
                    }
                    all.push((releases, kept));
                }
                let digests = crate::retention::kept_digests(
                    all.iter().map(|(r, k)| (r.as_slice(), k.clone())),
                );
                artifacts.prune(&digests).map_err(|e| e.to_string())
            })();
            match result {
                Ok(report) if !report.artifacts.is_empty() => {
                    tracing::info!(
                        "pruned {} old artifacts ({} bytes)",
                        report.artifacts.len(),
                        report.bytes
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot prune old artifacts: {e}"),
            }
            images
        });
        // Images follow the artifacts' retention: those of kept releases (stable, rollback target,
        // running, the newest `keep`) stay; the engine refuses to remove one a container uses.
        tokio::spawn(async move {
            let Ok(images) = pruning.await else { return };
            if images.is_empty() {
                return;
            }
            let engine = match docker.engine().await {
                Ok(engine) => engine,
                Err(e) => return tracing::warn!("cannot prune old images: {e}"),
            };
            for (app, keep) in images {
                let keep: Vec<slipway_docker::ImageId> = keep
                    .iter()
                    .filter_map(|id| slipway_docker::ImageId::parse(id).ok())
                    .collect();
                match engine.remove_images(&app, &keep).await {
                    Ok(removed) if !removed.is_empty() => {
                        let ids: Vec<&str> = removed.iter().map(|id| id.short()).collect();
                        tracing::info!(app, "removed {} old images: {}", ids.len(), ids.join(", "));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(app, "cannot prune old images: {e}"),
                }
            }
        });
    }
}
