//! `[slo]` as the rest of slipway sees it: the objectives, the window, the burn-rate alert pairs and
//! what the budget is used for.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The budget's window unless `[slo] window` says otherwise.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSpec {
    /// The share of requests that must succeed (not 5xx, not a proxy failure), e.g. 0.999.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    /// The share of requests that must be answered within a time, e.g. p99 ≤ 300 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyObjective>,
    /// The budget's rolling window.
    pub window: Duration,
    /// The burn-rate alert pairs; the fastest is also the canary gate's bound.
    pub alerts: Vec<BurnAlert>,
    /// Fail a canary that would burn the budget at the fastest pair's rate.
    pub canary_gate: bool,
    /// Refuse `slipway deploy` while a budget is spent (unless `--override-slo "reason"`).
    pub hold_deploys: bool,
}

/// `latency_pNN = "300ms"`: at least NN % of requests answered within `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyObjective {
    pub percentile: f64,
    pub max: Duration,
}

/// One multi-window rule: it fires while both windows burn the budget at least `burn_rate` times as
/// fast as the window allows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurnAlert {
    pub long: Duration,
    pub short: Duration,
    pub burn_rate: f64,
}

impl BurnAlert {
    /// The share of a `window`'s budget this rule has seen burn when it starts firing.
    pub fn budget_share(&self, window: Duration) -> f64 {
        self.burn_rate * self.long.as_secs_f64() / window.as_secs_f64().max(1.0)
    }
}

/// The SRE workbook's pairs for a 30-day budget: page at 2 % of it burnt in an hour (14.4×) or 5 % in
/// six hours (6×), ticket at 10 % in a day (3×) or in three days (1×).
pub fn default_alerts() -> Vec<BurnAlert> {
    let h = |n: u64| Duration::from_secs(n * 3_600);
    let m = |n: u64| Duration::from_secs(n * 60);
    vec![
        BurnAlert {
            long: h(1),
            short: m(5),
            burn_rate: 14.4,
        },
        BurnAlert {
            long: h(6),
            short: m(30),
            burn_rate: 6.0,
        },
        BurnAlert {
            long: h(24),
            short: h(2),
            burn_rate: 3.0,
        },
        BurnAlert {
            long: h(72),
            short: h(6),
            burn_rate: 1.0,
        },
    ]
}

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sli {
    /// Requests that did not fail.
    Availability,
    /// Requests answered within the latency objective's time.
    Latency,
}

impl Sli {
    pub fn as_str(&self) -> &'static str {
        match self {
            Sli::Availability => "availability",
            Sli::Latency => "latency",
        }
    }
}

impl SloSpec {
    /// A spec with these objectives and every default (30 days, the workbook's pairs, gate and hold on).
    pub fn new(availability: Option<f64>, latency: Option<LatencyObjective>) -> SloSpec {
        SloSpec {
            availability,
            latency,
            window: DEFAULT_WINDOW,
            alerts: default_alerts(),
            canary_gate: true,
            hold_deploys: true,
        }
    }

    /// Each objective: what it measures and the share of requests that must be good.
    pub fn objectives(&self) -> Vec<(Sli, f64)> {
        let mut out = Vec::new();
        if let Some(a) = self.availability {
            out.push((Sli::Availability, a));
        }
        if let Some(l) = self.latency {
            out.push((Sli::Latency, l.percentile / 100.0));
        }
        out
    }

    /// The fastest pair's burn rate (the canary gate's bound); the workbook's 14.4 without pairs.
    pub fn fast_burn(&self) -> f64 {
        self.alerts
            .iter()
            .map(|a| a.burn_rate)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
            .unwrap_or(14.4)
    }

    /// "99.9% of requests succeed", "99% within 300ms".
    pub fn describe(&self, sli: Sli) -> String {
        match (sli, self.latency) {
            (Sli::Latency, Some(l)) => format!(
                "{} of requests within {}",
                percent(l.percentile / 100.0),
                crate::analysis::text::micros(l.max.as_micros() as u64)
            ),
            _ => format!(
                "{} of requests succeed",
                percent(self.availability.unwrap_or(0.0))
            ),
        }
    }
}

/// 0.999 → "99.9%", 0.99 → "99%", 0.9995 → "99.95%".
pub(crate) fn percent(share: f64) -> String {
    let text = format!("{:.4}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workbooks_pairs_burn_their_share_of_a_30_day_budget() {
        let shares: Vec<f64> = default_alerts()
            .iter()
            .map(|a| (a.budget_share(DEFAULT_WINDOW) * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(shares, [0.02, 0.05, 0.1, 0.1]);
        assert_eq!(SloSpec::new(Some(0.999), None).fast_burn(), 14.4);
    }

    #[test]
    fn objectives_are_shares_of_good_requests() {
        let l = LatencyObjective {
            percentile: 99.0,
            max: Duration::from_millis(300),
        };
        let s = SloSpec::new(Some(0.999), Some(l));
        assert_eq!(
            s.objectives(),
            [(Sli::Availability, 0.999), (Sli::Latency, 0.99)]
        );
        assert_eq!(s.describe(Sli::Availability), "99.9% of requests succeed");
        assert_eq!(s.describe(Sli::Latency), "99% of requests within 300ms");
        assert_eq!(percent(0.9995), "99.95%");
    }
}
