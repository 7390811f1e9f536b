//! `slipway.toml` parsing and validation: any text gives a spec or errors, never a panic; every issue
//! points into the text, and a rejected config renders with its snippets as the CLI prints it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_config::{ConfigIssue, parse_with_warnings};
use slipway_fuzz::{assert_span_within, render};
use std::path::Path;

// A folder with no Procfile, so the config alone decides (relative paths resolve against it too).
const PATH: &str = "/nonexistent/slipway-fuzz/slipway.toml";

fuzz_target!(|text: &str| {
    match parse_with_warnings(text, Path::new(PATH)) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                check_issue(warning, text);
            }
        }
        Err(error) => {
            assert!(!error.issues().is_empty(), "an error names its problems");
            for issue in error.issues() {
                check_issue(issue, text);
            }
            let _ = error.to_string();
            render(error.to_report().as_ref());
        }
    }
});

fn check_issue(issue: &ConfigIssue, text: &str) {
    assert_span_within(&issue.span, text, &issue.message);
    assert!(issue.line >= 1 && issue.column >= 1, "{issue:?}");
}
