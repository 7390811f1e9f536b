//! Releases for unit tests, built from real `slipway.toml` text, so a test's release is one a user
//! could write. A leaf, so the leaves' own tests (retention, backup) can use it too.

use slipway_core::release::{Release, ReleaseStatus, Version};

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
