//! `slipway scale web=4 worker=2`: a new release with the new formation (same artifact, same config),
//! applied without replacing anything: the running instances carry over to the new release, and only the
//! difference is started (or drained and stopped). The formation is kept for later deploys.

use crate::control::controller::Command;
use crate::error::Error;
use crate::ops::deploy::Deployer;
use slipway_api::{DeployAccepted, ScaleRequest};

/// The most instances of one process type (the config's limit too).
const MAX_REPLICAS: u32 = 64;

impl Deployer {
    pub async fn scale(&self, app: &str, req: ScaleRequest) -> Result<DeployAccepted, Error> {
        let stable = self.stable_release(app)?.ok_or_else(|| {
            Error::not_found(format!(
                "{app} has no stable release yet: `slipway deploy` first"
            ))
        })?;
        if req.formation.is_empty() {
            return Err(Error::bad_request(
                "say what to scale, e.g. `slipway scale web=3`",
            ));
        }
        let mut spec = stable.spec.clone();
        for (process, &replicas) in &req.formation {
            let Some(p) = spec.processes.get_mut(process) else {
                let known: Vec<&str> = stable.spec.processes.keys().map(String::as_str).collect();
                return Err(Error::bad_request(format!(
                    "{app} has no process type `{process}`; it has: {}",
                    known.join(", ")
                )));
            };
            if replicas > MAX_REPLICAS {
                return Err(Error::bad_request(format!(
                    "{process}={replicas}: at most {MAX_REPLICAS}"
                )));
            }
            if let Some(scaling) = &p.scaling {
                return Err(Error::bad_request(format!(
                    "{process} scales with its load between {} and {} instances (replicas = {{ min, max }} in slipway.toml): change the range there and deploy, or write a fixed count",
                    scaling.min, scaling.max
                )));
            }
            if process == "web" && replicas == 0 {
                return Err(Error::bad_request(
                    "web=0 would leave nothing to serve the app's traffic; scale it to 1 or more",
                ));
            }
            p.replicas = replicas;
        }
        if spec == stable.spec {
            return Err(Error::bad_request(format!(
                "nothing changes: {app} already runs {}",
                slipway_core::spec::formation_text(&spec.formation())
            )));
        }
        let summary = format!(
            "scale {}",
            slipway_core::spec::formation_text(&req.formation)
        );
        let holder = format!("{summary} by {}", req.who);
        self.under_lock(app, &holder, async {
            let release = self.record_derived(&stable, spec, &req.who, &summary, |tx| {
                for (process, replicas) in &req.formation {
                    tx.set_formation(app, process, *replicas)?;
                }
                Ok(())
            })?;
            let version = release.version;
            let adopted = self
                .controller
                .ask(|reply| Command::Adopt {
                    release: Box::new(release),
                    reply,
                })
                .await?;
            match adopted {
                Ok(()) => Ok(DeployAccepted {
                    app: app.to_string(),
                    release: version,
                    rollout: 0,
                    warnings: Vec::new(),
                    phase: None,
                }),
                Err(e) => {
                    let _ = self.store.set_release_status(
                        app,
                        version,
                        slipway_core::release::ReleaseStatus::Failed,
                        Some(&e.message),
                    );
                    Err(e)
                }
            }
        })
        .await
    }
}
