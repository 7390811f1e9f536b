//! `slipway scale web=4 worker=2`: a new release with the new formation (same artifact, same config),
//! applied without replacing anything: the running instances carry over to the new release, and only the
//! difference is started (or drained and stopped). The formation is kept for later deploys.

use crate::controller::Command;
use crate::deploy::{Deployer, Refusal};
use crate::wire::{DeployAccepted, ScaleRequest};
use tokio::sync::oneshot;

/// The most instances of one process type (the config's limit too).
const MAX_REPLICAS: u32 = 64;

impl Deployer {
    pub async fn scale(&self, app: &str, req: ScaleRequest) -> Result<DeployAccepted, Refusal> {
        let stable = self.stable_release(app)?.ok_or_else(|| {
            Refusal::NotFound(format!(
                "{app} has no stable release yet: `slipway deploy` first"
            ))
        })?;
        if req.formation.is_empty() {
            return Err(Refusal::BadRequest(
                "say what to scale, e.g. `slipway scale web=3`".into(),
            ));
        }
        let mut spec = stable.spec.clone();
        for (process, &replicas) in &req.formation {
            let Some(p) = spec.processes.get_mut(process) else {
                let known: Vec<&str> = stable.spec.processes.keys().map(String::as_str).collect();
                return Err(Refusal::BadRequest(format!(
                    "{app} has no process type `{process}`; it has: {}",
                    known.join(", ")
                )));
            };
            if replicas > MAX_REPLICAS {
                return Err(Refusal::BadRequest(format!(
                    "{process}={replicas}: at most {MAX_REPLICAS}"
                )));
            }
            if process == "web" && replicas == 0 {
                return Err(Refusal::BadRequest(
                    "web=0 would leave nothing to serve the app's traffic; scale it to 1 or more"
                        .into(),
                ));
            }
            p.replicas = replicas;
        }
        if spec == stable.spec {
            return Err(Refusal::BadRequest(format!(
                "nothing changes: {app} already runs {}",
                formation_text(&spec.formation())
            )));
        }
        let summary = format!("scale {}", formation_text(&req.formation));
        let holder = format!("{summary} by {}", req.who);
        self.under_lock(app, &holder, async {
            let release = self.record_derived(&stable, spec, &req.who, &summary, |tx| {
                for (process, replicas) in &req.formation {
                    tx.set_formation(app, process, *replicas)?;
                }
                Ok(())
            })?;
            let version = release.version;
            let (reply, answer) = oneshot::channel();
            self.controller
                .send(Command::Adopt {
                    release: Box::new(release),
                    reply,
                })
                .map_err(Refusal::Internal)?;
            match answer.await {
                Ok(Ok(())) => Ok(DeployAccepted {
                    app: app.to_string(),
                    release: version,
                    rollout: 0,
                    warnings: Vec::new(),
                    phase: None,
                }),
                Ok(Err(e)) => {
                    let _ = self.store.set_release_status(
                        app,
                        version,
                        slipway_core::release::ReleaseStatus::Failed,
                        Some(&e),
                    );
                    Err(Refusal::Conflict(e))
                }
                Err(_) => Err(Refusal::Internal("the controller stopped".into())),
            }
        })
        .await
    }
}

/// `web=4 worker=2`.
pub(crate) fn formation_text(formation: &std::collections::BTreeMap<String, u32>) -> String {
    formation
        .iter()
        .map(|(p, n)| format!("{p}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}
