//! `[deploy]`: the rollout strategy and its knobs. Knobs of another strategy are errors, not silently
//! ignored: `max_surge` under blue-green means the author expects behaviour they will not get.
//! The canary's own keys (steps, sticky, background analysis) are read in [`crate::canary`].

use crate::amount;
use crate::analysis::{self, Templates};
use crate::canary;
use crate::report::Report;
use crate::suggest;
use crate::table::Section;
use slipway_core::spec::{Amount, Check, DEFAULT_WATCH, DeploySpec, Strategy};
use std::time::Duration;
use toml::Spanned;

const KEYS: &[&str] = &[
    "strategy",
    "progress_deadline",
    "max_surge",
    "max_unavailable",
    "auto_promote",
    "scale_down_delay",
    "steps",
    "sticky",
    "background_analysis",
    "watch",
    "watch_analysis",
];
const STRATEGIES: &[&str] = &["rolling", "blue-green", "recreate", "canary"];
const ROLLING_ONLY: &[&str] = &["max_surge", "max_unavailable"];
const BLUE_GREEN_ONLY: &[&str] = &["auto_promote", "scale_down_delay"];
const CANARY_ONLY: &[&str] = &["steps", "sticky", "background_analysis"];

const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);

pub(crate) fn default_spec() -> DeploySpec {
    DeploySpec {
        strategy: Strategy::Rolling {
            max_surge: Amount::Count(1),
            max_unavailable: Amount::Count(0),
        },
        progress_deadline: DEFAULT_DEADLINE,
        watch: DEFAULT_WATCH,
        watch_analysis: None,
    }
}

/// Reads `[deploy]`; absent means a rolling update, one instance at a time, never below capacity.
/// `templates` are those under `[analysis]`, which canary steps and the watch refer to.
pub(crate) fn read(r: &mut Report, root: &Section, templates: &Templates) -> DeploySpec {
    let Some(d) = root.table(r, "deploy", "deploy") else {
        return default_spec();
    };
    d.check_keys(r, KEYS);
    let strategy_name = strategy_name(r, &d);
    let progress_deadline = d
        .positive_duration(r, "progress_deadline")
        .map_or(DEFAULT_DEADLINE, Spanned::into_inner);

    // Knobs that the chosen strategy does not have.
    if let Some(name) = strategy_name {
        for (keys, owner) in [
            (ROLLING_ONLY, "rolling"),
            (BLUE_GREEN_ONLY, "blue-green"),
            (CANARY_ONLY, "canary"),
        ] {
            if name == owner {
                continue;
            }
            for key in keys {
                if let Some(span) = d.key_span(key) {
                    r.error(
                        span,
                        format!("`{key}` only applies to strategy = \"{owner}\", not \"{name}\""),
                    )
                    .label(format!("{owner} only"))
                    .help(format!("remove it, or set strategy = \"{owner}\""));
                }
            }
        }
    }

    let strategy = match strategy_name.unwrap_or("rolling") {
        "recreate" => Strategy::Recreate,
        "canary" => Strategy::Canary(canary::read(r, &d, &templates.declared)),
        "blue-green" => Strategy::BlueGreen {
            auto_promote: d.boolean(r, "auto_promote").is_none_or(Spanned::into_inner),
            scale_down_delay: d
                .duration(r, "scale_down_delay")
                .map_or(DEFAULT_SCALE_DOWN_DELAY, Spanned::into_inner),
        },
        _ => rolling(r, &d),
    };
    let (watch, watch_analysis) = watch(r, &d, templates);
    DeploySpec {
        strategy,
        progress_deadline,
        watch,
        watch_analysis,
    }
}

/// `watch` (how long a release is judged after promotion, against the one it replaced) and
/// `watch_analysis` (the template it judges: built-in checks only, since it compares the proxy's counts).
fn watch(r: &mut Report, d: &Section, templates: &Templates) -> (Duration, Option<String>) {
    let watch = d.duration(r, "watch");
    let off = watch.as_ref().is_some_and(|w| w.get_ref().is_zero());
    let name = d.text(r, "watch_analysis", "\"golden\"");
    let analysis = name.and_then(|name| {
        analysis::check_ref(r, &templates.declared, &name, "watch_analysis");
        if off {
            r.warning(name.span(), "watch_analysis has no effect: watch = \"0s\" turns the watch off")
                .help("remove it, or set watch = \"5m\"");
        }
        let spec = templates.specs.get(name.get_ref())?;
        let external: Vec<&str> = spec
            .checks
            .iter()
            .filter_map(|c| match c {
                Check::Prometheus { .. } => Some("prometheus"),
                Check::Http { .. } => Some("http"),
                Check::Command { .. } => Some("command"),
                Check::ErrorRate { .. } | Check::Latency { .. } => None,
            })
            .collect();
        if !external.is_empty() {
            r.error(
                name.span(),
                format!(
                    "watch_analysis: template \"{}\" has {} checks; the watch judges only error_rate and latency_pNN (the proxy's counts, against the replaced release's)",
                    name.get_ref(),
                    external.join(" and ")
                ),
            )
            .label("not judged after promotion")
            .help(
                "name a template with only error_rate / latency_pNN checks, e.g.\n[analysis.after]\nerror_rate = { max = \"1%\", compare = \"stable\" }",
            );
            return None;
        }
        Some(name.into_inner())
    });
    (watch.map_or(DEFAULT_WATCH, Spanned::into_inner), analysis)
}

/// The `strategy` value; `None` when it is set but invalid (already reported).
fn strategy_name(r: &mut Report, d: &Section) -> Option<&'static str> {
    let Some(s) = d.string(r, "strategy") else {
        return d.get("strategy").is_none().then_some("rolling");
    };
    if let Some(known) = STRATEGIES.iter().find(|k| **k == s.get_ref().as_str()) {
        return Some(known);
    }
    let help = match suggest::closest(s.get_ref(), STRATEGIES) {
        Some(near) => format!(
            "did you mean \"{near}\"? (valid: {})",
            suggest::one_of(STRATEGIES, '"')
        ),
        None => format!("valid strategies: {}", suggest::one_of(STRATEGIES, '"')),
    };
    r.error(s.span(), format!("unknown strategy \"{}\"", s.get_ref()))
        .label("unknown strategy")
        .help(help);
    None
}

fn rolling(r: &mut Report, d: &Section) -> Strategy {
    let surge = amount::read(r, d, "max_surge");
    let unavailable = amount::read(r, d, "max_unavailable");
    let is_zero = |a: &Amount| matches!(a, Amount::Count(0) | Amount::Percent(0));
    let surge_v = surge.as_ref().map_or(Amount::Count(1), |s| *s.get_ref());
    let unavailable_v = unavailable
        .as_ref()
        .map_or(Amount::Count(0), |u| *u.get_ref());
    if is_zero(&surge_v) && is_zero(&unavailable_v) {
        let span = surge
            .as_ref()
            .map(Spanned::span)
            .or_else(|| unavailable.as_ref().map(Spanned::span));
        r.error(
            span.unwrap_or_else(|| d.span.clone()),
            "max_surge = 0 and max_unavailable = 0: a rolling update could never replace an instance",
        )
        .label("no room to move")
        .help("set max_surge = 1 to add an instance before removing one");
    }
    Strategy::Rolling {
        max_surge: surge_v,
        max_unavailable: unavailable_v,
    }
}
