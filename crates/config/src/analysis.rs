//! `[analysis.<name>]`: named sets of checks that judge a release, used by canary `analysis` steps,
//! `background_analysis` and `slipway gate`.
//!
//! A template's keys are its checks: `error_rate`, `latency_pNN` (the percentile is in the key, as
//! people say it: `latency_p99`, `"latency_p99.9"`), and `prometheus`, `http`, `command`, each a table
//! or an array of tables. Checks keep the order they are written in, whatever the map order of TOML.

use crate::check;
use crate::process;
use crate::report::Report;
use crate::suggest;
use crate::table::{Section, Value};
use slipway_core::spec::{AnalysisTemplate, Check, TestKnobs};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;
use toml::de::DeValue;

/// Check keys, for suggestions (`latency_pNN` stands for any percentile).
const CHECK_KEYS: &[&str] = &[
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "prometheus",
    "http",
    "command",
    "alpha",
    "beta",
    "stable_margin",
];
/// A template's keys that set its test rather than add a check: the bounds each may take, and why.
const KNOBS: &[(&str, f64, f64, &str)] = &[
    (
        "alpha",
        0.0,
        0.5,
        "the chance of ever rolling back a release within its bounds, split among the template's error_rate and latency checks (default 0.1)",
    ),
    (
        "beta",
        0.0,
        0.5,
        "the chance of ever passing a release at the far edge of the indifference zone (default 0.05)",
    ),
    (
        "stable_margin",
        0.0,
        3.0,
        "standard errors of the stable release's estimate leaned towards the canary's side (default 0.5)",
    ),
];
const EXAMPLE: &str = "error_rate = { max = \"1%\", compare = \"stable\" }";

/// The templates of a config.
pub(crate) struct Templates {
    pub(crate) specs: BTreeMap<String, AnalysisTemplate>,
    /// Every name under `[analysis]`, valid or not, so that a reference to a broken template is not
    /// reported a second time as unknown.
    pub(crate) declared: Vec<String>,
}

/// Reads the `analysis` table of the top level.
pub(crate) fn read(r: &mut Report, root: &Section) -> Templates {
    let mut out = Templates {
        specs: BTreeMap::new(),
        declared: Vec::new(),
    };
    let Some(analysis) = root.table(r, "analysis", "analysis") else {
        return out;
    };
    for (name, key_span, value) in analysis.entries() {
        out.declared.push(name.to_string());
        if !process::valid_name(name) {
            r.error(
                key_span.clone(),
                format!("invalid analysis template name `{name}`"),
            )
            .label("invalid name")
            .help(
                "use lowercase letters, digits, `_` and `-`, starting with a letter, e.g. `golden`",
            );
        }
        let DeValue::Table(table) = value.get_ref() else {
            analysis.wrong_type(r, name, value, "a table").help(format!(
                "write the template as a table:\n[analysis.{name}]\n{EXAMPLE}"
            ));
            continue;
        };
        let path = format!("analysis.{name}");
        let template = Section::new(&path, value.span(), table);
        if let Some(spec) = read_template(r, &template, name) {
            out.specs.insert(name.to_string(), spec);
        }
    }
    out
}

/// Reports `name` (an `analysis` step's or `background_analysis`) when no template has that name.
pub(crate) fn check_ref(r: &mut Report, declared: &[String], name: &Spanned<String>, what: &str) {
    let n = name.get_ref();
    if declared.iter().any(|d| d == n) {
        return;
    }
    let names: Vec<&str> = declared.iter().map(String::as_str).collect();
    let help = match suggest::closest(n, &names) {
        Some(near) => format!("did you mean \"{near}\"?"),
        None if names.is_empty() => format!("define it:\n[analysis.{n}]\n{EXAMPLE}"),
        None => format!(
            "defined templates: {}; or define it:\n[analysis.{n}]\n{EXAMPLE}",
            suggest::one_of(&names, '"')
        ),
    };
    r.error(
        name.span(),
        format!("{what}: unknown analysis template \"{n}\""),
    )
    .label("no such template")
    .help(help);
}

fn read_template(r: &mut Report, t: &Section, name: &str) -> Option<AnalysisTemplate> {
    let mut checks: Vec<(usize, Check)> = Vec::new();
    let mut ok = true;
    let mut test = TestKnobs::default();
    for (key, key_span, value) in t.entries() {
        if let Some(&(_, low, high, meaning)) = KNOBS.iter().find(|(k, ..)| *k == key) {
            let Some(n) = knob(r, t, key, low, high, meaning) else {
                ok = false;
                continue;
            };
            match key {
                "alpha" => test.alpha = Some(n),
                "beta" => test.beta = Some(n),
                _ => test.stable_margin = Some(n),
            }
            continue;
        }
        let kind = match key {
            "error_rate" | "prometheus" | "http" | "command" => key,
            _ if key.starts_with("latency_p") => "latency",
            _ => {
                unknown_key(r, t, key, key_span);
                ok = false;
                continue;
            }
        };
        let percentile = if kind == "latency" {
            match percentile(key) {
                Ok(p) => p,
                Err(problem) => {
                    r.error(
                        key_span,
                        format!("`{key}` in {}: {problem}", t.name()),
                    )
                    .label("not a percentile")
                    .help("a percentile is more than 0 and less than 100: latency_p50, latency_p95, latency_p99, \"latency_p99.9\" (or latency_p999)");
                    ok = false;
                    continue;
                }
            }
        } else {
            0.0
        };
        // Single tables for the built-in metrics; the others may repeat as arrays of tables.
        let items: Vec<(String, &Value)> = match value.get_ref() {
            DeValue::Array(items) if kind != "error_rate" && kind != "latency" => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[analysis.{name}.{key}] entry {}", i + 1), v))
                .collect(),
            _ => vec![(format!("[analysis.{name}.{key}]"), value)],
        };
        for (display, item) in &items {
            let DeValue::Table(table) = item.get_ref() else {
                let arrays = if matches!(kind, "error_rate" | "latency") {
                    ""
                } else {
                    " (or an array of such tables)"
                };
                r.error(
                    item.span(),
                    format!(
                        "{display}: expected a table{arrays}, found {}",
                        crate::table::found(r, item)
                    ),
                )
                .label("expected a table")
                .help(format!("write {key} = {}", example(kind)));
                ok = false;
                continue;
            };
            let section = Section::named(display, item.span(), table);
            let check = match kind {
                "error_rate" => check::error_rate(r, &section),
                "latency" => check::latency(r, &section, key, percentile),
                "prometheus" => check::prometheus(r, &section),
                "http" => check::http(r, &section),
                _ => check::command(r, &section),
            };
            match check {
                Some(c) => checks.push((item.span().start, c)),
                None => ok = false,
            }
        }
    }
    if ok && checks.is_empty() {
        r.error(t.span.clone(), format!("{} has no checks", t.name()))
            .help(format!("add at least one, e.g.\n{EXAMPLE}"));
        return None;
    }
    checks.sort_by_key(|(at, _)| *at);
    ok.then(|| AnalysisTemplate {
        checks: checks.into_iter().map(|(_, c)| c).collect(),
        test,
    })
}

/// A test knob (`alpha`, `beta`: more than `low`, at most `high`; `stable_margin`: from `low` to `high`).
fn knob(r: &mut Report, t: &Section, key: &str, low: f64, high: f64, meaning: &str) -> Option<f64> {
    let n = t.number(r, key)?;
    let v = *n.get_ref();
    let inclusive = key == "stable_margin";
    let within = if inclusive { v >= low } else { v > low } && v <= high;
    if within {
        return Some(v);
    }
    let range = if inclusive {
        format!("from {low} to {high}")
    } else {
        format!("more than {low} and at most {high}")
    };
    r.error(
        n.span(),
        format!("{} must be {range}, got {v}", t.key_ref(key)),
    )
    .label("out of range")
    .help(format!(
        "{key} is {meaning}; docs/analysis.md says how to choose it"
    ));
    None
}

fn unknown_key(r: &mut Report, t: &Section, key: &str, span: Range<usize>) {
    let help = if let Some(near) = suggest::closest(key, CHECK_KEYS) {
        format!("did you mean `{near}`?")
    } else if key.starts_with("latency") || key.starts_with('p') {
        "latency checks name their percentile: latency_p95, latency_p99, \"latency_p99.9\"".into()
    } else {
        format!(
            "a template's keys are its checks: {}, or latency_pNN; and its test's alpha, beta, stable_margin",
            suggest::one_of(&["error_rate", "prometheus", "http", "command"], '`')
        )
    };
    r.error(span, format!("unknown check `{key}` in {}", t.name()))
        .label("unknown check")
        .help(help);
}

fn example(kind: &str) -> &'static str {
    match kind {
        "error_rate" => "{ max = \"1%\", compare = \"stable\" }",
        "latency" => "{ max = \"300ms\", compare = \"stable\" }",
        "prometheus" => "{ address = \"http://127.0.0.1:9090\", query = '...', max = 0.05 }",
        "http" => "{ url = \"http://127.0.0.1:9000/healthz\" }",
        _ => "{ cmd = \"./smoke.sh\", timeout = \"30s\" }",
    }
}

/// The percentile of a `latency_p<NN>` key: `p95` → 95, `p99.9` → 99.9, and the common shorthand
/// `p999` → 99.9 (three or more digits starting with 9 put the point after two). The error is a
/// message fragment.
pub(crate) fn percentile(key: &str) -> Result<f64, String> {
    let digits = key.strip_prefix("latency_p").unwrap_or("");
    let plain = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.');
    if !plain {
        return Err("expected a percentile after `latency_p`, like latency_p95".into());
    }
    let text = if !digits.contains('.') && digits.len() > 2 && digits.starts_with('9') {
        format!("{}.{}", &digits[..2], &digits[2..])
    } else {
        digits.to_string()
    };
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
        _ => Err(format!("percentile {digits} is out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_key() {
        assert_eq!(percentile("latency_p50"), Ok(50.0));
        assert_eq!(percentile("latency_p95"), Ok(95.0));
        assert_eq!(percentile("latency_p99.9"), Ok(99.9));
        assert_eq!(percentile("latency_p999"), Ok(99.9));
        assert_eq!(percentile("latency_p9999"), Ok(99.99));
        assert_eq!(percentile("latency_p5"), Ok(5.0));
        assert_eq!(percentile("latency_p99.99"), Ok(99.99));
    }

    #[test]
    fn percentiles_outside_zero_to_hundred_fail() {
        for bad in ["latency_p0", "latency_p100", "latency_p250", "latency_p00"] {
            assert!(
                percentile(bad).is_err_and(|e| e.contains("out of range")),
                "{bad}"
            );
        }
        for bad in [
            "latency_p",
            "latency_p9x",
            "latency_p.5",
            "latency_p99.",
            "latency_p1.2.3",
        ] {
            assert!(
                percentile(bad).is_err_and(|e| e.contains("like latency_p95")),
                "{bad}"
            );
        }
    }
}
