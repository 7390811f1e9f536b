//! The checks of an analysis template, one reader per kind: built-in proxy metrics (`error_rate`,
//! `latency_pNN`), a PromQL query, an HTTP check and a command.
//!
//! A check that can never pass or never fail is an error here rather than a surprise during a rollout:
//! `min` above `max`, bounds on an HTTP check with no `json_path` to apply them to, a Prometheus query
//! with no bound at all.

use crate::percent;
use crate::report::Report;
use crate::table::Section;
use crate::url;
use slipway_core::spec::Check;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// `error_rate = { max = "1%", compare = "stable" }`.
pub(crate) fn error_rate(r: &mut Report, s: &Section) -> Option<Check> {
    s.check_keys(r, &["max", "compare"]);
    let max = rate(r, s, "max");
    if s.get("max").is_none() {
        s.missing(
            r,
            "max",
            "say how many errors are too many: error_rate = { max = \"1%\" }",
        );
    }
    let compare_stable = compare(r, s);
    Some(Check::ErrorRate {
        max: max?,
        compare_stable: compare_stable?,
    })
}

/// `latency_p95 = { max = "300ms", compare = "stable" }`; the percentile comes from the key.
pub(crate) fn latency(r: &mut Report, s: &Section, key: &str, percentile: f64) -> Option<Check> {
    s.check_keys(r, &["max", "compare"]);
    let max = s.positive_duration(r, "max");
    if s.get("max").is_none() {
        s.missing(
            r,
            "max",
            format!("say how slow is too slow: {key} = {{ max = \"300ms\" }}"),
        );
    }
    let compare_stable = compare(r, s);
    Some(Check::Latency {
        percentile,
        max: max?.into_inner(),
        compare_stable: compare_stable?,
    })
}

/// `prometheus = { address = "http://...", query = '...', min = .., max = .. }`.
pub(crate) fn prometheus(r: &mut Report, s: &Section) -> Option<Check> {
    s.check_keys(r, &["address", "query", "min", "max"]);
    let address = http_url(r, s, "address", "\"http://127.0.0.1:9090\"");
    let query = s.text(r, "query", "'sum(rate(http_errors_total[1m]))'");
    if s.get("query").is_none() {
        s.missing(
            r,
            "query",
            "add the PromQL query to evaluate, e.g. query = 'sum(rate(errors{release=\"{{release}}\"}[1m]))'",
        );
    }
    let (min, max) = bounds(r, s)?;
    if min.is_none() && max.is_none() {
        r.error(
            s.span.clone(),
            format!("{} has no `min` or `max`", s.name()),
        )
        .help("a query result passes when it is within bounds: add min = .., max = .. or both");
        return None;
    }
    Some(Check::Prometheus {
        address: address?,
        query: query?.into_inner(),
        min,
        max,
    })
}

/// `http = { url = "http://...", json_path = "a.b", min = .., max = .., timeout = "10s" }`.
pub(crate) fn http(r: &mut Report, s: &Section) -> Option<Check> {
    s.check_keys(r, &["url", "json_path", "min", "max", "timeout"]);
    let url = http_url(r, s, "url", "\"http://127.0.0.1:9000/healthz\"");
    let json_path = json_path(r, s);
    let (min, max) = bounds(r, s)?;
    if s.get("json_path").is_none()
        && let Some(key) = ["min", "max"].into_iter().find(|k| s.get(k).is_some())
    {
        let span = s.key_span(key).unwrap_or_else(|| s.span.clone());
        r.error(
            span,
            format!("{}: `{key}` needs a `json_path` to compare", s.name()),
        )
        .label("bound of nothing")
        .help("add json_path = \"field.in.the.answer\", or remove it: without json_path, any 2xx answer passes");
    }
    let timeout = s
        .positive_duration(r, "timeout")
        .map_or(DEFAULT_HTTP_TIMEOUT, Spanned::into_inner);
    Some(Check::Http {
        url: url?,
        json_path: match json_path {
            Ok(path) => path,
            Err(()) => return None,
        },
        min,
        max,
        timeout,
    })
}

/// `command = { cmd = "./smoke.sh", timeout = "30s" }`.
pub(crate) fn command(r: &mut Report, s: &Section) -> Option<Check> {
    s.check_keys(r, &["cmd", "timeout"]);
    let cmd = s.text(r, "cmd", "\"./smoke.sh\"");
    if s.get("cmd").is_none() {
        s.missing(
            r,
            "cmd",
            "add the smoke test, run with `sh -c`: cmd = \"./smoke.sh\"",
        );
    }
    let timeout = s
        .positive_duration(r, "timeout")
        .map_or(DEFAULT_COMMAND_TIMEOUT, Spanned::into_inner);
    Some(Check::Command {
        cmd: cmd?.into_inner(),
        timeout,
    })
}

/// A `"1%"` rate as a fraction.
fn rate(r: &mut Report, s: &Section, key: &str) -> Option<f64> {
    let value = s.get(key)?;
    let DeValue::String(text) = value.get_ref() else {
        s.wrong_type(r, key, value, "a percentage like \"1%\"")
            .help(format!(
                "write {key} = \"1%\" (or \"0.5%\"): the `%` says it is not a fraction"
            ));
        return None;
    };
    match percent::parse_rate(text) {
        Ok(fraction) => Some(fraction),
        Err(problem) => {
            let help = match text.trim().parse::<f64>() {
                Ok(n) if n > 0.0 && n <= 100.0 => format!("write {key} = \"{}%\"", text.trim()),
                _ => format!(
                    "write a percentage more than 0% and at most 100%, e.g. {key} = \"1%\" or \"0.5%\""
                ),
            };
            r.error(
                value.span(),
                format!("{} {problem}: \"{text}\"", s.key_ref(key)),
            )
            .label("not a percentage")
            .help(help);
            None
        }
    }
}

/// `compare = "stable"` (the only comparison); absent means the canary is judged alone.
fn compare(r: &mut Report, s: &Section) -> Option<bool> {
    if s.get("compare").is_none() {
        return Some(false);
    }
    let value = s.string(r, "compare")?;
    if value.get_ref() == "stable" {
        return Some(true);
    }
    r.error(
        value.span(),
        format!(
            "{} must be \"stable\", not \"{}\"",
            s.key_ref("compare"),
            value.get_ref()
        ),
    )
    .label("unknown comparison")
    .help("write compare = \"stable\" to judge the canary against the stable release, or remove it to judge the canary alone");
    None
}

/// `min` and `max`, both optional; `None` when either is invalid or `min > max`.
fn bounds(r: &mut Report, s: &Section) -> Option<(Option<f64>, Option<f64>)> {
    let min = s.number(r, "min");
    let max = s.number(r, "max");
    let bad =
        (s.get("min").is_some() && min.is_none()) || (s.get("max").is_some() && max.is_none());
    if let (Some(lo), Some(hi)) = (&min, &max)
        && lo.get_ref() > hi.get_ref()
    {
        r.error(
            lo.span(),
            format!(
                "{}: min ({}) is greater than max ({})",
                s.name(),
                lo.get_ref(),
                hi.get_ref()
            ),
        )
        .label("above max")
        .help("no value could pass: swap them, or fix one of them");
        return None;
    }
    if bad {
        return None;
    }
    Some((min.map(Spanned::into_inner), max.map(Spanned::into_inner)))
}

/// A required absolute http(s) URL (check endpoints are not secrets: unlike webhooks, they are echoed).
fn http_url(r: &mut Report, s: &Section, key: &str, example: &str) -> Option<String> {
    if s.get(key).is_none() {
        s.missing(r, key, format!("write {key} = {example}"));
        return None;
    }
    let value = s.string(r, key)?;
    match url::check_http(value.get_ref()) {
        Ok(()) => Some(value.into_inner()),
        Err(problem) => {
            let help = match &problem {
                url::UrlProblem::Relative if value.get_ref().starts_with('/') => format!(
                    "write the whole URL, with scheme and host: {key} = \"http://127.0.0.1:9000{}\"",
                    value.get_ref()
                ),
                url::UrlProblem::Relative => format!(
                    "write the whole URL, with scheme: {key} = \"http://{}\"",
                    value.get_ref().trim()
                ),
                _ => format!("write an http or https URL, e.g. {key} = {example}"),
            };
            r.error(
                value.span(),
                format!("{} {}", s.key_ref(key), problem.message()),
            )
            .label("not an http(s) URL")
            .help(help);
            None
        }
    }
}

/// `json_path = "checks.db.ok"`: dot-separated field names. `Err` when invalid (reported).
fn json_path(r: &mut Report, s: &Section) -> Result<Option<String>, ()> {
    if s.get("json_path").is_none() {
        return Ok(None);
    }
    let path = s.text(r, "json_path", "\"checks.db.ok\"").ok_or(())?;
    if path.get_ref().split('.').any(|part| part.trim().is_empty()) {
        r.error(
            path.span(),
            format!(
                "{}: json_path \"{}\" has an empty part",
                s.name(),
                path.get_ref()
            ),
        )
        .label("empty field name")
        .help("write field names separated by single dots, e.g. json_path = \"checks.db.ok\"");
        return Err(());
    }
    Ok(Some(path.into_inner()))
}
