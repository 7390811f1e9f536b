//! Runs a job's pod (`job_pod.rs`) to its end: makes it with its ConfigMap and Secret, watches that
//! one pod, copies its output into the job's log as it comes, stops it at the timeout or on cancel,
//! and removes what it made. The outcome is the one a job on this host has (`JobOutcome`), so the
//! release phase and cron record a pod's run as they record a process's.

use crate::job_pod::{JOB, JobState, job_state};
use crate::names::{self, CONTAINER};
use crate::pod_supervisor::PodSupervisor;
use crate::template::PodTemplate;
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use slipway_runtime::log_capture::{LogSink, Stream};
use slipway_runtime::{JobEnd, JobOutcome, append_output};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One run of a job.
pub struct JobRun {
    /// The release's image process, keyed by the job's name (`release`, `rollback`, `cron-<job>`).
    pub template: PodTemplate,
    /// Unique among the job's runs; ends the pod's name.
    pub run: String,
    pub cmd: String,
    pub timeout: Duration,
    /// After the timeout or a cancel: the pod's termination grace period.
    pub grace: Duration,
    pub log_path: PathBuf,
}

/// How long the output may take to arrive after the pod ended.
const OUTPUT_WAIT: Duration = Duration::from_secs(10);

impl PodSupervisor {
    /// Runs `job` until its command exits, it times out, or `cancel` completes. An `Err` means
    /// nothing ran (the pod could not be made).
    pub async fn run_job(
        &self,
        job: JobRun,
        cancel: impl Future<Output = ()>,
    ) -> Result<JobOutcome, String> {
        let namespace = job
            .template
            .placement
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace.clone());
        // The kubelet's own deadline, for when no controller is left to stop it.
        let objects =
            job.template
                .job(&self.owner, &job.run, &job.cmd, job.timeout + job.grace * 2)?;
        let name = objects.pod.metadata.name.clone().unwrap_or_default();
        let sink = LogSink::open(&job.log_path)
            .map_err(|e| format!("cannot open {}: {e}", job.log_path.display()))?;
        let made = Made {
            pods: Api::namespaced(self.client.clone(), &namespace),
            configs: Api::namespaced(self.client.clone(), &namespace),
            secrets: Api::namespaced(self.client.clone(), &namespace),
            name: name.clone(),
            requests: self.requests.clone(),
        };
        let created = made.create(objects).await;
        let outcome = match created {
            Ok(()) => Ok(self.follow(&made, &job, &sink, cancel).await),
            Err(e) => Err(format!(
                "cannot make the pod {name} in namespace {namespace}: {e}"
            )),
        };
        made.remove().await;
        outcome
    }

    async fn follow(
        &self,
        made: &Made,
        job: &JobRun,
        sink: &Arc<LogSink>,
        cancel: impl Future<Output = ()>,
    ) -> JobOutcome {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut pod_events = watcher(
            made.pods.clone(),
            watcher::Config::default().fields(&format!("metadata.name={}", made.name)),
        )
        .default_backoff()
        .boxed();
        let deadline = tokio::time::Instant::now() + job.timeout;
        tokio::pin!(cancel);
        let mut output: Option<JoinHandle<String>> = None;
        let mut told = None;
        let (end, exit_code) = loop {
            let event = tokio::select! {
                event = pod_events.next() => event,
                _ = tokio::time::sleep_until(deadline) => {
                    made.stop(job.grace).await;
                    break (JobEnd::TimedOut, None);
                }
                _ = &mut cancel => {
                    made.stop(job.grace).await;
                    break (JobEnd::Cancelled, None);
                }
            };
            let pod = match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => pod,
                Some(Ok(watcher::Event::Delete(_))) => {
                    break (
                        JobEnd::Failed(format!("its pod {} was deleted", made.name)),
                        None,
                    );
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::debug!("the watch of job pod {} failed: {e}", made.name);
                    continue;
                }
                None => break (JobEnd::Failed("the watch of its pod ended".into()), None),
            };
            let state = job_state(&pod);
            if output.is_none() && matches!(state, JobState::Running | JobState::Exited { .. }) {
                output = Some(self.read_output(made, sink.clone()));
            }
            match state {
                JobState::Waiting(why) => {
                    if why.is_some() && why != told {
                        sink.write_line(Stream::Slipway, why.as_deref().unwrap_or(""));
                        told = why;
                    }
                }
                JobState::Running => {}
                JobState::Exited { code: 0, .. } => break (JobEnd::Succeeded, Some(0)),
                JobState::Exited { code, reason } => {
                    let how = match reason {
                        Some(r) => format!("exited with status {code} ({r})"),
                        None => format!("exited with status {code}"),
                    };
                    break (JobEnd::Failed(how), Some(code));
                }
                JobState::DeadlineExceeded => break (JobEnd::TimedOut, None),
                JobState::CannotStart(why) => {
                    sink.write_line(Stream::Slipway, &why);
                    break (JobEnd::Failed(why), None);
                }
            }
        };
        let output = match output {
            Some(task) => tokio::time::timeout(OUTPUT_WAIT + job.grace, task)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        };
        JobOutcome {
            end,
            exit_code,
            output,
        }
    }

    /// Follows the container's output into `sink` until it ends; resolves to the kept output.
    fn read_output(&self, made: &Made, sink: Arc<LogSink>) -> JoinHandle<String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let pods = made.pods.clone();
        let name = made.name.clone();
        tokio::spawn(async move {
            let params = LogParams {
                container: Some(CONTAINER.to_owned()),
                follow: true,
                ..LogParams::default()
            };
            let mut output = String::new();
            let reader = match pods.log_stream(&name, &params).await {
                Ok(reader) => reader,
                Err(e) => {
                    sink.write_line(
                        Stream::Slipway,
                        &format!("cannot read the output of pod {name}: {e}"),
                    );
                    return output;
                }
            };
            let mut lines = reader.lines();
            while let Some(Ok(line)) = lines.next().await {
                sink.write_line(Stream::Stdout, &line);
                append_output(&mut output, &line);
            }
            output
        })
    }
}

impl PodSupervisor {
    /// At start-up: deletes the finished job pods a previous daemon left (it stopped before it could),
    /// in its namespace and in `others`, with their ConfigMaps and Secrets (which they own). A pod
    /// still running is left to finish: it may be a migration halfway; its deadline ends it.
    pub async fn sweep_finished_jobs(&self, others: &BTreeSet<String>) {
        let selector = format!("{}={},{JOB}", names::OWNER, self.owner);
        for namespace in std::iter::once(&self.namespace)
            .chain(others)
            .collect::<BTreeSet<_>>()
        {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let listed = match pods.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!("cannot look for finished job pods in {namespace}: {e}");
                    continue;
                }
            };
            for pod in listed.items {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if !matches!(phase, Some("Succeeded" | "Failed")) {
                    continue;
                }
                let name = pod.metadata.name.unwrap_or_default();
                self.requests.fetch_add(1, Ordering::Relaxed);
                match pods.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!("removed the finished job pod {name} a previous daemon left")
                    }
                    Err(e) => tracing::warn!("cannot remove the job pod {name}: {e}"),
                }
            }
        }
    }
}

/// What one run made, to be removed whatever happened.
struct Made {
    pods: Api<Pod>,
    configs: Api<ConfigMap>,
    secrets: Api<Secret>,
    name: String,
    /// The daemon's count of API requests (`/metrics`).
    requests: Arc<AtomicU64>,
}

impl Made {
    /// The ConfigMap and Secret first (the pod needs them to start), then the pod; then the pod
    /// owns them, so the cluster removes them with it should slipway not get to it.
    async fn create(&self, objects: crate::job_pod::JobPod) -> Result<(), kube::Error> {
        let post = PostParams::default();
        let parts =
            1 + usize::from(objects.config.is_some()) + usize::from(objects.secret.is_some());
        // Each part is made, and the ConfigMap and Secret tied to the pod.
        self.requests
            .fetch_add((2 * parts - 1) as u64, Ordering::Relaxed);
        if let Some(config) = &objects.config {
            self.configs.create(&post, config).await?;
        }
        if let Some(secret) = &objects.secret {
            self.secrets.create(&post, secret).await?;
        }
        let pod = self.pods.create(&post, &objects.pod).await?;
        let owner = json!({"metadata": {"ownerReferences": [{
            "apiVersion": "v1",
            "kind": "Pod",
            "name": self.name,
            "uid": pod.metadata.uid,
        }]}});
        if objects.config.is_some()
            && let Err(e) = self
                .configs
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(&owner))
                .await
        {
            tracing::warn!("cannot tie ConfigMap {} to its pod: {e}", self.name);
        }
        if objects.secret.is_some()
            && let Err(e) = self
                .secrets
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(&owner))
                .await
        {
            tracing::warn!("cannot tie Secret {} to its pod: {e}", self.name);
        }
        Ok(())
    }

    /// Asks the kubelet to stop the command: SIGTERM, SIGKILL after `grace`.
    async fn stop(&self, grace: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let params = DeleteParams {
            grace_period_seconds: Some(grace.as_secs().max(1) as u32),
            ..DeleteParams::default()
        };
        if let Err(e) = self.pods.delete(&self.name, &params).await {
            tracing::warn!("cannot stop job pod {}: {e}", self.name);
        }
    }

    /// Deletes the pod, its ConfigMap and its Secret; what is already gone is fine.
    async fn remove(&self) {
        self.requests.fetch_add(3, Ordering::Relaxed);
        let params = DeleteParams::background();
        let gone = |r: Result<(), kube::Error>, kind: &str| {
            if let Err(e) = r
                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
            {
                tracing::warn!("cannot delete job {kind} {}: {e}", self.name);
            }
        };
        gone(
            self.pods.delete(&self.name, &params).await.map(|_| ()),
            "pod",
        );
        gone(
            self.configs.delete(&self.name, &params).await.map(|_| ()),
            "ConfigMap",
        );
        gone(
            self.secrets.delete(&self.name, &params).await.map(|_| ()),
            "Secret",
        );
    }
}
