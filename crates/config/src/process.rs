//! `[processes.<name>]`: the process types of the app, their formation, shutdown timings and probes.

use crate::container;
use crate::probe::{self, ProbeKind};
use crate::procfile::Procfile;
use crate::report::Report;
use crate::scaling;
use crate::table::Section;
use slipway_core::spec::{ProcessSpec, StopSignal};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

const KEYS: &[&str] = &[
    "cmd",
    "replicas",
    "grace",
    "drain_timeout",
    "stream_drain_timeout",
    "readiness",
    "liveness",
    "startup",
    "stop_signal",
];
pub(crate) const MAX_REPLICAS: u32 = 64;
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
const DEFAULT_STREAM_DRAIN: Duration = Duration::from_secs(300);

const EXAMPLE: &str = "[processes.web]\ncmd = \"python3 -m http.server $PORT --bind 127.0.0.1\"";

/// Reads the `processes` table of the top level, with the Procfile's types (a table refines a type
/// and may leave out its `cmd`); reports an app with no process at all.
pub(crate) fn read_all(
    r: &mut Report,
    root: &Section,
    procfile: Option<&Procfile>,
) -> BTreeMap<String, ProcessSpec> {
    let mut out = BTreeMap::new();
    let from_procfile = |out: &mut BTreeMap<String, ProcessSpec>| {
        for entry in procfile.iter().flat_map(|p| p.processes()) {
            out.entry(entry.name.clone())
                .or_insert_with(|| defaults(entry.cmd.clone()));
        }
    };
    let Some(value) = root.get("processes") else {
        if procfile.is_some_and(|p| p.processes().next().is_some()) {
            from_procfile(&mut out);
        } else {
            root.missing(
                r,
                "processes",
                format!(
                    "an app runs at least one process; add:\n{EXAMPLE}\nor a Procfile beside slipway.toml with a line like `web: ./server --port $PORT`"
                ),
            );
        }
        return out;
    };
    let Some(processes) = root.as_table(r, "processes", value, "processes") else {
        return out;
    };
    if processes.is_empty() {
        r.error(processes.span.clone(), "[processes] has no process")
            .help(format!("add one:\n{EXAMPLE}"));
        return out;
    }
    for (name, key_span, value) in processes.entries() {
        let path = format!("processes.{name}");
        if !valid_name(name) {
            r.error(key_span.clone(), format!("invalid process name `{name}`"))
                .label("invalid name")
                .help("use lowercase letters, digits, `_` and `-`, starting with a letter, e.g. `web` or `worker`");
        }
        let toml::de::DeValue::Table(table) = value.get_ref() else {
            let cmd = match value.get_ref() {
                toml::de::DeValue::String(s) => s.to_string(),
                _ => "./server --port $PORT".into(),
            };
            processes
                .wrong_type(r, name, value, "a table")
                .help(format!(
                    "write the process as a table:\n[processes.{name}]\ncmd = \"{cmd}\""
                ));
            continue;
        };
        let section = Section::new(&path, value.span(), table);
        let procfile_cmd = procfile.and_then(|p| p.get(name)).map(|e| e.cmd.clone());
        if name == "release" && procfile.is_some_and(|p| p.get("release").is_some()) {
            r.warning(key_span.clone(), "[processes.release] is a process; the Procfile's `release:` line is the release phase")
                .help("rename the process, or move the release command to [release] cmd");
        }
        if let Some(spec) = read_one(r, &section, name, procfile_cmd) {
            out.insert(name.to_string(), spec);
        }
    }
    from_procfile(&mut out);
    out
}

/// A process type known only from its Procfile line.
fn defaults(cmd: String) -> ProcessSpec {
    ProcessSpec {
        cmd,
        replicas: 1,
        grace: DEFAULT_GRACE,
        drain_timeout: DEFAULT_DRAIN,
        stream_drain_timeout: DEFAULT_STREAM_DRAIN,
        readiness: None,
        liveness: None,
        startup: None,
        stop_signal: StopSignal::default(),
        container: None,
        scaling: None,
    }
}

/// `[a-z][a-z0-9_-]*`, at most 63 characters (also the rule for analysis template names).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn read_one(
    r: &mut Report,
    p: &Section,
    name: &str,
    procfile_cmd: Option<String>,
) -> Option<ProcessSpec> {
    let with_image = p.get("image").is_some();
    let allowed: Vec<&str> = KEYS
        .iter()
        .chain(container::KEYS)
        .chain(scaling::KEYS)
        .copied()
        .collect();
    p.check_keys(r, &allowed);
    let is_web = ProcessSpec::is_web(name);
    let container = if with_image {
        if procfile_cmd.is_some() {
            let span = p.key_span("image").unwrap_or_else(|| p.span.clone());
            r.error(
                span,
                format!("[processes.{name}] has an image, and the Procfile a `{name}:` command"),
            )
            .label("which one runs?")
            .help(format!("a process type runs an image or a command: remove the Procfile's `{name}:` line, or `image`"));
        }
        container::read(r, p, name, is_web)
    } else {
        container::refuse_without_image(r, p, name);
        None
    };
    let cmd = match (p.get("cmd"), procfile_cmd) {
        // With an image, `cmd` is the argv override read above; kept here for messages.
        _ if with_image => Some(Spanned::new(
            0..0,
            container
                .as_ref()
                .and_then(|c| c.command.as_ref())
                .map(|argv| argv.join(" "))
                .unwrap_or_default(),
        )),
        (None, Some(cmd)) => Some(Spanned::new(0..0, cmd)),
        (None, None) => {
            p.missing(r, "cmd", format!("add the command that starts it, run with `sh -c`, e.g.\ncmd = \"./server --port $PORT\"\n(or a line `{name}: <command>` in a Procfile beside slipway.toml)"));
            None
        }
        (Some(_), _) => p.text(r, "cmd", "\"./server --port $PORT\""),
    };
    let stop_signal = match p.string(r, "stop_signal") {
        None => StopSignal::default(),
        Some(s) => match StopSignal::parse(s.get_ref()) {
            Some(signal) => signal,
            None => {
                let names: Vec<&str> = StopSignal::ALL.iter().map(|s| s.name()).collect();
                r.error(
                    s.span(),
                    format!(
                        "[processes.{name}]: unknown stop_signal \"{}\"",
                        s.get_ref()
                    ),
                )
                .label("unknown signal")
                .help(format!("use one of {}", names.join(", ")));
                StopSignal::default()
            }
        },
    };
    let grace = p
        .duration(r, "grace")
        .map_or(DEFAULT_GRACE, Spanned::into_inner);
    let drain = p.duration(r, "drain_timeout");
    let stream = p.duration(r, "stream_drain_timeout");
    let drain_v = drain.as_ref().map_or(DEFAULT_DRAIN, |d| *d.get_ref());
    // Unset, the stream drain never undercuts the request drain.
    let stream_v = stream
        .as_ref()
        .map_or(DEFAULT_STREAM_DRAIN.max(drain_v), |s| *s.get_ref());
    if let Some(s) = &stream
        && stream_v < drain_v
    {
        r.error(
            s.span(),
            format!(
                "[processes.{name}]: stream_drain_timeout ({}) is shorter than drain_timeout ({})",
                crate::duration::format(stream_v),
                crate::duration::format(drain_v)
            ),
        )
        .label("shorter than drain_timeout")
        .help(format!(
            "long-lived connections get at least as long as requests: set stream_drain_timeout = \"{}\" or more",
            crate::duration::format(drain_v)
        ));
    }
    let [readiness, liveness, startup] = ProbeKind::ALL.map(|kind| probe::read(r, p, name, kind));
    let (replicas, scaling) = scaling::read(r, p, name, readiness.as_ref());
    if with_image {
        container::refuse_exec_probes(
            r,
            p,
            name,
            [
                ("readiness", &readiness),
                ("liveness", &liveness),
                ("startup", &startup),
            ],
        );
    }
    if with_image && container.is_none() {
        return None;
    }
    Some(ProcessSpec {
        cmd: cmd?.into_inner(),
        replicas,
        grace,
        drain_timeout: drain_v,
        stream_drain_timeout: stream_v,
        readiness,
        liveness,
        startup,
        stop_signal,
        container,
        scaling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_names() {
        for ok in ["web", "worker", "queue_2", "a-b"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["Web", "2web", "", "we b", "_x", &"a".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
