//! The error budget of each objective over the window, and the burn rates of the alert pairs, from an
//! app's minute buckets at a given time.

use super::ledger::{Counts, Ledger, minute_of};
use super::spec::{BurnAlert, Sli, SloSpec, percent};
use std::time::Duration;

/// What the budget looks like at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetReport {
    pub window: Duration,
    /// The start of the oldest minute with traffic still in the window (ms): how much of the window
    /// the budget has seen (counting starts when `[slo]` is first deployed).
    pub since_ms: Option<u64>,
    pub objectives: Vec<ObjectiveReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveReport {
    pub sli: Sli,
    /// The share of requests that must be good, e.g. 0.999.
    pub target: f64,
    /// "99.9% of requests succeed".
    pub description: String,
    /// Requests in the window, and the bad ones among them (failed, or slower than the objective).
    pub requests: u64,
    pub bad: u64,
    /// `1 − bad / allowed`, where `allowed` is `(1 − target)` of the window's requests: 1 before any
    /// bad request, 0 when exactly the budget is spent, below 0 when more was.
    pub budget_left: f64,
    /// One per alert pair, in the spec's order.
    pub burns: Vec<BurnReport>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnReport {
    pub alert: BurnAlert,
    /// Burn rates over the long and the short window (`None`: no requests in it).
    pub long: Option<f64>,
    pub short: Option<f64>,
    /// Both windows burn at least at the pair's rate.
    pub firing: bool,
}

impl ObjectiveReport {
    /// Spent: at least one bad request and nothing of the budget left.
    pub fn spent(&self) -> bool {
        self.bad > 0 && self.budget_left <= 0.0
    }
}

/// Whole minutes covering `d` (at least one).
fn minutes(d: Duration) -> u32 {
    u32::try_from(d.as_secs().div_ceil(60).max(1)).unwrap_or(u32::MAX)
}

/// The traffic of the last `n` minutes up to and including `now` (the current, partial, minute).
fn last(ledger: &Ledger, now: u32, n: u32) -> Counts {
    ledger.totals(now.saturating_sub(n - 1), now)
}

fn bad(c: &Counts, sli: Sli) -> u64 {
    match sli {
        Sli::Availability => c.errors,
        Sli::Latency => c.slow,
    }
    .min(c.requests)
}

/// The bad share of `c` over the share `target` allows (`None` without requests).
fn burn_rate(c: &Counts, sli: Sli, target: f64) -> Option<f64> {
    (c.requests > 0).then(|| bad(c, sli) as f64 / c.requests as f64 / (1.0 - target).max(1e-9))
}

fn budget_left(requests: u64, bad: u64, target: f64) -> f64 {
    let allowed = requests as f64 * (1.0 - target);
    if bad == 0 {
        1.0
    } else if allowed <= 0.0 {
        -1e9 // a 100 % objective allows nothing (the config refuses it)
    } else {
        1.0 - bad as f64 / allowed
    }
}

impl BudgetReport {
    /// The budget of each objective of `spec` at `now_ms`, from `ledger`.
    pub fn of(spec: &SloSpec, ledger: &Ledger, now_ms: u64) -> BudgetReport {
        let now = minute_of(now_ms);
        let window = last(ledger, now, minutes(spec.window));
        let first = now.saturating_sub(minutes(spec.window) - 1);
        let since_ms = ledger
            .buckets()
            .find(|b| b.minute >= first && b.minute <= now)
            .map(|b| u64::from(b.minute) * 60_000);
        let objectives = spec
            .objectives()
            .into_iter()
            .map(|(sli, target)| {
                let burns = spec
                    .alerts
                    .iter()
                    .map(|alert| {
                        let long = burn_rate(&last(ledger, now, minutes(alert.long)), sli, target);
                        let short =
                            burn_rate(&last(ledger, now, minutes(alert.short)), sli, target);
                        let over = |r: Option<f64>| r.is_some_and(|r| r >= alert.burn_rate);
                        BurnReport {
                            alert: *alert,
                            long,
                            short,
                            firing: over(long) && over(short),
                        }
                    })
                    .collect();
                let bad = bad(&window, sli);
                ObjectiveReport {
                    sli,
                    target,
                    description: spec.describe(sli),
                    requests: window.requests,
                    bad,
                    budget_left: budget_left(window.requests, bad, target),
                    burns,
                }
            })
            .collect();
        BudgetReport {
            window: spec.window,
            since_ms,
            objectives,
        }
    }

    /// Why deploys are held, if a budget is spent: one line per spent objective.
    pub fn spent(&self) -> Option<String> {
        let lines: Vec<String> = self
            .objectives
            .iter()
            .filter(|o| o.spent())
            .map(|o| {
                format!(
                    "{} over {}: {} of {} requests {}, {} of the budget used",
                    o.description,
                    span(self.window),
                    o.bad,
                    o.requests,
                    match o.sli {
                        Sli::Availability => "failed",
                        Sli::Latency => "were slower",
                    },
                    percent(1.0 - o.budget_left.max(-99.0)),
                )
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

/// "30d", "6h", "5m", "90s".
pub(crate) fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86_400 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s >= 3_600 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// The budget left of each objective as the window went by: `points` + 1 times from the first minute
/// with traffic in the window to now, each the budget left had the window ended then (the share of
/// the whole window's allowance already spent by that time). For the dashboard's burn-down chart.
pub fn burndown(spec: &SloSpec, ledger: &Ledger, now_ms: u64, points: u32) -> Vec<(u64, Vec<f64>)> {
    let now = minute_of(now_ms);
    let first = now.saturating_sub(minutes(spec.window) - 1);
    let Some(start) = ledger
        .buckets()
        .map(|b| b.minute)
        .find(|m| *m >= first && *m <= now)
    else {
        return Vec::new();
    };
    let objectives = spec.objectives();
    let total = ledger.totals(start, now);
    let step = (now - start).div_ceil(points.max(1)).max(1);
    let mut out = Vec::new();
    let mut spent = Counts::default();
    let mut buckets = ledger.buckets().filter(|b| b.minute >= start).peekable();
    let mut t = start;
    loop {
        while let Some(b) = buckets.next_if(|b| b.minute <= t) {
            spent.requests += u64::from(b.requests);
            spent.errors += u64::from(b.errors);
            spent.slow += u64::from(b.slow);
        }
        let left = objectives
            .iter()
            .map(|(sli, target)| budget_left(total.requests, bad(&spent, *sli), *target))
            .collect();
        out.push((u64::from(t) * 60_000, left));
        if t >= now {
            break;
        }
        t = (t + step).min(now);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::spec::LatencyObjective;

    const MIN: u64 = 60_000;

    fn spec() -> SloSpec {
        SloSpec::new(
            Some(0.999),
            Some(LatencyObjective {
                percentile: 99.0,
                max: Duration::from_millis(300),
            }),
        )
    }

    /// `minutes` busy minutes ending at minute `end`, each with these counts.
    fn steady(l: &mut Ledger, end: u32, minutes: u32, per_minute: (u64, u64, u64)) {
        for m in end + 1 - minutes..=end {
            l.add(m, per_minute.0, per_minute.1, per_minute.2);
        }
    }

    #[test]
    fn the_budget_is_a_share_of_the_windows_requests() {
        let mut l = Ledger::default();
        // 10 days of 1,000 requests a minute: 14.4 M requests, 0.1 % of them may fail.
        let now = 100_000u32;
        steady(&mut l, now, 10 * 1_440, (1_000, 0, 0));
        l.add(now, 0, 3_600, 7_200); // a quarter of the availability budget, 5 % of the latency one
        let r = BudgetReport::of(&spec(), &l, u64::from(now) * MIN + 5_000);
        let [a, lat] = &r.objectives[..] else {
            panic!("{r:?}")
        };
        assert_eq!((a.requests, a.bad), (14_400_000, 3_600));
        assert!((a.budget_left - 0.75).abs() < 1e-9, "{}", a.budget_left);
        assert!((lat.budget_left - 0.95).abs() < 1e-9, "{}", lat.budget_left);
        assert_eq!(r.since_ms, Some(u64::from(now + 1 - 14_400) * MIN));
        assert_eq!(r.spent(), None);
    }

    #[test]
    fn a_spent_budget_holds_and_says_why() {
        let mut l = Ledger::default();
        steady(&mut l, 5_000, 60, (100, 1, 0)); // 1 % errors against 0.1 % allowed
        let r = BudgetReport::of(&spec(), &l, 5_000 * MIN);
        assert!(r.objectives[0].spent());
        assert!((r.objectives[0].budget_left - -9.0).abs() < 1e-9);
        assert!(!r.objectives[1].spent(), "no slow request");
        let why = r.spent().expect("spent");
        assert_eq!(
            why,
            "99.9% of requests succeed over 30d: 60 of 6000 requests failed, 1000% of the budget used"
        );
    }

    #[test]
    fn minutes_older_than_the_window_no_longer_count() {
        let mut l = Ledger::default();
        l.add(1_000, 100, 100, 0); // a bad minute…
        let mut s = spec();
        s.window = Duration::from_secs(3_600);
        l.add(1_000 + 60, 100, 0, 0); // …an hour later, out of the window
        let r = BudgetReport::of(&s, &l, (1_000 + 60) * MIN);
        assert_eq!((r.objectives[0].requests, r.objectives[0].bad), (100, 0));
        assert_eq!(r.objectives[0].budget_left, 1.0);
        let r = BudgetReport::of(&s, &l, (1_000 + 59) * MIN);
        assert!(
            r.objectives[0].spent(),
            "still in the window a minute earlier"
        );
    }

    #[test]
    fn a_pair_fires_only_while_both_windows_burn_fast_enough() {
        let s = spec();
        let now = 10_000u32;
        // An hour at 2 % errors: 20× the 0.1 % allowed.
        let mut l = Ledger::default();
        steady(&mut l, now, 60, (1_000, 20, 0));
        let r = BudgetReport::of(&s, &l, u64::from(now) * MIN);
        let fast = r.objectives[0].burns[0];
        assert!((fast.long.unwrap() - 20.0).abs() < 1e-9);
        assert!(fast.firing, "1h and 5m both at 20× ≥ 14.4×");
        assert!(
            r.objectives[0].burns[1].firing,
            "6h at 20× too (only an hour of traffic)"
        );
        // The same hour, then 10 clean minutes: the short window stops the page at once.
        let mut l2 = l.clone();
        steady(&mut l2, now + 10, 10, (1_000, 0, 0));
        let r = BudgetReport::of(&s, &l2, u64::from(now + 10) * MIN);
        let fast = r.objectives[0].burns[0];
        assert!(fast.long.unwrap() > 14.4, "the hour still burns fast");
        assert_eq!(fast.short, Some(0.0));
        assert!(!fast.firing);
        // A 5-minute spike alone does not page: the long window has too little of it.
        let mut l3 = Ledger::default();
        steady(&mut l3, now - 5, 55, (1_000, 0, 0));
        steady(&mut l3, now, 5, (1_000, 50, 0));
        let r = BudgetReport::of(&s, &l3, u64::from(now) * MIN);
        let fast = r.objectives[0].burns[0];
        assert!(
            fast.short.unwrap() >= 14.4 && fast.long.unwrap() < 14.4,
            "{fast:?}"
        );
        assert!(!fast.firing);
        // No traffic: no burn rate, nothing fires.
        let r = BudgetReport::of(&s, &Ledger::default(), u64::from(now) * MIN);
        assert_eq!(r.objectives[0].burns[0].long, None);
        assert_eq!(r.objectives[0].budget_left, 1.0);
        assert_eq!(r.since_ms, None);
    }

    #[test]
    fn the_burndown_starts_with_the_first_traffic_and_ends_with_the_budget_left() {
        let mut s = spec();
        s.latency = None;
        let mut l = Ledger::default();
        steady(&mut l, 1_100, 100, (1_000, 0, 0));
        l.add(1_050, 0, 50, 0); // half the budget in one minute
        let points = burndown(&s, &l, 1_100 * MIN, 10);
        assert_eq!(points.first().map(|p| p.0), Some(1_001 * MIN));
        assert_eq!(points.last().map(|p| p.0), Some(1_100 * MIN));
        assert_eq!(points.len(), 11);
        assert!(points.iter().all(|(t, left)| {
            let want = if *t >= 1_050 * MIN { 0.5 } else { 1.0 };
            (left[0] - want).abs() < 1e-9
        }));
        let report = BudgetReport::of(&s, &l, 1_100 * MIN);
        assert_eq!(
            points.last().unwrap().1[0],
            report.objectives[0].budget_left
        );
        assert!(burndown(&s, &Ledger::default(), 1_100 * MIN, 10).is_empty());
    }

    #[test]
    fn spans_read_short() {
        assert_eq!(span(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(span(Duration::from_secs(6 * 3_600)), "6h");
        assert_eq!(span(Duration::from_secs(300)), "5m");
        assert_eq!(span(Duration::from_secs(90)), "90s");
    }
}
