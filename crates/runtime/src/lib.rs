//! The embedded process runtime: supervised instances in their own process groups, probes, logs, restarts.
//!
//! slipway runs each instance of a release as a child process of the daemon rather than delegating to
//! systemd or Docker, because the rollout engine needs to know, to the millisecond, when an instance is
//! ready, unready, or dead, and to stop it only after the proxy drained it. The runtime answers those
//! questions and nothing else: it knows nothing of routes, rollouts or the store.
//!
//! - One supervisor for every kind of workload (`supervision.rs`) starts, watches, restarts and stops
//!   instances and reports every state change as an [`InstanceEvent`]; the decisions of a run's life
//!   (ready, unready, killed by a probe, stable) are pure (`lifecycle.rs`). A workload (`workload.rs`)
//!   is what an instance runs on: a process here ([`Supervisor`], `process_workload.rs`), a container in
//!   `slipway-docker`.
//! - An instance is `sh -c cmd` leading its own process group, so signals reach everything it forked
//!   (`process_group.rs`); its stdout/stderr go through named pipes (`output_pipe.rs`) to a
//!   timestamped log file (`log_capture.rs`).
//! - Startup, readiness and liveness probes (`probe.rs`) decide Ready / Unready and kill hung instances;
//!   crashes are restarted with exponential backoff and crash loops are flagged (`restart.rs`).
//! - Instances outlive the daemon: pid files (`pid_file.rs`) let a daemon restarted after `kill -9`, or
//!   the new binary of an upgrade, find them, prove each is the same process (pid, start time, pidfd:
//!   `survivors.rs`, `leader.rs`) and adopt it; what it does not adopt is reaped (`orphans.rs`).
//!
//! Linux only: it relies on `/proc`, process groups, pidfds and `PR_SET_PDEATHSIG`.

mod instance;
mod job;
mod leader;
pub mod lifecycle;
pub mod log_capture;
mod orphans;
mod output_pipe;
pub mod pid_file;
mod ports;
pub mod probe;
mod process_group;
mod process_workload;
pub mod restart;
pub mod supervision;
mod supervisor;
mod survivors;
pub mod workload;

pub use instance::{InstanceEvent, InstanceSpec, InstanceState, InstanceStatus};
pub use job::{JobEnd, JobOutcome, JobSpec, append_output, run_job};
pub use ports::pick_free_port;
pub use supervisor::Supervisor;
pub use survivors::Survivor;
