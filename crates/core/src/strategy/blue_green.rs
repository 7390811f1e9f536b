//! `blue-green`: start the whole new release beside the old one (reachable on its preview route), then
//! switch all traffic at once when every new instance is ready — or when the operator promotes.

use crate::rollout::{Observed, Phase, Plan, Rollout, Traffic};

pub(crate) fn step(r: &mut Rollout, seen: Observed, auto_promote: bool) -> Plan {
    r.scale_from = r.from_replicas;
    r.scale_to = r.to_replicas;
    if r.phase == Phase::Progressing && seen.ready_to >= r.to_replicas && !seen.to_workers_pending {
        if auto_promote || r.from.is_none() {
            r.switch_to_new();
        } else {
            r.phase = Phase::AwaitingPromotion;
        }
    }
    let traffic = if r.is_done() || r.from.is_none() {
        Traffic::ALL_TO
    } else {
        Traffic::ALL_FROM
    };
    Plan {
        scale_from: r.scale_from,
        scale_to: r.scale_to,
        traffic,
    }
}

#[cfg(test)]
mod tests {
    use crate::rollout::*;
    use crate::spec::Strategy;

    fn bg(auto_promote: bool) -> Rollout {
        let s = Strategy::BlueGreen {
            auto_promote,
            scale_down_delay: std::time::Duration::from_secs(30),
        };
        Rollout::new("a", Some((1, 2)), 2, 2, s, 0, 60_000)
    }

    #[test]
    fn switches_only_when_all_new_instances_are_ready() {
        let mut r = bg(true);
        let p = r.step(
            Observed {
                ready_from: 2,
                live_from: 2,
                ready_to: 1,
                live_to: 2,
                ..Default::default()
            },
            10,
        );
        assert_eq!(p.traffic, Traffic::ALL_FROM);
        assert_eq!((p.scale_from, p.scale_to), (2, 2));
        let p = r.step(
            Observed {
                ready_from: 2,
                live_from: 2,
                ready_to: 2,
                live_to: 2,
                ..Default::default()
            },
            20,
        );
        assert_eq!(p.traffic, Traffic::ALL_TO);
        assert_eq!(p.scale_from, 2, "old release stays warm after the switch");
        assert_eq!(r.outcome(), Some(Outcome::Succeeded));
    }

    #[test]
    fn manual_promotion_waits_and_ignores_the_deadline() {
        let mut r = bg(false);
        let ready = Observed {
            ready_from: 2,
            live_from: 2,
            ready_to: 2,
            live_to: 2,
            ..Default::default()
        };
        r.step(ready, 10);
        assert_eq!(r.phase, Phase::AwaitingPromotion);
        let p = r.step(ready, 10_000_000);
        assert_eq!(p.traffic, Traffic::ALL_FROM);
        assert!(r.signal(Signal::Promote));
        assert_eq!(r.step(ready, 10_000_001).traffic, Traffic::ALL_TO);
    }

    #[test]
    fn never_ready_fails_at_the_deadline_and_keeps_the_old_release() {
        let mut r = bg(true);
        let seen = Observed {
            ready_from: 2,
            live_from: 2,
            ready_to: 0,
            live_to: 2,
            ..Default::default()
        };
        assert_eq!(r.step(seen, 59_999).traffic, Traffic::ALL_FROM);
        let p = r.step(seen, 60_000);
        assert_eq!(
            (p.scale_from, p.scale_to, p.traffic),
            (2, 0, Traffic::ALL_FROM)
        );
        assert!(matches!(r.phase, Phase::Reverting { .. }));
        r.step(
            Observed {
                ready_from: 2,
                live_from: 2,
                ..Default::default()
            },
            60_100,
        );
        assert_eq!(r.outcome(), Some(Outcome::Failed));
    }
}
