//! Probes: `readiness`, `liveness` and `startup` of a process, each one check (http | tcp | exec) and
//! its timing. The defaults follow Kubernetes, except readiness polls every second: readiness gates a
//! rollout, and a rollout should not wait 10 s to notice that an instance is ready.

use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::{ProbeCheck, ProbeSpec};
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

const KEYS: &[&str] = &[
    "http",
    "tcp",
    "exec",
    "period",
    "timeout",
    "initial_delay",
    "success_threshold",
    "failure_threshold",
];
const CHECKS: &[&str] = &["http", "tcp", "exec"];
const THRESHOLDS: std::ops::RangeInclusive<u32> = 1..=1000;

/// Which probe of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Readiness,
    Liveness,
    Startup,
}

impl ProbeKind {
    pub(crate) const ALL: [ProbeKind; 3] = [
        ProbeKind::Readiness,
        ProbeKind::Liveness,
        ProbeKind::Startup,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Startup => "startup",
        }
    }

    fn default_period(self) -> Duration {
        match self {
            // Readiness: a starting or failing instance is checked far more often than this
            // (runtime::probe::spawn_probe), so the period is only the steady state's cost.
            ProbeKind::Liveness | ProbeKind::Readiness => Duration::from_secs(10),
            ProbeKind::Startup => Duration::from_secs(1),
        }
    }
}

/// Reads probe `kind` of `process` (a section named `processes.<name>`); `None` when absent or invalid.
pub(crate) fn read(
    r: &mut Report,
    process: &Section,
    process_name: &str,
    kind: ProbeKind,
) -> Option<ProbeSpec> {
    let key = kind.key();
    let value = process.get(key)?;
    let path = format!("{}.{key}", process.path);
    let DeValue::Table(_) = value.get_ref() else {
        let issue = process.wrong_type(r, key, value, "a table like { http = \"/ready\" }");
        match value.get_ref() {
            DeValue::String(s) if s.starts_with('/') => {
                issue.help(format!("write {key} = {{ http = \"{s}\" }}"))
            }
            DeValue::String(s) => issue.help(format!("write {key} = {{ exec = \"{s}\" }}")),
            DeValue::Boolean(true) => issue.help(format!("write {key} = {{ tcp = true }}")),
            _ => issue.help(format!(
                "write {key} = {{ http = \"/health\" }}, {{ tcp = true }} or {{ exec = \"cmd\" }}"
            )),
        };
        return None;
    };
    let probe = process.as_table(r, key, value, &path)?;
    probe.check_keys(r, KEYS);
    let check = read_check(r, &probe, process_name, key);

    let period = probe.positive_duration(r, "period");
    let timeout = probe.positive_duration(r, "timeout");
    let period_v = period
        .as_ref()
        .map_or(kind.default_period(), |p| *p.get_ref());
    // An unset timeout never exceeds the period: it shrinks with a short period.
    let timeout_v = timeout
        .as_ref()
        .map_or(Duration::from_secs(1).min(period_v), |t| *t.get_ref());
    if timeout_v > period_v {
        let span = timeout
            .as_ref()
            .map_or_else(|| probe.span.clone(), Spanned::span);
        r.error(
            span,
            format!(
                "{}: timeout ({}) is longer than period ({})",
                probe.name(),
                crate::duration::format(timeout_v),
                crate::duration::format(period_v)
            ),
        )
        .label("longer than the period")
        .help(format!(
            "a check must finish before the next one starts: set timeout <= period, e.g. timeout = \"{}\"",
            crate::duration::format(period_v)
        ));
    }
    let initial_delay = probe
        .duration(r, "initial_delay")
        .map_or(Duration::ZERO, Spanned::into_inner);

    let success = probe.integer(r, "success_threshold", THRESHOLDS);
    if let Some(s) = &success
        && *s.get_ref() != 1
        && kind != ProbeKind::Readiness
    {
        r.error(s.span(), format!("{}: success_threshold must be 1 for a {key} probe", probe.name()))
            .help("as in Kubernetes, one success is enough to pass a liveness or startup probe: remove it");
    }
    let failure = probe.integer(r, "failure_threshold", THRESHOLDS);

    Some(ProbeSpec {
        check: check?,
        period: period_v,
        timeout: timeout_v,
        initial_delay,
        success_threshold: success.map_or(1, Spanned::into_inner),
        failure_threshold: failure.map_or(3, Spanned::into_inner),
    })
}

/// Exactly one of `http`, `tcp`, `exec`; http/tcp only for `web`, the one process with a `$PORT`.
fn read_check(
    r: &mut Report,
    probe: &Section,
    process_name: &str,
    key: &str,
) -> Option<ProbeCheck> {
    let present: Vec<&str> = CHECKS
        .iter()
        .copied()
        .filter(|c| probe.get(c).is_some())
        .collect();
    match present.as_slice() {
        [] => {
            probe.missing(
                r,
                "http, tcp or exec",
                format!("add one check, e.g. {key} = {{ http = \"/health\" }}, {{ tcp = true }} or {{ exec = \"test -f ok\" }}"),
            );
            return None;
        }
        [_] => {}
        [first, second, ..] => {
            let span = probe.key_span(second).unwrap_or_else(|| probe.span.clone());
            r.error(
                span,
                format!("{} has two checks, `{first}` and `{second}`", probe.name()),
            )
            .label("second check")
            .help(format!(
                "a probe has exactly one check: keep `{first}` or `{second}`"
            ));
            return None;
        }
    }
    let kind = present[0];
    let check = match kind {
        "http" => {
            let path = probe.text(r, "http", "\"/health\"")?;
            let p = path.get_ref();
            if !p.starts_with('/') || p.contains(char::is_whitespace) {
                let fixed = format!("/{}", p.trim().trim_start_matches('/').replace(' ', "%20"));
                r.error(
                    path.span(),
                    format!("{}: http must be a path starting with `/`", probe.name()),
                )
                .help(format!(
                    "write http = \"{fixed}\" (the probe always calls 127.0.0.1:$PORT)"
                ));
                return None;
            }
            ProbeCheck::Http {
                path: path.into_inner(),
            }
        }
        "tcp" => {
            let on = probe.boolean(r, "tcp")?;
            if !on.get_ref() {
                r.error(
                    on.span(),
                    format!("{}: tcp = false is not a check", probe.name()),
                )
                .help("write tcp = true, or use http = \"/path\" or exec = \"cmd\"");
                return None;
            }
            ProbeCheck::Tcp
        }
        _ => ProbeCheck::Exec {
            cmd: probe.text(r, "exec", "\"test -f ok\"")?.into_inner(),
        },
    };
    if kind != "exec" && !slipway_core::spec::ProcessSpec::is_web(process_name) {
        let span = probe.key_span(kind).unwrap_or_else(|| probe.span.clone());
        let article = if kind == "http" { "an" } else { "a" };
        r.error(span, format!("{}: {article} {kind} probe needs a port, and only `web` gets $PORT", probe.name()))
            .label("no port to check")
            .help(format!(
                "use an exec check for process `{process_name}`, e.g. {key} = {{ exec = \"test -f /tmp/healthy\" }}"
            ));
        return None;
    }
    Some(check)
}
