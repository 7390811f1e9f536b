//! What the controller knows of one app, as plain data: its stable release, the rollout in progress
//! (the core's state machine and what it last saw), the release kept warm after a blue-green switch,
//! its instances, and the counters behind analysis and charts. The decisions (`desired`,
//! `instance_plan`, `instance_events`, `wake`) read and change it without IO.

use crate::control::managed::Managed;
use slipway_core::release::Version;
use slipway_core::rollout::{Observed, Rollout, Traffic};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) struct ActiveRollout {
    pub(crate) id: i64,
    pub(crate) machine: Rollout,
    pub(crate) rollback: bool,
    /// The last plan's traffic, for `status`.
    pub(crate) traffic: Traffic,
    pub(crate) seen: Observed,
    /// Counters of each canary route rule (the A/B split), in the rules' order.
    pub(crate) rule_metrics: Vec<Arc<slipway_proxy::ReleaseMetrics>>,
    /// What mirroring found, once a `mirror` step ran.
    pub(crate) shadow: Option<Arc<slipway_proxy::ShadowReport>>,
}

impl ActiveRollout {
    /// A rollout as it starts (or resumes after a restart): nothing observed or routed yet.
    pub(crate) fn new(id: i64, machine: Rollout, rollback: bool) -> ActiveRollout {
        ActiveRollout {
            id,
            machine,
            rollback,
            traffic: Traffic::ALL_FROM,
            seen: Observed::default(),
            rule_metrics: Vec::new(),
            shadow: None,
        }
    }
}

pub(crate) struct Warm {
    pub(crate) version: Version,
    pub(crate) retire_at: u64,
}

#[derive(Default)]
pub(crate) struct AppState {
    pub(crate) stable: Option<Version>,
    pub(crate) rollout: Option<ActiveRollout>,
    pub(crate) warm: Option<Warm>,
    pub(crate) instances: Vec<Managed>,
    pub(crate) last_failure: Option<String>,
    /// The proxy's counters per release (shared with the route table).
    pub(crate) metrics: BTreeMap<Version, Arc<slipway_proxy::ReleaseMetrics>>,
    /// One snapshot of every release's counters per second, for sliding windows.
    pub(crate) history:
        std::collections::VecDeque<(u64, BTreeMap<Version, slipway_core::analysis::Window>)>,
    pub(crate) sessions: Vec<crate::control::analysis_session::Session>,
    /// A few minutes of per-release points, for the dashboard's charts.
    pub(crate) series: crate::control::series::Series,
    /// Set while the web process of the newest release scales with load.
    pub(crate) scaling: Option<crate::control::app_scaling::AppScaling>,
    /// `slipway maintenance on`: the proxy holds the app's requests, then answers its page.
    pub(crate) maintenance: Option<InMaintenance>,
    /// The last release watched after promotion (`[deploy] watch`), running or how it ended; shown by
    /// `status` until the next rollout that is not a rollback.
    pub(crate) watch: Option<crate::control::watch::Watch>,
    /// The error budget of the `[slo]` in force (`slo_round`), once counted.
    pub(crate) slo: Option<crate::control::slo_book::SloBook>,
}

pub(crate) struct InMaintenance {
    pub(crate) proxy: slipway_proxy::Maintenance,
    pub(crate) since: i64,
    pub(crate) reason: Option<String>,
}

impl From<slipway_store::MaintenanceRecord> for InMaintenance {
    fn from(record: slipway_store::MaintenanceRecord) -> InMaintenance {
        InMaintenance {
            proxy: slipway_proxy::Maintenance {
                hold: std::time::Duration::from_millis(record.hold_ms),
                page: record.page.map(Arc::from),
                retry_after: record.retry_after,
                held: Default::default(),
            },
            since: record.since,
            reason: record.reason,
        }
    }
}
