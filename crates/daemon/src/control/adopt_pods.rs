//! At start-up with `serve --kubernetes`, before the proxy accepts a request: the ReplicaSets a
//! previous daemon on this state dir left in the namespace are taken back (mirroring `adopt.rs` for
//! containers). Those of a release that should run — the stable release, or either side of a
//! rollout being resumed — keep their pods: one instance per pod, Ready (routed in the first table)
//! if the pod's Ready condition says so right then. Every other one of this daemon's ReplicaSets (an
//! unknown or finished release, a warm release whose window is gone with the daemon) is reported and
//! deleted with its pods and Secret. Finished one-off pods (a release phase, a cron run) it left are
//! deleted too; one still running is left to finish.

use crate::control::controller::Controller;
use crate::control::managed::Managed;
use crate::control::runtimes::RuntimeKind;
use slipway_kube::{OwnedReplicaSet, PodSupervisor};
use slipway_runtime::InstanceState;

impl Controller {
    pub(super) async fn take_back_pods(&mut self, pods: &PodSupervisor) {
        pods.sweep_finished_jobs(&self.app_namespaces()).await;
        let owned = match pods.owned(&self.app_namespaces()).await {
            Ok(owned) => owned,
            Err(e) => {
                tracing::warn!("cannot look for pods to adopt: {e}");
                return;
            }
        };
        for set in owned {
            if let Err(why) = self.adopt_set(pods, &set).await {
                let text = format!("removed ReplicaSet {}: {why}", set.name);
                match &set.key {
                    Some(key) if self.apps.contains_key(&key.app) => {
                        self.event(&key.app, Some(key.release), "orphan_removed", &text)
                    }
                    _ => tracing::warn!("{text}"),
                }
                if let Err(e) = pods.remove(&set).await {
                    tracing::warn!("{e}");
                }
            }
        }
    }

    /// The namespaces any recorded release of any app names in `[kubernetes] namespace`: this
    /// daemon's ReplicaSets are looked for there too, besides its own namespace — those of releases
    /// that should run are adopted, one an app left behind when it moved is removed.
    fn app_namespaces(&self) -> std::collections::BTreeSet<String> {
        let mut namespaces = std::collections::BTreeSet::new();
        let apps = self.store.apps().unwrap_or_else(|e| {
            tracing::warn!("cannot read the apps for their namespaces: {e}");
            Vec::new()
        });
        for app in apps {
            match self.store.releases(&app) {
                Ok(releases) => namespaces.extend(
                    releases
                        .into_iter()
                        .filter_map(|r| r.spec.kubernetes.namespace),
                ),
                Err(e) => tracing::warn!(app, "cannot read the releases for their namespaces: {e}"),
            }
        }
        namespaces
    }

    /// Takes one ReplicaSet back with an instance per pod, or says why it goes.
    async fn adopt_set(
        &mut self,
        pods: &PodSupervisor,
        set: &OwnedReplicaSet,
    ) -> Result<(), String> {
        let key = set
            .key
            .as_ref()
            .ok_or("its slipway labels are missing or malformed")?;
        let (app, process) = (&key.app, &key.process);
        let release = self.adopted_release(app, key.release, process)?;
        let version = release.version;
        let spec = &release.spec.processes[process];
        let container = spec
            .container
            .as_ref()
            .ok_or_else(|| format!("{process} of v{version} does not run an image"))?;
        // Only new pods need them; serving pods are kept regardless.
        let secrets = crate::secrets::resolve(&release.spec.secrets).unwrap_or_else(|e| {
            tracing::warn!("adopting {}: {e}; its Secret is kept as it is", set.name);
            Default::default()
        });
        let template =
            crate::control::pod_instance::build(&release, process, spec, container, secrets)?;
        let ids: Vec<(String, std::path::PathBuf)> = (0..set.replicas.max(0))
            .map(|_| {
                self.next_seq += 1;
                let id = format!("{app}-v{version}-{process}-{:x}", self.next_seq & 0xffffff);
                let log = self.paths.instance_log(app, version, &id);
                (id, log)
            })
            .collect();
        let web = process == "web";
        for adopted in pods.adopt(set, template, ids).await {
            let observed = adopted.observed;
            let ready = observed.state == InstanceState::Ready;
            let backend = observed
                .address
                .filter(|_| web)
                .map(|addr| slipway_proxy::Backend::new(adopted.id.clone(), addr));
            let pod = pods
                .status(&adopted.id)
                .and_then(|s| s.pod)
                .unwrap_or_else(|| "no pod yet".into());
            let managed = Managed {
                id: adopted.id,
                release: version,
                process: process.clone(),
                backend,
                runtime: RuntimeKind::Pod,
                state: InstanceState::Starting,
                retiring: false,
                seq: 0,
            };
            self.adopted(app, managed, ready, &format!("pod {pod}"));
        }
        Ok(())
    }
}
