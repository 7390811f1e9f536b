//! What a pod's status means as an instance's state: the same `InstanceState`s a process or a
//! container reports (Starting, Ready, Unready, Backoff, CrashLoop), read from what the kubelet
//! writes — the Ready condition (its probes are slipway's, translated), the container's restarts and
//! last exit. Pure: the supervisor feeds it pods from its watch.

use crate::names::CONTAINER;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use slipway_runtime::InstanceState;
use slipway_runtime::restart::CRASH_LOOP_AFTER;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One pod, as an instance sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub state: InstanceState,
    /// Why, for the event: "exited with status 1 (Error)".
    pub message: String,
    pub restarts: u32,
    /// The pod's IP and the container's port (web only), once it has one.
    pub address: Option<SocketAddr>,
}

/// Waiting reasons that no waiting cures: the instance is as good as crash-looping at once.
pub(crate) const HOPELESS: &[&str] = &[
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "RunContainerError",
    "CreateContainerError",
];

/// A run shorter than this, without a readiness probe to say otherwise, never got going.
const SHORT_RUN_SECS: i64 = 10;

/// `ever_ready`: the instance's pod has been Ready before (then a failing probe is Unready, not a
/// crash loop). `probed`: its Ready condition comes from a readiness probe; without one (a worker) the
/// kubelet calls a container ready as soon as it runs, so a worker's runs are judged by how long they
/// lasted instead (under 10 s: crash-looping, as a process that exits within its first second is).
pub fn observe(pod: &Pod, port: Option<u16>, ever_ready: bool, probed: bool) -> Observed {
    let status = pod.status.as_ref();
    let address = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .zip(port)
        .map(|(ip, port)| SocketAddr::new(ip, port));
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == CONTAINER));
    let restarts = container.map_or(0, |c| c.restart_count.max(0) as u32);
    let observed = |state, message: String| Observed {
        state,
        message,
        restarts,
        address,
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return observed(InstanceState::Stopping, "the pod is terminating".into());
    }
    if ready {
        return observed(InstanceState::Ready, "the pod is ready".into());
    }
    let Some(c) = container else {
        let why = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
            .and_then(|c| c.message.clone())
            .map(|m| format!("not scheduled: {m}"))
            .unwrap_or_else(|| "the pod is starting".into());
        return observed(InstanceState::Starting, why);
    };
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    if let Some(w) = waiting
        && let Some(reason) = w.reason.as_deref()
        && HOPELESS.contains(&reason)
    {
        let last_exit = format!("{reason}: {}", w.message.as_deref().unwrap_or(""));
        return observed(
            InstanceState::CrashLoop {
                restarts,
                last_exit: last_exit.clone(),
            },
            last_exit,
        );
    }
    // Exits so far: the restarts, plus the current one if the container is down now.
    let down = waiting.is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
        || c.state.as_ref().is_some_and(|s| s.terminated.is_some());
    if down {
        let exits = restarts + 1;
        let last_exit = last_exit(c);
        let never_got_going = if probed {
            !ever_ready
        } else {
            last_run_secs(c).is_some_and(|secs| secs < SHORT_RUN_SECS)
        };
        if never_got_going && exits >= CRASH_LOOP_AFTER {
            return observed(
                InstanceState::CrashLoop {
                    restarts,
                    last_exit: last_exit.clone(),
                },
                format!("{last_exit}; crash-looping ({exits} exits, never ready)"),
            );
        }
        return observed(
            InstanceState::Backoff {
                restarts,
                // The kubelet's back-off; its length is not in the pod's status.
                delay: Duration::ZERO,
                last_exit: last_exit.clone(),
            },
            format!("{last_exit}; the kubelet restarts it"),
        );
    }
    let running = c.state.as_ref().is_some_and(|s| s.running.is_some());
    if running && ever_ready {
        return observed(InstanceState::Unready, "its readiness probe fails".into());
    }
    observed(InstanceState::Starting, "the pod is starting".into())
}

/// How long the last run lasted, from the kubelet's (whole-second) timestamps.
fn last_run_secs(c: &ContainerStatus) -> Option<i64> {
    let t = c
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()))?;
    let (started, finished) = (t.started_at.as_ref()?, t.finished_at.as_ref()?);
    Some(finished.0.as_second() - started.0.as_second())
}

/// "exited with status 1 (Error)", from the current or the last termination.
fn last_exit(c: &ContainerStatus) -> String {
    let terminated = c
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
    match terminated {
        Some(t) => {
            let mut text = format!("exited with status {}", t.exit_code);
            if let Some(reason) = &t.reason {
                text.push_str(&format!(" ({reason})"));
            }
            if let Some(message) = t
                .message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
            {
                let last: Vec<&str> = message.lines().rev().take(3).collect();
                let last: Vec<&str> = last.into_iter().rev().collect();
                text.push_str(&format!("; last output: {}", last.join(" | ")));
            }
            text
        }
        None => "exited".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_ready_pod_is_ready_at_its_ip_and_port() {
        let p = pod(json!({
            "podIP": "10.232.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "i",
                "imageID": "i", "state": {"running": {}}}],
        }));
        let o = observe(&p, Some(8080), false, true);
        assert_eq!(o.state, InstanceState::Ready);
        assert_eq!(o.address, Some("10.232.0.7:8080".parse().unwrap()));
        assert_eq!(observe(&p, None, false, true).address, None);
    }

    fn crashing(restarts: i32) -> Pod {
        pod(json!({
            "podIP": "10.232.0.7",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": restarts,
                "image": "i", "imageID": "i",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 3, "reason": "Error", "message": "a\nb\nboom"}}}],
        }))
    }

    #[test]
    fn crashes_back_off_then_loop_unless_it_was_ever_ready() {
        let o = observe(&crashing(0), Some(8080), false, true);
        assert!(matches!(o.state, InstanceState::Backoff { .. }), "{o:?}");
        assert!(o.message.contains("exited with status 3 (Error)"), "{o:?}");
        assert!(o.message.contains("boom"), "{o:?}");
        let o = observe(&crashing(2), Some(8080), false, true);
        assert!(
            matches!(o.state, InstanceState::CrashLoop { restarts: 2, .. }),
            "{o:?}"
        );
        let o = observe(&crashing(5), Some(8080), true, true);
        assert!(matches!(o.state, InstanceState::Backoff { .. }), "{o:?}");
    }

    #[test]
    fn a_worker_crash_loops_when_its_runs_are_short_ready_or_not() {
        let worker = |started: &str, finished: &str| {
            pod(json!({
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 4,
                    "image": "i", "imageID": "i",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "startedAt": started,
                        "finishedAt": finished}}}],
            }))
        };
        // Ready at once each run (no probe), so `ever_ready` says nothing.
        let short = worker("2026-12-04T10:00:00Z", "2026-12-04T10:00:01Z");
        let o = observe(&short, None, true, false);
        assert!(matches!(o.state, InstanceState::CrashLoop { .. }), "{o:?}");
        let long = worker("2026-12-04T10:00:00Z", "2026-12-04T12:00:00Z");
        let o = observe(&long, None, true, false);
        assert!(matches!(o.state, InstanceState::Backoff { .. }), "{o:?}");
    }

    #[test]
    fn a_missing_image_is_a_crash_loop_at_once() {
        let p = pod(json!({
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}}}],
        }));
        let o = observe(&p, Some(1), false, true);
        assert!(matches!(o.state, InstanceState::CrashLoop { .. }), "{o:?}");
        assert!(o.message.contains("ErrImageNeverPull"));
    }

    #[test]
    fn unready_only_after_ready_and_starting_before() {
        let p = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "image": "i", "imageID": "i", "state": {"running": {}}}],
        }));
        assert_eq!(
            observe(&p, None, false, true).state,
            InstanceState::Starting
        );
        assert_eq!(observe(&p, None, true, true).state, InstanceState::Unready);
        let unscheduled = pod(
            json!({"conditions": [{"type": "PodScheduled", "status": "False",
            "message": "0/1 nodes are available"}]}),
        );
        let o = observe(&unscheduled, None, false, true);
        assert_eq!(o.state, InstanceState::Starting);
        assert!(o.message.contains("0/1 nodes"), "{o:?}");
    }
}
