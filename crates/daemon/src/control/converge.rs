//! Making the world match what the apps want: which instances run, which retire, what the proxy routes.

use crate::clock::now_ms;
use crate::control::controller::{Controller, Msg};
use crate::control::desired::{self, Desired};
use crate::control::instance_plan;
use crate::control::managed::Managed;
use crate::control::runtimes::RuntimeKind;
use slipway_core::release::Version;
use slipway_core::rollout::Signal;
use slipway_proxy::Backend;
use slipway_runtime::InstanceSpec;
use std::collections::BTreeMap;

impl Controller {
    pub(crate) async fn reconcile(&mut self) {
        let now = now_ms();
        let names: Vec<String> = self.apps.keys().cloned().collect();
        let mut retiring = Vec::new();
        let mut desired_by_app = BTreeMap::new();
        let mut starts = false;
        for name in &names {
            let desired = if self.shutdown.is_some() {
                Desired::default()
            } else {
                self.desired(name, now)
            };
            starts |= self.converge(name, &desired, &mut retiring);
            desired_by_app.insert(name.clone(), desired);
        }
        // Every release that may get traffic has counters, kept across tables like its backends.
        for (name, desired) in &desired_by_app {
            if let Some(app) = self.apps.get_mut(name) {
                // Counters outlive a release's traffic a little, so a scrape still sees a rolled-back
                // canary's last errors: kept while routed, or among the app's 4 newest releases.
                let newest = app.metrics.keys().next_back().copied().unwrap_or(0);
                app.metrics
                    .retain(|v, _| desired.weight.contains_key(v) || *v + 3 >= newest);
                for v in desired.weight.keys() {
                    app.metrics
                        .entry(*v)
                        .or_insert_with(slipway_proxy::ReleaseMetrics::new);
                }
                if let Some(r) = app.rollout.as_mut() {
                    while r.rule_metrics.len() < r.machine.canary.routes.len() {
                        r.rule_metrics.push(slipway_proxy::ReleaseMetrics::new());
                    }
                    if r.machine.canary.mirror > 0 && r.shadow.is_none() {
                        r.shadow = Some(slipway_proxy::ShadowReport::new());
                    }
                }
            }
        }
        // Publish before draining: once `publish` returns, no request can pick a retiring instance.
        // Only the apps whose route changed are built again (and compiled by the proxy).
        let table = self
            .published
            .update(&self.apps, &desired_by_app, &self.releases);
        let published = table.is_some();
        if let Some(table) = table {
            self.routes.publish(table).await;
        }
        // Apps a gateway routes: the same weights, to their HTTPRoute and Services (not while
        // shutting down: an upgrade's new daemon takes the pods over, routes and all).
        #[cfg(feature = "kubernetes")]
        if self.shutdown.is_none()
            && let Some(writer) = &self.runtimes.traffic
        {
            for traffic in
                crate::control::gateway_traffic::plan(&self.apps, &desired_by_app, &self.releases)
            {
                writer.publish(traffic);
            }
        }
        // Settled: nothing started or re-routed, and nothing under way that time moves on (a rollout,
        // a warm release) or that must finish (a drain, including those marked just now).
        self.settled = !starts
            && !published
            && self.apps.values().all(|a| {
                a.rollout.is_none() && a.warm.is_none() && !a.instances.iter().any(|m| m.retiring)
            });
        for (app, m) in retiring {
            // Still in the app's traffic (fewer replicas of a routed release), or leaving it.
            let routed = desired_by_app
                .get(&app)
                .and_then(|d| d.weight.get(&m.release))
                .is_some_and(|&w| w > 0);
            self.spawn_retire(&app, m, routed);
        }
    }

    /// What the app wants now (see `desired`), with its releases loaded and the rollout's progress
    /// persisted; a rollout that has ended is recorded.
    fn desired(&mut self, name: &str, now: u64) -> Desired {
        self.load_releases(name);
        let Some(app) = self.apps.get_mut(name) else {
            return Desired::default();
        };
        let plan = desired::plan_app(name, app, &self.releases, now);
        if let (Some(state), Some(active)) = (&plan.persist, app.rollout.as_ref())
            && let Err(e) = self.store.update_rollout(active.id, state)
        {
            tracing::error!("cannot persist the rollout of {name}: {e}");
        }
        if plan.finished {
            self.finish_rollout(name);
        }
        plan.desired
    }

    /// Caches the releases an app's decisions read: stable, rollout (both sides), warm.
    fn load_releases(&mut self, name: &str) {
        let Some(app) = self.apps.get(name) else {
            return;
        };
        let rollout = app.rollout.as_ref().map(|r| &r.machine);
        let versions: Vec<Version> = [
            app.stable,
            rollout.map(|r| r.to),
            rollout.and_then(|r| r.from),
            app.warm.as_ref().map(|w| w.version),
        ]
        .into_iter()
        .flatten()
        .collect();
        for v in versions {
            // Already cached: nothing to read (and no copy of the release made each reconcile).
            if !self.releases.contains_key(&(name.to_owned(), v)) {
                let _ = self.release(name, v);
            }
        }
    }

    /// Starts and retires instances of one app so each (release, process) has the count it should.
    /// Returns whether it tried to start any (a start that failed is tried again next round).
    fn converge(
        &mut self,
        name: &str,
        desired: &Desired,
        retiring: &mut Vec<(String, Managed)>,
    ) -> bool {
        // `desired` loaded every release it names (stable, rollout, warm).
        let wanted = instance_plan::wanted(name, desired, &self.releases);
        let Some(app) = self.apps.get_mut(name) else {
            return false;
        };
        let plan = instance_plan::plan(&app.instances, &wanted);
        let starts = !plan.start.is_empty();
        for m in app.instances.iter_mut() {
            if plan.retire.contains(&m.id) {
                m.retiring = true;
                retiring.push((name.to_string(), m.clone()));
            }
        }
        for (version, process) in plan.start {
            if let Err(reason) = self.start_instance(name, version, &process) {
                self.event(name, Some(version), "instance_start_failed", &reason);
                if let Some(r) = self.apps.get_mut(name).and_then(|a| a.rollout.as_mut())
                    && r.machine.to == version
                {
                    r.machine.signal(Signal::Fail { reason });
                }
                break;
            }
        }
        starts
    }

    fn start_instance(
        &mut self,
        name: &str,
        version: Version,
        process: &str,
    ) -> Result<(), String> {
        let release = self.release(name, version).map_err(|e| e.message)?;
        let Some(spec) = release.spec.processes.get(process) else {
            return Err(format!("v{version} has no process {process}"));
        };
        #[cfg(feature = "kubernetes")]
        if let Some(pods) = self.runtimes.pods.clone() {
            return self.start_pod(&pods, &release, process);
        }
        if let Some(container) = &spec.container {
            self.next_seq += 1;
            let seq = self.next_seq;
            let id = format!("{name}-v{version}-{process}-{:x}", seq & 0xffffff);
            let secrets = crate::secrets::resolve(&release.spec.secrets)?;
            let log_path = self.paths.instance_log(name, version, &id);
            let instance = crate::control::container_instance::build(
                &release, process, spec, container, &id, secrets, log_path,
            )?;
            let status = self
                .runtimes
                .containers
                .start(instance)
                .map_err(|e| format!("cannot start {id} (image {}): {e}", container.image))?;
            // The proxy learns its address once it is ready (see `on_instance_event`).
            self.apps
                .entry(name.to_string())
                .or_default()
                .instances
                .push(Managed {
                    id,
                    release: version,
                    process: process.to_string(),
                    backend: None,
                    runtime: RuntimeKind::Container,
                    state: status.instance.state,
                    retiring: false,
                    seq,
                });
            return Ok(());
        }
        let secrets = crate::secrets::resolve(&release.spec.secrets)?;
        let web = process == "web";
        let port = if web {
            Some(slipway_runtime::pick_free_port().map_err(|e| format!("no free port: {e}"))?)
        } else {
            None
        };
        self.next_seq += 1;
        let seq = self.next_seq;
        let id = format!("{name}-v{version}-{process}-{:x}", seq & 0xffffff);
        let instance = self.process_instance(&release, process, &id, port, secrets)?;
        let status = self
            .runtimes
            .processes
            .start(instance)
            .map_err(|e| format!("cannot start {id} (`{}`): {e}", spec.cmd))?;
        let backend =
            port.map(|p| Backend::new(id.clone(), std::net::SocketAddr::from(([127, 0, 0, 1], p))));
        let app = self.apps.entry(name.to_string()).or_default();
        app.instances.push(Managed {
            id,
            release: version,
            process: process.to_string(),
            backend,
            runtime: RuntimeKind::Process,
            state: status.state,
            retiring: false,
            seq,
        });
        Ok(())
    }

    /// One more pod of the release process's ReplicaSet (`serve --kubernetes`); the proxy learns its
    /// address once it is ready (see `on_instance_event`).
    #[cfg(feature = "kubernetes")]
    fn start_pod(
        &mut self,
        pods: &slipway_kube::PodSupervisor,
        release: &slipway_core::release::Release,
        process: &str,
    ) -> Result<(), String> {
        use crate::control::pod_instance;
        let name = release.app.clone();
        let version = release.version;
        let spec = &release.spec.processes[process];
        let container = spec
            .container
            .as_ref()
            .ok_or_else(|| pod_instance::needs_an_image(release, process))?;
        let secrets = crate::secrets::resolve(&release.spec.secrets)?;
        let template = pod_instance::build(release, process, spec, container, secrets)?;
        self.next_seq += 1;
        let seq = self.next_seq;
        let id = format!("{name}-v{version}-{process}-{:x}", seq & 0xffffff);
        let log_path = self.paths.instance_log(&name, version, &id);
        let status = pods.start(&id, template, &log_path);
        self.apps.entry(name).or_default().instances.push(Managed {
            id,
            release: version,
            process: process.to_string(),
            backend: None,
            runtime: RuntimeKind::Pod,
            state: status.state,
            retiring: false,
            seq,
        });
        Ok(())
    }

    /// What the supervisor runs for the instance `id` of a release's (non-image) `process`: its command
    /// in the release's checked-out artifact, with the release's env and `secrets`.
    pub(super) fn process_instance(
        &self,
        release: &slipway_core::release::Release,
        process: &str,
        id: &str,
        port: Option<u16>,
        secrets: std::collections::BTreeMap<String, String>,
    ) -> Result<InstanceSpec, String> {
        let version = release.version;
        let spec = release
            .spec
            .processes
            .get(process)
            .ok_or_else(|| format!("v{version} has no process {process}"))?;
        let workdir = {
            let _held = self.artifact_gate.lock().unwrap_or_else(|e| e.into_inner());
            self.artifacts
                .checkout(&release.artifact)
                .map_err(|e| format!("cannot check out the artifact of v{version}: {e}"))?
        };
        let mut env = release.spec.environment();
        env.extend(secrets);
        Ok(InstanceSpec {
            id: id.to_owned(),
            app: release.app.clone(),
            release: version,
            process: process.to_string(),
            cmd: spec.cmd.clone(),
            workdir,
            env,
            port,
            readiness: spec.readiness.clone(),
            liveness: spec.liveness.clone(),
            startup: spec.startup.clone(),
            grace: spec.grace,
            stop_signal: spec.stop_signal,
            log_path: self.paths.instance_log(&release.app, version, id),
        })
    }

    /// Drains an instance that has already left the route table, then stops it.
    fn spawn_retire(&mut self, app: &str, m: Managed, routed: bool) {
        let timeouts = self
            .releases
            .get(&(app.to_string(), m.release))
            .and_then(|r| r.spec.processes.get(&m.process))
            .map(|p| (p.drain_timeout, p.stream_drain_timeout))
            .unwrap_or((
                std::time::Duration::from_secs(30),
                std::time::Duration::from_secs(300),
            ));
        #[cfg(feature = "kubernetes")]
        let unroute = self.unroute(app, &m, routed, timeouts.0);
        #[cfg(not(feature = "kubernetes"))]
        let _ = routed;
        let runtimes = self.runtimes.clone();
        let tx = self.tx.clone();
        let app = app.to_string();
        tokio::spawn(async move {
            let mut notes = Vec::new();
            #[cfg(feature = "kubernetes")]
            if let Some(unroute) = unroute {
                notes.extend(unroute.wait().await);
            }
            if let Some(backend) = &m.backend {
                let outcome = slipway_proxy::drain(backend, timeouts.0, timeouts.1).await;
                if !outcome.is_clean() {
                    notes.push((
                        "drain_timeout",
                        format!(
                            "{} did not drain in time: {outcome:?}; stopping it anyway",
                            m.id
                        ),
                    ));
                }
            }
            runtimes.stop(m.runtime, &m.id).await;
            let _ = tx.send(Msg::Retired {
                app,
                id: m.id,
                notes,
            });
        });
    }

    /// For a web pod of a release leaving the traffic of an app a gateway or a Service routes:
    /// what it waits for before it drains (`unroute.rs`). Not while shutting down (the routes
    /// stay as they are for the next daemon, which takes the pods over).
    #[cfg(feature = "kubernetes")]
    fn unroute(
        &self,
        app: &str,
        m: &Managed,
        routed: bool,
        limit: std::time::Duration,
    ) -> Option<crate::control::unroute::Unroute> {
        if routed || m.process != "web" || self.shutdown.is_some() {
            return None;
        }
        let writer = self.runtimes.traffic.clone()?;
        let k = &self
            .releases
            .get(&(app.to_owned(), m.release))?
            .spec
            .kubernetes;
        if k.gateway.is_none() && k.service.is_none() {
            return None;
        }
        Some(crate::control::unroute::Unroute {
            writer,
            app: app.to_owned(),
            release: m.release,
            limit,
            delay: k
                .traffic_lag
                .unwrap_or(slipway_core::spec::DEFAULT_TRAFFIC_LAG),
        })
    }
}
