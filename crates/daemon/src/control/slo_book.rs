//! What the controller keeps of an app's SLO (`[slo]` of its stable release), decided without IO: the
//! minute ledger over the window (`slipway_core::slo`), the minutes counted since the last write to the
//! store, and each release's counters at the last count — the proxy's counters are cumulative, so a
//! minute gets the difference. Fed from the once-a-second snapshots (`analysis_round`); written and
//! loaded by `slo_round`.

use slipway_core::analysis::Window;
use slipway_core::release::Version;
use slipway_core::slo::{Bucket, BudgetReport, Counts, Ledger, Sli, SloSpec, minute_of};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Counts are written to the store this often (and when the daemon stops or hands over).
pub(crate) const WRITE_EVERY_MS: u64 = 10_000;

pub(crate) struct SloBook {
    pub(crate) spec: SloSpec,
    pub(crate) ledger: Ledger,
    /// Counted since the last write, per minute.
    unwritten: BTreeMap<u32, Counts>,
    /// Each release's cumulative counts at the last count.
    seen: BTreeMap<Version, Counts>,
    pub(crate) next_write_at: u64,
    /// What the last look found: a budget spent, and the alert pairs firing (objective, pair index).
    spent: bool,
    firing: BTreeSet<(Sli, usize)>,
}

impl SloBook {
    /// A book for `spec` over the stored minutes, counting from the releases' counters `now_counts`
    /// on (what they counted before is not this book's: it was written, or it predates `[slo]`).
    pub(crate) fn new(
        spec: SloSpec,
        stored: Vec<Bucket>,
        now_counts: &BTreeMap<Version, Window>,
        now: u64,
    ) -> SloBook {
        let mut book = SloBook {
            ledger: Ledger::from_buckets(stored),
            seen: BTreeMap::new(),
            spec,
            unwritten: BTreeMap::new(),
            next_write_at: now + WRITE_EVERY_MS,
            spent: false,
            firing: BTreeSet::new(),
        };
        book.seen = book.counts_of(now_counts);
        book.ledger.prune(book.keep_from(now));
        // What the stored minutes already say is no news (a restarted daemon tells nothing again).
        book.changes(now);
        book
    }

    /// What changed since the last look, as events (kind, text): a budget became spent or stopped
    /// being, an alert pair started or stopped firing.
    pub(crate) fn changes(&mut self, now: u64) -> Vec<(&'static str, String)> {
        let report = self.report(now);
        let mut out = Vec::new();
        let spent = report.spent();
        if spent.is_some() != self.spent {
            self.spent = spent.is_some();
            out.push(match spent {
                Some(why) if self.spec.hold_deploys => (
                    "slo_budget_spent",
                    format!("the error budget is spent: {why}; deploys are held (`slipway deploy --override-slo \"reason\"` deploys anyway)"),
                ),
                Some(why) => (
                    "slo_budget_spent",
                    format!("the error budget is spent: {why} (deploys are not held: hold_deploys = false)"),
                ),
                None => (
                    "slo_budget_restored",
                    "the error budget is no longer spent: deploys are no longer held".to_string(),
                ),
            });
        }
        let window = report.window;
        let mut firing = BTreeSet::new();
        for o in &report.objectives {
            for (i, b) in o.burns.iter().enumerate() {
                let key = (o.sli, i);
                if b.firing {
                    firing.insert(key);
                }
                if b.firing == self.firing.contains(&key) {
                    continue;
                }
                let rate = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.1}×"));
                let pair = format!(
                    "{} {}/{} at {}× or more",
                    o.sli.as_str(),
                    span(b.alert.long),
                    span(b.alert.short),
                    b.alert.burn_rate
                );
                let now_rates = format!(
                    "{} {}, {} {}",
                    span(b.alert.long),
                    rate(b.long),
                    span(b.alert.short),
                    rate(b.short)
                );
                out.push(if b.firing {
                    (
                        "slo_alert_firing",
                        format!(
                            "burn-rate alert firing: {pair} ({now_rates}; at that rate {:.0}% of the {} budget burns in {})",
                            b.alert.budget_share(window) * 100.0,
                            span(window),
                            span(b.alert.long)
                        ),
                    )
                } else {
                    ("slo_alert_resolved", format!("burn-rate alert resolved: {pair} ({now_rates})"))
                });
            }
        }
        self.firing = firing;
        out
    }

    /// The first minute still in the window at `now`.
    pub(crate) fn keep_from(&self, now: u64) -> u32 {
        let minutes = u32::try_from(self.spec.window.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
        (minute_of(now) + 1).saturating_sub(minutes)
    }

    fn counts_of(&self, windows: &BTreeMap<Version, Window>) -> BTreeMap<Version, Counts> {
        let slow_above = self
            .spec
            .latency
            .map(|l| u64::try_from(l.max.as_micros()).unwrap_or(u64::MAX));
        windows
            .iter()
            .map(|(v, w)| {
                let slow = slow_above.map_or(0, |t| w.latency.count_above(t));
                let c = Counts {
                    requests: w.requests,
                    errors: w.errors.min(w.requests),
                    slow,
                };
                (*v, c)
            })
            .collect()
    }

    /// Another spec (the stable release changed): counting goes on with its objectives and window
    /// from these counters on; the minutes already counted stay (a changed latency time applies
    /// from now on).
    pub(crate) fn respec(&mut self, spec: SloSpec, now_counts: &BTreeMap<Version, Window>) {
        if spec != self.spec {
            self.spec = spec;
            self.seen = self.counts_of(now_counts);
        }
    }

    /// Adds what every release answered since the last count to the minute of `now`, and forgets
    /// the minutes that left the window. A release's counters that went down (its counters were made
    /// anew) count from their new value.
    pub(crate) fn count(&mut self, windows: &BTreeMap<Version, Window>, now: u64) {
        let counts = self.counts_of(windows);
        let mut minute = Counts::default();
        for (v, c) in &counts {
            let before = self.seen.get(v).copied().unwrap_or_default();
            minute.requests += c.requests.saturating_sub(before.requests);
            minute.errors += c.errors.saturating_sub(before.errors);
            minute.slow += c.slow.saturating_sub(before.slow);
        }
        // A release gone from the snapshot is forgotten: if it comes back, its counters are new.
        self.seen = counts;
        if minute == Counts::default() {
            return;
        }
        let m = minute_of(now);
        self.ledger
            .add(m, minute.requests, minute.errors, minute.slow);
        let u = self.unwritten.entry(m).or_default();
        u.requests += minute.requests;
        u.errors += minute.errors;
        u.slow += minute.slow;
        self.ledger.prune(self.keep_from(now));
    }

    /// The minutes to write now, if a write is due (`force`: the daemon stops). They are taken: a
    /// failed write loses them from the store, never counts them twice.
    pub(crate) fn take_due(&mut self, now: u64, force: bool) -> Option<Vec<(u32, Counts)>> {
        if !force && now < self.next_write_at {
            return None;
        }
        self.next_write_at = now + WRITE_EVERY_MS;
        Some(std::mem::take(&mut self.unwritten).into_iter().collect())
    }

    pub(crate) fn report(&self, now: u64) -> BudgetReport {
        BudgetReport::of(&self.spec, &self.ledger, now)
    }

    /// Why a deploy is held now, if it is.
    pub(crate) fn hold(&self, now: u64) -> Option<String> {
        if !self.spec.hold_deploys {
            return None;
        }
        self.report(now).spent()
    }
}

/// "30d", "6h", "5m".
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86_400 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s >= 3_600 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ => format!("{}m", s / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::slo::LatencyObjective;
    use std::time::Duration;

    const MIN: u64 = 60_000;

    fn spec() -> SloSpec {
        let mut s = SloSpec::new(
            Some(0.99),
            Some(LatencyObjective {
                percentile: 99.0,
                max: Duration::from_millis(300),
            }),
        );
        s.window = Duration::from_secs(3_600);
        s
    }

    fn window(requests: u64, errors: u64, slow: u64) -> Window {
        let mut w = Window::default();
        for i in 0..requests {
            w.record(if i < slow { 900_000 } else { 1_000 }, i < errors);
        }
        w
    }

    #[test]
    fn each_minute_gets_what_the_releases_answered_in_it() {
        let before = BTreeMap::from([(1, window(50, 50, 0))]);
        let mut book = SloBook::new(spec(), Vec::new(), &before, 100 * MIN);
        // v1's 50 earlier requests are not this book's; 100 more (2 errors, 1 slow) are.
        book.count(
            &BTreeMap::from([(1, window(150, 52, 1))]),
            100 * MIN + 1_000,
        );
        // A new release, and v1 again, in the next minute.
        let both = BTreeMap::from([(1, window(160, 52, 1)), (2, window(10, 1, 0))]);
        book.count(&both, 101 * MIN);
        let got: Vec<(u32, u32, u32, u32)> = book
            .ledger
            .buckets()
            .map(|b| (b.minute, b.requests, b.errors, b.slow))
            .collect();
        assert_eq!(got, [(100, 100, 2, 1), (101, 20, 1, 0)]);
        let r = book.report(101 * MIN);
        assert_eq!((r.objectives[0].requests, r.objectives[0].bad), (120, 3));
        assert!(r.objectives[0].spent(), "3 errors of 120 against 1 %");
        assert!(book.hold(101 * MIN).is_some());
        book.spec.hold_deploys = false;
        assert_eq!(book.hold(101 * MIN), None);
    }

    #[test]
    fn writes_come_every_few_seconds_and_take_what_was_counted() {
        let mut book = SloBook::new(spec(), Vec::new(), &BTreeMap::new(), 100 * MIN);
        book.count(&BTreeMap::from([(1, window(10, 0, 0))]), 100 * MIN);
        assert_eq!(book.take_due(100 * MIN + 1_000, false), None);
        let due = book
            .take_due(100 * MIN + WRITE_EVERY_MS, false)
            .expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0, due[0].1.requests), (100, 10));
        assert_eq!(
            book.take_due(100 * MIN + WRITE_EVERY_MS, true),
            Some(vec![])
        );
    }

    #[test]
    fn stored_minutes_come_back_and_old_ones_are_dropped() {
        let b = |minute| Bucket {
            minute,
            requests: 10,
            errors: 1,
            slow: 0,
        };
        let book = SloBook::new(
            spec(),
            vec![b(10), b(100), b(159)],
            &BTreeMap::new(),
            159 * MIN,
        );
        let minutes: Vec<u32> = book.ledger.buckets().map(|b| b.minute).collect();
        assert_eq!(minutes, [100, 159], "an hour's window");
        assert_eq!(book.report(159 * MIN).objectives[0].requests, 20);
    }

    #[test]
    fn a_budget_spent_and_an_alert_firing_are_told_once_each_way() {
        let mut two_pairs = spec();
        two_pairs.alerts.truncate(2); // 1h/5m at 14.4×, 6h/30m at 6×
        let mut book = SloBook::new(two_pairs, Vec::new(), &BTreeMap::new(), 100 * MIN);
        assert!(book.changes(100 * MIN).is_empty(), "nothing yet");
        book.count(&BTreeMap::from([(1, window(100, 50, 0))]), 100 * MIN);
        let told = book.changes(100 * MIN);
        let kinds: Vec<&str> = told.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            ["slo_budget_spent", "slo_alert_firing", "slo_alert_firing"],
            "{told:?}"
        );
        assert!(told[0].1.contains("deploys are held"), "{}", told[0].1);
        assert!(
            told[1].1.starts_with(
                "burn-rate alert firing: availability 1h/5m at 14.4× or more (1h 50.0×, 5m 50.0×"
            ),
            "{}",
            told[1].1
        );
        assert!(book.changes(100 * MIN + 1_000).is_empty(), "told once");
        // Ten clean minutes later the short windows are clean: the alerts resolve; the budget is
        // still spent.
        let mut clean = window(100, 50, 0);
        for m in 101..=110 {
            clean.requests += 100;
            book.count(&BTreeMap::from([(1, clean.clone())]), m * MIN);
        }
        let told = book.changes(110 * MIN);
        assert!(
            told.iter().all(|(k, _)| *k == "slo_alert_resolved") && told.len() == 2,
            "{told:?}"
        );
        // Past the hour, the bad minute leaves the window.
        book.count(&BTreeMap::from([(1, clean)]), 161 * MIN);
        let told = book.changes(161 * MIN);
        assert_eq!(
            told.first().map(|t| t.0),
            Some("slo_budget_restored"),
            "{told:?}"
        );
        // A book made from stored minutes that are already spent tells nothing new.
        let stored = vec![Bucket {
            minute: 200,
            requests: 100,
            errors: 50,
            slow: 0,
        }];
        let mut again = SloBook::new(spec(), stored, &BTreeMap::new(), 200 * MIN);
        assert!(again.changes(200 * MIN).is_empty());
    }

    #[test]
    fn counters_made_anew_count_from_their_new_value() {
        let mut book = SloBook::new(
            spec(),
            Vec::new(),
            &BTreeMap::from([(1, window(100, 0, 0))]),
            0,
        );
        book.count(&BTreeMap::from([(1, window(5, 0, 0))]), 1_000);
        book.count(&BTreeMap::from([(1, window(8, 0, 0))]), 2_000);
        assert_eq!(book.report(2_000).objectives[0].requests, 3);
        // A changed spec counts from the counters then, at its own latency time.
        let mut other = spec();
        other.latency = None;
        book.respec(other, &BTreeMap::from([(1, window(8, 0, 0))]));
        book.count(&BTreeMap::from([(1, window(9, 0, 0))]), 3_000);
        assert_eq!(book.report(3_000).objectives[0].requests, 4);
    }
}
