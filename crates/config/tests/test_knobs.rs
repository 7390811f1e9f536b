//! A template's test knobs (`alpha`, `beta`, `stable_margin` in `[analysis.<name>]`): what they parse to,
//! and each mistake at its line with a help.

mod support;

use slipway_config::parse;
use slipway_core::spec::TestKnobs;
use std::path::Path;
use support::rejects;

/// An app whose template `golden` has an error-rate check and these lines (from line 7 on).
fn app(lines: &str) -> String {
    format!(
        "app = \"a\"\n\n[processes.web]\ncmd = \"./server\"\n\n[analysis.golden]\n{lines}\nerror_rate = {{ max = \"1%\" }}\n"
    )
}

fn knobs(text: &str) -> TestKnobs {
    match parse(text, Path::new("slipway.toml")) {
        Ok(spec) => spec.analysis["golden"].test,
        Err(e) => panic!("rejected:\n{text}\n{e}"),
    }
}

#[test]
fn unset_knobs_keep_the_defaults() {
    assert!(knobs(&app("")).is_unset());
}

#[test]
fn knobs_are_read_beside_the_checks() {
    let k = knobs(&app("alpha = 0.01\nbeta = 0.1\nstable_margin = 1"));
    assert_eq!(
        (k.alpha, k.beta, k.stable_margin),
        (Some(0.01), Some(0.1), Some(1.0))
    );
    let k = knobs(&app("stable_margin = 0"));
    assert_eq!(
        (k.alpha, k.stable_margin),
        (None, Some(0.0)),
        "no margin at all"
    );
}

#[test]
fn mistakes_point_at_their_line() {
    rejects(
        &app("alpha = 0"),
        7,
        "`alpha` in [analysis.golden] must be more than 0 and at most 0.5, got 0",
        "chance of ever rolling back",
    );
    rejects(
        &app("\nbeta = 0.9"),
        8,
        "must be more than 0 and at most 0.5, got 0.9",
        "far edge",
    );
    rejects(
        &app("stable_margin = -1"),
        7,
        "must be from 0 to 3, got -1",
        "standard errors",
    );
    rejects(
        &app("alpha = \"5%\""),
        7,
        "expected a number",
        "e.g. alpha = 0.05",
    );
    rejects(
        &app("alpah = 0.05"),
        7,
        "unknown check `alpah`",
        "did you mean `alpha`?",
    );
}

#[test]
fn a_template_of_knobs_only_has_no_checks() {
    rejects(
        "app = \"a\"\n\n[processes.web]\ncmd = \"./server\"\n\n[analysis.golden]\nalpha = 0.05\n",
        6,
        "has no checks",
        "error_rate",
    );
}
