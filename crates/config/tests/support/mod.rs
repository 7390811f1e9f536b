//! Helpers shared by the config tests: parse a config that must fail and check its issues.

use slipway_config::{ConfigIssue, parse};
use std::path::Path;

/// All issues of a config that must fail.
pub fn issues(text: &str) -> Vec<ConfigIssue> {
    match parse(text, Path::new("slipway.toml")) {
        Ok(spec) => panic!("accepted:\n{text}\n{spec:#?}"),
        Err(e) => e.issues().to_vec(),
    }
}

/// The single issue of a config that must fail, checked for line, message and help.
#[track_caller]
pub fn rejects(text: &str, line: usize, message: &str, help: &str) -> ConfigIssue {
    let all = issues(text);
    assert_eq!(all.len(), 1, "expected one issue, got {all:#?}");
    let issue = all.into_iter().next().expect("one issue");
    assert_eq!(issue.line, line, "{issue}");
    assert!(
        issue.message.contains(message),
        "message {:?} lacks {message:?}",
        issue.message
    );
    let got = issue
        .help
        .as_deref()
        .unwrap_or_else(|| panic!("no help: {issue}"));
    assert!(got.contains(help), "help {got:?} lacks {help:?}");
    issue
}
