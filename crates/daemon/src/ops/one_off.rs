//! Where a release's one-off commands run — its release phase (`[release] cmd`, `rollback_cmd`) and
//! its cron runs: on this host, in the release's frozen artifact (a process group, as
//! `slipway-runtime` runs jobs); or, with `serve --kubernetes`, in a pod of the release's image
//! (`slipway-kube`). There the command finds the app's code and tools, and whichever controller
//! leads runs it: a standby that took over has the releases, not their artifacts.

use slipway_core::release::Release;
use slipway_runtime::{JobOutcome, JobSpec, run_job};
use slipway_store::ArtifactStore;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// After a timeout or a cancel: SIGTERM, then this long, then SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// The places one-off commands run; cheap to share.
pub struct OneOffs {
    pub artifacts: Arc<ArtifactStore>,
    /// Held while a tree is checked out (pruning must not run meanwhile).
    pub artifact_gate: Arc<Mutex<()>>,
    /// Set by `serve --kubernetes`: commands run in the release's image.
    #[cfg(feature = "kubernetes")]
    pub pods: Option<slipway_kube::PodSupervisor>,
}

/// One run of a one-off command.
pub struct OneOff {
    pub release: Release,
    /// `release`, `rollback` or `cron-<job>`: names the pod on Kubernetes.
    pub name: String,
    /// Unique among this command's runs (a pod's name must be).
    pub run: String,
    pub cmd: String,
    /// What says which run this is (`SLIPWAY_PHASE`, `SLIPWAY_CRON_JOB`, ...), over the release's env.
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub log_path: PathBuf,
}

impl OneOffs {
    /// Runs `job` until it exits, times out, or `cancel` completes. An `Err` means it did not start.
    pub async fn run(
        &self,
        job: OneOff,
        cancel: impl Future<Output = ()>,
    ) -> Result<JobOutcome, String> {
        let secrets = crate::secrets::resolve(&job.release.spec.secrets)?;
        #[cfg(feature = "kubernetes")]
        if let Some(pods) = &self.pods {
            let template = in_image(&job, secrets)?;
            let run = slipway_kube::JobRun {
                template,
                run: job.run,
                cmd: job.cmd,
                timeout: job.timeout,
                grace: GRACE,
                log_path: job.log_path,
            };
            return pods.run_job(run, cancel).await;
        }
        let workdir = self.checkout(&job.release.artifact).await?;
        let mut env = job.release.spec.environment();
        env.extend(secrets);
        env.insert("SLIPWAY_APP".into(), job.release.app.clone());
        env.insert(
            "SLIPWAY_RELEASE".into(),
            format!("v{}", job.release.version),
        );
        env.extend(job.env);
        let spec = JobSpec {
            cmd: job.cmd,
            workdir,
            env,
            timeout: job.timeout,
            grace: GRACE,
            log_path: job.log_path,
        };
        run_job(spec, cancel)
            .await
            .map_err(|e| format!("cannot start: {e}"))
    }

    /// The release's frozen folder, materialized on first use.
    pub async fn checkout(&self, digest: &str) -> Result<PathBuf, String> {
        let artifacts = self.artifacts.clone();
        let gate = self.artifact_gate.clone();
        let digest = digest.to_string();
        tokio::task::spawn_blocking(move || {
            let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
            artifacts.checkout(&digest)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot check out the artifact: {e}"))
    }
}

/// The pod of a one-off command: the release's `web` image, or its first image process's, with that
/// process's lock-down and limits, and no port or probes.
#[cfg(feature = "kubernetes")]
fn in_image(
    job: &OneOff,
    secrets: BTreeMap<String, String>,
) -> Result<slipway_kube::PodTemplate, String> {
    let release = &job.release;
    let images = || {
        release
            .spec
            .processes
            .iter()
            .filter_map(|(name, p)| Some((name, p, p.container.as_ref()?)))
    };
    let (process, spec, container) = images()
        .find(|(name, ..)| name.as_str() == "web")
        .or_else(|| images().next())
        .ok_or_else(|| crate::control::pod_instance::needs_an_image(release, &job.name))?;
    let mut template =
        crate::control::pod_instance::build(release, &job.name, spec, container, secrets)
            .map_err(|e| format!("{e} (its {} runs in {process}'s image)", job.name))?;
    template.port = None;
    template.readiness = None;
    template.liveness = None;
    template.startup = None;
    template.env.extend(job.env.clone());
    Ok(template)
}
