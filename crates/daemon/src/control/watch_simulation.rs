//! Seeded simulation of the watch after promotion (`watch.rs`), judged the way the controller judges
//! it: the release's cumulative counts since 100 %, looked at every slice, staggered sessions and all.
//! Two questions: how often is a healthy release rolled back (false alarms, over the whole watch), and
//! how long does a regression that starts 30 s after 100 % take to be caught, and how many of its
//! errors do users see meanwhile.
//!
//! The quick test runs in every `cargo test`; the table in docs/analysis.md comes from
//! `cargo test -p slipway-daemon --lib watch_simulation -- --ignored --nocapture` (about 5 minutes).

use crate::control::rollout_end::Ended;
use crate::control::test_support::web_release;
use crate::control::watch::{Watch, WatchStep};
use slipway_core::analysis::Window;
use slipway_core::rollout::Outcome;

/// xorshift64*: small and deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Binomial(n, p) by inversion (p is small here).
    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let u = self.unit();
        let mut pk = (1.0 - p).powf(n as f64);
        let (mut cdf, mut k) = (pk, 0);
        while cdf < u && k < n {
            pk *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
            k += 1;
            cdf += pk;
        }
        k
    }
}

/// One watched release: `rps` requests a second at `healthy` errors, `regressed` from `from_ms` on.
#[derive(Clone, Copy)]
struct Scenario {
    rps: u64,
    healthy: f64,
    regressed: Option<(u64, f64)>,
    watch: &'static str,
    /// The replaced release's counts up to the switch: requests at `healthy`.
    baseline_requests: u64,
    slice_ms: u64,
}

/// Milliseconds after the regression began to the rollback, and its errors served by then; `None`:
/// the watch ended without one.
fn run(seed: u64, s: Scenario) -> Option<(u64, u64)> {
    let mut rng = Rng::new(seed);
    let release = web_release("shop", 2, 2, &format!("watch = \"{}\"", s.watch));
    let ended = Ended {
        id: 1,
        from: Some(1),
        to: 2,
        outcome: Outcome::Succeeded,
        reason: None,
        rollback: false,
    };
    let baseline = Window {
        requests: s.baseline_requests,
        errors: rng.binomial(s.baseline_requests, s.healthy),
        ..Window::default()
    };
    let mut w = Watch::start(&ended, &release, Window::default(), baseline, 0)?;
    let mut counts = Window::default();
    let (mut bad_errors, mut t) = (0, 0);
    loop {
        t += s.slice_ms;
        let n = s.rps * s.slice_ms / 1000;
        let rate = match s.regressed {
            Some((from, rate)) if t > from => rate,
            _ => s.healthy,
        };
        let errors = rng.binomial(n, rate);
        counts.requests += n;
        counts.errors += errors;
        if s.regressed.is_some_and(|(from, _)| t > from) {
            bad_errors += errors;
        }
        match w.judge(&counts, t) {
            WatchStep::Hold => {}
            WatchStep::Regressed(_) => {
                let from = s.regressed.map_or(0, |(from, _)| from);
                return Some((t.saturating_sub(from), bad_errors));
            }
            WatchStep::Ended(..) => return None,
        }
    }
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

const HEALTHY: Scenario = Scenario {
    rps: 1_000,
    healthy: 0.003,
    regressed: None,
    watch: "5m",
    baseline_requests: 60_000,
    slice_ms: 50,
};

/// The seed's regression (0.3 % → 3 %) 30 s after 100 %.
const REGRESSION: Scenario = Scenario {
    regressed: Some((30_000, 0.03)),
    ..HEALTHY
};

/// (false alarms out of `runs` healthy watches; the regressions' ms to rollback and errors, sorted)
fn tally(runs: u64, healthy: Scenario, bad: Scenario) -> (usize, Vec<u64>, Vec<u64>) {
    let false_alarms = (0..runs).filter(|i| run(*i, healthy).is_some()).count();
    let (mut ms, mut errors): (Vec<u64>, Vec<u64>) = (0..runs)
        .map(|i| run(1_000_000 + i, bad).expect("a regression is always caught"))
        .unzip();
    ms.sort_unstable();
    errors.sort_unstable();
    (false_alarms, ms, errors)
}

#[test]
fn a_short_watch_never_fails_a_healthy_release_and_always_catches_the_regression() {
    let quick = |s: Scenario| Scenario {
        watch: "1m",
        slice_ms: 250,
        ..s
    };
    let (false_alarms, ms, _) = tally(40, quick(HEALTHY), quick(REGRESSION));
    assert_eq!(false_alarms, 0);
    assert!(quantile(&ms, 0.5) < 10_000, "caught late: {ms:?}");
}

#[test]
#[ignore = "about 5 minutes: prints docs/analysis.md's table (see the module docs)"]
fn print_the_watch_table() {
    let runs = 1_000;
    let (false_alarms, ms, errors) = tally(runs, HEALTHY, REGRESSION);
    println!(
        "healthy 0.3 % at 1,000 rps watched 5 min against 60,000 requests at 0.3 %: {false_alarms}/{runs} rolled back"
    );
    println!(
        "regression to 3 % 30 s after 100 %: seconds to rollback p50 {:.2}, p95 {:.2}, max {:.2}; \
         errors served p50 {}, p95 {}, max {}",
        quantile(&ms, 0.5) as f64 / 1000.0,
        quantile(&ms, 0.95) as f64 / 1000.0,
        quantile(&ms, 1.0) as f64 / 1000.0,
        quantile(&errors, 0.5),
        quantile(&errors, 0.95),
        quantile(&errors, 1.0),
    );
}
