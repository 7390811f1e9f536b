//! `recreate`: stop the old release (drained), then start the new one. Downtime by design; for apps
//! that cannot run two versions at once.

use crate::rollout::{Observed, Phase, Plan, Rollout, Traffic};

pub(crate) fn step(r: &mut Rollout, seen: Observed) -> Plan {
    if r.phase == Phase::StoppingOld {
        r.scale_from = 0;
        if seen.live_from > 0 {
            return Plan {
                scale_from: 0,
                scale_to: 0,
                traffic: Traffic::ALL_FROM,
            };
        }
        r.phase = Phase::Progressing;
    }
    r.scale_from = 0;
    r.scale_to = r.to_replicas;
    if seen.ready_to >= r.to_replicas && !seen.to_workers_pending {
        r.finish();
    }
    Plan {
        scale_from: 0,
        scale_to: r.scale_to,
        traffic: Traffic::ALL_TO,
    }
}

#[cfg(test)]
mod tests {
    use crate::rollout::*;
    use crate::spec::Strategy;

    #[test]
    fn stops_old_before_starting_new() {
        let mut r = Rollout::new("a", Some((1, 2)), 2, 2, Strategy::Recreate, 0, 60_000);
        let seen = Observed {
            ready_from: 2,
            live_from: 2,
            ..Default::default()
        };
        let p = r.step(seen, 1);
        assert_eq!((p.scale_from, p.scale_to), (0, 0));
        let p = r.step(Observed::default(), 2);
        assert_eq!((p.scale_from, p.scale_to), (0, 2));
        let p = r.step(
            Observed {
                ready_to: 2,
                live_to: 2,
                ..Default::default()
            },
            3,
        );
        assert_eq!(p.traffic, Traffic::ALL_TO);
        assert_eq!(r.outcome(), Some(Outcome::Succeeded));
    }
}
