//! Releases and instances for the control layer's unit tests and simulation: built from real
//! `slipway.toml` text, so a test's release is one a user could write.

use crate::control::managed::Managed;
use crate::control::runtimes::RuntimeKind;
pub(crate) use crate::test_release::release;
use slipway_core::release::{Release, Version};
use slipway_runtime::InstanceState;

/// A web release with `replicas` instances and this `[deploy]` table body.
pub(crate) fn web_release(app: &str, version: Version, replicas: u32, deploy: &str) -> Release {
    release(
        app,
        version,
        &format!("[processes.web]\ncmd = \"serve\"\nreplicas = {replicas}\n[deploy]\n{deploy}"),
    )
}

/// A process instance of `release`, ready or still starting.
pub(crate) fn instance(
    id: &str,
    release: Version,
    process: &str,
    ready: bool,
    seq: u64,
) -> Managed {
    Managed {
        id: id.into(),
        release,
        process: process.into(),
        backend: None,
        runtime: RuntimeKind::Process,
        state: if ready {
            InstanceState::Ready
        } else {
            InstanceState::Starting
        },
        retiring: false,
        seq,
    }
}
