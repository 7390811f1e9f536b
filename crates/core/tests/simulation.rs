//! Thousands of simulated rollouts through the pure core, with injected faults (instances that never
//! become ready, slow starts, an operator abort), each checked against the invariants the data plane
//! relies on. Deterministic: a seeded xorshift, no clock, no IO.

use slipway_core::rollout::{Observed, Outcome, Rollout, Signal};
use slipway_core::spec::{Amount, Strategy};
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One simulated instance: ready after `ready_at` ticks, or never.
#[derive(Clone, Copy)]
struct Inst {
    ready_at: Option<u64>,
}

struct World {
    from: Vec<Inst>,
    to: Vec<Inst>,
}

impl World {
    fn observe(&self, now: u64) -> Observed {
        let ready = |v: &[Inst]| {
            v.iter()
                .filter(|i| i.ready_at.is_some_and(|t| t <= now))
                .count() as u32
        };
        Observed {
            ready_from: ready(&self.from),
            live_from: self.from.len() as u32,
            ready_to: ready(&self.to),
            live_to: self.to.len() as u32,
            to_workers_pending: false,
        }
    }
}

/// Retires the least useful instances first (not ready), as the controller does.
fn scale(v: &mut Vec<Inst>, want: u32, now: u64, make: &mut impl FnMut() -> Inst) {
    while (v.len() as u32) < want {
        let mut i = make();
        i.ready_at = i.ready_at.map(|d| now + d);
        v.push(i);
    }
    while (v.len() as u32) > want {
        let pos = v
            .iter()
            .position(|i| i.ready_at.is_none_or(|t| t > now))
            .unwrap_or(v.len() - 1);
        v.remove(pos);
    }
}

#[derive(Debug, Default)]
struct Totals {
    succeeded: u32,
    failed: u32,
    aborted: u32,
}

fn run(seed: u64) -> (Outcome, bool) {
    let mut rng = Rng(seed | 1);
    let n = 1 + rng.below(5) as u32;
    let m = 1 + rng.below(5) as u32;
    let strategy = match rng.below(3) {
        0 => Strategy::Recreate,
        1 => {
            let surge = rng.below(3) as u32;
            let unavailable = if surge == 0 {
                1 + rng.below(2) as u32
            } else {
                rng.below(2) as u32
            };
            Strategy::Rolling {
                max_surge: Amount::Count(surge),
                max_unavailable: Amount::Count(unavailable),
            }
        }
        _ => Strategy::BlueGreen {
            auto_promote: true,
            scale_down_delay: Duration::from_secs(1),
        },
    };
    let bad_release = rng.below(4) == 0;
    let abort_at = if rng.below(6) == 0 {
        Some(1 + rng.below(20))
    } else {
        None
    };
    let deadline = 200;
    let mut r = Rollout::new("sim", Some((1, m)), 2, n, strategy.clone(), 0, deadline);
    let mut world = World {
        from: vec![Inst { ready_at: Some(0) }; m as usize],
        to: Vec::new(),
    };
    for now in 1..2_000u64 {
        if abort_at == Some(now) {
            r.signal(Signal::Abort {
                reason: "operator".into(),
            });
        }
        let seen = world.observe(now);
        let plan = r.step(seen, now);
        // Traffic never goes to a release with no ready instance while the other one has some.
        if plan.traffic.to > 0 && seen.ready_to == 0 {
            assert_eq!(
                seen.ready_from, 0,
                "seed {seed}: traffic to an unready release {plan:?} {seen:?}"
            );
        }
        if plan.traffic.from > 0 && seen.ready_from == 0 {
            assert_eq!(
                seen.ready_to, 0,
                "seed {seed}: traffic to an unready release {plan:?} {seen:?}"
            );
        }
        if let Strategy::Rolling {
            max_surge: Amount::Count(s),
            ..
        } = strategy
        {
            assert!(
                plan.scale_from + plan.scale_to <= n.max(m) + s,
                "seed {seed}: surge exceeded {plan:?}"
            );
        }
        if let Some(outcome) = r.outcome() {
            if outcome != Outcome::Succeeded {
                assert_eq!(
                    plan.scale_from, m,
                    "seed {seed}: a failed rollout must restore the stable release"
                );
                assert_eq!(plan.scale_to, 0);
            }
            return (outcome, bad_release);
        }
        let mut make_from = || Inst {
            ready_at: Some(1 + rng.0 % 3),
        };
        scale(&mut world.from, plan.scale_from, now, &mut make_from);
        let delay = 1 + rng.below(4);
        let ready = if bad_release { None } else { Some(delay) };
        scale(&mut world.to, plan.scale_to, now, &mut || Inst {
            ready_at: ready,
        });
    }
    panic!("seed {seed}: rollout never finished: {r:?}");
}

#[test]
fn thousands_of_rollouts_keep_the_invariants_and_always_end() {
    let mut totals = Totals::default();
    for seed in 1..5_000u64 {
        let (outcome, bad) = run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        match outcome {
            Outcome::Succeeded => {
                assert!(
                    !bad,
                    "seed {seed}: a release that never becomes ready succeeded"
                );
                totals.succeeded += 1;
            }
            Outcome::Failed => {
                assert!(bad, "seed {seed}: a healthy release failed");
                totals.failed += 1;
            }
            Outcome::Aborted => totals.aborted += 1,
        }
    }
    assert!(
        totals.succeeded > 1000 && totals.failed > 100 && totals.aborted > 100,
        "{totals:?}"
    );
}
