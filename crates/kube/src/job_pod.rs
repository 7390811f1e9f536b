//! A one-off command of a release — its release phase (`[release] cmd`, `rollback_cmd`) or a cron
//! run — as one Pod of the release's image: `/bin/sh -c cmd` in place of the image's entrypoint, the
//! release's env and secrets as its processes get them, never restarted, and ended by the kubelet at
//! its deadline even when no controller is left to stop it. How such a pod's status reads as the
//! job's outcome is here too. Pure: `job_runner.rs` does the IO.
//!
//! Why in the image and not in slipway's pod: the command needs the app's code and tools, which are
//! in its image; slipway's own image has no shell, and a standby that takes over has no artifacts.

use crate::names::{self, CONTAINER};
use crate::pod_state::HOPELESS;
use crate::template::PodTemplate;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::time::Duration;

/// On a job's pod (and its ConfigMap and Secret): what it runs, `release`, `rollback` or `cron-<job>`.
pub const JOB: &str = "slipway.dev/job";

/// The shell a job's command runs in, as Docker's shell form and a Procfile do.
pub const SHELL: &str = "/bin/sh";

/// The objects of one run. The ConfigMap and Secret are named like the pod.
pub struct JobPod {
    pub pod: Pod,
    pub config: Option<ConfigMap>,
    pub secret: Option<Secret>,
}

/// Where a job's pod is, as its watch shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Not running yet; `Some` says why it waits (not scheduled, pulling), for the log.
    Waiting(Option<String>),
    Running,
    /// The command ended: its exit code, and the kubelet's reason when it is not a plain exit.
    Exited {
        code: i32,
        reason: Option<String>,
    },
    /// The kubelet's deadline (`activeDeadlineSeconds`) ended it.
    DeadlineExceeded,
    /// It cannot start, and waiting will not change that (its image, its command, its config).
    CannotStart(String),
}

impl PodTemplate {
    /// The pod that runs `cmd` once for this template's release, named `<object name>-<run>`. The
    /// template's key names the job (`process`: `release`, `rollback`, `cron-<job>`); its port and
    /// probes are left out (a job takes no traffic). `deadline`: when the kubelet stops it,
    /// whatever happens to slipway.
    pub fn job(
        &self,
        owner: &str,
        run: &str,
        cmd: &str,
        deadline: Duration,
    ) -> Result<JobPod, String> {
        let name = format!("{}-{run}", self.key.object_name(owner));
        let one_off = PodTemplate {
            port: None,
            readiness: None,
            liveness: None,
            startup: None,
            ..self.clone()
        };
        let mut spec = one_off.pod_spec(&name)?;
        let container = spec
            .containers
            .iter_mut()
            .find(|c| c.name == CONTAINER)
            .ok_or("a pod template without its container")?;
        container.command = Some(vec![SHELL.to_owned(), "-c".to_owned(), cmd.to_owned()]);
        container.args = None;
        spec.restart_policy = Some("Never".to_owned());
        spec.active_deadline_seconds = Some(deadline.as_secs().max(1) as i64);
        let mut labels = self.key.selector(owner);
        labels.insert(names::MANAGED_BY.to_owned(), "slipway".to_owned());
        labels.insert(JOB.to_owned(), labels[names::PROCESS].clone());
        let metadata = ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            ..Default::default()
        };
        let config = (!self.env.is_empty()).then(|| ConfigMap {
            metadata: metadata.clone(),
            data: Some(self.env.clone()),
            immutable: Some(true),
            ..Default::default()
        });
        let secret = (!self.secrets.is_empty()).then(|| Secret {
            metadata: metadata.clone(),
            string_data: Some(self.secrets.clone()),
            type_: Some("Opaque".to_owned()),
            ..Default::default()
        });
        Ok(JobPod {
            pod: Pod {
                metadata,
                spec: Some(spec),
                status: None,
            },
            config,
            secret,
        })
    }
}

/// What the pod's status says of the job.
pub fn job_state(pod: &Pod) -> JobState {
    let Some(status) = pod.status.as_ref() else {
        return JobState::Waiting(None);
    };
    // The kubelet killed it at the deadline: the container's exit says only "Error".
    if status.reason.as_deref() == Some("DeadlineExceeded") {
        return JobState::DeadlineExceeded;
    }
    let container = status
        .container_statuses
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.name == CONTAINER));
    if let Some(c) = container
        && let Some(state) = &c.state
    {
        if let Some(t) = &state.terminated {
            return terminated(t.exit_code, t.reason.as_deref(), t.message.as_deref());
        }
        if state.running.is_some() {
            return JobState::Running;
        }
        if let Some(w) = &state.waiting
            && let Some(reason) = w.reason.as_deref()
        {
            let message = w.message.as_deref().unwrap_or("");
            if HOPELESS.contains(&reason) || reason == "CreateContainerConfigError" {
                return JobState::CannotStart(format!("{reason}: {message}"));
            }
            return JobState::Waiting(Some(format!("{reason} {message}").trim_end().to_owned()));
        }
    }
    if status.phase.as_deref() == Some("Failed") {
        return JobState::CannotStart(format!(
            "the pod failed: {} {}",
            status.reason.as_deref().unwrap_or(""),
            status.message.as_deref().unwrap_or("")
        ));
    }
    let unscheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.message.clone())
        .map(|m| format!("not scheduled: {m}"));
    JobState::Waiting(unscheduled)
}

fn terminated(code: i32, reason: Option<&str>, message: Option<&str>) -> JobState {
    match reason {
        // The runtime could not start the command: no shell in the image, say.
        Some("StartError" | "ContainerCannotRun") => {
            let message = message.unwrap_or("").trim();
            JobState::CannotStart(format!(
                "it could not start in the release's image: {message}"
            ))
        }
        Some("Completed" | "Error") | None => JobState::Exited { code, reason: None },
        Some(other) => JobState::Exited {
            code,
            reason: Some(other.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Key;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        PodCondition, PodStatus,
    };
    use slipway_core::spec::KubernetesSpec;
    use std::collections::BTreeMap;

    fn template() -> PodTemplate {
        PodTemplate {
            key: Key {
                app: "shop".into(),
                release: 7,
                process: "release".into(),
            },
            image: "registry.local/shop@sha256:aa".into(),
            command: Some(vec!["serve".into()]),
            env: BTreeMap::from([("SLIPWAY_PHASE".into(), "release".into())]),
            secrets: BTreeMap::from([("DB_PASSWORD".into(), "hunter2".into())]),
            secrets_as_env: false,
            port: None,
            readiness: None,
            liveness: None,
            startup: None,
            grace: Duration::from_secs(10),
            no_new_privileges: true,
            drop_all_capabilities: true,
            cap_add: vec![],
            read_only: false,
            user: Some("1000:1000".into()),
            memory_bytes: None,
            nano_cpus: None,
            placement: KubernetesSpec::default(),
        }
    }

    #[test]
    fn a_job_runs_its_command_in_a_shell_once_with_a_deadline() {
        // Made from a web process's template: its port and probes stay out of the job.
        let web = PodTemplate {
            port: Some(8080),
            readiness: Some(slipway_runtime::probe::default_web_readiness()),
            ..template()
        };
        let job = web
            .job("slipway-1", "k3x", "./migrate up", Duration::from_secs(610))
            .unwrap();
        let name = job.pod.metadata.name.clone().unwrap();
        assert!(
            name.starts_with("shop-v7-release-") && name.ends_with("-k3x"),
            "{name}"
        );
        let spec = job.pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.active_deadline_seconds, Some(610));
        let c = &spec.containers[0];
        assert_eq!(
            c.command.as_deref().unwrap(),
            ["/bin/sh", "-c", "./migrate up"]
        );
        assert_eq!(c.args, None);
        assert!(c.readiness_probe.is_none() && c.ports.is_none());
        assert!(!c.env.as_ref().unwrap().iter().any(|e| e.name == "PORT"));
        let labels = job.pod.metadata.labels.unwrap();
        assert_eq!(labels[JOB], "release");
        assert_eq!(labels[names::OWNER], "slipway-1");
        // The env and secrets go as for a process: the ConfigMap and a Secret named like the pod.
        assert_eq!(job.config.unwrap().metadata.name.unwrap(), name);
        let secret = job.secret.unwrap();
        assert_eq!(secret.metadata.name.unwrap(), name);
        let env = c.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "DB_PASSWORD_FILE"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    fn pod(container: Option<ContainerState>, phase: &str) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: container.map(|state| {
                    vec![ContainerStatus {
                        name: CONTAINER.into(),
                        state: Some(state),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ended(code: i32, reason: &str, message: &str) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(reason.into()),
                message: Some(message.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn waiting(reason: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some("details".into()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_pod_s_status_is_the_job_s_outcome() {
        assert_eq!(
            job_state(&pod(Some(ended(0, "Completed", "")), "Succeeded")),
            JobState::Exited {
                code: 0,
                reason: None
            }
        );
        assert_eq!(
            job_state(&pod(Some(ended(3, "Error", "")), "Failed")),
            JobState::Exited {
                code: 3,
                reason: None
            }
        );
        assert_eq!(
            job_state(&pod(Some(ended(137, "OOMKilled", "")), "Failed")),
            JobState::Exited {
                code: 137,
                reason: Some("OOMKilled".into())
            }
        );
        let JobState::CannotStart(why) = job_state(&pod(
            Some(ended(
                128,
                "StartError",
                "exec: \"/bin/sh\": stat /bin/sh: no such file or directory",
            )),
            "Failed",
        )) else {
            panic!("a start error is final")
        };
        assert!(why.contains("stat /bin/sh: no such file"), "{why}");
        assert!(matches!(
            job_state(&pod(Some(waiting("ErrImagePull")), "Pending")),
            JobState::CannotStart(_)
        ));
        assert_eq!(
            job_state(&pod(Some(waiting("ContainerCreating")), "Pending")),
            JobState::Waiting(Some("ContainerCreating details".into()))
        );
        let mut deadline = pod(Some(ended(137, "Error", "")), "Failed");
        deadline.status.as_mut().unwrap().reason = Some("DeadlineExceeded".into());
        assert_eq!(job_state(&deadline), JobState::DeadlineExceeded);
        let mut pending = pod(None, "Pending");
        pending.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            message: Some("0/1 nodes are available".into()),
            ..Default::default()
        }]);
        assert_eq!(
            job_state(&pending),
            JobState::Waiting(Some("not scheduled: 0/1 nodes are available".into()))
        );
    }
}
