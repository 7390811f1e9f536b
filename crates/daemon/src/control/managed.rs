//! The controller's view of one instance: which release and process it belongs to, whether it may get
//! traffic, and whether it is on its way out (retiring: out of the route table, draining, then stopped).

use crate::control::runtimes::RuntimeKind;
use slipway_core::release::Version;
use slipway_proxy::Backend;
use slipway_runtime::InstanceState;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Managed {
    pub id: String,
    pub release: Version,
    pub process: String,
    /// Web instances only: the proxy's handle, shared with the route table. A container's is set
    /// once it is ready and its address known (and replaced if a restart moved it).
    pub backend: Option<Arc<Backend>>,
    pub runtime: RuntimeKind,
    pub state: InstanceState,
    /// Set once the instance was chosen to go; it never gets traffic again.
    pub retiring: bool,
    /// Monotonic start order, used to retire the newest surplus instances first.
    pub seq: u64,
}

impl Managed {
    pub fn is_ready(&self) -> bool {
        matches!(self.state, InstanceState::Ready)
    }

    /// Ready and not retiring: it belongs in the route table.
    pub fn serving(&self) -> bool {
        self.is_ready() && !self.retiring && self.backend.is_some()
    }

    pub fn is_web(&self) -> bool {
        self.process == "web"
    }
}

/// A short, human name for an instance state (`status`, events).
pub fn state_name(state: &InstanceState) -> String {
    match state {
        InstanceState::Backoff { restarts, .. } => format!("restarting (#{restarts})"),
        InstanceState::CrashLoop { restarts, .. } => format!("crash-looping ({restarts} restarts)"),
        other => other.name().to_string(),
    }
}
