//! Where a release's one-off commands run — its release phase (`[release] cmd`, `rollback_cmd`) and
//! its cron runs — the same place its `web` process runs (its first process, without a `web`):
//! - a command (`cmd`): on this host, in the release's frozen artifact (a process group, as
//!   `slipway-runtime` runs jobs);
//! - an image on Docker: a container of that image (`slipway-docker`);
//! - with `serve --kubernetes`: a pod of that image (`slipway-kube`), which needs no artifact on
//!   whichever controller leads (a standby that took over has the releases, not their artifacts).
//!
//! In an image the command runs as `/bin/sh -c "<cmd>"` in place of its entrypoint, with the
//! process's env, secrets, user, lock-down, limits and network: where the app's code and tools are.

use slipway_core::release::Release;
use slipway_core::spec::{ContainerSpec, ProcessSpec};
use slipway_runtime::{JobEnd, JobOutcome, JobSpec, run_job};
use slipway_store::ArtifactStore;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// After a timeout or a cancel: SIGTERM, then this long, then SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// The shell a command runs in inside an image.
const SHELL: &str = "/bin/sh";

/// The places one-off commands run; cheap to share.
pub struct OneOffs {
    pub artifacts: Arc<ArtifactStore>,
    /// Held while a tree is checked out (pruning must not run meanwhile).
    pub artifact_gate: Arc<Mutex<()>>,
    /// The Docker engine, for releases whose `web` is an image (connected on first use).
    pub docker: slipway_docker::Connector,
    /// Set by `serve --kubernetes`: commands run in pods.
    #[cfg(feature = "kubernetes")]
    pub pods: Option<slipway_kube::PodSupervisor>,
}

/// One run of a one-off command.
pub struct OneOff {
    pub release: Release,
    /// `release`, `rollback` or `cron-<job>`: names the container or pod.
    pub name: String,
    /// Unique among this command's runs (a container's or pod's name must be).
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
        let outcome = match image_process(&job.release) {
            #[cfg(feature = "kubernetes")]
            Some(image) if self.pods.is_some() => {
                let pods = self.pods.as_ref().expect("checked");
                let mut template = crate::control::pod_instance::build(
                    &job.release,
                    &job.name,
                    image.1,
                    image.2,
                    secrets,
                )
                .map_err(|e| format!("{e} (the {} runs in {}'s image)", job.name, image.0))?;
                template.env.extend(job.env.clone());
                let run = slipway_kube::JobRun {
                    template,
                    run: job.run,
                    cmd: job.cmd,
                    timeout: job.timeout,
                    grace: GRACE,
                    log_path: job.log_path,
                };
                pods.run_job(run, cancel).await
            }
            Some((process, spec, container)) => {
                let id = format!(
                    "{}-v{}-{}-{}",
                    job.release.app, job.release.version, job.name, job.run
                );
                let mut instance = crate::control::container_instance::build(
                    &job.release,
                    &job.name,
                    spec,
                    container,
                    &id,
                    secrets,
                    job.log_path.clone(),
                )
                .map_err(|e| format!("{e} (the {} runs in {process}'s image)", job.name))?;
                let spec = &mut instance.spec;
                spec.entrypoint = Some(vec![SHELL.to_string(), "-c".to_string()]);
                spec.command = Some(vec![job.cmd.clone()]);
                spec.stop_signal = None;
                spec.env.extend(job.env.clone());
                let engine = self.docker.engine().await.map_err(|e| e.to_string())?;
                engine
                    .run_job(&instance.spec, job.timeout, GRACE, &job.log_path, cancel)
                    .await
            }
            None => self.on_this_host(job, secrets, cancel).await,
        };
        with_shell_hint(outcome)
    }

    async fn on_this_host(
        &self,
        job: OneOff,
        secrets: BTreeMap<String, String>,
        cancel: impl Future<Output = ()>,
    ) -> Result<JobOutcome, String> {
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

/// The process whose image the commands run in: `web`, or the first process without a `web`;
/// `None` when that one is a command (they run on this host then).
fn image_process(release: &Release) -> Option<(&str, &ProcessSpec, &ContainerSpec)> {
    let processes = &release.spec.processes;
    let (name, spec) = processes
        .get_key_value("web")
        .or_else(|| processes.iter().next())?;
    Some((name.as_str(), spec, spec.container.as_ref()?))
}

/// An image without a shell cannot run the command: say so, with the fix.
fn with_shell_hint(outcome: Result<JobOutcome, String>) -> Result<JobOutcome, String> {
    let hint = |why: &str| {
        if why.contains(SHELL) && (why.contains("no such file") || why.contains("not found")) {
            format!(
                "{why} — the image has no {SHELL}: the command runs as `{SHELL} -c \"...\"` in the \
                 release's image, so build it on a base with a shell (busybox, alpine, a distro's \
                 slim image)"
            )
        } else {
            why.to_string()
        }
    };
    match outcome {
        Ok(JobOutcome {
            end: JobEnd::Failed(why),
            exit_code,
            output,
        }) => Ok(JobOutcome {
            end: JobEnd::Failed(hint(&why)),
            exit_code,
            output,
        }),
        Err(why) => Err(hint(&why)),
        ok => ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_in_the_web_process_s_image_or_on_this_host() {
        let image = crate::test_release::release(
            "shop",
            1,
            "[processes.worker]\ncmd = \"work\"\n[processes.web]\nimage = \"shop\"\nport = 9000\n",
        );
        assert_eq!(image_process(&image).map(|p| p.0), Some("web"));
        let host = crate::test_release::release(
            "shop",
            1,
            "[processes.web]\ncmd = \"serve\"\n[processes.sidecar]\nimage = \"proxy\"\n",
        );
        assert!(image_process(&host).is_none());
    }

    #[test]
    fn a_missing_shell_gets_the_fix() {
        let failed = with_shell_hint(Err(
            "OCI runtime create failed: exec: \"/bin/sh\": stat /bin/sh: no such file or directory"
                .into(),
        ))
        .unwrap_err();
        assert!(failed.contains("the image has no /bin/sh"), "{failed}");
        let other = with_shell_hint(Err("no such image".into())).unwrap_err();
        assert_eq!(other, "no such image");
    }
}
