//! At start-up, before the proxy accepts a request: what a previous daemon on this state dir left
//! running (it was killed, or upgraded) is taken back — process instances (`adopt_processes.rs`) and
//! containers (here). Those of a release that should run — the
//! stable release, or either side of a rollout being resumed — keep running and serving: their routes
//! are in the first table the proxy gets (if their readiness check passes once, right then), no
//! restart, and slipway's probes resume. Every other owned
//! container (an unknown or finished release, a warm release whose window is gone with the daemon, one
//! that exited meanwhile) is reported and removed, with its secrets.

use crate::control::controller::Controller;
use crate::control::managed::Managed;
use crate::control::runtimes::RuntimeKind;
use slipway_core::release::Release;
use slipway_docker::{OwnedContainer, RunningContainer};
use slipway_runtime::InstanceState;
use slipway_runtime::probe::{ProbeTarget, check, default_web_readiness};
use std::net::SocketAddr;

impl Controller {
    /// Takes back what a previous daemon on this state dir left running — process instances
    /// (`survivors`, found by the runtime) and containers — or removes it, then publishes the first
    /// route table.
    pub async fn adopt_survivors(&mut self, survivors: Vec<slipway_runtime::Survivor>) {
        self.take_back_processes(survivors).await;
        // What was not adopted goes before anything new starts.
        for id in self.runtimes.processes.reap_orphans() {
            tracing::warn!("stopped {id}, left running by a previous daemon and not adopted");
        }
        #[cfg(feature = "kubernetes")]
        if let Some(pods) = self.runtimes.pods.clone() {
            self.take_back_pods(&pods).await;
        }
        if !self.runtimes.on_kubernetes() && self.any_release_uses_containers() {
            self.take_back_containers().await;
        }
        self.reconcile().await;
    }

    fn any_release_uses_containers(&self) -> bool {
        let apps = self.store.apps().unwrap_or_default();
        apps.iter().any(|app| {
            self.store
                .releases(app)
                .unwrap_or_default()
                .iter()
                .any(|r| r.spec.uses_containers())
        })
    }

    async fn take_back_containers(&mut self) {
        let engine = match self.runtimes.containers.connector().engine().await {
            Ok(engine) => engine,
            Err(e) => {
                tracing::warn!(
                    "cannot look for containers to adopt: {e}; instances of image releases start once the engine answers"
                );
                return;
            }
        };
        let owned = match engine.list_owned().await {
            Ok(owned) => owned,
            Err(e) => {
                tracing::warn!("cannot list this daemon's containers: {e}");
                return;
            }
        };
        for container in owned {
            let ready = match &container.labels {
                Some(l) => {
                    self.ready_now(&l.app, l.release, &l.process, container.address)
                        .await
                }
                None => false,
            };
            match self.adopt_one(&container, ready) {
                Ok(()) => {}
                Err(why) => {
                    let text = format!("removed container {}: {why}", container.name);
                    match &container.labels {
                        Some(labels) if self.apps.contains_key(&labels.app) => {
                            self.event(&labels.app, Some(labels.release), "orphan_removed", &text)
                        }
                        _ => tracing::warn!("{text}"),
                    }
                    if let Err(e) = engine.remove_instance(&container.id).await {
                        tracing::warn!("cannot remove container {}: {e}", container.name);
                    }
                }
            }
        }
    }

    /// The release whose instances those `app` v`made_by` started are: that release if it should run,
    /// or the stable release when `slipway scale` made it from `made_by` (same bits and config, another
    /// formation: it took the running instances over, whose pid files, labels and ReplicaSets still
    /// name `made_by`).
    pub(super) fn runs_as(&mut self, app: &str, made_by: u64) -> Result<u64, String> {
        let unwanted = match self.should_run(app, made_by) {
            Ok(()) => return Ok(made_by),
            Err(why) => why,
        };
        let stable = self.apps.get(app).and_then(|a| a.stable);
        let (Some(stable), Ok(made)) = (stable, self.release(app, made_by)) else {
            return Err(unwanted);
        };
        match self.release(app, stable) {
            Ok(s)
                if stable > made_by
                    && s.artifact == made.artifact
                    && s.spec.same_but_formation(&made.spec) =>
            {
                Ok(stable)
            }
            _ => Err(unwanted),
        }
    }

    /// The release an instance of `app`'s `process` that v`made_by` started is adopted into
    /// ([`Controller::runs_as`]), checked to have that process.
    pub(super) fn adopted_release(
        &mut self,
        app: &str,
        made_by: u64,
        process: &str,
    ) -> Result<Release, String> {
        let version = self.runs_as(app, made_by)?;
        let release = self.release(app, version).map_err(|e| e.message)?;
        if !release.spec.processes.contains_key(process) {
            return Err(format!("v{version} has no process {process}"));
        }
        Ok(release)
    }

    /// Whether `app` v`version` should run: the stable release, or either side of its rollout. Only
    /// those are taken back.
    fn should_run(&self, app: &str, version: u64) -> Result<(), String> {
        let wanted = self.apps.get(app).is_some_and(|a| {
            a.stable == Some(version)
                || a.rollout
                    .as_ref()
                    .is_some_and(|r| r.machine.to == version || r.machine.from == Some(version))
        });
        if wanted {
            return Ok(());
        }
        Err(format!(
            "{app} v{version} is neither the stable release nor in a rollout"
        ))
    }

    /// Whether an adopted `process` of `app` v`version` answers its readiness check at `addr` right
    /// now: only then does it get traffic before its probes have run (it may have been killed with
    /// its daemon while still starting). Other processes have no traffic to wait for.
    pub(super) async fn ready_now(
        &mut self,
        app: &str,
        version: u64,
        process: &str,
        addr: Option<SocketAddr>,
    ) -> bool {
        if process != "web" {
            return true;
        }
        let Ok(release) = self.release(app, version) else {
            return false;
        };
        let Some(spec) = release.spec.processes.get(process) else {
            return false;
        };
        let probe = spec.readiness.clone().unwrap_or_else(default_web_readiness);
        let target = ProbeTarget {
            addr,
            // A container on slipway's loopback network answers through a published port.
            forwarded: spec.container.as_ref().is_some_and(|c| c.network.is_none()),
            workdir: "/".into(),
            env: Default::default(),
        };
        check(&probe.check, &target, probe.timeout).await.is_ok()
    }

    /// An instance the runtime supervises again joins the controller's view — Ready (routed in the
    /// first table) if it was found ready — with an `adopted` event saying what it is (`how`).
    pub(super) fn adopted(&mut self, app: &str, mut instance: Managed, ready: bool, how: &str) {
        self.next_seq += 1;
        instance.seq = self.next_seq;
        instance.retiring = false;
        instance.state = if ready {
            InstanceState::Ready
        } else {
            InstanceState::Starting
        };
        let text = format!(
            "adopted {} ({how}) left running by the previous daemon",
            instance.id
        );
        let version = instance.release;
        self.apps
            .entry(app.to_string())
            .or_default()
            .instances
            .push(instance);
        self.event(app, Some(version), "adopted", &text);
    }

    /// Takes one container back, or says why it goes.
    fn adopt_one(&mut self, container: &OwnedContainer, ready: bool) -> Result<(), String> {
        let labels = container
            .labels
            .as_ref()
            .ok_or("its slipway labels are missing or malformed")?;
        let (app, process) = (&labels.app, &labels.process);
        let release = self.adopted_release(app, labels.release, process)?;
        if !container.running {
            return Err(format!(
                "it {} while no daemon watched it; a fresh one replaces it",
                container.state
            ));
        }
        let version = release.version;
        let spec = &release.spec.processes[process];
        let settings = spec
            .container
            .as_ref()
            .ok_or_else(|| format!("{process} of v{version} does not run an image"))?;
        let web = process == "web";
        let address = container.address;
        if web && address.is_none() {
            return Err("its published address cannot be read back".into());
        }
        // Only a restart of the container needs them again; a serving container is kept regardless.
        let secrets = crate::secrets::resolve(&release.spec.secrets).unwrap_or_else(|e| {
            tracing::warn!(
                "adopting {}: {e}; a restart would run without secrets",
                container.name
            );
            Default::default()
        });
        let id = labels.instance.clone();
        let log_path = self.paths.instance_log(app, version, &id);
        let instance = crate::control::container_instance::build(
            &release, process, spec, settings, &id, secrets, log_path,
        )?;
        let running = RunningContainer {
            id: container.id.clone(),
            name: container.name.clone(),
            image: container
                .image
                .clone()
                .unwrap_or_else(|| instance.spec.image.clone()),
            address,
        };
        self.runtimes.containers.adopt(instance, running, ready)?;
        let backend = address
            .filter(|_| web)
            .map(|addr| slipway_proxy::Backend::new(id.clone(), addr));
        let managed = Managed {
            id,
            release: version,
            process: process.clone(),
            backend,
            runtime: RuntimeKind::Container,
            state: InstanceState::Starting,
            retiring: false,
            seq: 0,
        };
        self.adopted(
            app,
            managed,
            ready,
            &format!("container {}", container.name),
        );
        Ok(())
    }
}
