//! `[slo]`: the app's service level objectives — `availability = "99.9%"`, `latency_p99 = "300ms"` —
//! over a `window` (default 30 days), the burn-rate alert pairs, and what the error budget is used for
//! (`canary_gate`, `hold_deploys`). `slipway_core::slo` says what they mean.

use crate::analysis;
use crate::percent::parse_rate;
use crate::report::Report;
use crate::suggest;
use crate::table::{Section, found};
use slipway_core::slo::{BurnAlert, DEFAULT_WINDOW, LatencyObjective, SloSpec, default_alerts};
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

const KEYS: &[&str] = &[
    "availability",
    "latency_p99",
    "window",
    "alerts",
    "canary_gate",
    "hold_deploys",
];
const ALERT_KEYS: &[&str] = &["long", "short", "burn_rate"];
const MIN_WINDOW: Duration = Duration::from_secs(3_600);
const MAX_WINDOW: Duration = Duration::from_secs(90 * 86_400);
const ALERT_EXAMPLE: &str = "{ long = \"1h\", short = \"5m\", burn_rate = 14.4 }";

/// Reads `[slo]`; absent means no objectives (nothing counted, nothing held).
pub(crate) fn read(r: &mut Report, root: &Section) -> Option<SloSpec> {
    let s = root.table(r, "slo", "slo")?;
    let mut latency_keys = Vec::new();
    for (key, span, _) in s.entries() {
        if key.starts_with("latency_p") {
            latency_keys.push((key, span));
        } else if !KEYS.contains(&key) {
            let help = match suggest::closest(key, KEYS) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!(
                    "valid keys here: {}, or latency_pNN",
                    suggest::one_of(KEYS, '`')
                ),
            };
            r.error(span, format!("unknown key `{key}` in [slo]"))
                .label("unknown key")
                .help(help);
        }
    }
    let availability = availability(r, &s);
    let latency = latency(r, &s, &latency_keys);
    if s.get("availability").is_none() && latency_keys.is_empty() {
        r.error(s.span.clone(), "[slo] has no objective")
            .label("nothing to keep")
            .help("add one or both: availability = \"99.9%\", latency_p99 = \"300ms\"");
    }
    let window = window(r, &s);
    let alerts = alerts(r, &s, window.unwrap_or(DEFAULT_WINDOW));
    let flag = |r: &mut Report, key| s.boolean(r, key).is_none_or(Spanned::into_inner);
    let canary_gate = flag(r, "canary_gate");
    let hold_deploys = flag(r, "hold_deploys");
    Some(SloSpec {
        availability: availability?,
        latency: latency?,
        window: window?,
        alerts: alerts?,
        canary_gate,
        hold_deploys,
    })
}

/// `availability = "99.9%"`: more than 0 % and less than 100 % (a 100 % objective has no budget).
/// `Some(None)` when absent; `None` when invalid (reported).
fn availability(r: &mut Report, s: &Section) -> Option<Option<f64>> {
    let Some(value) = s.get("availability") else {
        return Some(None);
    };
    let DeValue::String(text) = value.get_ref() else {
        let raw = r.text(value.span()).to_string();
        let help = match raw.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => {
                format!(
                    "write it as a percentage: availability = \"{}%\"",
                    trim(f * 100.0)
                )
            }
            Ok(f) if f > 1.0 && f < 100.0 => format!("write availability = \"{raw}%\""),
            _ => "write availability = \"99.9%\"".to_string(),
        };
        s.wrong_type(r, "availability", value, "a percentage like \"99.9%\"")
            .help(help);
        return None;
    };
    match parse_rate(text) {
        Ok(share) if share < 1.0 => Some(Some(share)),
        Ok(_) => {
            r.error(value.span(), "[slo] availability = \"100%\" leaves no error budget")
                .label("no budget")
                .help("every failed request would spend it at once and hold every deploy; write the share users really need, e.g. availability = \"99.9%\"");
            None
        }
        Err(problem) => {
            r.error(
                value.span(),
                format!("`availability` in [slo] {problem}: \"{text}\""),
            )
            .label("not a percentage")
            .help("write the share of requests that must succeed, e.g. availability = \"99.9%\"");
            None
        }
    }
}

fn trim(x: f64) -> String {
    let t = format!("{x:.4}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `latency_pNN = "300ms"`: at most one.
fn latency(
    r: &mut Report,
    s: &Section,
    keys: &[(&str, std::ops::Range<usize>)],
) -> Option<Option<LatencyObjective>> {
    let Some((key, span)) = keys.first() else {
        return Some(None);
    };
    for (other, span) in &keys[1..] {
        r.error(
            span.clone(),
            format!("[slo] has two latency objectives: `{key}` and `{other}`"),
        )
        .label("second latency objective")
        .help("keep one: the budget counts requests slower than one time");
    }
    let percentile = match analysis::percentile(key) {
        Ok(p) => p,
        Err(problem) => {
            r.error(span.clone(), format!("`{key}` in [slo]: {problem}"))
                .label("not a percentile")
                .help("name the percentile in the key: latency_p99 = \"300ms\", latency_p95, \"latency_p99.9\"");
            return None;
        }
    };
    let max = s.positive_duration(r, key)?.into_inner();
    (keys.len() == 1).then_some(Some(LatencyObjective { percentile, max }))
}

/// `window = "30d"`: from an hour to 90 days.
fn window(r: &mut Report, s: &Section) -> Option<Duration> {
    let Some(w) = s.duration(r, "window") else {
        return s.get("window").is_none().then_some(DEFAULT_WINDOW);
    };
    if (MIN_WINDOW..=MAX_WINDOW).contains(w.get_ref()) {
        return Some(w.into_inner());
    }
    r.error(
        w.span(),
        "`window` in [slo] must be from \"1h\" to \"90d\"",
    )
    .label("out of range")
    .help("the budget's rolling window: \"30d\" (the usual), \"28d\" (four whole weeks) or \"7d\"");
    None
}

/// `alerts = [{ long = "1h", short = "5m", burn_rate = 14.4 }, ...]`; absent: the SRE workbook's four.
fn alerts(r: &mut Report, s: &Section, window: Duration) -> Option<Vec<BurnAlert>> {
    let Some(value) = s.get("alerts") else {
        return Some(default_alerts());
    };
    let DeValue::Array(items) = value.get_ref() else {
        s.wrong_type(r, "alerts", value, "an array of tables")
            .help(format!("write alerts = [{ALERT_EXAMPLE}]"));
        return None;
    };
    if items.is_empty() {
        r.error(value.span(), "`alerts` in [slo] is empty")
            .label("no pair")
            .help(format!("remove it for the SRE workbook's four pairs, or list yours: alerts = [{ALERT_EXAMPLE}]"));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let display = format!("[slo] alert {}", i + 1);
        let DeValue::Table(table) = item.get_ref() else {
            r.error(
                item.span(),
                format!("{display}: expected a table, found {}", found(r, item)),
            )
            .label("expected a table")
            .help(format!("write {ALERT_EXAMPLE}"));
            ok = false;
            continue;
        };
        let a = Section::named(&display, item.span(), table);
        match alert(r, &a, window) {
            Some(alert) => out.push(alert),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn alert(r: &mut Report, a: &Section, window: Duration) -> Option<BurnAlert> {
    a.check_keys(r, ALERT_KEYS);
    for key in ALERT_KEYS {
        if a.get(key).is_none() {
            a.missing(r, key, format!("write {ALERT_EXAMPLE}"));
        }
    }
    let long = a.positive_duration(r, "long");
    let short = a.positive_duration(r, "short");
    let rate = a.number(r, "burn_rate");
    let (long, short, rate) = (long?, short?, rate?);
    let mut ok = true;
    if short.get_ref() >= long.get_ref() {
        r.error(
            short.span(),
            format!("{}: `short` must be shorter than `long`", a.name()),
        )
        .label("not shorter")
        .help("the short window ends the alert soon after the burn stops: about a twelfth of the long one, e.g. long = \"1h\", short = \"5m\"");
        ok = false;
    }
    if *long.get_ref() > window {
        r.error(
            long.span(),
            format!("{}: `long` is longer than the SLO's window", a.name()),
        )
        .label("longer than the window")
        .help("an alert's windows fit in the budget's window: shorten `long` or lengthen [slo] window");
        ok = false;
    }
    if !(*rate.get_ref() > 0.0 && *rate.get_ref() <= 1_000.0) {
        r.error(
            rate.span(),
            format!("{}: `burn_rate` must be more than 0 and at most 1000", a.name()),
        )
        .label("out of range")
        .help("how many times faster than the window allows: 1 spends the budget in exactly the window, 14.4 spends 2 % of 30 days in an hour");
        ok = false;
    }
    ok.then(|| BurnAlert {
        long: long.into_inner(),
        short: short.into_inner(),
        burn_rate: rate.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(slo: &str) -> Result<slipway_core::spec::AppSpec, String> {
        let text = format!("app = \"a\"\n[processes.web]\ncmd = \"./s\"\n[slo]\n{slo}\n");
        crate::parse(&text, Path::new("/srv/a/slipway.toml")).map_err(|e| format!("{e:?}"))
    }

    fn error(slo: &str) -> String {
        let text = format!("app = \"a\"\n[processes.web]\ncmd = \"./s\"\n[slo]\n{slo}\n");
        let e = crate::parse(&text, Path::new("/srv/a/slipway.toml")).expect_err(slo);
        e.issues()
            .iter()
            .map(|i| {
                format!(
                    "{}:{}: {} | {}",
                    i.line,
                    i.column,
                    i.message,
                    i.help.clone().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn objectives_window_and_defaults() {
        let spec = parse("availability = \"99.9%\"\nlatency_p99 = \"300ms\"")
            .unwrap()
            .slo
            .unwrap();
        assert!((spec.availability.unwrap() - 0.999).abs() < 1e-12);
        let l = spec.latency.unwrap();
        assert_eq!((l.percentile, l.max.as_millis()), (99.0, 300));
        assert_eq!(spec.window.as_secs(), 30 * 86_400);
        assert_eq!(spec.alerts, slipway_core::slo::default_alerts());
        assert!(spec.canary_gate && spec.hold_deploys);
        let spec = parse(
            "latency_p95 = \"1s\"\nwindow = \"7d\"\ncanary_gate = false\nhold_deploys = false\n\
             alerts = [{ long = \"1h\", short = \"5m\", burn_rate = 10 }]",
        )
        .unwrap()
        .slo
        .unwrap();
        assert_eq!(
            (spec.availability, spec.window.as_secs()),
            (None, 7 * 86_400)
        );
        assert_eq!(spec.alerts.len(), 1);
        assert_eq!(spec.alerts[0].burn_rate, 10.0);
        assert!(!spec.canary_gate && !spec.hold_deploys);
        assert!(parse("availability = \"99%\"").unwrap().slo.is_some());
    }

    #[test]
    fn mistakes_point_at_the_line_with_the_fix() {
        let e = error("availability = 0.999");
        assert!(
            e.starts_with("5:16:") && e.contains("availability = \"99.9%\""),
            "{e}"
        );
        let e = error("availability = \"100%\"");
        assert!(e.contains("leaves no error budget"), "{e}");
        let e = error("availability = \"99.9\"");
        assert!(e.contains("needs a `%`"), "{e}");
        let e = error("window = \"30d\"");
        assert!(
            e.contains("[slo] has no objective") && e.contains("latency_p99 = \"300ms\""),
            "{e}"
        );
        let e = error("availability = \"99.9%\"\nwindow = \"10m\"");
        assert!(
            e.starts_with("6:10:") && e.contains("from \"1h\" to \"90d\""),
            "{e}"
        );
        let e = error("availability = \"99.9%\"\nwindow = \"30 days\"");
        assert!(e.contains("not a valid duration"), "{e}");
        let e = error("availabilty = \"99.9%\"");
        assert!(e.contains("did you mean `availability`?"), "{e}");
        let e = error("availability = \"99.9%\"\nlatency_p99 = \"300ms\"\nlatency_p95 = \"100ms\"");
        assert!(e.contains("two latency objectives"), "{e}");
        let e = error(
            "availability = \"99.9%\"\nalerts = [{ long = \"5m\", short = \"1h\", burn_rate = 14.4 }]",
        );
        assert!(e.contains("`short` must be shorter than `long`"), "{e}");
        let e = error(
            "availability = \"99.9%\"\nwindow = \"1h\"\nalerts = [{ long = \"6h\", short = \"30m\", burn_rate = 6 }]",
        );
        assert!(e.contains("longer than the SLO's window"), "{e}");
        let e = error("availability = \"99.9%\"\nalerts = [{ long = \"1h\", short = \"5m\" }]");
        assert!(e.contains("missing `burn_rate`"), "{e}");
        let e = error("availability = \"99.9%\"\nalerts = []");
        assert!(e.contains("is empty") && e.contains("workbook"), "{e}");
    }
}
