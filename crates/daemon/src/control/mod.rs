//! The control layer: the controller, one task owning every app's live state, and everything that
//! changes that state — rollouts started and finished, instances started, drained and stopped, the
//! proxy's table published, analysis judged. Nothing here knows about HTTP or about how a deploy was
//! asked for; the layers above talk to it through [`controller::ControllerHandle`].

pub(crate) mod adopt;
#[cfg(feature = "kubernetes")]
mod adopt_pods;
pub(crate) mod adopt_processes;
pub(crate) mod analysis_round;
pub(crate) mod analysis_session;
pub(crate) mod app_scaling;
pub(crate) mod app_state;
pub(crate) mod autoscale_round;
pub(crate) mod container_instance;
pub mod controller;
pub(crate) mod converge;
pub(crate) mod desired;
pub(crate) mod formation_change;
#[cfg(feature = "kubernetes")]
pub(crate) mod gateway_traffic;
pub(crate) mod inbox;
pub(crate) mod instance_events;
pub(crate) mod instance_plan;
pub(crate) mod managed;
pub(crate) mod metrics_text;
#[cfg(feature = "kubernetes")]
pub(crate) mod pod_instance;
pub(crate) mod proxy_table;
pub(crate) mod rollout_end;
pub(crate) mod rollout_start;
pub(crate) mod runtimes;
pub(crate) mod series;
#[cfg(test)]
mod simulation;
pub(crate) mod slo_book;
pub mod slo_round;
pub(crate) mod status;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod traffic;
#[cfg(feature = "kubernetes")]
pub(crate) mod unroute;
pub(crate) mod wake;
pub(crate) mod watch;
pub mod watch_round;
#[cfg(test)]
mod watch_simulation;
