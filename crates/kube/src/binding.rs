//! Which pod each instance is. A ReplicaSet only keeps a count of pods: slipway raises it to start an
//! instance and lowers it to retire one, and binds its instances to its pods here. Pure.
//!
//! Retiring an instance lowers the count only after the proxy drained it, with its pod marked to go
//! first (`controller.kubernetes.io/pod-deletion-cost`). The ReplicaSet controller still ranks a pod
//! that is unscheduled, pending or not ready below that mark, so it may remove such a pod of another
//! instance instead — never a serving one, which ranks above. Then the two instances swap pods: the
//! live one keeps serving on the drained pod (no request is in flight there, nothing was signalled)
//! and the retiring one ends with the removed pod. Whichever pod goes, every live instance ends up with
//! a pod and the count holds. The same rule rebinds an instance whose pod was evicted or deleted to
//! the ReplicaSet's replacement.

/// One instance of a ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub instance: String,
    pub pod: Option<String>,
    /// Drained and being stopped: it holds its pod until the pod is gone, and takes no other.
    pub retiring: bool,
}

/// One pod of the ReplicaSet, as the watch last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    /// It has a deletion timestamp: going, never bound again.
    pub terminating: bool,
}

/// Rebinds `slots` to `pods` (oldest pod first) in place.
pub fn bind(slots: &mut [Slot], pods: &[PodRef]) {
    let find = |name: &str| pods.iter().find(|p| p.name == name);
    // Gone pods are no one's.
    for slot in slots.iter_mut() {
        if slot.pod.as_deref().is_some_and(|p| find(p).is_none()) {
            slot.pod = None;
        }
    }
    let terminating = |slot: &Slot| {
        slot.pod
            .as_deref()
            .and_then(find)
            .is_some_and(|p| p.terminating)
    };
    // A live instance whose pod goes swaps with a retiring one that holds a live pod.
    for i in 0..slots.len() {
        if slots[i].retiring || !terminating(&slots[i]) {
            continue;
        }
        let donor = (0..slots.len())
            .find(|&j| slots[j].retiring && slots[j].pod.is_some() && !terminating(&slots[j]));
        match donor {
            Some(j) => {
                let (a, b) = (slots[i].pod.take(), slots[j].pod.take());
                slots[i].pod = b;
                slots[j].pod = a;
            }
            None => slots[i].pod = None,
        }
    }
    // Live instances without a pod take the oldest free ones.
    let held: Vec<String> = slots.iter().filter_map(|s| s.pod.clone()).collect();
    let mut free = pods
        .iter()
        .filter(|p| !p.terminating && !held.contains(&p.name));
    for slot in slots.iter_mut() {
        if slot.retiring || slot.pod.is_some() {
            continue;
        }
        match free.next() {
            Some(p) => slot.pod = Some(p.name.clone()),
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(instance: &str, pod: Option<&str>, retiring: bool) -> Slot {
        Slot {
            instance: instance.into(),
            pod: pod.map(Into::into),
            retiring,
        }
    }

    fn pod(name: &str, terminating: bool) -> PodRef {
        PodRef {
            name: name.into(),
            terminating,
        }
    }

    #[test]
    fn new_instances_take_the_oldest_free_pods() {
        let mut slots = vec![slot("a", Some("p2"), false), slot("b", None, false)];
        bind(
            &mut slots,
            &[pod("p1", false), pod("p2", false), pod("p3", false)],
        );
        assert_eq!(slots[0].pod.as_deref(), Some("p2"));
        assert_eq!(slots[1].pod.as_deref(), Some("p1"));
    }

    #[test]
    fn the_drained_pod_going_ends_the_retiring_instance() {
        let mut slots = vec![slot("a", Some("p1"), false), slot("x", Some("p2"), true)];
        bind(&mut slots, &[pod("p1", false), pod("p2", true)]);
        assert_eq!(slots[1].pod.as_deref(), Some("p2"));
        bind(&mut slots, &[pod("p1", false)]);
        assert_eq!(slots[0].pod.as_deref(), Some("p1"));
        assert_eq!(slots[1].pod, None);
    }

    #[test]
    fn another_pod_going_swaps_it_with_the_drained_one() {
        // The ReplicaSet removed b's pending pod instead of x's drained one.
        let mut slots = vec![slot("b", Some("p3"), false), slot("x", Some("p2"), true)];
        bind(&mut slots, &[pod("p2", false), pod("p3", true)]);
        assert_eq!(
            slots[0].pod.as_deref(),
            Some("p2"),
            "b serves on the drained pod"
        );
        assert_eq!(
            slots[1].pod.as_deref(),
            Some("p3"),
            "x ends with the removed pod"
        );
    }

    #[test]
    fn an_evicted_pod_is_replaced_by_the_next_one() {
        let mut slots = vec![slot("a", Some("p1"), false)];
        bind(&mut slots, &[pod("p1", true)]);
        assert_eq!(slots[0].pod, None, "no traffic to a pod that goes");
        bind(&mut slots, &[pod("p1", true), pod("p4", false)]);
        assert_eq!(slots[0].pod.as_deref(), Some("p4"));
    }

    #[test]
    fn retiring_instances_take_no_pod() {
        let mut slots = vec![slot("x", None, true)];
        bind(&mut slots, &[pod("p1", false)]);
        assert_eq!(slots[0].pod, None);
    }
}
