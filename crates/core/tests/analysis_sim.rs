//! Simulated canaries judged the way the controller judges them: cumulative counts since the analysis
//! started, re-judged every 50 simulated milliseconds (the controller's `JUDGE_EVERY_MS`), rolled back at
//! the first Fail. Seeded and deterministic.
//!
//! Prints the measured false-alarm rates and detection times that docs/analysis.md quotes:
//! `cargo test -p slipway-core --test analysis_sim -- --nocapture --test-threads 1`

use slipway_core::analysis::{Judgement, Settings, Window, judge_error_rate_with, judge_latency};
use slipway_core::verdict::Verdict;
use std::time::Duration;

/// xorshift64* — small, fast, good enough for simulation.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Binomial(n, p) by inversion (p is small in these scenarios, so the walk is short).
    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let u = self.unit();
        let mut pk = (1.0 - p).powf(n as f64);
        let mut cdf = pk;
        let mut k = 0;
        while cdf < u && k < n {
            pk *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
            k += 1;
            cdf += pk;
        }
        k
    }
    /// A standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
    /// A log-normal latency in µs with the given median (ms) and log-scale spread.
    fn latency_micros(&mut self, median_ms: f64, sigma: f64) -> u64 {
        (median_ms * 1000.0 * (sigma * self.normal()).exp()) as u64
    }
}

#[derive(Clone, Copy)]
struct Release {
    rps: u64,
    error_rate: f64,
    /// Median latency (ms) and log-scale spread; `None`: latencies are not simulated.
    latency: Option<(f64, f64)>,
}

/// How often the controller judges a running analysis (`wake::JUDGE_EVERY_MS` in the daemon).
const SLICE_MS: u64 = 50;

impl Release {
    /// Serves the requests of slice number `slice` (1-based): `rps` a second, spread evenly.
    fn serve_slice(&self, slice: u64, rng: &mut Rng, w: &mut Window) {
        let n = self.rps * slice * SLICE_MS / 1000 - self.rps * (slice - 1) * SLICE_MS / 1000;
        match self.latency {
            None => {
                w.requests += n;
                w.errors += rng.binomial(n, self.error_rate);
            }
            Some((median, sigma)) => {
                for _ in 0..n {
                    let error = self.error_rate > 0.0 && rng.unit() < self.error_rate;
                    w.record(rng.latency_micros(median, sigma), error);
                }
            }
        }
    }
}

struct Run {
    /// Milliseconds to the first Fail and canary errors served by then.
    failed: Option<(u64, u64)>,
    ever_passed: bool,
    last: Verdict,
}

fn simulate(
    seed: u64,
    canary: Release,
    stable: Release,
    seconds: u64,
    judge: &dyn Fn(&Window, &Window) -> Judgement,
) -> Run {
    let mut rng = Rng::new(seed);
    let (mut c, mut s) = (Window::default(), Window::default());
    let mut run = Run {
        failed: None,
        ever_passed: false,
        last: Verdict::Inconclusive,
    };
    for slice in 1..=seconds * 1000 / SLICE_MS {
        canary.serve_slice(slice, &mut rng, &mut c);
        stable.serve_slice(slice, &mut rng, &mut s);
        let j = judge(&c, &s);
        run.last = j.verdict;
        match j.verdict {
            Verdict::Fail => {
                run.failed = Some((slice * SLICE_MS, c.errors));
                return run;
            }
            Verdict::Pass => run.ever_passed = true,
            Verdict::Inconclusive => {}
        }
    }
    run
}

fn errors_vs_stable(max: f64) -> impl Fn(&Window, &Window) -> Judgement {
    errors_vs_stable_with(Settings::default(), max)
}

fn errors_vs_stable_with(settings: Settings, max: f64) -> impl Fn(&Window, &Window) -> Judgement {
    move |c, s| judge_error_rate_with(&settings, c, Some(s), max, true)
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn errors(rps: u64, error_rate: f64) -> Release {
    Release {
        rps,
        error_rate,
        latency: None,
    }
}

/// Runs `runs` canaries and counts (false) Fails, passes at the end, and passes ever seen.
fn tally(
    runs: u64,
    seed: u64,
    canary: Release,
    stable: Release,
    judge: &dyn Fn(&Window, &Window) -> Judgement,
) -> (u64, u64, u64) {
    let (mut fails, mut passes_at_end, mut ever_passed) = (0, 0, 0);
    for i in 0..runs {
        let run = simulate(seed + i, canary, stable, 60, judge);
        fails += run.failed.is_some() as u64;
        passes_at_end += (run.last == Verdict::Pass) as u64;
        ever_passed += run.ever_passed as u64;
    }
    (fails, passes_at_end, ever_passed)
}

#[test]
fn a_healthy_canaries_almost_never_fail_and_mostly_pass() {
    let (fails, passes, _) = tally(
        1000,
        1,
        errors(100, 0.003),
        errors(900, 0.003),
        &errors_vs_stable(0.01),
    );
    println!(
        "(a) healthy canary 0.3% vs stable 0.3%, max +1%, 100/900 rps, 60 s, judged every 50 ms: \
         {fails}/1000 false Fails, {passes}/1000 Pass at 60 s"
    );
    assert_eq!(fails, 0, "{fails} false rollbacks in 1000 healthy canaries");
    assert!(
        passes >= 900,
        "only {passes} of 1000 healthy canaries passed"
    );
}

#[test]
fn a_canaries_exactly_at_the_bound_rarely_fail() {
    // The hardest case for the false-alarm guarantee: exactly stable + max (still acceptable, so a Pass
    // is fine). Ville's bound is alpha; the stable release's estimated rate matters most at a 50/50 split.
    let mut lines = Vec::new();
    for (canary_rps, stable_rps) in [(100, 900), (500, 500)] {
        let (fails, _, passes) = tally(
            1000,
            7,
            errors(canary_rps, 0.013),
            errors(stable_rps, 0.003),
            &errors_vs_stable(0.01),
        );
        lines.push(format!(
            "(a') canary 1.3% vs stable 0.3% (exactly at +1%), {canary_rps}/{stable_rps} rps, 60 s: \
             {fails}/1000 Fails, {passes}/1000 ever Pass"
        ));
        let alpha = Settings::default().alpha;
        assert!(
            fails as f64 <= 1000.0 * alpha,
            "{fails}/1000 Fails at the exact bound"
        );
    }
    println!("{}", lines.join("\n"));
}

#[test]
fn a_canaries_at_the_edge_of_the_indifference_zone_rarely_pass() {
    // stable + 2 × max is where the pass test's guarantee (beta = 5 %) applies.
    let mut lines = Vec::new();
    for (canary_rps, stable_rps) in [(100, 900), (500, 500)] {
        let (fails, _, passes) = tally(
            1000,
            8,
            errors(canary_rps, 0.023),
            errors(stable_rps, 0.003),
            &errors_vs_stable(0.01),
        );
        lines.push(format!(
            "(a'') canary 2.3% vs stable 0.3% (+2%, edge of the indifference zone), \
             {canary_rps}/{stable_rps} rps, 60 s: {passes}/1000 ever Pass, {fails}/1000 Fail"
        ));
        assert!(passes <= 50, "{passes}/1000 passed at the zone's edge");
    }
    println!("{}", lines.join("\n"));
}

/// The seed's bad canary (3 % errors vs a stable 0.3 %, `max +1%` against stable) at a 10 % weight of
/// `total_rps`, `runs` times: sorted milliseconds to the Fail and canary errors served by then.
fn seed_runs(runs: u64, total_rps: u64, settings: Settings) -> (Vec<u64>, Vec<u64>) {
    let (mut ms, mut served) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let run = simulate(
            10_000 + i,
            errors(total_rps / 10, 0.03),
            errors(total_rps * 9 / 10, 0.003),
            60,
            &errors_vs_stable_with(settings, 0.01),
        );
        let (t, e) = run.failed.unwrap_or_else(|| panic!("run {i} never failed"));
        ms.push(t);
        served.push(e);
    }
    ms.sort_unstable();
    served.sort_unstable();
    (ms, served)
}

fn seconds(ms: u64) -> String {
    format!("{:.2}", ms as f64 / 1000.0)
}

#[test]
fn b_seed_scenario_fails_within_seconds() {
    let mut lines = Vec::new();
    for total in [1_000, 10_000] {
        let (ms, served) = seed_runs(1000, total, Settings::default());
        let within_10s = ms.iter().filter(|t| **t <= 10_000).count();
        lines.push(format!(
            "(b) canary 3% vs stable 0.3%, max +1%, 10% of {total} rps, 1000 runs: all Fail; seconds to \
             Fail p50 {} p95 {} max {} ({within_10s}/1000 within 10 s); canary errors served p50 {} p95 {} \
             max {}",
            seconds(quantile(&ms, 0.5)),
            seconds(quantile(&ms, 0.95)),
            seconds(quantile(&ms, 1.0)),
            quantile(&served, 0.5),
            quantile(&served, 0.95),
            quantile(&served, 1.0),
        ));
        assert!(quantile(&ms, 0.95) <= 10_000, "{}", lines.last().unwrap());
        assert!(quantile(&served, 0.95) <= 50, "{}", lines.last().unwrap());
    }
    println!("{}", lines.join("\n"));
}

#[test]
fn e_alpha_trades_time_to_decide_for_fails_at_the_exact_bound() {
    // The table of docs/analysis.md, "Choosing alpha". A healthy canary (0.3 % vs 0.3 %) fails less
    // often than one exactly at its bound, so the bound's column caps false rollbacks of healthy ones too.
    let settings = |alpha, stable_margin| Settings {
        alpha,
        stable_margin,
        ..Settings::default()
    };
    let mut lines = Vec::new();
    for (alpha, margin) in [(0.01, 1.0), (0.01, 0.5), (0.05, 0.5), (0.1, 0.5)] {
        let s = settings(alpha, margin);
        let (ms, served) = seed_runs(1000, 1_000, s);
        let within_10s = ms.iter().filter(|t| **t <= 10_000).count();
        let (at_bound, _, _) = tally(
            1000,
            7,
            errors(100, 0.013),
            errors(900, 0.003),
            &errors_vs_stable_with(s, 0.01),
        );
        lines.push(format!(
            "(e) alpha {alpha}, stable_margin {margin}: seed at 1k rps seconds p50 {} p95 {} max {} \
             ({within_10s}/1000 within 10 s), errors p95 {}; exactly at the bound {at_bound}/1000 Fail",
            seconds(quantile(&ms, 0.5)),
            seconds(quantile(&ms, 0.95)),
            seconds(quantile(&ms, 1.0)),
            quantile(&served, 0.95),
        ));
        assert!(
            at_bound as f64 <= 1000.0 * alpha,
            "{}",
            lines.last().unwrap()
        );
    }
    println!("{}", lines.join("\n"));
}

#[test]
fn c_a_trickle_of_canary_traffic_never_passes_and_healthy_never_fails() {
    // 5 rps canary next to 45 rps stable: 300 canary requests in a minute.
    let (fails, _, passes) = tally(
        500,
        20_000,
        errors(5, 0.003),
        errors(45, 0.003),
        &errors_vs_stable(0.01),
    );
    let (bad_fails, _, bad_passes) = tally(
        500,
        30_000,
        errors(5, 0.03),
        errors(45, 0.003),
        &errors_vs_stable(0.01),
    );
    println!(
        "(c) 5 rps canary / 45 rps stable, 60 s: healthy {fails}/500 Fail, {passes}/500 ever Pass \
         (the rest hold: Inconclusive); 3% canary {bad_fails}/500 Fail, {bad_passes}/500 ever Pass"
    );
    assert_eq!(fails, 0);
    assert_eq!(passes, 0);
    assert_eq!(bad_passes, 0);
}

fn latency_release(rps: u64, median_ms: f64) -> Release {
    Release {
        rps,
        error_rate: 0.0,
        latency: Some((median_ms, 0.5)),
    }
}

fn p95_vs_stable(max: Duration) -> impl Fn(&Window, &Window) -> Judgement {
    move |c, s| judge_latency(c, Some(s), 95.0, max, true)
}

#[test]
fn d_latency_regression_fails_within_seconds() {
    let mut ms = Vec::new();
    for i in 0..100 {
        let run = simulate(
            40_000 + i,
            latency_release(100, 200.0),
            latency_release(900, 100.0),
            60,
            &p95_vs_stable(Duration::from_millis(50)),
        );
        let (t, _) = run.failed.unwrap_or_else(|| panic!("run {i} never failed"));
        ms.push(t);
    }
    ms.sort_unstable();
    println!(
        "(d) canary p95 2x stable (≈455 ms vs ≈228 ms), max +50 ms, 100/900 rps, 100 runs: all Fail; \
         seconds to Fail median {} max {}",
        seconds(quantile(&ms, 0.5)),
        seconds(quantile(&ms, 1.0))
    );
    assert!(quantile(&ms, 1.0) <= 5_000);
}

#[test]
fn d_equal_latency_rarely_fails() {
    let mut lines = Vec::new();
    for (max_ms, runs) in [(0, 200), (50, 100)] {
        let (fails, passes, _) = tally(
            runs,
            50_000 + max_ms,
            latency_release(100, 100.0),
            latency_release(900, 100.0),
            &p95_vs_stable(Duration::from_millis(max_ms)),
        );
        lines.push(format!(
            "(d') canary p95 = stable p95, max +{max_ms} ms, 100/900 rps, 60 s: {fails}/{runs} false \
             Fails, {passes}/{runs} Pass at 60 s"
        ));
        let alpha = Settings::default().alpha;
        assert!(
            fails as f64 <= runs as f64 * alpha,
            "{fails}/{runs} false Fails"
        );
        if max_ms > 0 {
            assert!(passes * 10 >= runs * 9, "only {passes}/{runs} passed");
        }
    }
    println!("{}", lines.join("\n"));
}

/// The SLO gate (`[slo] availability = "99.9%"`, the fast pair's 14.4×): the canary alone against its
/// gate template's absolute error-rate bound, at a 10 % weight of 1k rps.
#[test]
fn f_slo_gate_fails_a_fast_burning_canary_and_never_a_healthy_one() {
    use slipway_core::slo::SloSpec;
    use slipway_core::spec::Check;
    let template = SloSpec::new(Some(0.999), None)
        .gate_template()
        .expect("a gate");
    let [Check::ErrorRate { max, .. }] = template.checks[..] else {
        panic!("{template:?}")
    };
    let settings = Settings::default().per_check(template.checks.len());
    let gate = move |c: &Window, _: &Window| judge_error_rate_with(&settings, c, None, max, false);
    let mut lines = Vec::new();
    for (what, rate) in [("the seed's 3 %", 0.03), ("10 %", 0.1)] {
        let (mut ms, mut served) = (Vec::new(), Vec::new());
        for i in 0..1000 {
            let run = simulate(20_000 + i, errors(100, rate), errors(900, 0.003), 60, &gate);
            let (t, e) = run.failed.unwrap_or_else(|| panic!("run {i} never failed"));
            ms.push(t);
            served.push(e);
        }
        ms.sort_unstable();
        served.sort_unstable();
        lines.push(format!(
            "(f) SLO gate 99.9% at 14.4× (canary above {:.2}%), canary {what} errors at 10% of 1000 rps, \
             1000 runs: all Fail; seconds to Fail p50 {} p95 {} max {}; canary errors served p50 {} p95 {} max {}",
            max * 100.0,
            seconds(quantile(&ms, 0.5)),
            seconds(quantile(&ms, 0.95)),
            seconds(quantile(&ms, 1.0)),
            quantile(&served, 0.5),
            quantile(&served, 0.95),
            quantile(&served, 1.0),
        ));
    }
    let (healthy, _, _) = tally(1000, 21, errors(100, 0.003), errors(900, 0.003), &gate);
    let (at_bound, _, _) = tally(1000, 22, errors(100, max), errors(900, 0.003), &gate);
    lines.push(format!(
        "(f') SLO gate, 60 s at 100 canary rps: healthy 0.3% {healthy}/1000 Fail; exactly at the bound \
         {at_bound}/1000 Fail"
    ));
    println!("{}", lines.join("\n"));
    assert_eq!(healthy, 0);
    assert!(
        at_bound as f64 <= 1000.0 * settings.alpha,
        "{at_bound}/1000"
    );
}
