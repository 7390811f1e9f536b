//! `rolling`: replace instances a few at a time, like a Kubernetes Deployment: never more than
//! `replicas + max_surge` instances, never fewer than `replicas - max_unavailable` ready ones.
//! Traffic goes to every ready instance of either release, each getting an equal share.

use crate::rollout::{Observed, Plan, Rollout, Traffic};
use crate::spec::Amount;

pub(crate) fn step(
    r: &mut Rollout,
    seen: Observed,
    max_surge: Amount,
    max_unavailable: Amount,
) -> Plan {
    let n = r.to_replicas;
    if r.from.is_none() {
        r.scale_to = n;
    } else {
        (r.scale_from, r.scale_to) = roll(
            (r.scale_from, seen.ready_from),
            (r.scale_to, seen.ready_to),
            n,
            max_surge,
            max_unavailable,
        );
    }
    if r.scale_from == 0 && seen.live_from == 0 && seen.ready_to >= n && !seen.to_workers_pending {
        r.finish();
    }
    let traffic = if seen.ready_from + seen.ready_to == 0 {
        Traffic::ALL_FROM
    } else {
        Traffic {
            from: seen.ready_from.min(r.scale_from),
            to: seen.ready_to,
        }
    };
    Plan {
        scale_from: r.scale_from,
        scale_to: r.scale_to,
        traffic,
    }
}

/// One step of replacing `old` by `new` (each given as (scale asked, ready now)) towards `n` instances of
/// `new`: returns the next (old scale, new scale). Used forwards by a rollout and backwards by a revert.
pub(crate) fn roll(
    old: (u32, u32),
    new: (u32, u32),
    n: u32,
    max_surge: Amount,
    max_unavailable: Amount,
) -> (u32, u32) {
    let surge = max_surge.resolve(n, true);
    let unavailable = max_unavailable.resolve(n, false);
    let (mut old_scale, old_ready) = old;
    let (mut new_scale, new_ready) = new;
    // Scale the new release up within the surge budget...
    let room = (n + surge).saturating_sub(old_scale + new_scale);
    new_scale += room.min(n.saturating_sub(new_scale));
    // ...and the old one down as far as availability allows. Old instances that are not ready do not
    // serve anyone, so they can always go.
    let ready_total = old_ready.min(old_scale) + new_ready;
    let removable = ready_total.saturating_sub(n.saturating_sub(unavailable));
    let unready_old = old_scale.saturating_sub(old_ready);
    old_scale = old_scale.saturating_sub(removable + unready_old);
    (old_scale, new_scale)
}

#[cfg(test)]
mod tests {
    use crate::rollout::*;
    use crate::spec::{Amount, Strategy};

    fn rolling(surge: u32, unavailable: u32, from: u32, to: u32) -> Rollout {
        let s = Strategy::Rolling {
            max_surge: Amount::Count(surge),
            max_unavailable: Amount::Count(unavailable),
        };
        Rollout::new("a", Some((1, from)), 2, to, s, 0, 600_000)
    }

    /// Drives a rolling update where the world does exactly what was asked, instances becoming
    /// ready one tick after they are started, and checks the bounds at every tick.
    fn simulate(mut r: Rollout, surge: u32, unavailable: u32) -> u32 {
        let n = r.to_replicas;
        let mut seen = Observed {
            ready_from: r.from_replicas,
            live_from: r.from_replicas,
            ..Default::default()
        };
        for tick in 1..100 {
            let p = r.step(seen, tick);
            assert!(
                p.scale_from + p.scale_to <= n.max(r.from_replicas) + surge,
                "surge exceeded at {tick}"
            );
            if r.is_done() {
                return tick as u32;
            }
            // Old instances go at once (drained); new ones are ready on the next tick.
            seen.ready_from = seen.ready_from.min(p.scale_from);
            seen.live_from = p.scale_from;
            seen.ready_to = seen.live_to.min(p.scale_to);
            seen.live_to = p.scale_to;
            assert!(
                seen.ready_from + seen.ready_to + unavailable >= n
                    || seen.ready_from + seen.ready_to >= n.min(r.from_replicas),
                "too few ready at {tick}: {seen:?}"
            );
        }
        panic!("rolling update never finished: {r:?}");
    }

    #[test]
    fn surge_one_keeps_full_capacity() {
        simulate(rolling(1, 0, 3, 3), 1, 0);
        simulate(rolling(2, 0, 4, 4), 2, 0);
    }

    #[test]
    fn unavailable_only_goes_down_first() {
        simulate(rolling(0, 1, 3, 3), 0, 1);
    }

    #[test]
    fn changing_replica_counts_converges() {
        simulate(rolling(1, 0, 2, 5), 1, 0);
        simulate(rolling(1, 1, 5, 2), 1, 1);
    }

    #[test]
    fn traffic_is_shared_by_ready_instances() {
        let mut r = rolling(1, 0, 2, 2);
        let p = r.step(
            Observed {
                ready_from: 2,
                live_from: 2,
                ready_to: 1,
                live_to: 1,
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            p.traffic,
            Traffic {
                from: p.scale_from.min(2),
                to: 1
            }
        );
    }

    #[test]
    fn abort_midway_restores_the_old_release_before_removing_the_new() {
        let mut r = rolling(1, 0, 2, 2);
        r.step(
            Observed {
                ready_from: 2,
                live_from: 2,
                ..Default::default()
            },
            1,
        );
        let mid = Observed {
            ready_from: 1,
            live_from: 1,
            ready_to: 1,
            live_to: 1,
            ..Default::default()
        };
        r.step(mid, 2);
        assert!(r.signal(Signal::Abort {
            reason: "operator".into()
        }));
        let p = r.step(mid, 3);
        assert_eq!(
            (p.scale_from, p.scale_to),
            (2, 1),
            "new release kept until the old is whole"
        );
        assert_eq!(p.traffic, Traffic { from: 1, to: 1 });
        let whole = Observed {
            ready_from: 2,
            live_from: 2,
            ready_to: 1,
            live_to: 1,
            ..Default::default()
        };
        let p = r.step(whole, 4);
        assert_eq!((p.scale_to, p.traffic), (0, Traffic::ALL_FROM));
        r.step(
            Observed {
                ready_from: 2,
                live_from: 2,
                ..Default::default()
            },
            5,
        );
        assert_eq!(r.outcome(), Some(Outcome::Aborted));
    }
}
