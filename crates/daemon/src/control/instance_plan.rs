//! Which instances to start and which to retire so each (release, process) has the count it should,
//! decided without IO from what the app wants ([`Desired`]) and the instances it has.

use crate::control::desired::{Desired, Releases};
use crate::control::managed::Managed;
use slipway_core::release::Version;
use std::collections::HashSet;

/// How many instances of each (release, process) should run.
pub(crate) type Wanted = Vec<(Version, String, u32)>;

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct InstancePlan {
    /// Instances to take out of the route table, drain, then stop.
    pub retire: Vec<String>,
    /// Instances to start, one entry each.
    pub start: Vec<(Version, String)>,
}

/// Web instances follow the release's scale; other processes run their replicas while the release
/// has any web scale (or has no web process at all, or its web process is scaled to zero when idle). A release not loaded wants nothing.
pub(crate) fn wanted(name: &str, desired: &Desired, releases: &Releases) -> Wanted {
    let mut wanted = Vec::new();
    for (&version, &scale) in &desired.scale {
        let Some(release) = releases.get(&(name.to_string(), version)) else {
            continue;
        };
        let has_web = release.spec.processes.contains_key("web");
        for (process, spec) in &release.spec.processes {
            let count = if process == "web" {
                scale
            } else if scale > 0 || !has_web || desired.asleep == Some(version) {
                spec.replicas
            } else {
                0
            };
            wanted.push((version, process.clone(), count));
        }
    }
    wanted
}

pub(crate) fn plan(instances: &[Managed], wanted: &Wanted) -> InstancePlan {
    let mut plan = InstancePlan::default();
    let mut going: HashSet<&str> = HashSet::new();
    // Instances nobody wants any more.
    for m in instances.iter().filter(|m| !m.retiring) {
        if !wanted
            .iter()
            .any(|(v, p, n)| *v == m.release && *p == m.process && *n > 0)
        {
            going.insert(&m.id);
            plan.retire.push(m.id.clone());
        }
    }
    for (version, process, count) in wanted {
        let mut live: Vec<&Managed> = instances
            .iter()
            .filter(|m| !m.retiring && !going.contains(m.id.as_str()))
            .filter(|m| m.release == *version && m.process == *process)
            .collect();
        let have = live.len() as u32;
        if have > *count {
            // Retire the least useful first: not ready, then the newest.
            live.sort_by_key(|m| (m.is_ready(), std::cmp::Reverse(m.seq)));
            for m in live.into_iter().take((have - count) as usize) {
                going.insert(&m.id);
                plan.retire.push(m.id.clone());
            }
        }
        for _ in have..*count {
            plan.start.push((*version, process.clone()));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::instance as web;

    fn instance(id: &str, release: Version, ready: bool, seq: u64) -> Managed {
        web(id, release, "web", ready, seq)
    }

    #[test]
    fn surplus_goes_not_ready_first_then_newest() {
        let have = [
            instance("old-ready", 1, true, 1),
            instance("new-ready", 1, true, 3),
            instance("starting", 1, false, 2),
        ];
        let p = plan(&have, &vec![(1, "web".into(), 1)]);
        assert_eq!(p.retire, ["starting", "new-ready"]);
        assert!(p.start.is_empty());
    }

    #[test]
    fn unwanted_releases_retire_and_missing_instances_start() {
        let mut gone = instance("gone", 1, true, 1);
        gone.retiring = true;
        let have = [gone, instance("v1", 1, true, 2), instance("v2", 2, true, 3)];
        let p = plan(&have, &vec![(1, "web".into(), 0), (2, "web".into(), 3)]);
        assert_eq!(
            p.retire,
            ["v1"],
            "an instance already retiring is not retired again"
        );
        assert_eq!(p.start, [(2, "web".to_string()), (2, "web".to_string())]);
    }
}
