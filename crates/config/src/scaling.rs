//! A process's formation: `replicas = 3` (a fixed count), or `replicas = { min, max }` with `autoscale`
//! (the count follows load), `idle_after` (scale to zero), `wake_timeout` and `idle_paths` (what a cold
//! start looks like to a request). Only `web` takes traffic, so only `web` can follow it.

use crate::process::MAX_REPLICAS;
use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::{ProbeCheck, ProbeSpec, ScaleTarget, Scaling};
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

pub(crate) const KEYS: &[&str] = &["autoscale", "idle_after", "wake_timeout", "idle_paths"];
const AUTOSCALE_KEYS: &[&str] = &["concurrency", "rps", "window"];
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);
const DEFAULT_WAKE: Duration = Duration::from_secs(30);

/// The formation of process `name`: its starting count, and how it scales if it does.
pub(crate) fn read(
    r: &mut Report,
    p: &Section,
    name: &str,
    readiness: Option<&ProbeSpec>,
) -> (u32, Option<Scaling>) {
    let is_web = name == "web";
    let range = match p.get("replicas").map(|v| (v, v.get_ref())) {
        None => None,
        Some((_, DeValue::Table(_))) => read_range(r, p, name),
        Some(_) => {
            let fixed = p.integer(r, "replicas", 0..=MAX_REPLICAS);
            if let Some(n) = &fixed
                && is_web
                && *n.get_ref() == 0
            {
                r.error(n.span(), "[processes.web] must have at least 1 replica: it serves the app's traffic")
                    .label("no instance to serve")
                    .help("set replicas = 1 or more, or let it scale to zero when idle: replicas = { min = 0, max = 4 } with idle_after = \"15m\"");
            }
            return (
                fixed.map_or(1, Spanned::into_inner),
                refuse_without_range(r, p, name),
            );
        }
    };
    let Some((min, max)) = range else {
        // A range written wrong was reported: the keys that go with it are not errors too.
        if p.get("replicas").is_some() {
            return (1, None);
        }
        return (1, refuse_without_range(r, p, name));
    };
    if !is_web {
        let span = p.key_span("replicas").unwrap_or_else(|| p.span.clone());
        r.error(span, format!("[processes.{name}] cannot scale with load: only `web` takes traffic"))
            .label("a range needs traffic to follow")
            .help("give it a fixed count, e.g. replicas = 2 (workers and cron keep their count while web scales)");
        return (min.max(1), None);
    }
    let path = format!("processes.{name}.autoscale");
    let autoscale = p.table(r, "autoscale", &path);
    let target = autoscale.as_ref().and_then(|a| read_target(r, a));
    if target.is_none() && max > 1 && p.get("autoscale").is_none() {
        let span = p.key_span("replicas").unwrap_or_else(|| p.span.clone());
        r.error(span, "replicas = { min, max } needs to know what to scale on")
            .label("range without autoscale")
            .help("add autoscale = { concurrency = 20 } (requests in flight per instance) or autoscale = { rps = 100 }");
    }
    let idle_after = p.positive_duration(r, "idle_after");
    if let Some(idle) = &idle_after
        && min > 0
    {
        r.error(
            idle.span(),
            format!("idle_after scales to zero, but replicas has min = {min}"),
        )
        .label("cannot go below min")
        .help("set min = 0 in replicas, or remove idle_after");
    }
    let idle_after = (min == 0).then(|| idle_after.map_or(DEFAULT_IDLE, Spanned::into_inner));
    let wake_timeout = p
        .positive_duration(r, "wake_timeout")
        .map_or(DEFAULT_WAKE, Spanned::into_inner);
    // The readiness check's path is a health check too: a monitor polling it does not keep the
    // app awake.
    let idle_paths = match p.string_list(r, "idle_paths") {
        Some(list) => paths(r, p, list),
        None => match readiness.map(|probe| &probe.check) {
            Some(ProbeCheck::Http { path }) => vec![path.split('?').next().unwrap_or("/").into()],
            _ => Vec::new(),
        },
    };
    let window = autoscale
        .and_then(|a| a.positive_duration(r, "window"))
        .map_or(DEFAULT_WINDOW, Spanned::into_inner);
    let scaling = Scaling {
        min,
        max,
        target,
        window,
        idle_after,
        wake_timeout,
        idle_paths,
    };
    (min.max(1), Some(scaling))
}

/// `replicas = { min, max }`, checked.
fn read_range(r: &mut Report, p: &Section, name: &str) -> Option<(u32, u32)> {
    let path = format!("processes.{name}.replicas");
    let range = p.table(r, "replicas", &path)?;
    range.check_keys(r, &["min", "max"]);
    let min = range.integer(r, "min", 0..=MAX_REPLICAS);
    let max = range.integer(r, "max", 1..=MAX_REPLICAS);
    let (Some(min), Some(max)) = (min, max) else {
        if range.get("min").is_none() || range.get("max").is_none() {
            range.missing(
                r,
                if range.get("min").is_none() {
                    "min"
                } else {
                    "max"
                },
                "write both ends: replicas = { min = 1, max = 8 }",
            );
        }
        return None;
    };
    if min.get_ref() > max.get_ref() {
        r.error(
            min.span(),
            format!(
                "replicas: min ({}) is more than max ({})",
                min.get_ref(),
                max.get_ref()
            ),
        )
        .label("more than max")
        .help(format!(
            "swap them: replicas = {{ min = {}, max = {} }}",
            max.get_ref(),
            min.get_ref()
        ));
        return None;
    }
    Some((min.into_inner(), max.into_inner()))
}

/// `autoscale = { concurrency = N }` or `{ rps = N }`.
fn read_target(r: &mut Report, autoscale: &Section) -> Option<ScaleTarget> {
    autoscale.check_keys(r, AUTOSCALE_KEYS);
    let concurrency = autoscale.integer(r, "concurrency", 1..=100_000);
    let rps = autoscale.integer(r, "rps", 1..=1_000_000);
    match (concurrency, rps) {
        (Some(c), None) => Some(ScaleTarget::Concurrency(c.into_inner())),
        (None, Some(n)) => Some(ScaleTarget::Rps(n.into_inner())),
        (Some(c), Some(_)) => {
            r.error(c.span(), "autoscale has both concurrency and rps")
                .label("one target")
                .help("scale on one measure: keep concurrency (requests in flight per instance) or rps");
            None
        }
        (None, None) => {
            if autoscale.get("concurrency").is_none() && autoscale.get("rps").is_none() {
                autoscale.missing(
                    r,
                    "concurrency",
                    "say what one instance should carry: autoscale = { concurrency = 20 } or autoscale = { rps = 100 }",
                );
            }
            None
        }
    }
}

/// The scaling keys only mean something with a range: each one present is an error saying so.
fn refuse_without_range(r: &mut Report, p: &Section, name: &str) -> Option<Scaling> {
    for key in KEYS {
        if let Some(span) = p.key_span(key) {
            let help = if name == "web" {
                "give replicas a range: replicas = { min = 1, max = 8 } (min = 0 to scale to zero when idle)"
                    .to_string()
            } else {
                format!("only `web` takes traffic and can scale with it; remove `{key}`")
            };
            r.error(
                span,
                format!("`{key}` in [processes.{name}] needs replicas = {{ min, max }}"),
            )
            .label("no range to scale in")
            .help(help);
        }
    }
    None
}

fn paths(r: &mut Report, p: &Section, list: Vec<Spanned<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for path in list {
        if !path.get_ref().starts_with('/') {
            let fixed = format!("/{}", path.get_ref());
            r.error(
                path.span(),
                format!(
                    "{}: \"{}\" is not a path",
                    p.key_ref("idle_paths"),
                    path.get_ref()
                ),
            )
            .label("must start with /")
            .help(format!("write \"{fixed}\""));
            continue;
        }
        out.push(path.into_inner());
    }
    out
}
