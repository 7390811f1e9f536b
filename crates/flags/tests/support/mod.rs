//! Helpers shared by the integration tests.
// Each test binary uses a part of these.
#![allow(dead_code)]

pub mod gherkin;

use std::path::PathBuf;

/// flagd-testbed's `evaluator/` folder: `$SLIPWAY_FLAGD_TESTBED`, else `shared/conformance/flagd-testbed`
/// beside the repository (or beside one of its parent folders, for a clone placed one level deeper).
/// Missing is a failure, never a skip: these scenarios are what the flag engine must pass.
pub fn testbed_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLIPWAY_FLAGD_TESTBED") {
        return PathBuf::from(dir);
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let found = repo
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/conformance/flagd-testbed/evaluator"))
        .find(|dir| dir.join("flags/testkit-flags.json").exists());
    found.unwrap_or_else(|| {
        panic!(
            "flagd-testbed not found in shared/conformance/ beside {} or its parents; set SLIPWAY_FLAGD_TESTBED",
            repo.display()
        )
    })
}

pub fn testkit_flags() -> PathBuf {
    testbed_dir().join("flags/testkit-flags.json")
}
