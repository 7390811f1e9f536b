//! Releases and instances for the control layer's unit tests and simulation: built from real
//! `slipway.toml` text, so a test's release is one a user could write.

use crate::control::managed::Managed;
use crate::control::runtimes::RuntimeKind;
use slipway_core::release::{Release, ReleaseStatus, Version};
use slipway_runtime::InstanceState;

/// Release `version` of app `app` from the body of a `slipway.toml` (everything after `app = ...`).
pub(crate) fn release(app: &str, version: Version, toml: &str) -> Release {
    let text = format!("app = \"{app}\"\n{toml}\n");
    let spec = slipway_config::parse(&text, std::path::Path::new("slipway.toml"))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    Release {
        app: app.into(),
        version,
        label: None,
        artifact: format!("sha256:{version}"),
        spec,
        created_at: 0,
        created_by: "test".into(),
        message: None,
        rollback_of: None,
        status: ReleaseStatus::Active,
        reason: None,
    }
}

/// Release `version` of app `a` in `status`, keeping the artifacts of its newest `keep` releases
/// (`[releases] keep`): what the retention and backup rules read.
pub(crate) fn release_kept(version: Version, status: ReleaseStatus, keep: u32) -> Release {
    Release {
        status,
        ..release(
            "a",
            version,
            &format!("[processes.web]\ncmd = \"serve\"\n[releases]\nkeep = {keep}"),
        )
    }
}

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
