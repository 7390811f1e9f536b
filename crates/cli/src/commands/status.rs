//! `slipway status [--json]`: what serves now, what is moving, and every instance.

use super::Context;
use crate::output::{table, time};
use slipway_api::AppStatus;
use std::process::ExitCode;

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let app = ctx.app().await?;
    let status: AppStatus = ctx.client.get(&format!("/v1/apps/{app}")).await?;
    if ctx.json() {
        crate::output::json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    match &status.stable {
        Some(s) => println!(
            "{app}: v{} is stable{} — deployed {} by {} ({})",
            s.version,
            s.label
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default(),
            time(s.created_at),
            s.created_by,
            s.strategy
        ),
        None => println!("{app}: no stable release"),
    }
    if let Some(r) = &status.rollout {
        let from = r.from.map_or("nothing".to_string(), |v| format!("v{v}"));
        println!("rollout #{}: {from} → v{} ({})", r.id, r.to, r.strategy);
        println!("{}", crate::output::rollout_line(r, &status.traffic));
        for a in &r.analysis {
            if let Some(d) = &a.detail {
                println!("  analysis {} ({}): {}", a.template, a.purpose, d);
            }
        }
        if let Some(s) = &r.shadow {
            println!(
                "  shadow: {} mirrored, {} compared: {} status-class mismatches, {} shadow failures, \
                 latency {:+.1} ms on average, bodies {} of {} differ ({} skipped: not idempotent)",
                s.mirrored,
                s.compared,
                s.status_class_mismatches,
                s.shadow_failures,
                s.latency_diff_mean_ms,
                s.body_mismatches,
                s.body_compared,
                s.skipped_non_idempotent
            );
        }
        if let Some(reason) = &r.reason {
            println!("  because: {reason}");
        }
    }
    if let Some(w) = &status.warm {
        println!(
            "v{} kept warm until {} (an immediate rollback is a route swap)",
            w.version,
            time(w.retire_at)
        );
    }
    if let Some(f) = &status.last_failure {
        println!("last rollout failed: {f}");
    }
    if let Some(w) = &status.watch {
        println!("{}", watch_line(w));
    }
    if let Some(slo) = &status.slo {
        for line in slo_lines(slo) {
            println!("{line}");
        }
    }
    if let Some(m) = &status.maintenance {
        let why = m
            .reason
            .as_ref()
            .map_or_else(String::new, |r| format!(": {r}"));
        println!(
            "IN MAINTENANCE since {} ({} request(s) held now, each up to {}s, then the {} page){why}",
            time(m.since),
            m.held_requests,
            m.hold_seconds,
            if m.custom_page { "app's" } else { "proxy's" }
        );
    }
    if let Some(s) = &status.scaling {
        let target = match (&s.target_kind, s.target) {
            (Some(kind), Some(n)) => {
                format!(", target {kind} {n} per instance, load now {:.1}", s.load)
            }
            _ => String::new(),
        };
        let idle = s
            .idle_after_seconds
            .map_or_else(String::new, |secs| format!(", to zero after {secs}s idle"));
        let now = if s.replicas == 0 {
            "scaled to zero".to_string()
        } else {
            format!("{} instance(s)", s.replicas)
        };
        println!(
            "autoscale: {now} (min {}, max {}{target}{idle})",
            s.min, s.max
        );
        if let (Some(change), Some(at)) = (&s.last_change, s.last_change_at) {
            println!("  last change {}: {change}", time(at));
        }
        for c in &s.cold_starts {
            println!("  cold start of v{}: {} ms", c.release, c.millis);
        }
    }
    let mut t = table(&[
        "INSTANCE", "RELEASE", "PROCESS", "STATE", "SERVING", "PORT", "PID", "RESTARTS",
    ]);
    for i in &status.instances {
        t.add_row(vec![
            i.id.clone(),
            format!("v{}", i.release),
            i.process.clone(),
            i.state.clone(),
            if i.serving { "yes" } else { "no" }.to_string(),
            i.port.map(|p| p.to_string()).unwrap_or_default(),
            i.pid.map(|p| p.to_string()).unwrap_or_default(),
            i.restarts.to_string(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// The error budgets: a head line, one per objective, one per objective's burn-rate alerts, and the
/// hold, if deploys are held.
fn slo_lines(slo: &slipway_api::SloStatus) -> Vec<String> {
    let span = |secs: u64| match secs {
        s if s >= 86_400 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s >= 3_600 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        s => format!("{}m", s / 60),
    };
    let since = slo.since.map_or_else(
        || "no traffic yet".to_string(),
        |t| format!("counted since {}", time(t)),
    );
    let mut out = vec![format!(
        "slo over {} ({since}; canary gate {}, deploys {}):",
        span(slo.window_seconds),
        if slo.canary_gate { "on" } else { "off" },
        if slo.hold_deploys {
            "held while a budget is spent"
        } else {
            "never held"
        },
    )];
    for o in &slo.objectives {
        out.push(format!(
            "  {}: budget left {:.1}% ({} bad of {} requests)",
            o.objective,
            o.budget_left * 100.0,
            o.bad,
            o.requests
        ));
        let rate = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.1}×"));
        let burns: Vec<String> = o
            .burn_rates
            .iter()
            .map(|b| {
                format!(
                    "{}/{} {} {}{}",
                    span(b.long_seconds),
                    span(b.short_seconds),
                    rate(b.long),
                    rate(b.short),
                    if b.firing {
                        format!(" FIRING (≥{}×)", b.threshold)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        out.push(format!("    burn rates: {}", burns.join(", ")));
    }
    if let Some(hold) = &slo.hold {
        out.push(format!(
            "  DEPLOYS HELD: {hold} (deploy anyway with --override-slo \"reason\")"
        ));
    }
    out
}

/// The watch after promotion in one line (and its latest judgement on the next).
fn watch_line(w: &slipway_api::WatchStatus) -> String {
    let head = format!(
        "watch of v{} against v{} before the switch",
        w.release, w.compared_with
    );
    let template = if w.template == "default" {
        String::new()
    } else {
        format!(", template {}", w.template)
    };
    let state = match (w.state.as_str(), w.ended_at) {
        ("watching", _) => format!("watching until {}{template}", time(w.ends_at)),
        ("regressed", Some(at)) => format!(
            "REGRESSED {}: rolled back to v{}",
            time(at),
            w.compared_with
        ),
        ("ended", Some(at)) => format!("ended {}: no regression", time(at)),
        ("superseded", Some(at)) => format!("ended early {}: another rollout started", time(at)),
        (other, _) => other.to_string(),
    };
    let judged = match (&w.verdict, &w.detail) {
        (Some(v), Some(d)) => format!("\n  {v}: {d}"),
        _ => String::new(),
    };
    format!("{head}: {state}{judged}")
}
