//! Which frozen artifacts (and the images of image processes) to keep. History only grows, but artifacts take disk: each app keeps the
//! artifacts of its newest `[releases] keep` releases — and, whatever that says, of its stable release,
//! its rollback target, and every release that still has instances. Nothing is pruned from under a
//! rollback.

use slipway_core::release::{Release, ReleaseStatus, Version};
use std::collections::HashSet;

/// An app's `[releases] keep`, as its newest release says (10 for an app without releases).
pub fn keep_of(releases: &[Release]) -> u32 {
    releases
        .first()
        .map_or(10, |r| r.spec.retention.keep_releases)
}

/// The versions of one app whose artifacts stay. `releases` is newest first; `in_use` are releases
/// with instances or in a rollout.
pub fn kept_versions(releases: &[Release], keep: u32, in_use: &[Version]) -> HashSet<Version> {
    let mut kept: HashSet<Version> = releases
        .iter()
        .take(keep as usize)
        .map(|r| r.version)
        .collect();
    kept.extend(in_use.iter().copied());
    if let Some(stable) = releases.iter().find(|r| r.status == ReleaseStatus::Active) {
        kept.insert(stable.version);
    }
    // The default rollback target: the newest release that served before the stable one.
    if let Some(target) = releases
        .iter()
        .find(|r| r.status == ReleaseStatus::Superseded)
    {
        kept.insert(target.version);
    }
    kept
}

/// The image IDs of one app's kept releases: what image retention must not remove.
pub fn kept_images(releases: &[Release], kept: &HashSet<Version>) -> Vec<String> {
    let mut ids: Vec<String> = releases
        .iter()
        .filter(|r| kept.contains(&r.version))
        .flat_map(|r| r.spec.image_ids())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The digests to keep across all apps (an artifact may be shared by several releases).
pub fn kept_digests<'a>(
    apps: impl Iterator<Item = (&'a [Release], HashSet<Version>)>,
) -> HashSet<String> {
    let mut digests = HashSet::new();
    for (releases, kept) in apps {
        digests.extend(
            releases
                .iter()
                .filter(|r| kept.contains(&r.version))
                .map(|r| r.artifact.clone()),
        );
    }
    digests
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps two releases' artifacts, as the tests' specs always did.
    fn release(version: Version, status: ReleaseStatus) -> Release {
        crate::test_release::release_kept(version, status, 2)
    }

    #[test]
    fn stable_and_rollback_target_survive_a_small_keep() {
        use ReleaseStatus::*;
        // v5 failed, v4 failed, v3 stable, v2 the rollback target, v1 old.
        let releases = vec![
            release(5, Failed),
            release(4, Failed),
            release(3, Active),
            release(2, Superseded),
            release(1, Superseded),
        ];
        let kept = kept_versions(&releases, 2, &[]);
        assert_eq!(kept, HashSet::from([5, 4, 3, 2]));
        let kept = kept_versions(&releases, 0, &[1]);
        assert_eq!(kept, HashSet::from([3, 2, 1]));
    }

    #[test]
    fn the_images_of_kept_releases_stay() {
        use ReleaseStatus::*;
        let with_image = |version, status, id: &str| {
            let mut r = release(version, status);
            let mut container = slipway_core::spec::ContainerSpec::new("a:latest", 8080);
            container.image_id = Some(id.into());
            let mut web: slipway_core::spec::ProcessSpec =
                serde_json::from_value(serde_json::json!({
                    "cmd": "", "replicas": 1,
                    "grace": { "secs": 1, "nanos": 0 }, "drain_timeout": { "secs": 1, "nanos": 0 },
                    "stream_drain_timeout": { "secs": 1, "nanos": 0 },
                    "readiness": null, "liveness": null, "startup": null
                }))
                .unwrap();
            web.container = Some(container);
            r.spec.processes.insert("web".into(), web);
            r
        };
        // v3 stable and v2 its rollback target share nothing with v1, whose image may go.
        let releases = vec![
            with_image(3, Active, "sha256:c"),
            with_image(2, Superseded, "sha256:b"),
            with_image(1, Superseded, "sha256:a"),
        ];
        let kept = kept_versions(&releases, 0, &[]);
        assert_eq!(kept_images(&releases, &kept), ["sha256:b", "sha256:c"]);
    }
}
