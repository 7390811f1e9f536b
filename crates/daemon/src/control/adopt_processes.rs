//! At start-up, before the proxy accepts a request: the process instances a previous daemon on this
//! state dir left running (it was killed, or an upgrade handed them over) are taken back, like its
//! containers (`adopt.rs`). The runtime has already proven each survivor is the process its pid file
//! names; here it is kept if its release should run — the stable release, or either side of a rollout
//! being resumed — and serves at once if its readiness check passes right then. The others are left
//! to [`slipway_runtime::Supervisor::reap_orphans`].

use crate::control::controller::Controller;
use crate::control::managed::Managed;
use crate::control::runtimes::RuntimeKind;
use slipway_runtime::{InstanceState, Survivor};
use std::net::SocketAddr;

impl Controller {
    /// Adopts the survivors whose release should run; says why for the others (reaped next).
    pub(super) async fn take_back_processes(&mut self, survivors: Vec<Survivor>) {
        for survivor in survivors {
            let (id, app, version) = (
                survivor.id.clone(),
                survivor.identity.app.clone(),
                survivor.identity.release,
            );
            let who = &survivor.identity;
            let addr = who
                .port
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
            let ready = self
                .ready_now(&who.app, who.release, &who.process, addr)
                .await;
            if let Err(why) = self.adopt_process(survivor, ready) {
                let text =
                    format!("not adopting {id} (left running by the previous daemon): {why}");
                if self.apps.contains_key(&app) {
                    self.event(&app, Some(version), "orphan_removed", &text);
                } else {
                    tracing::warn!("{text}");
                }
            }
        }
    }

    fn adopt_process(&mut self, survivor: Survivor, ready: bool) -> Result<(), String> {
        let who = survivor.identity.clone();
        let (app, process) = (&who.app, &who.process);
        let release = self.adopted_release(app, who.release, process)?;
        let version = release.version;
        let spec = &release.spec.processes[process];
        if spec.container.is_some() {
            return Err(format!(
                "{process} of v{version} runs an image, not a process"
            ));
        }
        let web = process == "web";
        if web && who.port.is_none() {
            return Err("its pid file records no port".into());
        }
        // Only a restart needs them again; a running process keeps the values it started with.
        let secrets = crate::secrets::resolve(&release.spec.secrets).unwrap_or_else(|e| {
            tracing::warn!(
                "adopting {}: {e}; a restart would run without secrets",
                survivor.id
            );
            Default::default()
        });
        let id = survivor.id.clone();
        let pid = survivor.pid;
        let instance = self.process_instance(&release, process, &id, who.port, secrets)?;
        self.runtimes
            .processes
            .adopt(instance, survivor, ready)
            .map_err(|e| e.to_string())?;
        let backend = who.port.filter(|_| web).map(|port| {
            slipway_proxy::Backend::new(id.clone(), SocketAddr::from(([127, 0, 0, 1], port)))
        });
        let managed = Managed {
            id,
            release: version,
            process: process.clone(),
            backend,
            runtime: RuntimeKind::Process,
            state: InstanceState::Starting,
            retiring: false,
            seq: 0,
        };
        self.adopted(app, managed, ready, &format!("pid {pid}"));
        Ok(())
    }
}
