//! `/metrics`: the Prometheus text exposition of what slipway knows — the four golden signals per app
//! and release (traffic, errors, latency, saturation), the rollout's state and weights, and the latest
//! analysis verdicts. Written by hand: it is a few lines of text, not worth a dependency.

use crate::control::analysis_round::purpose_name;
use crate::control::controller::Controller;
use crate::control::status::phase_name;
use std::fmt::Write;

/// Latency buckets (seconds) of the exported histogram, a subset of the proxy's fine-grained one.
const LE_SECONDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

pub fn render(c: &Controller) -> String {
    let mut out = String::new();
    let w = &mut out;
    family(
        w,
        "slipway_requests_total",
        "counter",
        "Requests answered through the proxy, by status class.",
    );
    for (app, a) in &c.apps {
        for (v, m) in &a.metrics {
            for (i, n) in m.by_class().iter().enumerate() {
                let _ = writeln!(
                    w,
                    "slipway_requests_total{{app=\"{}\",release=\"v{v}\",class=\"{}xx\"}} {n}",
                    esc(app),
                    i + 1
                );
            }
        }
    }
    family(
        w,
        "slipway_upstream_failures_total",
        "counter",
        "Requests an instance never answered (connect error, reset, timeout).",
    );
    for (app, a) in &c.apps {
        for (v, m) in &a.metrics {
            let _ = writeln!(
                w,
                "slipway_upstream_failures_total{{app=\"{}\",release=\"v{v}\"}} {}",
                esc(app),
                m.failures()
            );
        }
    }
    family(
        w,
        "slipway_injected_failures_total",
        "counter",
        "Requests the proxy failed on purpose (`slipway drill`); also counted as 5xx in slipway_requests_total.",
    );
    for (app, a) in &c.apps {
        for (v, m) in &a.metrics {
            let _ = writeln!(
                w,
                "slipway_injected_failures_total{{app=\"{}\",release=\"v{v}\"}} {}",
                esc(app),
                m.injected()
            );
        }
    }
    family(
        w,
        "slipway_request_duration_seconds",
        "histogram",
        "Time to the response head, per release.",
    );
    for (app, a) in &c.apps {
        for (v, m) in &a.metrics {
            let snap = m.snapshot();
            let total = snap.latency.count();
            for le in LE_SECONDS {
                let below = total - snap.latency.count_above((le * 1e6) as u64);
                let _ = writeln!(
                    w,
                    "slipway_request_duration_seconds_bucket{{app=\"{}\",release=\"v{v}\",le=\"{le}\"}} {below}",
                    esc(app)
                );
            }
            let _ = writeln!(
                w,
                "slipway_request_duration_seconds_bucket{{app=\"{}\",release=\"v{v}\",le=\"+Inf\"}} {total}",
                esc(app)
            );
            // The sum is estimated from the buckets (each counted at its upper bound, within 1 %).
            let sum: f64 = snap
                .latency
                .counts()
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| {
                    *n as f64
                        * slipway_core::analysis::LatencyHistogram::bucket_upper_micros(i) as f64
                        / 1e6
                })
                .sum();
            let _ = writeln!(
                w,
                "slipway_request_duration_seconds_sum{{app=\"{}\",release=\"v{v}\"}} {sum}",
                esc(app)
            );
            let _ = writeln!(
                w,
                "slipway_request_duration_seconds_count{{app=\"{}\",release=\"v{v}\"}} {total}",
                esc(app)
            );
        }
    }
    family(
        w,
        "slipway_in_flight_requests",
        "gauge",
        "Requests being served right now, per release (saturation).",
    );
    family(
        w,
        "slipway_ready_instances",
        "gauge",
        "Instances in the route table, per release.",
    );
    for (app, a) in &c.apps {
        let mut per: std::collections::BTreeMap<u64, (usize, u32)> = Default::default();
        for m in a.instances.iter().filter(|m| m.is_web()) {
            let e = per.entry(m.release).or_default();
            e.0 += m
                .backend
                .as_ref()
                .map_or(0, |b| b.in_flight() + b.streams());
            e.1 += u32::from(m.serving());
        }
        for (v, (in_flight, ready)) in per {
            let _ = writeln!(
                w,
                "slipway_in_flight_requests{{app=\"{}\",release=\"v{v}\"}} {in_flight}",
                esc(app)
            );
            let _ = writeln!(
                w,
                "slipway_ready_instances{{app=\"{}\",release=\"v{v}\"}} {ready}",
                esc(app)
            );
        }
    }
    family(
        w,
        "slipway_route_requests_total",
        "counter",
        "Requests a canary route (header/cookie) sent to the canary, by status class.",
    );
    family(
        w,
        "slipway_shadow_requests_total",
        "counter",
        "Mirrored requests and what comparing them found.",
    );
    for (app, a) in &c.apps {
        let Some(r) = &a.rollout else { continue };
        let to = r.machine.to;
        for (i, m) in r.rule_metrics.iter().enumerate() {
            for (k, n) in m.by_class().iter().enumerate() {
                let _ = writeln!(
                    w,
                    "slipway_route_requests_total{{app=\"{}\",release=\"v{to}\",route=\"{}\",class=\"{}xx\"}} {n}",
                    esc(app),
                    i + 1,
                    k + 1
                );
            }
        }
        if let Some(report) = &r.shadow {
            let s = report.snapshot();
            for (what, n) in [
                ("mirrored", s.mirrored),
                ("compared", s.compared),
                ("status_class_mismatch", s.status_class_mismatches),
                ("shadow_failure", s.shadow_failures),
                ("body_mismatch", s.body_mismatches),
            ] {
                let _ = writeln!(
                    w,
                    "slipway_shadow_requests_total{{app=\"{}\",release=\"v{to}\",outcome=\"{what}\"}} {n}",
                    esc(app)
                );
            }
        }
    }
    family(
        w,
        "slipway_stable_release",
        "gauge",
        "The release serving when no rollout is in progress.",
    );
    family(
        w,
        "slipway_rollout_weight",
        "gauge",
        "Percent of traffic a release gets from the current rollout.",
    );
    family(
        w,
        "slipway_rollout_phase",
        "gauge",
        "1 for the phase the app's rollout is in.",
    );
    family(
        w,
        "slipway_analysis_verdict",
        "gauge",
        "1 for the latest verdict of each running analysis.",
    );
    for (app, a) in &c.apps {
        if let Some(v) = a.stable {
            let _ = writeln!(w, "slipway_stable_release{{app=\"{}\"}} {v}", esc(app));
        }
        if let Some(r) = &a.rollout {
            let total = (r.traffic.from + r.traffic.to).max(1) as u64;
            if let Some(from) = r.machine.from {
                let _ = writeln!(
                    w,
                    "slipway_rollout_weight{{app=\"{}\",release=\"v{from}\"}} {}",
                    esc(app),
                    r.traffic.from as u64 * 100 / total
                );
            }
            let _ = writeln!(
                w,
                "slipway_rollout_weight{{app=\"{}\",release=\"v{}\"}} {}",
                esc(app),
                r.machine.to,
                r.traffic.to as u64 * 100 / total
            );
            let _ = writeln!(
                w,
                "slipway_rollout_phase{{app=\"{}\",phase=\"{}\"}} 1",
                esc(app),
                phase_name(&r.machine.phase)
            );
        }
        for s in &a.sessions {
            if let Some(j) = &s.last {
                let _ = writeln!(
                    w,
                    "slipway_analysis_verdict{{app=\"{}\",template=\"{}\",purpose=\"{}\",verdict=\"{}\"}} 1",
                    esc(app),
                    esc(&s.name),
                    purpose_name(&s.purpose),
                    j.verdict.as_str()
                );
            }
        }
    }
    slo(w, c);
    out
}

/// `[slo]`: each objective's budget left and burn rate per window (a window two pairs share once).
fn slo(w: &mut String, c: &Controller) {
    family(
        w,
        "slipway_slo_budget_remaining",
        "gauge",
        "Share of the error budget left over the SLO window: 1 untouched, 0 spent, below 0 overspent.",
    );
    family(
        w,
        "slipway_slo_burn_rate",
        "gauge",
        "How many times faster than the SLO window allows the error budget burns, per window.",
    );
    let now = crate::clock::now_ms();
    for (app, a) in &c.apps {
        let Some(book) = &a.slo else { continue };
        for o in book.report(now).objectives {
            let sli = o.sli.as_str();
            let _ = writeln!(
                w,
                "slipway_slo_budget_remaining{{app=\"{}\",sli=\"{sli}\"}} {}",
                esc(app),
                o.budget_left
            );
            let mut windows = std::collections::BTreeMap::new();
            for b in &o.burns {
                windows.insert(b.alert.long.as_secs(), b.long);
                windows.insert(b.alert.short.as_secs(), b.short);
            }
            for (secs, rate) in windows {
                if let Some(rate) = rate {
                    let _ = writeln!(
                        w,
                        "slipway_slo_burn_rate{{app=\"{}\",sli=\"{sli}\",window=\"{secs}s\"}} {rate}",
                        esc(app)
                    );
                }
            }
        }
    }
}
