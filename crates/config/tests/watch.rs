//! `[deploy] watch` and `watch_analysis`: how long a release is judged after promotion against the one
//! it replaced, and with which template; each mistake at its line with a help.

mod support;

use slipway_config::{parse, parse_with_warnings};
use slipway_core::spec::{DEFAULT_WATCH, DeploySpec};
use std::path::Path;
use std::time::Duration;
use support::rejects;

/// A valid app; `deploy` goes under `[deploy]` from line 10 on.
fn app(deploy: &str) -> String {
    format!(
        "app = \"a\"\n\n[processes.web]\ncmd = \"./server\"\n\n[analysis.golden]\nerror_rate = {{ max = \"1%\" }}\n\n[deploy]\n{deploy}\n\n[analysis.smoke]\ncommand = {{ cmd = \"./smoke.sh\" }}\n"
    )
}

fn deploy(text: &str) -> DeploySpec {
    match parse(text, Path::new("slipway.toml")) {
        Ok(spec) => spec.deploy,
        Err(e) => panic!("rejected:\n{text}\n{e}"),
    }
}

#[test]
fn a_release_is_watched_five_minutes_by_default_on_its_error_rate() {
    let d = deploy("app = \"a\"\n[processes.web]\ncmd = \"./server\"\n");
    assert_eq!((d.watch, d.watch_analysis), (DEFAULT_WATCH, None));
    assert_eq!(DEFAULT_WATCH, Duration::from_secs(300));
    assert_eq!(
        DeploySpec::default_watch_template().checks.len(),
        1,
        "one check: the error rate against the replaced release"
    );
}

#[test]
fn watch_and_its_template_are_read_with_any_strategy() {
    let d = deploy(&app("watch = \"90s\"\nwatch_analysis = \"golden\""));
    assert_eq!(d.watch, Duration::from_secs(90));
    assert_eq!(d.watch_analysis.as_deref(), Some("golden"));
    let d = deploy(&app("strategy = \"blue-green\"\nwatch = \"0s\""));
    assert_eq!(d.watch, Duration::ZERO, "0s turns it off");
}

#[test]
fn mistakes_point_at_their_line() {
    rejects(
        &app("watch = \"5 min\""),
        10,
        "not a valid duration",
        "\"5m\"",
    );
    rejects(&app("watch = 300"), 10, "duration", "\"300s\"");
    rejects(
        &app("watch_analysis = \"goldn\""),
        10,
        "watch_analysis: unknown analysis template \"goldn\"",
        "did you mean \"golden\"?",
    );
    rejects(
        &app("strategy = \"rolling\"\nwatch_analysis = \"smoke\""),
        11,
        "has command checks; the watch judges only error_rate and latency_pNN",
        "[analysis.after]",
    );
    rejects(&app("wacth = \"5m\""), 10, "unknown key `wacth`", "`watch`");
}

#[test]
fn a_template_for_a_watch_that_is_off_is_a_warning() {
    let parsed = parse_with_warnings(
        &app("watch = \"0s\"\nwatch_analysis = \"golden\""),
        Path::new("slipway.toml"),
    )
    .expect("accepted");
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert!(
        parsed.warnings[0].message.contains("no effect"),
        "{:?}",
        parsed.warnings
    );
    assert_eq!(parsed.warnings[0].line, 11);
}
